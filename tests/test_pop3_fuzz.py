# -*- test-case-name: tests.test_pop3_fuzz -*-
"""
Arbitrary bytes against the POP3 server protocol: whatever a peer sends,
in whatever pieces, with hooks answering at once or later, nothing escapes
the protocol, nothing is logged as an error, every response is well formed,
and the session ends with an answer to QUIT or a clean close.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.pop3 import (
    ConnectionInfo,
    FunctionBackend,
    MemoryMaildrop,
    POP3Credentials,
    replies,
)
from tests.test_pop3_server import PASSWORD, Connection, makeFactory, plain

_STATUS = re.compile(rb"(\+OK|-ERR)( [^\r\n]*)?\Z|\+ [A-Za-z0-9+/=]*\Z")

#: The status lines that open a multi-line response.
_MULTILINE = re.compile(
    rb"\+OK (Capability list follows|Mechanisms follow|Unique-ID listing follows"
    rb"|Top of message follows|\d+ octets|\d+ messages \(\d+ octets\))\Z"
)

_PIECES = [
    b"USER alice\r\n",
    b"PASS " + PASSWORD.encode() + b"\r\n",
    b"PASS wrong\r\n",
    b"AUTH PLAIN " + plain("alice", PASSWORD) + b"\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH\r\n",
    b"APOP alice 0123456789abcdef0123456789abcdef\r\n",
    b"CAPA\r\n",
    b"STAT\r\n",
    b"LIST\r\n",
    b"LIST 2\r\n",
    b"UIDL\r\n",
    b"UIDL 1\r\n",
    b"RETR 1\r\n",
    b"RETR 3\r\n",
    b"TOP 2 1\r\n",
    b"TOP 1 -1\r\n",
    b"DELE 1\r\n",
    b"DELE 0\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"STLS\r\n",
    b"QUIT\r\n",
    b"*\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b".",
    b"\x00\xff",
    b"x" * 300,
]

_MESSAGES = [
    b"Subject: a\r\n\r\n.\r\n..\r\n+OK\r\n",
    b"Subject: b\r\n\r\nline\r\n-ERR\r\n",
    b".",
]


def _streams() -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(st.sampled_from(_PIECES), st.binary(max_size=40))
    return st.lists(piece, max_size=30)


class _Hooks:
    """
    A backend whose login and retrieve hooks answer at once or, when told
    to, with a Deferred the fuzzer fires later.
    """

    def __init__(self, later: bool) -> None:
        self.later = later
        self.pending: list[tuple[Deferred[Any], Any]] = []

    def defer(self, value: Any) -> Any:
        if not self.later:
            return value
        d: Deferred[Any] = Deferred()
        self.pending.append((d, value))
        return d

    def login(self, info: ConnectionInfo, credentials: POP3Credentials) -> Any:
        if credentials.password != PASSWORD:
            return self.defer(replies.AUTH_FAILED)
        maildrop = MemoryMaildrop(_MESSAGES)
        maildrop.retrieve = lambda index: self.defer(_MESSAGES[index])  # type: ignore[method-assign]
        return self.defer(maildrop)

    def fire(self, count: int) -> None:
        while count > 0 and self.pending:
            count -= 1
            d, value = self.pending.pop(0)
            if isinstance(value, Exception):
                d.errback(value)
            else:
                d.callback(value)


def checkResponses(test: SynchronousTestCase, output: bytes) -> list[bytes]:
    """
    Check that C{output} is a sequence of well-formed responses.

    @return: the status lines.
    """
    test.assertTrue(output == b"" or output.endswith(b"\r\n"), output[-80:])
    statuses = []
    inBody = False
    for line in output.split(b"\r\n")[:-1]:
        if inBody:
            if line == b".":
                inBody = False
            continue
        test.assertRegex(line, _STATUS)
        statuses.append(line)
        inBody = bool(_MULTILINE.match(line))
    test.assertFalse(inBody, "a multi-line response was not terminated")
    return statuses


class FuzzTests(SynchronousTestCase):
    """
    A fuzz target for the whole protocol.
    """

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        pieces=_streams(),
        cuts=st.lists(st.integers(0, 50), max_size=20),
        later=st.booleans(),
        fires=st.lists(st.integers(0, 2), max_size=20),
        maxErrors=st.sampled_from([3, 1000]),
    )
    def test_anyInput(
        self,
        pieces: list[bytes],
        cuts: list[int],
        later: bool,
        fires: list[int],
        maxErrors: int,
    ) -> None:
        """
        Any stream, cut anywhere, with hooks answering later (so input is
        held and resumed at any point), gives only well-formed responses,
        raises nothing out of C{dataReceived}, and a final QUIT is answered
        unless the connection closed already.
        """
        hooks = _Hooks(later)
        factory = makeFactory(
            FunctionBackend(login=hooks.login),
            reactor=Clock(),
            maxErrors=maxErrors,
            chunkSize=7,
        )
        c = Connection(factory)
        stream = b"".join(pieces)
        start = 0
        for i, cut in enumerate(cuts):
            c.protocol.dataReceived(stream[start : start + cut])
            start += cut
            hooks.fire(fires[i] if i < len(fires) else 0)
        c.protocol.dataReceived(stream[start:])
        hooks.fire(1000)
        # Leave a SASL exchange if one is open, and end the session.
        c.protocol.dataReceived(b"*\r\nQUIT\r\n")
        hooks.fire(1000)
        statuses = checkResponses(self, c.greeting + c.transport.value())
        self.assertTrue(c.closing, statuses[-3:])
        self.assertTrue(
            statuses[-1].startswith(b"+OK Bye") or statuses[-1].startswith(b"-ERR"),
            statuses[-3:],
        )
        c.lose()
        self.assertEqual(self.flushLoggedErrors(), [])
