"""
Tests for L{gomail_twisted.imap4._fetch} and
L{gomail_twisted.imap4._fetchbody}: FETCH and UID FETCH over the real
server and a real store, bytes on the wire.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gomail_twisted.imap4 import _envelope, _fetchbody
from gomail_twisted.imap4._bodystructure import sectionBytes
from gomail_twisted.imap4._commands import BodySection
from gomail_twisted.imap4._fetchbody import (
    FETCH_DATA_KIND,
    FetchData,
    internalDate,
)
from gomail_twisted.imap4._structure import MessageStructure, parseStructure
from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.users import UsersChecker
from tests._imaphelpers import Connection, tagged
from tests.test_imap4_select import MailboxTestCase
from tests.test_maildir_reader import openDescriptors

#: Alice's Maildir, under the store's root.
ALICE_DIRECTORY = "alice@example.com"

#: The message of RFC 3501 7.4.2's example FETCH response, with a short
#: body.
SIMPLE_BODY = b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
SIMPLE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"Cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n" + SIMPLE_BODY
)

#: Its ENVELOPE, as RFC 3501 7.4.2 gives it.
SIMPLE_ENVELOPE = (
    b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"'
    b' "IMAP4rev1 WG mtg summary and minutes"'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
    b' ((NIL NIL "imap" "cac.washington.edu"))'
    b' ((NIL NIL "minutes" "CNRI.Reston.VA.US")'
    b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL'
    b' "<B27397-0100000@cac.washington.edu>")'
)

# A multipart message: 1 is a multipart/alternative (1.1, 1.2), 2 an
# attachment, 3 an encapsulated message.
INNER_MESSAGE = b"From: carol@example.com\r\nSubject: inner\r\n\r\ninner body"
PART1_HEADER = b"Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
PART1_BODY = (
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"plain text\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>html</p>\r\n"
    b"--inner--\r\n"
)
PART2_HEADER = (
    b"Content-Type: application/octet-stream; name=data.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=data.bin\r\n"
    b"\r\n"
)
MULTI_HEADER = (
    b"From: alice@example.com\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: parts\r\n"
    b"X-Long: first\r\n"
    b"  second\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
MULTI_TEXT = (
    b"preamble\r\n"
    b"--outer\r\n" + PART1_HEADER + PART1_BODY + b"\r\n"
    b"--outer\r\n" + PART2_HEADER + b"AAEC\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n" + INNER_MESSAGE + b"\r\n"
    b"--outer--\r\n"
)
MULTI = MULTI_HEADER + MULTI_TEXT

#: The envelope of the encapsulated message: only From and Subject.
INNER_ENVELOPE = (
    b'(NIL "inner" ((NIL NIL "carol" "example.com"))'
    b' ((NIL NIL "carol" "example.com")) ((NIL NIL "carol" "example.com"))'
    b" NIL NIL NIL NIL NIL)"
)

#: BODYSTRUCTURE of MULTI (RFC 3501 7.4.2): types as written, defaults in
#: lower case, the CRLF before a boundary not in the part (RFC 2046
#: 5.1.1), line counts the line ends in the parts' bodies (as Dovecot
#: counts them).
MULTI_BODYSTRUCTURE = (
    b'((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)'
    b' "alternative" ("boundary" "inner") NIL NIL NIL)'
    b'("application" "octet-stream" ("name" "data.bin") NIL NIL "base64" 4'
    b' NIL ("attachment" ("filename" "data.bin")) NIL NIL)'
    b'("message" "rfc822" NIL NIL NIL "7bit" %d '
    % (len(INNER_MESSAGE),)
    + INNER_ENVELOPE
    + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
    b" 3 NIL NIL NIL NIL)"
    b' "mixed" ("boundary" "outer") NIL NIL NIL)'
)

#: BODY of MULTI: the same without extension data.
MULTI_BODY = (
    b'((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0) "alternative")'
    b'("application" "octet-stream" ("name" "data.bin") NIL NIL "base64" 4)'
    b'("message" "rfc822" NIL NIL NIL "7bit" %d '
    % (len(INNER_MESSAGE),)
    + INNER_ENVELOPE
    + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0) 3)'
    b' "mixed")'
)


def literal(data: bytes) -> bytes:
    """
    A literal as the server sends it.
    """
    return b"{%d}\r\n%s" % (len(data), data)


class FetchTestCase(MailboxTestCase):
    """
    A mailbox with messages, selected by a session to which none of them is
    recent (the store's own view claimed them first).
    """

    def fetching(self, *messages: bytes, mailbox: bytes = b"INBOX") -> Connection:
        """
        Deliver messages and select the mailbox.
        """
        self.deliver(*messages)
        self.view()
        return self.selected(mailbox)


class AttributeTests(FetchTestCase):
    """
    The items from the store's listing: UID, FLAGS, INTERNALDATE,
    RFC822.SIZE.
    """

    def test_listingItems(self) -> None:
        """
        FLAGS, UID, RFC822.SIZE and INTERNALDATE come in the order asked,
        the date in UTC.
        """
        account = self.account()
        self.successResultOf(
            account.append("INBOX", SIMPLE, ["\\Flagged", "$Work"], 1709622489.0)
        )
        self.view()
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a FETCH 1 (FLAGS UID RFC822.SIZE INTERNALDATE)"),
            b"* 1 FETCH (FLAGS ($Work \\Flagged) UID 1 RFC822.SIZE %d"
            b' INTERNALDATE "05-Mar-2024 07:08:09 +0000")\r\n'
            b"a OK FETCH completed\r\n" % (len(SIMPLE),),
        )

    def test_appendedDateInUTC(self) -> None:
        """
        A date APPEND gave in another zone comes back as the same instant in
        UTC.
        """
        connection = self.login()
        answer = connection.send(
            b'a APPEND INBOX "05-Mar-2024 08:08:09 +0100" {%d+}\r\n%s\r\n'
            % (len(SIMPLE), SIMPLE)
        )
        self.assertTrue(tagged(answer).startswith(b"a OK"), answer)
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(
            connection.command(b"a FETCH 1 INTERNALDATE"),
            b'* 1 FETCH (INTERNALDATE "05-Mar-2024 07:08:09 +0000")\r\n'
            b"a OK FETCH completed\r\n",
        )

    def test_recentFlag(self) -> None:
        """
        A message recent to the session has C{\\Recent} after its flags.
        """
        self.deliver(SIMPLE)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a FETCH 1 FLAGS"),
            b"* 1 FETCH (FLAGS (\\Recent))\r\na OK FETCH completed\r\n",
        )

    def test_macros(self) -> None:
        """
        FAST, ALL and FULL stand for their items, in RFC 3501 6.4.5's order.
        """
        connection = self.fetching(SIMPLE)
        answer = connection.command(b"a FETCH 1 INTERNALDATE")
        date = b'"' + answer.split(b'"')[1] + b'"'
        fast = b"FLAGS () INTERNALDATE %s RFC822.SIZE %d" % (date, len(SIMPLE))
        body = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" %d 1)' % (
            len(SIMPLE_BODY),
        )
        for macro, expected in (
            (b"FAST", fast),
            (b"ALL", fast + b" ENVELOPE " + SIMPLE_ENVELOPE),
            (b"FULL", fast + b" ENVELOPE " + SIMPLE_ENVELOPE + b" BODY " + body),
        ):
            self.assertEqual(
                connection.command(b"a FETCH 1 " + macro),
                b"* 1 FETCH (%s)\r\na OK FETCH completed\r\n" % (expected,),
            )

    def test_eachItemOnce(self) -> None:
        """
        An item asked twice is sent once, where it was first asked.
        """
        connection = self.fetching(SIMPLE)
        self.assertEqual(
            connection.command(b"a FETCH 1 (FLAGS UID FLAGS UID)"),
            b"* 1 FETCH (FLAGS () UID 1)\r\na OK FETCH completed\r\n",
        )

    def test_uidFetchPutsUIDFirst(self) -> None:
        """
        UID FETCH answers UID first, once, whether asked for or not (RFC
        3501 6.4.8), and names messages by UID.
        """
        connection = self.fetching(SIMPLE, SIMPLE, SIMPLE)
        self.expunge(2)
        connection.command(b"n NOOP")
        self.assertEqual(
            connection.command(b"a UID FETCH 2:3 (FLAGS UID)"),
            b"* 2 FETCH (UID 3 FLAGS ())\r\na OK FETCH completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a UID FETCH 1 RFC822.SIZE"),
            b"* 1 FETCH (UID 1 RFC822.SIZE %d)\r\na OK FETCH completed\r\n"
            % (len(SIMPLE),),
        )

    def test_uidFetchOfNothing(self) -> None:
        """
        UID FETCH of UIDs no message has answers nothing but OK, even on an
        empty mailbox.
        """
        connection = self.fetching(SIMPLE)
        self.assertEqual(
            connection.command(b"a UID FETCH 5:7 FLAGS"), b"a OK FETCH completed\r\n"
        )
        connection.command(b"s SELECT Trash")
        self.assertEqual(
            connection.command(b"a UID FETCH 1:* FLAGS"), b"a OK FETCH completed\r\n"
        )

    def test_numberPastTheEnd(self) -> None:
        """
        A sequence number past the last message is BAD, and nothing is
        sent.
        """
        connection = self.fetching(SIMPLE, SIMPLE)
        for line in (b"a FETCH 3 FLAGS", b"a FETCH 1:3 FLAGS", b"a FETCH 2,9 UID"):
            self.assertEqual(
                connection.command(line), b"a BAD Invalid message sequence number\r\n"
            )
        connection.command(b"s SELECT Trash")
        self.assertEqual(
            connection.command(b"a FETCH 1:* FLAGS"),
            b"a BAD Invalid message sequence number\r\n",
        )

    def test_manyMessagesInChunks(self) -> None:
        """
        Many messages' responses are the same whatever the chunk size they
        are written in.
        """
        self.deliver(*(b"Subject: %d\r\n\r\nbody\r\n" % (n,) for n in range(300)))
        expected = b"".join(
            b"* %d FETCH (UID %d RFC822.SIZE %d FLAGS ())\r\n"
            % (n, info.uid, info.size)
            for n, info in enumerate(self.view().messages(), 1)
        )
        for chunkSize in (1, 100, 65536):
            self.factory = self.makeFactory(chunkSize=chunkSize)
            connection = self.selected()
            self.assertEqual(
                connection.command(b"a UID FETCH 1:* (RFC822.SIZE FLAGS)"),
                expected + b"a OK FETCH completed\r\n",
            )


class StructureTests(FetchTestCase):
    """
    ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 7.4.2).
    """

    def test_simple(self) -> None:
        """
        The message of RFC 3501 7.4.2's example has the envelope given
        there, and a text body structure with its size and lines.
        """
        connection = self.fetching(SIMPLE)
        size = len(SIMPLE_BODY)
        self.assertEqual(
            connection.command(b"a FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)"),
            b"* 1 FETCH (ENVELOPE "
            + SIMPLE_ENVELOPE
            + b' BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" %d 1)'
            b' BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL'
            b' "7bit" %d 1 NIL NIL NIL NIL))\r\n'
            b"a OK FETCH completed\r\n" % (size, size),
        )

    def test_multipart(self) -> None:
        """
        A multipart with a nested multipart, an attachment and an
        encapsulated message has the structure RFC 3501 7.4.2 describes.
        """
        connection = self.fetching(MULTI)
        self.assertEqual(
            connection.command(b"a FETCH 1 (BODYSTRUCTURE BODY)"),
            b"* 1 FETCH (BODYSTRUCTURE "
            + MULTI_BODYSTRUCTURE
            + b" BODY "
            + MULTI_BODY
            + b")\r\na OK FETCH completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a FETCH 1 ENVELOPE"),
            b'* 1 FETCH (ENVELOPE (NIL "parts" ((NIL NIL "alice" "example.com"))'
            b' ((NIL NIL "alice" "example.com")) ((NIL NIL "alice" "example.com"))'
            b' ((NIL NIL "bob" "example.com")) NIL NIL NIL NIL))\r\n'
            b"a OK FETCH completed\r\n",
        )

    def test_manyMessagesInBatches(self) -> None:
        """
        More messages than one batch of structures are all answered, in
        order.
        """
        messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n) for n in range(600)]
        connection = self.fetching(*messages)
        answer = connection.command(b"a FETCH 1:* (ENVELOPE RFC822.SIZE)")
        view = self.view()
        expected = b"".join(
            b'* %d FETCH (ENVELOPE (NIL "%s" NIL NIL NIL NIL NIL NIL NIL NIL)'
            b" RFC822.SIZE %d)\r\n"
            % (
                n,
                self.successResultOf(view.read(info.uid)).split(b"\r")[0][9:],
                info.size,
            )
            for n, info in enumerate(view.messages(), 1)
        )
        self.assertEqual(answer, expected + b"a OK FETCH completed\r\n")

    def test_structureComputedOnce(self) -> None:
        """
        A message's structure is parsed once, for its first FETCH that needs
        it; later ones, even in a new process, use the store's cache.
        """
        parsed: list[int] = []

        def counting(message: bytes) -> MessageStructure:
            parsed.append(len(message))
            return parseStructure(message)

        self.patch(_fetchbody, "parseStructure", counting)
        connection = self.fetching(SIMPLE, MULTI)
        first = connection.command(b"a FETCH 1:2 BODYSTRUCTURE")
        self.assertEqual(sorted(parsed), sorted([len(SIMPLE), len(MULTI)]))
        self.assertEqual(connection.command(b"a FETCH 1:2 BODYSTRUCTURE"), first)
        connection.command(
            b"a FETCH 1:2 (ENVELOPE BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (TO)])"
        )
        self.assertEqual(len(parsed), 2)
        cache = self.root / ALICE_DIRECTORY / "gomail-cache"
        self.assertIn(FETCH_DATA_KIND.encode("ascii"), cache.read_bytes())
        for expected in (2, 4):
            # A new process: its own memory, the same disk; then without the
            # file.
            self.store = MaildirStore(
                self.root, reactor=self.reactor, threadPool=self.pool
            )
            self.backend = StoreBackend(
                UsersChecker(self.users, self.hashing), self.store
            )
            self.factory = self.makeFactory()
            answer = self.selected().command(b"a FETCH 1:2 BODYSTRUCTURE")
            self.assertEqual(answer, first)
            self.assertEqual(len(parsed), expected)
            cache.unlink()

    def test_damagedCacheEntry(self) -> None:
        """
        A cached entry that cannot be read back is computed again from the
        message, and the answer is the same.
        """
        connection = self.fetching(MULTI)
        expected = connection.command(b"a FETCH 1 (BODYSTRUCTURE BODY.PEEK[1.2])")

        def damaged(data: bytes) -> FetchData:
            raise ValueError("damaged")

        self.patch(FetchData, "decode", damaged)
        self.assertEqual(
            connection.command(b"a FETCH 1 (BODYSTRUCTURE BODY.PEEK[1.2])"), expected
        )


class SectionTests(FetchTestCase):
    """
    BODY[section]<partial> and the RFC822 items (RFC 3501 6.4.5).
    """

    def assertSections(
        self, connection: Connection, cases: list[tuple[bytes, bytes]]
    ) -> None:
        """
        Each section of message 1 is sent as a literal of the octets given.
        """
        for section, octets in cases:
            item = b"BODY.PEEK" + section
            label = b"BODY" + section.split(b"<")[0]
            if b"<" in section:
                label += b"<" + section.split(b"<")[1].split(b".")[0] + b">"
            self.assertEqual(
                connection.command(b"a FETCH 1 " + item),
                b"* 1 FETCH (%s %s)\r\na OK FETCH completed\r\n"
                % (label, literal(octets)),
                section,
            )

    def test_parts(self) -> None:
        """
        Parts nested in multiparts and in an encapsulated message, their
        MIME headers, an encapsulated message's header and text; a part
        that does not exist is empty.
        """
        connection = self.fetching(MULTI)
        self.assertSections(
            connection,
            [
                (b"[]", MULTI),
                (b"[HEADER]", MULTI_HEADER),
                (b"[TEXT]", MULTI_TEXT),
                (b"[1]", PART1_BODY),
                (b"[1.MIME]", PART1_HEADER),
                (b"[1.1]", b"plain text"),
                (b"[1.2]", b"<p>html</p>"),
                (b"[1.2.MIME]", b"Content-Type: text/html; charset=utf-8\r\n\r\n"),
                (b"[2]", b"AAEC"),
                (b"[2.MIME]", PART2_HEADER),
                (b"[3]", INNER_MESSAGE),
                (b"[3.HEADER]", b"From: carol@example.com\r\nSubject: inner\r\n\r\n"),
                (b"[3.TEXT]", b"inner body"),
                (b"[3.1]", b"inner body"),
                (b"[4]", b""),
                (b"[1.3]", b""),
                (b"[2.TEXT]", b""),
                (b"[2.1.1]", b""),
            ],
        )

    def test_sameAsReference(self) -> None:
        """
        Every section of every part path, whole or partial, is sent as the
        structure module's reference (L{sectionBytes}) gives it, read with
        the other items or on its own in pieces.
        """
        self.deliver(MULTI)
        self.view()
        for chunkSize in (65536, 7):
            self.factory = self.makeFactory(chunkSize=chunkSize)
            self.assertSameAsReference(self.selected())

    def assertSameAsReference(self, connection: Connection) -> None:
        """
        The sections of message 1, C{MULTI}, are those of the reference,
        asked one by one and together.
        """
        structure = parseStructure(MULTI)
        together = [
            BodySection(True, (), "HEADER.FIELDS", ("SUBJECT",)),
            BodySection(True, (), "TEXT"),
            BodySection(True, (1, 1), partial=(0, 5)),
            BodySection(True, (3,), "TEXT"),
            BodySection(True, (2,)),
            BodySection(True, (9,)),
        ]
        self.assertEqual(
            connection.command(
                b"a FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]"
                b" BODY.PEEK[1.1]<0.5> BODY.PEEK[3.TEXT] BODY.PEEK[2] BODY.PEEK[9]"
                b" RFC822.SIZE)"
            ),
            b"* 1 FETCH (UID 1 %s RFC822.SIZE %d)\r\na OK FETCH completed\r\n"
            % (
                b" ".join(
                    section.label()
                    + b" "
                    + literal(sectionBytes(structure, section, MULTI))
                    for section in together
                ),
                len(MULTI),
            ),
        )
        paths = [(), (1,), (2,), (3,), (4,), (1, 1), (1, 2), (1, 3), (3, 1)]
        paths += [(3, 1, 1), (2, 1), (2, 1, 1), (1, 1, 1)]
        specifiers = [("", ()), ("HEADER", ()), ("TEXT", ()), ("MIME", ())]
        specifiers += [("HEADER.FIELDS", ("SUBJECT", "FROM"))]
        specifiers += [("HEADER.FIELDS.NOT", ("SUBJECT",))]
        for path in paths:
            for specifier, fields in specifiers:
                if specifier == "MIME" and not path:
                    continue
                for partial in (None, (3, 7)):
                    section = BodySection(True, path, specifier, fields, partial)
                    command = b"a FETCH 1 BODY.PEEK" + section.label()[4:]
                    if partial is not None:
                        command = command.rsplit(b"<", 1)[0] + b"<3.7>"
                    self.assertEqual(
                        connection.command(command),
                        b"* 1 FETCH (%s %s)\r\na OK FETCH completed\r\n"
                        % (
                            section.label(),
                            literal(sectionBytes(structure, section, MULTI)),
                        ),
                        command,
                    )

    def test_headerFields(self) -> None:
        """
        HEADER.FIELDS keeps the fields named, folded lines and all, in the
        message's order, then the blank line; HEADER.FIELDS.NOT keeps the
        others; of an encapsulated message, its header's.
        """
        connection = self.fetching(MULTI)
        self.assertEqual(
            connection.command(b"a FETCH 1 BODY.PEEK[HEADER.FIELDS (X-LONG SUBJECT)]"),
            b"* 1 FETCH (BODY[HEADER.FIELDS (X-LONG SUBJECT)] "
            + literal(b"Subject: parts\r\nX-Long: first\r\n  second\r\n\r\n")
            + b")\r\na OK FETCH completed\r\n",
        )
        self.assertEqual(
            connection.command(
                b"a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (X-Long Mime-Version"
                b" Content-Type)]"
            ),
            b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (X-LONG MIME-VERSION CONTENT-TYPE)] "
            + literal(
                b"From: alice@example.com\r\nTo: bob@example.com\r\n"
                b"Subject: parts\r\n\r\n"
            )
            + b")\r\na OK FETCH completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a FETCH 1 BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]"),
            b"* 1 FETCH (BODY[3.HEADER.FIELDS (SUBJECT)] "
            + literal(b"Subject: inner\r\n\r\n")
            + b")\r\na OK FETCH completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a FETCH 1 BODY.PEEK[HEADER.FIELDS (RECEIVED)]"),
            b"* 1 FETCH (BODY[HEADER.FIELDS (RECEIVED)] {2}\r\n\r\n)\r\n"
            b"a OK FETCH completed\r\n",
        )

    def test_headerFieldsExpressionBuiltOnce(self) -> None:
        """
        HEADER.FIELDS over many messages builds its field expression once
        for the command, not once a message, and the answers are the same.
        """
        messages = [b"Subject: %d\r\nX-Other: o\r\n\r\nbody\r\n" % n for n in range(50)]
        connection = self.fetching(*messages)
        _envelope._fieldsPattern.cache_clear()
        answer = connection.command(
            b"a FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT NOT-THERE Date)]"
        )
        self.assertEqual(_envelope._fieldsPattern.cache_info().misses, 1)
        self.assertEqual(
            answer,
            b"".join(
                b"* %d FETCH (BODY[HEADER.FIELDS (SUBJECT NOT-THERE DATE)] %s)\r\n"
                % (n + 1, literal(b"Subject: %d\r\n\r\n" % n))
                for n in range(50)
            )
            + b"a OK FETCH completed\r\n",
        )

    def test_partials(self) -> None:
        """
        C{<start.count>} sends those octets of the section, labelled with
        the start; a start past the end sends nothing; HEADER.FIELDS is
        filtered first, then cut.
        """
        connection = self.fetching(MULTI)
        self.assertSections(
            connection,
            [
                (b"[]<0.4>", MULTI[:4]),
                (b"[]<5.10>", MULTI[5:15]),
                (b"[TEXT]<2.6>", MULTI_TEXT[2:8]),
                (b"[1.1]<6.100>", b"text"),
                (b"[1.1]<10.5>", b""),
                (b"[]<100000.5>", b""),
                (b"[HEADER.FIELDS (SUBJECT)]<9.8>", b"parts\r\n\r"),
            ],
        )

    def test_rfc822Items(self) -> None:
        """
        RFC822, RFC822.HEADER and RFC822.TEXT are named so in the response
        and send the message, its header and its text.
        """
        connection = self.fetching(MULTI)
        self.assertEqual(
            connection.command(b"a FETCH 1 (RFC822.HEADER RFC822.TEXT RFC822)"),
            b"* 1 FETCH (RFC822.HEADER %s RFC822.TEXT %s RFC822 %s FLAGS (\\Seen))\r\n"
            b"a OK FETCH completed\r\n"
            % (literal(MULTI_HEADER), literal(MULTI_TEXT), literal(MULTI)),
        )

    def test_nulInBody(self) -> None:
        """
        A NUL in the message goes as 0x80, the literal's size unchanged
        (RFC 3501 9, CHAR8).
        """
        message = b"Subject: nul\r\n\r\na\x00b\x00\r\n"
        connection = self.fetching(message)
        self.assertEqual(
            connection.command(b"a FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[1])"),
            b"* 1 FETCH (RFC822.SIZE %d BODY[] %s BODY[1] %s)\r\n"
            b"a OK FETCH completed\r\n"
            % (
                len(message),
                literal(message.replace(b"\x00", b"\x80")),
                literal(b"a\x80b\x80\r\n"),
            ),
        )

    def test_emptyMessage(self) -> None:
        """
        A message with no header and no body: every section is empty.
        """
        self.successResultOf(self.account().append("Drafts", b"\r\n"))
        connection = self.selected(b"Drafts")
        self.assertEqual(
            connection.command(
                b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM)] BODY.PEEK[TEXT])"
            ),
            b"* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {2}\r\n\r\n BODY[TEXT] {0}\r\n)"
            b"\r\na OK FETCH completed\r\n",
        )

    @settings(max_examples=40, deadline=None)
    @given(
        start=st.integers(0, len(MULTI) + 10),
        count=st.integers(1, len(MULTI) + 10),
        section=st.sampled_from([b"", b"TEXT", b"1", b"3.HEADER"]),
    )
    def test_partialIsSlice(self, start: int, count: int, section: bytes) -> None:
        """
        Whatever the range, a partial section is the slice of the whole
        section.
        """
        connection = self.__dict__.get("_connection")
        if connection is None:
            connection = self.__dict__["_connection"] = self.fetching(MULTI)
        whole = {
            b"": MULTI,
            b"TEXT": MULTI_TEXT,
            b"1": PART1_BODY,
            b"3.HEADER": b"From: carol@example.com\r\nSubject: inner\r\n\r\n",
        }[section]
        answer = connection.command(
            b"a FETCH 1 BODY.PEEK[%s]<%d.%d>" % (section, start, count)
        )
        self.assertEqual(
            answer,
            b"* 1 FETCH (BODY[%s]<%d> %s)\r\na OK FETCH completed\r\n"
            % (section, start, literal(whole[start : start + count])),
        )


class SeenTests(FetchTestCase):
    """
    The C{\\Seen} side effect (RFC 3501 6.4.5).
    """

    def test_bodySetsSeen(self) -> None:
        """
        BODY[] sets C{\\Seen} on the messages that lack it, and their
        responses carry FLAGS; the next time, nothing changes.
        """
        connection = self.fetching(SIMPLE, SIMPLE)
        self.setFlags([2], ["\\Seen"])
        connection.command(b"n NOOP")
        self.assertEqual(
            connection.command(b"a FETCH 1:2 BODY[TEXT]"),
            b"* 1 FETCH (BODY[TEXT] %s FLAGS (\\Seen))\r\n"
            b"* 2 FETCH (BODY[TEXT] %s)\r\n"
            b"a OK FETCH completed\r\n" % (literal(SIMPLE_BODY), literal(SIMPLE_BODY)),
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 2: {"\\Seen"}})
        self.assertEqual(
            connection.command(b"a FETCH 1 BODY[TEXT]"),
            b"* 1 FETCH (BODY[TEXT] %s)\r\na OK FETCH completed\r\n"
            % (literal(SIMPLE_BODY),),
        )

    def test_flagsAskedFor(self) -> None:
        """
        When FLAGS is asked for, it is sent once, where asked, with
        C{\\Seen}.
        """
        connection = self.fetching(SIMPLE)
        self.assertEqual(
            connection.command(b"a FETCH 1 (FLAGS RFC822.TEXT)"),
            b"* 1 FETCH (FLAGS (\\Seen) RFC822.TEXT %s)\r\na OK FETCH completed\r\n"
            % (literal(SIMPLE_BODY),),
        )

    def test_peekAndHeaderLeaveFlags(self) -> None:
        """
        BODY.PEEK, RFC822.HEADER and the listing items do not set
        C{\\Seen}.
        """
        connection = self.fetching(SIMPLE)
        for items in (
            b"BODY.PEEK[]",
            b"RFC822.HEADER",
            b"(ENVELOPE BODYSTRUCTURE)",
            b"BODY.PEEK[1]",
        ):
            answer = connection.command(b"a FETCH 1 " + items)
            self.assertNotIn(b"FLAGS", answer)
        self.assertEqual(self.stored(), {1: frozenset()})

    def test_examineLeavesFlags(self) -> None:
        """
        In a mailbox opened with EXAMINE, BODY[] and RFC822 set nothing.
        """
        self.deliver(SIMPLE)
        connection = self.login()
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(
            connection.command(b"a FETCH 1 (BODY[TEXT] RFC822.SIZE)"),
            b"* 1 FETCH (BODY[TEXT] %s RFC822.SIZE %d)\r\na OK FETCH completed\r\n"
            % (literal(SIMPLE_BODY), len(SIMPLE)),
        )
        self.assertEqual(self.stored(), {1: frozenset()})

    def test_condstoreAddsUIDAndModSeq(self) -> None:
        """
        Once CONDSTORE is on, a message whose C{\\Seen} a FETCH set is
        answered with its UID and MODSEQ too (RFC 7162 3.1).
        """
        connection = self.fetching(SIMPLE)
        connection.command(b"e ENABLE CONDSTORE")
        answer = connection.command(b"a FETCH 1 BODY[TEXT]")
        modSeq = self.view().messages()[0].modSeq
        self.assertEqual(
            answer,
            b"* 1 FETCH (UID 1 BODY[TEXT] %s FLAGS (\\Seen) MODSEQ (%d))\r\n"
            b"a OK FETCH completed\r\n" % (literal(SIMPLE_BODY), modSeq),
        )


class CondstoreTests(FetchTestCase):
    """
    CHANGEDSINCE and MODSEQ (RFC 7162 3.1.4).
    """

    def test_changedSince(self) -> None:
        """
        CHANGEDSINCE keeps the messages changed since, and adds MODSEQ.
        """
        connection = self.fetching(SIMPLE, SIMPLE, SIMPLE)
        before = max(info.modSeq for info in self.view().messages())
        self.setFlags([2], ["\\Flagged"])
        connection.command(b"n NOOP")
        after = self.view().messages()[1].modSeq
        self.assertGreater(after, before)
        self.assertEqual(
            connection.command(b"a FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (before,)),
            b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (%d))\r\na OK FETCH completed\r\n"
            % (after,),
        )
        self.assertEqual(
            connection.command(
                b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (before,)
            ),
            b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))\r\n"
            b"a OK FETCH completed\r\n" % (after,),
        )
        self.assertEqual(
            connection.command(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (after,)),
            b"a OK FETCH completed\r\n",
        )
        self.assertIn("CONDSTORE", connection.protocol.enabled)

    def test_modSeqItem(self) -> None:
        """
        The MODSEQ item sends the mod-sequence, where asked, and turns
        CONDSTORE on: a later STORE's responses carry UID and MODSEQ.
        """
        connection = self.fetching(SIMPLE)
        modSeq = self.view().messages()[0].modSeq
        self.assertEqual(
            connection.command(b"a FETCH 1 (MODSEQ FLAGS)"),
            b"* 1 FETCH (MODSEQ (%d) FLAGS ())\r\na OK FETCH completed\r\n" % (modSeq,),
        )
        answer = connection.command(b"a STORE 1 +FLAGS (\\Answered)")
        self.assertIn(b"* 1 FETCH (UID 1 FLAGS (\\Answered) MODSEQ (", answer)

    def test_plainFetchAfterCondstore(self) -> None:
        """
        With CONDSTORE on, a FETCH that asks for neither MODSEQ nor UID and
        sets no flag gets neither (RFC 7162 3.1).
        """
        connection = self.fetching(SIMPLE)
        connection.command(b"e ENABLE CONDSTORE")
        self.assertEqual(
            connection.command(b"a FETCH 1 FLAGS"),
            b"* 1 FETCH (FLAGS ())\r\na OK FETCH completed\r\n",
        )


class ExpungedTests(FetchTestCase):
    """
    Messages gone while the client still names them (RFC 2180 4.1).
    """

    def test_expungedElsewhere(self) -> None:
        """
        A message another session expunged is answered from what the
        session knew of it when only that is asked, and the command ends
        with C{OK [EXPUNGEISSUED]} (RFC 2180 4.1.3); when its content is
        asked, it gets no response, the others do, and the command ends
        with C{NO [EXPUNGEISSUED]} (4.1.2).  No EXPUNGE is sent until the
        next command.
        """
        connection = self.fetching(SIMPLE, MULTI, SIMPLE)
        self.expunge(2)
        expected = (
            b"* 1 FETCH (UID 1 RFC822.SIZE %d)\r\n"
            b"* 2 FETCH (UID 2 RFC822.SIZE %d)\r\n"
            b"* 3 FETCH (UID 3 RFC822.SIZE %d)\r\n"
            b"a OK [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
            % (len(SIMPLE), len(MULTI), len(SIMPLE))
        )
        self.assertEqual(connection.command(b"a FETCH 1:3 (UID RFC822.SIZE)"), expected)
        self.assertEqual(
            connection.command(b"a FETCH 2:3 (BODYSTRUCTURE BODY.PEEK[])").split(
                b"\r\n"
            )[-2],
            b"a NO [EXPUNGEISSUED] Some of the requested messages no longer exist",
        )
        self.assertEqual(
            connection.command(b"n NOOP"), b"* 2 EXPUNGE\r\nn OK NOOP completed\r\n"
        )

    def test_uidFetchAfterExpunge(self) -> None:
        """
        UID FETCH sends the pending EXPUNGE first; the UID gone then names
        nothing.
        """
        connection = self.fetching(SIMPLE, MULTI, SIMPLE)
        self.expunge(2)
        self.assertEqual(
            connection.command(b"a UID FETCH 1:3 RFC822.SIZE"),
            b"* 2 EXPUNGE\r\n"
            b"* 1 FETCH (UID 1 RFC822.SIZE %d)\r\n"
            b"* 2 FETCH (UID 3 RFC822.SIZE %d)\r\n"
            b"a OK FETCH completed\r\n" % (len(SIMPLE), len(SIMPLE)),
        )

    def test_fileGoneBehindTheStore(self) -> None:
        """
        A message whose file another process removed is found gone when
        read: no response for it, C{NO [EXPUNGEISSUED]}.
        """
        connection = self.fetching(SIMPLE, MULTI, SIMPLE)
        removeMessageFile(self.root, b"parts")
        self.assertEqual(
            connection.command(b"a FETCH 1:3 BODY.PEEK[TEXT]"),
            b"* 1 FETCH (BODY[TEXT] %s)\r\n"
            b"* 3 FETCH (BODY[TEXT] %s)\r\n"
            b"a NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
            % (literal(SIMPLE_BODY), literal(SIMPLE_BODY)),
        )


def removeMessageFile(root: Path, marker: bytes) -> None:
    """
    Remove the file of Alice's INBOX message that holds C{marker}, as
    another process would.
    """
    for directory in ("cur", "new"):
        path = root / ALICE_DIRECTORY / directory
        for name in os.listdir(path):
            if marker in (path / name).read_bytes():
                (path / name).unlink()
                return
    raise AssertionError(f"no message holds {marker!r}")


class PacedTestCase(FetchTestCase):
    """
    A client that reads the server's answer a piece at a time, its
    transport pausing the server past a mark.
    """

    chunkSize = 4096
    highWater = 16384

    def setUp(self) -> None:
        super().setUp()
        self.factory = self.makeFactory(chunkSize=self.chunkSize)

    def pausingAt(self, connection: Connection, mark: int) -> list[int]:
        """
        Make the connection's transport pause its producer whenever it
        holds more than C{mark} octets, as a TCP transport does past its
        high-water mark.

        @return: the amounts it held each time it paused.
        """
        transport = connection.transport
        write = transport.write
        held: list[int] = []

        def pausing(data: bytes) -> None:
            write(data)
            if len(transport.value()) > mark and not connection.protocol.writePaused:
                held.append(len(transport.value()))
                transport.producer.pauseProducing()

        transport.write = pausing  # type: ignore[method-assign]
        return held

    def drain(self, connection: Connection, bound: int = 1000) -> bytes:
        """
        Read what the server wrote and let it go on, until it answers.
        """
        out = [connection.read()]
        for _ in range(bound):
            producer = connection.transport.producer
            if answered(b"".join(out)) or producer is None:
                break
            producer.resumeProducing()
            out.append(connection.read())
        return b"".join(out)


class StreamingTests(PacedTestCase):
    """
    A large item is read and written a piece at a time, no faster than the
    client reads.
    """

    def setUp(self) -> None:
        super().setUp()
        self.big = b"Subject: big\r\n\r\n" + b"".join(
            b"line %06d of the body\r\n" % (n,) for n in range(12000)
        )

    def test_backpressure(self) -> None:
        """
        The server stops writing while the transport is full, holding about
        a chunk past the mark, and goes on when it drains; the message
        arrives whole.
        """
        connection = self.fetching(self.big)
        held = self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
        self.assertTrue(connection.protocol.writePaused)
        first = connection.transport.value()
        self.assertLess(len(first), len(self.big) // 4)
        self.reactor.advance(60)
        self.assertEqual(connection.transport.value(), first)
        answer = self.drain(connection)
        self.assertEqual(
            answer,
            b"* 1 FETCH (BODY[] %s)\r\na OK FETCH completed\r\n" % (literal(self.big),),
        )
        self.assertGreater(len(held), 10)
        self.assertLessEqual(max(held), self.highWater + 8192 + self.chunkSize)

    def test_manySmallMessages(self) -> None:
        """
        Small messages too are written no faster than the client reads.
        """
        messages = [b"Subject: %d\r\n\r\n" % (n,) + b"x" * 1000 for n in range(100)]
        connection = self.fetching(*messages)
        held = self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1:* BODY.PEEK[TEXT]\r\n")
        answer = self.drain(connection)
        self.assertEqual(
            answer,
            b"".join(
                b"* %d FETCH (BODY[TEXT] %s)\r\n" % (n + 1, literal(b"x" * 1000))
                for n in range(100)
            )
            + b"a OK FETCH completed\r\n",
        )
        self.assertGreater(len(held), 3)
        self.assertLessEqual(max(held), self.highWater + 8192 + self.chunkSize)

    def test_clientGone(self) -> None:
        """
        A client that goes mid-FETCH stops it: nothing more is written,
        nothing is logged.
        """
        connection = self.fetching(self.big)
        self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1:1 BODY[]\r\n")
        sent = connection.transport.value()
        connection.lose()
        self.assertEqual(connection.transport.value(), sent)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_clientGoneDuringStoreCall(self) -> None:
        """
        A client that goes while the store works for its FETCH stops it
        quietly once the store answers.
        """
        connection = self.fetching(SIMPLE, MULTI)
        self.pool.now = False
        connection.protocol.dataReceived(b"a FETCH 1:* (BODYSTRUCTURE BODY[])\r\n")
        connection.lose()
        for _ in range(10):
            self.pool.runAll()
        self.assertEqual(connection.read(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_messageGoneMidLiteral(self) -> None:
        """
        A message that goes while its literal is being sent cannot be
        answered: the connection is closed.
        """
        connection = self.fetching(self.big)
        self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
        removeMessageFile(self.root, b"Subject: big")
        answer = self.drain(connection)
        self.assertTrue(connection.closed)
        self.assertTrue(
            answer.startswith(b"* 1 FETCH (BODY[] {%d}\r\n" % len(self.big))
        )
        self.assertLess(len(answer), len(self.big))

    def test_messageGoneBeforeLiteral(self) -> None:
        """
        A large message found gone before anything of its response is sent
        gets no response.
        """
        connection = self.fetching(SIMPLE, self.big)
        removeMessageFile(self.root, b"Subject: big")
        self.assertEqual(
            connection.command(b"a FETCH 1:2 (UID BODY.PEEK[])"),
            b"* 1 FETCH (UID 1 BODY[] %s)\r\n"
            b"a NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
            % (literal(SIMPLE),),
        )


class LargeMessageTests(PacedTestCase):
    """
    Messages of several MiB, read in order through the store's reader:
    exact, in bounded memory, at any offset.
    """

    chunkSize = 64 * 1024
    highWater = 64 * 1024

    def setUp(self) -> None:
        super().setUp()
        self.big = b"Subject: large\r\n\r\n" + b"".join(
            b"%07d body line\r\n" % (n,)
            + (b"a lone \r and a NUL \x00\r\n" if n % 1000 == 0 else b"")
            for n in range(5 * 1024 * 1024 // 18)
        )

    def stored(self) -> bytes:
        """
        The message as the store reads it, as FETCH sends it (NUL as 0x80).
        """
        [info] = self.folder().messages()
        data: bytes = self.successResultOf(self.folder().read(info.uid))
        return data.replace(b"\x00", b"\x80")

    def expectDrained(self, connection: Connection, expected: bytes) -> None:
        """
        Read the answer, letting the server go on, and check it as it comes
        without keeping it.
        """
        position = 0
        for _ in range(10_000):
            received = connection.read()
            self.assertEqual(received, expected[position : position + len(received)])
            position += len(received)
            producer = connection.transport.producer
            if position >= len(expected) or producer is None:
                break
            producer.resumeProducing()
        self.assertEqual(position, len(expected))

    def test_exactAndBounded(self) -> None:
        """
        A 5 MiB message (with lone CRs and a NUL) arrives exact to a client
        that reads slowly; the transport holds about a chunk past its mark,
        and the server and the transport hold under 1.5 MiB in all.
        """
        connection = self.fetching(self.big)
        octets = self.stored()
        self.assertGreater(len(octets), 5 * 1024 * 1024)
        expected = b"* 1 FETCH (BODY[] %s)\r\na OK FETCH completed\r\n" % (
            literal(octets),
        )
        held = self.pausingAt(connection, self.highWater)
        gc.collect()
        tracemalloc.start()
        try:
            connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
            self.expectDrained(connection, expected)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertGreater(len(held), 30)
        self.assertLessEqual(max(held), self.highWater + 8192 + self.chunkSize)
        self.assertLess(peak, 1536 * 1024)

    def test_partials(self) -> None:
        """
        Partials of a large message, deep into it and past its end, and of
        its text, are the octets asked for.
        """
        connection = self.fetching(self.big)
        octets = self.stored()
        text = len(b"Subject: large\r\n\r\n")
        for item, label, start, count in [
            (b"BODY.PEEK[]<3000000.300000>", b"BODY[]<3000000>", 3000000, 300000),
            (b"BODY.PEEK[TEXT]<1000.200000>", b"BODY[TEXT]<1000>", text + 1000, 200000),
            (b"BODY.PEEK[]<5000000.9000000>", b"BODY[]<5000000>", 5000000, 9000000),
            (b"BODY.PEEK[]<9000000.10>", b"BODY[]<9000000>", 9000000, 10),
        ]:
            self.assertEqual(
                connection.command(b"a FETCH 1 (%s UID)" % (item,)),
                b"* 1 FETCH (%s %s UID 1)\r\na OK FETCH completed\r\n"
                % (label, literal(octets[start : start + count])),
            )

    def test_largePart(self) -> None:
        """
        A large part of a multipart message is read from its start.
        """
        attachment = b"".join(b"%07d base64ish line\r\n" % (n,) for n in range(40000))
        message = (
            b"Subject: parts\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n\r\n"
            + attachment
            + b"\r\n--b--\r\n"
        )
        connection = self.fetching(message)
        self.assertEqual(
            connection.command(b"a FETCH 1 BODY.PEEK[2]"),
            b"* 1 FETCH (BODY[2] %s)\r\na OK FETCH completed\r\n"
            % (literal(attachment),),
        )

    def test_clientGoneLetsGo(self) -> None:
        """
        A client that goes mid-FETCH leaves no message file open.
        """
        connection = self.fetching(self.big)
        before = openDescriptors()
        self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
        self.assertEqual(openDescriptors(), before + 1)
        connection.lose()
        self.assertEqual(openDescriptors(), before)

    def test_clientGoneDuringStoreCall(self) -> None:
        """
        A client that goes while the store opens or reads its message
        leaves no message file open once the store is done.
        """
        for steps in range(4):
            connection = self.fetching(self.big)
            before = openDescriptors()
            self.pool.now = False
            connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
            for _ in range(steps):
                self.pool.runAll()
            connection.lose()
            for _ in range(10):
                self.pool.runAll()
            self.pool.now = True
            self.assertEqual(openDescriptors(), before)
            self.assertEqual(self.flushLoggedErrors(), [])

    def test_expungedElsewhereMidLiteral(self) -> None:
        """
        A message expunged by another session while its literal is being
        sent cannot be answered: the connection is closed, the file let go.
        """
        connection = self.fetching(self.big)
        before = openDescriptors()
        self.pausingAt(connection, self.highWater)
        connection.protocol.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
        self.expunge(1)
        answer = self.drain(connection)
        self.assertTrue(connection.closed)
        self.assertLess(len(answer), len(self.big))
        self.assertEqual(openDescriptors(), before)


def answered(answer: bytes) -> bool:
    """
    Whether an answer ends with the tagged response of C{a}.
    """
    return answer.endswith(b"\r\n") and answer[:-2].rsplit(b"\r\n", 1)[-1].startswith(
        b"a "
    )


class FetchDataTests(MailboxTestCase):
    """
    L{FetchData}: the form the store caches.
    """

    def test_roundTrip(self) -> None:
        """
        The cached form reads back as what was kept.
        """
        data = FetchData.fromStructure(parseStructure(MULTI))
        self.assertEqual(FetchData.decode(data.encode()), data)
        self.assertEqual(data.structure(), parseStructure(MULTI))
        self.assertEqual(data.headerEnd, len(MULTI_HEADER))
        self.assertEqual(data.bodyStructure, MULTI_BODYSTRUCTURE)

    def test_literalsInValues(self) -> None:
        """
        A value with a literal (an 8-bit subject) reads back.
        """
        message = b"Subject: caf\xc3\xa9\r\n\r\nx"
        data = FetchData.fromStructure(parseStructure(message))
        self.assertIn(b"{5}\r\ncaf\xc3\xa9", data.envelope)
        self.assertEqual(FetchData.decode(data.encode()), data)

    def test_damaged(self) -> None:
        """
        A form that is short, of another version, or whose values could
        break a response's framing is refused.
        """
        good = FetchData.fromStructure(parseStructure(SIMPLE))

        def withEnvelope(envelope: bytes) -> bytes:
            return FetchData(
                good.size,
                good.headerEnd,
                envelope,
                good.body,
                good.bodyStructure,
                good.encodedStructure,
            ).encode()

        encoded = good.encode()
        for damaged in (
            b"",
            encoded[:20],
            b"\x02" + encoded[1:],
            encoded[: len(encoded) - len(good.encodedStructure) - 3],
            withEnvelope(b'("a\r\n* BYE")'),
            withEnvelope(b'("a\n")'),
            withEnvelope(b"({9}\r\nab)"),
            withEnvelope(b'({2}\r\nab\r\n")'),
            withEnvelope(b'("a\x00")'),
            withEnvelope(b"(x{1}\n"),
        ):
            self.assertRaises(ValueError, FetchData.decode, damaged)
        self.assertEqual(
            FetchData.decode(withEnvelope(b"({2}\r\nab {1}\r\nc)")).envelope,
            b"({2}\r\nab {1}\r\nc)",
        )


class InternalDateTests(MailboxTestCase):
    """
    L{internalDate}: RFC 3501 9 C{date-time}, in UTC.
    """

    def test_dates(self) -> None:
        """
        The day is two digits, the month its English abbreviation, the zone
        C{+0000}; dates outside four-digit years are clamped.
        """
        for timestamp, expected in (
            (0.0, b'"01-Jan-1970 00:00:00 +0000"'),
            (1709622489.9, b'"05-Mar-2024 07:08:09 +0000"'),
            (951782400.0, b'"29-Feb-2000 00:00:00 +0000"'),
            (-5.0, b'"01-Jan-1970 00:00:00 +0000"'),
            (1e15, b'"31-Dec-9999 23:59:59 +0000"'),
        ):
            self.assertEqual(internalDate(timestamp), expected)
