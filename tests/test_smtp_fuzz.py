"""
Arbitrary bytes against the SMTP server protocol: whatever a peer sends, in
whatever pieces, nothing escapes the protocol and every reply it writes is
a well-formed SMTP reply.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


class FuzzTests(SynchronousTestCase):
    """
    A fuzz target for the whole protocol.
    """

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(pieces=_streams(), cuts=st.lists(st.integers(0, 50), max_size=20))
    def test_anyInput(self, pieces: list[bytes], cuts: list[int]) -> None:
        """
        Any stream, cut anywhere, gives only well-formed replies and raises
        nothing out of C{dataReceived}.
        """

        def rcptTo(info: object, recipient: object) -> None:
            address = getattr(recipient, "address", "")
            if address.startswith("nobody@"):
                raise SMTPReply(550, "5.1.1", "No such user")

        factory, _ = makeFactory(
            FunctionBackend(
                rcptTo=rcptTo,
                message=lambda info, message: None,
                authenticate=lambda info, credentials: None,
            ),
            allowPlaintextAuth=True,
            maxMessageSize=2000,
        )
        protocol, transport = connect(factory)
        stream = b"".join(pieces)
        start = 0
        for cut in cuts:
            protocol.dataReceived(stream[start : start + cut])
            start += cut
        protocol.dataReceived(stream[start:])
        output = transport.value()
        self.assertTrue(output.endswith(b"\r\n"), output[-80:])
        for line in output[:-2].split(b"\r\n"):
            self.assertRegex(line, _REPLY_LINE)
        protocol.connectionLost()
        self.assertEqual(self.flushLoggedErrors(), [])
