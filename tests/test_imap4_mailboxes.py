"""
Tests for L{gomail_twisted.imap4._mailboxes}: CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND and NAMESPACE (RFC 3501 6.3, RFC
2342, RFC 4315, RFC 8438) on the wire, over the Maildir store on disk.
LIST and LSUB are tested in L{tests.test_imap4_list}.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterable
from pathlib import Path

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gomail_twisted.imap4._commands import Append, Command
from gomail_twisted.imap4._mailboxes import canonicalName
from gomail_twisted.maildir.errors import NoSuchFolder, StoreFull
from gomail_twisted.maildir.interfaces import CopyResult, FlagChange, IMessageWriter
from tests._imaphelpers import ALICE, Connection, StoreTestCase, tagged


class MailboxTestCase(StoreTestCase):
    """
    Alice's account on disk, and what is in it.
    """

    @property
    def home(self) -> Path:
        """
        Alice's root Maildir.
        """
        return self.root / ALICE

    def directory(self, name: str) -> Path:
        """
        The directory of a folder, as Maildir++ names it.
        """
        return self.home if name == "INBOX" else self.home / ("." + name)

    def files(self, name: str) -> list[Path]:
        """
        The message files of a folder.
        """
        folder = self.directory(name)
        return sorted((folder / "cur").iterdir()) + sorted((folder / "new").iterdir())

    def subscriptions(self) -> list[str]:
        """
        The subscribed names in the subscriptions file.
        """
        data = (self.home / "subscriptions").read_text()
        return [line for line in data.split("\n")[2:] if line]

    def runAppend(self, c: Connection, arguments: Append) -> bytes:
        """
        Run APPEND with arguments as given, as the protocol would with
        a parsed command, and return what the server wrote.
        """
        c.protocol.run(Command("t", "APPEND", arguments))
        return c.read()


class CreateTests(MailboxTestCase):
    """
    CREATE (RFC 3501 6.3.3).
    """

    def test_create(self) -> None:
        """
        CREATE makes a Maildir++ folder and answers OK.
        """
        c = self.login()
        self.assertEqual(c.command(b"a CREATE Work"), b"a OK CREATE completed\r\n")
        for sub in ("cur", "new", "tmp"):
            self.assertTrue((self.directory("Work") / sub).is_dir())

    def test_levelsAboveNotMade(self) -> None:
        """
        Only the folder named is made, as Dovecot does: the levels above
        it are listed as C{\\Noselect}.
        """
        c = self.login()
        self.assertEqual(c.command(b"a CREATE a/b"), b"a OK CREATE completed\r\n")
        self.assertTrue(self.directory("a.b").is_dir())
        self.assertFalse(self.directory("a").exists())
        self.assertEqual(
            c.command(b'l LIST "" a'),
            b'* LIST (\\Noselect \\HasChildren) "/" a\r\nl OK LIST completed\r\n',
        )

    def test_trailingDelimiter(self) -> None:
        """
        A name ending in the delimiter makes the folder without it (RFC
        3501 6.3.3).
        """
        c = self.login()
        self.assertEqual(c.command(b"a CREATE a/b/"), b"a OK CREATE completed\r\n")
        self.assertTrue(self.directory("a.b").is_dir())
        self.assertEqual(
            c.command(b'l LIST "" a/*'),
            b'* LIST (\\HasNoChildren) "/" a/b\r\nl OK LIST completed\r\n',
        )

    def test_exists(self) -> None:
        """
        An existing name, INBOX in any case included, is refused with
        C{[ALREADYEXISTS]} (RFC 5530).
        """
        c = self.login()
        c.command(b"a CREATE Work")
        for name in (b"Work", b"Work/", b"INBOX", b"inbox", b"Sent"):
            with self.subTest(name=name):
                self.assertEqual(
                    c.command(b"a CREATE " + name),
                    b"a NO [ALREADYEXISTS] Mailbox already exists\r\n",
                )

    def test_invalidNames(self) -> None:
        """
        Names the store refuses are answered C{NO [CANNOT]}, saying why.
        """
        cases = [
            (b'""', b"empty folder name"),
            (b'"/"', b"empty folder name"),
            (b"a//b", b"folder name with an empty level"),
            (b"/lead", b"folder name with an empty level"),
            (b"y//", b"folder name with an empty level"),
            (b"dot.name", b"folder name with a dot (the separator on disk)"),
            (b"~home", b"folder name with a level starting with ~"),
            (b'"a%b"', b"folder name with the wildcard %"),
        ]
        c = self.login()
        for name, reason in cases:
            with self.subTest(name=name):
                self.assertEqual(
                    c.command(b"a CREATE " + name),
                    b"a NO [CANNOT] Invalid mailbox name: " + reason + b"\r\n",
                )

    def test_internationalName(self) -> None:
        """
        A name in modified UTF-7 makes the folder of the name it stands
        for, kept in modified UTF-7 on disk as Dovecot keeps it.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a CREATE Entw&APw-rfe"), b"a OK CREATE completed\r\n"
        )
        self.assertTrue(self.directory("Entw&APw-rfe").is_dir())

    def test_inboxChild(self) -> None:
        """
        A folder under INBOX, named in any case, is made under C{INBOX}.
        """
        c = self.login()
        self.assertEqual(c.command(b"a CREATE inbox/sub"), b"a OK CREATE completed\r\n")
        self.assertTrue(self.directory("INBOX.sub").is_dir())


class DeleteTests(MailboxTestCase):
    """
    DELETE (RFC 3501 6.3.4).
    """

    def test_delete(self) -> None:
        """
        DELETE removes the folder and its messages.
        """
        c = self.login()
        c.command(b"c CREATE Work")
        c.send(b"p APPEND Work {5+}\r\nhello\r\n")
        self.assertEqual(c.command(b"a DELETE Work"), b"a OK DELETE completed\r\n")
        self.assertFalse(self.directory("Work").exists())
        self.assertEqual(c.command(b'l LIST "" Work'), b"l OK LIST completed\r\n")

    def test_inbox(self) -> None:
        """
        INBOX, in any case, cannot be deleted.
        """
        c = self.login()
        for name in (b"INBOX", b"inbox"):
            with self.subTest(name=name):
                self.assertEqual(
                    c.command(b"a DELETE " + name),
                    b"a NO [CANNOT] INBOX can't be deleted\r\n",
                )
        self.assertTrue((self.home / "cur").is_dir())

    def test_nonexistent(self) -> None:
        """
        A name no folder has is C{[NONEXISTENT]}, a level above a folder
        included.
        """
        c = self.login()
        c.command(b"c CREATE a/b")
        for name in (b"nothere", b"a"):
            with self.subTest(name=name):
                self.assertEqual(
                    c.command(b"a DELETE " + name),
                    b"a NO [NONEXISTENT] Mailbox does not exist\r\n",
                )

    def test_children(self) -> None:
        """
        A folder with folders below it is deleted and they stay; its name
        is then listed C{\\Noselect} (RFC 3501 6.3.4).
        """
        c = self.login()
        c.command(b"c CREATE foo")
        c.command(b"c CREATE foo/bar")
        self.assertEqual(c.command(b"a DELETE foo"), b"a OK DELETE completed\r\n")
        self.assertFalse(self.directory("foo").exists())
        self.assertTrue(self.directory("foo.bar").is_dir())
        self.assertEqual(
            c.command(b'l LIST "" foo*'),
            b'* LIST (\\Noselect \\HasChildren) "/" foo\r\n'
            b'* LIST (\\HasNoChildren) "/" foo/bar\r\n'
            b"l OK LIST completed\r\n",
        )

    def test_selected(self) -> None:
        """
        Deleting the selected mailbox is answered OK, then the connection
        is closed with BYE, as Dovecot does.
        """
        c = self.login()
        c.command(b"c CREATE Work")
        c.command(b"s SELECT Work")
        self.assertEqual(
            c.command(b"a DELETE Work"),
            b"a OK DELETE completed\r\n"
            b"* BYE Selected mailbox was deleted, have to disconnect\r\n",
        )
        self.assertTrue(c.closed)
        self.assertFalse(self.directory("Work").exists())

    def test_selectedElsewhere(self) -> None:
        """
        Another session with the mailbox selected is told BYE at the end
        of its next command (RFC 3501 7.1.5).
        """
        other = self.login()
        other.command(b"c CREATE Work")
        other.command(b"s SELECT Work")
        c = self.login()
        self.assertEqual(c.command(b"a DELETE Work"), b"a OK DELETE completed\r\n")
        self.assertEqual(
            other.command(b"n NOOP"),
            b"* BYE Selected mailbox was deleted, have to disconnect\r\n",
        )
        self.assertTrue(other.closed)
        self.assertFalse(c.closed)

    def test_otherSelected(self) -> None:
        """
        Deleting a mailbox other than the selected one leaves the session
        as it was.
        """
        c = self.selected()
        c.command(b"c CREATE Work")
        self.assertEqual(c.command(b"a DELETE Work"), b"a OK DELETE completed\r\n")
        self.assertEqual(c.command(b"n NOOP"), b"n OK NOOP completed\r\n")


class RenameTests(MailboxTestCase):
    """
    RENAME (RFC 3501 6.3.5).
    """

    def test_rename(self) -> None:
        """
        RENAME moves the folder, its messages and the folders below it.
        """
        c = self.login()
        c.command(b"c CREATE foo/bar")
        c.command(b"c CREATE foo")
        c.send(b"p APPEND foo {5+}\r\nhello\r\n")
        self.assertEqual(c.command(b"a RENAME foo baz"), b"a OK RENAME completed\r\n")
        self.assertFalse(self.directory("foo").exists())
        self.assertFalse(self.directory("foo.bar").exists())
        self.assertTrue(self.directory("baz.bar").is_dir())
        self.assertEqual(len(self.files("baz")), 1)
        self.assertEqual(
            c.command(b'l LIST "" baz*'),
            b'* LIST (\\HasChildren) "/" baz\r\n'
            b'* LIST (\\HasNoChildren) "/" baz/bar\r\n'
            b"l OK LIST completed\r\n",
        )

    def test_exists(self) -> None:
        """
        Renaming to an existing name, or to itself, is C{[ALREADYEXISTS]}.
        """
        c = self.login()
        for command in (b"a RENAME Sent Drafts", b"a RENAME Sent Sent"):
            with self.subTest(command=command):
                self.assertEqual(
                    c.command(command),
                    b"a NO [ALREADYEXISTS] Mailbox already exists\r\n",
                )

    def test_nonexistent(self) -> None:
        """
        Renaming a name no folder has is C{[NONEXISTENT]}.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a RENAME nothere x"),
            b"a NO [NONEXISTENT] Mailbox does not exist\r\n",
        )

    def test_invalid(self) -> None:
        """
        A new name the store refuses, or one below the old, is
        C{[CANNOT]}.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a RENAME Junk x.y"),
            b"a NO [CANNOT] Invalid mailbox name: folder name with a dot"
            b" (the separator on disk)\r\n",
        )
        self.assertEqual(
            c.command(b"a RENAME Junk Junk/sub"),
            b"a NO [CANNOT] Invalid mailbox name: cannot rename Junk to Junk/sub\r\n",
        )
        self.assertEqual(
            c.command(b"a RENAME Junk INBOX"),
            b"a NO [CANNOT] Invalid mailbox name: cannot rename Junk to INBOX\r\n",
        )

    def test_inbox(self) -> None:
        """
        Renaming INBOX moves its messages to the new folder and leaves it
        there, empty (RFC 3501 6.3.5); with INBOX selected, the client is
        told of the expunges.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n", b"Subject: two\r\n\r\nbody\r\n")
        c = self.selected()
        self.assertEqual(
            c.command(b"a RENAME INBOX Old"),
            b"* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n* 0 RECENT\r\na OK RENAME completed\r\n",
        )
        self.assertEqual(self.files("INBOX"), [])
        self.assertEqual(len(self.files("Old")), 2)
        self.assertFalse(c.closed)

    def test_selected(self) -> None:
        """
        Renaming the selected mailbox is answered OK, then the connection
        is closed with BYE: the session's view of it is gone.
        """
        c = self.login()
        c.command(b"c CREATE Work")
        c.command(b"s SELECT Work")
        self.assertEqual(
            c.command(b"a RENAME Work Play"),
            b"a OK RENAME completed\r\n"
            b"* BYE Selected mailbox was renamed, have to disconnect\r\n",
        )
        self.assertTrue(c.closed)
        self.assertTrue(self.directory("Play").is_dir())

    def test_parentOfSelected(self) -> None:
        """
        Renaming a folder above the selected mailbox takes the selected
        mailbox with it: the same.
        """
        c = self.login()
        c.command(b"c CREATE Work")
        c.command(b"c CREATE Work/2024")
        c.command(b"s SELECT Work/2024")
        self.assertEqual(
            c.command(b"a RENAME Work Play"),
            b"a OK RENAME completed\r\n"
            b"* BYE Selected mailbox was renamed, have to disconnect\r\n",
        )
        self.assertTrue(self.directory("Play.2024").is_dir())

    def test_selectedRefused(self) -> None:
        """
        A refused RENAME of the selected mailbox leaves it selected.
        """
        c = self.selected(b"Sent")
        self.assertEqual(
            c.command(b"a RENAME Sent Drafts"),
            b"a NO [ALREADYEXISTS] Mailbox already exists\r\n",
        )
        self.assertEqual(c.command(b"n NOOP"), b"n OK NOOP completed\r\n")


class SubscribeTests(MailboxTestCase):
    """
    SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7).
    """

    def test_subscribe(self) -> None:
        """
        SUBSCRIBE adds the name to the subscriptions file, as Dovecot
        keeps it.
        """
        c = self.login()
        c.command(b"c CREATE Work")
        self.assertEqual(
            c.command(b"a SUBSCRIBE Work"), b"a OK SUBSCRIBE completed\r\n"
        )
        self.assertIn("Work", self.subscriptions())
        self.assertEqual(
            c.command(b'l LSUB "" W*'), b'* LSUB () "/" Work\r\nl OK LSUB completed\r\n'
        )

    def test_subscribeNonexistent(self) -> None:
        """
        A name no folder has may be subscribed to (RFC 3501 6.3.6 allows
        it).
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a SUBSCRIBE some/day"), b"a OK SUBSCRIBE completed\r\n"
        )
        self.assertIn("some\tday", self.subscriptions())

    def test_unsubscribe(self) -> None:
        """
        UNSUBSCRIBE removes the name; LSUB no longer lists it.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a UNSUBSCRIBE Sent"), b"a OK UNSUBSCRIBE completed\r\n"
        )
        self.assertNotIn("Sent", self.subscriptions())
        self.assertEqual(c.command(b'l LSUB "" Sent'), b"l OK LSUB completed\r\n")

    def test_unsubscribeUnknown(self) -> None:
        """
        Unsubscribing from a name not subscribed to is OK, as Dovecot
        answers.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a UNSUBSCRIBE nothere"), b"a OK UNSUBSCRIBE completed\r\n"
        )

    def test_invalidName(self) -> None:
        """
        A name the store refuses is C{[CANNOT]}.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a SUBSCRIBE x.y"),
            b"a NO [CANNOT] Invalid mailbox name: folder name with a dot"
            b" (the separator on disk)\r\n",
        )


class StatusTests(MailboxTestCase):
    """
    STATUS (RFC 3501 6.3.10, RFC 7162 3.1.4, RFC 8438).
    """

    def test_all(self) -> None:
        """
        Every item is answered, in the order asked.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n", b"Subject: two\r\n\r\n!\r\n")
        folder = self.folder()
        validity = folder.uidValidity
        self.successResultOf(folder.setFlags([1], ["\\Seen"], FlagChange.ADD))
        modseq = folder.highestModSeq
        folder.close()
        c = self.login()
        self.assertEqual(
            c.command(
                b"a STATUS INBOX (SIZE UNSEEN MESSAGES RECENT UIDNEXT UIDVALIDITY"
                b" HIGHESTMODSEQ)"
            ),
            b"* STATUS INBOX (SIZE 41 UNSEEN 1 MESSAGES 2 RECENT 0 UIDNEXT 3"
            b" UIDVALIDITY %d HIGHESTMODSEQ %d)\r\n"
            b"a OK STATUS completed\r\n" % (validity, modseq),
        )

    def test_repeatedItems(self) -> None:
        """
        An item asked twice is answered once, as Dovecot does.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a STATUS Sent (MESSAGES UNSEEN MESSAGES)"),
            b"* STATUS Sent (MESSAGES 0 UNSEEN 0)\r\na OK STATUS completed\r\n",
        )

    def test_recent(self) -> None:
        """
        New mail no session has seen is counted as recent.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n")
        c = self.login()
        self.assertEqual(
            c.command(b"a STATUS inbox (RECENT)"),
            b"* STATUS INBOX (RECENT 1)\r\na OK STATUS completed\r\n",
        )

    def test_nonexistent(self) -> None:
        """
        A name no folder has is C{[NONEXISTENT]}, a level above folders
        included.
        """
        c = self.login()
        c.command(b"c CREATE a/b")
        for name in (b"nothere", b"a"):
            with self.subTest(name=name):
                self.assertEqual(
                    c.command(b"a STATUS " + name + b" (MESSAGES)"),
                    b"a NO [NONEXISTENT] Mailbox does not exist\r\n",
                )

    def test_invalidName(self) -> None:
        """
        A name the store refuses is C{[CANNOT]}.
        """
        c = self.login()
        self.assertEqual(
            c.command(b'a STATUS "" (MESSAGES)'),
            b"a NO [CANNOT] Invalid mailbox name: empty folder name\r\n",
        )

    def test_encodedName(self) -> None:
        """
        The name is answered in modified UTF-7, or quoted, as it needs.
        """
        c = self.login()
        c.command(b"c CREATE Entw&APw-rfe")
        c.command(b'c CREATE "sp ace"')
        self.assertEqual(
            c.command(b"a STATUS Entw&APw-rfe (MESSAGES)"),
            b"* STATUS Entw&APw-rfe (MESSAGES 0)\r\na OK STATUS completed\r\n",
        )
        self.assertEqual(
            c.command(b'a STATUS "sp ace" (MESSAGES)'),
            b'* STATUS "sp ace" (MESSAGES 0)\r\na OK STATUS completed\r\n',
        )

    def test_highestModSeqEnablesCondstore(self) -> None:
        """
        STATUS with C{HIGHESTMODSEQ} turns CONDSTORE on (RFC 7162 3.1):
        a later STORE's FETCH responses carry MODSEQ.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n")
        c = self.selected()
        c.command(b"a STATUS Sent (HIGHESTMODSEQ)")
        self.assertIn(b"MODSEQ (", c.command(b"b STORE 1 +FLAGS (\\Flagged)"))


@implementer(IMessageWriter)
class _Writer:
    """
    A message writer whose C{finish} gives a set outcome.
    """

    def __init__(self, outcome: Deferred[CopyResult]) -> None:
        self.outcome = outcome
        self.finished: list[tuple[tuple[str, ...], float | None]] = []
        self.aborted = 0

    def write(self, data: bytes) -> None:
        pass

    def finish(
        self, flags: Iterable[str] = (), internalDate: float | None = None
    ) -> Deferred[CopyResult]:
        self.finished.append((tuple(flags), internalDate))
        return self.outcome

    def abort(self) -> None:
        self.aborted += 1


class AppendTests(MailboxTestCase):
    """
    APPEND (RFC 3501 6.3.11), with C{APPENDUID} (RFC 4315 3).
    """

    def test_append(self) -> None:
        """
        APPEND stores the message with its flags and internal date, and
        answers with its UIDVALIDITY and UID.
        """
        c = self.login()
        answer = c.send(
            b'a APPEND Sent (\\Seen \\Flagged) "01-Jan-2020 10:00:00 +0100" {14}\r\n'
        )
        self.assertEqual(answer, b"+ Ready for literal data\r\n")
        answer = c.send(b"Subject: x\r\n\r\n\r\n")
        validity = self.folder("Sent").uidValidity
        self.assertEqual(
            answer, b"a OK [APPENDUID %d 1] APPEND completed\r\n" % (validity,)
        )
        [path] = self.files("Sent")
        self.assertTrue(path.name.endswith(":2,FS"), path.name)
        self.assertEqual(path.read_bytes(), b"Subject: x\n\n")
        when = datetime.datetime(2020, 1, 1, 9, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(os.stat(path).st_mtime, when.timestamp())

    def test_uids(self) -> None:
        """
        Each message appended gets the next UID.
        """
        c = self.login()
        validity = self.folder("Drafts").uidValidity
        for uid in (1, 2, 3):
            self.assertEqual(
                c.send(b"a APPEND Drafts {5+}\r\nhello\r\n"),
                b"a OK [APPENDUID %d %d] APPEND completed\r\n" % (validity, uid),
            )
        self.assertEqual(len(self.files("Drafts")), 3)

    def test_keyword(self) -> None:
        """
        A keyword is stored as Dovecot keeps keywords.
        """
        c = self.login()
        answer = c.send(b"a APPEND Drafts ($Forwarded) {5+}\r\nhello\r\n")
        self.assertTrue(tagged(answer).startswith(b"a OK [APPENDUID "), answer)
        [path] = self.files("Drafts")
        self.assertTrue(path.name.endswith(":2,a"), path.name)
        self.assertIn(
            b"$Forwarded", (self.directory("Drafts") / "dovecot-keywords").read_bytes()
        )

    def test_withoutDate(self) -> None:
        """
        Without a date, the internal date is now.
        """
        c = self.login()
        before = time.time()
        c.send(b"a APPEND INBOX {5+}\r\nhello\r\n")
        after = time.time()
        [path] = self.files("INBOX")
        self.assertEqual(path.read_bytes(), b"hello")
        self.assertTrue(before - 1 <= os.stat(path).st_mtime <= after + 1)

    def test_selected(self) -> None:
        """
        APPEND to the selected mailbox tells the client of the new message
        before the tagged response.
        """
        self.deliver(b"Subject: one\r\n\r\nbody\r\n")
        c = self.selected()
        answer = c.send(b"a APPEND INBOX {5+}\r\nhello\r\n")
        validity = self.folder().uidValidity
        self.assertEqual(
            answer,
            b"* 2 EXISTS\r\n* 2 RECENT\r\n"
            b"a OK [APPENDUID %d 2] APPEND completed\r\n" % (validity,),
        )

    def test_otherSelected(self) -> None:
        """
        APPEND to another mailbox sends nothing untagged.
        """
        c = self.selected()
        answer = c.send(b"a APPEND Sent {5+}\r\nhello\r\n")
        self.assertTrue(answer.startswith(b"a OK [APPENDUID "), answer)

    def test_nonexistent(self) -> None:
        """
        APPEND to a name no folder has is C{[TRYCREATE]}, and stores
        nothing.
        """
        c = self.login()
        self.assertEqual(
            c.send(b"a APPEND nothere {5+}\r\nhello\r\n"),
            b"a NO [TRYCREATE] Mailbox does not exist\r\n",
        )
        self.assertFalse(self.directory("nothere").exists())

    def test_invalidName(self) -> None:
        """
        APPEND to a name the store refuses is C{[CANNOT]}.
        """
        c = self.login()
        answer = c.send(b"a APPEND x.y {5+}\r\nhello\r\n")
        self.assertEqual(
            answer,
            b"a NO [CANNOT] Invalid mailbox name: folder name with a dot"
            b" (the separator on disk)\r\n",
        )

    def test_streamedInPieces(self) -> None:
        """
        A message larger than the store's buffers, arriving in pieces that
        split its line ends, is stored whole, in the store's form (LF line
        ends), and counted in its CRLF form.
        """
        line = b"x" * 98 + b"\r\n"
        message = b"Subject: big\r\n\r\n" + line * 5000
        c = self.login()
        self.assertEqual(
            c.send(b"a APPEND Archive {%d}\r\n" % (len(message),)),
            b"+ Ready for literal data\r\n",
        )
        answers = [c.send(message[i : i + 4099]) for i in range(0, len(message), 4099)]
        self.assertEqual(b"".join(answers), b"")
        validity = self.folder("Archive").uidValidity
        self.assertEqual(
            c.send(b"\r\n"),
            b"a OK [APPENDUID %d 1] APPEND completed\r\n" % (validity,),
        )
        [path] = self.files("Archive")
        self.assertEqual(path.read_bytes(), message.replace(b"\r\n", b"\n"))
        self.assertEqual(
            c.command(b"s STATUS Archive (MESSAGES SIZE)"),
            b"* STATUS Archive (MESSAGES 1 SIZE %d)\r\n"
            b"s OK STATUS completed\r\n" % (len(message),),
        )

    def test_connectionLostMidMessage(self) -> None:
        """
        A client that goes away in the middle of its message leaves
        nothing behind: no message, no temporary file.
        """
        c = self.login()
        c.send(b"a APPEND Archive {1000}\r\n")
        c.send(b"Subject: cut\r\n\r\n" + b"y" * 100)
        c.lose()
        self.assertEqual(self.files("Archive"), [])
        self.assertEqual(list((self.directory("Archive") / "tmp").iterdir()), [])

    def test_emptyRefused(self) -> None:
        """
        An empty message is refused, as Dovecot refuses it, and nothing
        is stored.
        """
        c = self.login()
        self.assertEqual(
            self.runAppend(c, Append("Sent", (), None, b"")),
            b"t NO Can't save a zero byte message\r\n",
        )
        self.assertEqual(self.files("Sent"), [])

    def test_bytes(self) -> None:
        """
        A message given whole goes to the account's C{append}, with its
        flags and date.
        """
        c = self.login()
        date = datetime.datetime(
            2021, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        )
        answer = self.runAppend(c, Append("Sent", ("\\Draft",), date, b"hi\r\n"))
        validity = self.folder("Sent").uidValidity
        self.assertEqual(
            answer, b"t OK [APPENDUID %d 1] APPEND completed\r\n" % (validity,)
        )
        [path] = self.files("Sent")
        self.assertTrue(path.name.endswith(":2,D"), path.name)
        self.assertEqual(os.stat(path).st_mtime, date.timestamp())

    def test_writer(self) -> None:
        """
        A message streamed to the store is finished with the flags and the
        date as seconds since the epoch.
        """
        c = self.login()
        writer = _Writer(Deferred())
        date = datetime.datetime(2022, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
        c.protocol.run(
            Command("t", "APPEND", Append("Sent", ("\\Seen",), date, writer))
        )
        self.assertEqual(writer.finished, [(("\\Seen",), date.timestamp())])
        self.assertEqual(c.read(), b"")
        assert writer.outcome is not None
        writer.outcome.callback(CopyResult(7, (), (42,)))
        self.assertEqual(c.read(), b"t OK [APPENDUID 7 42] APPEND completed\r\n")

    def test_writerFailures(self) -> None:
        """
        The store's failures to finish a message become the statuses of
        RFC 5530.
        """
        cases: list[tuple[Exception, bytes]] = [
            (NoSuchFolder("gone"), b"t NO [TRYCREATE] Mailbox does not exist\r\n"),
            (StoreFull("full"), b"t NO [OVERQUOTA] Not enough disk space\r\n"),
        ]
        c = self.login()
        for error, expected in cases:
            with self.subTest(error=error):
                writer = _Writer(fail(error))
                answer = self.runAppend(c, Append("Sent", (), None, writer))
                self.assertEqual(answer, expected)


class NamespaceTests(MailboxTestCase):
    """
    NAMESPACE (RFC 2342).
    """

    def test_namespace(self) -> None:
        """
        One personal namespace, without a prefix, with C{/} as delimiter.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"a NAMESPACE"),
            b'* NAMESPACE (("" "/")) NIL NIL\r\na OK NAMESPACE completed\r\n',
        )


class CanonicalNameTests(SynchronousTestCase):
    """
    L{canonicalName}.
    """

    def test_table(self) -> None:
        """
        INBOX as a first level is in capitals; the rest keeps its case.
        """
        cases = [
            ("inbox", "INBOX"),
            ("Inbox/Sub", "INBOX/Sub"),
            ("inboxy", "inboxy"),
            ("x/inbox", "x/inbox"),
            ("\u0131nbox/x", "\u0131nbox/x"),
        ]
        for name, expected in cases:
            with self.subTest(name=name):
                self.assertEqual(canonicalName(name), expected)
