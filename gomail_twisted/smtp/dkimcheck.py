# -*- test-case-name: tests.test_smtp_dkimcheck -*-
"""
DKIM verification as a wrapper around an SMTP backend: policy belongs to
the backend side, as in go-smtp, and the protocol knows nothing of it.

    backend = DKIMVerifyingBackend(
        MaildirBackend(...), resolver.lookupTXT, "mx.example.com",
        reactor=reactor,
    )
    factory = SMTPServerFactory(backend, hostname="mx.example.com")

Every session hook goes to the wrapped session unchanged, except
C{message}: the message's DKIM signatures are verified (RFC 6376 6), an
C{Authentication-Results:} field naming our host is prepended (RFC 8601),
received fields that claim our host are renamed (RFC 8601 5), and the
wrapped session gets the message with the results in
L{ReceivedMessage.dkim}.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

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

if TYPE_CHECKING:
    from gomail_twisted.dkim import DKIMResult, LookupTXT, RunInThread
    from gomail_twisted.message import Headers

__all__ = ["DEFAULT_DKIM_TIMEOUT", "DKIMVerifyingBackend"]

DEFAULT_DKIM_TIMEOUT = 30.0
"""
Seconds a message's DKIM verification may take, key lookups included,
before what is unfinished is reported as C{temperror}.
"""

# A header field ends at a CRLF that is not followed by folding whitespace.
_FIELD_END = re.compile(rb"\r\n(?![ \t])")
# The empty line that ends the header block, with CRLF or bare LF line ends
# (the verifier reads a bare LF as CRLF).
_HEADER_END = re.compile(rb"\n\r?\n")
# A line that may start a DKIM-Signature field.
_SIGNATURE_FIELD = re.compile(rb"(?:\A|\n)dkim-signature", re.IGNORECASE)


def _mayBeSigned(raw: bytes) -> bool:
    """
    @param raw: a message.
    @return: whether a line of its header block starts with the name
        C{DKIM-Signature}; when not, verifying it gives no results, and
        costs no parse and no thread.
    """
    end = _HEADER_END.search(raw)
    return (
        _SIGNATURE_FIELD.search(raw, 0, len(raw) if end is None else end.start())
        is not None
    )


def _traceEnd(raw: bytes) -> int:
    """
    @param raw: a message as the server hands it to the session: its first
        header field is the server's own C{Received:} field.
    @return: where the field after that one starts.
    """
    match = _FIELD_END.search(raw)
    return len(raw) if match is None else match.end()


@implementer(ISMTPBackend)
class DKIMVerifyingBackend:
    """
    An L{ISMTPBackend} that verifies the DKIM signatures of every message
    before the wrapped backend's session gets it.

    @ivar backend: the wrapped backend.
    @ivar hostname: our authserv-id, in the C{Authentication-Results:}
        fields we add and the ones we rename.
    """

    def __init__(
        self,
        backend: ISMTPBackend,
        lookupTXT: LookupTXT,
        hostname: str,
        *,
        reactor: IReactorTime,
        maxSignatures: int | None = None,
        timeout: float | None = DEFAULT_DKIM_TIMEOUT,
        runInThread: RunInThread | None = None,
    ) -> None:
        """
        @param backend: hands out the sessions to wrap.
        @param lookupTXT: fetches TXT records, such as
            L{gomail_twisted.dns.Resolver.lookupTXT}; a DNS failure is a
            C{temperror}, never a lost message.
        @param hostname: our authserv-id, normally the server's host name.
        @param reactor: the clock for C{t=}, C{x=} and C{timeout}; when it
            provides L{IReactorThreads}, its thread pool runs the CPU work
            unless C{runInThread} is given.
        @param maxSignatures: how many well-formed signatures to check per
            message (RFC 6376 6.1); later ones are reported as
            C{dkim=policy}, not checked.  L{None} for
            L{gomail_twisted.dkim.DEFAULT_MAX_SIGNATURES}.
        @param timeout: seconds a message's verification may take; see
            L{gomail_twisted.dkim.verify}.  L{None} for no bound.
        @param runInThread: runs the CPU work; see
            L{gomail_twisted.dkim.RunInThread}.  Default: the reactor's
            thread pool, or the calling thread when the reactor has none
            (as L{twisted.internet.task.Clock} in tests).
        """
        from gomail_twisted.dkim import DEFAULT_MAX_SIGNATURES

        self.backend = backend
        self.hostname = hostname
        self._lookupTXT = lookupTXT
        self._reactor = reactor
        self._maxSignatures = (
            DEFAULT_MAX_SIGNATURES if maxSignatures is None else maxSignatures
        )
        self._timeout = timeout
        if runInThread is None and IReactorThreads.providedBy(reactor):
            threads: Any = reactor
            runInThread = partial(deferToThreadPool, reactor, threads.getThreadPool())
        self._runInThread = runInThread

    def newSession(self, info: ConnectionInfo) -> Any:
        """
        Wrap the session of the wrapped backend.

        @param info: the connection.
        @return: the wrapped session (or a Deferred of it); it provides
            L{ISMTPAuthSession} exactly when the wrapped one does.
        """
        session = self.backend.newSession(info)
        if inspect.iscoroutine(session):
            session = Deferred.fromCoroutine(session)
        if isinstance(session, Deferred):
            return session.addCallback(self._wrap)
        return self._wrap(session)

    def _wrap(self, session: ISMTPSession) -> _DKIMSession:
        if ISMTPAuthSession.providedBy(session):
            return _DKIMAuthSession(session, self)
        return _DKIMSession(session, self)

    def verifyMessage(self, message: ReceivedMessage) -> Deferred[ReceivedMessage]:
        """
        Verify a message and add our verdict.

        @param message: the message as the server received it, its first
            header field our C{Received:} field.
        @return: a Deferred (which never fails) of the message with an
            C{Authentication-Results:} field before the others, forged
            ones renamed, and C{dkim} set.
        """
        from gomail_twisted.dkim import verify

        if not _mayBeSigned(message.raw):
            return succeed(self._addResults([], message))
        # Our Received field does not change the verdict: a signer's h=
        # names fields from the bottom up (RFC 6376 5.4.2).
        verified = verify(
            message.raw,
            self._lookupTXT,
            now=self._reactor.seconds(),
            maxSignatures=self._maxSignatures,
            timeout=self._timeout,
            clock=self._reactor,
            runInThread=self._runInThread,
        )
        return verified.addCallback(self._addResults, message)

    def _addResults(
        self, results: list[DKIMResult], message: ReceivedMessage
    ) -> ReceivedMessage:
        from gomail_twisted.dkim import (
            authenticationResultsField,
            obscureForgedResults,
        )

        field = authenticationResultsField(self.hostname, results)
        raw = obscureForgedResults(message.raw, _traceEnd(message.raw), self.hostname)
        return replace(message, raw=field + raw, dkim=tuple(results))


@implementer(ISMTPSession)
class _DKIMSession:
    """
    A session whose messages are verified before the wrapped session gets
    them; every other hook is the wrapped session's.
    """

    def __init__(self, session: Any, backend: DKIMVerifyingBackend) -> None:
        self._session = session
        self._backend = backend

    def helo(self, greeting: Greeting) -> Any:
        return self._session.helo(greeting)

    def mailFrom(self, sender: MailFrom) -> Any:
        return self._session.mailFrom(sender)

    def rcptTo(self, recipient: Recipient) -> Any:
        return self._session.rcptTo(recipient)

    def headers(self, headers: Headers) -> Any:
        return self._session.headers(headers)

    def message(self, message: ReceivedMessage) -> Any:
        verified = self._backend.verifyMessage(message)
        return verified.addCallback(self._deliver)

    def _deliver(self, message: ReceivedMessage) -> Any:
        result = self._session.message(message)
        if inspect.iscoroutine(result):
            return Deferred.fromCoroutine(result)
        return result

    def reset(self) -> Any:
        return self._session.reset()

    def logout(self) -> Any:
        return self._session.logout()


@implementer(ISMTPAuthSession)
class _DKIMAuthSession(_DKIMSession):
    """
    A L{_DKIMSession} around a session that accepts AUTH.
    """

    def authenticate(self, credentials: SMTPCredentials) -> Any:
        return self._session.authenticate(credentials)
