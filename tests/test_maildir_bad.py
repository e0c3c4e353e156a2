# -*- test-case-name: tests.test_maildir_bad -*-
"""
Bad input and bad luck for L{gomail_twisted.maildir}: damaged UID files,
files changed behind the store's back, forbidden names, a full disk, two
writers at once, and a writer killed at any moment.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.maildir import (
    DELETED,
    INBOX,
    SEEN,
    FlagChange,
    InvalidName,
    NoSuchFolder,
    NoSuchMessage,
    StoreFull,
)
from gomail_twisted.maildir._disk import FolderDisk
from gomail_twisted.maildir._files import arrivalKey
from gomail_twisted.maildir._uidlist import FILE_NAME, UIDList
from tests.test_maildir_store import MESSAGE, USER, Recorder, StoreTestCase


class BehindTheBackTests(StoreTestCase):
    """
    Files changed by someone else while a folder is open.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.result(self.acct.append(INBOX, MESSAGE))
        self.result(self.acct.append(INBOX, MESSAGE))
        self.folder = self.result(self.acct.openFolder(INBOX))
        self.recorder = Recorder()
        self.folder.addListener(self.recorder)
        self.addCleanup(self.store.close)
        self.inbox = self.root / USER

    def arrived(self) -> list[str]:
        """
        INBOX's files in the order they arrived, so in UID order (by name,
        C{M999999} would come after C{M1000000}).
        """
        return sorted(self.files(), key=arrivalKey)

    def test_renamedFile(self) -> None:
        """
        A flag set by renaming the file (as mutt does) is seen at the next
        refresh, with a higher mod-sequence, and the message still reads.
        """
        [name, _] = self.arrived()
        before = self.folder.messages()[0].modSeq
        # As a mutt run a moment later would: not in the same tick of the
        # directory's time stamp as the store's own renames when it opened
        # the folder (a change within that tick is seen only at the next
        # one, or by a view's watcher).
        cur = self.inbox / "cur"
        opened = os.stat(cur).st_mtime_ns
        os.rename(cur / name, cur / (name[:-1] + ",S"))
        os.utime(cur, ns=(opened, opened + 10**9))
        self.assertEqual(self.result(self.folder.read(1)), MESSAGE)
        self.result(self.folder.refresh())
        info = self.folder.messages()[0]
        self.assertEqual(info.flags, {SEEN})
        self.assertGreater(info.modSeq, before)
        self.assertIn(("flags", ((1, frozenset({SEEN})),)), self.recorder.events)

    def test_deletedFile(self) -> None:
        """
        A file deleted behind our back is expunged at the next refresh;
        reading it fails with L{NoSuchMessage}.
        """
        [name, _] = self.arrived()
        os.unlink(self.inbox / "cur" / name)
        self.failureResultOf(self.folder.read(1), NoSuchMessage)
        self.assertEqual(self.recorder.events, [("expunged", (1,))])
        self.assertEqual([m.uid for m in self.folder.messages()], [2])

    def test_flagOnDeletedFile(self) -> None:
        """
        Setting flags on a message whose file went away passes it over and
        reports it expunged.
        """
        [name, _] = self.arrived()
        os.unlink(self.inbox / "cur" / name)
        update = self.result(self.folder.setFlags([1, 2], [SEEN], FlagChange.ADD))
        self.assertEqual([m.uid for m in update.updated], [2])
        self.assertIn(("expunged", (1,)), self.recorder.events)

    def test_folderRemoved(self) -> None:
        """
        A folder removed by another program while open: the views are told
        at the next refresh, and calls fail with L{NoSuchFolder}.
        """
        self.result(self.acct.createFolder("Work"))
        view = self.result(self.acct.openFolder("Work"))
        recorder = Recorder()
        view.addListener(recorder)
        shutil.rmtree(self.inbox / ".Work")
        self.failureResultOf(view.refresh(), NoSuchFolder)
        self.assertEqual(recorder.events, [("gone", None)])
        self.failureResultOf(view.setFlags([1], [SEEN], FlagChange.ADD), NoSuchFolder)
        self.failureResultOf(self.acct.openFolder("Work"), NoSuchFolder)

    def test_corruptUIDFile(self) -> None:
        """
        A corrupt UID file gives the folder a new, greater UIDVALIDITY: the
        open views are told the folder is gone, and a new view sees every
        message with fresh UIDs.
        """
        old = self.folder.uidValidity
        path = self.inbox / FILE_NAME
        path.write_bytes(path.read_bytes().replace(b"+2", b"?2"))
        self.result(self.acct.append(INBOX, MESSAGE))
        self.flushLoggedErrors()
        other = self.newStore()
        view = self.result(self.account(other).openFolder(INBOX))
        self.assertGreater(view.uidValidity, old)
        self.assertEqual([m.uid for m in view.messages()], [1, 2, 3])
        self.failureResultOf(self.folder.refresh(), NoSuchFolder)
        self.assertEqual(self.recorder.events[-1], ("gone", None))
        again = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(again.uidValidity, view.uidValidity)
        self.assertEqual(len(again.messages()), 3)

    def test_truncatedUIDFile(self) -> None:
        """
        A UID file cut in its last record still opens; the message whose
        record was cut gets a UID no one else has.
        """
        path = self.inbox / FILE_NAME
        data = path.read_bytes()
        path.write_bytes(data[:-5])
        other = self.newStore()
        view = self.result(self.account(other).openFolder(INBOX))
        self.assertEqual(view.uidValidity, self.folder.uidValidity)
        uids = [m.uid for m in view.messages()]
        self.assertEqual(len(set(uids)), 2)
        self.assertEqual(uids[0], 1)


class ForbiddenNameTests(StoreTestCase):
    """
    Names that could reach outside an account are refused.
    """

    def test_everyForbiddenCharacter(self) -> None:
        """
        Every control character, NUL, DEL, C{.}, C{%} and C{*} is refused in
        a folder name, and nothing appears on disk.
        """
        account = self.account()
        before = sorted(os.listdir(self.root / USER))
        forbidden = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", ".", "%", "*"]
        for char in forbidden:
            for name in [f"a{char}b", char, f"x/{char}"]:
                self.failureResultOf(account.createFolder(name), InvalidName)
        for name in ["..", "../../etc", "/abs", "a//b", "~root", "a/", "\ud800"]:
            self.failureResultOf(account.createFolder(name), InvalidName)
        self.assertEqual(sorted(os.listdir(self.root / USER)), before)
        self.assertEqual(os.listdir(self.root), [USER])

    def test_hostileAccounts(self) -> None:
        """
        Hostile account names stay one directory directly under the root.
        """
        for user in ["../../x@example.com", "a/b@example.com", ".x@example.com"]:
            self.result(self.store.openAccount(user, create=True))
        for name in os.listdir(self.root):
            self.assertFalse(name.startswith("."), name)
            self.assertNotIn("/", name)
        self.assertEqual(len(os.listdir(self.root)), 3)
        self.assertEqual(os.listdir(self.root.parent), [self.root.name])


def _fullAfter(path: str, allowed: int) -> Any:
    """
    An C{os.write} that fails with ENOSPC once C{allowed} bytes were
    written to files whose path contains C{path}.
    """
    realWrite = os.write
    written = [0]

    def write(fd: int, data: Any) -> int:
        if path in os.readlink(f"/proc/self/fd/{fd}"):
            if written[0] + len(data) > allowed:
                n = max(allowed - written[0], 0)
                if n:
                    written[0] += n
                    return realWrite(fd, bytes(data[:n]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
        return realWrite(fd, data)

    return write


class DiskFullTests(StoreTestCase):
    """
    A disk that fills up loses nothing already accepted and leaves no
    partial file.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.result(self.acct.append(INBOX, MESSAGE))
        self.inbox = self.root / USER

    def assertClean(self) -> None:
        self.assertEqual(os.listdir(self.inbox / "tmp"), [])
        view = self.result(self.newStore().openAccount(USER))
        folder = self.result(view.openFolder(INBOX))
        self.assertEqual([m.uid for m in folder.messages()], [1])
        self.assertEqual(self.result(folder.read(1)), MESSAGE)

    def test_deliveryFillsDisk(self) -> None:
        """
        Delivery into a disk that fills up mid-message fails with
        L{StoreFull}; nothing is delivered.
        """
        self.patch(os, "write", _fullAfter("/tmp/", 10))
        self.failureResultOf(self.store.deliver([USER], MESSAGE), StoreFull)
        self.flushLoggedErrors(OSError)
        self.assertEqual(os.listdir(self.inbox / "new"), [])
        self.assertClean()

    def test_appendFillsDisk(self) -> None:
        """
        An append into a disk that fills up mid-message fails with
        L{StoreFull}; the message is not stored.
        """
        self.patch(os, "write", _fullAfter("/tmp/", 10))
        self.failureResultOf(self.acct.append(INBOX, MESSAGE), StoreFull)
        self.flushLoggedErrors(OSError)
        self.assertClean()

    def test_uidFileFillsDisk(self) -> None:
        """
        When the UID file cannot grow, the append fails with L{StoreFull},
        its message file is removed, and the UID file is as before.
        """
        before = (self.inbox / FILE_NAME).read_bytes()
        realPwrite = os.pwrite

        def pwrite(fd: int, data: Any, offset: int) -> int:
            if os.readlink(f"/proc/self/fd/{fd}").endswith(FILE_NAME):
                realPwrite(fd, bytes(data[:7]), offset)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return realPwrite(fd, data, offset)

        self.patch(os, "pwrite", pwrite)
        self.failureResultOf(self.acct.append(INBOX, MESSAGE), StoreFull)
        self.flushLoggedErrors(OSError)
        self.assertEqual((self.inbox / FILE_NAME).read_bytes(), before)
        self.assertEqual(len(os.listdir(self.inbox / "cur")), 1)
        self.assertClean()


_CHILD = r"""
import sys
from pathlib import Path
from gomail_twisted.maildir._disk import FolderDisk
disk = FolderDisk(Path(sys.argv[1]))
disk.scan()
for i in range(int(sys.argv[2])):
    uid, _ = disk.append(b"Subject: child %d\r\n\r\nx\r\n" % i, frozenset(), 1e9)
    key = disk.files[uid].split("/")[1].split(",")[0]
    print(uid, key, flush=True)
"""


def _mapping(directory: Path) -> dict[str, int]:
    u = UIDList(directory)
    u.load()
    return dict(u.uids)


class RaceTests(SynchronousTestCase):
    """
    Two writers on one folder never corrupt it nor share a UID.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        for sub in ("cur", "new", "tmp"):
            (self.directory / sub).mkdir(parents=True)

    def assertConsistent(self, told: list[tuple[int, str]]) -> None:
        """
        Every file has a UID of its own, and every UID a writer was told
        still names the message it was told for.
        """
        disk = FolderDisk(self.directory)
        disk.scan(force=True)
        names = os.listdir(self.directory / "cur") + os.listdir(self.directory / "new")
        self.assertEqual(len(disk.files), len(names))
        self.assertEqual(len(set(disk.files)), len(names))
        mapping = _mapping(self.directory)
        for uid, key in told:
            self.assertEqual(mapping.get(key), uid, key)
        self.assertEqual(len({uid for uid, _ in told}), len(told))

    def test_twoThreads(self) -> None:
        """
        Two stores' disk objects appending at once from two threads.
        """
        told: list[tuple[int, str]] = []
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                disk = FolderDisk(self.directory)
                disk.scan()
                for _ in range(50):
                    uid, _ = disk.append(MESSAGE, frozenset(), 1e9)
                    told.append((uid, disk.files[uid][4:].split(",")[0]))
                    disk.scan()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(told), 100)
        self.assertConsistent(told)

    def test_subprocess(self) -> None:
        """
        A child process appends while this one appends and expunges.
        """
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self.directory), "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        disk = FolderDisk(self.directory)
        disk.scan()
        told: list[tuple[int, str]] = []
        for i in range(60):
            uid, _ = disk.append(MESSAGE, frozenset({DELETED} if i % 3 else ()), 1e9)
            told.append((uid, disk.files[uid][4:].split(",")[0]))
            if i % 10 == 9:
                disk.scan()
                disk.expunge(None)
                told = [(u, k) for u, k in told if u in disk.files]
        out, _ = child.communicate(timeout=60)
        self.assertEqual(child.returncode, 0)
        for line in out.splitlines():
            uid, key = line.split()
            told.append((int(uid), key))
        self.assertConsistent(told)

    def test_killedWriter(self) -> None:
        """
        A writer killed with SIGKILL at random moments (20 runs) leaves a
        folder that opens, where every UID it was told still names its
        message.
        """
        rng = random.Random(8)
        told: list[tuple[int, str]] = []
        for _ in range(20):
            child = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(self.directory), "100000"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            for _ in range(rng.randrange(1, 30)):
                line = child.stdout.readline()
                if not line:
                    break
                uid, key = line.split()
                told.append((int(uid), key))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
            child.stdout.close()
        self.assertConsistent(told)
