# -*- test-case-name: tests.test_maildir_files -*-
"""
Tests for L{gomail_twisted.maildir._files}: Maildir file names, flags, and
the CRLF form of LF files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.maildir import _files
from gomail_twisted.maildir.interfaces import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN


class NameTests(SynchronousTestCase):
    """
    File names as Dovecot, mutt and qmail write them.
    """

    def test_parseName(self) -> None:
        """
        Names split into key, flag letters, S= and W=.
        """
        table = [
            ("1.M2P3.host", ("1.M2P3.host", "", None, None)),
            ("1.M2P3.host:2,", ("1.M2P3.host", "", None, None)),
            ("1.M2P3.host:2,FS", ("1.M2P3.host", "FS", None, None)),
            ("1.M2P3.host,S=10:2,S", ("1.M2P3.host", "S", 10, None)),
            ("1.M2P3.host,S=10,W=12:2,RSa", ("1.M2P3.host", "RSa", 10, 12)),
            ("1.M2P3.host,W=12,S=10", ("1.M2P3.host", "", 10, 12)),
            ("1.M2P3.host,S=x,W=:2,T", ("1.M2P3.host", "T", None, None)),
            ("1.M2P3.host:1,experimental", ("1.M2P3.host", "", None, None)),
        ]
        for name, expected in table:
            self.assertEqual(_files.parseName(name), expected, name)
            self.assertEqual(_files.messageKey(name), expected[0], name)

    def test_uniqueNames(self) -> None:
        """
        Unique parts differ, hold no C{/}, C{:} or C{,}, and start with the
        time and C{.M}.
        """
        names = {_files.uniqueName() for _ in range(1000)}
        self.assertEqual(len(names), 1000)
        for name in names:
            self.assertRegex(name, rf"\A\d+\.M\d+P{os.getpid()}Q\d+R[0-9a-f]{{8}}\.")
            for char in "/:,":
                self.assertNotIn(char, name)

    def test_flagLetters(self) -> None:
        """
        System flags and keywords map to letters in ASCII order and back;
        letters with no meaning are left out.
        """
        keywords = ["$Forwarded", "", "Work"]
        index = {"$Forwarded": 0, "Work": 2}
        flags = frozenset(
            {SEEN, ANSWERED, FLAGGED, DELETED, DRAFT, "Work", "$Forwarded"}
        )
        letters = _files.lettersFromFlags(flags, index)
        self.assertEqual("".join(sorted(letters)), "DFRSTac")
        self.assertEqual(_files.flagsFromLetters("DFRSTac", keywords), flags)
        self.assertEqual(_files.flagsFromLetters("PbzS", keywords), {SEEN})


class CRLFTests(SynchronousTestCase):
    """
    Files keep LF; readers get CRLF, an existing CRLF not doubled.
    """

    def test_sizes(self) -> None:
        """
        The CRLF size counts one CR per LF that has none.
        """
        for data, size in [
            (b"", 0),
            (b"a\n", 3),
            (b"a\r\n", 3),
            (b"a\r\r\n", 4),
            (b"\n\n", 4),
            (b"no end", 6),
        ]:
            self.assertEqual(_files.crlfSize(data), size, data)
            self.assertEqual(len(_files.toCRLF(data)), size, data)

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"xy"]), max_size=80),
        st.integers(0, 200),
        st.one_of(st.none(), st.integers(0, 200)),
        st.integers(1, 7),
    )
    def test_rangesProperty(
        self, parts: list[bytes], start: int, length: int | None, chunk: int
    ) -> None:
        """
        Whatever the chunk size, a range read in chunks is the same slice
        of the whole file converted at once.
        """
        data = b"".join(parts)
        self.patch(_files, "CHUNK", chunk)
        whole = _files.toCRLF(data)
        streamed = b"".join(_files.crlfChunks(io.BytesIO(data)))
        self.assertEqual(streamed, whole)
        path = Path(self.mktemp())
        path.write_bytes(data)
        end = None if length is None else start + length
        self.assertEqual(_files.readCRLF(str(path), start, length), whole[start:end])
        self.assertEqual(_files.fileCRLFSize(str(path)), len(whole))

    @settings(max_examples=80, deadline=None)
    @given(
        st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"xy"]), max_size=80),
        st.one_of(st.none(), st.integers(0, 200)),
    )
    def test_readMessageProperty(self, parts: list[bytes], limit: int | None) -> None:
        """
        A message read in one piece, whole or its first C{limit} bytes, is
        what a read by chunks gives.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"".join(parts))
        self.assertEqual(
            _files.readMessage(str(path), limit), _files.readCRLF(str(path), 0, limit)
        )

    def test_readFile(self) -> None:
        """
        A file reads back as it is, whole or its first bytes; a limit past
        its end gives it whole.
        """
        large = bytes(range(256)) * 4096
        for data, limit in [
            (b"", None),
            (b"", 10),
            (b"abc", None),
            (b"abc", 0),
            (b"abc", 2),
            (b"abc", 1 << 40),
            (large, None),
            (large, 70000),
        ]:
            path = Path(self.mktemp())
            path.write_bytes(data)
            self.assertEqual(
                _files.readFile(str(path), limit),
                data if limit is None else data[:limit],
            )

    def test_readWhole(self) -> None:
        """
        A whole message read has CRLF line ends whether its file holds LF,
        CRLF, a mix of them or bare CRs.
        """
        for data, crlf in [
            (b"", b""),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"a\r\nb\nc", b"a\r\nb\r\nc"),
            (b"a\rb\n", b"a\rb\r\n"),
            (b"\n.\n", b"\r\n.\r\n"),
        ]:
            path = Path(self.mktemp())
            path.write_bytes(data)
            self.assertEqual(_files.readCRLF(str(path), 0, None), crlf, data)


class WriteTests(SynchronousTestCase):
    """
    Durable writes.
    """

    def test_writeSynced(self) -> None:
        """
        A synced write makes a private file with the bytes and the mtime
        given, and refuses to overwrite.
        """
        path = Path(self.mktemp())
        _files.writeSynced(path, b"data", 1e9)
        self.assertEqual(path.read_bytes(), b"data")
        self.assertEqual(path.stat().st_mtime, 1e9)
        self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        self.assertRaises(FileExistsError, _files.writeSynced, path, b"x")
        self.assertEqual(path.read_bytes(), b"data")

    def test_linkFallback(self) -> None:
        """
        Where hard links are refused, a copy keeps the bytes and mtime.
        """
        source = Path(self.mktemp())
        _files.writeSynced(source, b"message", 1e9)
        target = Path(self.mktemp())

        def refuse(a: object, b: object) -> None:
            raise OSError(18, "cross-device link")

        self.patch(os, "link", refuse)
        _files.hardLinkOrCopy(str(source), str(target))
        self.assertEqual(target.read_bytes(), b"message")
        self.assertEqual(target.stat().st_mtime, 1e9)
