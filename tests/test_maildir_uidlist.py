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


# (records after the header, uids, modSeqs, dates, sizes, next UID,
# highest mod-sequence): runs of "+" records are read in bulk, the rest
# one by one; both must give the same.
RECORDS = [
    (
        b"+1 2 100 10 a\n+2 3 200 20 b\n",
        {"a": 1, "b": 2},
        {1: 2, 2: 3},
        {1: 100, 2: 200},
        {1: 10, 2: 20},
        3,
        3,
    ),
    (
        b"+1 2 1 1 a\n+2 3 1 2 b c\n+3 4 1 3 d\n",
        {"a": 1, "b c": 2, "d": 3},
        {1: 2, 2: 3, 3: 4},
        {1: 1, 2: 1, 3: 1},
        {1: 1, 2: 2, 3: 3},
        4,
        4,
    ),
    (b"+1 2 1 1 a\n+2 3 1 2 a\n", {"a": 2}, {2: 3}, {2: 1}, {2: 2}, 3, 3),
    (
        b"+1 2 1 1 a\n+2 3 1 1 b\n*1 4\n-2 5\n+3 6 1 1 c\n+4 7 1 1 d\n",
        {"a": 1, "c": 3, "d": 4},
        {1: 4, 3: 6, 4: 7},
        {1: 1, 3: 1, 4: 1},
        {1: 1, 3: 1, 4: 1},
        5,
        7,
    ),
    (b"+7 9 5 6 x\n", {"x": 7}, {7: 9}, {7: 5}, {7: 6}, 8, 9),
]

#: Records that are corruption, in the bulk run or after it.
CORRUPT_RECORDS = [
    b"+1 2 1 1 a\n+1 3 1 1 b\n",
    b"+2 2 1 1 a\n+1 3 1 1 b\n",
    b"+1 2 1 1 a\n+2 x 1 1 b\n+3 4 1 1 c\n",
    b"+1 2 1 1\n+2 3 1 1 b c d\n+3 4 1 1 e\n",
    b"+1 2 1 1 a\n*1\n+2 3 1 1 b\n",
]


class RecordTests(SynchronousTestCase):
    """
    Records read in bulk and one by one.
    """

    def test_records(self) -> None:
        """
        Every table entry reads to its messages, mod-sequences, dates,
        sizes, next UID and highest mod-sequence.
        """
        for data, uids, modSeqs, dates, sizes, nextUID, highest in RECORDS:
            with self.subTest(data=data):
                u = _uidlist(self)
                u.path.write_bytes(b"gomail-uidlist 1 V5 N1 M1\n" + data)
                u.load()
                self.assertEqual(
                    (u.uids, u.modSeqs, u.dates, u.sizes),
                    (uids, modSeqs, dates, sizes),
                )
                self.assertEqual(u.keys, {uid: key for key, uid in uids.items()})
                self.assertEqual((u.nextUID, u.highestModSeq), (nextUID, highest))
                self.assertEqual(list(u.keys), sorted(u.keys))

    def test_corruptRecords(self) -> None:
        """
        Every corrupt entry gives the folder a new UIDVALIDITY and no UIDs.
        """
        for data in CORRUPT_RECORDS:
            with self.subTest(data=data):
                u = _uidlist(self)
                u.path.write_bytes(
                    b"gomail-uidlist 1 V5 N1 M1\n" + data + b"+9 9 1 1 z\n"
                )
                u.load()
                self.assertGreater(u.uidValidity, 5)
                self.assertEqual(u.uids, {})
        self.flushLoggedErrors()


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
