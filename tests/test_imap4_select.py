"""
Tests for L{gomail_twisted.imap4._select}: SELECT and EXAMINE, CLOSE,
UNSELECT, CHECK, NOOP, EXPUNGE and UID EXPUNGE, and IDLE, over the real
server and a real store, bytes on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable

from gomail_twisted.maildir import FlagChange, IFolder
from tests._imaphelpers import Connection, StoreTestCase, tagged


def message(n: int) -> bytes:
    """
    A small message, told apart by its number.
    """
    return b"Subject: message %d\r\n\r\nBody %d\r\n" % (n, n)


class MailboxTestCase(StoreTestCase):
    """
    What the selected-state tests share: filling a mailbox, and looking at
    it through the store.
    """

    def fill(self, count: int, mailbox: str = "INBOX") -> None:
        """
        Put C{count} messages in a mailbox: delivered to INBOX, appended to
        another.
        """
        if mailbox == "INBOX":
            self.deliver(*(message(n) for n in range(1, count + 1)))
            return
        account = self.account()
        for n in range(1, count + 1):
            self.successResultOf(account.append(mailbox, message(n)))

    def setFlags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mailbox: str = "INBOX",
        change: FlagChange = FlagChange.ADD,
    ) -> None:
        """
        Change flags through a view of the store's own, as another session
        (or process) would.
        """
        self.successResultOf(self.view(mailbox).setFlags(uids, flags, change))

    def expunge(self, *uids: int, mailbox: str = "INBOX") -> None:
        """
        Delete and expunge messages through a view of the store's own.
        """
        view = self.view(mailbox)
        self.successResultOf(view.setFlags(uids, ["\\Deleted"], FlagChange.ADD))
        self.successResultOf(view.expunge(uids))

    def view(self, mailbox: str = "INBOX") -> IFolder:
        """
        The store's own view of a mailbox: opened once per test.
        """
        views: dict[str, IFolder] = self.__dict__.setdefault("_views", {})
        if mailbox not in views:
            views[mailbox] = self.folder(mailbox)
        return views[mailbox]

    def stored(self, mailbox: str = "INBOX") -> dict[int, frozenset[str]]:
        """
        The flags of a mailbox's messages, by UID, as the store has them,
        read through a view that claims no message as recent.
        """
        account = self.account()
        folder: IFolder = self.successResultOf(account.openFolder(mailbox, True))
        try:
            return {m.uid: m.flags for m in folder.messages()}
        finally:
            folder.close()

    def uidValidity(self, mailbox: str = "INBOX") -> int:
        validity: int = self.folder(mailbox).uidValidity
        return validity


class SelectTests(MailboxTestCase):
    """
    SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2).
    """

    def test_selectResponses(self) -> None:
        """
        SELECT answers FLAGS with the keywords in use, PERMANENTFLAGS with
        them and C{\\*}, EXISTS, RECENT, the first unseen message,
        UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, then C{OK [READ-WRITE]}.
        """
        self.fill(3)
        self.setFlags([1], ["\\Seen", "$Work"])
        self.setFlags([3], ["Later"])
        view = self.view()
        connection = self.login()
        answer = connection.command(b"s SELECT INBOX")
        self.assertEqual(
            answer,
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Later)\r\n"
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" $Work Later \\*)] Flags permitted\r\n"
            b"* 3 EXISTS\r\n"
            b"* 0 RECENT\r\n"
            b"* OK [UNSEEN 2] First unseen\r\n"
            b"* OK [UIDVALIDITY %d] UIDs valid\r\n"
            b"* OK [UIDNEXT 4] Predicted next UID\r\n"
            b"* OK [HIGHESTMODSEQ %d] Highest\r\n"
            b"s OK [READ-WRITE] SELECT completed\r\n"
            % (view.uidValidity, view.highestModSeq),
        )

    def test_selectClaimsRecent(self) -> None:
        """
        The first session to select a mailbox gets its new messages as
        recent (RFC 3501 2.3.2); the next one gets none.
        """
        self.fill(2)
        first = self.login()
        self.assertIn(b"* 2 RECENT\r\n", first.command(b"s SELECT INBOX"))
        second = self.login()
        self.assertIn(b"* 0 RECENT\r\n", second.command(b"s SELECT INBOX"))
        self.assertEqual(
            first.command(b"a STORE 1 +FLAGS ()"),
            b"* 1 FETCH (FLAGS (\\Recent))\r\na OK STORE completed\r\n",
        )
        self.assertEqual(
            second.command(b"a STORE 1 +FLAGS ()"),
            b"* 1 FETCH (FLAGS ())\r\na OK STORE completed\r\n",
        )

    def test_examineResponses(self) -> None:
        """
        EXAMINE answers as SELECT does, with no permanent flags, and ends
        with C{OK [READ-ONLY]}.
        """
        self.fill(1)
        connection = self.login()
        answer = connection.command(b"s EXAMINE INBOX")
        self.assertIn(
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
            b"* 1 EXISTS\r\n",
            answer,
        )
        self.assertEqual(tagged(answer, b"s"), b"s OK [READ-ONLY] EXAMINE completed")

    def test_examineClaimsNoRecent(self) -> None:
        """
        EXAMINE shows the messages no session has selected yet as recent,
        but takes no message's C{\\Recent} (RFC 3501 6.3.2): a later
        SELECT still gets them.
        """
        self.fill(2)
        reader = self.login()
        self.assertIn(b"* 2 RECENT\r\n", reader.command(b"s EXAMINE INBOX"))
        writer = self.login()
        self.assertIn(b"* 2 RECENT\r\n", writer.command(b"s SELECT INBOX"))

    def test_selectEmptyMailbox(self) -> None:
        """
        An empty mailbox has no first unseen message to name.
        """
        connection = self.login()
        answer = connection.command(b"s SELECT Trash")
        self.assertIn(b"* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY ", answer)
        self.assertNotIn(b"UNSEEN", answer)
        self.assertIn(b"* OK [UIDNEXT 1] Predicted next UID\r\n", answer)

    def test_reselectSaysClosed(self) -> None:
        """
        SELECT or EXAMINE with a mailbox selected closes it first, and says
        so before the new mailbox's responses.
        """
        self.fill(1)
        connection = self.selected()
        answer = connection.command(b"s EXAMINE Trash")
        self.assertTrue(
            answer.startswith(b"* OK [CLOSED] Previous mailbox closed\r\n* FLAGS "),
            answer,
        )
        answer = connection.command(b"s SELECT INBOX")
        self.assertTrue(answer.startswith(b"* OK [CLOSED] "), answer)
        self.assertEqual(tagged(answer, b"s"), b"s OK [READ-WRITE] SELECT completed")

    def test_selectMissingMailbox(self) -> None:
        """
        SELECT of a mailbox that does not exist fails, and leaves no
        mailbox selected, even when one was before.
        """
        self.fill(1)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"s SELECT Nope"),
            b"* OK [CLOSED] Previous mailbox closed\r\n"
            b"s NO [NONEXISTENT] Mailbox does not exist\r\n",
        )
        self.assertEqual(
            connection.command(b"f FETCH 1 FLAGS"),
            b"f BAD FETCH needs a selected mailbox\r\n",
        )
        self.assertEqual(
            connection.command(b"t STORE 1 +FLAGS (\\Seen)"),
            b"t BAD STORE needs a selected mailbox\r\n",
        )

    def test_selectMissingMailboxFirst(self) -> None:
        """
        SELECT of a missing mailbox with none selected says nothing of a
        closed one.
        """
        connection = self.login()
        self.assertEqual(
            connection.command(b"s EXAMINE Nope"),
            b"s NO [NONEXISTENT] Mailbox does not exist\r\n",
        )

    def test_selectCondstore(self) -> None:
        """
        SELECT with C{(CONDSTORE)} turns CONDSTORE on (RFC 7162 3.1.8):
        FETCH responses carry UID and MODSEQ.
        """
        self.fill(1)
        connection = self.login()
        answer = connection.command(b"s SELECT INBOX (CONDSTORE)")
        self.assertEqual(tagged(answer, b"s"), b"s OK [READ-WRITE] SELECT completed")
        answer = connection.command(b"a STORE 1 +FLAGS (\\Seen)")
        modSeq = self.view().messages()[0].modSeq
        self.assertEqual(
            answer,
            b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\n"
            b"a OK STORE completed\r\n" % (modSeq,),
        )


class CloseTests(MailboxTestCase):
    """
    CLOSE (RFC 3501 6.4.2) and UNSELECT (RFC 3691).
    """

    def test_closeExpungesSilently(self) -> None:
        """
        CLOSE removes the messages flagged C{\\Deleted} without a word, and
        leaves no mailbox selected; another session is told of the
        expunge.
        """
        self.fill(3)
        other = self.selected()
        connection = self.selected()
        connection.command(b"a STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(connection.command(b"c CLOSE"), b"c OK CLOSE completed\r\n")
        self.assertEqual(list(self.stored()), [1, 3])
        self.assertEqual(
            connection.command(b"a STORE 1 +FLAGS (\\Seen)"),
            b"a BAD STORE needs a selected mailbox\r\n",
        )
        self.assertEqual(
            other.command(b"n NOOP"),
            b"* 2 EXPUNGE\r\n* 2 RECENT\r\nn OK NOOP completed\r\n",
        )

    def test_closeReadOnly(self) -> None:
        """
        CLOSE of a mailbox opened with EXAMINE removes nothing and gives
        no error.
        """
        self.fill(2)
        self.setFlags([1], ["\\Deleted"])
        connection = self.selected(b"INBOX")
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(connection.command(b"c CLOSE"), b"c OK CLOSE completed\r\n")
        self.assertEqual(list(self.stored()), [1, 2])

    def test_unselectKeepsDeleted(self) -> None:
        """
        UNSELECT leaves the mailbox as CLOSE does, without expunging.
        """
        self.fill(2)
        connection = self.selected()
        connection.command(b"a STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(
            connection.command(b"u UNSELECT"), b"u OK UNSELECT completed\r\n"
        )
        self.assertEqual(list(self.stored()), [1, 2])
        self.assertEqual(
            connection.command(b"u UNSELECT"),
            b"u BAD UNSELECT needs a selected mailbox\r\n",
        )

    def test_closeGoneMailbox(self) -> None:
        """
        CLOSE of a mailbox deleted meanwhile closes it without a BYE: the
        session stays logged in.
        """
        connection = self.selected(b"Archive")
        self.successResultOf(self.account().deleteFolder("Archive"))
        self.assertEqual(connection.command(b"c CLOSE"), b"c OK CLOSE completed\r\n")
        self.assertFalse(connection.closed)
        self.assertEqual(connection.command(b"n NOOP"), b"n OK NOOP completed\r\n")


class ExpungeTests(MailboxTestCase):
    """
    EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1).
    """

    def test_expungeNumbers(self) -> None:
        """
        Each EXPUNGE response lowers the numbers after it at once: removing
        messages 1, 2 and 4 of 5 reads 1, 1, 2.
        """
        self.fill(5)
        connection = self.selected()
        connection.command(b"a STORE 1:2,4 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(
            connection.command(b"e EXPUNGE"),
            b"* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n* 2 EXPUNGE\r\n"
            b"* 2 RECENT\r\ne OK EXPUNGE completed\r\n",
        )
        self.assertEqual(list(self.stored()), [3, 5])
        self.assertEqual(
            connection.command(b"a STORE 2 +FLAGS ()"),
            b"* 2 FETCH (FLAGS (\\Recent))\r\na OK STORE completed\r\n",
        )

    def test_expungeNothing(self) -> None:
        """
        EXPUNGE with nothing flagged C{\\Deleted} says nothing more.
        """
        self.fill(2)
        connection = self.selected()
        self.assertEqual(
            connection.command(b"e EXPUNGE"), b"e OK EXPUNGE completed\r\n"
        )

    def test_uidExpunge(self) -> None:
        """
        UID EXPUNGE removes only the messages named of those flagged
        C{\\Deleted}.
        """
        self.fill(4)
        connection = self.selected()
        connection.command(b"a STORE 1:4 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(
            connection.command(b"e UID EXPUNGE 2:3,9"),
            b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 RECENT\r\ne OK EXPUNGE completed\r\n",
        )
        self.assertEqual(list(self.stored()), [1, 4])

    def test_expungeReadOnly(self) -> None:
        """
        EXPUNGE and UID EXPUNGE in a mailbox opened with EXAMINE are
        refused with C{NO [READ-ONLY]}, and remove nothing.
        """
        self.fill(1)
        self.setFlags([1], ["\\Deleted"])
        connection = self.login()
        connection.command(b"s EXAMINE INBOX")
        self.assertEqual(
            connection.command(b"e EXPUNGE"),
            b"e NO [READ-ONLY] Mailbox is read-only\r\n",
        )
        self.assertEqual(
            connection.command(b"e UID EXPUNGE 1"),
            b"e NO [READ-ONLY] Mailbox is read-only\r\n",
        )
        self.assertEqual(list(self.stored()), [1])


class CheckNoopTests(MailboxTestCase):
    """
    CHECK (RFC 3501 6.4.1) and NOOP (6.1.2).
    """

    def test_noopWithoutMailbox(self) -> None:
        """
        NOOP with no mailbox selected just answers.
        """
        connection = self.login()
        self.assertEqual(connection.command(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_check(self) -> None:
        """
        CHECK answers OK in the selected state, and is refused without a
        mailbox.
        """
        connection = self.login()
        self.assertEqual(
            connection.command(b"c CHECK"), b"c BAD CHECK needs a selected mailbox\r\n"
        )
        connection.command(b"s SELECT INBOX")
        self.assertEqual(connection.command(b"c CHECK"), b"c OK CHECK completed\r\n")

    def test_checkSeesDelivery(self) -> None:
        """
        CHECK tells of a message that arrived.
        """
        connection = self.selected()
        self.fill(1)
        self.assertEqual(
            connection.command(b"c CHECK"),
            b"* 1 EXISTS\r\n* 1 RECENT\r\nc OK CHECK completed\r\n",
        )


class IdleTests(MailboxTestCase):
    """
    IDLE (RFC 2177).
    """

    def idle(self, connection: Connection) -> None:
        self.assertEqual(connection.command(b"i IDLE"), b"+ idling\r\n")

    def test_deliveryShownAtOnce(self) -> None:
        """
        In IDLE a new message is told of as it arrives, without a
        command; DONE ends IDLE with a tagged OK.
        """
        self.fill(1)
        connection = self.selected()
        self.idle(connection)
        self.fill(1)
        self.assertEqual(connection.read(), b"* 2 EXISTS\r\n* 2 RECENT\r\n")
        self.assertEqual(connection.command(b"DONE"), b"i OK IDLE terminated\r\n")
        self.assertEqual(connection.command(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_othersChangesShownAtOnce(self) -> None:
        """
        In IDLE another session's flag change and expunge are told of at
        once.
        """
        self.fill(3)
        other = self.selected()
        connection = self.selected()
        self.idle(connection)
        other.command(b"a STORE 1 +FLAGS (\\Flagged)")
        self.assertEqual(connection.read(), b"* 1 FETCH (FLAGS (\\Flagged))\r\n")
        other.command(b"a STORE 2 +FLAGS.SILENT (\\Deleted)")
        connection.read()
        other.command(b"e EXPUNGE")
        self.assertEqual(connection.read(), b"* 2 EXPUNGE\r\n")
        self.assertEqual(connection.command(b"done"), b"i OK IDLE terminated\r\n")

    def test_pendingSentOnIdle(self) -> None:
        """
        What happened before IDLE is told of when it starts.
        """
        self.fill(1)
        connection = self.selected()
        self.fill(1)
        self.assertEqual(
            connection.command(b"i IDLE"), b"+ idling\r\n* 2 EXISTS\r\n* 2 RECENT\r\n"
        )

    def test_notDone(self) -> None:
        """
        A line other than DONE in IDLE ends it with BAD; commands are
        read again afterwards.
        """
        connection = self.selected()
        self.idle(connection)
        self.assertEqual(connection.command(b"n NOOP"), b"i BAD Expected DONE\r\n")
        self.assertEqual(connection.command(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_idleAuthenticated(self) -> None:
        """
        IDLE works with no mailbox selected.
        """
        connection = self.login()
        self.idle(connection)
        self.fill(1)
        self.assertEqual(connection.read(), b"")
        self.assertEqual(connection.command(b"DONE"), b"i OK IDLE terminated\r\n")

    def test_mailboxDeletedInIdle(self) -> None:
        """
        A mailbox deleted while selected in IDLE ends the session at once
        with BYE (RFC 2180 3.3).
        """
        connection = self.selected(b"Archive")
        self.idle(connection)
        self.successResultOf(self.account().deleteFolder("Archive"))
        self.assertEqual(
            connection.read(),
            b"* BYE Selected mailbox was deleted, have to disconnect\r\n",
        )
        self.assertTrue(connection.closed)

    def test_noUpdatesAfterDone(self) -> None:
        """
        After DONE, changes wait for the next command again.
        """
        connection = self.selected()
        self.idle(connection)
        connection.command(b"DONE")
        self.fill(1)
        self.assertEqual(connection.read(), b"")
        self.assertEqual(
            connection.command(b"n NOOP"),
            b"* 1 EXISTS\r\n* 1 RECENT\r\nn OK NOOP completed\r\n",
        )
