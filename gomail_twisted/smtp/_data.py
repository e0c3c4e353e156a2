# -*- test-case-name: tests.test_smtp_data -*-
"""
The SMTP data block (RFC 5321 4.1.1.4), read in bulk.

Bytes go in as the transport hands them over; the reader finds the one end
marker, C{<CRLF>.<CRLF>}, with C{bytes.find} over each chunk (and over the
few bytes around each chunk boundary), keeps the chunks in a list, and at the
end joins them once and un-stuffs dots with one C{replace}.  No Python code
runs per line, except the line-length check, which splits each chunk in C.

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
#: How far into the data the end of the header block is looked for.
MAX_HEADER_SEARCH = 256 * 1024


class DataReader:
    """
    Collects one data block.

    @ivar headerBlock: the message's header block (dot-unstuffed, without
        the empty line that ends it) once it has arrived, else L{None}.
    @ivar size: the number of octets received so far, dot-stuffing included.
    """

    headerBlock: bytes | None
    size: int

    def __init__(self, maxSize: int, maxLineLength: int | None) -> None:
        """
        @param maxSize: the largest message accepted, in octets after
            un-stuffing (RFC 1870).
        @param maxLineLength: the longest line accepted, CRLF included
            (RFC 5321 4.5.3.1.6), or L{None} for no limit.
        """
        self._maxSize = maxSize
        self._maxLine = maxLineLength
        self._chunks: list[bytes] = []
        # The stream's last four bytes; the data block starts right after the
        # CRLF of DATA, so an immediate ".<CRLF>" ends it.
        self._tail = b"\r\n"
        self._lineLength = 0
        self._refusal: SMTPReply | None = None
        self._headerSearch = 0
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
        tail = self._tail
        around = tail + data[:4]
        at = around.find(END)
        if at != -1 and at < len(tail):
            # The marker straddles the previous bytes: its CRLF is message
            # content already stored, and what we stored after it is not.
            bodyEnd = at + 2 - len(tail)
            consumed = at + len(END) - len(tail)
            if bodyEnd < 0 and self._chunks:
                self._chunks[-1] = self._chunks[-1][:bodyEnd]
            self._take(data[: max(bodyEnd, 0)])
            return data[consumed:]
        at = data.find(END)
        if at != -1:
            self._take(data[: at + 2])
            return data[at + len(END) :]
        self._take(data)
        self._tail = (tail + data)[-4:]
        return None

    def _take(self, data: bytes) -> None:
        self.size += len(data)
        if self._refusal is not None or not data:
            return
        if self._maxLine is not None:
            self._checkLines(data)
        self._chunks.append(data)
        if self.size > self._maxSize:
            stuffed = sum(c.count(b"\r\n.") for c in self._chunks)
            if self.size - stuffed > self._maxSize:
                self.refuse(MESSAGE_TOO_BIG)
                return
        if self.headerBlock is None:
            self._findHeaders()

    def _checkLines(self, data: bytes) -> None:
        assert self._maxLine is not None
        # Lines are counted up to and including their LF; a line may run
        # over several chunks.
        lines = data.split(b"\n")
        first = self._lineLength + len(lines[0]) + 1
        if len(lines) == 1:
            self._lineLength += len(data)
            longest = self._lineLength
        else:
            longest = max(first, max(map(len, lines[1:-1]), default=0) + 1)
            self._lineLength = len(lines[-1])
            longest = max(longest, self._lineLength)
        if longest > self._maxLine:
            self.refuse(DATA_LINE_TOO_LONG)

    def _findHeaders(self) -> None:
        if self._headerSearch < 0:
            return
        joined = b"\r\n" + b"".join(self._chunks)
        at = joined.find(b"\r\n\r\n", self._headerSearch)
        if at != -1:
            self.headerBlock = _unstuff(joined[2 : at + 2])
        elif len(joined) > MAX_HEADER_SEARCH:
            # No end of the header block this far in: the message hook will
            # see the whole thing; stop looking so each chunk costs O(1).
            self._headerSearch = -1
        else:
            self._headerSearch = max(0, len(joined) - 3)
            self._chunks = [joined[2:]]

    def finish(self, prefix: bytes = b"") -> bytes:
        """
        The whole message, once L{feed} has returned the end.

        @param prefix: bytes to put before the message in the same copy (a
            trace header); they must be empty or end in CRLF.
        @return: C{prefix} and the message, dot-unstuffed, lines ending in
            CRLF.
        @raise SMTPReply: the refusal: too big, a line too long, or a bare
            CR or LF.
        """
        if self._refusal is not None:
            raise self._refusal
        chunks, self._chunks = self._chunks, []
        # The prefix's own CRLF (or a stand-in) precedes the first line, so
        # one replace un-stuffs that line too.
        lead = prefix[:-2] if prefix else b""
        message = b"".join([lead, b"\r\n", *chunks])
        del chunks
        crlfs = message.count(b"\r\n")
        if message.count(b"\n") != crlfs or message.count(b"\r") != crlfs:
            raise BARE_LINE_ENDING
        message = _unstuff(message)
        return message if prefix else message[2:]


def _unstuff(data: bytes) -> bytes:
    # RFC 5321 4.5.2: a line's leading dot was doubled by the client.
    return data.replace(b"\r\n.", b"\r\n")
