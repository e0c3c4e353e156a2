# -*- test-case-name: tests.test_connection -*-
"""
What every server of the package shares about a connection, whatever the
protocol it speaks: the limits on connections overall and per peer, the
idle and TLS-handshake timeouts, closing that really closes, write
backpressure, the error budget and a polite shutdown.

A server's factory subclasses L{LimitedServerFactory} and its protocol
L{LineServerProtocol}; the protocol supplies the words (greeting, refusals,
the notices before a close) and the base decides when they are due.

The bounds, and what each one protects:

  - A connection is admitted by L{LimitedServerFactory.admit}, the one place
    where connection counts and IP access control
    (L{gomail_twisted.ipac.IPAccessControl}) decide.  A blocked peer is
    refused before any work: no session, no hook; on implicit TLS it is
    dropped before the handshake, with no word (a refusal could only be
    said once a handshake had been paid for).
  - A TLS handshake, implicit or after STARTTLS, must finish within
    C{tlsHandshakeTimeout}; a peer that never sends its ClientHello cannot
    hold a connection slot.
  - A silent peer is told and closed after C{timeout}; the clock stops
    while the server itself is working (a hook is pending).
  - Closing a TLS connection politely waits for the peer, and a peer that
    never reads keeps unsent replies: after C{closeTimeout} the transport is
    aborted, as C{twisted.web} does with its C{abortTimeout}.
  - Replies waiting in the transport are bounded: the protocol registers as
    the transport's producer, so when the transport's buffer passes its
    high-water mark the protocol stops reading until it drains.  A peer that
    pipelines without reading costs a bounded amount of memory.

Replies go out through L{LineServerProtocol.write}.  On a plain TCP
connection whose transport has nothing waiting to go out, that sends them
at once, and the replies to one read of input together in one C{send}:
Twisted's own write path would register the socket for writing, take a
reactor turn to send and unregister it again, two C{epoll_ctl} calls and a
turn per reply, which for a client that waits for each reply before its
next command is most of the cost of a command.  Whatever the socket does
not take at once goes to the transport, so backpressure is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import tcp
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHandshakeListener,
    IOpenSSLServerConnectionCreator,
    IPushProducer,
    ISSLTransport,
    ITLSTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted._admission import LimitedServerFactory, Refusal
from gomail_twisted.tls import TLSInfo, tlsInfo

if TYPE_CHECKING:
    pass

__all__ = [
    "ConnectionInfo",
    "LimitedServerFactory",
    "LineServerProtocol",
    "Refusal",
    "SessionBackend",
    "peerAddress",
]

#: The hold reason of write backpressure; every other reason also stops the
#: idle clock, since it is the server, not the peer, that is busy.
_WRITE = "write"

#: Replies to one read of input are gathered into one C{send} up to this
#: many octets; well below a transport's high-water mark (64 KiB), so that
#: what the socket does not take never overfills the transport's buffer.
_GATHER_LIMIT = 8192

#: The attributes of Twisted's TCP transport that tell whether it has
#: anything waiting to go out; without them, replies take its own path.
_TRANSPORT_STATE = (
    "socket",
    "dataBuffer",
    "_tempDataLen",
    "connected",
    "disconnecting",
    "_writeDisconnected",
    "TLS",
)


@dataclass(frozen=True)
class ConnectionInfo:
    """
    Who is connected, and how: what every server (SMTP, POP3, ...) tells
    its backend about a new connection.  One type for all of them, so that
    a backend serving several protocols, and access control, read the same
    facts the same way.

    @ivar peerHost: the client's IP address.
    @ivar peerPort: the client's port.
    @ivar localHost: our address on this connection.
    @ivar localPort: our port.
    @ivar hostname: our host name, as the greeting says it.
    @ivar tls: the TLS facts, or L{None} for a plain-text session.
    """

    peerHost: str
    peerPort: int
    localHost: str
    localPort: int
    hostname: str
    tls: TLSInfo | None = None


def peerAddress(address: IAddress) -> tuple[str, int]:
    """
    The host and port of a TCP address; C{("", 0)} for other kinds.

    @param address: from C{transport.getPeer()} or C{getHost()}.
    @return: host and port.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    return (str(host) if host is not None else "", int(port) if port else 0)


class SessionBackend:
    """
    A backend that makes one session per connection with a session class;
    each protocol's backend names its own default class.

    @ivar sessionFactory: called with the L{ConnectionInfo}.
    """

    def __init__(self, sessionFactory: Callable[[ConnectionInfo], Any]) -> None:
        """
        @param sessionFactory: such as a subclass of the protocol's session
            base class.
        """
        self.sessionFactory = sessionFactory

    def newSession(self, info: ConnectionInfo) -> Any:
        """
        @param info: the connection.
        @return: a new session.
        """
        return self.sessionFactory(info)


@implementer(IPushProducer)
class _Backpressure:
    """
    The producer a protocol registers with its own transport: the transport
    pauses it when its write buffer passes the high-water mark and resumes
    it once the buffer drains.
    """

    def __init__(self, protocol: LineServerProtocol) -> None:
        self._protocol = protocol

    def pauseProducing(self) -> None:
        self._protocol.hold(_WRITE)

    def resumeProducing(self) -> None:
        self._protocol.release(_WRITE)
        self._protocol.writeResumed()

    def stopProducing(self) -> None:
        pass


@implementer(IHandshakeListener)
class LineServerProtocol(LineReceiver, TimeoutMixin):
    """
    The connection half of a line-based server protocol.

    A subclass provides the words: L{connectionReady} (greet),
    L{tlsReady} (STARTTLS done), L{refuseConnection}, L{sendIdleNotice},
    L{sendShutdownNotice}, L{sendTooManyErrors}, and may extend
    L{isBetweenCommands}.  It calls L{closeConnection} to close,
    L{hold}/L{release} around work that must finish before more input is
    read, L{countError} for each protocol error, L{startTLS} for STARTTLS,
    and L{closeIfShuttingDown} where a command ends without a hold.

    @ivar factory: the factory, holding the limits.
    @ivar peer: the peer's host and port.
    @ivar closed: the connection is closing or closed: no input is acted
        on any more.
    @ivar handshaking: a TLS handshake is under way.
    @ivar shuttingDown: the server is stopping; the connection closes at the
        next pause between commands.
    @ivar errors: protocol errors so far.
    """

    factory: LimitedServerFactory
    _log = Logger()

    if TYPE_CHECKING:
        # The inherited methods this class uses, which Twisted leaves
        # unannotated.
        def setTimeout(self, period: float | None) -> float | None: ...
        def resetTimeout(self) -> None: ...
        def clearLineBuffer(self) -> bytes: ...
        def lineReceived(self, line: bytes) -> None: ...
        def rawDataReceived(self, data: bytes) -> None: ...
        def setRawMode(self) -> None: ...
        def setLineMode(self, extra: bytes = b"") -> object: ...

    peer: tuple[str, int] = ("", 0)
    closed = False
    handshaking = False
    shuttingDown = False
    errors = 0
    _startedTLS = False
    _handshakeTimer: IDelayedCall | None = None
    _abortTimer: IDelayedCall | None = None
    _holds: frozenset[str] = frozenset()
    # The plain TCP transport that replies may bypass, or None; replies
    # gathered while input is being read, and their size, or None when
    # none is being read.
    _direct: tcp.Connection | None = None
    _gathered: list[bytes] | None = None
    _gatheredSize = 0

    # What a subclass says.

    def connectionReady(self) -> None:
        """
        The connection is admitted (and, for implicit TLS, its handshake is
        done): greet.
        """

    def tlsReady(self) -> None:
        """
        The handshake after L{startTLS} is done: start the session over.
        """

    def refuseConnection(self, refusal: Refusal) -> None:
        """
        Tell a connection that was not admitted why, before it is closed.

        @param refusal: why.
        """

    def sendIdleNotice(self) -> None:
        """
        Tell the peer it was silent too long, before it is closed.
        """

    def sendShutdownNotice(self) -> None:
        """
        Tell the peer the server is stopping, before it is closed.
        """

    def sendTooManyErrors(self) -> None:
        """
        Tell the peer it made too many errors, before it is closed.
        """

    def writeResumed(self) -> None:
        """
        The transport's buffer drained below its low-water mark after
        L{writePaused}: a subclass that streams a large reply writes more.
        """

    def isBetweenCommands(self) -> bool:
        """
        @return: whether no command is in hand, so that a shutdown may close
            the connection now.  A subclass adds its own conditions (a
            message being received, for instance).
        """
        return not (self._holds - {_WRITE})

    # Connection life.

    @property
    def _tx(self) -> ITransport:
        assert self.transport is not None
        return self.transport

    def connectionInfo(self, hostname: str) -> ConnectionInfo:
        """
        Who is connected, and how, as the backend is told it: asked again
        after STARTTLS, when the TLS facts are known.

        @param hostname: our host name, as the greeting says it.
        @return: the connection's facts.
        """
        local = peerAddress(self._tx.getHost())
        return ConnectionInfo(
            peerHost=self.peer[0],
            peerPort=self.peer[1],
            localHost=local[0],
            localPort=local[1],
            hostname=hostname,
            tls=tlsInfo(self.transport),
        )

    def connectionMade(self) -> None:
        transport = self.transport
        if isinstance(transport, tcp.Connection) and all(
            hasattr(transport, name) for name in _TRANSPORT_STATE
        ):
            self._direct = transport
        self.peer = peerAddress(self._tx.getPeer())
        # Each reply goes out as soon as it is written: replies are gathered
        # per read already, and Nagle's algorithm would hold the last piece
        # of one for the peer's delayed ACK.  (TCP, and TLS over it.)
        noDelay = getattr(transport, "setTcpNoDelay", None)
        if noDelay is not None:
            try:
                noDelay(True)
            except OSError:
                pass
        self._tx.registerProducer(_Backpressure(self), True)  # type: ignore[attr-defined]
        refusal = self.factory.admit(self)
        if refusal is not None:
            # The block itself was logged once; a line per knock of a
            # blocked peer would let it fill the disk.
            log = self._log.debug if refusal is Refusal.BLOCKED else self._log.info
            log(
                "Connection from {peer} refused: {why}",
                peer=self.peer[0],
                why=refusal.value,
            )
            if refusal is Refusal.BLOCKED and ISSLTransport.providedBy(self.transport):
                # Implicit TLS: a word could only be said after a handshake,
                # the dearest work there is; a blocked peer gets none.
                # Before the handshake TLS closes by aborting anyway.
                self.abort()
                return
            self.refuseConnection(refusal)
            self.closeConnection()
            return
        if ISSLTransport.providedBy(self.transport):
            # Implicit TLS (RFC 8314): ready once the handshake is done.
            self._awaitHandshake()
            return
        self.setTimeout(self.factory.timeout)
        self.connectionReady()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        self._direct = None
        self._gathered = None
        self.setTimeout(None)
        self._cancelTimers()
        self.factory.connectionClosed(self)

    def callLater(self, period: float, func: Callable[[], None]) -> IDelayedCall:
        # TimeoutMixin's clock: the factory's reactor, a Clock in tests.
        return self.factory.reactor.callLater(period, func)

    def _cancelTimers(self) -> None:
        for timer in (self._handshakeTimer, self._abortTimer):
            if timer is not None and timer.active():
                timer.cancel()
        self._handshakeTimer = self._abortTimer = None

    def closeConnection(self) -> None:
        """
        Close: stop acting on input, let what was written go out, and abort
        the transport if the peer has not gone after C{closeTimeout}.
        """
        if self.closed:
            return
        self.closed = True
        self.setTimeout(None)
        if self._handshakeTimer is not None and self._handshakeTimer.active():
            self._handshakeTimer.cancel()
        self._handshakeTimer = None
        self._abortTimer = self.factory.reactor.callLater(
            self.factory.closeTimeout, self.abort
        )
        self.flush()
        # A transport waits for its producer to go before it closes (TLS
        # would not even send its close_notify); nothing is read any more.
        self._tx.unregisterProducer()  # type: ignore[attr-defined]
        self._tx.loseConnection()

    def abort(self) -> None:
        """
        Drop the connection at once, without a word.
        """
        self.closed = True
        self.setTimeout(None)
        self._cancelTimers()
        # Nothing more is said: gathered replies go with the buffered ones.
        if self._gathered is not None:
            self._gathered = []
            self._gatheredSize = 0
        transport = self.transport
        if transport is not None:
            transport.abortConnection()  # type: ignore[attr-defined]

    def timeoutConnection(self) -> None:
        self._log.info("Idle timeout from {peer}", peer=self.peer[0])
        self.sendIdleNotice()
        self.closeConnection()

    # TLS.

    def _awaitHandshake(self) -> None:
        self.handshaking = True
        self.setTimeout(None)
        self._handshakeTimer = self.factory.reactor.callLater(
            self.factory.tlsHandshakeTimeout, self._handshakeTimedOut
        )

    def _handshakeTimedOut(self) -> None:
        self._handshakeTimer = None
        self._log.info("TLS handshake timeout from {peer}", peer=self.peer[0])
        # Nothing can be said: there is no TLS session to say it in.
        self.abort()

    def startTLS(
        self,
        contextFactory: IOpenSSLServerConnectionCreator,
    ) -> None:
        """
        Start TLS on the connection, after the protocol's own "go ahead"
        reply was written.  Bytes the peer sent after the command are
        dropped (RFC 3207 4.2, RFC 2595 3.1): nothing sent in the clear may
        be taken as sent under TLS.

        @param contextFactory: the server TLS context factory.
        """
        self.clearLineBuffer()
        # The go-ahead goes out in the clear, and nothing after it does.
        self.flush()
        self._direct = None
        self._startedTLS = True
        self._awaitHandshake()
        ITLSTransport(self.transport).startTLS(contextFactory)

    def handshakeCompleted(self) -> None:
        if not self.handshaking or self.closed:
            return
        self.handshaking = False
        if self._handshakeTimer is not None and self._handshakeTimer.active():
            self._handshakeTimer.cancel()
        self._handshakeTimer = None
        self.setTimeout(self.factory.timeout)
        if self._startedTLS:
            self.tlsReady()
        else:
            self.connectionReady()

    # Writing.

    def write(self, data: bytes) -> None:
        """
        Send bytes to the peer, in order with everything written before.

        While input is being read (in L{dataReceived}) replies are gathered
        and sent together when it is done, or at L{flush}; otherwise at
        once.  On a plain TCP connection with nothing waiting to go out they
        go straight to the socket, and what it does not take to the
        transport, whose buffer and backpressure then apply as usual.

        @param data: the bytes.
        """
        gathered = self._gathered
        if gathered or (gathered is not None and self._idle()):
            # Once one reply is gathered, the transport stays idle: all
            # that is written goes through here, and is gathered too.
            gathered.append(data)
            self._gatheredSize += len(data)
            if self._gatheredSize >= _GATHER_LIMIT:
                self.flush()
        elif gathered is None and self._idle():
            self._sendNow(data)
        elif self.transport is not None:
            self.transport.write(data)

    def flush(self) -> None:
        """
        Send the replies gathered so far, before anything else is done with
        the transport (closing it, starting TLS).
        """
        gathered = self._gathered
        if not gathered:
            return
        data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
        gathered.clear()
        self._gatheredSize = 0
        if self._idle():
            self._sendNow(data)
        elif self.transport is not None:
            self.transport.write(data)

    def _idle(self) -> bool:
        """
        Whether the transport is a plain TCP connection, open, with nothing
        waiting to go out: then a reply may go straight to its socket.
        """
        t = self._direct
        return bool(
            t is not None
            and not t.dataBuffer
            and not t._tempDataLen
            and t.connected
            and not t.disconnecting
            and not t._writeDisconnected
            and not t.TLS
        )

    def _sendNow(self, data: bytes) -> None:
        t = self._direct
        assert t is not None
        try:
            sent = t.socket.send(data)
        except OSError:
            # A full socket buffer, or a broken connection, which the
            # transport finds for itself when it tries.
            sent = 0
        if sent < len(data):
            t.write(data[sent:])

    def dataReceived(self, data: bytes) -> None:
        if self._gathered is not None:
            # Within a read already (resumed from inside it).
            LineReceiver.dataReceived(self, data)
            return
        self._gathered = []
        try:
            if self._buffer or self.paused or self._busyReceiving:
                LineReceiver.dataReceived(self, data)
            else:
                self._receive(data)
        finally:
            self.flush()
            self._gathered = None

    def _receive(self, data: bytes) -> None:
        """
        What C{LineReceiver.dataReceived} does, without its buffering, for
        the reads of a client that waits for each reply: one whole line, or
        raw data.  Anything else takes the general path.
        """
        if self.line_mode:
            end = len(data) - len(self.delimiter)
            if end < 0 or end > self.MAX_LENGTH or data.find(self.delimiter) != end:
                LineReceiver.dataReceived(self, data)
                return
            self._busyReceiving = True
            try:
                self.lineReceived(data[:end])
            finally:
                self._busyReceiving = False
            # What the line's handler received meanwhile (raw data it
            # handed back, input it resumed) waits in the buffer; as after
            # any line, none of it is read once the transport is closing.
            transport = self.transport
            if self._buffer and not (transport and transport.disconnecting):  # type: ignore[attr-defined]
                LineReceiver.dataReceived(self, b"")
            return
        self._busyReceiving = True
        try:
            self.rawDataReceived(data)
        finally:
            self._busyReceiving = False
        if self._buffer:
            LineReceiver.dataReceived(self, b"")

    # Holding input.

    def hold(self, reason: str) -> None:
        """
        Stop reading input until L{release} with the same reason; lines
        already received wait too.  Any reason but write backpressure also
        stops the idle clock: the server, not the peer, is busy.

        @param reason: names the hold, so that holds for different reasons
            do not release each other.
        """
        holds = self._holds
        if reason in holds:
            return
        self._holds = holds | {reason}
        if not holds:
            LineReceiver.pauseProducing(self)
        if reason != _WRITE:
            self.setTimeout(None)

    def release(self, reason: str) -> None:
        """
        End a hold; once none is left, go on reading (and act on lines
        already received).  A shutdown that waited for this hold closes the
        connection now.

        @param reason: as given to L{hold}.
        """
        holds = self._holds
        if reason not in holds:
            return
        self._holds = holds - {reason}
        if self.closed:
            return
        if reason != _WRITE and not (self._holds - {_WRITE}):
            self.setTimeout(self.factory.timeout)
        if self.closeIfShuttingDown():
            return
        if not self._holds:
            LineReceiver.resumeProducing(self)

    @property
    def writePaused(self) -> bool:
        """
        Whether the transport's buffer is past its high-water mark: a
        protocol streaming a large reply writes no more until
        L{writeResumed}.
        """
        return _WRITE in self._holds

    @property
    def holding(self) -> bool:
        """
        Whether input is held for any reason.
        """
        return bool(self._holds)

    # Access control.

    @property
    def peerBlocked(self) -> bool:
        """
        Whether the factory's access control blocks the peer now: a server
        asks before checking credentials, so that a connection opened
        before the block cannot go on guessing passwords uncounted.
        """
        control = self.factory.accessControl
        return control is not None and control.isBlocked(self.peer[0])

    def reportLogin(self, succeeded: bool) -> None:
        """
        Tell the factory's access control, if any, of a checked credential:
        a refused one counts toward the peer's block; a good one forgives
        only its count of new connections, never its failures.  Call it for
        every credential the backend refused as wrong (SMTP 535, POP3
        C{-ERR [AUTH]}, IMAP C{NO [AUTHENTICATIONFAILED]}), whether or not
        the peer is still connected, and not for temporary failures (a
        check that could not be made).

        @param succeeded: the credential was accepted.
        """
        control = self.factory.accessControl
        if control is None:
            return
        if succeeded:
            control.loginSucceeded(self.peer[0])
        else:
            control.loginFailed(self.peer[0])

    # Errors and shutdown.

    def countError(self) -> bool:
        """
        Count a protocol error (an unknown or malformed command, a command
        out of sequence); at the factory's C{maxErrors} the peer is told and
        the connection closed.

        @return: whether the connection is now closing for it.
        """
        self.errors += 1
        if self.errors < self.factory.maxErrors or self.closed:
            return False
        self._log.info("Too many errors from {peer}", peer=self.peer[0])
        self.sendTooManyErrors()
        self.closeConnection()
        return True

    def shutdown(self) -> None:
        """
        The server is stopping: tell the peer and close at once if no command
        is in hand, or else as soon as it is answered.
        """
        self.shuttingDown = True
        if self.closed:
            return
        if self.handshaking:
            self.abort()
            return
        self.closeIfShuttingDown()

    def closeIfShuttingDown(self) -> bool:
        """
        Where a command has been answered: if the server is stopping and
        nothing else is in hand, tell the peer and close.

        @return: whether the connection is closing now.
        """
        if not self.shuttingDown or self.closed or not self.isBetweenCommands():
            return False
        self.sendShutdownNotice()
        self.closeConnection()
        return True
