# -*- test-case-name: tests.test_smtp_data -*-
"""
The SMTP data block (RFC 5321 4.1.1.4), read in bulk.

Bytes go in as the transport hands them over; the reader finds the one end
marker, C{<CRLF>.<CRLF>}, with C{bytes.find} over each chunk (and over the
few bytes around each chunk boundary), keeps the chunks in a list, and at the
end joins them once; dots are un-stuffed with one C{replace} per chunk.  No
Python code runs per line, except the line-length check, which samples each
chunk with C searches.  Chunks of at least L{COALESCE_BELOW} octets (and the
first chunk) are kept as they come; smaller ones are copied into one
C{bytearray}, so a client that trickles its data a few octets at a time
costs its octets and not one Python object each.
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
#: Content pieces shorter than this are copied into one buffer rather than
#: kept as objects of their own: a C{bytes} costs some 40 octets besides its
#: content, so a 4-octet piece would cost ten times its size.
COALESCE_BELOW = 4096
#: Every octet but CR and LF, for C{bytes.translate} to drop.
_NOT_LINE_ENDS = bytes(c for c in range(256) if c not in b"\r\n")
#: The size at which the buffer of small pieces becomes a chunk of its own,
#: so that it is never copied whole again as it grows.
_COALESCED_CHUNK = 64 * 1024


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
        # Small pieces of content, after those of _chunks.
        self._small = bytearray()
        # The dot, or dot and CR, after a CRLF that ended the stream so far:
        # perhaps the end marker's, so not yet taken as content.
        self._held = b""
        # The last three octets of content.  The data block starts right
        # after the CRLF of DATA, so a stand-in CRLF precedes the content:
        # an immediate ".<CRLF>" ends the block, and a first-line dot is
        # stuffed.
        self._last = b"\r\n"
        # Un-stuffed octets stored, and the last three of them after a
        # stand-in CRLF, for the header block's end.
        self._stored = 0
        self._storedTail = b"\r\n"
        # The line not yet ended: octets so far, and whether it starts
        # with a (stuffed) dot.
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
        self._small = bytearray()

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
            self._held = b""
            self._take(held)
        # The end marker, like every stuffed dot, starts with CRLF and a
        # dot: a chunk without one (most of a message) needs neither the
        # search for the marker nor un-stuffing, and ends with nothing to
        # hold back.
        dot = data.find(b"\r\n.")
        if dot == -1:
            self._take(data, stuffed=False)
            return None
        at = data.find(END, dot)
        if at != -1:
            # Stuffed only if a CRLF and dot came before the marker's.
            self._take(data[: at + 2], stuffed=dot < at)
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

    def _take(self, data: bytes, stuffed: bool = True) -> None:
        """
        Store the next octets of message content (never part of the end
        marker): checked for bare line ends and long lines, un-stuffed,
        counted against the size limit, searched for the header block.

        @param stuffed: L{False} when C{data} is known to hold no CRLF and
            dot, so that only a dot after the CRLF before it is un-stuffed.
        """
        self.size += len(data)
        last = self._last
        # Kept while draining too: feed finds the end marker with it.
        self._last = data[-3:] if len(data) >= 3 else (last + data)[-3:]
        if self._refusal is not None or not data:
            return
        # A CRLF may straddle the boundary: a CR ending the previous octets
        # is paired only if this chunk starts with LF.
        split = last[-1:] == b"\r"
        if split and data[:1] != b"\n":
            self.refuse(BARE_LINE_ENDING)
            return
        # Each CR and LF must belong to a CRLF, but for an LF that ends the
        # CR before this chunk and a CR that ends it (paired with the next
        # chunk's LF).  Those two cannot belong to a CRLF inside the chunk,
        # nor can any other CR or LF outside one, so counting them all at
        # once tells: one pass that keeps only the CRs and LFs, cheaper
        # than counting each.
        ends = len(data.translate(None, _NOT_LINE_ENDS))
        if ends != 2 * data.count(b"\r\n") + split + (data[-1:] == b"\r"):
            self.refuse(BARE_LINE_ENDING)
            return
        if self._maxLine is not None and self._hasLongLine(data):
            self.refuse(DATA_LINE_TOO_LONG)
            return
        # RFC 5321 4.5.2: a line's leading dot was doubled by the client;
        # the line may have started in the previous octets.
        if last[-2:] == b"\r\n" and data[:1] == b".":
            data = data[1:]
        elif split and data[:2] == b"\n.":
            data = b"\n" + data[2:]
        if stuffed:
            data = data.replace(b"\r\n.", b"\r\n")
        before = self._stored
        self._stored += len(data)
        if self._stored > self._maxSize:
            self.refuse(MESSAGE_TOO_BIG)
            return
        self._store(data)
        if self.headerBlock is None and before < MAX_HEADER_SEARCH:
            self._findHeaders(data, before)

    def _store(self, data: bytes) -> None:
        """
        Keep content octets: a large piece as it is, a small one copied
        into the buffer of small pieces.
        """
        small = self._small
        if len(data) >= COALESCE_BELOW or not (small or self._chunks):
            # A first piece is kept as it is, small or not: a message that
            # comes in one read is then never copied but into the result.
            if small:
                self._chunks.append(bytes(small))
                small.clear()
            self._chunks.append(data)
            return
        small += data
        if len(small) >= _COALESCED_CHUNK:
            self._chunks.append(bytes(small))
            small.clear()

    def _content(self) -> bytes:
        """
        All content octets so far, as one chunk (which then replaces the
        pieces).
        """
        if self._small:
            self._chunks.append(bytes(self._small))
            self._small.clear()
        content = b"".join(self._chunks)
        self._chunks = [content]
        return content

    def _hasLongLine(self, data: bytes) -> bool:
        """
        Whether a line of C{data} (perhaps begun before it) is longer than
        the limit, CRLF included and the doubled dot not counted (RFC 5321
        4.5.3.1.6).

        Lines are not walked one by one: the octets are sampled at most
        C{limit - 1} apart, each sample restarting that far past the line
        end found at the previous one, so every line of C{limit} octets or
        more holds a sample, and each sample costs two C searches.
        """
        limit = self._maxLine
        assert limit is not None
        first = data.find(b"\n")
        if self._lineLength == 0:
            self._lineDot = data[:1] == b"."
        if first == -1:
            self._lineLength += len(data)
            return self._lineLength - self._lineDot >= limit
        if self._lineLength + first - self._lineDot >= limit:
            return True
        last = data.rfind(b"\n")
        step = max(limit - 1, 1)
        sample = first + step
        find = data.find
        rfind = data.rfind
        while sample < last:
            start = rfind(b"\n", 0, sample) + 1
            end = find(b"\n", sample)
            # Octets before the LF, CR included, may number limit - 1, and
            # one more for a doubled dot (46).
            length = end - start
            if length >= limit and (length > limit or data[start] != 46):
                return True
            sample = end + step
        self._lineLength = len(data) - last - 1
        self._lineDot = data[last + 1 : last + 2] == b"."
        return self._lineLength - self._lineDot >= limit

    def _findHeaders(self, data: bytes, before: int) -> None:
        # The header block ends at the first empty line: CRLF CRLF, which
        # may straddle the previous content (or the stand-in CRLF that
        # precedes the first line).  Offsets count that stand-in.
        tail = self._storedTail
        self._storedTail = (tail + data)[-3:]
        at = (tail + data[:3]).find(b"\r\n\r\n")
        if at != -1:
            end = before + 2 - len(tail) + at
        else:
            at = data.find(b"\r\n\r\n")
            if at == -1:
                return
            end = before + 2 + at
        self.headerBlock = self._content()[:end]

    def finish(self, prefix: bytes = b"") -> bytes:
        """
        The whole message, once L{feed} has returned the end.

        @param prefix: bytes to put before the message in the same copy (a
            trace header); they are returned unchanged.
        @return: C{prefix} and the message, dot-unstuffed, lines ending in
            CRLF.
        @raise SMTPReply: the refusal: too big, a line too long, or a bare
            CR or LF.
        """
        if self._refusal is not None:
            raise self._refusal
        chunks, self._chunks = self._chunks, []
        small, self._small = self._small, bytearray()
        return b"".join([prefix, *chunks, small])
