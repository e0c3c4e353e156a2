# -*- test-case-name: tests.test_imap4_server -*-
"""
The IMAP4rev1 server (RFC 3501): a L{LineReceiver} that frames commands
(lines and literals), parses them without I/O
(L{gomail_twisted.imap4._parse}), checks them against the state table
(L{gomail_twisted.imap4._state}) and runs them; the commands themselves
live in modules by group (C{_auth}, C{_mailboxes}, C{_select},
C{_fetch}, C{_searching}, C{_storing}, C{_transfer}).

Commands run one at a time, in the order received: while one is in hand
the protocol reads no further input (pipelined commands wait in the
buffer), so responses never interleave.  A command's handler writes its
untagged responses and returns the tagged status (or a Deferred of it);
the protocol then sends what the selected mailbox has to tell
(L{SelectedMailbox.updates}) and the tagged line.

Literals (RFC 3501 4.3, RFC 7888) are read in raw mode.  The announced
size is checked before anything is read: a synchronizing literal over the
limit is refused at once (no C{+}), a non-synchronizing one over the limit
ends the connection, since its bytes are already on their way.  APPEND's
message literal goes straight to the store (L{IAccount.appendStream}),
never held in memory; other literals count toward a per-command limit.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from gomail_twisted._hooks import invokeHook
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._auth import AuthCommands
from gomail_twisted.imap4._base import ANSWERED, storeStatus
from gomail_twisted.imap4._commands import Append, Command, ParseError
from gomail_twisted.imap4._fetch import FetchCommands
from gomail_twisted.imap4._mailboxes import MailboxCommands
from gomail_twisted.imap4._parse import (
    announcedLiteral,
    appendMessageNext,
    parseCommand,
)
from gomail_twisted.imap4._parsereader import readTag
from gomail_twisted.imap4._searching import SearchCommands
from gomail_twisted.imap4._select import SelectCommands
from gomail_twisted.imap4._state import State, refusal
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._storing import StoreCommands
from gomail_twisted.imap4._transfer import TransferCommands
from gomail_twisted.maildir import errors as storeErrors

#: The hold while the store drains an APPEND literal.
_DISK = "disk"


class _Discard:
    """
    Where a literal goes that will not be used: counted, not kept.
    """

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


class IMAP4Server(
    AuthCommands,
    MailboxCommands,
    SelectCommands,
    FetchCommands,
    SearchCommands,
    StoreCommands,
    TransferCommands,
):
    """
    One IMAP4 connection: frames commands and runs them.
    """

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._abortLiteral()
        super().connectionLost(reason)

    # Reading.

    def lineReceived(self, line: bytes) -> None:
        if self.closed:
            # Once closing, nothing the client sends is acted on.
            return
        self.resetTimeout()
        onLine = self._onLine
        if onLine is not None:
            self._onLine = None
            onLine(line)
            return
        self._lines.append(line)
        self._size += len(line) + 2
        try:
            announced = announcedLiteral(line)
        except ParseError as e:
            status = IMAPStatus.bad(e.text, e.code)
            if line.endswith(b"+}"):
                # A non-synchronizing literal too large to count: its
                # octets are on their way, and must not be read as commands.
                self._dropForLiteral(self._tag(), status)
            else:
                self._refuseCommand(e.tag, status)
            return
        if announced is None:
            self._dispatch()
        else:
            self._startLiteral(*announced)

    def lineLengthExceeded(self, line: bytes) -> int | None:
        if self.closed:
            return None
        # Past the hard bound there is no telling where a command starts.
        self._log.info("IMAP line too long from {peer}", peer=self.peer[0])
        self._untagged(S.LINE_TOO_LONG)
        self.closeConnection()
        return None

    def _tag(self) -> str | None:
        """
        The tag of the command being framed, as far as it can be read.
        """
        return readTag(self._lines[0]) if self._lines else None

    def _resetCommand(self) -> None:
        self._lines = []
        self._literals = []
        self._size = 0

    def _refuseCommand(self, tag: str | None, status: IMAPStatus) -> None:
        """
        Refuse the command being framed, before it was dispatched.
        """
        self._abortLiteral()
        self._resetCommand()
        if tag is None:
            self._untagged(status)
            self.countError()
        else:
            self.complete(tag, status, None)

    def _startLiteral(self, size: int, synchronizing: bool) -> None:
        """
        The line announced a literal: check its size, find where it goes,
        ask for it if the client waits, and read it raw.
        """
        factory = self.factory
        tag = self._tag()
        message = appendMessageNext(self._lines, self._literals)
        if message and self.state is State.NOT_AUTHENTICATED:
            # No message is taken before a login: refused before it is
            # sent, or read within the small limit of logins and dropped.
            if synchronizing:
                self._refuseCommand(
                    tag, refusal("APPEND", self.state) or S.NOT_AVAILABLE
                )
                return
            message = False
        # An empty message is read as a literal, for APPEND to refuse.
        message = message and size > 0
        if message:
            limit = factory.maxAppendSize
            tooBig = IMAPStatus.no(
                f"Message too large (at most {limit} octets)", "TOOBIG"
            )
        else:
            limit = (
                factory.maxCommandSize
                if self.state is not State.NOT_AUTHENTICATED
                else factory.maxLoginCommandSize
            ) - self._size
            tooBig = IMAPStatus.bad("Command too large", "TOOBIG")
        if size > limit:
            if synchronizing:
                self._refuseCommand(tag, tooBig)
            else:
                self._dropForLiteral(tag, tooBig)
            return
        if message:
            sink = self._appendSink()
            if synchronizing and self._refused is not None:
                # Refused before the client sends it (RFC 3501 7.5).
                status, self._refused = self._refused, None
                self._refuseCommand(tag, status)
                return
            self._sink = sink
        else:
            self._literal = bytearray()
            self._size += size
        self._left = size
        if synchronizing:
            self.write(b"+ Ready for literal data\r\n")
        if size == 0:
            self._endLiteral(b"")
            return
        self.setRawMode()

    def _dropForLiteral(self, tag: str | None, status: IMAPStatus) -> None:
        """
        Refuse a non-synchronizing literal past the limits and close: its
        octets are on their way, and there is no safe way to skip them
        (RFC 7888 4).
        """
        self._log.info("IMAP literal refused from {peer}", peer=self.peer[0])
        self._abortLiteral()
        self._resetCommand()
        if tag is not None:
            self.write(status.format(tag))
        self._untagged(IMAPStatus("BYE", "Literal too large", "TOOBIG"))
        self.closeConnection()

    def _appendSink(self) -> Any:
        """
        Where APPEND's message goes: the store's writer for the mailbox
        named; or, when the command is refused already (the refusal kept
        in C{_refused}), nowhere.
        """
        lines = [*self._lines, b""]
        try:
            command = parseCommand(
                lines,
                [*self._literals, _Discard()],
                utf8="UTF8=ACCEPT" in self.enabled,
            )
        except ParseError as e:
            self._refused = IMAPStatus.bad(e.text, e.code)
            return _Discard()
        status = refusal(command.name, self.state)
        if status is not None:
            self._refused = status
            return _Discard()
        assert isinstance(command.arguments, Append)
        try:
            return self.account.appendStream(command.arguments.mailbox)
        except storeErrors.StoreError as e:
            mapped = storeStatus(Failure(e), tryCreate=True)
            self._refused = (
                mapped if isinstance(mapped, IMAPStatus) else S.TEMPORARY_FAILURE
            )
            return _Discard()

    def rawDataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        self.resetTimeout()
        left = self._left
        chunk, rest = data[:left], data[left:]
        self._left = left - len(chunk)
        if self._sink is not None:
            outcome = self._sink.write(chunk)
            if isinstance(outcome, Deferred):
                self.hold(_DISK)
                outcome.addBoth(lambda _: self.release(_DISK))
        elif self._literal is not None:
            self._literal += chunk
        if self._left == 0:
            self._endLiteral(rest)

    def _endLiteral(self, rest: bytes) -> None:
        if self._sink is not None:
            literal: object = self._sink
            self._sink = None
        else:
            literal = bytes(self._literal or b"")
            self._literal = None
        self._literals.append(literal)
        self.setLineMode(rest)

    def _abortLiteral(self) -> None:
        self._literal = None
        sinks = [self._sink, *self._literals]
        self._sink = None
        for sink in sinks:
            if sink is not None and not isinstance(sink, bytes):
                sink.abort()

    def _dispatch(self) -> None:
        lines, literals = self._lines, self._literals
        self._resetCommand()
        status, self._refused = self._refused, None
        try:
            command = parseCommand(lines, literals, utf8="UTF8=ACCEPT" in self.enabled)
        except ParseError as e:
            for literal in literals:
                if not isinstance(literal, bytes):
                    literal.abort()  # type: ignore[attr-defined]
            if e.tag is None:
                self._untagged(IMAPStatus.bad(e.text, e.code))
                self.countError()
            elif e.code is not None and e.code.startswith("BADCHARSET"):
                # Understood, but not done (RFC 3501 6.4.4): NO, not BAD.
                self.complete(e.tag, IMAPStatus.no(e.text, e.code), None)
            else:
                self.complete(e.tag, IMAPStatus.bad(e.text, e.code), None)
            return
        if status is None:
            status = refusal(command.name, self.state)
        if status is not None:
            if isinstance(command.arguments, Append):
                message = command.arguments.message
                if not isinstance(message, bytes):
                    message.abort()  # type: ignore[attr-defined]
            self.complete(command.tag, status, command)
            return
        self.run(command)

    def run(self, command: Command) -> None:
        """
        Run a parsed command allowed in this state, and answer it.

        @param command: the command.
        """
        tag = command.tag
        outcome = invokeHook(getattr(self, HANDLERS[command.name]), command)
        if isinstance(outcome, Deferred):
            outcome.addErrback(storeStatus, command.name in ("APPEND", "COPY", "MOVE"))
        elif isinstance(outcome, Failure):
            outcome = storeStatus(outcome, command.name in ("APPEND", "COPY", "MOVE"))

        def answered(result: object) -> None:
            if result is ANSWERED:
                return
            if result is None:
                result = IMAPStatus.ok(f"{command.name} completed")
            if not isinstance(result, IMAPStatus):
                raise TypeError(f"{command.name} handler returned {result!r}")
            self.complete(tag, result, command)

        self.awaitHook(
            outcome,
            answered,
            lambda status: self.complete(tag, status, command),
            hook=command.name,
        )


#: Command name (as L{Command.name} gives it) to the method that runs it.
HANDLERS: dict[str, str] = {
    "CAPABILITY": "doCapability",
    "NOOP": "doNoop",
    "LOGOUT": "doLogout",
    "ID": "doId",
    "STARTTLS": "doStartTLS",
    "AUTHENTICATE": "doAuthenticate",
    "LOGIN": "doLogin",
    "ENABLE": "doEnable",
    "SELECT": "doSelect",
    "EXAMINE": "doSelect",
    "CREATE": "doCreate",
    "DELETE": "doDelete",
    "RENAME": "doRename",
    "SUBSCRIBE": "doSubscribe",
    "UNSUBSCRIBE": "doUnsubscribe",
    "LIST": "doList",
    "LSUB": "doList",
    "STATUS": "doStatus",
    "APPEND": "doAppend",
    "NAMESPACE": "doNamespace",
    "IDLE": "doIdle",
    "CHECK": "doCheck",
    "CLOSE": "doClose",
    "UNSELECT": "doUnselect",
    "EXPUNGE": "doExpunge",
    "SEARCH": "doSearch",
    "FETCH": "doFetch",
    "STORE": "doStore",
    "COPY": "doCopy",
    "MOVE": "doCopy",
}
