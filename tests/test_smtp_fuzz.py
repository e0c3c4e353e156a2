"""
Arbitrary bytes against the SMTP server protocol: whatever a peer sends, in
whatever pieces, nothing escapes the protocol and every reply it writes is
a well-formed SMTP reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import FunctionBackend, SMTPReply
from tests._smtphelpers import connect, makeFactory

_REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][^\r\n]*\Z")

_PIECES = [
    b"EHLO fuzz.test\r\n",
    b"HELO fuzz.test\r\n",
    b"MAIL FROM:<a@example.com>\r\n",
    b"MAIL FROM:<a@example.com> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@example.net>\r\n",
    b"RCPT TO:<nobody@example.net>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"HELP\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN YWxpY2U=\r\n",
    b"*\r\n",
    b"QUIT\r\n",
    b"Subject: x\r\n\r\nbody\r\n",
    b"..dot\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r",
    b"\n",
    b".",
    b"\x00\xff",
    b"x" * 600,
]


def _streams() -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(st.sampled_from(_PIECES), st.binary(max_size=40))
    return st.lists(piece, max_size=30)


_HOOKS = ("helo", "mailFrom", "rcptTo", "headers", "message", "reset", "authenticate")


class _Hooks:
    """
    Hooks that answer at once or, for those named in C{later}, with a
    Deferred fired when the fuzzer says so; a recipient C{nobody@} is
    refused either way.
    """

    def __init__(self, later: set[str]) -> None:
        self.later = later
        self.pending: list[tuple[Deferred[None], object]] = []

    def hook(self, name: str) -> Callable[[object, object], object]:
        def call(info: object, value: object) -> object:
            if name in self.later:
                d: Deferred[None] = Deferred()
                self.pending.append((d, value))
                return d
            self.answer(value)
            return None

        return call

    @staticmethod
    def answer(value: object) -> None:
        if getattr(value, "address", "").startswith("nobody@"):
            raise SMTPReply(550, "5.1.1", "No such user")

    def fire(self, count: int) -> None:
        """
        Answer up to C{count} pending hooks, oldest first.
        """
        while count > 0 and self.pending:
            count -= 1
            d, value = self.pending.pop(0)
            try:
                self.answer(value)
            except SMTPReply as e:
                d.errback(e)
            else:
                d.callback(None)


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
        later=st.sets(st.sampled_from(_HOOKS)),
        fires=st.lists(st.integers(0, 2), max_size=20),
    )
    def test_anyInput(
        self, pieces: list[bytes], cuts: list[int], later: set[str], fires: list[int]
    ) -> None:
        """
        Any stream, cut anywhere, with any hooks answering later (so input
        is held and resumed at any point), gives only well-formed replies
        and raises nothing out of C{dataReceived}.
        """
        hooks = _Hooks(later)
        factory, _ = makeFactory(
            FunctionBackend(**{name: hooks.hook(name) for name in _HOOKS}),
            allowPlaintextAuth=True,
            maxMessageSize=2000,
        )
        protocol, transport = connect(factory)
        stream = b"".join(pieces)
        start = 0
        for i, cut in enumerate(cuts):
            protocol.dataReceived(stream[start : start + cut])
            start += cut
            hooks.fire(fires[i] if i < len(fires) else 0)
        protocol.dataReceived(stream[start:])
        while hooks.pending:
            hooks.fire(1)
        output = transport.value()
        self.assertTrue(output.endswith(b"\r\n"), output[-80:])
        for line in output[:-2].split(b"\r\n"):
            self.assertRegex(line, _REPLY_LINE)
        protocol.connectionLost()
        self.assertEqual(self.flushLoggedErrors(), [])
