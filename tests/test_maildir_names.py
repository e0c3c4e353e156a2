# -*- test-case-name: tests.test_maildir_names -*-
"""
Tests for L{gomail_twisted.maildir._names}: folder names checked, and
mapped one to one onto Maildir++ directories that stay inside the account.
"""

from __future__ import annotations

import os

from hypothesis import given, reject
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.maildir._names import (
    MAX_DEPTH,
    MAX_DIRECTORY_NAME,
    checkFolderName,
    folderDirectoryName,
    folderNameFromDirectory,
    folderPath,
    isInferior,
    parentNames,
)
from gomail_twisted.maildir.errors import InvalidName, NameTooLong

# A name as given, its canonical form, and its directory.
_GOOD = [
    ("INBOX", "INBOX", ""),
    ("inbox", "INBOX", ""),
    ("Inbox", "INBOX", ""),
    ("iNbOx", "INBOX", ""),
    ("INBOX/x", "INBOX/x", ".INBOX.x"),
    ("inbox/Sub", "INBOX/Sub", ".INBOX.Sub"),
    ("Sent", "Sent", ".Sent"),
    ("sent", "sent", ".sent"),
    ("Sent Messages", "Sent Messages", ".Sent Messages"),
    ("Archive/2024", "Archive/2024", ".Archive.2024"),
    ("Archive/inbox", "Archive/inbox", ".Archive.inbox"),
    ("INBOXES", "INBOXES", ".INBOXES"),
    ("\u0131nbox", "\u0131nbox", ".&ATE-nbox"),
    ("Entw\u00fcrfe", "Entw\u00fcrfe", ".Entw&APw-rfe"),
    (
        "\u53f0\u5317/\u65e5\u672c\u8a9e",
        "\u53f0\u5317/\u65e5\u672c\u8a9e",
        ".&U,BTFw-.&ZeVnLIqe-",
    ),
    ("Tom & Jerry", "Tom & Jerry", ".Tom &- Jerry"),
    ("&", "&", ".&-"),
    ("a-b_c+d,e", "a-b_c+d,e", ".a-b_c+d,e"),
    ("\U0001f600", "\U0001f600", ".&2D3eAA-"),
    ("a~", "a~", ".a~"),
    (" x ", " x ", ". x "),
    ("\\", "\\", ".\\"),
    (
        "/".join("abcdefghijklmnop"),
        "/".join("abcdefghijklmnop"),
        ".a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p",
    ),
    ("x" * 254, "x" * 254, "." + "x" * 254),
]

# Names refused, each with why.
_INVALID = [
    ("", "empty"),
    ("/", "only a separator"),
    ("/a", "leading separator"),
    ("a/", "trailing separator"),
    ("a//b", "doubled separator"),
    ("INBOX/", "trailing separator after INBOX"),
    (".", "a dot"),
    ("..", "a dot-dot level"),
    ("../x", "a dot-dot level"),
    ("a/../b", "a dot-dot level"),
    ("a/..", "a dot-dot level"),
    (".Sent", "a leading dot"),
    ("a.b", "a dot inside"),
    ("a.", "a trailing dot"),
    ("%", "a wildcard"),
    ("a%b", "a wildcard"),
    ("*", "a wildcard"),
    ("a/*", "a wildcard"),
    ("~", "a tilde first"),
    ("~root", "a tilde first"),
    ("a/~b", "a tilde first in a level"),
    ("a\ud800", "a lone surrogate"),
    ("\udfff", "a lone surrogate"),
] + [
    (f"a{chr(code)}b", f"control character U+{code:04X}")
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]
]

# Directory entries of an account's root that are not folders.
_NOT_FOLDERS = [
    "",
    "cur",
    "new",
    "tmp",
    "dovecot-uidlist",
    "dovecot.index.log",
    "subscriptions",
    "Sent",
    ".",
    "..",
    "...",
    ".a..b",
    ".a.",
    "..a",
    ".INBOX",
    ".inbox",
    ".Inbox",
    ".inbox.x",
    ".Entw\u00fcrfe",
    ".&AGE-",
    ".&AOk-&AOk-",
    ".&Jjo",
    ".Tom & Jerry",
    ".%",
    ".a*",
    ".a\x01",
    ".~a",
    ".a.~b",
    "." + "x" * 255,
    "." + ".".join("x" * (MAX_DEPTH + 1)),
]

# Any text at all: the names a client might send.
_ANY = st.text(
    st.one_of(st.sampled_from("/.~&%*-"), st.characters()),
    max_size=40,
)

# Names that should be accepted: levels of allowed characters.
_LEVEL = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="/.%*",
        min_codepoint=0x20,
    ).filter(lambda c: not "\x7f" <= c <= "\x9f"),
    min_size=1,
    max_size=12,
).filter(lambda level: not level.startswith("~"))
_VALID = st.lists(_LEVEL, min_size=1, max_size=MAX_DEPTH).map("/".join)


class CheckFolderNameTests(SynchronousTestCase):
    """
    L{checkFolderName} gives the canonical form of a good name and refuses
    every other.
    """

    def test_good(self) -> None:
        """
        Each good name of the table has its canonical form.
        """
        for name, canonical, _ in _GOOD:
            with self.subTest(name=name):
                self.assertEqual(checkFolderName(name), canonical)

    def test_invalid(self) -> None:
        """
        Each name of the table is refused with L{InvalidName} and a reason.
        """
        for name, why in _INVALID:
            with self.subTest(name=name, why=why):
                error = self.assertRaises(InvalidName, checkFolderName, name)
                self.assertNotIsInstance(error, NameTooLong)
                self.assertTrue(str(error))

    def test_reasons(self) -> None:
        """
        The reason names what is wrong.
        """
        cases = [
            ("", "empty"),
            ("a.b", "dot"),
            ("a//b", "empty level"),
            ("a%", "wildcard %"),
            ("a\x00", "U+0000"),
            ("a\x85", "U+0085"),
            ("a\udc80", "surrogate"),
            ("~x", "~"),
        ]
        for name, reason in cases:
            with self.subTest(name=name):
                error = self.assertRaises(InvalidName, checkFolderName, name)
                self.assertIn(reason, str(error))

    def test_tooDeep(self) -> None:
        """
        A name of more than L{MAX_DEPTH} levels is too long.
        """
        checkFolderName("/".join("x" * MAX_DEPTH))
        self.assertRaises(NameTooLong, checkFolderName, "/".join("x" * (MAX_DEPTH + 1)))

    def test_tooLong(self) -> None:
        """
        A name whose directory name passes L{MAX_DIRECTORY_NAME} bytes is
        too long, counted after encoding.
        """
        checkFolderName("x" * (MAX_DIRECTORY_NAME - 1))
        cases = [
            "x" * MAX_DIRECTORY_NAME,
            "a/" + "x" * (MAX_DIRECTORY_NAME - 2),
            # 60 characters, 4 bytes of UTF-16 each: 320 bytes of BASE64.
            "\U0001f600" * 60,
        ]
        for name in cases:
            with self.subTest(name=name):
                self.assertRaises(NameTooLong, checkFolderName, name)

    @given(_ANY)
    def test_canonicalIsStable(self, name: str) -> None:
        """
        A canonical name is its own canonical form.
        """
        try:
            canonical = checkFolderName(name)
        except InvalidName:
            return
        self.assertEqual(checkFolderName(canonical), canonical)


class FolderDirectoryNameTests(SynchronousTestCase):
    """
    L{folderDirectoryName} and L{folderNameFromDirectory} map names to
    Maildir++ directories and back, one to one.
    """

    def test_good(self) -> None:
        """
        Each canonical name of the table has its directory, and the
        directory gives the name back.
        """
        for _, canonical, directory in _GOOD:
            with self.subTest(name=canonical):
                self.assertEqual(folderDirectoryName(canonical), directory)
                if directory:
                    self.assertEqual(folderNameFromDirectory(directory), canonical)

    def test_dovecotAndMutt(self) -> None:
        """
        The directories that Dovecot (Maildir++ layout) and mutt create
        are read as their folders.
        """
        cases = {
            ".Sent": "Sent",
            ".Drafts": "Drafts",
            ".Trash": "Trash",
            ".Junk": "Junk",
            ".Sent Messages": "Sent Messages",
            ".Archive.2024": "Archive/2024",
            ".INBOX.Lists": "INBOX/Lists",
            ".Entw&APw-rfe": "Entw\u00fcrfe",
            ".&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-": (
                "\u041e\u0442\u043f\u0440\u0430\u0432\u043b\u0435\u043d"
                "\u043d\u044b\u0435"
            ),
        }
        for directory, name in cases.items():
            with self.subTest(directory=directory):
                self.assertEqual(folderNameFromDirectory(directory), name)

    def test_notFolders(self) -> None:
        """
        Each entry of the table is not a folder.
        """
        for directory in _NOT_FOLDERS:
            with self.subTest(directory=directory):
                self.assertIsNone(folderNameFromDirectory(directory))

    @given(_VALID)
    def test_roundTrip(self, name: str) -> None:
        """
        Any valid name goes to its directory and back unchanged.
        """
        try:
            canonical = checkFolderName(name)
        except NameTooLong:
            reject()
        directory = folderDirectoryName(canonical)
        if canonical == "INBOX":
            self.assertEqual(directory, "")
        else:
            self.assertEqual(folderNameFromDirectory(directory), canonical)

    @given(_ANY)
    def test_staysInside(self, name: str) -> None:
        """
        Whatever name is accepted, its directory joined to the account's
        root is the root or an entry directly in it.
        """
        try:
            canonical = checkFolderName(name)
        except InvalidName:
            return
        root = os.path.normpath("/srv/mail/alice")
        joined = os.path.normpath(os.path.join(root, folderDirectoryName(canonical)))
        if canonical == "INBOX":
            self.assertEqual(joined, root)
        else:
            self.assertEqual(os.path.dirname(joined), root)
            self.assertTrue(os.path.basename(joined).startswith("."))
            self.assertNotIn(os.path.basename(joined), (".", ".."))

    @given(st.text(st.sampled_from(".&-AOkSentx/ \x00"), max_size=20))
    def test_fromDirectoryIsOneToOne(self, directory: str) -> None:
        """
        A directory read as a folder is the one directory of that folder.
        """
        name = folderNameFromDirectory(directory)
        if name is not None:
            self.assertEqual(checkFolderName(name), name)
            self.assertEqual(folderDirectoryName(name), directory)


class FolderPathTests(SynchronousTestCase):
    """
    L{folderPath} checks a name and gives its directory in the account.
    """

    def test_paths(self) -> None:
        """
        INBOX is the root; other folders are entries directly in it.
        """
        root = os.path.join("srv", "alice")
        self.assertEqual(folderPath(root, "inbox"), root)
        self.assertEqual(folderPath(root, "Sent"), os.path.join(root, ".Sent"))
        self.assertEqual(
            folderPath(root, "inbox/Entw\u00fcrfe"),
            os.path.join(root, ".INBOX.Entw&APw-rfe"),
        )

    def test_refused(self) -> None:
        """
        A name L{checkFolderName} refuses is refused the same way.
        """
        self.assertRaises(InvalidName, folderPath, "/srv/alice", "../bob")
        self.assertRaises(NameTooLong, folderPath, "/srv/alice", "x" * 300)


class HierarchyTests(SynchronousTestCase):
    """
    L{parentNames} and L{isInferior} follow the C{/} hierarchy.
    """

    def test_parentNames(self) -> None:
        """
        The ancestors are listed from the top.
        """
        self.assertEqual(parentNames("Sent"), [])
        self.assertEqual(parentNames("INBOX"), [])
        self.assertEqual(parentNames("a/b"), ["a"])
        self.assertEqual(parentNames("a/b/c"), ["a", "a/b"])
        self.assertEqual(parentNames("INBOX/x/y"), ["INBOX", "INBOX/x"])

    def test_isInferior(self) -> None:
        """
        A folder is inferior to each of its ancestors, and to nothing else.
        """
        self.assertTrue(isInferior("a/b", "a"))
        self.assertTrue(isInferior("a/b/c", "a"))
        self.assertTrue(isInferior("a/b/c", "a/b"))
        self.assertFalse(isInferior("a", "a"))
        self.assertFalse(isInferior("ab/c", "a"))
        self.assertFalse(isInferior("a", "a/b"))
