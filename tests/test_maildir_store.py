# -*- test-case-name: tests.test_maildir_store -*-
"""
Tests for L{gomail_twisted.maildir}: the Maildir store through its
interface, and the files it leaves on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gomail_twisted.maildir import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    INBOX,
    SEEN,
    FlagChange,
    FolderExists,
    IAccount,
    IFolder,
    IFolderListener,
    IMailStore,
    InvalidName,
    MaildirStore,
    MessageInfo,
    NoSuchAccount,
    NoSuchFolder,
    NoSuchMessage,
    ReadOnlyFolder,
    StoreFailed,
    TooManyKeywords,
    _store,
)
from gomail_twisted.maildir._changes import buildInfos
from gomail_twisted.maildir._disk import FolderDisk

_T = TypeVar("_T")
USER = "alice@example.com"
MESSAGE = b"From: bob@example.net\r\nSubject: hello\r\n\r\nHi.\r\n.dot\r\n"


class SyncPool(ThreadPool):
    """
    A thread pool that runs work at once, on the calling thread.
    """

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], None],
        f: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)


class SyncReactor(Clock):
    """
    A clock whose C{callFromThread} runs the call at once.
    """

    def callFromThread(self, f: Callable[..., object], *args: object) -> None:
        f(*args)


@implementer(IFolderListener)
class Recorder:
    """
    Records what a listener is told.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def messagesAdded(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        self.events.append(("added", tuple(m.uid for m in messages)))

    def flagsChanged(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        self.events.append(("flags", tuple((m.uid, m.flags) for m in messages)))

    def messagesExpunged(self, folder: IFolder, uids: Sequence[int]) -> None:
        self.events.append(("expunged", tuple(uids)))

    def folderGone(self, folder: IFolder) -> None:
        self.events.append(("gone", None))


class StoreTestCase(SynchronousTestCase):
    """
    A store over a temporary root, its disk work on the test's thread.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.store = self.newStore()

    def newStore(self) -> MaildirStore:
        return MaildirStore(self.root, reactor=SyncReactor(), threadPool=SyncPool())

    def result(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def account(self, store: MaildirStore | None = None) -> Any:
        return self.result((store or self.store).openAccount(USER, create=True))

    def files(self, folder: str = "", sub: str = "cur") -> list[str]:
        directory = self.root / USER / folder / sub
        return sorted(p.name for p in directory.iterdir())


class AccountTests(StoreTestCase):
    """
    Accounts and their folders.
    """

    def test_interfaces(self) -> None:
        """
        The store, its accounts and its views provide their interfaces.
        """
        self.assertTrue(verifyObject(IMailStore, self.store))
        account = self.account()
        self.assertTrue(verifyObject(IAccount, account))
        self.assertTrue(verifyObject(IFolder, self.result(account.openFolder(INBOX))))

    def test_accountDirectoryRemembered(self) -> None:
        """
        An account's directory is the same on every call, also once more
        users than the store remembers have been named, and a name that is
        no address is refused every time.
        """
        first = self.store.accountDirectory("Alice@example.com")
        self.assertEqual(first, self.store.root / "alice@example.com")
        for n in range(_store._ACCOUNT_PATHS + 1):
            self.assertEqual(
                self.store.accountDirectory(f"u{n}@example.com"),
                self.store.root / f"u{n}@example.com",
            )
        self.assertEqual(self.store.accountDirectory("Alice@example.com"), first)
        self.assertLessEqual(len(self.store._accountPaths), _store._ACCOUNT_PATHS)
        for _ in range(2):
            with self.assertRaises(InvalidName):
                self.store.accountDirectory("no-address")

    def test_newAccountLayout(self) -> None:
        """
        A new account is a Maildir with the special-use folders as
        Maildir++ sub-folders, each with C{maildirfolder}, all subscribed.
        """
        account = self.account()
        path = self.root / USER
        for sub in ("cur", "new", "tmp"):
            self.assertTrue((path / sub).is_dir())
        for name in ("Drafts", "Sent", "Junk", "Trash", "Archive"):
            self.assertTrue((path / f".{name}" / "cur").is_dir())
            self.assertTrue((path / f".{name}" / "maildirfolder").is_file())
        folders = self.result(account.listFolders())
        self.assertEqual(
            [(f.name, f.specialUse, f.subscribed) for f in folders],
            [
                (INBOX, None, True),
                ("Archive", "\\Archive", True),
                ("Drafts", "\\Drafts", True),
                ("Junk", "\\Junk", True),
                ("Sent", "\\Sent", True),
                ("Trash", "\\Trash", True),
            ],
        )
        self.assertEqual(
            (path / "subscriptions").read_bytes(),
            b"V\t2\n\nINBOX\nDrafts\nSent\nJunk\nTrash\nArchive\n",
        )

    def test_noSuchAccount(self) -> None:
        """
        Opening an account that does not exist, without C{create}, fails.
        """
        self.failureResultOf(
            self.store.openAccount("nobody@example.com"), NoSuchAccount
        )
        self.assertFalse((self.root / "nobody@example.com").exists())

    def test_existingSinkAccount(self) -> None:
        """
        A directory left by the SMTP sink (a bare Maildir with a message in
        C{new/}) opens as an account whose INBOX holds the message.
        """
        inbox = self.root / "you@localhost"
        for sub in ("cur", "new", "tmp"):
            (inbox / sub).mkdir(parents=True)
        (inbox / "new" / "1.M1P1.host").write_bytes(b"Subject: x\n\nbody\n")
        account = self.result(self.store.openAccount("you@localhost"))
        folder = self.result(account.openFolder(INBOX))
        [info] = folder.messages()
        self.assertEqual((info.uid, info.size), (1, len(b"Subject: x\r\n\r\nbody\r\n")))
        self.assertEqual(self.result(folder.read(1)), b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(os.listdir(inbox / "cur"), ["1.M1P1.host:2,"])

    def test_accountNames(self) -> None:
        """
        Account directories are the percent-encoded normalized address;
        names that are no address are refused.
        """
        self.account()
        self.result(self.store.openAccount("../x@example.com", create=True))
        self.assertEqual(
            sorted(os.listdir(self.root)), ["%2E.%2Fx@example.com", "alice@example.com"]
        )
        for bad in ["nobody", "@example.com", "a@"]:
            self.failureResultOf(self.store.openAccount(bad, create=True), InvalidName)

    def test_createListDelete(self) -> None:
        """
        Folders are created as C{.Name} directories (levels joined by dots,
        modified UTF-7), listed with their children, and deleted without
        their children.
        """
        account = self.account()
        self.assertEqual(
            self.result(account.createFolder("Work/Entwürfe")), "Work/Entwürfe"
        )
        self.assertEqual(self.result(account.createFolder("Work")), "Work")
        self.assertTrue((self.root / USER / ".Work.Entw&APw-rfe" / "cur").is_dir())
        names = {f.name: f.hasChildren for f in self.result(account.listFolders())}
        self.assertEqual(names["Work"], True)
        self.assertEqual(names["Work/Entwürfe"], False)
        self.failureResultOf(account.createFolder("Work"), FolderExists)
        self.failureResultOf(account.createFolder("inbox"), FolderExists)
        self.result(account.deleteFolder("Work"))
        names = {f.name: f.hasChildren for f in self.result(account.listFolders())}
        self.assertNotIn("Work", names)
        self.assertIn("Work/Entwürfe", names)
        self.failureResultOf(account.deleteFolder("Work"), NoSuchFolder)
        self.failureResultOf(account.deleteFolder("INBOX"), InvalidName)
        self.assertEqual(
            [n for n in os.listdir(self.root / USER) if "deleted" in n], []
        )

    def test_renameWithChildren(self) -> None:
        """
        Renaming a folder renames the folders below it, keeps the messages
        and their flags, and refuses a name that exists.
        """
        account = self.account()
        self.result(account.createFolder("A"))
        self.result(account.createFolder("A/B"))
        self.result(account.append("A/B", MESSAGE, [SEEN]))
        self.failureResultOf(account.renameFolder("A", "Sent"), FolderExists)
        self.result(account.renameFolder("A", "C"))
        names = [f.name for f in self.result(account.listFolders())]
        self.assertIn("C/B", names)
        self.assertNotIn("A", names)
        folder = self.result(account.openFolder("C/B"))
        [info] = folder.messages()
        self.assertEqual(info.flags, {SEEN})

    def test_renameInbox(self) -> None:
        """
        Renaming INBOX moves its messages to the new folder and leaves
        INBOX empty (RFC 3501 6.3.5).
        """
        account = self.account()
        self.result(self.store.deliver([USER], MESSAGE))
        self.result(account.append(INBOX, MESSAGE, [FLAGGED]))
        self.result(account.renameFolder(INBOX, "Old"))
        self.assertEqual(self.result(account.openFolder(INBOX)).messages(), ())
        old = self.result(account.openFolder("Old"))
        self.assertEqual(
            sorted(sorted(m.flags) for m in old.messages()), [[], [FLAGGED]]
        )

    def test_uidsInArrivalOrder(self) -> None:
        """
        Messages found in C{new/} get UIDs in order of arrival: the seconds
        and microseconds of their names compared as numbers, not as text.
        """
        account = self.account()
        new = self.root / USER / "new"
        (new / "1700000000.M100000P1Q2.host").write_bytes(b"Subject: second\n\n")
        (new / "1700000000.M99999P1Q1.host").write_bytes(b"Subject: first\n\n")
        (new / "1699999999.M5P1Q3.host").write_bytes(b"Subject: zeroth\n\n")
        folder = self.result(account.openFolder(INBOX))
        self.addCleanup(folder.close)
        self.assertEqual(
            [self.result(folder.read(m.uid)) for m in folder.messages()],
            [
                b"Subject: zeroth\r\n\r\n",
                b"Subject: first\r\n\r\n",
                b"Subject: second\r\n\r\n",
            ],
        )

    def test_subscriptions(self) -> None:
        """
        Subscriptions are kept in Dovecot's version-2 C{subscriptions}
        file, levels in modified UTF-7 between TABs; a name need not exist.
        """
        account = self.account()
        self.result(account.subscribe("Lists/Café"))
        self.result(account.unsubscribe("Junk"))
        self.result(account.unsubscribe("Nothing"))
        lines = (self.root / USER / "subscriptions").read_bytes().split(b"\n")
        self.assertIn(b"Lists\tCaf&AOk-", lines)
        self.assertNotIn(b"Junk", lines)
        folders = {f.name: f.subscribed for f in self.result(account.listFolders())}
        self.assertEqual(folders["Junk"], False)
        self.assertEqual(folders["Sent"], True)
        subscribed = self.result(account.listSubscriptions())
        self.assertIn("Lists/Café", subscribed)
        self.assertIn("Sent", subscribed)
        self.assertNotIn("Junk", subscribed)

    def test_dovecotSubscriptions(self) -> None:
        """
        A version-2 file Dovecot wrote is read with its non-ASCII levels
        decoded, and a subscription made here keeps Dovecot's lines.
        """
        account = self.account()
        self.result(account.createFolder("Reisen/Übersee"))
        path = self.root / USER / "subscriptions"
        path.write_bytes(b"V\t2\n\nProjects\t2025\nReisen\t&ANw-bersee\nINBOX\n")
        folders = {f.name: f.subscribed for f in self.result(account.listFolders())}
        self.assertEqual(folders["Reisen/Übersee"], True)
        self.assertEqual(folders["Sent"], False)
        self.result(account.subscribe("Sent"))
        self.assertEqual(
            path.read_bytes(),
            b"V\t2\n\nProjects\t2025\nReisen\t&ANw-bersee\nINBOX\nSent\n",
        )

    def test_badNames(self) -> None:
        """
        Bad folder names are refused before the disk is touched.
        """
        account = self.account()
        for bad in ["", "a/../b", "../x", ".hidden", "a\x00b", "a/", "x*", "~x"]:
            self.failureResultOf(account.createFolder(bad), InvalidName)
            self.failureResultOf(account.openFolder(bad), InvalidName)
            self.failureResultOf(account.append(bad, MESSAGE), InvalidName)

    def test_status(self) -> None:
        """
        STATUS counts messages, unseen, recent (not yet seen by a session:
        delivered or appended while none had the folder open) and sizes.
        """
        account = self.account()
        self.result(self.store.deliver([USER], MESSAGE))
        self.result(account.append(INBOX, MESSAGE, [SEEN]))
        status = self.result(account.folderStatus(INBOX))
        self.assertEqual(
            (status.messages, status.unseen, status.recent, status.uidNext),
            (2, 1, 2, 3),
        )
        self.assertEqual(status.size, 2 * len(MESSAGE))
        self.failureResultOf(account.folderStatus("Nothing"), NoSuchFolder)


class MessageTests(StoreTestCase):
    """
    Messages: append, read, flags, copy, move, expunge.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()

    def test_appendFileName(self) -> None:
        """
        An appended message is a file in C{cur/} named as Dovecot names
        it (S= disk size, W= CRLF size, flags in ASCII order), with LF line
        ends and the internal date as its mtime.
        """
        result = self.result(
            self.acct.append(INBOX, MESSAGE, [SEEN, DRAFT, ANSWERED, FLAGGED], 1e9)
        )
        self.assertEqual(result.destinationUIDs, (1,))
        [name] = self.files()
        disk = MESSAGE.replace(b"\r\n", b"\n")
        self.assertRegex(
            name,
            rf"\A\d+\.M\d+P{os.getpid()}Q\d+R[0-9a-f]{{8}}\.[^:/]+"
            rf",S={len(disk)},W={len(MESSAGE)}:2,DFRS\Z",
        )
        path = self.root / USER / "cur" / name
        self.assertEqual(path.read_bytes(), disk)
        self.assertEqual(path.stat().st_mtime, 1e9)
        self.assertEqual(self.files(sub="tmp"), [])

    def test_readRanges(self) -> None:
        """
        A message reads back in CRLF form, whole or by range, and its size
        is that of the CRLF form; an existing CRLF on disk is not doubled.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        folder = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(self.result(folder.read(1)), MESSAGE)
        self.assertEqual(folder.messages()[0].size, len(MESSAGE))
        for start, length in [(0, 5), (5, 10), (20, None), (len(MESSAGE), 4), (3, 0)]:
            end = None if length is None else start + length
            self.assertEqual(
                self.result(folder.read(1, start, length)), MESSAGE[start:end]
            )
        self.failureResultOf(folder.read(99), NoSuchMessage)

    def test_largeMessageChunks(self) -> None:
        """
        A message longer than a read chunk converts right across chunk
        boundaries, also where a CR ends one chunk.
        """
        body = (b"x" * 65535 + b"\r\n") * 3 + b"y\n" * 1000
        (self.root / USER / "new" / "2.M1P1.host").write_bytes(body)
        folder = self.result(self.acct.openFolder(INBOX))
        expected = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.assertEqual(self.result(folder.read(1)), expected)
        self.assertEqual(folder.messages()[0].size, len(expected))
        self.assertEqual(
            self.result(folder.read(1, 65530, 70000)), expected[65530:135530]
        )

    def test_flags(self) -> None:
        """
        Flags are set, added and removed by renaming the file; keywords
        get letters from C{dovecot-keywords}; each change raises the
        mod-sequence.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        folder = self.result(self.acct.openFolder(INBOX))
        before = folder.messages()[0].modSeq
        update = self.result(folder.setFlags([1], [SEEN, "$Label1"], FlagChange.ADD))
        [info] = update.updated
        self.assertEqual(info.flags, {SEEN, "$Label1"})
        self.assertGreater(info.modSeq, before)
        self.assertTrue(self.files()[0].endswith(":2,Sa"))
        self.assertEqual(
            (self.root / USER / "dovecot-keywords").read_text(), "0 $Label1\n"
        )
        self.result(folder.setFlags([1], ["$Other", FLAGGED], FlagChange.ADD))
        self.assertTrue(self.files()[0].endswith(":2,FSab"))
        self.result(folder.setFlags([1], [SEEN, "$Label1"], FlagChange.REMOVE))
        self.assertTrue(self.files()[0].endswith(":2,Fb"))
        self.result(folder.setFlags([1], [DELETED], FlagChange.REPLACE))
        self.assertTrue(self.files()[0].endswith(":2,T"))
        self.assertEqual(folder.messages()[0].flags, {DELETED})
        noChange = self.result(folder.setFlags([1, 7], [DELETED], FlagChange.ADD))
        self.assertEqual(noChange.updated, ())

    def test_unchangedSince(self) -> None:
        """
        With C{unchangedSince}, messages modified after it are left alone
        and reported (RFC 7162 3.1.3).
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        self.result(self.acct.append(INBOX, MESSAGE))
        folder = self.result(self.acct.openFolder(INBOX))
        first = folder.messages()[0].modSeq
        self.result(folder.setFlags([2], [SEEN], FlagChange.ADD))
        update = self.result(folder.setFlags([1, 2], [FLAGGED], FlagChange.ADD, first))
        self.assertEqual([m.uid for m in update.updated], [1])
        self.assertEqual(update.unchanged, (2,))

    def test_tooManyKeywords(self) -> None:
        """
        A folder holds 26 keywords; a 27th is refused.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        folder = self.result(self.acct.openFolder(INBOX))
        words = [f"k{i}" for i in range(26)]
        self.result(folder.setFlags([1], words, FlagChange.ADD))
        self.assertEqual(len(folder.messages()[0].flags), 26)
        self.failureResultOf(
            folder.setFlags([1], ["one-more"], FlagChange.ADD), TooManyKeywords
        )

    def test_copyAndMove(self) -> None:
        """
        Copy and move return the new UIDs in order, keep flags (keywords
        re-lettered for the destination) and internal dates; move takes
        the messages out of the source.
        """
        for flags in ([SEEN], ["$A"], [FLAGGED, "$B"]):
            self.result(self.acct.append(INBOX, MESSAGE, flags, 1234567890.0))
        folder = self.result(self.acct.openFolder(INBOX))
        copied = self.result(folder.copy([3, 1, 99], "Archive"))
        self.assertEqual((copied.sourceUIDs, copied.destinationUIDs), ((1, 3), (1, 2)))
        moved = self.result(folder.move([2, 3], "Archive"))
        self.assertEqual((moved.sourceUIDs, moved.destinationUIDs), ((2, 3), (3, 4)))
        self.assertEqual([m.uid for m in folder.messages()], [1])
        archive = self.result(self.acct.openFolder("Archive"))
        self.assertEqual(
            [(m.uid, m.flags, m.internalDate) for m in archive.messages()],
            [
                (1, {SEEN}, 1234567890.0),
                (2, {FLAGGED, "$B"}, 1234567890.0),
                (3, {"$A"}, 1234567890.0),
                (4, {FLAGGED, "$B"}, 1234567890.0),
            ],
        )
        self.assertEqual(archive.uidValidity, copied.uidValidity)
        self.assertEqual(self.result(archive.read(4)), MESSAGE)
        self.failureResultOf(folder.copy([1], "Nothing"), NoSuchFolder)

    def test_expunge(self) -> None:
        """
        Expunge removes the files of messages flagged C{\\Deleted} (only
        those asked for, with UIDs); UIDs are never reused.
        """
        for _ in range(3):
            self.result(self.acct.append(INBOX, MESSAGE, [DELETED]))
        folder = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(self.result(folder.expunge([2])), (2,))
        self.assertEqual(self.result(folder.expunge()), (1, 3))
        self.assertEqual(self.files(), [])
        self.result(self.acct.append(INBOX, MESSAGE))
        self.assertEqual([m.uid for m in folder.messages()], [4])

    def test_readOnly(self) -> None:
        """
        A read-only view changes nothing and claims no message as recent:
        it sees as recent those no view has claimed, which the next
        writable view gets.
        """
        self.result(self.store.deliver([USER], MESSAGE))
        folder = self.result(self.acct.openFolder(INBOX, readOnly=True))
        self.assertEqual(folder.recent, {1})
        self.assertEqual(len(self.files(sub="new")), 1)
        writable = self.result(self.acct.openFolder(INBOX))
        self.assertEqual((writable.recent, folder.recent), ({1}, set()))
        self.failureResultOf(
            folder.setFlags([1], [SEEN], FlagChange.ADD), ReadOnlyFolder
        )
        self.failureResultOf(folder.expunge(), ReadOnlyFolder)
        self.failureResultOf(folder.move([1], "Sent"), ReadOnlyFolder)

    def test_recent(self) -> None:
        """
        A delivered message is recent to exactly one view: the first
        writable one that sees it, which moves it to C{cur/}.
        """
        self.result(self.store.deliver([USER], MESSAGE))
        first = self.result(self.acct.openFolder(INBOX))
        second = self.result(self.acct.openFolder(INBOX))
        self.assertEqual((first.recent, second.recent), ({1}, set()))
        self.assertEqual(self.files(sub="new"), [])
        [name] = self.files()
        self.assertTrue(name.endswith(":2,"))

    def test_appendedRecentToNextView(self) -> None:
        """
        A message appended while no writable view is open is recent to the
        next one opened, and counted by STATUS until then; one given to an
        open view is not counted (RFC 3501 6.3.10).
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        self.assertEqual(self.result(self.acct.folderStatus(INBOX)).recent, 1)
        view = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(view.recent, {1})
        self.assertEqual(self.result(self.acct.folderStatus(INBOX)).recent, 0)
        self.result(self.acct.append(INBOX, MESSAGE))
        self.assertEqual(view.recent, {1, 2})
        self.assertEqual(self.result(self.acct.folderStatus(INBOX)).recent, 0)

    def test_closedView(self) -> None:
        """
        Calls on a closed view fail with L{NoSuchFolder}.
        """
        folder = self.result(self.acct.openFolder(INBOX))
        folder.close()
        self.failureResultOf(folder.refresh(), NoSuchFolder)
        self.failureResultOf(folder.read(1), NoSuchFolder)


class ListenerTests(StoreTestCase):
    """
    Changes reach the other views of a folder.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.a = self.result(self.acct.openFolder(INBOX))
        self.b = self.result(self.acct.openFolder(INBOX))
        self.seenByA = Recorder()
        self.seenByB = Recorder()
        self.a.addListener(self.seenByA)
        self.b.addListener(self.seenByB)
        self.addCleanup(self.store.close)

    def test_changesThroughOneView(self) -> None:
        """
        A change made through view A is told to B's listeners, not A's.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        self.assertEqual(self.seenByA.events, [("added", (1,))])
        self.assertEqual(self.seenByB.events, [("added", (1,))])
        self.result(self.a.setFlags([1], [DELETED], FlagChange.ADD))
        self.result(self.a.expunge())
        self.assertEqual(
            self.seenByB.events[1:],
            [("flags", ((1, frozenset({DELETED})),)), ("expunged", (1,))],
        )
        self.assertEqual(self.seenByA.events, [("added", (1,))])
        self.assertEqual(self.b.messages(), ())

    def test_deliverySeenAtOnce(self) -> None:
        """
        A delivery is told to the open views at once (IMAP IDLE sees SMTP
        mail), recent to one of them.
        """
        self.result(self.store.deliver([USER], MESSAGE))
        self.assertEqual(self.seenByA.events, [("added", (1,))])
        self.assertEqual(self.seenByB.events, [("added", (1,))])
        self.assertEqual(len(self.a.recent) + len(self.b.recent), 1)

    def test_otherProcess(self) -> None:
        """
        A change made by another store (another process) is seen at the
        next refresh.
        """
        other = self.newStore()
        account = self.account(other)
        self.result(account.append(INBOX, MESSAGE))
        view = self.result(account.openFolder(INBOX))
        self.result(view.setFlags([1], [SEEN], FlagChange.ADD))
        self.result(self.a.refresh())
        self.assertEqual(self.seenByA.events, [("added", (1,))])
        self.assertEqual(self.a.messages()[0].flags, {SEEN})

    def test_inboxRenamed(self) -> None:
        """
        Renaming INBOX tells its open views at once that its messages left.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        self.result(self.acct.renameFolder(INBOX, "Old"))
        self.assertEqual(self.seenByA.events[-1], ("expunged", (1,)))
        self.assertEqual(self.a.messages(), ())

    def test_folderDeleted(self) -> None:
        """
        Deleting an open folder tells its views, whose later calls fail.
        """
        self.result(self.acct.createFolder("Work"))
        view = self.result(self.acct.openFolder("Work"))
        recorder = Recorder()
        view.addListener(recorder)
        self.result(self.acct.deleteFolder("Work"))
        self.assertEqual(recorder.events, [("gone", None)])
        self.failureResultOf(view.read(1), NoSuchFolder)
        self.failureResultOf(view.refresh(), NoSuchFolder)


class DeliveryTests(StoreTestCase):
    """
    Delivery to several accounts.
    """

    def test_deliverAllOrNothing(self) -> None:
        """
        One copy per account (duplicates once) in C{new/}, named with S=
        and W=; when one account cannot be made, none gets the message.
        """
        self.result(self.store.deliver([USER, "bob@example.com", USER], MESSAGE, 1e9))
        [name] = self.files(sub="new")
        disk = MESSAGE.replace(b"\r\n", b"\n")
        self.assertTrue(name.endswith(f",S={len(disk)},W={len(MESSAGE)}"), name)
        path = self.root / USER / "new" / name
        self.assertEqual(path.read_bytes(), disk)
        self.assertEqual(path.stat().st_mtime, 1e9)
        (self.root / "zed@example.com").write_bytes(b"in the way")
        self.failureResultOf(
            self.store.deliver([USER, "zed@example.com"], MESSAGE), StoreFailed
        )
        self.flushLoggedErrors(FileExistsError)
        self.assertEqual(len(self.files(sub="new")), 1)
        self.assertEqual(self.files(sub="tmp"), [])

    def test_noUIDWork(self) -> None:
        """
        Delivery writes no UID file: UIDs come when a session looks.
        """
        self.result(self.store.deliver([USER], MESSAGE))
        self.assertFalse((self.root / USER / "gomail-uidlist").exists())


class _ShutdownReactor(SyncReactor):
    """
    A clock that keeps the system event triggers it is given, for a test
    to fire.
    """

    def __init__(self) -> None:
        super().__init__()
        self.triggers: list[tuple[str, str, Callable[..., object]]] = []

    def addSystemEventTrigger(
        self, phase: str, event: str, f: Callable[..., object], *args: object
    ) -> int:
        self.triggers.append((phase, event, lambda: f(*args)))
        return len(self.triggers)

    def removeSystemEventTrigger(self, trigger: int) -> None:
        raise AssertionError("a trigger removed after it ran")


class CloseTests(SynchronousTestCase):
    """
    Closing a store that runs its own thread pool.
    """

    def test_closeAfterShutdown(self) -> None:
        """
        A store closed after the reactor's shutdown stopped its thread
        pool closes quietly.
        """
        reactor = _ShutdownReactor()
        store = MaildirStore(Path(self.mktemp()), reactor=reactor)
        worked = store.inThread(int)
        [(phase, event, stop)] = reactor.triggers
        self.assertEqual((phase, event), ("during", "shutdown"))
        # Stopping the pool waits for its work: the result is in.
        stop()
        self.assertEqual(self.successResultOf(worked), 0)
        store.close()


class WatchTests(TestCase):
    """
    With the real reactor and thread pools: a view with listeners hears of
    another process's changes without asking.
    """

    timeout = 20

    async def test_otherProcessDelivery(self) -> None:
        """
        A delivery by another store over the same root reaches the
        listener of a view within seconds, as IMAP IDLE needs.
        """
        root = Path(self.mktemp())
        ours = MaildirStore(root, pollInterval=0.1)
        theirs = MaildirStore(root)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        account = await ours.openAccount(USER, create=True)
        folder = await account.openFolder(INBOX)
        heard: Deferred[None] = Deferred()

        @implementer(IFolderListener)
        class Listener(Recorder):
            def messagesAdded(
                self, folder: IFolder, messages: Sequence[MessageInfo]
            ) -> None:
                super().messagesAdded(folder, messages)
                if not heard.called:
                    heard.callback(None)

        listener = Listener()
        folder.addListener(listener)
        await theirs.deliver([USER], MESSAGE)
        await heard
        self.assertEqual(listener.events, [("added", (1,))])
        self.assertEqual(folder.recent, {1})
        self.assertEqual(await folder.read(1), MESSAGE)
        folder.close()


class CompactionTests(StoreTestCase):
    """
    The store compacts a folder's UID file after the change that filled it
    with dead records.
    """

    def test_compactedAfterExpunge(self) -> None:
        """
        Expunging most of a folder leaves a UID file of live records only,
        written anew, and the folder still reads the same.
        """
        account = self.account()
        for _ in range(80):
            self.result(account.append(INBOX, MESSAGE, [DELETED]))
        self.result(account.append(INBOX, MESSAGE))
        folder = self.result(account.openFolder(INBOX))
        self.assertEqual(len(self.result(folder.expunge())), 80)
        lines = (self.root / USER / "gomail-uidlist").read_text().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[1].startswith("+81 "))
        fresh = self.result(self.account(self.newStore()).openFolder(INBOX))
        self.assertEqual([m.uid for m in fresh.messages()], [81])
        self.assertEqual(fresh.uidNext, 82)


class CostTests(StoreTestCase):
    """
    Directories are listed only when they changed.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        for _ in range(3):
            self.result(self.acct.append(INBOX, MESSAGE))
        self.age()
        self.listed: list[str] = []
        realListdir = os.listdir

        def listdir(path: Any) -> list[str]:
            self.listed.append(os.path.basename(path))
            return realListdir(path)

        self.patch(os, "listdir", listdir)

    def age(self) -> None:
        """
        Make the folder's directories look last changed long ago.
        """
        for sub in ("cur", "new"):
            os.utime(self.root / USER / sub, (1e9, 1e9))

    def test_reopenUnchanged(self) -> None:
        """
        Reopening a folder, or refreshing it, when nothing changed lists
        nothing.
        """
        folder = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(sorted(self.listed), ["cur", "new"])
        self.listed.clear()
        folder.close()
        self.result(self.acct.openFolder(INBOX))
        other = self.result(self.acct.openFolder(INBOX))
        self.result(other.refresh())
        self.assertEqual(self.listed, [])
        self.assertEqual(len(other.messages()), 3)

    def test_ownChangesNoListing(self) -> None:
        """
        Our own flag changes and expunges do not make the next refresh list
        the folder again.
        """
        folder = self.result(self.acct.openFolder(INBOX))
        self.listed.clear()
        self.result(folder.setFlags([1, 2], [DELETED], FlagChange.ADD))
        self.result(folder.expunge())
        self.result(folder.refresh())
        self.assertEqual(self.listed, [])
        self.assertEqual([m.uid for m in folder.messages()], [3])

    def test_deliveryListsNewOnly(self) -> None:
        """
        A delivery to an open INBOX lists only C{new/}, however large
        C{cur/} is.
        """
        folder = self.result(self.acct.openFolder(INBOX))
        recorder = Recorder()
        folder.addListener(recorder)
        self.addCleanup(self.store.close)
        self.listed.clear()
        self.result(self.store.deliver([USER], MESSAGE))
        self.assertEqual(self.listed, ["new"])
        self.assertEqual(recorder.events, [("added", (4,))])
        # With the three appended before the view was opened.
        self.assertEqual(folder.recent, {1, 2, 3, 4})


class BulkTests(SynchronousTestCase):
    """
    The bulk paths of a folder's first look give what one message at a
    time would.
    """

    def test_buildInfos(self) -> None:
        """
        Messages built a field at a time equal, and hash as, those built by
        the constructor.
        """
        flags = [frozenset(), frozenset({SEEN}), frozenset({SEEN, "$Work"})]
        built = buildInfos([1, 5, 9], flags, [10, 20, 30], [1.0, 2.0, 3.5], [4, 5, 6])
        expected = [
            MessageInfo(1, flags[0], 10, 1.0, 4),
            MessageInfo(5, flags[1], 20, 2.0, 5),
            MessageInfo(9, flags[2], 30, 3.5, 6),
        ]
        self.assertEqual(built, expected)
        self.assertEqual([hash(m) for m in built], [hash(m) for m in expected])
        self.assertRaises(AttributeError, setattr, built[0], "uid", 2)

    def test_listing(self) -> None:
        """
        A listing maps each message's key (its name up to the first C{,}
        or C{:}) to its path, and passes over dot files and names with a
        newline.
        """
        root = Path(self.mktemp())
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir(parents=True)
        names = {
            "cur": ["k1,S=5:2,S", "k2:2,", ".hidden", "a\nb", "k3"],
            "new": ["k4,S=9", ",odd"],
        }
        for sub, subNames in names.items():
            for name in subNames:
                (root / sub / name).touch()
        self.assertEqual(
            FolderDisk(root)._list(),
            {
                "k1": "cur/k1,S=5:2,S",
                "k2": "cur/k2:2,",
                "k3": "cur/k3",
                "k4": "new/k4,S=9",
                "": "new/,odd",
            },
        )
        for name in (".hidden", "a\nb"):
            (root / "cur" / name).unlink()
        self.assertEqual(len(FolderDisk(root)._list()), 5)
