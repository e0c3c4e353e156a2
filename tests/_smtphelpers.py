"""
Helpers for driving the SMTP server in tests: a recording session whose
hooks can be held open with unfired Deferreds, and a connection over
L{StringTransport} with a fake clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gomail_twisted.message import Headers
from gomail_twisted.smtp import (
    ConnectionInfo,
    Greeting,
    ISMTPAuthSession,
    ISMTPBackend,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
    SMTPReply,
    SMTPServerFactory,
    SMTPServerProtocol,
)

PEER = IPv4Address("TCP", "192.0.2.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 25)


@implementer(ISMTPAuthSession)
class RecordingSession:
    """
    Records every hook call in C{backend.calls}; a hook named in
    C{backend.hold} returns an unfired Deferred kept in C{backend.held}.
    Recipients whose local part is C{"nobody"} are refused.
    """

    def __init__(self, backend: RecordingBackend, info: ConnectionInfo) -> None:
        self.backend = backend
        self.info = info

    def _record(self, name: str, value: object) -> Any:
        self.backend.calls.append((name, value))
        behaviour = self.backend.behaviour.get(name)
        if behaviour is not None:
            return behaviour(value)
        if name in self.backend.hold:
            d: Deferred[Any] = Deferred()
            self.backend.held.append(d)
            return d
        return None

    def helo(self, greeting: Greeting) -> Any:
        return self._record("helo", greeting)

    def mailFrom(self, sender: MailFrom) -> Any:
        return self._record("mailFrom", sender)

    def rcptTo(self, recipient: Recipient) -> Any:
        if recipient.address.startswith("nobody@"):
            self.backend.calls.append(("rcptTo", recipient))
            raise SMTPReply(550, "5.1.1", "No such user")
        return self._record("rcptTo", recipient)

    def headers(self, headers: Headers) -> Any:
        return self._record("headers", headers)

    def message(self, message: ReceivedMessage) -> Any:
        self.backend.messages.append(message)
        return self._record("message", message)

    def reset(self) -> Any:
        return self._record("reset", None)

    def logout(self) -> Any:
        return self._record("logout", None)

    def authenticate(self, credentials: SMTPCredentials) -> Any:
        self.backend.calls.append(("authenticate", credentials))
        if credentials.password != "secret":
            raise SMTPReply(535, "5.7.8", "Bad credentials")
        return None


@implementer(ISMTPBackend)
class RecordingBackend:
    """
    Makes L{RecordingSession}s and keeps what they saw.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.messages: list[ReceivedMessage] = []
        self.hold: set[str] = set()
        self.held: list[Deferred[Any]] = []
        self.behaviour: dict[str, Callable[[object], Any]] = {}
        self.sessions: list[RecordingSession] = []

    def newSession(self, info: ConnectionInfo) -> Any:
        session = RecordingSession(self, info)
        self.sessions.append(session)
        return session

    def names(self) -> list[str]:
        """
        @return: the names of the hooks called, in order.
        """
        return [name for name, _ in self.calls]


def connect(
    factory: SMTPServerFactory,
) -> tuple[SMTPServerProtocol, StringTransport]:
    """
    Connect a protocol from C{factory} to a L{StringTransport}.
    """
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, SMTPServerProtocol)
    transport = StringTransport(hostAddress=LOCAL, peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


def exchange(
    case: SynchronousTestCase, factory: SMTPServerFactory, *lines: bytes
) -> list[bytes]:
    """
    Send each line on a new connection from C{factory}, closed at the end
    of C{case}; the reply to each, the greeting left out.
    """
    protocol, transport = connect(factory)
    case.addCleanup(protocol.connectionLost, None)  # type: ignore[arg-type]
    transport.clear()
    replies = []
    for line in lines:
        protocol.dataReceived(line + b"\r\n")
        replies.append(take(transport))
    return replies


def makeFactory(
    backend: ISMTPBackend | None = None, **kwargs: Any
) -> tuple[SMTPServerFactory, Clock]:
    """
    A factory on a fake clock.
    """
    clock = Clock()
    factory = SMTPServerFactory(
        backend or RecordingBackend(), hostname="mx.test", reactor=clock, **kwargs
    )
    return factory, clock


def take(transport: StringTransport) -> bytes:
    """
    Everything written since the last call.
    """
    data = transport.value()
    transport.clear()
    return data


def codes(data: bytes) -> list[str]:
    """
    The last line of each reply in C{data}, as C{"250 2.1.0"} (or C{"354"}
    when the reply has no enhanced code).
    """
    out = []
    for line in data.split(b"\r\n"):
        if len(line) >= 4 and line[3:4] == b" ":
            code, _, rest = line.decode("utf-8").partition(" ")
            first = rest.split(" ", 1)[0]
            enhanced = re.fullmatch(r"[245]\.\d+\.\d+", first)
            out.append(f"{code} {first}" if enhanced else code)
    return out
