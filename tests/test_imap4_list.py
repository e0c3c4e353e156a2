"""
Tests for L{gomail_twisted.imap4._listing} and the LIST and LSUB commands
(RFC 3501 6.3.8, 6.3.9; LIST-EXTENDED, RFC 5258; LIST-STATUS, RFC 5819;
CHILDREN, RFC 3348; SPECIAL-USE, RFC 6154).

The expected answers are Dovecot 2.3's for the same folders and
subscriptions (a Maildir++ store with C{/} as the delimiter), but for the
choices this server makes differently, said where they appear: the
children attributes are sent in every LIST, the order is INBOX first,
then by name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4._commands import ListMailboxes
from gomail_twisted.imap4._listing import (
    Pattern,
    encodeName,
    listing,
    listResponse,
    parents,
)
from gomail_twisted.imap4._mailboxes import subscriptions
from gomail_twisted.maildir.errors import StoreFailed
from gomail_twisted.maildir.interfaces import FolderInfo
from tests._imaphelpers import StoreTestCase, tagged

#: The folders of the tables, with their special uses: a new account's,
#: and a few more (C{a/b/c} without the levels above it).
FOLDERS = {
    "INBOX": None,
    "Archive": "\\Archive",
    "Drafts": "\\Drafts",
    "Junk": "\\Junk",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "a/b/c": None,
    "foo": None,
    "foo/bar": None,
}

#: The subscriptions of the tables, two of them of no folder.
SUBSCRIBED = ("INBOX", "Sent", "a/b/c", "foo/bar", "ghost", "ghost2/child")


def folderInfos(
    folders: dict[str, str | None] = FOLDERS,
    subscribed: Iterable[str] = SUBSCRIBED,
) -> list[FolderInfo]:
    """
    The folders as the store lists them.
    """
    names = set(folders)
    subscriptions = set(subscribed)
    return [
        FolderInfo(
            name,
            use,
            name in subscriptions,
            any(other.startswith(name + "/") for other in names),
        )
        for name, use in folders.items()
    ]


def answer(
    reference: str,
    *patterns: str,
    lsub: bool = False,
    selection: Iterable[str] = (),
    returns: Iterable[str] = (),
    extended: bool = False,
    folders: dict[str, str | None] = FOLDERS,
    subscribed: Sequence[str] = SUBSCRIBED,
) -> list[str]:
    """
    The LIST (or LSUB) responses for the table's folders, as text lines
    without CRLF.
    """
    selection = frozenset(selection)
    returns = frozenset(returns)
    arguments = ListMailboxes(
        reference,
        patterns,
        lsub=lsub,
        selection=selection,
        returns=returns,
        extended=extended or bool(selection or returns),
    )
    kind = b"LSUB" if lsub else b"LIST"
    entries = listing(arguments, folderInfos(folders, subscribed), subscribed)
    return [listResponse(kind, e).decode().rstrip("\r\n") for e in entries]


class PatternTests(SynchronousTestCase):
    """
    L{Pattern}: the wildcards of RFC 3501 6.3.8.
    """

    CASES = [
        # pattern, name, matches
        ("*", "a", True),
        ("*", "a/b/c", True),
        ("%", "a", True),
        ("%", "a/b", False),
        ("a%", "a", True),
        ("a%", "abc", True),
        ("a%", "a/b", False),
        ("a/%", "a/b", True),
        ("a/%", "a/b/c", False),
        ("a/*", "a/b/c", True),
        ("a/*", "a", False),
        ("*c", "a/b/c", True),
        ("%c", "a/b/c", False),
        ("%/%/c", "a/b/c", True),
        ("a%c", "abc", True),
        ("a%c", "a/c", False),
        ("a*c", "a/c", True),
        ("a*c", "a/cd", False),
        ("*%*", "x/y", True),
        ("%*", "x/y", True),
        ("*%", "x/y", True),
        ("%%", "x/y", False),
        ("%%", "xy", True),
        ("*/", "a/b", False),
        ("", "a", False),
        ("a", "a", True),
        ("a", "A", False),
        ("a", "ab", False),
        ("ab", "a", False),
        ("a/b", "a/b", True),
        # INBOX, in a name's first level only, without regard to case.
        ("inbox", "INBOX", True),
        ("InBoX", "INBOX", True),
        ("InBoX*", "INBOX", True),
        ("i*", "INBOX", True),
        ("i*", "INBOX/sub", True),
        ("inb%", "INBOX", True),
        ("*box", "INBOX", True),
        ("*nbox", "INBOX", True),
        ("inbox/sub", "INBOX/sub", True),
        ("inbox/%", "INBOX/sub", True),
        ("%/sub", "INBOX/sub", True),
        ("Inbox/Sub", "INBOX/sub", False),
        ("inbox/SUB", "INBOX/sub", False),
        ("inboxy", "INBOXY", False),
        ("i*", "inboxy", True),
        ("I*", "inboxy", False),
        ("*/inbox", "x/INBOX", False),
        ("\u0131nbox", "INBOX", False),
        ("\u0131nbox*", "INBOX", False),
        ("\u0131*", "INBOX/sub", False),
        # Text beyond ASCII, as decoded from modified UTF-7.
        ("Entw*", "Entwürfe", True),
        ("%ü%", "Entwürfe", True),
        ("%Ü%", "Entwürfe", False),
    ]

    def test_table(self) -> None:
        """
        Each pattern matches exactly the names RFC 3501 6.3.8 says, and
        C{INBOX} in any case.
        """
        for pattern, name, expected in self.CASES:
            with self.subTest(pattern=pattern, name=name):
                self.assertEqual(Pattern(pattern).matches(name), expected)

    def test_manyWildcardsStayLinear(self) -> None:
        """
        Patterns that make a backtracking matcher take exponential (or
        high polynomial) time finish at once on long names, whether they
        match or not.
        """
        name = "a" * 3000
        cases = [
            ("*%*%*%*%*%*%*%*%*%*%a", name, True),
            ("*%*%*%*%*%*%*%*%*%*%b", name, False),
            ("*a" * 30 + "b", name, False),
            ("%a" * 30 + "b", name, False),
            ("*a" * 30, name, True),
            ("*a%" * 20 + "*/b", "a/" * 1500, False),
        ]
        start = time.perf_counter()
        for pattern, text, expected in cases:
            self.assertEqual(Pattern(pattern).matches(text), expected)
        # Generous: a backtracking matcher would take longer than the age
        # of the universe; this takes milliseconds.
        self.assertLess(time.perf_counter() - start, 10.0)

    def test_longPatterns(self) -> None:
        """
        A pattern with more characters than the name can match is
        refused before any work, however long.
        """
        pattern = Pattern("*a" * 30000)
        start = time.perf_counter()
        for _ in range(1000):
            self.assertFalse(pattern.matches("a" * 255))
        self.assertLess(time.perf_counter() - start, 10.0)
        self.assertTrue(Pattern("*a" * 100).matches("a" * 100))
        self.assertFalse(Pattern("*a" * 100).matches("a" * 99))

    @settings(max_examples=300, deadline=None)
    @given(
        st.text("ab/*%", max_size=8),
        st.text("ab/", min_size=1, max_size=10),
    )
    def test_sameAsRegularExpression(self, pattern: str, name: str) -> None:
        """
        On short inputs, where backtracking costs nothing, the pattern
        matches exactly what the plain regular expression of RFC 3501
        6.3.8 does.
        """
        translated = "".join(
            ".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern
        )
        expected = re.fullmatch(translated, name, re.DOTALL) is not None
        self.assertEqual(Pattern(pattern).matches(name), expected)

    def test_parents(self) -> None:
        """
        L{parents} gives the levels above a name, from the top.
        """
        self.assertEqual(parents("a/b/c"), ["a", "a/b"])
        self.assertEqual(parents("a"), [])


class ListTests(SynchronousTestCase):
    """
    L{listing} for LIST in the syntax of RFC 3501.
    """

    def test_star(self) -> None:
        """
        C{*} lists every folder, and the levels above folders that are no
        folders themselves as C{\\Noselect \\HasChildren}; each folder has
        C{\\HasChildren} or C{\\HasNoChildren}, and its special use.
        """
        self.assertEqual(
            answer("", "*"),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren \\Archive) "/" Archive',
                '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
                '* LIST (\\HasNoChildren \\Junk) "/" Junk',
                '* LIST (\\HasNoChildren \\Sent) "/" Sent',
                '* LIST (\\HasNoChildren \\Trash) "/" Trash',
                '* LIST (\\Noselect \\HasChildren) "/" a',
                '* LIST (\\Noselect \\HasChildren) "/" a/b',
                '* LIST (\\HasNoChildren) "/" a/b/c',
                '* LIST (\\HasChildren) "/" foo',
                '* LIST (\\HasNoChildren) "/" foo/bar',
            ],
        )

    def test_percent(self) -> None:
        """
        C{%} stops at the delimiter: levels with folders below them are
        listed, C{\\Noselect} when they are no folders (RFC 3501 6.3.8).
        """
        self.assertEqual(
            answer("", "%"),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren \\Archive) "/" Archive',
                '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
                '* LIST (\\HasNoChildren \\Junk) "/" Junk',
                '* LIST (\\HasNoChildren \\Sent) "/" Sent',
                '* LIST (\\HasNoChildren \\Trash) "/" Trash',
                '* LIST (\\Noselect \\HasChildren) "/" a',
                '* LIST (\\HasChildren) "/" foo',
            ],
        )

    def test_table(self) -> None:
        """
        References and patterns are joined by putting one after the
        other, and list what Dovecot lists for them.
        """
        cases: list[tuple[str, str, list[str]]] = [
            (
                "",
                "%/%",
                [
                    '* LIST (\\Noselect \\HasChildren) "/" a/b',
                    '* LIST (\\HasNoChildren) "/" foo/bar',
                ],
            ),
            ("a", "%", ['* LIST (\\Noselect \\HasChildren) "/" a']),
            ("a/", "%", ['* LIST (\\Noselect \\HasChildren) "/" a/b']),
            ("", "a/%", ['* LIST (\\Noselect \\HasChildren) "/" a/b']),
            ("", "a/b", ['* LIST (\\Noselect \\HasChildren) "/" a/b']),
            ("", "inbox", ['* LIST (\\HasNoChildren) "/" INBOX']),
            ("", "InBoX*", ['* LIST (\\HasNoChildren) "/" INBOX']),
            ("inbox", "%", ['* LIST (\\HasNoChildren) "/" INBOX']),
            ("inbox/", "%", []),
            ("", "INBOX/*", []),
            ("", "%a", ['* LIST (\\Noselect \\HasChildren) "/" a']),
            ("", "*bar", ['* LIST (\\HasNoChildren) "/" foo/bar']),
            ("foo", "/bar", ['* LIST (\\HasNoChildren) "/" foo/bar']),
            ("foo/", "bar", ['* LIST (\\HasNoChildren) "/" foo/bar']),
            ("foo/", "/bar", []),
            ("", "/", []),
            ("", "/*", []),
            ("#x", "*", []),
            ("~", "*", []),
            ("", "FOO", []),
            ("", "S*", ['* LIST (\\HasNoChildren \\Sent) "/" Sent']),
        ]
        for reference, pattern, expected in cases:
            with self.subTest(reference=reference, pattern=pattern):
                self.assertEqual(answer(reference, pattern), expected)

    def test_emptyPattern(self) -> None:
        """
        An empty pattern asks for the delimiter and the root: C{""}, since
        no name is rooted (RFC 3501 6.3.8), whatever the reference.
        """
        for reference in ("", "foo", "foo/bar"):
            with self.subTest(reference=reference):
                self.assertEqual(answer(reference, ""), ['* LIST (\\Noselect) "/" ""'])

    def test_unsubscribedNamesUnlisted(self) -> None:
        """
        A subscription to a name that is no folder does not make LIST
        list it.
        """
        self.assertEqual(answer("", "ghost*"), [])

    def test_namesEncoded(self) -> None:
        """
        Names go out in modified UTF-7, quoted or as literals as their
        characters need (RFC 3501 5.1.3).
        """
        folders: dict[str, str | None] = {
            "INBOX": None,
            "Entwürfe": None,
            "sp ace": None,
            'q"uote': None,
            "NIL": None,
        }
        self.assertEqual(
            answer("", "*", folders=folders, subscribed=()),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren) "/" Entw&APw-rfe',
                '* LIST (\\HasNoChildren) "/" "NIL"',
                '* LIST (\\HasNoChildren) "/" "q\\"uote"',
                '* LIST (\\HasNoChildren) "/" "sp ace"',
            ],
        )

    def test_utf8Names(self) -> None:
        """
        Once UTF8=ACCEPT is on, names go out in UTF-8 (RFC 6855 3), as
        literals when they are not 7-bit.
        """
        self.assertEqual(encodeName("Entwürfe", utf8=True), b"{9}\r\nEntw\xc3\xbcrfe")
        self.assertEqual(encodeName("Entwürfe"), b"Entw&APw-rfe")
        self.assertEqual(encodeName("inbox"), b"INBOX")

    def test_badSpecialUseLeftOut(self) -> None:
        """
        A special use the wire cannot carry, from a store gone wrong, is
        left out rather than sent.
        """
        folders: dict[str, str | None] = {"INBOX": None, "x": "\\Bad)"}
        self.assertEqual(
            answer("", "x", folders=folders, subscribed=()),
            ['* LIST (\\HasNoChildren) "/" x'],
        )


class LSubTests(SynchronousTestCase):
    """
    L{listing} for LSUB (RFC 3501 6.3.9).
    """

    def test_star(self) -> None:
        """
        C{*} lists every subscribed name, folder or not, with its special
        use and no other attribute.
        """
        self.assertEqual(
            answer("", "*", lsub=True),
            [
                '* LSUB () "/" INBOX',
                '* LSUB (\\Sent) "/" Sent',
                '* LSUB () "/" a/b/c',
                '* LSUB () "/" foo/bar',
                '* LSUB () "/" ghost',
                '* LSUB () "/" ghost2/child',
            ],
        )

    def test_percent(self) -> None:
        """
        C{%} lists the unsubscribed levels above subscribed names it does
        not reach, with C{\\Noselect} (RFC 3501 6.3.9).
        """
        self.assertEqual(
            answer("", "%", lsub=True),
            [
                '* LSUB () "/" INBOX',
                '* LSUB (\\Sent) "/" Sent',
                '* LSUB (\\Noselect) "/" a',
                '* LSUB (\\Noselect) "/" foo',
                '* LSUB () "/" ghost',
                '* LSUB (\\Noselect) "/" ghost2',
            ],
        )

    def test_table(self) -> None:
        """
        Other patterns, as Dovecot answers them.
        """
        cases: list[tuple[str, str, list[str]]] = [
            (
                "",
                "%/%",
                [
                    '* LSUB (\\Noselect) "/" a/b',
                    '* LSUB () "/" foo/bar',
                    '* LSUB () "/" ghost2/child',
                ],
            ),
            ("", "a/%", ['* LSUB (\\Noselect) "/" a/b']),
            ("", "J*", []),
            ("", "", []),
            ("", "inbox", ['* LSUB () "/" INBOX']),
        ]
        for reference, pattern, expected in cases:
            with self.subTest(reference=reference, pattern=pattern):
                self.assertEqual(answer(reference, pattern, lsub=True), expected)


class ExtendedListTests(SynchronousTestCase):
    """
    L{listing} for LIST with LIST-EXTENDED's options (RFC 5258, RFC 6154).
    """

    def test_noOptions(self) -> None:
        """
        In the extended syntax a name that is no folder is
        C{\\NonExistent}, and special uses are sent only when asked for.
        """
        self.assertEqual(
            answer("", "*", returns=["CHILDREN"]),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren) "/" Archive',
                '* LIST (\\HasNoChildren) "/" Drafts',
                '* LIST (\\HasNoChildren) "/" Junk',
                '* LIST (\\HasNoChildren) "/" Sent',
                '* LIST (\\HasNoChildren) "/" Trash',
                '* LIST (\\NonExistent \\HasChildren) "/" a',
                '* LIST (\\NonExistent \\HasChildren) "/" a/b',
                '* LIST (\\HasNoChildren) "/" a/b/c',
                '* LIST (\\HasChildren) "/" foo',
                '* LIST (\\HasNoChildren) "/" foo/bar',
            ],
        )
        self.assertEqual(
            answer("", "*", extended=True), answer("", "*", returns=["CHILDREN"])
        )

    def test_returnSubscribed(self) -> None:
        """
        C{RETURN (SUBSCRIBED)} marks the subscribed folders
        C{\\Subscribed}, and lists no name that is not a folder or above
        one.
        """
        self.assertEqual(
            answer("", "%", returns=["SUBSCRIBED"]),
            [
                '* LIST (\\Subscribed \\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren) "/" Archive',
                '* LIST (\\HasNoChildren) "/" Drafts',
                '* LIST (\\HasNoChildren) "/" Junk',
                '* LIST (\\Subscribed \\HasNoChildren) "/" Sent',
                '* LIST (\\HasNoChildren) "/" Trash',
                '* LIST (\\NonExistent \\HasChildren) "/" a',
                '* LIST (\\HasChildren) "/" foo',
            ],
        )

    def test_returnSpecialUse(self) -> None:
        """
        C{RETURN (SPECIAL-USE)} adds the special uses.
        """
        self.assertEqual(
            answer("", "%", returns=["SPECIAL-USE"]),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasNoChildren \\Archive) "/" Archive',
                '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
                '* LIST (\\HasNoChildren \\Junk) "/" Junk',
                '* LIST (\\HasNoChildren \\Sent) "/" Sent',
                '* LIST (\\HasNoChildren \\Trash) "/" Trash',
                '* LIST (\\NonExistent \\HasChildren) "/" a',
                '* LIST (\\HasChildren) "/" foo',
            ],
        )

    def test_selectSubscribed(self) -> None:
        """
        The C{SUBSCRIBED} selection lists the subscribed names, folders or
        not, each C{\\Subscribed} (RFC 5258 3.1).
        """
        self.assertEqual(
            answer("", "*", selection=["SUBSCRIBED"]),
            [
                '* LIST (\\Subscribed \\HasNoChildren) "/" INBOX',
                '* LIST (\\Subscribed \\HasNoChildren) "/" Sent',
                '* LIST (\\Subscribed \\HasNoChildren) "/" a/b/c',
                '* LIST (\\Subscribed \\HasNoChildren) "/" foo/bar',
                '* LIST (\\Subscribed \\NonExistent \\HasNoChildren) "/" ghost',
                '* LIST (\\Subscribed \\NonExistent \\HasNoChildren) "/" ghost2/child',
            ],
        )

    def test_recursiveMatchPercent(self) -> None:
        """
        With C{RECURSIVEMATCH}, a name the pattern matches that has a
        subscribed name below it that the pattern does not match is
        listed with C{CHILDINFO} (RFC 5258 3.5).
        """
        self.assertEqual(
            answer("", "%", selection=["SUBSCRIBED", "RECURSIVEMATCH"]),
            [
                '* LIST (\\Subscribed \\HasNoChildren) "/" INBOX',
                '* LIST (\\Subscribed \\HasNoChildren) "/" Sent',
                '* LIST (\\NonExistent \\HasChildren) "/" a (CHILDINFO ("SUBSCRIBED"))',
                '* LIST (\\HasChildren) "/" foo (CHILDINFO ("SUBSCRIBED"))',
                '* LIST (\\Subscribed \\NonExistent \\HasNoChildren) "/" ghost',
                '* LIST (\\NonExistent \\HasNoChildren) "/" ghost2'
                ' (CHILDINFO ("SUBSCRIBED"))',
            ],
        )

    def test_recursiveMatchStar(self) -> None:
        """
        With C{RECURSIVEMATCH} and C{*}, only names that meet the
        selection are listed, and those with a subscribed name below them
        carry C{CHILDINFO}, as Dovecot answers.
        """
        subscribed = ("foo", "foo/bar", "a/b/c")
        self.assertEqual(
            answer(
                "",
                "*",
                selection=["SUBSCRIBED", "RECURSIVEMATCH"],
                subscribed=subscribed,
            ),
            [
                '* LIST (\\Subscribed \\HasNoChildren) "/" a/b/c',
                '* LIST (\\Subscribed \\HasChildren) "/" foo'
                ' (CHILDINFO ("SUBSCRIBED"))',
                '* LIST (\\Subscribed \\HasNoChildren) "/" foo/bar',
            ],
        )
        self.assertEqual(
            answer(
                "",
                "a/%",
                selection=["SUBSCRIBED", "RECURSIVEMATCH"],
                subscribed=subscribed,
            ),
            ['* LIST (\\NonExistent \\HasChildren) "/" a/b (CHILDINFO ("SUBSCRIBED"))'],
        )

    def test_selectSpecialUse(self) -> None:
        """
        The C{SPECIAL-USE} selection lists the folders with a special use,
        and implies the return option (RFC 6154 5.1).
        """
        self.assertEqual(
            answer("", "*", selection=["SPECIAL-USE"]),
            [
                '* LIST (\\HasNoChildren \\Archive) "/" Archive',
                '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
                '* LIST (\\HasNoChildren \\Junk) "/" Junk',
                '* LIST (\\HasNoChildren \\Sent) "/" Sent',
                '* LIST (\\HasNoChildren \\Trash) "/" Trash',
            ],
        )

    def test_selectBoth(self) -> None:
        """
        Two selection options pick the names that meet both.
        """
        self.assertEqual(
            answer("", "*", selection=["SPECIAL-USE", "SUBSCRIBED"]),
            ['* LIST (\\Subscribed \\HasNoChildren \\Sent) "/" Sent'],
        )

    def test_remote(self) -> None:
        """
        C{REMOTE} changes nothing: there are no remote mailboxes.
        """
        self.assertEqual(
            answer("", "%", selection=["REMOTE"]), answer("", "%", extended=True)
        )

    def test_patternList(self) -> None:
        """
        Several patterns list each name that any of them matches, once; an
        empty one is no request for the delimiter there.
        """
        self.assertEqual(
            answer("", "INBOX", "foo"),
            [
                '* LIST (\\HasNoChildren) "/" INBOX',
                '* LIST (\\HasChildren) "/" foo',
            ],
        )
        self.assertEqual(
            answer("", "foo*", "f*", ""),
            [
                '* LIST (\\HasChildren) "/" foo',
                '* LIST (\\HasNoChildren) "/" foo/bar',
            ],
        )
        self.assertEqual(answer("", "", returns=["CHILDREN"]), [])


class ListCommandTests(StoreTestCase):
    """
    LIST and LSUB on the wire, over the Maildir store.
    """

    def test_list(self) -> None:
        """
        LIST answers with one line for each name, then OK.
        """
        c = self.login()
        c.command(b"c CREATE work/2024")
        self.assertEqual(
            c.command(b'a LIST "" *'),
            b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
            b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n'
            b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n'
            b'* LIST (\\HasNoChildren \\Junk) "/" Junk\r\n'
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n'
            b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n'
            b'* LIST (\\Noselect \\HasChildren) "/" work\r\n'
            b'* LIST (\\HasNoChildren) "/" work/2024\r\n'
            b"a OK LIST completed\r\n",
        )

    def test_delimiter(self) -> None:
        """
        C{LIST "" ""} gives the delimiter.
        """
        c = self.login()
        self.assertEqual(
            c.command(b'a LIST "" ""'),
            b'* LIST (\\Noselect) "/" ""\r\na OK LIST completed\r\n',
        )

    def test_encodedNames(self) -> None:
        """
        A name given in modified UTF-7 is listed in it, and matched by
        patterns in it.
        """
        c = self.login()
        self.assertEqual(
            tagged(c.command(b"a CREATE Entw&APw-rfe")), b"a OK CREATE completed"
        )
        self.assertEqual(
            c.command(b"a LIST Entw&APw- %"),
            b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\na OK LIST completed\r\n',
        )

    def test_lsub(self) -> None:
        """
        LSUB lists the subscriptions.
        """
        c = self.login()
        c.command(b"c UNSUBSCRIBE Junk")
        self.assertEqual(
            c.command(b'a LSUB "" *'),
            b'* LSUB () "/" INBOX\r\n'
            b'* LSUB (\\Archive) "/" Archive\r\n'
            b'* LSUB (\\Drafts) "/" Drafts\r\n'
            b'* LSUB (\\Sent) "/" Sent\r\n'
            b'* LSUB (\\Trash) "/" Trash\r\n'
            b"a OK LSUB completed\r\n",
        )

    def test_subscriptionsWithoutFolders(self) -> None:
        """
        LSUB and C{LIST (SUBSCRIBED)} list subscribed names that are no
        folders, from the store's list of subscriptions.
        """
        c = self.login()
        c.command(b"c SUBSCRIBE gone/child")
        self.assertEqual(
            c.command(b'a LSUB "" g%'),
            b'* LSUB (\\Noselect) "/" gone\r\na OK LSUB completed\r\n',
        )
        self.assertEqual(
            c.command(b'a LIST (SUBSCRIBED) "" g*'),
            b'* LIST (\\Subscribed \\NonExistent \\HasNoChildren) "/" gone/child\r\n'
            b"a OK LIST completed\r\n",
        )

    def test_listStatus(self) -> None:
        """
        C{RETURN (STATUS ...)} follows each folder's LIST response with
        its STATUS, the items in the order asked; names that are no
        folders get none (RFC 5819 2).
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n", b"Subject: two\r\n\r\n!\r\n")
        c = self.login()
        c.command(b"c CREATE x/y")
        answer = c.command(
            b'a LIST "" (INBOX x*) RETURN (STATUS (UNSEEN MESSAGES SIZE))'
        )
        self.assertEqual(
            answer,
            b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
            b"* STATUS INBOX (UNSEEN 2 MESSAGES 2 SIZE 41)\r\n"
            b'* LIST (\\NonExistent \\HasChildren) "/" x\r\n'
            b'* LIST (\\HasNoChildren) "/" x/y\r\n'
            b"* STATUS x/y (UNSEEN 0 MESSAGES 0 SIZE 0)\r\n"
            b"a OK LIST completed\r\n",
        )

    def test_listStatusHighestModSeqEnablesCondstore(self) -> None:
        """
        LIST-STATUS with C{HIGHESTMODSEQ} turns CONDSTORE on (RFC 7162
        3.1): a later STORE's FETCH responses carry MODSEQ.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n")
        c = self.selected()
        answer = c.command(b'a LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ))')
        self.assertIn(b"* STATUS INBOX (HIGHESTMODSEQ ", answer)
        stored = c.command(b"b STORE 1 +FLAGS (\\Flagged)")
        self.assertIn(b"MODSEQ (", stored)

    def test_listStatusSkipsFailures(self) -> None:
        """
        A folder whose status cannot be had gets no STATUS response; the
        LIST goes on.
        """
        c = self.login()
        account = c.protocol.account

        def folderStatus(name: str) -> Deferred[Any]:
            return fail(StoreFailed("disk on fire"))

        account.folderStatus = folderStatus
        self.assertEqual(
            c.command(b'a LIST "" INBOX RETURN (STATUS (MESSAGES))'),
            b'* LIST (\\HasNoChildren) "/" INBOX\r\na OK LIST completed\r\n',
        )

    def test_storeFailure(self) -> None:
        """
        When the store cannot list the folders, LIST fails with a
        temporary failure.
        """
        c = self.login()
        c.protocol.account.listFolders = lambda: fail(StoreFailed("disk on fire"))
        self.assertEqual(
            c.command(b'a LIST "" *'),
            b"a NO [UNAVAILABLE] Temporary server failure, try again later\r\n",
        )

    def test_selectedState(self) -> None:
        """
        LIST works with a mailbox selected.
        """
        c = self.selected()
        self.assertEqual(
            c.command(b'a LIST "" inbox'),
            b'* LIST (\\HasNoChildren) "/" INBOX\r\na OK LIST completed\r\n',
        )


class SubscriptionsTests(SynchronousTestCase):
    """
    L{subscriptions}: where LIST finds the subscribed names.
    """

    def test_fromStore(self) -> None:
        """
        The store's C{listSubscriptions} gives them, names that are no
        folders included.
        """

        class Account:
            def listSubscriptions(self) -> Deferred[list[str]]:
                return succeed(["ghost", "INBOX"])

        self.assertEqual(
            self.successResultOf(subscriptions(Account(), folderInfos())),  # type: ignore[arg-type]
            ["ghost", "INBOX"],
        )

    def test_fromFolders(self) -> None:
        """
        Without the store's C{listSubscriptions}, the folders listed as
        subscribed are.
        """
        self.assertEqual(
            self.successResultOf(subscriptions(object(), folderInfos())),  # type: ignore[arg-type]
            ["INBOX", "Sent", "a/b/c", "foo/bar"],
        )
