"""
Tests for L{gomail_twisted.imap4._searching}: SEARCH and UID SEARCH over
the real server and a real store, bytes on the wire.  What each key means
is tested with the evaluator (L{tests.test_imap4_search}); here, what the
command reads and answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gomail_twisted.imap4 import _searching
from gomail_twisted.imap4._searchindex import MAX_FIELD
from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.maildir import MaildirStore, _files
from gomail_twisted.users import UsersChecker
from tests.test_imap4_select import MailboxTestCase

MESSAGES = [
    b"From: Ann <ann@example.org>\r\nSubject: lunch\r\n\r\nSee you at noon\r\n",
    b"From: Bob <bob@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
    b"Coffee later\r\n",
    b"From: Ann <ann@example.org>\r\nSubject: report\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"VGhlIG51bWJlcnMgYXJlIGluLg==\r\n",
]


class SearchTests(MailboxTestCase):
    """
    SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8).
    """

    def setUp(self) -> None:
        super().setUp()
        self.deliver(*MESSAGES)

    def test_flags(self) -> None:
        """
        Keys on flags are answered with sequence numbers, ascending.
        """
        self.setFlags([1, 3], ["\\Seen"])
        c = self.selected()
        self.assertEqual(
            c.command(b"a SEARCH UNSEEN"), b"* SEARCH 2\r\na OK SEARCH completed\r\n"
        )
        self.assertEqual(
            c.command(b"b SEARCH SEEN"), b"* SEARCH 1 3\r\nb OK SEARCH completed\r\n"
        )

    def test_uidSearch(self) -> None:
        """
        UID SEARCH answers with UIDs, and C{*} in a UID set is the last
        UID.
        """
        self.expunge(1)
        c = self.selected()
        self.assertEqual(
            c.command(b"a UID SEARCH UID 2:*"),
            b"* SEARCH 2 3\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual(
            c.command(b"b SEARCH ALL"), b"* SEARCH 1 2\r\nb OK SEARCH completed\r\n"
        )

    def test_header(self) -> None:
        """
        FROM and SUBJECT read the header, decoded: an encoded word
        matches its text.
        """
        c = self.selected()
        self.assertEqual(
            c.command(b'a SEARCH FROM "ann@"'),
            b"* SEARCH 1 3\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual(
            c.command(b"b SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9"),
            b"+ Ready for literal data\r\n* SEARCH 2\r\nb OK SEARCH completed\r\n",
        )

    def test_body(self) -> None:
        """
        BODY reads the body, decoded from its transfer encoding.
        """
        c = self.selected()
        self.assertEqual(
            c.command(b"a SEARCH BODY numbers"),
            b"* SEARCH 3\r\na OK SEARCH completed\r\n",
        )

    def test_flagsDecideFirst(self) -> None:
        """
        Messages a flag already excludes are never read: a search of body
        text among unseen messages reads only those.
        """
        self.setFlags([1, 2], ["\\Seen"])
        read: list[int] = []
        original = self.view().__class__.scan

        def scan(view, uids, f, limit=None):  # type: ignore[no-untyped-def]
            read.extend(uids)
            return original(view, uids, f, limit)

        self.patch(self.view().__class__, "scan", scan)
        c = self.selected()
        self.assertEqual(
            c.command(b"a SEARCH UNSEEN BODY numbers"),
            b"* SEARCH 3\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual(read, [3])

    def countScans(self) -> list[tuple[list[int], int | None]]:
        """
        Count the store's scans from now on.

        @return: the list where each scan's UIDs and limit go.
        """
        scans: list[tuple[list[int], int | None]] = []
        original = self.view().__class__.scan

        def scan(view, uids, f, limit=None):  # type: ignore[no-untyped-def]
            scans.append((list(uids), limit))
            return original(view, uids, f, limit)

        self.patch(self.view().__class__, "scan", scan)
        return scans

    def countReads(self) -> list[str]:
        """
        Count the store's reads of message files from now on.

        @return: the list where each read file's path goes.
        """
        reads: list[str] = []
        original: Callable[..., bytes] = _files.readMessage

        def readMessage(path: str, *args: Any) -> bytes:
            reads.append(path)
            return original(path, *args)

        self.patch(_files, "readMessage", readMessage)
        return reads

    def test_headerReadsOnlyTheStart(self) -> None:
        """
        A search of a header field the store does not keep reads no more of
        each message that has it than the header limit; messages without
        the field are not read.
        """
        scans = self.countScans()
        c = self.selected()
        c.command(b'a SEARCH HEADER Content-Transfer-Encoding "base64"')
        c.command(b'b SEARCH TEXT "you at noon"')
        self.assertEqual(scans, [([3], _searching.HEADER_LIMIT), ([1], None)])

    def test_secondSearchReadsNoMessage(self) -> None:
        """
        The first search of header fields reads each message once, and
        keeps a record of its common fields; later searches of those
        fields, in this session or another, read no message.
        """
        scans = self.countScans()
        reads = self.countReads()
        c = self.selected()
        self.assertEqual(
            c.command(b'a SEARCH FROM "ann@"'),
            b"* SEARCH 1 3\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual(len(reads), 3)
        del reads[:]
        self.assertEqual(
            c.command(b"b SEARCH OR SUBJECT lunch NOT FROM bob"),
            b"* SEARCH 1 3\r\nb OK SEARCH completed\r\n",
        )
        self.assertEqual(
            self.selected().command(b'c UID SEARCH HEADER X-Absent ""'),
            b"* SEARCH\r\nc OK SEARCH completed\r\n",
        )
        # A new process finds the records in the folder's cache file.
        self.store = MaildirStore(self.root, reactor=self.reactor, threadPool=self.pool)
        self.backend = StoreBackend(UsersChecker(self.users, self.hashing), self.store)
        self.factory = self.makeFactory()
        self.assertEqual(
            self.selected().command(b"d SEARCH SENTBEFORE 1-Jan-2000 FROM bob"),
            b"* SEARCH\r\nd OK SEARCH completed\r\n",
        )
        self.assertEqual((reads, scans), ([], []))

    def test_textIndex(self) -> None:
        """
        The first search of text reads each message to index its text;
        later ones read only the messages whose index may hold the string.
        """
        scans = self.countScans()
        reads = self.countReads()
        c = self.selected()
        self.assertEqual(
            c.command(b"a SEARCH BODY numbers"),
            b"* SEARCH 3\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual((len(reads), scans), (4, [([3], None)]))
        del reads[:], scans[:]
        # Message 1 has "lunch" in its header: its index says it may.
        self.assertEqual(
            c.command(b"b SEARCH OR BODY numbers TEXT lunch"),
            b"* SEARCH 1 3\r\nb OK SEARCH completed\r\n",
        )
        self.assertEqual((len(reads), scans), (2, [([1, 3], None)]))
        del reads[:], scans[:]
        self.assertEqual(
            c.command(b"c SEARCH NOT BODY xylophone"),
            b"* SEARCH 1 2 3\r\nc OK SEARCH completed\r\n",
        )
        self.assertEqual((reads, scans), ([], []))
        # The records of header fields are made (a read each), then both
        # decide.
        self.assertEqual(
            c.command(b"d SEARCH FROM ann TEXT coffee"),
            b"* SEARCH\r\nd OK SEARCH completed\r\n",
        )
        self.assertEqual((len(reads), scans), (3, []))

    def test_cutValueReadsTheMessage(self) -> None:
        """
        A field too long for the record is read from the message, which
        alone is scanned.
        """
        subject = b"word " * (MAX_FIELD // 5) + b"needle"
        self.deliver(b"Subject: " + subject + b"\r\n\r\nlong\r\n")
        scans = self.countScans()
        c = self.selected()
        self.assertEqual(
            c.command(b"a SEARCH SUBJECT needle"),
            b"* SEARCH 4\r\na OK SEARCH completed\r\n",
        )
        self.assertEqual(
            c.command(b"b SEARCH SUBJECT lunch"),
            b"* SEARCH 1\r\nb OK SEARCH completed\r\n",
        )
        self.assertEqual(
            scans, [([4], _searching.HEADER_LIMIT), ([4], _searching.HEADER_LIMIT)]
        )

    def test_badCharset(self) -> None:
        """
        A charset the server does not know is NO [BADCHARSET] with the
        ones it does, not BAD (RFC 3501 6.4.4).
        """
        c = self.selected()
        [line] = c.lines(b"a SEARCH CHARSET ISO-8859-1 ALL")
        self.assertTrue(line.startswith(b"a NO [BADCHARSET (US-ASCII UTF-8)] "), line)

    def test_modSeq(self) -> None:
        """
        MODSEQ turns CONDSTORE on, and the answer ends with the highest
        mod-sequence of the matches (RFC 7162 3.1.5).
        """
        c = self.selected()
        highest = max(m.modSeq for m in self.view().messages())
        self.assertEqual(
            c.command(b"a SEARCH MODSEQ 1"),
            b"* SEARCH 1 2 3 (MODSEQ %d)\r\na OK SEARCH completed\r\n" % (highest,),
        )
        self.assertEqual(
            c.command(b"b SEARCH MODSEQ 99999"),
            b"* SEARCH\r\nb OK SEARCH completed\r\n",
        )

    def test_noExpungeDuringSearch(self) -> None:
        """
        A message another session expunged keeps its number through
        SEARCH, which does not match it and sends no EXPUNGE; NOOP then
        does, with the recent count it lowered.
        """
        c = self.selected()
        self.expunge(2)
        self.assertEqual(
            c.command(b"a SEARCH ALL"), b"* SEARCH 1 3\r\na OK SEARCH completed\r\n"
        )
        self.assertEqual(
            c.command(b"b NOOP"),
            b"* 2 EXPUNGE\r\n* 2 RECENT\r\nb OK NOOP completed\r\n",
        )

    def test_uidSearchSendsExpunges(self) -> None:
        """
        UID SEARCH may send the pending EXPUNGE (RFC 3501 7.4.1).
        """
        c = self.selected()
        self.expunge(2)
        self.assertEqual(
            c.command(b"a UID SEARCH ALL"),
            b"* SEARCH 1 3\r\n* 2 EXPUNGE\r\n* 2 RECENT\r\na OK SEARCH completed\r\n",
        )
