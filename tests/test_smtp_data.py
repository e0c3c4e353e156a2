# -*- test-case-name: tests.test_smtp_data -*-
"""
Tests for L{gomail_twisted.smtp._data.DataReader}: the end of data
(RFC 5321 4.1.1.4), dot-unstuffing (4.5.2), the size and line limits
(RFC 1870, RFC 5321 4.5.3.1.6), bare CR and LF (SMTP smuggling) and the
header block.
"""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import _reply as R
from gomail_twisted.smtp._data import COALESCE_BELOW, DataReader
from gomail_twisted.smtp._reply import SMTPReply

BIG = 10**9


def feedAll(reader: DataReader, chunks: Iterable[bytes]) -> bytes | None:
    """
    Feed chunks until the reader reports the end, as the protocol does.

    @return: what followed the end marker, with the chunks not fed, or
        L{None} when the end never came.
    """
    chunks = list(chunks)
    for i, chunk in enumerate(chunks):
        rest = reader.feed(chunk)
        if rest is not None:
            return b"".join([rest, *chunks[i + 1 :]])
    return None


def splits(data: bytes, *cuts: int) -> list[bytes]:
    """
    Cut C{data} at the given offsets.
    """
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def reference(stream: bytes) -> tuple[bytes, bytes] | None:
    """
    The obvious, slow reading of a data block: the message (unstuffed) and
    what follows, or L{None} without an end marker.
    """
    at = (b"\r\n" + stream).find(b"\r\n.\r\n")
    if at == -1:
        return None
    body = stream[:at]
    rest = stream[at + 3 :]
    lines = body.split(b"\r\n")
    lines = [line[1:] if line.startswith(b".") else line for line in lines]
    return b"\r\n".join(lines), rest


MESSAGE = (
    b"From: a@example.com\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b"..leading dot\r\n"
    b"...\r\n"
    b"a.\r\n"
    b"\r\n"
    b"..\r\n"
    b"end\r\n"
)
STREAM = MESSAGE + b".\r\nQUIT\r\n"
EXPECTED = (
    b"From: a@example.com\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..\r\n"
    b"a.\r\n"
    b"\r\n"
    b".\r\n"
    b"end\r\n"
)
HEADERS = b"From: a@example.com\r\nSubject: dots\r\n"


class ChunkingTests(SynchronousTestCase):
    """
    The result does not depend on how the stream is cut into chunks.
    """

    def check(self, chunks: list[bytes]) -> None:
        reader = DataReader(BIG, 1000)
        self.assertEqual(feedAll(reader, chunks), b"QUIT\r\n", chunks)
        self.assertEqual(reader.finish(), EXPECTED, chunks)
        self.assertEqual(reader.headerBlock, HEADERS, chunks)

    def test_referenceAgrees(self) -> None:
        """
        The test's own reference reading gives the expected message.
        """
        self.assertEqual(reference(STREAM), (EXPECTED, b"QUIT\r\n"))

    def test_oneChunk(self) -> None:
        """
        The whole stream at once gives the unstuffed message and the rest.
        """
        self.check([STREAM])

    def test_everyTwoWaySplit(self) -> None:
        """
        Cut at every byte boundary, the stream gives the same message, rest
        and header block.
        """
        for i in range(len(STREAM) + 1):
            self.check(splits(STREAM, i))

    def test_everyThreeWaySplitNearTheEnd(self) -> None:
        """
        Cut twice anywhere in the last 16 bytes, the end marker is still found
        and nothing of it is kept.
        """
        n = len(STREAM)
        for i in range(n - 16, n + 1):
            for j in range(i, n + 1):
                self.check(splits(STREAM, i, j))

    def test_byteByByte(self) -> None:
        """
        One byte at a time gives the same result.
        """
        self.check([STREAM[i : i + 1] for i in range(len(STREAM))])

    def test_byteByByteShortMessage(self) -> None:
        """
        A short message fed one byte at a time keeps none of the end marker.
        """
        for stream, expected in [
            (b"a\r\n.\r\n", b"a\r\n"),
            (b"..\r\n.\r\n", b".\r\n"),
            (b"\r\n.\r\n", b"\r\n"),
            (b"x\r\n\r\n.\r\n", b"x\r\n\r\n"),
        ]:
            reader = DataReader(BIG, None)
            self.assertEqual(feedAll(reader, [bytes([c]) for c in stream]), b"")
            self.assertEqual(reader.finish(), expected, stream)

    def test_emptyChunks(self) -> None:
        """
        Empty chunks anywhere change nothing.
        """
        chunks: list[bytes] = []
        for i in range(0, len(STREAM), 7):
            chunks += [b"", STREAM[i : i + 7], b""]
        self.check(chunks)

    def test_restKeepsPipelinedCommands(self) -> None:
        """
        Everything after the end marker is returned, even another end marker.
        """
        reader = DataReader(BIG, None)
        self.assertEqual(
            reader.feed(b"x\r\n.\r\nMAIL FROM:<>\r\n.\r\n"), b"MAIL FROM:<>\r\n.\r\n"
        )
        self.assertEqual(reader.finish(), b"x\r\n")

    def test_noEndMarker(self) -> None:
        """
        Without the end marker the reader keeps waiting.
        """
        reader = DataReader(BIG, None)
        for chunk in [b"a\r\n", b".", b"\r", b"\n"[:0], b"..\r\n", b"\r\n.x\r\n"]:
            self.assertIsNone(reader.feed(chunk))


class ImmediateEndTests(SynchronousTestCase):
    """
    The data block starts after the CRLF of DATA, so ".<CRLF>" first ends it.
    """

    def test_immediateEnd(self) -> None:
        """
        A lone ".<CRLF>" is an empty message.
        """
        reader = DataReader(BIG, 1000)
        self.assertEqual(reader.feed(b".\r\nQUIT\r\n"), b"QUIT\r\n")
        self.assertEqual(reader.finish(), b"")
        self.assertIsNone(reader.headerBlock)

    def test_immediateEndSplit(self) -> None:
        """
        The immediate end is found however it is cut.
        """
        for chunks, rest in [
            ([b".", b"\r\n"], b""),
            ([b".\r", b"\n"], b""),
            ([b".", b"\r", b"\nX"], b"X"),
        ]:
            reader = DataReader(BIG, 1000)
            self.assertEqual(feedAll(reader, chunks), rest, chunks)
            self.assertEqual(reader.finish(), b"")

    def test_immediateEndWithPrefix(self) -> None:
        """
        An empty message with a prefix is just the prefix.
        """
        reader = DataReader(BIG, 1000)
        reader.feed(b".\r\n")
        self.assertEqual(reader.finish(b"Received: x\r\n"), b"Received: x\r\n")

    def test_stuffedDotFirst(self) -> None:
        """
        A stuffed dot at the very start is unstuffed.
        """
        reader = DataReader(BIG, 1000)
        self.assertEqual(reader.feed(b"..x\r\n.\r\n"), b"")
        self.assertEqual(reader.finish(), b".x\r\n")


class SmugglingTests(SynchronousTestCase):
    """
    Only <CRLF>.<CRLF> ends the data; the other spellings are content and
    make the message refused for a bare line ending.
    """

    VARIANTS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r"]

    def test_variantsNeverEnd(self) -> None:
        """
        No smuggling variant ends the data, however the stream is cut.
        """
        for variant in self.VARIANTS:
            stream = b"A: b\r\n\r\nx" + variant + b"MAIL FROM:<evil@x>\r\n"
            for i in range(len(stream) + 1):
                reader = DataReader(BIG, None)
                self.assertIsNone(feedAll(reader, splits(stream, i)), (variant, i))

    def test_variantsRefusedAtRealEnd(self) -> None:
        """
        At the real end, a message holding a smuggling variant is refused with
        550 5.6.0, and the smuggled command is not returned as a command.
        """
        for variant in self.VARIANTS:
            stream = b"A: b\r\n\r\nx" + variant + b"MAIL FROM:<e@x>\r\n.\r\nQUIT\r\n"
            for i in range(len(stream) + 1):
                reader = DataReader(BIG, None)
                self.assertEqual(
                    feedAll(reader, splits(stream, i)), b"QUIT\r\n", (variant, i)
                )
                with self.assertRaises(SMTPReply) as caught:
                    reader.finish()
                self.assertEqual(caught.exception, R.BARE_LINE_ENDING)

    def test_bareEndingsRefused(self) -> None:
        """
        Any bare CR or LF in the message, including one next to a CRLF, is
        refused; a message with only CRLF is not.
        """
        for body in [
            b"a\nb\r\n",
            b"a\rb\r\n",
            b"a\r\r\n",
            b"a\r\n\n",
            b"a\n\r\n",
            b"a\r\n\r",
            b"\n",
            b"\r\r\n",
            b"a\n\rb\r\n",
        ]:
            reader = DataReader(BIG, None)
            self.assertIsNotNone(reader.feed(body + b"\r\n.\r\n"), body)
            self.assertRaises(SMTPReply, reader.finish)
        reader = DataReader(BIG, None)
        reader.feed(b"a\r\n\r\nb\r\n.\r\n")
        self.assertEqual(reader.finish(), b"a\r\n\r\nb\r\n")

    def test_dotLineAfterBareLF(self) -> None:
        """
        <LF>.<CRLF> inside the data is content (the dot is not the end and is
        not unstuffed as if it started a line).
        """
        reader = DataReader(BIG, None)
        self.assertIsNone(reader.feed(b"a\n.\r\nb"))
        self.assertEqual(reader.feed(b"\r\n.\r\n"), b"")
        self.assertRaises(SMTPReply, reader.finish)


def stuffedBody(size: int, dots: bool) -> tuple[bytes, bytes]:
    """
    A stream whose message is exactly C{size} octets after unstuffing.

    @return: the stream (with the end marker) and the expected message.
    """
    line = b".abcdefgh\r\n" if dots else b"abcdefghi\r\n"
    count, extra = divmod(size, len(line))
    message = line * count + b"x" * extra
    if extra:
        message = line * (count - 1) + b"y" * (len(line) + extra - 2) + b"\r\n"
    assert len(message) == size, (len(message), size)
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n", message


class SizeLimitTests(SynchronousTestCase):
    """
    The size limit counts message octets after unstuffing (RFC 1870).
    """

    def test_exactlyAtLimit(self) -> None:
        """
        A message of exactly the limit is accepted, however it is cut, with or
        without stuffed dots.
        """
        for dots in (False, True):
            stream, message = stuffedBody(110, dots)
            for i in range(len(stream) + 1):
                reader = DataReader(110, None)
                self.assertEqual(feedAll(reader, splits(stream, i)), b"", (dots, i))
                self.assertEqual(reader.finish(), message, (dots, i))

    def test_exactlyAtLimitByteByByte(self) -> None:
        """
        A message of exactly the limit is accepted when fed one byte at a time.
        """
        for dots in (False, True):
            stream, message = stuffedBody(110, dots)
            reader = DataReader(110, None)
            self.assertEqual(feedAll(reader, [bytes([c]) for c in stream]), b"")
            self.assertEqual(reader.finish(), message, dots)

    def test_oneOverLimit(self) -> None:
        """
        A message one octet over the limit is refused with 552 5.3.4, however
        it is cut, with or without stuffed dots.
        """
        for dots in (False, True):
            stream, _ = stuffedBody(111, dots)
            for i in range(len(stream) + 1):
                reader = DataReader(110, None)
                self.assertEqual(feedAll(reader, splits(stream, i)), b"", (dots, i))
                with self.assertRaises(SMTPReply) as caught:
                    reader.finish()
                self.assertEqual(caught.exception, R.MESSAGE_TOO_BIG)

    def test_stuffedDotsAcrossChunks(self) -> None:
        """
        Stuffed dots whose CRLF and dot arrive in different chunks are not
        counted as message octets.
        """
        stream, message = stuffedBody(110, True)
        cuts = [i + 2 for i in range(len(stream)) if stream.startswith(b"\r\n.", i)]
        reader = DataReader(110, None)
        self.assertEqual(feedAll(reader, splits(stream, *cuts)), b"")
        self.assertEqual(reader.finish(), message)

    def test_drainingFindsEnd(self) -> None:
        """
        Past the limit the reader drops data but still finds the end, however
        it is cut, and returns what follows.
        """
        stream = b"x" * 50 + b"\r\n" + b"y" * 100 + b"\r\n.\r\nNOOP\r\n"
        for i in range(len(stream) + 1):
            reader = DataReader(20, None)
            self.assertEqual(feedAll(reader, splits(stream, i)), b"NOOP\r\n", i)
            self.assertTrue(reader.draining)
            self.assertRaises(SMTPReply, reader.finish)

    def test_drainingKeepsNoData(self) -> None:
        """
        While draining, fed data is not kept.
        """
        reader = DataReader(10, None)
        reader.feed(b"x" * 11)
        self.assertTrue(reader.draining)
        for _ in range(100):
            reader.feed(b"y" * 1000)
        self.assertEqual(reader._chunks, [])
        self.assertEqual(reader.feed(b"\r\n.\r\n"), b"")

    def test_refuseDrains(self) -> None:
        """
        C{refuse} drops the data, keeps finding the end, and C{finish} raises
        the first refusal.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"Subject: x\r\n\r\nbody")
        reader.refuse(R.RELAY_DENIED)
        reader.refuse(R.MESSAGE_TOO_BIG)
        self.assertTrue(reader.draining)
        self.assertEqual(reader.feed(b"\r\n.\r\nQUIT\r\n"), b"QUIT\r\n")
        with self.assertRaises(SMTPReply) as caught:
            reader.finish()
        self.assertEqual(caught.exception, R.RELAY_DENIED)


class LineLengthTests(SynchronousTestCase):
    """
    Lines longer than the limit, CRLF included, are refused at the end of
    data (RFC 5321 4.5.3.1.6).
    """

    def measure(
        self, stream: bytes, limit: int, cuts: Iterable[int]
    ) -> SMTPReply | None:
        reader = DataReader(BIG, limit)
        self.assertEqual(feedAll(reader, splits(stream, *cuts)), b"")
        try:
            reader.finish()
        except SMTPReply as e:
            return e
        return None

    def test_atLimitEveryCut(self) -> None:
        """
        A line of exactly the limit is accepted and one octet more is refused
        with 500 5.5.2, however the stream is cut.
        """
        for line, refused in [
            (b"a" * 18 + b"\r\n", False),
            (b"a" * 19 + b"\r\n", True),
        ]:
            stream = b"S: x\r\n\r\n" + line + b"short\r\n.\r\n"
            for i in range(len(stream) + 1):
                self.assertEqual(
                    self.measure(stream, 20, [i]),
                    R.DATA_LINE_TOO_LONG if refused else None,
                    (line, i),
                )

    def test_longLineAcrossManyChunks(self) -> None:
        """
        A line spread over many small chunks is still measured whole.
        """
        stream = b"a" * 30 + b"\r\n.\r\n"
        self.assertEqual(
            self.measure(stream, 20, range(1, 30, 3)), R.DATA_LINE_TOO_LONG
        )
        stream = b"a" * 18 + b"\r\n" + b"b" * 18 + b"\r\n.\r\n"
        self.assertIsNone(self.measure(stream, 20, range(1, len(stream))))

    def test_firstAndLastLines(self) -> None:
        """
        The first line and the last line before the end are measured too.
        """
        self.assertEqual(
            self.measure(b"a" * 19 + b"\r\nb\r\n.\r\n", 20, []), R.DATA_LINE_TOO_LONG
        )
        self.assertEqual(
            self.measure(b"b\r\n" + b"a" * 19 + b"\r\n.\r\n", 20, []),
            R.DATA_LINE_TOO_LONG,
        )

    def test_stuffedDotNotCounted(self) -> None:
        """
        The dot doubled for transparency does not count towards the limit
        (RFC 5321 4.5.3.1.6), however the stream is cut.
        """
        for stream, longer in [
            (b"." + b"." * 18 + b"\r\n.\r\n", b"." + b"." * 19 + b"\r\n.\r\n"),
            (
                b"x\r\n." + b"." * 18 + b"\r\n.\r\n",
                b"x\r\n." + b"." * 19 + b"\r\n.\r\n",
            ),
            (
                b"x\r\n.." + b"a" * 17 + b"\r\ny\r\n.\r\n",
                b"x\r\n.." + b"a" * 18 + b"\r\ny\r\n.\r\n",
            ),
        ]:
            for i in range(len(stream) + 1):
                self.assertIsNone(self.measure(stream, 20, [i]), (stream, i))
            for i in range(len(longer) + 1):
                self.assertEqual(
                    self.measure(longer, 20, [i]), R.DATA_LINE_TOO_LONG, (longer, i)
                )

    def test_noLimit(self) -> None:
        """
        With no limit any line length is accepted.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"a" * 100000 + b"\r\n.\r\n")
        self.assertEqual(reader.finish(), b"a" * 100000 + b"\r\n")


class HeaderBlockTests(SynchronousTestCase):
    """
    C{headerBlock} is the header block once its empty line has arrived.
    """

    def test_splitAtEveryCut(self) -> None:
        """
        However the stream is cut, the header block appears as soon as the
        empty line is complete, and not before.
        """
        stream = b"A: 1\r\n..B: 2\r\n\r\nbody\r\n.\r\n"
        blankEnd = stream.index(b"\r\n\r\n") + 4
        for i in range(len(stream) + 1):
            reader = DataReader(BIG, None)
            reader.feed(stream[:i])
            if i >= blankEnd:
                self.assertEqual(reader.headerBlock, b"A: 1\r\n.B: 2\r\n", i)
            else:
                self.assertIsNone(reader.headerBlock, i)
            reader.feed(stream[i:])
            self.assertEqual(reader.headerBlock, b"A: 1\r\n.B: 2\r\n", i)

    def test_firstLineStuffedDot(self) -> None:
        """
        A stuffed dot on the first header line is unstuffed in the header
        block, however the stream is cut.
        """
        stream = b"..X: 1\r\n\r\nbody\r\n.\r\n"
        for i in range(len(stream) + 1):
            reader = DataReader(BIG, None)
            feedAll(reader, splits(stream, i))
            self.assertEqual(reader.headerBlock, b".X: 1\r\n", i)
            self.assertEqual(reader.finish(), b".X: 1\r\n\r\nbody\r\n", i)

    def test_byteByByte(self) -> None:
        """
        A header block fed one byte at a time is found.
        """
        reader = DataReader(BIG, None)
        for c in b"A: 1\r\nB: 2\r\n\r\nbody":
            reader.feed(bytes([c]))
        self.assertEqual(reader.headerBlock, b"A: 1\r\nB: 2\r\n")

    def test_startsWithEmptyLine(self) -> None:
        """
        A message that starts with an empty line has an empty header block.
        """
        for chunks in ([b"\r\nbody\r\n.\r\n"], [b"\r", b"\nbody\r\n.\r\n"]):
            reader = DataReader(BIG, None)
            feedAll(reader, chunks)
            self.assertEqual(reader.headerBlock, b"")
            self.assertEqual(reader.finish(), b"\r\nbody\r\n")

    def test_noSeparator(self) -> None:
        """
        A message without an empty line never has a header block.
        """
        reader = DataReader(BIG, None)
        self.assertEqual(reader.feed(b"A: 1\r\nB: 2\r\n.\r\n"), b"")
        self.assertIsNone(reader.headerBlock)
        self.assertEqual(reader.finish(), b"A: 1\r\nB: 2\r\n")

    def test_emptyLineJustBeforeEnd(self) -> None:
        """
        An empty last line ends the header block.
        """
        stream = b"A: 1\r\n\r\n.\r\n"
        for i in range(len(stream) + 1):
            reader = DataReader(BIG, None)
            feedAll(reader, splits(stream, i))
            self.assertEqual(reader.headerBlock, b"A: 1\r\n", i)
            self.assertEqual(reader.finish(), b"A: 1\r\n\r\n", i)

    def test_notSetWhenDraining(self) -> None:
        """
        A message already refused does not report a header block.
        """
        reader = DataReader(5, None)
        reader.feed(b"A: 123456\r\n\r\n")
        self.assertTrue(reader.draining)
        self.assertIsNone(reader.headerBlock)

    def test_searchGivesUp(self) -> None:
        """
        Past the search window without an empty line, no header block is
        reported and the message is still complete.
        """
        from gomail_twisted.smtp._data import MAX_HEADER_SEARCH

        line = b"X: " + b"a" * 90 + b"\r\n"
        head = line * (MAX_HEADER_SEARCH // len(line) + 2)
        reader = DataReader(BIG, None)
        for i in range(0, len(head), 4096):
            reader.feed(head[i : i + 4096])
        reader.feed(b"\r\nbody\r\n.\r\n")
        self.assertIsNone(reader.headerBlock)
        self.assertEqual(reader.finish(), head + b"\r\nbody\r\n")


class FinishTests(SynchronousTestCase):
    """
    C{finish} returns the prefix and the message in one piece.
    """

    def test_prefix(self) -> None:
        """
        The prefix comes first, unchanged, and the first line is unstuffed.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"..a\r\nb\r\n.\r\n")
        self.assertEqual(
            reader.finish(b"Received: from x\r\n\tby y\r\n"),
            b"Received: from x\r\n\tby y\r\n.a\r\nb\r\n",
        )

    def test_noPrefix(self) -> None:
        """
        Without a prefix the message alone is returned.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"a\r\n.\r\n")
        self.assertEqual(reader.finish(), b"a\r\n")
        reader = DataReader(BIG, None)
        reader.feed(b"a\r\n.\r\n")
        self.assertEqual(reader.finish(b""), b"a\r\n")

    def test_prefixNotUnstuffed(self) -> None:
        """
        A prefix line that starts with a dot is kept as given.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"..a\r\n.\r\n")
        self.assertEqual(reader.finish(b"X: 1\r\n.y\r\n"), b"X: 1\r\n.y\r\n.a\r\n")

    def test_size(self) -> None:
        """
        C{size} counts the octets received up to the end, stuffing included.
        """
        reader = DataReader(BIG, None)
        reader.feed(b"..ab\r\n")
        self.assertEqual(reader.size, 6)


class MemoryTests(SynchronousTestCase):
    """
    What the reader holds is the message, however it is cut.
    """

    def test_tricklingCostsItsOctets(self) -> None:
        """
        256 KiB fed four octets at a time is held in less than one and a
        half times its size (one object per piece held eleven times it).
        """
        line = b"x" * 70 + b"\r\n"
        message = line * (256 * 1024 // len(line))
        pieces = [message[i : i + 4] for i in range(0, len(message), 4)]
        reader = DataReader(BIG, 1000)
        tracemalloc.start()
        try:
            for piece in pieces:
                self.assertIsNone(reader.feed(piece))
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(held, len(message) * 3 // 2)
        self.assertEqual(reader.feed(b".\r\n"), b"")
        self.assertEqual(reader.finish(), message)

    def test_smallAndLargePiecesInOrder(self) -> None:
        """
        Pieces below and above the coalescing size, in any mix, with the
        header block and stuffed dots across them, come back in order.
        """
        body = b"".join(
            b"." * (i % 3) + bytes([97 + i % 26]) * (i * 37 % 300) + b"\r\n"
            for i in range(600)
        )
        stream = b"Subject: s\r\n\r\n" + body + b".\r\nQUIT\r\n"
        expected = reference(stream)
        assert expected is not None
        sizes = [3, COALESCE_BELOW, 1, 2 * COALESCE_BELOW + 5, 7, COALESCE_BELOW - 1]
        for first in range(len(sizes)):
            pieces = []
            at = 0
            for size in itertools.cycle(sizes[first:] + sizes[:first]):
                if at >= len(stream):
                    break
                pieces.append(stream[at : at + size])
                at += size
            reader = DataReader(BIG, 1000)
            self.assertEqual(feedAll(reader, pieces), expected[1])
            self.assertEqual(reader.finish(), expected[0])
            self.assertEqual(reader.headerBlock, b"Subject: s\r\n")


@st.composite
def dataStreams(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    """
    An arbitrary message, its dot-stuffed stream with the end marker and
    pipelined bytes after it, and an arbitrary chunking of that stream.
    """
    lines = draw(
        st.lists(
            st.binary(max_size=12).map(
                lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
            ),
            max_size=12,
        )
    )
    lines = [draw(st.sampled_from([b"", b".", b".."])) + line for line in lines]
    message = b"".join(line + b"\r\n" for line in lines)
    stuffed = b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines
    )
    after = draw(st.sampled_from([b"", b"QUIT\r\n", b".\r\n", b"\r\n.\r\n"]))
    stream = stuffed + b".\r\n" + after
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    return message, after, splits(stream, *cuts)


class PropertyTests(SynchronousTestCase):
    """
    DataReader agrees with the obvious reading of the stream.
    """

    @settings(max_examples=150, deadline=None)
    @given(dataStreams())
    def test_matchesReference(self, case: tuple[bytes, bytes, list[bytes]]) -> None:
        """
        For any dot-stuffed stream and chunking, the message and the bytes
        after the end marker equal the reference reading.
        """
        message, after, chunks = case
        stream = b"".join(chunks)
        self.assertEqual(reference(stream), (message, after))
        reader = DataReader(BIG, None)
        self.assertEqual(feedAll(reader, chunks), after)
        self.assertEqual(reader.finish(), message)
        headers = reader.headerBlock
        at = message.find(b"\r\n\r\n")
        if message.startswith(b"\r\n"):
            self.assertEqual(headers, b"")
        elif at != -1:
            self.assertEqual(headers, message[: at + 2])
        else:
            self.assertIsNone(headers)

    @settings(max_examples=150, deadline=None)
    @given(dataStreams(), st.integers(0, 200))
    def test_sizeLimitMatchesReference(
        self, case: tuple[bytes, bytes, list[bytes]], limit: int
    ) -> None:
        """
        For any stream, chunking and limit, the message is refused exactly
        when it is longer than the limit after unstuffing.
        """
        message, after, chunks = case
        reader = DataReader(limit, None)
        self.assertEqual(feedAll(reader, chunks), after)
        if len(message) > limit:
            self.assertRaises(SMTPReply, reader.finish)
        else:
            self.assertEqual(reader.finish(), message)

    @settings(max_examples=150, deadline=None)
    @given(dataStreams(), st.integers(1, 16))
    def test_lineLimitMatchesReference(
        self, case: tuple[bytes, bytes, list[bytes]], limit: int
    ) -> None:
        """
        For any stream, chunking and limit, the message is refused exactly
        when one of its unstuffed lines, CRLF included, is longer than the
        limit.
        """
        message, after, chunks = case
        reader = DataReader(BIG, limit)
        self.assertEqual(feedAll(reader, chunks), after)
        longest = max(
            (len(line) + 2 for line in message.split(b"\r\n")[:-1]), default=0
        )
        if longest > limit:
            with self.assertRaises(SMTPReply) as caught:
                reader.finish()
            self.assertEqual(caught.exception, R.DATA_LINE_TOO_LONG)
        else:
            self.assertEqual(reader.finish(), message)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.binary(max_size=20), max_size=10))
    def test_arbitraryBytes(self, chunks: list[bytes]) -> None:
        """
        On arbitrary bytes the reader ends exactly where the reference says
        and then returns the reference message or refuses it.
        """
        stream = b"".join(chunks)
        expected = reference(stream)
        reader = DataReader(BIG, 40)
        rest = feedAll(reader, chunks)
        if expected is None:
            self.assertIsNone(rest)
            return
        self.assertEqual(rest, expected[1])
        try:
            result = reader.finish()
        except SMTPReply:
            return
        self.assertEqual(result, expected[0])
