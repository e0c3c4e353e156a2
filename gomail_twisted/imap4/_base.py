# -*- test-case-name: tests.test_imap4_server -*-
"""
What every IMAP4 command handler stands on: the connection's state
(L{ServerBase}), how a command ends (L{ServerBase.complete}), and how
store errors become statuses (L{storeStatus}).

The commands are methods of mixins, one module per group (C{_auth},
C{_mailboxes}, C{_select}, C{_fetch}, C{_searching}, C{_storing},
C{_transfer}), each a subclass of L{ServerBase};
L{IMAP4Server<gomail_twisted.imap4.server.IMAP4Server>} joins them and
frames the commands.

A handler writes its untagged responses and returns the tagged status:
L{None} for C{OK}, an L{IMAPStatus}, L{ANSWERED} when it answered (or will
answer) itself, or a Deferred or coroutine of one of those.  Raising an
L{IMAPStatus}, or a store error (L{storeStatus}), refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted._hooks import HookServerProtocol
from gomail_twisted.connection import Refusal
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._commands import Command
from gomail_twisted.imap4._selected import SelectedMailbox
from gomail_twisted.imap4._state import State
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._values import ConnectionInfo
from gomail_twisted.imap4.interfaces import IIMAPSession
from gomail_twisted.maildir import errors as storeErrors

if TYPE_CHECKING:
    from gomail_twisted.imap4.factory import IMAP4ServerFactory

#: What a handler returns when it has sent the tagged response itself (or
#: will, as IDLE and AUTHENTICATE do).
ANSWERED = object()

#: A peer blocked by IP access control, told instead of the greeting (RFC
#: 3501 7.1.5: BYE, then the server closes); C{UNAVAILABLE} (RFC 5530 3),
#: since the block ends and a later attempt may succeed.
BLOCKED = IMAPStatus(
    "BYE",
    "Access denied: too many failed logins or connections from you",
    "UNAVAILABLE",
)

#: Commands during which no EXPUNGE may be sent (RFC 3501 7.4.1), unless
#: given as UID commands.
_NO_EXPUNGE = frozenset({"FETCH", "STORE", "SEARCH"})


def storeStatus(failure: Failure, tryCreate: bool = False) -> Failure | IMAPStatus:
    """
    The status for a store error (RFC 5530 codes), or the failure itself
    when it is not one.

    @param failure: what the store raised.
    @param tryCreate: a missing folder is C{[TRYCREATE]} (APPEND, COPY,
        MOVE: RFC 3501 6.3.11) rather than C{[NONEXISTENT]}.
    @return: the status, or C{failure}.
    """
    error = failure.value
    if isinstance(error, storeErrors.NoSuchFolder):
        return S.TRY_CREATE if tryCreate else S.NO_SUCH_MAILBOX
    if isinstance(error, storeErrors.FolderExists):
        return IMAPStatus.no("Mailbox already exists", "ALREADYEXISTS")
    if isinstance(error, storeErrors.ReadOnlyFolder):
        return S.READ_ONLY
    if isinstance(error, storeErrors.StoreFull):
        return S.OVER_QUOTA
    if isinstance(error, (storeErrors.InvalidName, storeErrors.NameTooLong)):
        return IMAPStatus.no(f"Invalid mailbox name: {error}", "CANNOT")
    if isinstance(error, storeErrors.TooManyKeywords):
        return IMAPStatus.no("Too many keywords in the mailbox", "LIMIT")
    if isinstance(error, storeErrors.NoSuchMessage):
        return IMAPStatus.no("Some messages were expunged", "EXPUNGEISSUED")
    if isinstance(error, storeErrors.StoreError):
        return S.TEMPORARY_FAILURE
    return failure


class ServerBase(HookServerProtocol[IMAPStatus]):
    """
    One IMAP4 connection: its state, and what every command uses.

    @ivar factory: the factory, holding the configuration.
    @ivar state: one of L{State}.
    @ivar session: the backend's L{IIMAPSession} for this connection.
    @ivar account: the logged-in user's account, or L{None}.
    @ivar selected: the selected mailbox, or L{None}.
    @ivar enabled: the extensions the client turned on with ENABLE (RFC
        5161), such as C{CONDSTORE}.
    @ivar info: the connection, as the backend was told it.
    """

    delimiter = b"\r\n"

    factory: IMAP4ServerFactory
    _log = Logger()
    replyType = IMAPStatus
    temporaryFailure = S.TEMPORARY_FAILURE
    hookFailureFormat = "IMAP hook {hook} failed for {peer}"
    internalErrorFormat = "IMAP internal error for {peer}"

    def __init__(self) -> None:
        self.state = State.NOT_AUTHENTICATED
        self.session: Any = None
        self.account: Any = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.info: ConnectionInfo | None = None
        # The command being framed: its lines, the literals between them,
        # and its size so far.
        self._lines: list[bytes] = []
        self._literals: list[object] = []
        self._size = 0
        # The literal being read: its bytes, or the sink it streams to,
        # and how many bytes are still to come.
        self._literal: bytearray | None = None
        self._sink: Any = None
        self._left = 0
        self._refused: IMAPStatus | None = None
        # A command answered later (IDLE, AUTHENTICATE): its tag, and what
        # to do with the next line.
        self._pendingTag: str | None = None
        self._onLine: Callable[[bytes], None] | None = None
        self._writable: list[Deferred[None]] = []

    # Connection life.

    def connectionMade(self) -> None:
        self.MAX_LENGTH = self.factory.maxLineLength
        super().connectionMade()

    def connectionReady(self) -> None:
        self._startSession(greet=True)

    def tlsReady(self) -> None:
        # RFC 3501 6.2.1: a new session, told the TLS facts; no greeting.
        self._startSession(greet=False)

    def refuseConnection(self, refusal: Refusal) -> None:
        if refusal is Refusal.SHUTTING_DOWN:
            self._untagged(S.SHUTTING_DOWN)
        elif refusal is Refusal.BLOCKED:
            self._untagged(BLOCKED)
        else:
            self._untagged(S.TOO_MANY_CONNECTIONS)

    def sendIdleNotice(self) -> None:
        self._untagged(S.IDLE_TIMEOUT)

    def sendShutdownNotice(self) -> None:
        self._untagged(S.SHUTTING_DOWN)

    def sendTooManyErrors(self) -> None:
        self._untagged(S.TOO_MANY_ERRORS)

    def isBetweenCommands(self) -> bool:
        return (
            super().isBetweenCommands() and not self._lines and self._pendingTag is None
        )

    def writeResumed(self) -> None:
        waiting, self._writable = self._writable, []
        if waiting:
            # The reader made progress; the server is busy again.
            self.setTimeout(None)
        for d in waiting:
            d.callback(None)

    def whenWritable(self) -> Deferred[None] | None:
        """
        For a handler that streams a large response: L{None} when it may
        write more now, or a Deferred that fires once the transport has
        drained.

        While it waits, the idle clock measures the reader's progress: a
        client that reads nothing for C{timeout} seconds is dropped.

        @return: L{None} or a Deferred.
        """
        if not self.writePaused:
            return None
        d: Deferred[None] = Deferred()
        self._writable.append(d)
        self.setTimeout(self.factory.timeout)
        return d

    def hold(self, reason: str) -> None:
        super().hold(reason)
        if self._writable:
            # Waiting for the reader: its progress is what the clock
            # measures, even while the command is in hand.
            self.setTimeout(self.factory.timeout)

    def timeoutConnection(self) -> None:
        if self._writable:
            # The reader stopped reading mid-response: nothing can be said.
            self._log.info("IMAP reader stalled: {peer}", peer=self.peer[0])
            self.abort()
            waiting, self._writable = self._writable, []
            for d in waiting:
                d.callback(None)
            return
        super().timeoutConnection()

    def dataReceived(self, data: bytes) -> None:
        # Any octet is a sign of life, not only a whole line (RFC 3501 5.4
        # speaks of inactivity).
        self.resetTimeout()
        super().dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._endSession()
        waiting, self._writable = self._writable, []
        super().connectionLost(reason)
        for d in waiting:
            # A streaming handler finds the connection closed and stops.
            d.callback(None)

    def _startSession(self, greet: bool) -> None:
        info = self.info = self.connectionInfo(self.factory.hostname)

        def started(session: Any) -> None:
            self.session = session
            if greet:
                self._untagged(
                    IMAPStatus.ok(
                        f"{self.factory.hostname} IMAP4rev1 server ready",
                        "CAPABILITY " + " ".join(self.capabilities()),
                    )
                )

        def refused(status: IMAPStatus) -> None:
            self._untagged(IMAPStatus("BYE", status.text, status.code))
            self.closeConnection()

        self.startSession(
            self.factory.backend, info, IIMAPSession, started, refused, S.NOT_AVAILABLE
        )

    def _endSession(self) -> None:
        self.deselect()
        self.account = None
        session, self.session = self.session, None
        if session is not None:
            self.notifyHook(session.logout, "logout")

    def deselect(self) -> None:
        """
        Close the selected mailbox, if any, and go back to the
        authenticated state.
        """
        selected, self.selected = self.selected, None
        if selected is not None:
            selected.close()
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    # Facts the handlers ask for.

    @property
    def isTLS(self) -> bool:
        """
        Whether the connection is under TLS.
        """
        return self.info is not None and self.info.tls is not None

    @property
    def passwordsAllowed(self) -> bool:
        """
        Whether LOGIN and AUTHENTICATE PLAIN may be used now: under TLS,
        or when the operator allowed plain text (RFC 3501 6.2.3, 11.2).
        """
        return self.isTLS or self.factory.allowPlaintextAuth

    def capabilities(self) -> list[str]:
        """
        @return: the capabilities to announce now (RFC 3501 7.2.1).
        """
        return self.factory.capabilities(
            authenticated=self.state is not State.NOT_AUTHENTICATED,
            passwords=self.passwordsAllowed,
            startTLS=self.factory.tls is not None and not self.isTLS,
        )

    # Writing.

    def _untagged(self, status: IMAPStatus) -> None:
        self.write(status.format())

    def refuse(self, reply: IMAPStatus) -> None:
        # Only for failures outside a command (awaitHook's default).
        self._untagged(reply)

    def isRefusal(self, reply: IMAPStatus) -> bool:
        """
        A returned status other than C{OK} refuses.
        """
        return not reply.isOK

    def complete(self, tag: str, status: IMAPStatus, command: Command | None) -> None:
        """
        End a command: send what the selected mailbox has to tell, then
        the tagged status; after LOGOUT, close.

        @param tag: the command's tag.
        @param status: its status.
        @param command: the command, or L{None} when it did not parse.
        """
        if self.closed:
            return
        if self.selected is not None:
            expunge = command is None or command.uid or command.name not in _NO_EXPUNGE
            self.write(self.selected.updates(expunge))
            if self.selected.gone:
                self._untagged(S.MAILBOX_GONE)
                self.closeConnection()
                return
        self.write(status.format(tag))
        if status.kind == "BAD":
            self.countError()
        if self.state is State.LOGOUT:
            self.closeConnection()
            return
        self.closeIfShuttingDown()

    # Continuations (AUTHENTICATE, IDLE).

    def expectLine(self, tag: str, onLine: Callable[[bytes], None]) -> None:
        """
        Give the next line the client sends to C{onLine} rather than read
        it as a command (a SASL response, IDLE's C{DONE}).

        @param tag: the tag of the command waiting for it.
        @param onLine: called with the line.
        """
        self._pendingTag = tag
        self._onLine = onLine

    def finishPending(self, status: IMAPStatus | None) -> None:
        """
        Answer the command that waited for a line (L{expectLine}).

        @param status: its status, or L{None} when it was answered already.
        """
        tag, self._pendingTag = self._pendingTag, None
        self._onLine = None
        if tag is not None and status is not None:
            self.complete(tag, status, None)
