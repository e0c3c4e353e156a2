# -*- test-case-name: tests.test_imap4_parse -*-
"""
Tests for L{gomail_twisted.imap4._parse}: IMAP4rev1 commands as RFC 3501 9
and its extensions write them, parsed into the values of
L{gomail_twisted.imap4._commands}, and everything else refused with a
precise L{ParseError}.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4._commands import (
    MAX_NUMBER,
    STAR,
    Append,
    Arguments,
    Authenticate,
    BodySection,
    Command,
    Enable,
    Expunge,
    Fetch,
    FetchAttribute,
    FetchItem,
    Id,
    ListMailboxes,
    Login,
    Mailbox,
    ParseError,
    Rename,
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchRecent,
    SearchSequence,
    SearchSize,
    SearchText,
    Select,
    SequenceSet,
    Status,
    Store,
    Transfer,
)
from gomail_twisted.imap4._parse import (
    MAX_DEPTH,
    announcedLiteral,
    appendMessageNext,
    parseCommand,
)
from gomail_twisted.maildir.interfaces import FlagChange

_UTC = datetime.timezone.utc


def parse(
    *lines: bytes, literals: Sequence[object] = (), utf8: bool = False
) -> Command:
    """
    Parse a command given as its lines and literals.
    """
    return parseCommand(list(lines), list(literals), utf8=utf8)


def cmd(name: str, arguments: Arguments = None, uid: bool = False) -> Command:
    """
    The command tagged C{a1}.
    """
    return Command("a1", name, arguments, uid)


def seq(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


ONE = seq((1, 1))

# Commands on one line, and the values they give.
_VALID: list[tuple[bytes, Command]] = [
    (b"a1 CAPABILITY", cmd("CAPABILITY")),
    (b"a1 capability", cmd("CAPABILITY")),
    (b"a1 NOOP", cmd("NOOP")),
    (b"a1 LOGOUT", cmd("LOGOUT")),
    (b"a1 STARTTLS", cmd("STARTTLS")),
    (b"a1 CHECK", cmd("CHECK")),
    (b"a1 Close", cmd("CLOSE")),
    (b"a1 EXPUNGE", cmd("EXPUNGE")),
    (b"a1 UNSELECT", cmd("UNSELECT")),
    (b"a1 IDLE", cmd("IDLE")),
    (b"a1 NAMESPACE", cmd("NAMESPACE")),
    # Tags: any ASTRING-CHAR but "+", "]" included.
    (b"A.b-c]1 NOOP", Command("A.b-c]1", "NOOP")),
    # AUTHENTICATE, with SASL-IR.
    (b"a1 AUTHENTICATE plain", cmd("AUTHENTICATE", Authenticate("PLAIN", None))),
    (
        b"a1 AUTHENTICATE PLAIN AGJvYgBwdw==",
        cmd("AUTHENTICATE", Authenticate("PLAIN", b"AGJvYgBwdw==")),
    ),
    (
        b"a1 AUTHENTICATE EXTERNAL =",
        cmd("AUTHENTICATE", Authenticate("EXTERNAL", b"=")),
    ),
    (b"a1 AUTHENTICATE X YWJj", cmd("AUTHENTICATE", Authenticate("X", b"YWJj"))),
    (b"a1 AUTHENTICATE X YWI=", cmd("AUTHENTICATE", Authenticate("X", b"YWI="))),
    # LOGIN.
    (b"a1 LOGIN bob secret", cmd("LOGIN", Login("bob", "secret"))),
    (b'a1 login "bob" "s p\\"\\\\"', cmd("LOGIN", Login("bob", 's p"\\'))),
    (b'a1 LOGIN "" ""', cmd("LOGIN", Login("", ""))),
    (b"a1 LOGIN b]ob pa[ss", cmd("LOGIN", Login("b]ob", "pa[ss"))),
    # SELECT, EXAMINE.
    (b"a1 SELECT INBOX", cmd("SELECT", Select("INBOX", False))),
    (b"a1 select inbox", cmd("SELECT", Select("INBOX", False))),
    (b"a1 SELECT InBoX", cmd("SELECT", Select("INBOX", False))),
    (b"a1 SELECT INBOX (condstore)", cmd("SELECT", Select("INBOX", False, True))),
    (b"a1 EXAMINE Sent", cmd("EXAMINE", Select("Sent", True))),
    (
        b"a1 EXAMINE Sent (CONDSTORE)",
        cmd("EXAMINE", Select("Sent", True, True)),
    ),
    (b"a1 SELECT [Gmail]/Sent", cmd("SELECT", Select("[Gmail]/Sent", False))),
    # CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, RENAME.
    (b"a1 CREATE Work/Projects", cmd("CREATE", Mailbox("Work/Projects"))),
    (b'a1 DELETE "My Folder"', cmd("DELETE", Mailbox("My Folder"))),
    (b"a1 SUBSCRIBE Entw&APw-rfe", cmd("SUBSCRIBE", Mailbox("Entw\u00fcrfe"))),
    (b"a1 UNSUBSCRIBE inbox", cmd("UNSUBSCRIBE", Mailbox("INBOX"))),
    (b"a1 RENAME a b", cmd("RENAME", Rename("a", "b"))),
    (b'a1 RENAME "a b" "Tom &- Jerry"', cmd("RENAME", Rename("a b", "Tom & Jerry"))),
    # INBOX is canonical only as the whole name.
    (b"a1 CREATE inbox/Sub", cmd("CREATE", Mailbox("inbox/Sub"))),
    (b"a1 CREATE INBOXES", cmd("CREATE", Mailbox("INBOXES"))),
    # LIST and LSUB.
    (b'a1 LIST "" *', cmd("LIST", ListMailboxes("", ("*",)))),
    (b'a1 list "" ""', cmd("LIST", ListMailboxes("", ("",)))),
    (b"a1 LIST ~/Mail %", cmd("LIST", ListMailboxes("~/Mail", ("%",)))),
    (b'a1 LIST "" %/]x*', cmd("LIST", ListMailboxes("", ("%/]x*",)))),
    (b'a1 LIST "" inbox', cmd("LIST", ListMailboxes("", ("INBOX",)))),
    (
        b'a1 LIST "" Entw&APw-rfe/*',
        cmd("LIST", ListMailboxes("", ("Entw\u00fcrfe/*",))),
    ),
    # Not modified UTF-7: kept as written.
    (b'a1 LIST "" &*', cmd("LIST", ListMailboxes("", ("&*",)))),
    (
        b'a1 LIST () "" *',
        cmd("LIST", ListMailboxes("", ("*",), extended=True)),
    ),
    (
        b'a1 LIST (subscribed RECURSIVEMATCH) "" %',
        cmd(
            "LIST",
            ListMailboxes(
                "",
                ("%",),
                selection=frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
                extended=True,
            ),
        ),
    ),
    (
        b'a1 LIST (REMOTE SPECIAL-USE) "" *',
        cmd(
            "LIST",
            ListMailboxes(
                "",
                ("*",),
                selection=frozenset({"REMOTE", "SPECIAL-USE"}),
                extended=True,
            ),
        ),
    ),
    (
        b'a1 LIST "" (INBOX "Sent" %/%)',
        cmd("LIST", ListMailboxes("", ("INBOX", "Sent", "%/%"), extended=True)),
    ),
    (
        b'a1 LIST "" % RETURN ()',
        cmd("LIST", ListMailboxes("", ("%",), extended=True)),
    ),
    (
        b'a1 LIST "" % return (children SUBSCRIBED special-use)',
        cmd(
            "LIST",
            ListMailboxes(
                "",
                ("%",),
                returns=frozenset({"CHILDREN", "SUBSCRIBED", "SPECIAL-USE"}),
                extended=True,
            ),
        ),
    ),
    (
        b'a1 LIST "" % RETURN (STATUS (MESSAGES unseen SIZE))',
        cmd(
            "LIST",
            ListMailboxes(
                "",
                ("%",),
                returns=frozenset({"STATUS"}),
                statusItems=("MESSAGES", "UNSEEN", "SIZE"),
                extended=True,
            ),
        ),
    ),
    (b'a1 LSUB "" *', cmd("LSUB", ListMailboxes("", ("*",), lsub=True))),
    (b"a1 lsub Work %", cmd("LSUB", ListMailboxes("Work", ("%",), lsub=True))),
    # STATUS.
    (
        b"a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
        cmd(
            "STATUS",
            Status("INBOX", ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")),
        ),
    ),
    (
        b"a1 STATUS Sent (highestmodseq size messages)",
        cmd("STATUS", Status("Sent", ("HIGHESTMODSEQ", "SIZE", "MESSAGES"))),
    ),
    # COPY, MOVE, UID forms, UID EXPUNGE.
    (b"a1 COPY 1:3 Trash", cmd("COPY", Transfer(seq((1, 3)), "Trash"))),
    (b"a1 MOVE * Trash", cmd("MOVE", Transfer(seq((STAR, STAR)), "Trash"))),
    (b"a1 UID COPY 5 Trash", cmd("COPY", Transfer(seq((5, 5)), "Trash"), True)),
    (b"a1 uid move 4:2 Junk", cmd("MOVE", Transfer(seq((4, 2)), "Junk"), True)),
    (b"a1 UID EXPUNGE 3:*", cmd("EXPUNGE", Expunge(seq((3, STAR))), True)),
    # STORE.
    (
        b"a1 STORE 1 FLAGS (\\Seen)",
        cmd("STORE", Store(ONE, FlagChange.REPLACE, False, ("\\Seen",))),
    ),
    (
        b"a1 STORE 1 FLAGS ()",
        cmd("STORE", Store(ONE, FlagChange.REPLACE, False, ())),
    ),
    (
        b"a1 STORE 1 +FLAGS.SILENT (\\DELETED $Junk)",
        cmd("STORE", Store(ONE, FlagChange.ADD, True, ("\\Deleted", "$Junk"))),
    ),
    (
        b"a1 STORE 1:* -flags \\seen \\answered \\FLAGGED \\draft Work",
        cmd(
            "STORE",
            Store(
                seq((1, STAR)),
                FlagChange.REMOVE,
                False,
                ("\\Seen", "\\Answered", "\\Flagged", "\\Draft", "Work"),
            ),
        ),
    ),
    (
        b"a1 STORE 2 -FLAGS.SILENT Work",
        cmd("STORE", Store(seq((2, 2)), FlagChange.REMOVE, True, ("Work",))),
    ),
    (
        b"a1 STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS (\\Seen)",
        cmd("STORE", Store(ONE, FlagChange.ADD, False, ("\\Seen",), 320162338)),
    ),
    (
        b"a1 UID STORE 7 (unchangedsince 0) FLAGS.SILENT ()",
        cmd("STORE", Store(seq((7, 7)), FlagChange.REPLACE, True, (), 0), True),
    ),
    # ENABLE, ID.
    (b"a1 ENABLE CONDSTORE", cmd("ENABLE", Enable(("CONDSTORE",)))),
    (
        b"a1 ENABLE utf8=accept condstore X-Y",
        cmd("ENABLE", Enable(("UTF8=ACCEPT", "CONDSTORE", "X-Y"))),
    ),
    (b"a1 ID NIL", cmd("ID", Id(None))),
    (b"a1 ID nil", cmd("ID", Id(None))),
    (b"a1 ID ()", cmd("ID", Id(()))),
    (
        b'a1 ID ("name" "sodr" "version" "19.34" "vendor" NIL)',
        cmd(
            "ID",
            Id((("name", "sodr"), ("version", "19.34"), ("vendor", None))),
        ),
    ),
    # FETCH and SEARCH: see their own tables below.
    (b"a1 FETCH 1 UID", cmd("FETCH", Fetch(ONE, (FetchAttribute("UID"),)))),
    (b"a1 SEARCH ALL", cmd("SEARCH", Search(SearchAll()))),
    (b"a1 UID SEARCH ALL", cmd("SEARCH", Search(SearchAll()), True)),
    (
        b"a1 UID FETCH 1:* (FLAGS)",
        cmd("FETCH", Fetch(seq((1, STAR)), (FetchAttribute("FLAGS"),)), True),
    ),
]


def _flagsAppend(
    mailbox: str, flags: tuple[str, ...], date: datetime.datetime | None
) -> Command:
    return cmd("APPEND", Append(mailbox, flags, date, b"Subject: x\r\n\r\n"))


_TZ = datetime.timezone(datetime.timedelta(hours=-7))

# APPEND, its message as a literal.
_APPENDS: list[tuple[bytes, Command]] = [
    (b"a1 APPEND INBOX", _flagsAppend("INBOX", (), None)),
    (b"a1 APPEND inbox ()", _flagsAppend("INBOX", (), None)),
    (
        b"a1 APPEND Sent (\\Seen \\draft $Sent)",
        _flagsAppend("Sent", ("\\Seen", "\\Draft", "$Sent"), None),
    ),
    (
        b'a1 APPEND Sent "17-Jul-1996 02:44:25 -0700"',
        _flagsAppend("Sent", (), datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=_TZ)),
    ),
    (
        b'a1 APPEND Sent (\\Seen) " 7-jul-1996 02:44:25 +0000"',
        _flagsAppend(
            "Sent", ("\\Seen",), datetime.datetime(1996, 7, 7, 2, 44, 25, tzinfo=_UTC)
        ),
    ),
    (
        b'a1 APPEND Sent "7-Jul-1996 23:59:59 +0130"',
        _flagsAppend(
            "Sent",
            (),
            datetime.datetime(
                1996,
                7,
                7,
                23,
                59,
                59,
                tzinfo=datetime.timezone(datetime.timedelta(hours=1, minutes=30)),
            ),
        ),
    ),
]

# Search keys, alone after SEARCH, and their values.
_DATE = datetime.date(2024, 2, 29)
_SEARCH_KEYS: list[tuple[bytes, SearchKey]] = [
    (b"ALL", SearchAll()),
    (b"ANSWERED", SearchFlag("\\Answered", True)),
    (b"DELETED", SearchFlag("\\Deleted", True)),
    (b"DRAFT", SearchFlag("\\Draft", True)),
    (b"FLAGGED", SearchFlag("\\Flagged", True)),
    (b"SEEN", SearchFlag("\\Seen", True)),
    (b"UNANSWERED", SearchFlag("\\Answered", False)),
    (b"UNDELETED", SearchFlag("\\Deleted", False)),
    (b"UNDRAFT", SearchFlag("\\Draft", False)),
    (b"UNFLAGGED", SearchFlag("\\Flagged", False)),
    (b"unseen", SearchFlag("\\Seen", False)),
    (b"RECENT", SearchRecent(True)),
    (b"OLD", SearchRecent(False)),
    (b"NEW", SearchAnd((SearchRecent(True), SearchFlag("\\Seen", False)))),
    (b"KEYWORD $Junk", SearchFlag("$Junk", True)),
    (b"UNKEYWORD Work", SearchFlag("Work", False)),
    (b"FROM alice", SearchHeader("From", "alice")),
    (b'TO "bob smith"', SearchHeader("To", "bob smith")),
    (b"CC carol", SearchHeader("Cc", "carol")),
    (b"BCC dave", SearchHeader("Bcc", "dave")),
    (b'SUBJECT ""', SearchHeader("Subject", "")),
    (b"HEADER X-Spam yes", SearchHeader("X-Spam", "yes")),
    (b'header "List-Id" ""', SearchHeader("List-Id", "")),
    (b"BODY hello", SearchText("hello", False)),
    (b"TEXT hello", SearchText("hello", True)),
    (b"BEFORE 29-Feb-2024", SearchDate(False, "before", _DATE)),
    (b"ON 29-feb-2024", SearchDate(False, "on", _DATE)),
    (b'SINCE "29-FEB-2024"', SearchDate(False, "since", _DATE)),
    (b"SENTBEFORE 1-Jan-2000", SearchDate(True, "before", datetime.date(2000, 1, 1))),
    (b"SENTON 01-Jan-2000", SearchDate(True, "on", datetime.date(2000, 1, 1))),
    (b'SENTSINCE "9-Dec-1999"', SearchDate(True, "since", datetime.date(1999, 12, 9))),
    (b"LARGER 1000", SearchSize(True, 1000)),
    (b"SMALLER 0", SearchSize(False, 0)),
    (b"UID 1:*", SearchSequence(seq((1, STAR)), True)),
    (b"uid 5,7:9", SearchSequence(seq((5, 5), (7, 9)), True)),
    (b"1:3", SearchSequence(seq((1, 3)), False)),
    (b"*", SearchSequence(seq((STAR, STAR)), False)),
    (b"NOT SEEN", SearchNot(SearchFlag("\\Seen", True))),
    (
        b"OR SEEN FLAGGED",
        SearchOr(SearchFlag("\\Seen", True), SearchFlag("\\Flagged", True)),
    ),
    (b"(SEEN)", SearchFlag("\\Seen", True)),
    (
        b"(SEEN UNFLAGGED)",
        SearchAnd((SearchFlag("\\Seen", True), SearchFlag("\\Flagged", False))),
    ),
    (b"((ALL))", SearchAll()),
    (b"MODSEQ 620162338", SearchModSeq(620162338)),
    (b"MODSEQ 0", SearchModSeq(0)),
    (b'MODSEQ "/flags/\\\\draft" all 620162338', SearchModSeq(620162338)),
    (b'MODSEQ "/flags/$Work" PRIV 7', SearchModSeq(7)),
    (b'MODSEQ "/flags/$Work" shared 9223372036854775807', SearchModSeq(2**63 - 1)),
    (
        b"OR (FROM a SEEN) NOT OR 1 2",
        SearchOr(
            SearchAnd((SearchHeader("From", "a"), SearchFlag("\\Seen", True))),
            SearchNot(
                SearchOr(SearchSequence(ONE, False), SearchSequence(seq((2, 2)), False))
            ),
        ),
    ),
]

# FETCH items, and the values they give.
_FLAGS = FetchAttribute("FLAGS")
_FETCH_ITEMS: list[tuple[bytes, tuple[FetchItem, ...]]] = [
    (
        b"ALL",
        (
            _FLAGS,
            FetchAttribute("INTERNALDATE"),
            FetchAttribute("RFC822.SIZE"),
            FetchAttribute("ENVELOPE"),
        ),
    ),
    (b"fast", (_FLAGS, FetchAttribute("INTERNALDATE"), FetchAttribute("RFC822.SIZE"))),
    (
        b"FULL",
        (
            _FLAGS,
            FetchAttribute("INTERNALDATE"),
            FetchAttribute("RFC822.SIZE"),
            FetchAttribute("ENVELOPE"),
            FetchAttribute("BODY"),
        ),
    ),
    (b"ENVELOPE", (FetchAttribute("ENVELOPE"),)),
    (b"flags", (_FLAGS,)),
    (b"INTERNALDATE", (FetchAttribute("INTERNALDATE"),)),
    (b"RFC822", (FetchAttribute("RFC822"),)),
    (b"RFC822.HEADER", (FetchAttribute("RFC822.HEADER"),)),
    (b"rfc822.size", (FetchAttribute("RFC822.SIZE"),)),
    (b"RFC822.TEXT", (FetchAttribute("RFC822.TEXT"),)),
    (b"BODY", (FetchAttribute("BODY"),)),
    (b"BODYSTRUCTURE", (FetchAttribute("BODYSTRUCTURE"),)),
    (b"UID", (FetchAttribute("UID"),)),
    (b"MODSEQ", (FetchAttribute("MODSEQ"),)),
    (b"BODY[]", (BodySection(False),)),
    (b"body.peek[]", (BodySection(True),)),
    (b"BODY[HEADER]", (BodySection(False, (), "HEADER"),)),
    (b"BODY[text]", (BodySection(False, (), "TEXT"),)),
    (b"BODY[1]", (BodySection(False, (1,)),)),
    (b"BODY[1.2.3]", (BodySection(False, (1, 2, 3)),)),
    (b"BODY[1.MIME]", (BodySection(False, (1,), "MIME"),)),
    (b"BODY[4.2.HEADER]", (BodySection(False, (4, 2), "HEADER"),)),
    (b"BODY[3.TEXT]", (BodySection(False, (3,), "TEXT"),)),
    (
        b'BODY.PEEK[HEADER.FIELDS (From to "Subject")]',
        (BodySection(True, (), "HEADER.FIELDS", ("FROM", "TO", "SUBJECT")),),
    ),
    (
        b"BODY[2.header.fields.not (X-Priority)]",
        (BodySection(False, (2,), "HEADER.FIELDS.NOT", ("X-PRIORITY",)),),
    ),
    (b"BODY[]<0.2048>", (BodySection(False, partial=(0, 2048)),)),
    (
        b"BODY.PEEK[1.TEXT]<4294967295.4294967295>",
        (BodySection(True, (1,), "TEXT", partial=(MAX_NUMBER, MAX_NUMBER)),),
    ),
    (
        b"(UID FLAGS BODY.PEEK[HEADER] MODSEQ)",
        (
            FetchAttribute("UID"),
            _FLAGS,
            BodySection(True, (), "HEADER"),
            FetchAttribute("MODSEQ"),
        ),
    ),
    (b"(FLAGS)", (_FLAGS,)),
]

# Commands refused: the lines, the tag in the error, a piece of its text,
# and its response code.
_INVALID: list[tuple[bytes, str | None, str, str | None]] = [
    (b"", None, "Missing tag", None),
    (b" NOOP", None, "Missing tag", None),
    (b"+ NOOP", None, "Invalid tag: +", None),
    (b"a+b NOOP", None, "Invalid tag: a+b", None),
    (b"* NOOP", None, "Invalid tag: *", None),
    (b"a(1 NOOP", None, "Invalid tag", None),
    (b'"a" NOOP', None, "Invalid tag", None),
    (b"a\x01 NOOP", None, "Invalid tag: a?", None),
    (b"a1", "a1", "Missing command", None),
    (b"a1 ", "a1", "Missing command", None),
    (b"a1  NOOP", "a1", "Invalid command:  NOOP", None),
    (b"a1 FOO", "a1", "Unknown command FOO", None),
    (b"a1 X-FOO bar", "a1", "Unknown command X-FOO", None),
    (b"a1 UID", "a1", "Missing command after UID", None),
    (b"a1 UID LOGIN a b", "a1", "UID cannot be used with LOGIN", None),
    (b"a1 UID UID FETCH 1 UID", "a1", "UID cannot be used with UID", None),
    # Commands without arguments.
    (b"a1 NOOP x", "a1", "Unexpected characters after command: x", None),
    (b"a1 NOOP ", "a1", "Unexpected characters after command:  ", None),
    (b"a1 CAPABILITY(", "a1", "Unexpected characters after command: (", None),
    (b"a1 IDLE DONE", "a1", "Unexpected characters after command: DONE", None),
    # Quoted strings.
    (b'a1 LOGIN "bob', "a1", "Unterminated quoted string", None),
    (b'a1 LOGIN "b\\ob" x', "a1", "Invalid escape in quoted string", None),
    (b'a1 LOGIN "b\rob" x', "a1", "Invalid character in quoted string", None),
    (b'a1 LOGIN "b\x00ob" x', "a1", "Invalid character in quoted string", None),
    (b'a1 LOGIN "\xc3\xa9" x', "a1", "8-bit characters in quoted string", None),
    (b"a1 LOGIN bob", "a1", "Missing password", None),
    (b"a1 LOGIN bob ", "a1", "Missing password", None),
    (b"a1 LOGIN", "a1", "Missing user name", None),
    (b"a1 LOGIN  bob x", "a1", "Invalid user name:  bob x", None),
    (b'a1 LOGIN bob"x" y', "a1", 'Expected a space before password: "x" y', None),
    (b"a1 LOGIN bob x y", "a1", "Unexpected characters after command: y", None),
    (b"a1 LOGIN b%b x", "a1", "Expected a space before password: %b x", None),
    # AUTHENTICATE.
    (b"a1 AUTHENTICATE", "a1", "Missing mechanism", None),
    (b"a1 AUTHENTICATE PLAIN ", "a1", "Missing initial response", None),
    (b"a1 AUTHENTICATE PLAIN abc", "a1", "Invalid initial response: abc", None),
    (b"a1 AUTHENTICATE PLAIN ab=c", "a1", "Invalid initial response", None),
    (b"a1 AUTHENTICATE PLAIN ==", "a1", "Invalid initial response", None),
    (b"a1 AUTHENTICATE PLAIN a*", "a1", "Invalid initial response: a*", None),
    # Mailbox names.
    (b"a1 SELECT", "a1", "Missing mailbox name", None),
    (b"a1 SELECT ", "a1", "Missing mailbox name", None),
    (b"a1 SELECT &Jjo", "a1", "Mailbox name is not valid modified UTF-7", None),
    (b"a1 SELECT a&AOk-&AOk-", "a1", "not valid modified UTF-7", None),
    (b"a1 SELECT &AAA-", "a1", "Mailbox name contains NUL, CR or LF", None),
    (b"a1 SELECT a&AA0-b", "a1", "Mailbox name contains NUL, CR or LF", None),
    (b"a1 SELECT a%", "a1", "Unexpected characters after command: %", None),
    (b"a1 SELECT a*", "a1", "Unexpected characters after command: *", None),
    (b"a1 SELECT INBOX (QRESYNC)", "a1", "Unknown parameter QRESYNC", None),
    (b"a1 SELECT INBOX ()", "a1", "Invalid parameter: )", None),
    (b"a1 SELECT INBOX (CONDSTORE", "a1", 'Missing ")"', None),
    (b"a1 RENAME a", "a1", "Missing new mailbox name", None),
    (b"a1 RENAME a &", "a1", "New mailbox name is not valid modified UTF-7", None),
    (b"a1 CREATE a (USE (\\Drafts))", "a1", "Unexpected characters after", None),
    # LIST, LSUB.
    (b"a1 LIST", "a1", "Missing reference", None),
    (b'a1 LIST ""', "a1", "Missing mailbox pattern", None),
    (b'a1 LIST "" a\x00', "a1", "Unexpected characters after command: ?", None),
    (b'a1 LIST "\xff" *', "a1", "8-bit characters in quoted string", None),
    (b'a1 LIST (FOO) "" *', "a1", "Unknown selection option FOO", None),
    (b'a1 LIST (RECURSIVEMATCH) "" *', "a1", "RECURSIVEMATCH needs another", None),
    (b'a1 LIST (RECURSIVEMATCH REMOTE) "" *', "a1", "RECURSIVEMATCH needs", None),
    (b'a1 LIST "" ()', "a1", "Invalid mailbox pattern: )", None),
    (b'a1 LIST "" % FOO ()', "a1", "Expected RETURN instead of: FOO", None),
    (b'a1 LIST "" % RETURN (MYRIGHTS)', "a1", "Unknown return option MYRIGHTS", None),
    (b'a1 LIST "" % RETURN (STATUS ())', "a1", "Invalid status item: ))", None),
    (
        b'a1 LIST "" % RETURN (STATUS (DELETED))',
        "a1",
        "Unknown STATUS item DELETED",
        None,
    ),
    (b'a1 LIST "" % RETURN (CHILDREN', "a1", "Missing return option", None),
    (b'a1 LSUB () "" *', "a1", "Invalid reference: () ", None),
    (b'a1 LSUB "" (a b)', "a1", "Invalid mailbox pattern", None),
    (b'a1 LSUB "" * RETURN ()', "a1", "Unexpected characters after command", None),
    # STATUS.
    (b"a1 STATUS INBOX", "a1", "Missing status items", None),
    (b"a1 STATUS INBOX ()", "a1", "Invalid status item: )", None),
    (b"a1 STATUS INBOX (MESSAGES FOO)", "a1", "Unknown STATUS item FOO", None),
    (b"a1 STATUS INBOX MESSAGES", "a1", 'Expected "(" instead of: MESSAGES', None),
    # APPEND (the message literal: see AppendTests).
    (b"a1 APPEND", "a1", "Missing mailbox name", None),
    (b"a1 APPEND INBOX", "a1", "Missing message literal", None),
    (b"a1 APPEND INBOX (\\Seen)", "a1", "Missing message literal", None),
    (b"a1 APPEND INBOX ", "a1", "Missing message literal", None),
    (b'a1 APPEND INBOX "hello"', "a1", "APPEND message must be a literal", None),
    (b"a1 APPEND INBOX hello", "a1", "APPEND message must be a literal", None),
    (b'a1 APPEND INBOX "1-Jan-2020" {1}', "a1", "Invalid date-time", None),
    (b"a1 APPEND INBOX (\\Recent) {1}", "a1", "Flag \\Recent cannot be stored", None),
    # STORE.
    (b"a1 STORE 1", "a1", "Missing STORE item", None),
    (b"a1 STORE 1 FLAGS", "a1", "Missing flags", None),
    (b"a1 STORE 1 FLAGS ", "a1", "Missing flag", None),
    (b"a1 STORE 1 FLAG (\\Seen)", "a1", "Unknown STORE item FLAG", None),
    (b"a1 STORE 1 *FLAGS (\\Seen)", "a1", "Invalid STORE item: *FLAGS", None),
    (b"a1 STORE 1 FLAGS.LOUD (\\Seen)", "a1", "Unknown STORE item FLAGS.LOUD", None),
    (b"a1 STORE 1 FLAGS (\\Recent)", "a1", "Flag \\Recent cannot be stored", None),
    (b"a1 STORE 1 FLAGS \\Foo", "a1", "Flag \\Foo cannot be stored", None),
    (b"a1 STORE 1 FLAGS \\*", "a1", "Invalid flag: \\*", None),
    (b"a1 STORE 1 FLAGS (\\Seen", "a1", 'Missing ")"', None),
    (b"a1 STORE 1 FLAGS (\\Seen  \\Draft)", "a1", "Invalid flag:  \\Draft)", None),
    (b"a1 STORE 1 FLAGS (a]b)", "a1", 'Expected ")" instead of: ]b)', None),
    (b"a1 STORE 1 (FOO 1) FLAGS x", "a1", "Unknown STORE modifier FOO", None),
    (b"a1 STORE 1 (UNCHANGEDSINCE x) FLAGS x", "a1", "Invalid mod-sequence: x)", None),
    (
        b"a1 STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS x",
        "a1",
        "Mod-sequence is too large",
        None,
    ),
    # Sequence sets.
    (b"a1 COPY 0 Trash", "a1", "Invalid sequence set: 0 is not a message number", None),
    (b"a1 COPY 1:0 Trash", "a1", "0 is not a message number", None),
    (b"a1 COPY 1,00 Trash", "a1", "0 is not a message number", None),
    (
        b"a1 COPY 4294967296 Trash",
        "a1",
        "Invalid sequence set: 4294967296 is too",
        None,
    ),
    (b"a1 COPY 99999999999 Trash", "a1", "Invalid sequence set: 99999999999 is", None),
    (b"a1 COPY 1, Trash", "a1", "Invalid sequence set: 1, Trash", None),
    (b"a1 COPY ,1 Trash", "a1", "Invalid sequence set: ,1 Trash", None),
    (b"a1 COPY 1:2:3 Trash", "a1", "Invalid sequence set: 1:2:3 Trash", None),
    (b"a1 COPY 1: Trash", "a1", "Invalid sequence set", None),
    (b"a1 COPY -1 Trash", "a1", "Invalid sequence set", None),
    (b"a1 COPY $ Trash", "a1", "Invalid sequence set: $ Trash", None),
    (b"a1 COPY 1", "a1", "Missing mailbox name", None),
    (b"a1 MOVE", "a1", "Missing sequence set", None),
    (b"a1 UID EXPUNGE", "a1", "Missing sequence set", None),
    # ENABLE, ID.
    (b"a1 ENABLE", "a1", "Missing capability", None),
    (b'a1 ENABLE "CONDSTORE"', "a1", 'Invalid capability: "CONDSTORE"', None),
    (b"a1 ID", "a1", "Missing ID parameters", None),
    (b"a1 ID NILS", "a1", "Invalid ID parameters: NILS", None),
    (b"a1 ID (name x)", "a1", "Invalid ID field: name x)", None),
    (b'a1 ID ("name")', "a1", "Expected a space before ID value: )", None),
    (b'a1 ID ("name" x)', "a1", "Invalid ID value: x)", None),
    (b'a1 ID ("name" "x" )', "a1", "Invalid ID field: )", None),
    (b'a1 ID ("name" "x"', "a1", "Missing ID field", None),
    (
        b"a1 ID (" + b" ".join(b'"f%d" "v"' % i for i in range(31)) + b")",
        "a1",
        "Too many ID fields",
        None,
    ),
    # Literal announcements that do not end a line.
    (b"a1 LOGIN {3}x y", "a1", "Invalid literal: {3}x y", None),
    (b"a1 LOGIN {3", "a1", "Invalid literal: {3", None),
    (b"a1 LOGIN {3}", "a1", "Missing literal data", None),
]

# SEARCH arguments refused.
_INVALID_SEARCH: list[tuple[bytes, str, str | None]] = [
    (b"", "Missing search key", None),
    (b"FOO", "Unknown search key FOO", None),
    (b"ALL FOO", "Unknown search key FOO", None),
    (b"SEEN  ALL", "Invalid search key:  ALL", None),
    (b"SEEN ", "Missing search key", None),
    (b"FROM", "Missing argument of FROM", None),
    (b"FROM ", "Missing search string", None),
    (b"HEADER Subject", "Missing search string", None),
    (b"KEYWORD \\Seen", "Invalid keyword: \\Seen", None),
    (b"BEFORE", "Missing argument of BEFORE", None),
    (b"BEFORE 1-Foo-2020", "Invalid date: 1-Foo-2020", None),
    (b"BEFORE 31-Feb-2020", "Invalid date: 31-Feb-2020", None),
    (b"BEFORE 0-Feb-2020", "Invalid date", None),
    (b"BEFORE 123-Feb-2020", "Invalid date", None),
    (b"BEFORE 1-Feb-20", "Invalid date", None),
    (b"BEFORE 1-Feb-20201", "Invalid date", None),
    (b"BEFORE 1-Feb-0000", "Invalid date", None),
    (b'BEFORE "1-Feb-2020', "Invalid date", None),
    (b'BEFORE 1-Feb-2020"', "Invalid date", None),
    (b"BEFORE 1-Feb-2020x", "Invalid date", None),
    (b"LARGER", "Missing argument of LARGER", None),
    (b"LARGER x", "Invalid size: x", None),
    (b"LARGER 4294967296", "Size is too large: 4294967296", None),
    (b"UID 0", "0 is not a message number", None),
    (b"UID x", "Invalid sequence set: x", None),
    (b"NOT", "Missing argument of NOT", None),
    (b"OR SEEN", "Missing second key of OR", None),
    (b"(SEEN", 'Missing ")"', None),
    (b"(SEEN ALL", 'Missing ")"', None),
    (b"()", "Invalid search key: )", None),
    (b"SEEN)", "Unexpected characters after command: )", None),
    (b"(SEEN))", "Unexpected characters after command: )", None),
    (b"1:3x", "Invalid sequence set: 1:3x", None),
    (b"MODSEQ", "Missing argument of MODSEQ", None),
    (b"MODSEQ x", "Invalid mod-sequence: x", None),
    (b'MODSEQ "/flags/x" all', "Missing mod-sequence", None),
    (b'MODSEQ "/flags/x" mine 5', "Invalid entry type mine", None),
    (b"MODSEQ 9223372036854775808", "Mod-sequence is too large", None),
    (b"CHARSET", "Missing charset", None),
    (b"CHARSET UTF-8", "Missing search key", None),
    (
        b"CHARSET ISO-8859-1 ALL",
        "Unsupported charset ISO-8859-1",
        "BADCHARSET (US-ASCII UTF-8)",
    ),
    (
        b'CHARSET "KOI8-R" ALL',
        "Unsupported charset KOI8-R",
        "BADCHARSET (US-ASCII UTF-8)",
    ),
    (b"CHARSET UTF-8 CHARSET UTF-8 ALL", "Unknown search key CHARSET", None),
    (b'SUBJECT "\xc3\xa9"', "8-bit characters in quoted string", None),
]

# FETCH arguments refused.
_INVALID_FETCH: list[tuple[bytes, str]] = [
    (b"", "Missing sequence set"),
    (b"1", "Missing FETCH attributes"),
    (b"1 ", "Missing FETCH attribute"),
    (b"1 FOO", "Unknown FETCH attribute FOO"),
    (b"1 FLAGS-X", "Unknown FETCH attribute FLAGS-X"),
    (b"1 (FLAGS FOO)", "Unknown FETCH attribute FOO"),
    (b"1 ()", "Invalid FETCH attribute: )"),
    (b"1 (FLAGS", 'Missing ")"'),
    (b"1 (FLAGS  UID)", "Invalid FETCH attribute:  UID)"),
    (b"1 (ALL)", "FETCH macro ALL must stand alone"),
    (b"1 (FLAGS FAST)", "FETCH macro FAST must stand alone"),
    (b"1 ALL FLAGS", 'Expected "(" instead of: FLAGS'),
    (b"1 BINARY[1]", "BINARY is not supported"),
    (b"1 BINARY.PEEK[1]", "BINARY is not supported"),
    (b"1 BINARY.SIZE[1]", "BINARY is not supported"),
    (b"1 BODY.PEEK", "Unknown FETCH attribute BODY.PEEK"),
    (b"1 RFC822[]", "Unknown FETCH attribute RFC822["),
    (b"1 BODY[", 'Missing "]"'),
    (b"1 BODY[0]", "Invalid section part: 0"),
    (b"1 BODY[1.0]", "Invalid section part: 0"),
    (b"1 BODY[4294967296]", "Invalid section part: 4294967296"),
    (b"1 BODY[1.]", "Invalid section: 1.]"),
    (b"1 BODY[.1]", "Invalid section: .1]"),
    (b"1 BODY[MIME]", "Invalid section: MIME]"),
    (b"1 BODY[HEADERS]", "Invalid section: HEADERS]"),
    (b"1 BODY[1HEADER]", 'Expected "]" instead of: HEADER]'),
    (b"1 BODY[HEADER.FIELDS]", "Expected a space before header field list: ]"),
    (b"1 BODY[HEADER.FIELDS ()]", "Invalid header field name: )]"),
    # An astring may hold "]": the name runs on.
    (b"1 BODY[HEADER.FIELDS (From]", "Invalid header field name: From]"),
    (b"1 BODY[HEADER.FIELDS (From)", 'Missing "]"'),
    (b"1 BODY[HEADER.FIELDS (a:b)]", "Invalid header field name: a:b"),
    (b'1 BODY[HEADER.FIELDS ("a b")]', "Invalid header field name: a b"),
    (b"1 BODY[HEADER.FIELDS (]x)]", "Invalid header field name: ]x"),
    (b"1 BODY[TEXT (From)]", 'Expected "]" instead of:  (From)]'),
    (b"1 BODY[]<0>", 'Expected "." instead of: >'),
    (b"1 BODY[]<0.0>", "Invalid partial length: 0"),
    (b"1 BODY[]<.5>", "Invalid partial start: .5>"),
    (b"1 BODY[]<1.5", 'Missing ">"'),
    (b"1 BODY[]<4294967296.5>", "Partial start is too large"),
    (b"1 FLAGS (VANISHED)", "VANISHED is not supported"),
    (b"1 FLAGS (CHANGEDSINCE 5 VANISHED)", "VANISHED is not supported"),
    (b"1 FLAGS (FOO)", "Unknown FETCH modifier FOO"),
    (b"1 FLAGS (CHANGEDSINCE)", "Expected a space before mod-sequence: )"),
    (b"1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "CHANGEDSINCE given twice"),
    (b"1 FLAGS (CHANGEDSINCE 1", 'Missing ")"'),
    (b"1 FLAGS CHANGEDSINCE 1", 'Expected "(" instead of: CHANGEDSINCE 1'),
]


class ParseCommandTests(SynchronousTestCase):
    """
    L{parseCommand} over the tables of commands.
    """

    def assertParseError(
        self,
        lines: Sequence[bytes],
        literals: Sequence[object],
        tag: str | None,
        text: str,
        code: str | None = None,
        utf8: bool = False,
    ) -> ParseError:
        """
        Assert that the command is refused with that tag, a text holding
        C{text}, and that code.
        """
        with self.assertRaises(ParseError, msg=repr(lines)) as caught:
            parseCommand(list(lines), list(literals), utf8=utf8)
        error = caught.exception
        self.assertEqual(error.tag, tag, lines)
        self.assertIn(text, error.text, lines)
        self.assertEqual(error.code, code, lines)
        return error

    def test_valid(self) -> None:
        """
        Each command of the table parses to its value.
        """
        for line, expected in _VALID:
            self.assertEqual(parse(line), expected, line)

    def test_invalid(self) -> None:
        """
        Each malformed command is refused with its tag (none when the tag
        could not be read), a text naming what is wrong, and no code.
        """
        for line, tag, text, code in _INVALID:
            self.assertParseError([line], [], tag, text, code)

    def test_errorTexts(self) -> None:
        """
        Error texts are printable US-ASCII and quote at most 40 octets of
        the client's input, however long or binary the input.
        """
        noise = bytes(range(256)) * 4
        lines = [
            b"a1 " + noise,
            b"a1 LOGIN " + noise,
            b"a1 SELECT " + b"&" * 500,
            b"a1 FETCH 1 " + b"X" * 500,
            b"a1 SEARCH " + b"Y" * 500,
            b"a1 NOOP " + noise,
            b"t" * 1000 + b"\xff NOOP",
        ]
        for line, _, _, _ in _INVALID:
            lines.append(line)
        for line in lines:
            with self.assertRaises(ParseError) as caught:
                parse(line)
            text = caught.exception.text
            self.assertRegex(text, r"\A[ -~]+\Z")
            self.assertLess(len(text), 100, text)

    def test_tagRefusedLaterIsKept(self) -> None:
        """
        Once the tag is read, every later error carries it.
        """
        error = self.assertParseError([b"T]x.1 SELECT &"], [], "T]x.1", "UTF-7")
        self.assertIsNone(error.code)

    def test_shape(self) -> None:
        """
        One more line than literals is the protocol's promise; anything
        else is its bug, a L{ValueError}.
        """
        self.assertRaises(ValueError, parseCommand, [], [])
        self.assertRaises(ValueError, parseCommand, [b"a NOOP"], [b"x"])

    def test_unexpectedLiteral(self) -> None:
        """
        A literal after a complete command is refused.
        """
        self.assertParseError(
            [b"a1 NOOP {1}", b""], [b"x"], "a1", "Unexpected characters after command"
        )
        self.assertParseError(
            [b"a1 NOOP", b""], [b"x"], "a1", "Unexpected literal after command"
        )


class SearchTests(SynchronousTestCase):
    """
    SEARCH and UID SEARCH: every key of RFC 3501 6.4.4 and RFC 7162 3.1.5.
    """

    def test_keys(self) -> None:
        """
        Each key alone parses to its value, in any case.
        """
        for text, key in _SEARCH_KEYS:
            self.assertEqual(
                parse(b"a1 SEARCH " + text), cmd("SEARCH", Search(key)), text
            )
            self.assertEqual(
                parse(b"a1 UID SEARCH " + text), cmd("SEARCH", Search(key), True), text
            )

    def test_sideBySide(self) -> None:
        """
        Keys side by side are a L{SearchAnd} of them in order; a single
        key stays itself.
        """
        keys = [key for _, key in _SEARCH_KEYS]
        line = b"a1 SEARCH " + b" ".join(text for text, _ in _SEARCH_KEYS)
        self.assertEqual(parse(line).arguments, Search(SearchAnd(tuple(keys))))

    def test_charset(self) -> None:
        """
        CHARSET US-ASCII or UTF-8, in any case, is given in upper case; the
        strings are decoded with it; a literal carries 8-bit text.
        """
        self.assertEqual(
            parse(b"a1 SEARCH CHARSET utf-8 ALL").arguments,
            Search(SearchAll(), "UTF-8"),
        )
        self.assertEqual(
            parse(b'a1 SEARCH charset "us-ascii" FROM x').arguments,
            Search(SearchHeader("From", "x"), "US-ASCII"),
        )
        self.assertEqual(
            parse(
                b"a1 SEARCH CHARSET UTF-8 SUBJECT {2}",
                b"",
                literals=[b"\xc3\xa9"],
            ).arguments,
            Search(SearchHeader("Subject", "\u00e9"), "UTF-8"),
        )

    def test_charsetDecoding(self) -> None:
        """
        A string that is not valid in the charset is refused; without
        CHARSET, strings must be UTF-8.
        """
        for charset, data, text in [
            (b"CHARSET US-ASCII ", b"\xc3\xa9", "Search string is not valid US-ASCII"),
            (b"CHARSET UTF-8 ", b"\xff", "Search string is not valid UTF-8"),
            (b"", b"\xe9", "Search string is not valid UTF-8"),
        ]:
            with self.assertRaises(ParseError) as caught:
                parse(
                    b"a1 SEARCH " + charset + b"BODY {%d}" % len(data),
                    b"",
                    literals=[data],
                )
            self.assertEqual(caught.exception.text, text)
        with self.assertRaises(ParseError) as caught:
            parse(b"a1 SEARCH HEADER {1}", b" x", literals=[b"\xff"])
        self.assertEqual(caught.exception.text, "Header field name is not valid UTF-8")

    def test_utf8Accept(self) -> None:
        """
        With UTF8=ACCEPT, a quoted search string may carry UTF-8.
        """
        self.assertEqual(
            parse(b'a1 SEARCH SUBJECT "\xc3\xa9t\xc3\xa9"', utf8=True).arguments,
            Search(SearchHeader("Subject", "\u00e9t\u00e9")),
        )

    def test_invalid(self) -> None:
        """
        Each malformed SEARCH is refused with a text naming what is wrong.
        """
        for text, error, code in _INVALID_SEARCH:
            with self.assertRaises(ParseError, msg=text) as caught:
                parse(b"a1 SEARCH " + text if text else b"a1 SEARCH")
            self.assertEqual(caught.exception.tag, "a1")
            self.assertIn(error, caught.exception.text, text)
            self.assertEqual(caught.exception.code, code, text)

    def test_depthLimit(self) -> None:
        """
        Nesting up to L{MAX_DEPTH} levels of parentheses, NOT or OR is
        accepted; one more is refused as too deeply nested, never with a
        L{RecursionError}, however deep the input.
        """
        seen = SearchFlag("\\Seen", True)
        key: SearchKey = seen
        for _ in range(MAX_DEPTH):
            key = SearchNot(key)
        self.assertEqual(
            parse(b"a1 SEARCH " + b"NOT " * MAX_DEPTH + b"SEEN").arguments, Search(key)
        )
        self.assertEqual(
            parse(
                b"a1 SEARCH " + b"(" * MAX_DEPTH + b"SEEN" + b")" * MAX_DEPTH
            ).arguments,
            Search(seen),
        )
        self.assertEqual(
            parse(b"a1 SEARCH " + b"OR SEEN " * MAX_DEPTH + b"SEEN").arguments,
            Search(_orChain(MAX_DEPTH)),
        )
        for count in (MAX_DEPTH + 1, 10_000, 100_000):
            for line in [
                b"a1 SEARCH " + b"NOT " * count + b"SEEN",
                b"a1 SEARCH " + b"(" * count + b"SEEN" + b")" * count,
                b"a1 SEARCH " + b"OR SEEN " * count + b"SEEN",
                b"a1 SEARCH " + b"OR " * count + b"SEEN SEEN" * count,
                b"a1 SEARCH " + b"(NOT " * count,
            ]:
                with self.assertRaises(ParseError) as caught:
                    parse(line)
                self.assertEqual(caught.exception.text, "Too deeply nested")


def _orChain(depth: int) -> SearchKey:
    """
    C{OR SEEN OR SEEN ... SEEN}, C{depth} ORs deep.
    """
    seen = SearchFlag("\\Seen", True)
    key: SearchKey = seen
    for _ in range(depth):
        key = SearchOr(seen, key)
    return key


class FetchTests(SynchronousTestCase):
    """
    FETCH and UID FETCH: every item of RFC 3501 6.4.5 and RFC 7162.
    """

    def test_items(self) -> None:
        """
        Each item, macro or list parses to its values, macros expanded.
        """
        for text, items in _FETCH_ITEMS:
            self.assertEqual(
                parse(b"a1 FETCH 1 " + text), cmd("FETCH", Fetch(ONE, items)), text
            )

    def test_allItemsInAList(self) -> None:
        """
        Every item but the macros may stand in one list, in order.
        """
        texts = [t for t, _ in _FETCH_ITEMS if not t.startswith(b"(")][3:]
        expected = tuple(
            item for t, items in _FETCH_ITEMS if t in texts for item in items
        )
        line = b"a1 UID FETCH 1:* (" + b" ".join(texts) + b")"
        self.assertEqual(
            parse(line), cmd("FETCH", Fetch(seq((1, STAR)), expected), True)
        )

    def test_changedSince(self) -> None:
        """
        The CHANGEDSINCE modifier (RFC 7162 3.1.4) follows the items.
        """
        self.assertEqual(
            parse(b"a1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)").arguments,
            Fetch(seq((1, STAR)), (_FLAGS,), 12345),
        )
        self.assertEqual(
            parse(b"a1 FETCH 1 FAST (changedsince 0)").arguments,
            Fetch(ONE, _FETCH_ITEMS[1][1], 0),
        )

    def test_invalid(self) -> None:
        """
        Each malformed FETCH is refused with a text naming what is wrong.
        """
        for text, error in _INVALID_FETCH:
            line = b"a1 FETCH " + text if text else b"a1 FETCH"
            with self.assertRaises(ParseError, msg=text) as caught:
                parse(line)
            self.assertEqual(caught.exception.tag, "a1")
            self.assertIn(error, caught.exception.text, text)

    def test_label(self) -> None:
        """
        A parsed section's label is what the client asked for, without
        PEEK and with the partial range's start only.
        """
        for text, label in [
            (
                b"BODY.PEEK[header.fields (from to)]<5.10>",
                b"BODY[HEADER.FIELDS (FROM TO)]<5>",
            ),
            (b"body[1.2.mime]", b"BODY[1.2.MIME]"),
            (b"BODY[]", b"BODY[]"),
        ]:
            fetch = parse(b"a1 FETCH 1 " + text).arguments
            assert isinstance(fetch, Fetch)
            item = fetch.items[0]
            assert isinstance(item, BodySection)
            self.assertEqual(item.label(), label)


class SequenceSetTests(SynchronousTestCase):
    """
    Sequence sets (RFC 3501 9) as ranges, never expanded.
    """

    def test_forms(self) -> None:
        """
        Numbers, C{*}, ranges in either order and lists keep their form.
        """
        for text, ranges in [
            (b"1", ((1, 1),)),
            (b"*", ((STAR, STAR),)),
            (b"5:2", ((5, 2),)),
            (b"2:5", ((2, 5),)),
            (b"*:4", ((STAR, 4),)),
            (b"007", ((7, 7),)),
            (
                b"1,3:*,2,4294967295",
                ((1, 1), (3, STAR), (2, 2), (MAX_NUMBER, MAX_NUMBER)),
            ),
            (b"1:4294967295", ((1, MAX_NUMBER),)),
        ]:
            fetch = parse(b"a1 FETCH " + text + b" UID").arguments
            assert isinstance(fetch, Fetch)
            self.assertEqual(fetch.numbers, SequenceSet(ranges), text)

    def test_indexes(self) -> None:
        """
        A parsed set picks its members from a small list of UIDs, C{*}
        standing for the largest.
        """
        uids = [3, 5, 8, 13, 21]
        for text, indexes in [
            (b"1:4294967295", [0, 1, 2, 3, 4]),
            (b"5:2", [0, 1]),
            (b"*", [4]),
            (b"14:*", [4]),
            (b"8,4:6,22", [1, 2]),
            (b"100:*", [4]),
        ]:
            expunge = parse(b"a1 UID EXPUNGE " + text).arguments
            assert isinstance(expunge, Expunge)
            self.assertEqual(expunge.uids.indexes(uids), indexes, text)

    def test_bigList(self) -> None:
        """
        A list of many numbers parses to as many ranges.
        """
        text = b",".join(b"%d" % n for n in range(1, 20001))
        fetch = parse(b"a1 FETCH " + text + b" FLAGS").arguments
        assert isinstance(fetch, Fetch)
        self.assertEqual(len(fetch.numbers.ranges), 20000)
        self.assertEqual(fetch.numbers.ranges[-1], (20000, 20000))


class LiteralTests(SynchronousTestCase):
    """
    Literals (RFC 3501 4.3) and LITERAL+ (RFC 7888) wherever a string may
    stand.
    """

    # Commands whose every quoted string may be a literal instead.
    _COMMANDS = [
        b'a1 LOGIN "bob" "p w"',
        b"a1 AUTHENTICATE PLAIN =",
        b'a1 SELECT "Sent" (CONDSTORE)',
        b'a1 EXAMINE "Tom &- Jerry"',
        b'a1 CREATE "a"',
        b'a1 DELETE "a"',
        b'a1 SUBSCRIBE "INBOX"',
        b'a1 UNSUBSCRIBE "a"',
        b'a1 RENAME "a" "b"',
        b'a1 LIST "" "*"',
        b'a1 LIST (SUBSCRIBED) "~" ("a" "b") RETURN (CHILDREN)',
        b'a1 LSUB "" "%"',
        b'a1 STATUS "a" (MESSAGES)',
        b'a1 COPY 1 "Trash"',
        b'a1 UID MOVE 1 "Trash"',
        b'a1 SEARCH CHARSET "UTF-8" FROM "a" HEADER "X-A" "b" OR BODY "c" TEXT "d"',
        b'a1 SEARCH TO "" CC "x" BCC "y" SUBJECT "z" MODSEQ "/flags/x" all 5',
        b'a1 FETCH 1 (BODY[HEADER.FIELDS ("From" "To")] BODY[1.HEADER.FIELDS.NOT ("X")]'
        b")",
        b'a1 ID ("name" "x" "version" NIL)',
        b'a1 APPEND "Sent" (\\Seen) {1}',
    ]

    def test_everyStringPosition(self) -> None:
        """
        Each quoted string of each command, sent as a synchronizing or a
        non-synchronizing literal instead, gives the same value.
        """
        quoted = re.compile(rb'"((?:[^"\\]|\\.)*)"')
        for line in self._COMMANDS:
            if line.endswith(b"{1}"):
                lines, literals = [line, b""], [b"x"]
            else:
                lines, literals = [line], []
            expected = parseCommand(lines, literals)
            for found in quoted.finditer(line):
                value = re.sub(rb"\\(.)", rb"\1", found.group(1))
                for plus in (b"", b"+"):
                    head = line[: found.start()] + b"{%d%s}" % (len(value), plus)
                    tail = line[found.end() :]
                    self.assertEqual(
                        parseCommand([head, tail, *lines[1:]], [value, *literals]),
                        expected,
                        (head, tail),
                    )

    def test_allLiterals(self) -> None:
        """
        Several literals in one command, one right after another's line.
        """
        self.assertEqual(
            parse(
                b"a1 LOGIN {3}",
                b" {8+}",
                b"",
                literals=[b"bob", b"p\xc3\xa4ss wd"],
            ),
            cmd("LOGIN", Login("bob", "p\u00e4ss wd")),
        )
        self.assertEqual(
            parse(b"a1 RENAME {0}", b" {1+}", b"", literals=[b"", b"b"]),
            cmd("RENAME", Rename("", "b")),
        )

    def test_eightBitLiteral(self) -> None:
        """
        A literal carries what a quoted string may not: 8-bit octets, CR,
        LF, and quotes, as they are.
        """
        self.assertEqual(
            parse(b"a1 LOGIN {5}", b" {3}", b"", literals=[b'a"\\\r\n', b"\xc3\xa9x"]),
            cmd("LOGIN", Login('a"\\\r\n', "\u00e9x")),
        )

    def test_invalidLiterals(self) -> None:
        """
        A literal that is not text where text is wanted, holds NUL, is not
        of its announced size, or is not bytes, is refused; so is a
        mailbox name with CR or LF, or 8-bit octets that are not UTF-7.
        """
        for lines, literals, text in [
            ([b"a1 LOGIN {1}", b" x"], [b"\xff"], "User name is not valid UTF-8"),
            ([b"a1 LOGIN x {1}", b""], [b"\xff"], "Password is not valid UTF-8"),
            ([b"a1 LOGIN {1}", b" x"], [b"\x00"], "NUL in literal"),
            ([b"a1 LOGIN {2}", b" x"], [b"x"], "does not match its announcement"),
            ([b"a1 LOGIN {00000000001}", b" x"], [b"x"], "does not match"),
            ([b"a1 LOGIN {1}", b" x"], [object()], "Unexpected literal"),
            ([b"a1 SELECT {2}", b""], [b"a\n"], "not valid modified UTF-7"),
            ([b"a1 SELECT {2}", b""], [b"\xc3\xa9"], "not valid modified UTF-7"),
            ([b"a1 LIST {1}", b" *"], [b"\r"], "Reference contains NUL, CR or LF"),
            ([b'a1 LIST "" {2}', b""], [b"\xc3\xa9"], "not valid modified UTF-7"),
            (
                [b"a1 LOGIN {1}", b"x y"],
                [b"x"],
                "Expected a space before password: x y",
            ),
            ([b"a1 LOGIN {1}", b""], [b"x"], "Missing password"),
        ]:
            with self.assertRaises(ParseError, msg=lines) as caught:
                parseCommand(lines, literals)
            self.assertIn(text, caught.exception.text, lines)
            self.assertEqual(caught.exception.tag, "a1")


class MailboxNameTests(SynchronousTestCase):
    """
    Mailbox names: modified UTF-7, or UTF-8 with UTF8=ACCEPT; INBOX.
    """

    def test_inbox(self) -> None:
        """
        Any case of INBOX, in any form, is C{INBOX}; only the whole name.
        """
        for name in [b"INBOX", b"inbox", b"iNbOx", b'"InBox"']:
            self.assertEqual(
                parse(b"a1 SELECT " + name).arguments, Select("INBOX", False)
            )
        self.assertEqual(
            parse(b"a1 SELECT {5}", b"", literals=[b"Inbox"]).arguments,
            Select("INBOX", False),
        )
        for name, expected in [
            (b"inbox.Sent", "inbox.Sent"),
            (b"INBOX/x", "INBOX/x"),
            (b"xinbox", "xinbox"),
        ]:
            self.assertEqual(parse(b"a1 DELETE " + name).arguments, Mailbox(expected))

    def test_modifiedUTF7(self) -> None:
        """
        Names are decoded from modified UTF-7; non-canonical forms are
        refused.
        """
        self.assertEqual(
            parse(b"a1 CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-").arguments,
            Mailbox("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"),
        )
        for name in [b"&", b"&Jjo", b"&AGE-", b"&Jj/-", b"&2D0-"]:
            with self.assertRaises(ParseError) as caught:
                parse(b"a1 CREATE " + name)
            self.assertEqual(
                caught.exception.text, "Mailbox name is not valid modified UTF-7"
            )

    def test_utf8(self) -> None:
        """
        With UTF8=ACCEPT names are UTF-8, quoted or literal, taken as they
        are (an C{&} is an C{&}); invalid UTF-8, NUL, CR and LF are
        refused.
        """
        self.assertEqual(
            parse(b'a1 CREATE "Entw\xc3\xbcrfe"', utf8=True).arguments,
            Mailbox("Entw\u00fcrfe"),
        )
        self.assertEqual(parse(b"a1 CREATE &-", utf8=True).arguments, Mailbox("&-"))
        # Only ASCII case: the dotless i is no "i".
        self.assertEqual(
            parse(b'a1 CREATE "\xc4\xb1nbox"', utf8=True).arguments,
            Mailbox("\u0131nbox"),
        )
        self.assertEqual(
            parse(b'a1 LIST "" "\xc3\xa9*"', utf8=True).arguments,
            ListMailboxes("", ("\u00e9*",)),
        )
        for lines, literals, text in [
            ([b'a1 CREATE "\xff"'], [], "Quoted string is not valid UTF-8"),
            ([b"a1 CREATE {1}", b""], [b"\xff"], "Mailbox name is not valid UTF-8"),
            ([b"a1 CREATE {1}", b""], [b"\n"], "Mailbox name contains NUL, CR or LF"),
            ([b'a1 LIST "" {1}', b""], [b"\xff"], "pattern is not valid UTF-8"),
        ]:
            with self.assertRaises(ParseError) as caught:
                parseCommand(lines, literals, utf8=True)
            self.assertIn(text, caught.exception.text)


class AppendTests(SynchronousTestCase):
    """
    APPEND, and L{appendMessageNext}.
    """

    def test_table(self) -> None:
        """
        Each APPEND parses to its mailbox, flags, date and message.
        """
        for line, expected in _APPENDS:
            for announcement in (b" {14}", b" {14+}"):
                command = parse(
                    line + announcement, b"", literals=[b"Subject: x\r\n\r\n"]
                )
                self.assertEqual(command, expected, line)

    def test_placeholder(self) -> None:
        """
        The message may be any object standing for it, and an empty
        literal; it may hold NUL (the server decides).
        """
        placeholder = object()
        command = parse(b"a1 APPEND INBOX {100}", b"", literals=[placeholder])
        assert isinstance(command.arguments, Append)
        self.assertIs(command.arguments.message, placeholder)
        self.assertEqual(
            parse(b"a1 APPEND INBOX {0}", b"", literals=[b""]).arguments,
            Append("INBOX", (), None, b""),
        )
        self.assertEqual(
            parse(b"a1 APPEND INBOX {1}", b"", literals=[b"\x00"]).arguments,
            Append("INBOX", (), None, b"\x00"),
        )

    def test_mailboxLiteral(self) -> None:
        """
        The mailbox may be a literal before the message's.
        """
        command = parse(b"a1 APPEND {4}", b" () {1}", b"", literals=[b"Sent", b"x"])
        self.assertEqual(command.arguments, Append("Sent", (), None, b"x"))

    def test_invalidDates(self) -> None:
        """
        A date-time that is malformed or names no real time is refused.
        """
        for date in [
            b'"31-Feb-2020 10:00:00 +0000"',
            b'"1-Foo-2020 10:00:00 +0000"',
            b'"1-Jan-2020 24:00:00 +0000"',
            b'"1-Jan-2020 10:60:00 +0000"',
            b'"1-Jan-2020 10:00:60 +0000"',
            b'"1-Jan-2020 10:00:00 +2400"',
            b'"1-Jan-2020 10:00:00 +0060"',
            b'"1-Jan-2020 10:00:00 0000"',
            b'"1-Jan-2020 10:00:00"',
            b'"1-Jan-0000 10:00:00 +0000"',
            b'"001-Jan-2020 10:00:00 +0000"',
            b'"1-Jan-2020  10:00:00 +0000"',
            b'"1-Jan-2020 1:00:00 +0000"',
        ]:
            with self.assertRaises(ParseError, msg=date) as caught:
                parse(b"a1 APPEND INBOX " + date + b" {1}", b"", literals=[b"x"])
            self.assertIn("Invalid date-time", caught.exception.text)

    def test_appendMessageNext(self) -> None:
        """
        Only when the literal announced is APPEND's message argument.
        """
        yes = [
            ([b"a1 APPEND INBOX {5}"], []),
            ([b"a1 append inbox {5+}"], []),
            ([b"a1 APPEND INBOX (\\Seen $X) {5}"], []),
            ([b"a1 APPEND INBOX () {5}"], []),
            ([b'a1 APPEND INBOX "17-Jul-1996 02:44:25 -0700" {5}'], []),
            ([b'a1 APPEND INBOX (\\Seen) " 7-Jul-1996 02:44:25 -0700" {0}'], []),
            ([b"a1 APPEND {5}", b" {5}"], [b"INBOX"]),
            ([b"a1 APPEND {5}", b" (\\Seen) {5}"], [b"INBOX"]),
            ([b'a1 APPEND "Entw\xc3\xbcrfe" {5}'], []),
            ([b"a1 APPEND &Jjo {5}"], []),  # refused later, by parseCommand
        ]
        no = [
            ([b"a1 APPEND {5}"], []),
            ([b"a1 APPEND INBOX {5}", b" {5}"], [b"12345"]),
            ([b"a1 APPEND INBOX"], []),
            ([b"a1 APPEND INBOX (\\Seen) {5}x"], []),
            ([b"a1 APPEND INBOX (\\Recent) {5}"], []),
            ([b"a1 APPEND INBOX ( {5}"], []),
            ([b'a1 APPEND INBOX "bad date" {5}'], []),
            ([b"a1 APPEND INBOX  {5}"], []),
            ([b"a1 LOGIN bob {5}"], []),
            ([b"a1 UID APPEND INBOX {5}"], []),
            ([b"a1 SEARCH APPEND {5}"], []),
            ([b"+ APPEND INBOX {5}"], []),
            ([b"a1 APPEND INBOX {5}"], [b"x"]),
            ([], []),
            ([b""], []),
            ([b"a1 APPEND {5}", b" {5}"], [object()]),
        ]
        for lines, literals in yes:
            self.assertTrue(appendMessageNext(lines, literals), lines)
        for lines, literals in no:
            self.assertFalse(appendMessageNext(lines, literals), lines)


class AnnouncedLiteralTests(SynchronousTestCase):
    """
    L{announcedLiteral}.
    """

    def test_announcements(self) -> None:
        """
        C{{n}} is synchronizing, C{{n+}} is not; anything else at the
        line's end announces nothing.
        """
        for line, expected in [
            (b"a1 LOGIN {5}", (5, True)),
            (b"a1 LOGIN {5+}", (5, False)),
            (b"{0}", (0, True)),
            (b"a1 APPEND INBOX {4294967295}", (MAX_NUMBER, True)),
            (b"a1 APPEND INBOX {0004294967}", (4294967, True)),
            (b"a1 LOGIN x{3}", (3, True)),
            (b"a1 NOOP", None),
            (b"", None),
            (b"}", None),
            (b"a1 LOGIN {}", None),
            (b"a1 LOGIN {+}", None),
            (b"a1 LOGIN {5-}", None),
            (b"a1 LOGIN {5++}", None),
            (b"a1 LOGIN { 5}", None),
            (b"a1 LOGIN {5} ", None),
            (b"a1 LOGIN {-5}", None),
            (b"a1 LOGIN {5}}", None),
            (b"a1 LOGIN {\xd9\xa1}", None),
            (b'a1 LOGIN "{5}"', None),
        ]:
            self.assertEqual(announcedLiteral(line), expected, line)

    def test_tooLarge(self) -> None:
        """
        A size above 4294967295 or of more than 10 digits is refused, with
        the line's tag when it has one.
        """
        for line, tag in [
            (b"a1 APPEND INBOX {4294967296}", "a1"),
            (b"a1 APPEND INBOX {00000000001}", "a1"),
            (b"a1 LOGIN {" + b"9" * 5000 + b"+}", "a1"),
            (b"{4294967296}", None),
            (b"+x LOGIN {4294967296}", None),
            (b"a1{4294967296}", None),
        ]:
            with self.assertRaises(ParseError) as caught:
                announcedLiteral(line)
            self.assertEqual(caught.exception.tag, tag)
            self.assertIsNone(caught.exception.code)
            self.assertIn("Literal too large", caught.exception.text)
            self.assertLess(len(caught.exception.text), 100)
