# -*- test-case-name: tests.test_pop3_server,tests.test_pop3_store -*-
"""
Ready-made POP3 backends: a base session with safe defaults, an adapter
that makes a backend from plain callables, an in-memory maildrop, and
L{StoreBackend}, which serves the INBOX of the mail store to the users a
C{twisted.cred} checker lets in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from gomail_twisted._hooks import callHook
from gomail_twisted.connection import SessionBackend
from gomail_twisted.maildir.errors import NoSuchMessage, StoreError
from gomail_twisted.maildir.interfaces import (
    DELETED,
    INBOX,
    SEEN,
    FlagChange,
    IAccount,
    IFolder,
    IMailStore,
)
from gomail_twisted.pop3._reply import (
    AUTH_FAILED,
    COMMIT_FAILED,
    IN_USE,
    MESSAGE_GONE,
    TEMPORARY_FAILURE,
)
from gomail_twisted.pop3._values import (
    ConnectionInfo,
    LoginFailure,
    MaildropMessage,
    POP3Credentials,
)
from gomail_twisted.pop3._wire import toCRLF
from gomail_twisted.pop3.interfaces import (
    IMaildrop,
    IMaildropMarks,
    IPOP3APOPSession,
    IPOP3Backend,
    IPOP3Session,
)
from gomail_twisted.users import LoginUnavailable, UsersRealm, loginAccount


@implementer(IPOP3Session)
class POP3Session:
    """
    A session with safe defaults, to subclass: every login is refused
    (C{-ERR [AUTH]}).

    @ivar info: the connection this session serves.
    """

    def __init__(self, info: ConnectionInfo) -> None:
        """
        @param info: the connection.
        """
        self.info = info

    def login(self, credentials: POP3Credentials) -> Any:
        """
        Refuse every login.

        @raise POP3Reply: C{-ERR [AUTH]}.
        """
        raise AUTH_FAILED

    def loginFailed(self, failure: LoginFailure) -> Any:
        """
        Nothing to count.
        """

    def logout(self) -> Any:
        """
        Nothing to release.
        """


@implementer(IPOP3Backend)
class POP3Backend(SessionBackend):
    """
    Makes one session per connection with a session class.
    """

    def __init__(
        self, sessionFactory: Callable[[ConnectionInfo], Any] = POP3Session
    ) -> None:
        """
        @param sessionFactory: such as a subclass of L{POP3Session}.
        """
        super().__init__(sessionFactory)


@implementer(IMaildrop)
class MemoryMaildrop:
    """
    A maildrop held in memory: for tests, and as the smallest example of
    L{IMaildrop}.  Its UIDL values are the messages' positions at creation.

    @ivar contents: the messages' bytes, CRLF line ends.
    @ivar committed: the index lists each L{commit} was called with.
    @ivar closed: whether L{close} was called.
    """

    def __init__(self, contents: Iterable[bytes], uidls: Iterable[str] = ()) -> None:
        """
        @param contents: the messages; LF line ends become CRLF.
        @param uidls: their UIDL values; by default C{"1"}, C{"2"}, ...
        """
        self.contents = [toCRLF(data) for data in contents]
        names = list(uidls) or [str(i + 1) for i in range(len(self.contents))]
        self.messages = tuple(
            MaildropMessage(len(data), uidl)
            for data, uidl in zip(self.contents, names, strict=True)
        )
        self.committed: list[tuple[int, ...]] = []
        self.closed = False

    def retrieve(self, index: int) -> bytes:
        """
        @param index: the message's index.
        @return: its bytes.
        """
        return self.contents[index]

    def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> None:
        """
        Record the deletion (a memory maildrop keeps no seen flags).

        @param deleted: the indexes deleted.
        @param retrieved: the indexes retrieved and kept.
        """
        if deleted:
            self.committed.append(tuple(deleted))

    def close(self) -> None:
        """
        Note the close.
        """
        self.closed = True


Hook = Callable[[ConnectionInfo, Any], Any]


@implementer(IPOP3Session)
class _FunctionSession:
    def __init__(self, backend: FunctionBackend, info: ConnectionInfo) -> None:
        self._backend = backend
        self._info = info

    def login(self, credentials: POP3Credentials) -> Any:
        if self._backend.onLogin is None:
            raise AUTH_FAILED
        return self._backend.onLogin(self._info, credentials)

    def apop(self, user: str, timestamp: str, digest: str) -> Any:
        assert self._backend.onAPOP is not None
        return self._backend.onAPOP(self._info, (user, timestamp, digest))

    def loginFailed(self, failure: LoginFailure) -> Any:
        if self._backend.onLoginFailed is not None:
            return self._backend.onLoginFailed(self._info, failure)
        return None

    def logout(self) -> Any:
        if self._backend.onLogout is not None:
            return self._backend.onLogout(self._info, None)
        return None


@implementer(IPOP3Backend)
class FunctionBackend:
    """
    A backend made of plain callables, for the one-callback case.

    Each callable takes the L{ConnectionInfo} and the step's value and may
    return a value, a Deferred or a coroutine, or raise L{POP3Reply}.  Left
    out, a login is refused; APOP is offered only with C{apop}.

        backend = FunctionBackend(
            login=lambda info, credentials: openMaildrop(credentials),
        )
    """

    def __init__(
        self,
        *,
        connect: Callable[[ConnectionInfo], Any] | None = None,
        login: Hook | None = None,
        apop: Hook | None = None,
        loginFailed: Hook | None = None,
        logout: Hook | None = None,
    ) -> None:
        """
        @param connect: called with the connection info; raise
            L{POP3Reply} to refuse the connection.
        @param login: USER/PASS and AUTH, with L{POP3Credentials}; returns
            an L{IMaildrop}.
        @param apop: APOP, with C{(user, timestamp, digest)}; returns an
            L{IMaildrop}.
        @param loginFailed: a refused login, with a L{LoginFailure}.
        @param logout: the connection ends, with L{None}.
        """
        self.onConnect = connect
        self.onLogin = login
        self.onAPOP = apop
        self.onLoginFailed = loginFailed
        self.onLogout = logout

    def newSession(self, info: ConnectionInfo) -> Any:
        """
        @param info: the connection.
        @return: a session calling this backend's callables, or a Deferred
            of one when C{connect} returns a Deferred.
        """
        session = _FunctionSession(self, info)
        if self.onAPOP is not None:
            alsoProvides(session, IPOP3APOPSession)
        if self.onConnect is None:
            return session
        return callHook(self.onConnect, info).addCallback(lambda _: session)


def uidlOf(uidValidity: int, uid: int) -> str:
    """
    The UIDL of a store message (RFC 1939 7): its folder's UIDVALIDITY and
    its UID, which together never name another message of the folder, in
    this session or a later one.

    @param uidValidity: the folder's UIDVALIDITY.
    @param uid: the message's UID.
    @return: such as C{"1700000000.42"}.
    """
    return f"{uidValidity}.{uid}"


#: The largest message a store maildrop reads before it is asked for.
READ_AHEAD = 1024 * 1024


@implementer(IMaildropMarks)
class _StoreMaildrop:
    """
    The INBOX of an account, as it was at login.

    A client sends RETR only after the last message arrived, so each read
    from disk would cost a round trip to the store's threads while nothing
    is sent.  When a message is retrieved, the next one not marked deleted
    is read too, if it is no larger than C{readAhead}: one message at most
    waits in memory, and the next RETR of it is answered from there.
    """

    _log = Logger()

    def __init__(
        self, folder: IFolder, release: Callable[[], None], readAhead: int
    ) -> None:
        self._folder = folder
        self._release = release
        self._readAhead = readAhead
        infos = tuple(folder.messages())
        self._uids = tuple(info.uid for info in infos)
        # Messages flagged \Deleted before the session (by an IMAP client)
        # keep the flag if a commit must be undone.
        self._flagged = frozenset(i.uid for i in infos if DELETED in i.flags)
        validity = folder.uidValidity
        self.messages = tuple(
            MaildropMessage(info.size, uidlOf(validity, info.uid)) for info in infos
        )
        self._marked: frozenset[int] = frozenset()
        # The message read ahead: its index and its bytes (None if the
        # read failed, to be tried again when it is asked for).
        self._ahead: tuple[int, Deferred[bytes | None]] | None = None

    def retrieve(self, index: int) -> Deferred[bytes]:
        def failed(failure: Failure) -> Failure:
            if failure.check(NoSuchMessage):
                raise MESSAGE_GONE
            if failure.check(StoreError):
                self._log.failure("POP3 read failed", failure=failure)
                raise TEMPORARY_FAILURE
            return failure

        def orRead(data: bytes | None) -> bytes | Deferred[bytes]:
            return self._folder.read(self._uids[index]) if data is None else data

        ahead, self._ahead = self._ahead, None
        d: Deferred[bytes]
        if ahead is not None and ahead[0] == index:
            d = ahead[1].addCallback(orRead)
        else:
            d = self._folder.read(self._uids[index])
        del ahead
        # Queued behind this read on the folder's lock: the disk work for
        # the next message runs while this one is being sent.
        self._readAfter(index)
        return d.addErrback(failed)

    def _readAfter(self, index: int) -> None:
        following = index + 1
        while following in self._marked:
            following += 1
        if (
            following < len(self.messages)
            and self.messages[following].size <= self._readAhead
        ):
            d: Deferred[Any] = self._folder.read(self._uids[following])
            # A failure is not the client's yet: retrieve reads again.
            self._ahead = (following, d.addErrback(lambda _: None))

    def marksChanged(self, deleted: frozenset[int]) -> None:
        ahead = self._ahead
        if ahead is not None and (ahead[0] in deleted or not deleted >= self._marked):
            # Marked, or (RSET) no longer the next message left.
            self._ahead = None
        self._marked = deleted

    def commit(
        self, deleted: Sequence[int], retrieved: Sequence[int]
    ) -> Deferred[None]:
        uids = [self._uids[i] for i in deleted]
        folder = self._folder

        def markSeen() -> Deferred[Any]:
            # A message read over POP3 is read in IMAP too, as with Dovecot.
            # Failing to say so loses nothing, and must not undo a QUIT.
            seen = [self._uids[i] for i in retrieved]
            d = folder.setFlags(seen, [SEEN], FlagChange.ADD)
            return d.addErrback(
                lambda f: self._log.failure("POP3 could not mark messages seen", f)
            )

        def expunge(_: object) -> Deferred[Any]:
            return folder.expunge(uids).addErrback(undo)

        def undo(failure: Failure) -> Deferred[Any]:
            # Nothing was removed: take back the marks this session made.
            marked = [uid for uid in uids if uid not in self._flagged]
            d = folder.setFlags(marked, [DELETED], FlagChange.REMOVE)
            return d.addBoth(lambda _: failure)

        def failed(failure: Failure) -> None:
            self._log.failure("POP3 commit failed", failure=failure)
            raise COMMIT_FAILED

        if not uids:
            return markSeen().addCallback(lambda _: None)
        d: Deferred[Any] = folder.setFlags(uids, [DELETED], FlagChange.ADD)
        d.addCallback(expunge)
        d.addCallbacks(lambda _: None, failed)
        return d.addCallback(lambda _: markSeen() if retrieved else None)

    def close(self) -> None:
        self._ahead = None
        release, self._release = self._release, lambda: None
        self._folder.close()
        release()


@implementer(IPOP3Session)
class _StoreSession:
    _log = Logger()

    def __init__(self, backend: StoreBackend, info: ConnectionInfo) -> None:
        self._backend = backend
        self.info = info

    def login(self, credentials: POP3Credentials) -> Deferred[IMaildrop]:
        def refused(failure: Failure) -> Failure:
            if failure.check(UnauthorizedLogin):
                raise AUTH_FAILED
            if failure.check(LoginUnavailable, StoreError):
                self._log.info(
                    "POP3 login could not be checked: {error}", error=failure.value
                )
                raise TEMPORARY_FAILURE
            return failure

        d = loginAccount(self._backend.portal, credentials).addErrback(refused)
        return d.addCallback(self._backend.openMaildrop)

    def loginFailed(self, failure: LoginFailure) -> None:
        pass

    def logout(self) -> None:
        pass


@implementer(IPOP3Backend)
class StoreBackend:
    """
    Serve each user the INBOX of their account in the mail store, logged
    in through C{twisted.cred}: a L{Portal} over the checker (such as
    L{UsersChecker<gomail_twisted.users.UsersChecker>}) and a realm giving
    L{IAccount} avatars (by default L{UsersRealm}, which makes the account
    at its first login).

      - The maildrop is INBOX as it was at login; UIDL values are the
        folder's UIDVALIDITY and the message's UID (L{uidlOf}).
      - One session at a time per account, across every connection this
        backend serves: another gets C{-ERR [IN-USE]} (RFC 2449 8.1.2).
      - QUIT flags the deleted messages C{\\Deleted} and expunges them, so
        the store tells every open view (IMAP sessions) of the folder; if
        that fails, the flags are taken back and the client gets C{-ERR
        [SYS/TEMP]}.  A dropped connection deletes nothing.  The messages
        sent whole with RETR and kept are flagged C{\\Seen} at QUIT, so
        IMAP clients of the mailbox show them read, as with Dovecot.
      - A wrong password is C{-ERR [AUTH]} (RFC 3206 4); a check that could
        not be made (hashing busy, the login's line of the users file
        skipped, a store error) C{-ERR [SYS/TEMP]}, which access control
        does not count as a failed login.
      - After each RETR or TOP the next message not marked deleted is
        read while the first is sent, when it is no larger than
        C{readAhead}, so that its RETR need not wait for the disk.

    @ivar portal: the portal logins go through.
    """

    def __init__(
        self,
        checker: ICredentialsChecker,
        store: IMailStore,
        *,
        realm: IRealm | None = None,
        readAhead: int = READ_AHEAD,
    ) -> None:
        """
        @param checker: checks L{IUsernamePassword
            <twisted.cred.credentials.IUsernamePassword>} credentials and
            gives the user's address (UTF-8 bytes) as avatar ID.
        @param store: the mail store.
        @param realm: gives L{IAccount} avatars; by default a L{UsersRealm}
            over C{store}.
        @param readAhead: the largest message (in octets, CRLF form) read
            before the client asks for it, while the one before it is
            sent; C{0} reads none ahead.
        """
        self.store = store
        self._readAheadLimit = readAhead
        self.portal = Portal(realm or UsersRealm(store), [checker])
        self._inUse: set[str] = set()

    def newSession(self, info: ConnectionInfo) -> _StoreSession:
        """
        @param info: the connection.
        @return: a new session.
        """
        return _StoreSession(self, info)

    def openMaildrop(self, account: IAccount) -> Deferred[IMaildrop]:
        """
        Open an account's INBOX as a maildrop, unless a session has it.

        @param account: the account.
        @return: a Deferred firing with the maildrop, or failing with
            L{POP3Reply} (C{[IN-USE]}, C{[SYS/TEMP]}).
        """
        user = account.user
        if user in self._inUse:
            return fail(IN_USE)
        self._inUse.add(user)

        def release() -> None:
            self._inUse.discard(user)

        def opened(folder: IFolder) -> IMaildrop:
            return _StoreMaildrop(folder, release, self._readAheadLimit)

        def failed(failure: Failure) -> Failure:
            release()
            if failure.check(StoreError):
                raise TEMPORARY_FAILURE
            return failure

        return account.openFolder(INBOX).addCallbacks(opened, failed)

    def inUse(self, user: str) -> bool:
        """
        @param user: a normalized address.
        @return: whether a session has that user's maildrop open.
        """
        return user in self._inUse


__all__ = [
    "READ_AHEAD",
    "FunctionBackend",
    "MemoryMaildrop",
    "POP3Backend",
    "POP3Session",
    "StoreBackend",
    "uidlOf",
]
