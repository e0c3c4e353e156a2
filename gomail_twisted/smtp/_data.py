# -*- test-case-name: tests.test_smtp_data -*-
"""
The SMTP data block (RFC 5321 4.1.1.4), read in bulk.

Bytes go in as the transport hands them over; the reader finds the one end
marker, C{<CRLF>.<CRLF>}, with C{bytes.find} over each chunk (and over the
few bytes around each chunk boundary), keeps the chunks in a list, and at the
end joins them once and un-stuffs dots with one C{replace}.  No Python code
runs per line, except the line-length check, which splits each chunk in C.
A dot (or dot and CR) after a CRLF at the end of a chunk is held back until
the next bytes show whether it starts the end marker, so what is stored,
counted against the limits and searched for the header block is always
message content.

Nothing but C{<CRLF>.<CRLF>} ends the data: C{<LF>.<LF>}, C{<CR>.<CR>} and
C{<LF>.<CRLF>} are message content, and a message that contains a bare CR
or LF is refused at the end (SMTP smuggling).

Past the size limit the reader keeps scanning for the end but drops the
data, so memory stays bounded and the connection stays usable.
"""

from __future__ import annotations

from gomail_twisted.smtp._reply import (
    BARE_LINE_ENDING,
    DATA_LINE_TOO_LONG,
    MESSAGE_TOO_BIG,
    SMTPReply,
)

END = b"\r\n.\r\n"
#: The proper prefixes of L{END}, longest first.
_PARTIAL_ENDS = (b"\r\n.\r", b"\r\n.", b"\r\n", b"\r")
#: How far into the data the end of the header block is looked for.
MAX_HEADER_SEARCH = 256 * 1024


class DataReader:
    """
    Collects one data block.

    @ivar headerBlock: the message's header block (dot-unstuffed, without
        the empty line that ends it) once it has arrived, else L{None}.
    @ivar size: the number of message octets received so far, dot-stuffing
        included; a dot that may start the end marker is counted once the
        next octets show it does not.
    """

    headerBlock: bytes | None
    size: int

    def __init__(self, maxSize: int, maxLineLength: int | None) -> None:
        """
        @param maxSize: the largest message accepted, in octets after
            un-stuffing (RFC 1870).
        @param maxLineLength: the longest line accepted, CRLF included and
            the dot doubled for transparency not counted (RFC 5321
            4.5.3.1.6), or L{None} for no limit.
        """
        self._maxSize = maxSize
        self._maxLine = maxLineLength
        self._chunks: list[bytes] = []
        # The dot, or dot and CR, after a CRLF that ended the stream so far:
        # perhaps the end marker's, so not yet taken as content.
        self._held = b""
        # The last three octets of content.  The data block starts right
        # after the CRLF of DATA, so a stand-in CRLF precedes the content:
        # an immediate ".<CRLF>" ends the block, and a first-line dot is
        # stuffed.
        self._last = b"\r\n"
        self._stuffed = 0
        self._lineLength = 0
        self._lineDot = False
        self._refusal: SMTPReply | None = None
        self.headerBlock = None
        self.size = 0

    @property
    def draining(self) -> bool:
        """
        Whether the message is already refused and the rest is dropped.
        """
        return self._refusal is not None

    def refuse(self, reply: SMTPReply) -> None:
        """
        Refuse the message now; the rest of the data block is dropped.

        @param reply: what to answer at the end of the data.
        """
        if self._refusal is None:
            self._refusal = reply
        self._chunks = []

    def feed(self, data: bytes) -> bytes | None:
        """
        Take the next bytes of the stream.

        @param data: bytes as received.
        @return: L{None} while the data block goes on; at its end, the bytes
            that followed the end marker (commands, perhaps pipelined).
        """
        held = self._held
        # A marker that starts before this chunk starts in the last two
        # octets of content or in the held bytes, and ends within four more.
        before = self._last[-2:] + held
        head = before + data[:4]
        at = head.find(END)
        if at != -1:
            self._take(head[2 : at + 2])
            return data[at + len(END) - len(before) :]
        if len(data) < 4:
            self._hold(held + data)
            return None
        if held:
            self._take(held)
        at = data.find(END)
        if at != -1:
            self._take(data[: at + 2])
            return data[at + len(END) :]
        self._hold(data)
        return None

    def _hold(self, data: bytes) -> None:
        # Take all but a dot (or dot and CR) after CRLF at the very end: it
        # may be the end marker's, so not yet known to be content.
        end = (self._last + data)[-4:] if len(data) < 4 else data[-4:]
        if end.endswith(b"\r\n."):
            keep = 1
        elif end == b"\r\n.\r":
            keep = 2
        else:
            keep = 0
        self._held = data[len(data) - keep :] if keep else b""
        if len(data) > keep:
            self._take(data[: len(data) - keep])

    def _take(self, data: bytes) -> None:
        self.size += len(data)
        last = self._last
        # Kept while draining too: feed finds the end marker with it.
        self._last = data[-3:] if len(data) >= 3 else (last + data)[-3:]
        if self._refusal is not None:
            return
        # A stuffed dot is a dot after CRLF, perhaps across the boundary.
        self._stuffed += data.count(b"\r\n.") + (
            (last[-2:] + data[:1]) == b"\r\n." or (last[-1:] + data[:2]) == b"\r\n."
        )
        if self._maxLine is not None:
            self._checkLines(data)
        self._chunks.append(data)
        if self.size - self._stuffed > self._maxSize:
            self.refuse(MESSAGE_TOO_BIG)
            return
        if self.headerBlock is None and self.size - len(data) < MAX_HEADER_SEARCH:
            self._findHeaders(data, last)

    def _checkLines(self, data: bytes) -> None:
        assert self._maxLine is not None
        # Lines are counted up to and including their LF, without the dot
        # doubled for transparency; a line may run over several chunks.
        # _lineLength is the raw length so far of the line not yet ended,
        # _lineDot whether that line starts with a stuffed dot.
        lines = data.split(b"\n")
        firstRaw = self._lineLength + len(lines[0])
        dot = self._lineDot if self._lineLength else lines[0][:1] == b"."
        first = firstRaw - dot
        if len(lines) == 1:
            self._lineLength = firstRaw
            self._lineDot = dot
            longest = first
        else:
            last = lines[-1]
            self._lineLength = len(last)
            self._lineDot = last[:1] == b"."
            longest = max(first + 1, len(last) - self._lineDot)
            if len(lines) > 2:
                middle = max(map(len, lines[1:-1])) + 1
                if middle > self._maxLine:
                    # Rare: measure again without the stuffed dots.
                    unstuffed = data.replace(b"\n.", b"\n").split(b"\n")
                    middle = max(map(len, unstuffed[1:-1])) + 1
                longest = max(longest, middle)
        if longest > self._maxLine:
            self.refuse(DATA_LINE_TOO_LONG)

    def _findHeaders(self, data: bytes, last: bytes) -> None:
        # The header block ends at the first empty line: CRLF CRLF, which
        # may straddle the previous content (or the stand-in CRLF).
        at = (last + data[:3]).find(b"\r\n\r\n")
        if at != -1:
            at -= len(last)
        else:
            at = data.find(b"\r\n\r\n")
            if at == -1:
                return
        end = self.size - len(data) + at + 2
        content = b"".join(self._chunks)
        self._chunks = [content]
        self.headerBlock = _unstuff(b"\r\n" + content[: max(end, 0)])[2:]

    def finish(self, prefix: bytes = b"") -> bytes:
        """
        The whole message, once L{feed} has returned the end.

        @param prefix: bytes to put before the message in the same copy (a
            trace header); they must be empty or end in CRLF, and are
            returned unchanged.
        @return: C{prefix} and the message, dot-unstuffed, lines ending in
            CRLF.
        @raise SMTPReply: the refusal: too big, a line too long, or a bare
            CR or LF.
        """
        if self._refusal is not None:
            raise self._refusal
        chunks, self._chunks = self._chunks, []
        if b"\r\n." in prefix or _hasBareEndings(prefix):
            # A prefix that the one-copy path would change or blame: two
            # copies instead.
            return prefix + _finishAlone(chunks)
        # The prefix's own CRLF (or a stand-in) precedes the first line, so
        # one replace un-stuffs that line too.
        lead = prefix[:-2] if prefix else b""
        message = b"".join([lead, b"\r\n", *chunks])
        del chunks
        _refuseBareEndings(message)
        message = _unstuff(message)
        return message if prefix else message[2:]


def _finishAlone(chunks: list[bytes]) -> bytes:
    message = b"".join([b"\r\n", *chunks])
    _refuseBareEndings(message)
    return _unstuff(message)[2:]


def _hasBareEndings(data: bytes) -> bool:
    crlfs = data.count(b"\r\n")
    return data.count(b"\n") != crlfs or data.count(b"\r") != crlfs


def _refuseBareEndings(message: bytes) -> None:
    # Every CR and every LF must be part of a CRLF (SMTP smuggling).
    if _hasBareEndings(message):
        raise BARE_LINE_ENDING


def _unstuff(data: bytes) -> bytes:
    # RFC 5321 4.5.2: a line's leading dot was doubled by the client.
    return data.replace(b"\r\n.", b"\r\n")
