# -*- test-case-name: tests.test_smtp_server -*-
"""
Ready-made backends: a base session with safe defaults, and an adapter that
makes a backend from plain callables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import alsoProvides, implementer

from gomail_twisted._hooks import callHook
from gomail_twisted.connection import SessionBackend
from gomail_twisted.message import Headers
from gomail_twisted.smtp._reply import UNKNOWN_RECIPIENT, SMTPReply
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    Greeting,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
)
from gomail_twisted.smtp.interfaces import (
    ISMTPAuthSession,
    ISMTPBackend,
    ISMTPSession,
)

#: The reply of L{SMTPSession.message} when a subclass does not deliver.
NO_DELIVERY = SMTPReply(554, "5.3.0", "No delivery configured")


@implementer(ISMTPSession)
class SMTPSession:
    """
    A session with safe defaults, to subclass: every recipient is refused
    (550 5.1.1), so the server is never an open relay and never loses a
    message it said it took.

    @ivar info: the connection this session serves.
    """

    def __init__(self, info: ConnectionInfo) -> None:
        """
        @param info: the connection.
        """
        self.info = info

    def helo(self, greeting: Greeting) -> Any:
        """
        Accept any name.
        """

    def mailFrom(self, sender: MailFrom) -> Any:
        """
        Accept any sender.
        """

    def rcptTo(self, recipient: Recipient) -> Any:
        """
        Refuse every recipient.

        @raise SMTPReply: 550 5.1.1.
        """
        raise UNKNOWN_RECIPIENT

    def headers(self, headers: Headers) -> Any:
        """
        Accept any header block.
        """

    def message(self, message: ReceivedMessage) -> Any:
        """
        Refuse: a subclass that accepts recipients delivers here.

        @raise SMTPReply: 554 5.3.0.
        """
        raise NO_DELIVERY

    def reset(self) -> Any:
        """
        Nothing to forget.
        """

    def logout(self) -> Any:
        """
        Nothing to release.
        """


@implementer(ISMTPBackend)
class SMTPBackend(SessionBackend):
    """
    Makes one session per connection with a session class.
    """

    def __init__(
        self, sessionFactory: Callable[[ConnectionInfo], Any] = SMTPSession
    ) -> None:
        """
        @param sessionFactory: such as a subclass of L{SMTPSession}.
        """
        super().__init__(sessionFactory)


Hook = Callable[[ConnectionInfo, Any], Any]


@implementer(ISMTPSession)
class _FunctionSession:
    def __init__(self, backend: FunctionBackend, info: ConnectionInfo) -> None:
        self._backend = backend
        self._info = info

    def _call(self, hook: Hook | None, value: Any, default: Any = None) -> Any:
        if hook is None:
            return default() if callable(default) else default
        return hook(self._info, value)

    def helo(self, greeting: Greeting) -> Any:
        return self._call(self._backend.onHelo, greeting)

    def mailFrom(self, sender: MailFrom) -> Any:
        return self._call(self._backend.onMailFrom, sender)

    def rcptTo(self, recipient: Recipient) -> Any:
        return self._call(self._backend.onRcptTo, recipient, _refuseRecipient)

    def headers(self, headers: Headers) -> Any:
        return self._call(self._backend.onHeaders, headers)

    def message(self, message: ReceivedMessage) -> Any:
        return self._call(self._backend.onMessage, message, _refuseMessage)

    def reset(self) -> Any:
        return self._call(self._backend.onReset, None)

    def logout(self) -> Any:
        return self._call(self._backend.onLogout, None)

    def authenticate(self, credentials: SMTPCredentials) -> Any:
        return self._call(self._backend.onAuthenticate, credentials)


def _refuseRecipient() -> None:
    raise UNKNOWN_RECIPIENT


def _refuseMessage() -> None:
    raise NO_DELIVERY


@implementer(ISMTPBackend)
class FunctionBackend:
    """
    A backend made of plain callables, for the one-callback case.

    Each callable takes the L{ConnectionInfo} and the step's value (L{None}
    for reset and logout) and may return a value, a Deferred or a coroutine,
    or raise L{SMTPReply}.  Left out, a step has L{SMTPSession}'s safe
    default; AUTH is offered only with C{authenticate}.

        backend = FunctionBackend(
            rcptTo=lambda info, rcpt: checkLocal(rcpt.address),
            message=lambda info, message: store(message.raw),
        )
    """

    def __init__(
        self,
        *,
        connect: Callable[[ConnectionInfo], Any] | None = None,
        helo: Hook | None = None,
        authenticate: Hook | None = None,
        mailFrom: Hook | None = None,
        rcptTo: Hook | None = None,
        headers: Hook | None = None,
        message: Hook | None = None,
        reset: Hook | None = None,
        logout: Hook | None = None,
    ) -> None:
        """
        @param connect: called with the connection info; raise L{SMTPReply}
            to refuse the connection.
        @param helo: HELO/EHLO, with a L{Greeting}.
        @param authenticate: AUTH, with L{SMTPCredentials}; returns the
            identity or L{None}.
        @param mailFrom: MAIL, with a L{MailFrom}.
        @param rcptTo: RCPT, with a L{Recipient}; default refuse.
        @param headers: the header block, with L{Headers}.
        @param message: the message, with a L{ReceivedMessage}; default
            refuse.
        @param reset: a transaction was abandoned.
        @param logout: the connection ends.
        """
        self.onConnect = connect
        self.onHelo = helo
        self.onAuthenticate = authenticate
        self.onMailFrom = mailFrom
        self.onRcptTo = rcptTo
        self.onHeaders = headers
        self.onMessage = message
        self.onReset = reset
        self.onLogout = logout

    def newSession(self, info: ConnectionInfo) -> Any:
        """
        @param info: the connection.
        @return: a session calling this backend's callables, or a Deferred
            of one when C{connect} returns a Deferred.
        """
        session = _FunctionSession(self, info)
        if self.onAuthenticate is not None:
            alsoProvides(session, ISMTPAuthSession)
        if self.onConnect is None:
            return session
        return callHook(self.onConnect, info).addCallback(lambda _: session)
