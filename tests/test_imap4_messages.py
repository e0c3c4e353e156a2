"""
Tests for L{gomail_twisted.imap4._storing} and
L{gomail_twisted.imap4._transfer}: STORE, COPY, MOVE and their UID forms,
over the real server and a real store, bytes on the wire.
"""

from __future__ import annotations

from gomail_twisted.imap4._transfer import copyUID
from gomail_twisted.maildir import CopyResult
from tests._imaphelpers import tagged
from tests.test_imap4_select import MailboxTestCase


class StoreTests(MailboxTestCase):
    """
    STORE and UID STORE (RFC 3501 6.4.6, 6.4.8).
    """

    def test_addFlags(self) -> None:
        """
        C{+FLAGS} adds flags and answers each message's flags as they are
        now.
        """
        self.fill(2)
        self.setFlags([2], ["\\Answered"])
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 1:2 +FLAGS (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Seen))\r\n"
            b"* 2 FETCH (FLAGS (\\Answered \\Seen))\r\n"
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 2: {"\\Answered", "\\Seen"}})

    def test_replaceFlags(self) -> None:
        """
        C{FLAGS} replaces the flags, C{\\Recent} stays.
        """
        self.fill(1)
        self.setFlags([1], ["\\Answered", "\\Draft"])
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 1 FLAGS (\\Flagged)"),
            b"* 1 FETCH (FLAGS (\\Flagged))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Flagged"}})

    def test_removeFlags(self) -> None:
        """
        C{-FLAGS} removes flags; a message without them is answered as it
        is.
        """
        self.fill(2)
        self.setFlags([1], ["\\Seen", "\\Flagged"])
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 1:2 -FLAGS (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Flagged))\r\n"
            b"* 2 FETCH (FLAGS ())\r\n"
            b"a OK STORE completed\r\n",
        )

    def test_silent(self) -> None:
        """
        C{.SILENT} stores without a FETCH response.
        """
        self.fill(2)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 1:* +FLAGS.SILENT (\\Seen)"),
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 2: {"\\Seen"}})

    def test_uidStore(self) -> None:
        """
        UID STORE names messages by UID, and its FETCH responses carry the
        UID.
        """
        self.fill(3)
        self.expunge(1)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a UID STORE 3 +FLAGS (\\Seen)"),
            b"* 2 FETCH (UID 3 FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )

    def test_keywords(self) -> None:
        """
        A keyword new to the mailbox is announced in FLAGS and
        PERMANENTFLAGS before the FETCH responses; one known is not
        announced again.
        """
        self.fill(2)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 1 +FLAGS ($Work Later)"),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Later)\r\n"
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" $Work Later \\*)] Flags permitted\r\n"
            b"* 1 FETCH (FLAGS ($Work Later \\Recent))\r\n"
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a STORE 2 +FLAGS ($Work)"),
            b"* 2 FETCH (FLAGS ($Work \\Recent))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: {"$Work", "Later"}, 2: {"$Work"}})

    def test_readOnly(self) -> None:
        """
        STORE in a mailbox opened with EXAMINE is refused with
        C{NO [READ-ONLY]}, and changes nothing.
        """
        self.fill(1)
        connection = self.login()
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(
            connection.command(b"a STORE 1 +FLAGS (\\Seen)"),
            b"a NO [READ-ONLY] Mailbox is read-only\r\n",
        )
        self.assertEqual(
            connection.command(b"a UID STORE 1 +FLAGS.SILENT (\\Seen)"),
            b"a NO [READ-ONLY] Mailbox is read-only\r\n",
        )
        self.assertEqual(self.stored(), {1: frozenset()})


class SequenceSetTests(MailboxTestCase):
    """
    How STORE reads its sequence set (RFC 3501 6.4.8, 9).
    """

    def test_starOnEmptyMailbox(self) -> None:
        """
        C{*} names no message in an empty mailbox: STORE by sequence
        number is refused with BAD, UID STORE names nothing.
        """
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE * +FLAGS (\\Seen)"),
            b"a BAD Invalid message sequence number\r\n",
        )
        self.assertEqual(
            connection.command(b"a STORE 1:* +FLAGS (\\Seen)"),
            b"a BAD Invalid message sequence number\r\n",
        )
        self.assertEqual(
            connection.command(b"a UID STORE * +FLAGS (\\Seen)"),
            b"a OK STORE completed\r\n",
        )

    def test_pastLastMessage(self) -> None:
        """
        A sequence number past the last message is refused with BAD, and
        nothing is stored.
        """
        self.fill(4)
        connection = self.selected()
        for numbers in (b"5", b"5:2", b"2:5", b"1,9", b"4294967295"):
            self.assertEqual(
                connection.command(b"a STORE " + numbers + b" +FLAGS (\\Seen)"),
                b"a BAD Invalid message sequence number\r\n",
                numbers,
            )
        self.assertEqual(set(self.stored().values()), {frozenset()})

    def test_reversedRange(self) -> None:
        """
        A range may be written high end first: C{4:2} is C{2:4}.
        """
        self.fill(5)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE 4:2 +FLAGS.SILENT (\\Seen)"),
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(
            [uid for uid, flags in self.stored().items() if flags], [2, 3, 4]
        )

    def test_starIsLast(self) -> None:
        """
        C{*} is the last message, and C{n:*} runs to it.
        """
        self.fill(3)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a STORE * +FLAGS (\\Seen)"),
            b"* 3 FETCH (FLAGS (\\Seen \\Recent))\r\na OK STORE completed\r\n",
        )
        answer = connection.command(b"a STORE 2:* +FLAGS (\\Flagged)")
        self.assertEqual(answer.count(b" FETCH "), 2)

    def test_uidRanges(self) -> None:
        """
        UIDs of no message are passed over, even in a range as wide as
        UIDs go; a set naming none stores nothing and answers OK.
        """
        self.fill(3)
        self.expunge(2)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"a UID STORE 1:4294967295 +FLAGS.SILENT (\\Seen)"),
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 3: {"\\Seen"}})
        self.assertEqual(
            connection.command(b"a UID STORE 2,9:4294967295 +FLAGS (\\Flagged)"),
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(
            connection.command(b"a UID STORE 4294967295:3 +FLAGS (\\Flagged)"),
            b"* 2 FETCH (UID 3 FLAGS (\\Flagged \\Seen))\r\na OK STORE completed\r\n",
        )


class ConditionalStoreTests(MailboxTestCase):
    """
    STORE with C{UNCHANGEDSINCE} (RFC 7162 3.1.3).
    """

    def modSeqs(self) -> dict[int, int]:
        view = self.view()
        self.successResultOf(view.refresh())
        return {m.uid: m.modSeq for m in view.messages()}

    def test_modified(self) -> None:
        """
        A message changed since the mod-sequence given is left alone and
        named in C{OK [MODIFIED]}; the others are stored and answered with
        their UID and new MODSEQ.
        """
        self.fill(3)
        connection = self.selected()
        before = max(self.modSeqs().values())
        self.setFlags([2], ["\\Flagged"])
        answer = connection.command(
            b"a STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % (before,)
        )
        modSeqs = self.modSeqs()
        self.assertEqual(
            answer,
            b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\n"
            b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\n"
            b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (%d))\r\n"
            b"a OK [MODIFIED 2] Conditional STORE failed\r\n"
            % (modSeqs[1], modSeqs[3], modSeqs[2]),
        )
        self.assertEqual(
            self.stored(), {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: {"\\Seen"}}
        )

    def test_modifiedByUID(self) -> None:
        """
        UID STORE names the messages left alone by UID.
        """
        self.fill(4)
        self.expunge(1)
        connection = self.selected(b"INBOX (CONDSTORE)")
        before = max(self.modSeqs().values())
        connection.command(b"a UID STORE 3:4 +FLAGS.SILENT (\\Answered)")
        answer = connection.command(
            b"a UID STORE 2:4 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % (before,)
        )
        self.assertEqual(
            answer.split(b"\r\n")[-2], b"a OK [MODIFIED 3:4] Conditional STORE failed"
        )

    def test_silentShowsModSeq(self) -> None:
        """
        With CONDSTORE on, even C{.SILENT} answers the messages it changed,
        with their MODSEQ; those it did not change are not answered.
        """
        self.fill(2)
        self.setFlags([2], ["\\Seen"])
        connection = self.selected(b"INBOX (CONDSTORE)")
        answer = connection.command(b"a STORE 1:2 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(
            answer,
            b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (%d))\r\n"
            b"a OK STORE completed\r\n" % (self.modSeqs()[1],),
        )

    def test_unchangedSinceTurnsCondstoreOn(self) -> None:
        """
        A STORE with C{UNCHANGEDSINCE} turns CONDSTORE on for what follows
        (RFC 7162 3.1).
        """
        self.fill(1)
        connection = self.selected()
        connection.command(b"a STORE 1 (UNCHANGEDSINCE 4294967295) +FLAGS.SILENT ()")
        self.assertEqual(
            connection.command(b"a STORE 1 +FLAGS (\\Seen)"),
            b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\n"
            b"a OK STORE completed\r\n" % (self.modSeqs()[1],),
        )


class CopyTests(MailboxTestCase):
    """
    COPY and UID COPY (RFC 3501 6.4.7, RFC 4315 3).
    """

    def test_copy(self) -> None:
        """
        COPY copies the messages with their flags and answers with
        C{COPYUID}, runs of UIDs as ranges.
        """
        self.fill(4)
        self.fill(2, "Archive")
        self.setFlags([2], ["\\Flagged", "$Work"])
        connection = self.selected()
        self.assertEqual(
            connection.command(b"c COPY 1:2,4 Archive"),
            b"c OK [COPYUID %d 1:2,4 3:5] COPY completed\r\n"
            % (self.uidValidity("Archive"),),
        )
        self.assertEqual(
            self.stored("Archive"),
            {
                1: frozenset(),
                2: frozenset(),
                3: frozenset(),
                4: {"\\Flagged", "$Work"},
                5: frozenset(),
            },
        )
        self.assertEqual(list(self.stored()), [1, 2, 3, 4])

    def test_uidCopyNothing(self) -> None:
        """
        UID COPY of UIDs naming no message copies nothing and answers OK
        without C{COPYUID}.
        """
        self.fill(1)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"c UID COPY 5:9 Archive"),
            b"c OK No messages to copy\r\n",
        )
        self.assertEqual(self.stored("Archive"), {})

    def test_tryCreate(self) -> None:
        """
        COPY and MOVE to a mailbox that does not exist are refused with
        C{NO [TRYCREATE]}.
        """
        self.fill(1)
        connection = self.selected()
        for command in (b"COPY", b"MOVE", b"UID COPY", b"UID MOVE"):
            self.assertEqual(
                connection.command(b"c " + command + b" 1 Nope"),
                b"c NO [TRYCREATE] Mailbox does not exist\r\n",
            )
        self.assertEqual(list(self.stored()), [1])

    def test_copyIntoSelected(self) -> None:
        """
        COPY into the selected mailbox itself: the copies are new messages
        there, announced with EXISTS and RECENT before the tagged OK.
        """
        self.fill(2)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"c COPY 1:2 INBOX"),
            b"* 4 EXISTS\r\n* 4 RECENT\r\n"
            b"c OK [COPYUID %d 1:2 3:4] COPY completed\r\n"
            % (self.uidValidity("INBOX"),),
        )
        self.assertEqual(list(self.stored()), [1, 2, 3, 4])

    def test_copyFromReadOnly(self) -> None:
        """
        A mailbox opened with EXAMINE may be copied from.
        """
        self.fill(1)
        connection = self.login()
        connection.command(b"s EXAMINE INBOX")
        answer = connection.command(b"c COPY 1 Archive")
        self.assertEqual(
            answer,
            b"c OK [COPYUID %d 1 1] COPY completed\r\n"
            % (self.uidValidity("Archive"),),
        )

    def test_copySeenInDestination(self) -> None:
        """
        A session with the destination selected is told of the copies.
        """
        self.fill(1)
        watcher = self.selected(b"Archive")
        connection = self.selected()
        connection.command(b"c COPY 1 Archive")
        self.assertEqual(
            watcher.command(b"n NOOP"),
            b"* 1 EXISTS\r\n* 1 RECENT\r\nn OK NOOP completed\r\n",
        )


class MoveTests(MailboxTestCase):
    """
    MOVE and UID MOVE (RFC 6851).
    """

    def test_move(self) -> None:
        """
        MOVE answers C{COPYUID} in an untagged OK, then the EXPUNGE
        responses, then OK; the messages are in the destination only.
        """
        self.fill(4)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"m MOVE 2:3 Archive"),
            b"* OK [COPYUID %d 2:3 1:2] Moved\r\n"
            b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 RECENT\r\n"
            b"m OK MOVE completed\r\n" % (self.uidValidity("Archive"),),
        )
        self.assertEqual(list(self.stored()), [1, 4])
        self.assertEqual(list(self.stored("Archive")), [1, 2])

    def test_uidMove(self) -> None:
        """
        UID MOVE names messages by UID; UIDs of no message are passed over.
        """
        self.fill(3)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"m UID MOVE 3:7 Archive"),
            b"* OK [COPYUID %d 3 1] Moved\r\n* 3 EXPUNGE\r\n* 2 RECENT\r\n"
            b"m OK MOVE completed\r\n" % (self.uidValidity("Archive"),),
        )
        self.assertEqual(
            connection.command(b"m UID MOVE 3:7 Archive"),
            b"m OK No messages to move\r\n",
        )

    def test_moveReadOnly(self) -> None:
        """
        MOVE from a mailbox opened with EXAMINE is refused with
        C{NO [READ-ONLY]}, and moves nothing.
        """
        self.fill(1)
        connection = self.login()
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(
            connection.command(b"m MOVE 1 Archive"),
            b"m NO [READ-ONLY] Mailbox is read-only\r\n",
        )
        self.assertEqual(list(self.stored()), [1])
        self.assertEqual(self.stored("Archive"), {})

    def test_moveSeenByOthers(self) -> None:
        """
        Another session with the source selected is told of the expunge,
        one with the destination of the new message.
        """
        self.fill(2)
        source = self.selected()
        destination = self.selected(b"Archive")
        connection = self.selected()
        connection.command(b"m MOVE 1 Archive")
        self.assertEqual(
            source.command(b"n NOOP"),
            b"* 1 EXPUNGE\r\n* 1 RECENT\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            destination.command(b"n NOOP"),
            b"* 1 EXISTS\r\n* 1 RECENT\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            tagged(connection.command(b"n NOOP"), b"n"), b"n OK NOOP completed"
        )


class CopyUIDTests(MailboxTestCase):
    """
    L{copyUID}: the C{COPYUID} response code (RFC 4315 3).
    """

    def test_ranges(self) -> None:
        """
        Runs of consecutive UIDs are written as ranges, in the order the
        messages were copied.
        """
        result = CopyResult(7, (1, 2, 3, 7, 9, 10), (20, 21, 22, 23, 24, 25))
        self.assertEqual(copyUID(result), "COPYUID 7 1:3,7,9:10 20:25")

    def test_nothing(self) -> None:
        """
        Nothing copied has no code.
        """
        self.assertIsNone(copyUID(CopyResult(7, (), ())))
