"""
Tests for L{gomail_twisted.imap4._selected}: what one session is told of
the changes made elsewhere (another session, a delivery, the store's own
views), and when (RFC 3501 5.2, 7.4.1; RFC 2180).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4._commands import MAX_NUMBER, SequenceSet
from gomail_twisted.imap4._parse import parseCommand
from gomail_twisted.imap4._selected import SelectedMailbox
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir import MessageInfo
from tests._imaphelpers import Connection
from tests.test_imap4_select import MailboxTestCase

BYE = b"* BYE Selected mailbox was deleted, have to disconnect\r\n"


class SessionsTestCase(MailboxTestCase):
    """
    Two sessions on one mailbox, A watching and B changing it.
    """

    def sessions(
        self, count: int, mailbox: bytes = b"INBOX"
    ) -> tuple[Connection, Connection]:
        """
        Put C{count} messages in INBOX, let the store's own view take
        their C{\\Recent}, and select the mailbox in two sessions.
        """
        self.fill(count)
        self.view()
        return self.selected(mailbox), self.selected(mailbox)

    def ended(self, a: Connection, name: str, status: str = "OK") -> bytes:
        """
        What A is told at the end of a command that sent nothing itself.
        """
        command = parseCommand([b"t " + name.encode()], [])
        a.protocol.complete("t", IMAPStatus(status, f"{command.name} done"), command)
        return a.read()


class FlagUpdateTests(SessionsTestCase):
    """
    Flag changes made elsewhere (RFC 3501 7.4.2).
    """

    def test_shownAtNextCommand(self) -> None:
        """
        A flag change in B reaches A as an untagged FETCH at A's next
        command, never between commands.
        """
        a, b = self.sessions(3)
        b.command(b"b STORE 2 +FLAGS (\\Flagged)")
        self.assertEqual(a.read(), b"")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 2 FETCH (FLAGS (\\Flagged))\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(a.command(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_shownDuringStore(self) -> None:
        """
        Flag changes may be told during STORE, after its own responses.
        """
        a, b = self.sessions(3)
        b.command(b"b STORE 2 +FLAGS (\\Flagged)")
        self.assertEqual(
            a.command(b"a STORE 1 +FLAGS (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS (\\Flagged))\r\n"
            b"a OK STORE completed\r\n",
        )

    def test_latestOnly(self) -> None:
        """
        A message changed several times is told of once, as it is now.
        """
        a, b = self.sessions(1)
        b.command(b"b STORE 1 +FLAGS (\\Flagged)")
        b.command(b"b STORE 1 +FLAGS (\\Answered)")
        b.command(b"b STORE 1 -FLAGS (\\Flagged)")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 1 FETCH (FLAGS (\\Answered))\r\nn OK NOOP completed\r\n",
        )

    def test_ownSilentStoreKept(self) -> None:
        """
        A change of B still to be told is told as the message is after A's
        own silent STORE, never undoing it.
        """
        a, b = self.sessions(1)
        b.command(b"b STORE 1 +FLAGS (\\Flagged)")
        self.assertEqual(
            a.command(b"a STORE 1 +FLAGS.SILENT (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen))\r\na OK STORE completed\r\n",
        )

    def test_ownStoreSupersedes(self) -> None:
        """
        A's own STORE answers the message as it is now; B's earlier change
        is not told again after it.
        """
        a, b = self.sessions(1)
        b.command(b"b STORE 1 +FLAGS (\\Flagged)")
        self.assertEqual(
            a.command(b"a STORE 1 +FLAGS (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(a.command(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_condstore(self) -> None:
        """
        With CONDSTORE on, an unsolicited FETCH carries the UID and the
        MODSEQ (RFC 7162 3.1).
        """
        a, b = self.sessions(2, b"INBOX (CONDSTORE)")
        b.command(b"b STORE 2 +FLAGS (\\Flagged)")
        modSeq = self.view().messages()[1].modSeq
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))\r\n"
            b"n OK NOOP completed\r\n" % (modSeq,),
        )

    def test_newKeyword(self) -> None:
        """
        A keyword B brings into use is announced to A in FLAGS and
        PERMANENTFLAGS before the FETCH (RFC 3501 7.2.6).
        """
        a, b = self.sessions(1)
        b.command(b"b STORE 1 +FLAGS ($Work)")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" $Work \\*)] Flags permitted\r\n"
            b"* 1 FETCH (FLAGS ($Work))\r\nn OK NOOP completed\r\n",
        )

    def test_newKeywordReadOnly(self) -> None:
        """
        A session that examines the mailbox is told of a new keyword with
        no permanent flags.
        """
        a, b = self.sessions(1)
        a.command(b"s EXAMINE INBOX")
        b.command(b"b STORE 1 +FLAGS ($Work)")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
            b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
            b"* 1 FETCH (FLAGS ($Work))\r\nn OK NOOP completed\r\n",
        )


class ExpungeUpdateTests(SessionsTestCase):
    """
    Messages expunged elsewhere (RFC 3501 7.4.1, RFC 2180 4).
    """

    def test_shownAtNoop(self) -> None:
        """
        An expunge in B reaches A as EXPUNGE at A's next NOOP.
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(a.read(), b"")
        self.assertEqual(
            a.command(b"n NOOP"), b"* 2 EXPUNGE\r\nn OK NOOP completed\r\n"
        )

    def test_numbersOfSeveral(self) -> None:
        """
        Several expunged messages are told in ascending order, each number
        lowered by those before it.
        """
        a, b = self.sessions(5)
        b.command(b"b STORE 1,3:4 +FLAGS.SILENT (\\Deleted)")
        b.command(b"b EXPUNGE")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 1 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            a.command(b"a STORE 2 +FLAGS (\\Seen)"),
            b"* 2 FETCH (FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {2: frozenset(), 5: {"\\Seen"}})

    def test_notDuringStore(self) -> None:
        """
        No EXPUNGE is sent during STORE: A's sequence numbers stay what A
        was told, and the EXPUNGE waits for the next command that allows
        it.
        """
        a, _ = self.sessions(4)
        self.expunge(2)
        self.assertEqual(
            a.command(b"a STORE 3 +FLAGS (\\Seen)"),
            b"* 3 FETCH (FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored()[3], {"\\Seen"})
        self.assertEqual(
            a.command(b"n NOOP"), b"* 2 EXPUNGE\r\nn OK NOOP completed\r\n"
        )
        self.assertEqual(
            a.command(b"a STORE 3 +FLAGS (\\Flagged)"),
            b"* 3 FETCH (FLAGS (\\Flagged))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored()[4], {"\\Flagged"})

    def test_notDuringFetchOrSearch(self) -> None:
        """
        No EXPUNGE is sent at the end of FETCH or SEARCH by sequence
        number; other updates are.
        """
        a, b = self.sessions(3)
        self.expunge(2)
        b.command(b"b STORE 3 +FLAGS (\\Seen)")
        self.assertEqual(
            self.ended(a, "FETCH 1 FLAGS"),
            b"* 3 FETCH (FLAGS (\\Seen))\r\nt OK FETCH done\r\n",
        )
        self.assertEqual(self.ended(a, "SEARCH ALL"), b"t OK SEARCH done\r\n")
        self.assertEqual(self.ended(a, "FETCH 1 FLAGS", "BAD"), b"t BAD FETCH done\r\n")

    def test_uidFetchAndSearch(self) -> None:
        """
        UID FETCH and UID SEARCH may send EXPUNGE (RFC 3501 7.4.1).
        """
        a, _ = self.sessions(3)
        self.expunge(1)
        self.assertEqual(
            self.ended(a, "UID FETCH 1 FLAGS"), b"* 1 EXPUNGE\r\nt OK FETCH done\r\n"
        )
        self.expunge(2)
        self.assertEqual(
            self.ended(a, "UID SEARCH ALL"), b"* 1 EXPUNGE\r\nt OK SEARCH done\r\n"
        )

    def test_allowedCommands(self) -> None:
        """
        NOOP, CHECK, COPY and the UID commands send the pending EXPUNGEs.
        """
        commands = [
            b"n NOOP",
            b"n CHECK",
            b"n COPY 2 Archive",
            b"n UID COPY 1:* Archive",
            b"n UID STORE 1:* +FLAGS.SILENT ()",
            b"n UID EXPUNGE 1:*",
            b"n MOVE 2 Archive",
        ]
        self.fill(2 * len(commands))
        self.view()
        for command in commands:
            a = self.selected()
            uid = self.view().messages()[0].uid
            self.expunge(uid)
            answer = a.command(command)
            self.assertIn(b"* 1 EXPUNGE\r\n", answer, command)
            self.assertTrue(answer.split(b"\r\n")[-2].startswith(b"n OK"), answer)

    def test_uidStoreFlushesFirst(self) -> None:
        """
        UID STORE sends the pending EXPUNGEs before its FETCH responses,
        which then use the new numbers.
        """
        a, _ = self.sessions(3)
        self.expunge(1)
        self.assertEqual(
            a.command(b"a UID STORE 1:3 +FLAGS (\\Seen)"),
            b"* 1 EXPUNGE\r\n* 1 FETCH (UID 2 FLAGS (\\Seen))\r\n"
            b"* 2 FETCH (UID 3 FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )

    def test_storeExpunged(self) -> None:
        """
        STORE of a message expunged elsewhere, not yet told, stores
        nothing and ends with C{NO [EXPUNGEISSUED]} (RFC 2180 4.2.2).
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"a STORE 2 +FLAGS (\\Seen)"),
            b"a NO [EXPUNGEISSUED] Some of the messages no longer exist\r\n",
        )

    def test_storeMixture(self) -> None:
        """
        STORE of expunged and present messages stores and answers the
        present ones, and ends with C{NO [EXPUNGEISSUED]} (RFC 2180 4.2.3).
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"a STORE 1:3 +FLAGS (\\Seen)"),
            b"* 1 FETCH (FLAGS (\\Seen))\r\n* 3 FETCH (FLAGS (\\Seen))\r\n"
            b"a NO [EXPUNGEISSUED] Some of the messages no longer exist\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 3: {"\\Seen"}})

    def test_storeExpungedSilent(self) -> None:
        """
        A silent STORE naming expunged messages stores the others and ends
        with C{OK [EXPUNGEISSUED]} (RFC 2180 4.2.1).
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"a STORE 1:3 +FLAGS.SILENT (\\Seen)"),
            b"a OK [EXPUNGEISSUED] Some of the messages no longer exist\r\n",
        )
        self.assertEqual(self.stored(), {1: {"\\Seen"}, 3: {"\\Seen"}})

    def test_copyExpunged(self) -> None:
        """
        COPY naming a message expunged elsewhere copies nothing, and ends
        with C{NO [EXPUNGEISSUED]} after the pending EXPUNGE (RFC 2180
        4.4.1); then the numbers are new.
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"c COPY 1:3 Archive"),
            b"* 2 EXPUNGE\r\n"
            b"c NO [EXPUNGEISSUED] Some of the messages no longer exist\r\n",
        )
        self.assertEqual(self.stored("Archive"), {})
        self.assertEqual(
            a.command(b"c COPY 2 Archive"),
            b"c OK [COPYUID %d 3 1] COPY completed\r\n"
            % (self.uidValidity("Archive"),),
        )

    def test_moveExpunged(self) -> None:
        """
        MOVE naming a message expunged elsewhere moves nothing.
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"m MOVE 1:2 Archive"),
            b"* 2 EXPUNGE\r\n"
            b"m NO [EXPUNGEISSUED] Some of the messages no longer exist\r\n",
        )
        self.assertEqual(list(self.stored()), [1, 3])
        self.assertEqual(self.stored("Archive"), {})

    def test_uidCopyExpunged(self) -> None:
        """
        UID COPY sends the pending EXPUNGE first and copies the messages
        still there.
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.assertEqual(
            a.command(b"c UID COPY 1:3 Archive"),
            b"* 2 EXPUNGE\r\nc OK [COPYUID %d 1,3 1:2] COPY completed\r\n"
            % (self.uidValidity("Archive"),),
        )

    def test_deliveryBehindExpunged(self) -> None:
        """
        A message delivered while an expunge waits to be told is numbered
        after the expunged one, which keeps its number until its EXPUNGE.
        """
        a, _ = self.sessions(3)
        self.expunge(2)
        self.fill(1)
        self.assertEqual(
            a.command(b"a STORE 3 +FLAGS.SILENT (\\Seen)"),
            b"* 4 EXISTS\r\n* 0 RECENT\r\na OK STORE completed\r\n",
        )
        self.assertEqual(
            a.command(b"a STORE 4 +FLAGS (\\Seen)"),
            b"* 4 FETCH (FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored(), {1: set(), 3: {"\\Seen"}, 4: {"\\Seen"}})
        self.assertEqual(
            a.command(b"n NOOP"), b"* 2 EXPUNGE\r\nn OK NOOP completed\r\n"
        )
        self.assertEqual(
            a.command(b"a STORE 3 +FLAGS (\\Flagged)"),
            b"* 3 FETCH (FLAGS (\\Flagged \\Seen))\r\na OK STORE completed\r\n",
        )

    def test_addedThenExpunged(self) -> None:
        """
        A message that came and went between two commands is never told
        of.
        """
        a, _ = self.sessions(1)
        self.fill(1)
        self.expunge(2)
        self.assertEqual(a.command(b"n NOOP"), b"n OK NOOP completed\r\n")
        self.fill(1)
        self.expunge(3)
        self.assertEqual(
            a.command(b"a UID STORE 1:* +FLAGS.SILENT ()"), b"a OK STORE completed\r\n"
        )
        self.fill(1)
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 2 EXISTS\r\n* 0 RECENT\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            a.command(b"a STORE 2 +FLAGS (\\Seen)"),
            b"* 2 FETCH (FLAGS (\\Seen))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(self.stored()[4], {"\\Seen"})


class DeliveryTests(MailboxTestCase):
    """
    New messages (RFC 3501 7.3.1, 7.3.2).
    """

    def test_recentToOneSession(self) -> None:
        """
        A delivered message is told to every session at its next command,
        and is recent to exactly one of them.
        """
        self.fill(1)
        a = self.selected()
        b = self.selected()
        self.fill(1)
        self.assertEqual(a.read() + b.read(), b"")
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 2 EXISTS\r\n* 2 RECENT\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            b.command(b"n NOOP"),
            b"* 2 EXISTS\r\n* 0 RECENT\r\nn OK NOOP completed\r\n",
        )
        self.assertEqual(
            a.command(b"a STORE 2 +FLAGS ()"),
            b"* 2 FETCH (FLAGS (\\Recent))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(
            b.command(b"a STORE 2 +FLAGS ()"),
            b"* 2 FETCH (FLAGS ())\r\na OK STORE completed\r\n",
        )

    def test_duringStore(self) -> None:
        """
        New messages may be told during STORE.
        """
        self.fill(1)
        a = self.selected()
        self.fill(2)
        self.assertEqual(
            a.command(b"a STORE 1 +FLAGS.SILENT (\\Seen)"),
            b"* 3 EXISTS\r\n* 3 RECENT\r\na OK STORE completed\r\n",
        )

    def test_recentAfterExpunge(self) -> None:
        """
        RECENT is told again once the EXPUNGE of a recent message is.
        """
        self.fill(2)
        a = self.selected()
        self.expunge(1)
        self.assertEqual(
            a.command(b"a STORE 2 +FLAGS.SILENT (\\Seen)"),
            b"a OK STORE completed\r\n",
        )
        self.assertEqual(
            a.command(b"n NOOP"),
            b"* 1 EXPUNGE\r\n* 1 RECENT\r\nn OK NOOP completed\r\n",
        )


class GoneTests(MailboxTestCase):
    """
    The selected mailbox deleted or renamed (RFC 2180 3.3, 3.4).
    """

    def test_deleted(self) -> None:
        """
        A mailbox deleted under a session ends the session with BYE at
        its next command.
        """
        a = self.selected(b"Archive")
        self.successResultOf(self.account().deleteFolder("Archive"))
        self.assertEqual(a.read(), b"")
        self.assertEqual(a.command(b"n NOOP"), BYE)
        self.assertTrue(a.closed)

    def test_renamed(self) -> None:
        """
        A mailbox renamed under a session ends it too: this store keeps no
        view across a rename.
        """
        a = self.selected(b"Archive")
        self.successResultOf(self.account().renameFolder("Archive", "Old"))
        self.assertEqual(a.command(b"a STORE 1:* +FLAGS (\\Seen)"), BYE)
        self.assertTrue(a.closed)

    def test_otherMailboxes(self) -> None:
        """
        Deleting another mailbox leaves the session alone.
        """
        a = self.selected()
        self.successResultOf(self.account().deleteFolder("Archive"))
        self.assertEqual(a.command(b"n NOOP"), b"n OK NOOP completed\r\n")
        self.assertFalse(a.closed)


class _Folder:
    """
    A folder view of a given size that counts how often it is looked at.
    """

    readOnly = False
    uidValidity = 1
    highestModSeq = 1

    def __init__(self, count: int) -> None:
        self._messages = [
            MessageInfo(uid, frozenset(), 100, 0.0, 1) for uid in range(1, count + 1)
        ]
        self._recent: set[int] = set()
        self.looked = 0

    @property
    def recent(self) -> set[int]:
        self.looked += 1
        return self._recent

    def messages(self) -> Sequence[MessageInfo]:
        self.looked += 1
        return self._messages

    def addListener(self, listener: object) -> None:
        pass

    def removeListener(self, listener: object) -> None:
        pass

    def close(self) -> None:
        pass


class ViewCostTests(SynchronousTestCase):
    """
    The work of L{SelectedMailbox} grows with the changes, not with the
    mailbox.
    """

    def setUp(self) -> None:
        self.folder = _Folder(10_000)
        self.selected = SelectedMailbox(self.folder)  # type: ignore[arg-type]
        self.folder.looked = 0

    def test_noChange(self) -> None:
        """
        With nothing changed, updates say nothing without looking at the
        folder.
        """
        self.assertEqual(self.selected.updates(expunge=True), b"")
        self.assertEqual(self.selected.recentCount(), 0)
        self.assertEqual(self.folder.looked, 0)

    def test_flagChange(self) -> None:
        """
        A flag change is told without looking at the folder's messages.
        """
        info = MessageInfo(5000, frozenset({"\\Seen"}), 100, 0.0, 2)
        self.selected.flagsChanged(self.folder, [info])  # type: ignore[arg-type]
        self.assertEqual(
            self.selected.updates(expunge=False), b"* 5000 FETCH (FLAGS (\\Seen))\r\n"
        )
        self.assertEqual(self.folder.looked, 0)

    def test_added(self) -> None:
        """
        New messages are numbered without looking at the folder's
        messages.
        """
        info = MessageInfo(10_001, frozenset(), 100, 0.0, 2)
        self.folder._recent.add(10_001)
        self.selected.messagesAdded(self.folder, [info])  # type: ignore[arg-type]
        self.assertEqual(
            self.selected.updates(expunge=False),
            b"* 10001 EXISTS\r\n* 1 RECENT\r\n",
        )
        self.assertEqual(self.selected.uids[-2:], [10_000, 10_001])
        self.assertEqual(self.selected.recentCount(), 1)

    def test_expunged(self) -> None:
        """
        Expunges far apart are numbered as the client counts.
        """
        self.selected.messagesExpunged(
            self.folder,  # type: ignore[arg-type]
            [2, 5000, 10_000],
        )
        self.assertEqual(self.selected.updates(expunge=False), b"")
        self.assertTrue(self.selected.isExpunged(5000))
        self.assertEqual(self.selected.sequenceNumber(5001), 5001)
        self.assertEqual(
            self.selected.updates(expunge=True),
            b"* 2 EXPUNGE\r\n* 4999 EXPUNGE\r\n* 9998 EXPUNGE\r\n",
        )
        self.assertEqual(len(self.selected.uids), 9997)
        self.assertEqual(self.selected.sequenceNumber(5001), 4999)
        self.assertIsNone(self.selected.sequenceNumber(5000))
        self.assertFalse(self.selected.isExpunged(5000))

    def test_wideRanges(self) -> None:
        """
        A UID range as wide as UIDs go names the messages there are; a
        sequence range past the last message is refused.
        """
        everything = SequenceSet(((1, MAX_NUMBER),))
        self.assertEqual(self.selected.byUID(everything), list(range(10_000)))
        self.assertEqual(self.selected.byUID(SequenceSet(((10_001, MAX_NUMBER),))), [])
        self.assertRaises(IMAPStatus, self.selected.bySequence, everything)

    def test_infos(self) -> None:
        """
        L{SelectedMailbox.infos} finds the messages there are and
        L{None} for the others.
        """
        found = self.selected.infos([1, 5000, 10_000, 10_001])
        self.assertEqual([i and i.uid for i in found], [1, 5000, 10_000, None])
