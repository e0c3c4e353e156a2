# -*- test-case-name: tests.test_smtp_server -*-
"""
The ESMTP server (RFC 5321): a L{LineReceiver} that reads commands, asks
the application's hooks (L{ISMTPSession}) at each step, and answers.

Extensions, each implemented as well as advertised: PIPELINING (RFC 2920),
SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531),
ENHANCEDSTATUSCODES (RFC 2034, RFC 3463), STARTTLS (RFC 3207) and AUTH PLAIN
and LOGIN (RFC 4954).  Behind an C{ssl:} endpoint the same factory serves
implicit TLS (RFC 8314).

Replies go out strictly in command order: while a hook's Deferred is pending
the protocol stops reading, and pipelined commands wait in the buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, final

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted._hooks import HookServerProtocol, invokeHook, thenCall
from gomail_twisted.connection import Refusal
from gomail_twisted.message import Headers, splitHeaderBlock
from gomail_twisted.sasl import (
    SASLCancelled,
    SASLExchange,
    SASLMalformed,
    decodeResponse,
    encodeChallenge,
    newExchange,
)
from gomail_twisted.smtp import _reply as R
from gomail_twisted.smtp._data import DataReader
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp._state import COMMANDS, State, refusal
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    Envelope,
    Greeting,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
)
from gomail_twisted.smtp._wire import (
    checkHeloName,
    checkMailParameters,
    checkRcptParameters,
    parsePathArgument,
    receivedHeaderHead,
    receivedHeaderTail,
    receivedProtocol,
    requireASCII,
    splitCommand,
)
from gomail_twisted.smtp.interfaces import (
    ISMTPAuthSession,
    ISMTPSession,
)

if TYPE_CHECKING:
    from gomail_twisted.smtp.factory import SMTPServerFactory

#: RFC 5321 4.5.3.1.4: a command line, CRLF included.
MAX_COMMAND_LINE = 512
#: The MAIL line, raised by the extensions we offer that add parameters to
#: it: SIZE (RFC 1870 3: 26), SMTPUTF8 (RFC 6531 3.4: 10), AUTH= (RFC 4954 5:
#: 500) and BODY=8BITMIME (RFC 6152, which names no figure: its 14 octets).
MAX_MAIL_LINE = MAX_COMMAND_LINE + 26 + 10 + 500 + 14
#: RFC 4954 4: AUTH lines may be this long; also the hard bound of the line
#: buffer, past which the connection is closed.
MAX_AUTH_LINE = 12288

#: Replies that tell of a protocol error, counted toward C{maxErrors}: an
#: unknown, malformed or out-of-sequence command (RFC 5321 4.2.3: 500-504,
#: 555), one that needs TLS first (530, 538), and a failed authentication
#: (535), so that one connection cannot guess passwords for ever.  Other
#: refusals (a recipient refused by the backend, a message too big) do not
#: bring a client closer to being cut off.
_PROTOCOL_ERRORS = frozenset({500, 501, 502, 503, 504, 530, 535, 538, 555})

_Mode = Literal["command", "auth", "data"]


@final
class _MessageLogged:
    def __repr__(self) -> str:
        return "MESSAGE_LOGGED"


#: What a message hook (L{ISMTPSession.message}) may return, or fire its
#: Deferred with, once it has logged the message's acceptance itself, with
#: its queue identifier, peer, sender and recipients: the server then logs
#: no line of its own for it, so that a message costs one log line.
MESSAGE_LOGGED = _MessageLogged()


class SMTPServerProtocol(HookServerProtocol[SMTPReply]):
    """
    One ESMTP connection.

    @ivar factory: the factory, holding the configuration.
    @ivar _state: between commands, one of L{State}: C{CONNECTED} (no
        HELO yet), C{READY}, C{MAIL}, C{RCPT}.
    @ivar _mode: how incoming bytes are read: C{"command"} lines,
        C{"auth"} SASL responses, C{"data"} raw data block.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = MAX_AUTH_LINE

    factory: SMTPServerFactory
    _log = Logger()
    replyType = SMTPReply
    temporaryFailure = R.TEMPORARY_FAILURE
    hookFailureFormat = "SMTP hook {hook} failed for {peer}"
    internalErrorFormat = "SMTP internal error for {peer}"

    if TYPE_CHECKING:
        # The inherited methods this class uses, which Twisted leaves
        # unannotated.
        def setLineMode(self, extra: bytes = b"") -> object: ...
        def setRawMode(self) -> None: ...

    def __init__(self) -> None:
        self._state = State.CONNECTED
        self._mode: _Mode = "command"
        self._session: Any = None
        self._info: ConnectionInfo | None = None
        self._heloName = ""
        self._extended = False
        self._login: str | None = None
        self._mailFrom: MailFrom | None = None
        self._recipients: list[Recipient] = []
        self._data: DataReader | None = None
        self._headersHook: Deferred[Any] | None = None
        self._authExchange: SASLExchange | None = None
        self._queueID = ""
        self._traceLength = 0
        self._traceKey: tuple[str, str, ConnectionInfo] | None = None
        self._traceHead = b""

    # Connection life (the words; L{LineServerProtocol} decides when).

    def connectionReady(self) -> None:
        self._startSession(greet=True)

    def tlsReady(self) -> None:
        # RFC 3207 4.2: a new session, told the TLS facts; no greeting.
        self._startSession(greet=False)

    def refuseConnection(self, refusal: Refusal) -> None:
        # A blocked peer gets 554 instead of the 220 greeting (RFC 5321
        # 3.1), and is closed at once rather than waited on for QUIT: a
        # blocked peer must not hold a connection slot.
        self._send(_REFUSALS.get(refusal, R.TOO_MANY_CONNECTIONS))

    def sendIdleNotice(self) -> None:
        self._send(R.IDLE_TIMEOUT)

    def sendShutdownNotice(self) -> None:
        self._send(R.SHUTTING_DOWN)

    def sendTooManyErrors(self) -> None:
        self._send(R.TOO_MANY_ERRORS)

    def isBetweenCommands(self) -> bool:
        # A message being received is finished and answered first.
        return self._data is None and super().isBetweenCommands()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._data = None
        self._endSession()
        super().connectionLost(reason)

    def _close(self) -> None:
        self._data = None
        self.closeConnection()

    def _startSession(self, greet: bool) -> None:
        info = self._info = self.connectionInfo(self.factory.hostname)

        def started(session: Any) -> None:
            self._session = session
            if greet:
                self._send(self.factory.greeting, enhanced=False)

        def refused(reply: SMTPReply) -> None:
            self._send(reply, enhanced=False)
            self._close()

        self.startSession(
            self.factory.backend, info, ISMTPSession, started, refused, R.NOT_AVAILABLE
        )

    def _endSession(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self.notifyHook(session.logout, "logout")

    # Writing replies.

    def _send(self, reply: SMTPReply, enhanced: bool = True) -> None:
        self.write(reply.format(enhanced and self._extended))

    def _reply(self, reply: SMTPReply, enhanced: bool = True) -> None:
        """
        Answer a command; count protocol errors toward the error limit.
        """
        self.write(reply.format(enhanced and self._extended))
        if reply.code in _PROTOCOL_ERRORS:
            self.countError()

    refuse = _reply

    def isRefusal(self, reply: SMTPReply) -> bool:
        """
        A returned reply replaces the positive one only if it is positive.
        """
        return not reply.isPositive

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
            except SMTPReply as e:
                self._reply(e)
            return
        if self._mode != "command":
            return
        verb, argument = splitCommand(line)
        if len(line) + 2 > MAX_COMMAND_LINE and len(line) + 2 > _LINE_LIMITS.get(
            verb, MAX_COMMAND_LINE
        ):
            self._reply(R.LINE_TOO_LONG)
            return
        allowed = _ALLOWED.get(verb)
        if allowed is None or self._state not in allowed:
            self._reply(refusal(verb, self._state) or R.BAD_SEQUENCE)
            return
        try:
            _HANDLERS[verb](self, argument)
        except SMTPReply as e:
            self._reply(e)
        except Exception:
            # A bug of ours must cost this command, not the connection.
            self._log.failure(
                "SMTP internal error on {verb} from {peer}",
                verb=verb,
                peer=self.peer[0],
            )
            self._reply(R.TEMPORARY_FAILURE)

    def lineLengthExceeded(self, line: bytes) -> int | None:
        # Past the hard bound there is no telling where a command starts.
        self._log.info("SMTP line too long from {peer}", peer=self.peer[0])
        self._send(R.LINE_TOO_LONG)
        self._close()
        return None

    def rawDataReceived(self, data: bytes) -> None:
        reader = self._data
        if reader is None or self.closed:
            return
        self.resetTimeout()
        hadHeaders = reader.headerBlock is not None
        rest = reader.feed(data)
        if not hadHeaders and reader.headerBlock is not None and not reader.draining:
            self._callHeadersHook(reader, reader.headerBlock)
        if rest is None:
            return
        self._data = None
        self._mode = "command"
        self._endOfData(reader)
        # A shutdown that came during the message closes once it is answered.
        self.closeIfShuttingDown()
        self.setLineMode(rest)

    # Commands.

    def _helo(self, argument: bytes, extended: bool = False) -> None:
        name = checkHeloName(argument)
        if self._state in (State.MAIL, State.RCPT):
            self._abortTransaction()

        def greeted(result: object) -> None:
            self._heloName = name
            self._extended = extended
            self._state = State.READY
            if isinstance(result, SMTPReply):
                self._reply(result, enhanced=False)
            elif extended:
                # The keyword lines are formatted once per factory and state.
                self.write(
                    b"250-"
                    + self._hello(name).encode("utf-8")
                    + b"\r\n"
                    + self.factory.capabilityLines(
                        self.factory.tls is not None and not self._isTLS(),
                        self._authOffered(),
                    )
                )
            else:
                self._reply(SMTPReply(250, None, self._hello(name)), enhanced=False)

        self.awaitHook(
            invokeHook(self._session.helo, Greeting(name, extended)),
            greeted,
            hook="helo",
        )

    def _ehlo(self, argument: bytes) -> None:
        self._helo(argument, extended=True)

    def _hello(self, name: str) -> str:
        return f"{self.factory.hostname} Hello {name} [{self.peer[0]}]"

    def _isTLS(self) -> bool:
        return self._info is not None and self._info.tls is not None

    def _authOffered(self) -> bool:
        return (
            ISMTPAuthSession.providedBy(self._session)
            and self._login is None
            and (self._isTLS() or self.factory.allowPlaintextAuth)
        )

    def _mail(self, argument: bytes) -> None:
        path = parsePathArgument(argument, "FROM", isSender=True)
        params = checkMailParameters(path.params, self._extended)
        requireASCII(path.address, params.smtputf8)
        if params.size is not None and params.size > self.factory.maxMessageSize:
            raise R.MESSAGE_TOO_BIG
        if self.factory.requireTLS and not self._isTLS():
            raise R.MUST_ISSUE_STARTTLS
        mailFrom = MailFrom(
            address=path.address,
            params=path.params,
            size=params.size,
            body=params.body,
            smtputf8=params.smtputf8,
            login=self._login,
            heloName=self._heloName,
        )

        def accepted(result: object) -> None:
            self._mailFrom = mailFrom
            self._recipients = []
            self._state = State.MAIL
            self._reply(result if isinstance(result, SMTPReply) else R.SENDER_OK)

        self.awaitHook(
            invokeHook(self._session.mailFrom, mailFrom), accepted, hook="mailFrom"
        )

    def _rcpt(self, argument: bytes) -> None:
        assert self._mailFrom is not None
        if len(self._recipients) >= self.factory.maxRecipients:
            raise R.TOO_MANY_RECIPIENTS
        path = parsePathArgument(argument, "TO", isSender=False)
        checkRcptParameters(path.params, self._extended)
        requireASCII(path.address, self._mailFrom.smtputf8)
        recipient = Recipient(path.address, path.params)

        def accepted(result: object) -> None:
            self._recipients.append(recipient)
            self._state = State.RCPT
            self._reply(result if isinstance(result, SMTPReply) else R.RECIPIENT_OK)

        self.awaitHook(
            invokeHook(self._session.rcptTo, recipient), accepted, hook="rcptTo"
        )

    def _dataCommand(self, argument: bytes) -> None:
        if argument.strip():
            raise R.SYNTAX_ERROR.withText("DATA takes no argument")
        self._data = DataReader(
            self.factory.maxMessageSize, self.factory.maxDataLineLength
        )
        self._headersHook = None
        self._mode = "data"
        self._reply(R.START_DATA)
        self.setRawMode()

    def _callHeadersHook(self, reader: DataReader, block: bytes) -> None:
        outcome = invokeHook(self._session.headers, Headers(block))
        if outcome is None:
            return
        if isinstance(outcome, Deferred):
            # The data keeps coming meanwhile; the end of data waits for it.
            self._headersHook = outcome.addBoth(self._headersChecked, reader)
        else:
            self._headersChecked(outcome, reader)

    def _headersChecked(self, result: object, reader: DataReader) -> None:
        if isinstance(result, Failure):
            if result.check(SMTPReply):
                assert isinstance(result.value, SMTPReply)
                reader.refuse(result.value)
            else:
                self.logHookFailure(result, "headers")
                reader.refuse(R.TEMPORARY_FAILURE)
        elif isinstance(result, SMTPReply) and not result.isPositive:
            reader.refuse(result)

    def _endOfData(self, reader: DataReader) -> None:
        pending, self._headersHook = self._headersHook, None
        outcome: object
        if pending is None:
            try:
                outcome = self._deliver(reader)
            except Exception:
                outcome = Failure()
        else:
            outcome = pending.addCallback(lambda _: self._deliver(reader))
        self.awaitHook(outcome, self._delivered, self._abortTransaction, hook="message")

    def _deliver(self, reader: DataReader) -> object:
        # Raises the refusal when the reader is draining.
        message = self._buildMessage(reader)
        if reader.headerBlock is not None:
            # The headers hook has had its say.
            return invokeHook(self._session.message, message)
        # No empty line in the data: the headers hook sees it all now.
        block = splitHeaderBlock(message.raw[self._traceLength :])[0]
        checked = invokeHook(self._session.headers, Headers(block))
        return thenCall(checked, lambda result: self._afterHeaders(result, message))

    def _afterHeaders(self, result: object, message: ReceivedMessage) -> object:
        if isinstance(result, SMTPReply) and not result.isPositive:
            raise result
        return invokeHook(self._session.message, message)

    def _delivered(self, result: object) -> None:
        assert self._mailFrom is not None
        if self.factory.logMessages and result is not MESSAGE_LOGGED:
            self._log.info(
                "SMTP {queueID} accepted from {peer}: <{sender}> to {recipients}",
                queueID=self._queueID,
                peer=self.peer[0],
                sender=self._mailFrom.address,
                recipients=",".join(r.address for r in self._recipients),
            )
        self._finishTransaction()
        if isinstance(result, SMTPReply):
            self._reply(result)
        else:
            code = b"250 2.0.0 " if self._extended else b"250 "
            self.write(code + b"OK: queued as " + self._queueID.encode() + b"\r\n")

    def _buildMessage(self, reader: DataReader) -> ReceivedMessage:
        mailFrom = self._mailFrom
        info = self._info
        assert mailFrom is not None and info is not None
        queueID = self._queueID = self.factory.nextQueueID()
        tls = info.tls
        protocol = receivedProtocol(
            self._extended, tls is not None, self._login is not None, mailFrom.smtputf8
        )
        # The start of the trace header changes only with the session.
        key = (self._heloName, protocol, info)
        if key != self._traceKey:
            self._traceKey = key
            self._traceHead = receivedHeaderHead(
                heloName=self._heloName,
                peerHost=self.peer[0],
                hostname=self.factory.hostname,
                protocol=protocol,
                tlsComment=tls.comment() if tls else None,
            )
        recipients = self._recipients
        trace = self._traceHead + receivedHeaderTail(
            queueID, [r.address for r in recipients], self.factory.traceDate()
        )
        self._traceLength = len(trace)
        return ReceivedMessage(
            raw=reader.finish(trace),
            envelope=Envelope(mailFrom, tuple(recipients)),
            connection=info,
            queueID=queueID,
        )

    def _finishTransaction(self) -> None:
        self._mailFrom = None
        self._recipients = []
        self._state = State.READY

    def _abortTransaction(self, reply: SMTPReply | None = None) -> None:
        """
        Drop the envelope and tell the session; answer C{reply} if given.
        """
        self._finishTransaction()
        if self._session is not None:
            self.notifyHook(self._session.reset, "reset")
        if reply is not None:
            self._reply(reply)

    def _rset(self, argument: bytes) -> None:
        if argument.strip():
            raise R.SYNTAX_ERROR.withText("RSET takes no argument")
        greeted = self._state is not State.CONNECTED

        def reset(result: object) -> None:
            self._mailFrom = None
            self._recipients = []
            if greeted:
                self._state = State.READY
            self._reply(result if isinstance(result, SMTPReply) else R.RESET_OK)

        self.awaitHook(invokeHook(self._session.reset), reset, hook="reset")

    def _noop(self, argument: bytes) -> None:
        self._reply(R.OK)

    def _quit(self, argument: bytes) -> None:
        self._reply(R.BYE)
        self._close()

    def _vrfy(self, argument: bytes) -> None:
        if not argument.strip():
            raise R.SYNTAX_ERROR.withText("Syntax: VRFY address")
        self._reply(R.CANNOT_VRFY)

    def _help(self, argument: bytes) -> None:
        self._reply(
            R.helpReply(
                self.factory.tls is not None and not self._isTLS(),
                self._authOffered(),
            )
        )

    def _starttls(self, argument: bytes) -> None:
        if self.factory.tls is None:
            raise R.NOT_IMPLEMENTED
        if self._isTLS():
            raise R.ALREADY_TLS
        if argument.strip():
            raise R.SYNTAX_ERROR.withText("STARTTLS takes no argument")
        self._reply(R.READY_FOR_TLS)
        self._state = State.CONNECTED
        self._heloName = ""
        self._extended = False
        self._login = None
        self._endSession()
        # RFC 3207 4.2: nothing sent before the handshake is acted on.
        self.startTLS(self.factory.tls)

    # AUTH (RFC 4954).

    def _auth(self, argument: bytes) -> None:
        if not ISMTPAuthSession.providedBy(self._session):
            raise R.NOT_IMPLEMENTED
        if self._login is not None:
            raise R.ALREADY_AUTHENTICATED
        if not self._isTLS() and not self.factory.allowPlaintextAuth:
            raise R.ENCRYPTION_REQUIRED
        mechanism, _, initial = argument.strip().partition(b" ")
        exchange = newExchange(mechanism.decode("ascii", "replace"))
        if exchange is None:
            raise R.UNKNOWN_MECHANISM
        self._authStep(exchange, initial or None)

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
            self._send(SMTPReply(334, None, encodeChallenge(outcome).decode("ascii")))
        else:
            self._checkCredentials(outcome)

    def _checkCredentials(self, credentials: SMTPCredentials) -> None:
        """
        Ask the session to authenticate; report the outcome to access
        control: a 5xx refusal (RFC 4954 6: 535) is a failed login, a 4xx
        (454, a check that could not be made) is not.  A peer blocked
        since it connected is refused with C{421} and closed, its
        credentials unchecked.
        """
        if self.peerBlocked:
            self._log.info("SMTP AUTH from blocked {peer}", peer=self.peer[0])
            self._send(R.BLOCKED_CLOSING)
            self._close()
            return

        def report(outcome: object) -> object:
            # Whatever became of the connection: a peer that hangs up
            # before the answer is counted all the same.
            if isinstance(outcome, Failure):
                reply = outcome.value
                if isinstance(reply, SMTPReply) and reply.code >= 500:
                    self.reportLogin(False)
            elif not isinstance(outcome, SMTPReply) or outcome.isPositive:
                self.reportLogin(True)
            elif outcome.code >= 500:
                self.reportLogin(False)
            return outcome

        def accepted(identity: object) -> None:
            self._login = identity if isinstance(identity, str) else credentials.login
            self._log.info(
                "SMTP AUTH {mechanism} ok for {login} from {peer}",
                mechanism=credentials.mechanism,
                login=self._login,
                peer=self.peer[0],
            )
            self._reply(R.AUTH_OK)

        def refused(reply: SMTPReply) -> None:
            self._log.info(
                "SMTP AUTH failed from {peer}: {code}",
                peer=self.peer[0],
                code=reply.code,
            )
            self._reply(reply)

        outcome = invokeHook(self._session.authenticate, credentials)
        if isinstance(outcome, Deferred):
            outcome.addBoth(report)
        else:
            report(outcome)
        self.awaitHook(
            outcome,
            accepted,
            refused,
            failure=R.AUTH_TEMPORARY_FAILURE,
            hook="authenticate",
        )


#: What a refused connection is told, by why (RFC 5321 3.1, 3.8).
_REFUSALS = {
    Refusal.SHUTTING_DOWN: R.SHUTTING_DOWN,
    Refusal.BLOCKED: R.BLOCKED,
}

#: The states each verb is legal in, as tuples: a State's hash is a Python
#: call, and a tuple is searched by identity first.
_ALLOWED = {verb: tuple(states) for verb, states in COMMANDS.items()}

#: Commands whose lines may be longer than RFC 5321's 512 octets.
_LINE_LIMITS = {"MAIL": MAX_MAIL_LINE, "AUTH": MAX_AUTH_LINE}

_HANDLERS: dict[str, Callable[[SMTPServerProtocol, bytes], None]] = {
    "HELO": SMTPServerProtocol._helo,
    "EHLO": SMTPServerProtocol._ehlo,
    "MAIL": SMTPServerProtocol._mail,
    "RCPT": SMTPServerProtocol._rcpt,
    "DATA": SMTPServerProtocol._dataCommand,
    "RSET": SMTPServerProtocol._rset,
    "NOOP": SMTPServerProtocol._noop,
    "QUIT": SMTPServerProtocol._quit,
    "VRFY": SMTPServerProtocol._vrfy,
    "HELP": SMTPServerProtocol._help,
    "STARTTLS": SMTPServerProtocol._starttls,
    "AUTH": SMTPServerProtocol._auth,
}
