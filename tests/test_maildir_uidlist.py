# -*- test-case-name: tests.test_maildir_uidlist -*-
"""
Tests for L{gomail_twisted.maildir._uidlist}: the UID file's format, its
appends, compaction and recovery.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.maildir._uidlist import FILE_NAME, UIDList


def _uidlist(test: SynchronousTestCase) -> UIDList:
    directory = Path(test.mktemp())
    directory.mkdir()
    return UIDList(directory)


class FormatTests(SynchronousTestCase):
    """
    The file's lines.
    """

    def test_newFile(self) -> None:
        """
        A missing file is made with a time-based UIDVALIDITY, UIDs from 1.
        """
        before = int(time.time())
        u = _uidlist(self)
        self.assertTrue(u.load())
        self.assertGreaterEqual(u.uidValidity, before)
        self.assertEqual((u.nextUID, u.highestModSeq, u.uids), (1, 1, {}))
        self.assertEqual(
            u.path.read_text(), f"gomail-uidlist 1 V{u.uidValidity} N1 M1\n"
        )

    def test_appendedRecords(self) -> None:
        """
        Changes are appended as one line each: C{+uid modseq date size key},
        C{*uid modseq}, C{-uid modseq}.
        """
        u = _uidlist(self)
        u.load()
        self.assertEqual(u.commit([("k1", 100, 10), ("k2", 200, 20)]), [1, 2])
        self.assertEqual(u.commit([("k1", 100, 10)]), [1])
        u.commit(modified=[2])
        u.commit(expunged=[1, 7])
        lines = u.path.read_text().splitlines()[1:]
        self.assertEqual(lines, ["+1 2 100 10 k1", "+2 3 200 20 k2", "*2 4", "-1 5"])
        self.assertEqual(u.uids, {"k2": 2})
        self.assertEqual((u.nextUID, u.highestModSeq, u.modSeqs[2]), (3, 5, 4))

    def test_otherReader(self) -> None:
        """
        A second reader (another process) reads only what was appended
        since its last read, and sees the same state.
        """
        u = _uidlist(self)
        u.load()
        other = UIDList(u.directory)
        other.load()
        u.commit([("a", 1, 1), ("b", 2, 2)])
        self.assertFalse(other.unchanged())
        self.assertTrue(other.load())
        self.assertEqual(other.uids, u.uids)
        self.assertEqual(other.commit([("c", 3, 3)]), [3])
        self.assertEqual(u.commit([("c", 3, 3), ("d", 4, 4)]), [3, 4])
        self.assertTrue(u.unchanged())
        self.assertFalse(u.load())

    def test_keysWithSpaces(self) -> None:
        """
        A key may hold spaces and non-UTF-8 bytes (a file named by another
        program) and reads back the same.
        """
        u = _uidlist(self)
        u.load()
        key = "1.odd name\udcff"
        u.commit([(key, 1, 1)])
        other = UIDList(u.directory)
        other.load()
        self.assertEqual(other.uids, {key: 1})

    @settings(max_examples=30, deadline=None)
    @given(
        st.lists(
            st.tuples(st.sampled_from("+*-"), st.integers(0, 20)),
            max_size=40,
        )
    )
    def test_replayProperty(self, operations: list[tuple[str, int]]) -> None:
        """
        Whatever the sequence of changes, a fresh reader of the file sees
        what the writer holds in memory, and UIDs only grow.
        """
        u = _uidlist(self)
        u.load()
        given: list[int] = []
        for kind, n in operations:
            if kind == "+":
                [uid] = u.commit([(f"key{n}", n, n)])
                if uid not in given:
                    self.assertTrue(not given or uid > max(given))
                    given.append(uid)
            elif kind == "*":
                u.commit(modified=[n])
            else:
                u.commit(expunged=[n])
        other = UIDList(u.directory)
        other.load()
        self.assertEqual(
            (other.uids, other.modSeqs, other.nextUID, other.highestModSeq),
            (u.uids, u.modSeqs, u.nextUID, u.highestModSeq),
        )


class DamageTests(SynchronousTestCase):
    """
    Torn writes, corruption and loss.
    """

    def test_tornLastLine(self) -> None:
        """
        A last line without its newline (a writer killed mid-write) is
        ignored by readers and cut off by the next writer.
        """
        u = _uidlist(self)
        u.load()
        u.commit([("a", 1, 1)])
        with open(u.path, "ab") as f:
            f.write(b"+2 3 1 1 tor")
        other = UIDList(u.directory)
        other.load()
        self.assertEqual(other.uids, {"a": 1})
        self.assertEqual(other.commit([("b", 1, 1)]), [2])
        self.assertEqual(u.path.read_text().splitlines()[-1], "+2 3 1 1 b")
        fresh = UIDList(u.directory)
        fresh.load()
        self.assertEqual(fresh.uids, {"a": 1, "b": 2})

    def assertRestarted(self, damage: bytes | None) -> None:
        u = _uidlist(self)
        u.load()
        u.commit([("a", 1, 1), ("b", 1, 1)])
        old = u.uidValidity
        if damage is None:
            u.path.unlink()
        else:
            u.path.write_bytes(damage)
        fresh = UIDList(u.directory)
        fresh.load()
        self.assertGreater(fresh.uidValidity, old)
        self.assertEqual(fresh.uids, {})
        self.assertEqual(fresh.commit([("a", 1, 1)]), [1])
        # The process that knew the old file restarts too, never reusing.
        u.load()
        self.assertEqual(u.uidValidity, fresh.uidValidity)
        self.assertEqual(u.uids, {"a": 1})

    def test_corruptHeader(self) -> None:
        """
        An unreadable header gives a new, greater UIDVALIDITY and fresh
        UIDs.
        """
        self.assertRestarted(b"garbage\n+1 2 1 1 a\n")
        self.flushLoggedErrors()

    def test_corruptRecord(self) -> None:
        """
        A bad record before the last line gives a new, greater UIDVALIDITY.
        """
        u = _uidlist(self)
        u.load()
        header = u.path.read_bytes()
        self.assertRestarted(header + b"+1 2 1 1 a\nnonsense\n+2 3 1 1 b\n")

    def test_reusedUID(self) -> None:
        """
        A record that gives a UID below the next UID is corruption: a UID
        is never given to a second message.
        """
        u = _uidlist(self)
        u.load()
        header = u.path.read_bytes()
        self.assertRestarted(header + b"+2 2 1 1 a\n+1 3 1 1 b\n")

    def test_truncated(self) -> None:
        """
        A file cut inside its header starts again.
        """
        self.assertRestarted(b"gomail-uid")

    def test_empty(self) -> None:
        """
        An empty file starts again.
        """
        self.assertRestarted(b"")

    def test_missing(self) -> None:
        """
        A lost file starts again with a UIDVALIDITY greater than the one
        this process knew.
        """
        self.assertRestarted(None)


class CompactionTests(SynchronousTestCase):
    """
    The file is rewritten when mostly dead, so it stays small.
    """

    def test_compacted(self) -> None:
        """
        After many expunges the file asks to be compacted; then it holds
        only live records, keeps its
        UIDVALIDITY, next UID and mod-sequence, and another reader follows.
        """
        u = _uidlist(self)
        u.load()
        other = UIDList(u.directory)
        other.load()
        inode = os.stat(u.path).st_ino
        uids = u.commit([(f"k{i}", i, i) for i in range(100)])
        for uid in uids[:-3]:
            u.commit(expunged=[uid])
        self.assertTrue(u.needsCompaction())
        u.compact()
        self.assertFalse(u.needsCompaction())
        self.assertNotEqual(os.stat(u.path).st_ino, inode)
        lines = u.path.read_text().splitlines()
        self.assertLess(len(lines), 70)
        other.load()
        self.assertEqual(other.uids, u.uids)
        self.assertEqual(other.uidValidity, u.uidValidity)
        self.assertEqual(other.nextUID, 101)
        self.assertEqual(other.highestModSeq, u.highestModSeq)
        self.assertEqual(u.commit([("new", 1, 1)]), [101])
        self.assertFalse([n for n in os.listdir(u.directory) if n.endswith(".tmp")])

    def test_constantCost(self) -> None:
        """
        Compacted when it asks to be, the file never holds more than about
        twice the live records.
        """
        u = _uidlist(self)
        u.load()
        for i in range(300):
            [uid] = u.commit([(f"k{i}", i, i)])
            u.commit(modified=[uid])
            if i % 2:
                u.commit(expunged=[uid])
            if u.needsCompaction():
                u.compact()
        live = len(u.uids)
        records = len(u.path.read_text().splitlines()) - 1
        self.assertLessEqual(records, 2 * live + 3)
        self.assertEqual(FILE_NAME, u.path.name)
