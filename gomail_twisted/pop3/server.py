# -*- test-case-name: tests.test_pop3_server -*-
"""
The POP3 server (RFC 1939): a L{LineReceiver} that reads commands, asks the
application's hooks (L{IPOP3Session}, L{IMaildrop}) and answers.

Extensions, each implemented as well as advertised: CAPA, RESP-CODES,
PIPELINING, TOP, UIDL, USER (RFC 2449), AUTH-RESP-CODE (RFC 3206), SASL
PLAIN with an initial response (RFC 5034) and STLS (RFC 2595).  APOP (RFC
1939 7) is offered when the session provides L{IPOP3APOPSession}, with a
timestamp in the greeting.  Behind an C{ssl:} endpoint the same factory
serves implicit TLS (RFC 8314, port 995).

Replies go out strictly in command order: while a hook's Deferred is
pending, or a message is being sent, the protocol stops reading, and
pipelined commands wait in the buffer.

RETR and TOP send the message dot-stuffed with one C{replace} over the
whole of it, then in chunks as the transport takes them: the server holds
the one message, and never more than a chunk beyond the transport's
high-water mark.  While a message goes out the idle clock measures the
reader's progress: it restarts whenever the transport drains, so a slow
reader is never cut off, and one that stops reading for C{timeout} seconds
is dropped (nothing can be said in the middle of a message).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted._hooks import HookServerProtocol, invokeHook, thenCall
from gomail_twisted.connection import Refusal
from gomail_twisted.pop3 import _reply as R
from gomail_twisted.pop3._reply import POP3Reply, multiline, ok
from gomail_twisted.pop3._state import COMMANDS, State, refusal
from gomail_twisted.pop3._values import (
    ConnectionInfo,
    LoginFailure,
    MaildropMessage,
    POP3Credentials,
)
from gomail_twisted.pop3._wire import (
    MAX_AUTH_LINE,
    Command,
    expectArguments,
    parseCommand,
    parseNumber,
    stuffedParts,
    topOfMessage,
)
from gomail_twisted.pop3.interfaces import (
    IMaildrop,
    IMaildropMarks,
    IPOP3APOPSession,
    IPOP3Session,
)
from gomail_twisted.sasl import (
    PlainExchange,
    SASLCancelled,
    SASLExchange,
    SASLMalformed,
    decodeResponse,
    encodeChallenge,
)

if TYPE_CHECKING:
    from gomail_twisted.pop3.factory import POP3ServerFactory

#: The hold while a message is being sent.
_STREAM = "stream"

_DIGEST = re.compile(rb"[0-9a-fA-F]{32}\Z")

_Mode = Literal["command", "auth"]
#: A response ready to send: status line (and a first line's stuffing
#: dot), the stuffed message, the terminator.
_Outgoing = tuple[bytes, bytes, bytes]


class POP3ServerProtocol(HookServerProtocol[POP3Reply]):
    """
    One POP3 connection.

    @ivar factory: the factory, holding the configuration.
    @ivar _state: one of L{State}: C{AUTHORIZATION} until a login succeeds,
        C{TRANSACTION} with the maildrop open, C{UPDATE} after QUIT while
        deletions are committed.
    @ivar _mode: how lines are read: C{"command"}, or C{"auth"} for the
        client's response in a SASL exchange.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = MAX_AUTH_LINE

    factory: POP3ServerFactory
    _log = Logger()
    replyType = POP3Reply
    temporaryFailure = R.TEMPORARY_FAILURE
    hookFailureFormat = "POP3 hook {hook} failed for {peer}"
    internalErrorFormat = "POP3 internal error for {peer}"

    def __init__(self) -> None:
        self._state = State.AUTHORIZATION
        self._mode: _Mode = "command"
        self._session: Any = None
        self._info: ConnectionInfo | None = None
        self._timestamp = ""
        self._user: str | None = None
        self._maildrop: Any = None
        self._messages: tuple[MaildropMessage, ...] = ()
        self._deleted: set[int] = set()
        #: The messages sent whole with RETR, to be marked seen at QUIT.
        self._retrieved: set[int] = set()
        self._authExchange: SASLExchange | None = None
        self._stream: bytes | None = None
        self._streamHead = b""
        self._streamTail = b""
        self._streamAt = 0
        self._pumping = False
        self._committing = False
        self._lost = False

    # Connection life (the words; LineServerProtocol decides when).

    def connectionReady(self) -> None:
        self._startSession(greet=True)

    def tlsReady(self) -> None:
        # RFC 2595 4: a new session, told the TLS facts; no greeting.
        self._startSession(greet=False)

    def refuseConnection(self, refusal: Refusal) -> None:
        self._send(_REFUSALS.get(refusal, R.TOO_MANY_CONNECTIONS))

    def sendIdleNotice(self) -> None:
        self._send(R.IDLE_TIMEOUT)

    def sendShutdownNotice(self) -> None:
        self._send(R.SHUTTING_DOWN)

    def sendTooManyErrors(self) -> None:
        self._send(R.TOO_MANY_ERRORS)

    def timeoutConnection(self) -> None:
        if self._stream is not None:
            # The reader stopped reading mid-message: nothing can be said.
            self._log.info("POP3 reader stalled: {peer}", peer=self.peer[0])
            self._stream = None
            self.abort()
            return
        super().timeoutConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self._stream = None
        if not self._committing:
            self._endSession()
        super().connectionLost(reason)

    def _startSession(self, greet: bool) -> None:
        info = self._info = self.connectionInfo(self.factory.hostname)

        def started(session: Any) -> None:
            self._session = session
            if greet:
                text = f"{self.factory.hostname} POP3 server ready"
                if IPOP3APOPSession.providedBy(session):
                    self._timestamp = self.factory.newTimestamp()
                    text += " " + self._timestamp
                self._send(ok(text))

        def refused(reply: POP3Reply) -> None:
            self._send(reply)
            self.closeConnection()

        self.startSession(
            self.factory.backend, info, IPOP3Session, started, refused, R.NOT_AVAILABLE
        )

    def _endSession(self) -> None:
        self._closeMaildrop()
        session, self._session = self._session, None
        if session is not None:
            self.notifyHook(session.logout, "logout")

    def _closeMaildrop(self) -> None:
        maildrop, self._maildrop = self._maildrop, None
        if maildrop is not None:
            self.notifyHook(maildrop.close, "close")

    # Writing replies.

    def _send(self, reply: POP3Reply) -> None:
        self.write(reply.format())

    refuse = _send

    def isRefusal(self, reply: POP3Reply) -> bool:
        """
        A returned C{-ERR} reply refuses.
        """
        return not reply.ok

    def _error(self, reply: POP3Reply) -> None:
        """
        Answer a protocol error, counted toward the error limit.
        """
        self.write(reply.format())
        self.countError()

    # Reading.

    def lineReceived(self, line: bytes) -> None:
        if self.closed:
            # Once closing, nothing the client sends is acted on.
            return
        self.resetTimeout()
        if self._mode == "auth":
            exchange, self._authExchange = self._authExchange, None
            self._mode = "command"
            assert exchange is not None
            try:
                self._authStep(exchange, line)
            except POP3Reply as e:
                self._error(e)
            return
        command = parseCommand(line)
        verb = command.verb
        if len(line) + 2 > self.factory.maxLineLength and verb != "AUTH":
            self._error(R.LINE_TOO_LONG)
            return
        allowed = COMMANDS.get(verb)
        if allowed is None or self._state not in allowed:
            self._error(refusal(verb, self._state) or R.BAD_SEQUENCE)
            return
        try:
            _HANDLERS[verb](self, command)
        except POP3Reply as e:
            if e in _NOT_PROTOCOL_ERRORS:
                self._send(e)
            else:
                self._error(e)
        except Exception:
            # A bug of ours must cost this command, not the connection.
            self._log.failure(
                "POP3 internal error on {verb} from {peer}",
                verb=verb,
                peer=self.peer[0],
            )
            self._send(R.TEMPORARY_FAILURE)

    def lineLengthExceeded(self, line: bytes) -> int | None:
        # Past the hard bound there is no telling where a command starts.
        self._log.info("POP3 line too long from {peer}", peer=self.peer[0])
        self._send(R.LINE_TOO_LONG)
        self.closeConnection()
        return None

    # AUTHORIZATION.

    def _isTLS(self) -> bool:
        return self._info is not None and self._info.tls is not None

    def _passwordsAllowed(self) -> bool:
        return self._isTLS() or self.factory.allowPlaintextAuth

    def _capa(self, command: Command) -> None:
        expectArguments(command, 0, 0)
        authorization = self._state is State.AUTHORIZATION
        self.write(
            self.factory.capabilityResponse(
                authorization and self._passwordsAllowed(),
                authorization and self.factory.tls is not None and not self._isTLS(),
            )
        )

    def _userCommand(self, command: Command) -> None:
        if not self._passwordsAllowed():
            raise R.TLS_REQUIRED
        name = command.rest.strip()
        if not name:
            raise R.SYNTAX_ERROR.withText("Syntax: USER name")
        self._user = _text(name)
        self._send(R.USER_OK)

    def _pass(self, command: Command) -> None:
        if not self._passwordsAllowed():
            raise R.TLS_REQUIRED
        user, self._user = self._user, None
        if user is None:
            raise R.USER_FIRST
        # RFC 1939 7: the password is the rest of the line, spaces and all.
        password = _text(command.rest)
        credentials = POP3Credentials("USER", user, password)
        self._login(lambda: invokeHook(self._session.login, credentials), "USER", user)

    def _apop(self, command: Command) -> None:
        self._user = None
        if not IPOP3APOPSession.providedBy(self._session) or not self._timestamp:
            raise R.NOT_SUPPORTED
        user, digest = expectArguments(command, 2, 2)
        if not _DIGEST.match(digest):
            raise R.SYNTAX_ERROR.withText("Syntax: APOP name digest")
        name = _text(user)
        self._login(
            lambda: invokeHook(
                self._session.apop,
                name,
                self._timestamp,
                digest.decode("ascii").lower(),
            ),
            "APOP",
            name,
        )

    def _auth(self, command: Command) -> None:
        self._user = None
        if not self._passwordsAllowed():
            raise R.TLS_REQUIRED
        arguments = expectArguments(command, 0, 2)
        if not arguments:
            self.write(multiline(R.MECHANISMS, [b"PLAIN"]))
            return
        if arguments[0].upper() != b"PLAIN":
            raise R.UNKNOWN_MECHANISM
        self._authStep(PlainExchange(), arguments[1] if len(arguments) > 1 else None)

    def _authStep(self, exchange: SASLExchange, line: bytes | None) -> None:
        """
        Feed one response (L{None}: no initial response) to the SASL
        exchange; send its challenge, or check the credentials it yields.
        """
        try:
            outcome = exchange.step(None if line is None else decodeResponse(line))
        except SASLCancelled:
            raise R.AUTH_CANCELLED
        except SASLMalformed as e:
            raise R.AUTH_BAD_BASE64.withText(f"Cannot decode response: {e}")
        if isinstance(outcome, bytes):
            self._mode = "auth"
            self._authExchange = exchange
            self.write(b"+ " + encodeChallenge(outcome) + b"\r\n")
            return
        self._login(
            lambda: invokeHook(self._session.login, outcome),
            outcome.mechanism,
            outcome.login,
        )

    def _login(
        self, callHook: Callable[[], object], mechanism: str, login: str
    ) -> None:
        """
        Call a login hook and wait for it; open the maildrop it gives, or
        tell the client and the session's L{IPOP3Session.loginFailed} of the
        refusal.

        Access control is told of the outcome, even when the client has
        gone meanwhile: a refusal is a failed login unless its code says
        the credentials were not at fault (L{R.NOT_A_WRONG_LOGIN}).  A peer
        blocked since it connected is refused and closed, the hook not
        called.
        """
        if self.peerBlocked:
            self._log.info("POP3 login from blocked {peer}", peer=self.peer[0])
            self._send(R.BLOCKED)
            self.closeConnection()
            return
        outcome = callHook()

        def report(result: object) -> object:
            reply = result.value if isinstance(result, Failure) else result
            if isinstance(reply, POP3Reply):
                if not reply.ok and reply.code not in R.NOT_A_WRONG_LOGIN:
                    self.reportLogin(False)
            elif IMaildrop.providedBy(reply):
                self.reportLogin(True)
            return result

        if isinstance(outcome, Deferred):
            outcome.addBoth(report)
        else:
            report(outcome)

        def keep(maildrop: object) -> object:
            if self.closed and IMaildrop.providedBy(maildrop):
                # The client went meanwhile.
                self.notifyHook(maildrop.close, "close")
            return maildrop

        def loggedIn(maildrop: Any) -> None:
            if not IMaildrop.providedBy(maildrop):
                self._log.error(
                    "POP3 login returned {maildrop!r}, not an IMaildrop",
                    maildrop=maildrop,
                )
                raise R.TEMPORARY_FAILURE
            self._maildrop = maildrop
            self._messages = tuple(maildrop.messages)
            self._deleted = set()
            self._retrieved = set()
            self._state = State.TRANSACTION
            self._log.info(
                "POP3 {mechanism} login ok for {login} from {peer}",
                mechanism=mechanism,
                login=login,
                peer=self.peer[0],
            )
            count, size = self._totals()
            self._send(ok(f"Logged in, {_count(count, 'message')} ({size} octets)"))

        def refused(reply: POP3Reply) -> None:
            self._log.info(
                "POP3 {mechanism} login failed for {login} from {peer}: {reply}",
                mechanism=mechanism,
                login=login,
                peer=self.peer[0],
                reply=str(reply),
            )
            session = self._session
            if session is not None and self._info is not None:
                failure = LoginFailure(mechanism, login, reply, self._info)
                self.notifyHook(session.loginFailed, "loginFailed", failure)
            self._error(reply)

        self.awaitHook(thenCall(outcome, keep), loggedIn, refused, hook="login")

    def _stls(self, command: Command) -> None:
        if self.factory.tls is None:
            raise R.NOT_SUPPORTED
        if self._isTLS():
            raise R.ALREADY_TLS
        expectArguments(command, 0, 0)
        self._send(R.BEGIN_TLS)
        self._user = None
        self._endSession()
        # RFC 2595 4: nothing sent before the handshake is acted on.
        self.startTLS(self.factory.tls)

    def _quit(self, command: Command) -> None:
        if self._state is State.AUTHORIZATION:
            self._send(R.BYE)
            self.closeConnection()
            return
        self._state = State.UPDATE
        deleted = sorted(self._deleted)
        seen = sorted(self._retrieved - self._deleted)
        if not deleted and not seen:
            self._closeMaildrop()
            self._send(R.BYE)
            self.closeConnection()
            return
        outcome = invokeHook(self._maildrop.commit, deleted, seen)
        if isinstance(outcome, Deferred):
            self._committing = True
            outcome.addBoth(self._afterCommit)
        else:
            self._closeMaildrop()

        def committed(result: object) -> None:
            self._send(ok(f"Bye, {_count(len(deleted), 'message')} deleted"))
            self.closeConnection()

        def failed(reply: POP3Reply) -> None:
            self._send(reply)
            self.closeConnection()

        self.awaitHook(outcome, committed, failed, R.COMMIT_FAILED, "commit")

    def _afterCommit(self, result: object) -> object:
        self._committing = False
        if self._lost:
            self._endSession()
        else:
            self._closeMaildrop()
        return result

    # TRANSACTION.

    def _totals(self) -> tuple[int, int]:
        deleted = self._deleted
        sizes = [m.size for i, m in enumerate(self._messages) if i not in deleted]
        return len(sizes), sum(sizes)

    def _index(self, argument: bytes) -> int:
        """
        The index of a message number the client gave (RFC 1939 5).

        @raise POP3Reply: for a malformed number, one with no message, and
            a deleted message.
        """
        number = parseNumber(argument)
        if not 0 < number <= len(self._messages):
            raise R.NO_SUCH_MESSAGE
        if number - 1 in self._deleted:
            raise R.MESSAGE_DELETED
        return number - 1

    def _stat(self, command: Command) -> None:
        expectArguments(command, 0, 0)
        count, size = self._totals()
        self._send(ok(f"{count} {size}"))

    def _list(self, command: Command) -> None:
        arguments = expectArguments(command, 0, 1)
        if arguments:
            index = self._index(arguments[0])
            self._send(ok(f"{index + 1} {self._messages[index].size}"))
            return
        count, size = self._totals()
        deleted = self._deleted
        self.write(
            multiline(
                ok(f"{_count(count, 'message')} ({size} octets)"),
                [
                    b"%d %d" % (i + 1, m.size)
                    for i, m in enumerate(self._messages)
                    if i not in deleted
                ],
            )
        )

    def _uidl(self, command: Command) -> None:
        arguments = expectArguments(command, 0, 1)
        if arguments:
            index = self._index(arguments[0])
            self._send(ok(f"{index + 1} {self._messages[index].uidl}"))
            return
        deleted = self._deleted
        self.write(
            multiline(
                R.UIDL_FOLLOWS,
                [
                    b"%d %s" % (i + 1, m.uidl.encode("ascii", "replace"))
                    for i, m in enumerate(self._messages)
                    if i not in deleted
                ],
            )
        )

    def _retr(self, command: Command) -> None:
        (argument,) = expectArguments(command, 1, 1)
        index = self._index(argument)
        self._retrieved.add(index)
        self._retrieve(index, None)

    def _top(self, command: Command) -> None:
        argument, count = expectArguments(command, 2, 2)
        index = self._index(argument)
        try:
            lines = parseNumber(count)
        except POP3Reply:
            raise R.SYNTAX_ERROR.withText("Invalid line count")
        self._retrieve(index, lines)

    def _retrieve(self, index: int, lines: int | None) -> None:
        # The message is stuffed in a callback on the hook's Deferred, whose
        # result then is the stuffed copy alone: the unstuffed one is
        # dropped before the first byte goes out.
        self.awaitHook(
            thenCall(
                invokeHook(self._maildrop.retrieve, index),
                lambda data: self._prepare(data, lines),
            ),
            self._sendMessage,
            hook="retrieve",
        )

    def _dele(self, command: Command) -> None:
        (argument,) = expectArguments(command, 1, 1)
        index = self._index(argument)
        self._deleted.add(index)
        self._marksChanged()
        self._send(ok(f"Message {index + 1} deleted"))

    def _noop(self, command: Command) -> None:
        expectArguments(command, 0, 0)
        self._send(R.OK)

    def _rset(self, command: Command) -> None:
        expectArguments(command, 0, 0)
        self._deleted = set()
        self._marksChanged()
        count, size = self._totals()
        self._send(ok(f"Maildrop has {_count(count, 'message')} ({size} octets)"))

    def _marksChanged(self) -> None:
        maildrop = self._maildrop
        if IMaildropMarks.providedBy(maildrop):
            self.notifyHook(
                maildrop.marksChanged, "marksChanged", frozenset(self._deleted)
            )

    # Sending a message.

    def _prepare(self, data: object, lines: int | None) -> _Outgoing:
        """
        What RETR or TOP sends of a message the maildrop gave.
        """
        if not isinstance(data, bytes):
            self._log.error(
                "POP3 retrieve returned {kind}, not bytes", kind=type(data).__name__
            )
            raise R.TEMPORARY_FAILURE
        # IMaildrop.retrieve gives CRLF line ends: converting here would
        # cost two more passes over every message.
        if lines is None:
            first = ok(f"{len(data)} octets")
        else:
            data = topOfMessage(data, lines)
            first = ok("Top of message follows")
        dot, body, tail = stuffedParts(data)
        return first.format() + dot, body, tail

    def _sendMessage(self, outgoing: _Outgoing) -> None:
        head, body, tail = outgoing
        del outgoing
        if len(body) <= self.factory.chunkSize and not self.writePaused:
            # One write: no stream to hold input for, and no pause and
            # resume of the transport's reading (two system calls).
            self.write(head + body + tail)
            return
        self._streamHead = head
        self._streamTail = tail
        self._stream = body
        self._streamAt = 0
        self.hold(_STREAM)
        # The idle clock now measures the reader's progress (writeResumed).
        self.setTimeout(self.factory.timeout)
        self._pump()

    def writeResumed(self) -> None:
        if self._stream is not None:
            self.resetTimeout()
            self._pump()

    def _pump(self) -> None:
        """
        Write chunks of the message while the transport takes them; the
        last one ends the stream and lets the next command be read.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            chunk = self.factory.chunkSize
            while True:
                body = self._stream
                if body is None or self.closed or self.writePaused:
                    return
                at = self._streamAt
                end = at + chunk
                head, self._streamHead = self._streamHead, b""
                if end >= len(body):
                    self._stream = None
                    self.write(head + (body[at:] if at else body) + self._streamTail)
                    break
                self._streamAt = end
                self.write(head + body[at:end] if head else body[at:end])
        finally:
            self._pumping = False
        self.release(_STREAM)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise R.SYNTAX_ERROR.withText("Arguments must be UTF-8")


_HANDLERS: dict[str, Callable[[POP3ServerProtocol, Command], None]] = {
    "CAPA": POP3ServerProtocol._capa,
    "USER": POP3ServerProtocol._userCommand,
    "PASS": POP3ServerProtocol._pass,
    "APOP": POP3ServerProtocol._apop,
    "AUTH": POP3ServerProtocol._auth,
    "STLS": POP3ServerProtocol._stls,
    "QUIT": POP3ServerProtocol._quit,
    "STAT": POP3ServerProtocol._stat,
    "LIST": POP3ServerProtocol._list,
    "UIDL": POP3ServerProtocol._uidl,
    "RETR": POP3ServerProtocol._retr,
    "TOP": POP3ServerProtocol._top,
    "DELE": POP3ServerProtocol._dele,
    "NOOP": POP3ServerProtocol._noop,
    "RSET": POP3ServerProtocol._rset,
}


#: What a refused connection is told, by why.
_REFUSALS = {
    Refusal.SHUTTING_DOWN: R.SHUTTING_DOWN,
    Refusal.BLOCKED: R.BLOCKED,
}

#: Refusals of a well-formed command about a message that is not there:
#: a client working through its maildrop meets them in normal use, so they
#: do not count toward the error limit (which is for clients that speak
#: the protocol wrong, or guess passwords).
_NOT_PROTOCOL_ERRORS = frozenset({R.NO_SUCH_MESSAGE, R.MESSAGE_DELETED})


def _count(number: int, noun: str) -> str:
    """
    C{"1 message"}, C{"2 messages"}.
    """
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
