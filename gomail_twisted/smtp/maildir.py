# -*- test-case-name: tests.test_smtp_maildir -*-
"""
The default SMTP backend: every recipient of the configured domains gets a
Maildir folder under one root directory, and anything else is refused, so
the server is a mail sink that a mail client reads from disk and never an
open relay.

    backend = MaildirBackend("/var/mail/sink", ["example.com"])
    factory = SMTPServerFactory(backend, hostname="mx.example.com")

A message for C{Alice@Example.COM} lands in C{ROOT/alice@example.com/new/}:
the domain in lower case (and in its ASCII form for internationalized
domains), and the local part in lower case too, so that C{Alice@} and
C{alice@} share a mailbox, as they do by default with Postfix and Dovecot
(the message itself keeps the case the client gave).  Characters that
could take a name out of the root (C{/}, a leading dot) or confuse it
(C{%}, C{@}, spaces, controls, non-ASCII) are percent-encoded, so every
address has its own directory and C{urllib.parse.unquote} gives the
address back, in lower case.

Delivery follows the Maildir rules (U{https://cr.yp.to/proto/maildir.html}):
each copy is written under C{tmp/}, fsynced, renamed into C{new/}, and the
directory is fsynced.  A message for several mailboxes is delivered to all
or to none: every copy is written and fsynced in its C{tmp/} before the
first is renamed, and a failure at any step withdraws the copies already
made, so the client's retry after a 4xx duplicates nothing.  The server's
250 after DATA waits for all of it, so 250 means the message is on disk
(RFC 5321 6.1).

The disk work runs in the backend's own small thread pool, not the
reactor's: work that blocks elsewhere in the process (DNS, signing, a slow
hook) cannot hold up a delivery, and a slow disk cannot hold up that work.
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gomail_twisted.address import normalizeDomain, unquoteLocalPart
from gomail_twisted.smtp._reply import RELAY_DENIED, SMTPReply
from gomail_twisted.smtp._values import ConnectionInfo, ReceivedMessage, Recipient
from gomail_twisted.smtp.backend import SMTPSession
from gomail_twisted.smtp.interfaces import ISMTPBackend

_T = TypeVar("_T")

#: The reply when the store cannot take the message (RFC 3463 4.3.0).
STORE_FAILED = SMTPReply(451, "4.3.0", "Could not store the message, try again later")
#: The reply when the disk or a quota is full (RFC 5321 4.2.3 452, RFC 3463
#: 4.3.1).
STORE_FULL = SMTPReply(452, "4.3.1", "Insufficient storage, try again later")
#: The reply for an address whose directory name would pass the file
#: system's limit.
MAILBOX_NAME_TOO_LONG = SMTPReply(553, "5.1.3", "Mailbox name too long")

#: The longest directory name most file systems allow, in bytes.
_MAX_NAME = 255
_FULL_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The threads of a backend's own pool: enough for a few deliveries to
#: overlap their fsyncs, few enough not to flood the disk.
DEFAULT_DISK_THREADS = 4
_deliveries = itertools.count(1)


def mailboxDirectoryName(local: str, domain: str) -> str:
    """
    The directory name of a mailbox: one path component that never leaves
    its parent and never names another mailbox.

    The local part is lower-cased: local parts are matched without regard
    to case, as Postfix and Dovecot do by default (RFC 5321 2.4 lets the
    receiving host decide).  Then letters, digits and C{._-~+=} are kept;
    everything else, and a leading dot, is percent-encoded as UTF-8, so the
    name is ASCII and C{urllib.parse.unquote} gives back the address in
    lower case.

    @param local: the local part, unquoted.
    @param domain: the domain, normalized with L{normalizeDomain}.
    @return: C{local@domain}, encoded.
    """
    encodedLocal = quote(local.lower(), safe="+=")
    if encodedLocal.startswith("."):
        encodedLocal = "%2E" + encodedLocal[1:]
    return f"{encodedLocal}@{quote(domain, safe='')}"


def _uniqueName() -> str:
    """
    A new Maildir file name: seconds, then microseconds, process, delivery
    count and 32 random bits, then the host (C{/} and C{:} escaped as the
    Maildir specification asks).
    """
    now = time.time()
    seconds = int(now)
    micro = int((now - seconds) * 1_000_000)
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return (
        f"{seconds}.M{micro}P{os.getpid()}Q{next(_deliveries)}"
        f"R{secrets.token_hex(4)}.{host}"
    )


def _fsyncDirectory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writeSynced(path: Path, data: bytes) -> None:
    """
    Create C{path} (it must not exist), write C{data} and fsync it; on
    failure, remove what was written.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlinkQuietly(path)
        raise


def _unlinkQuietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _makeDirectory(path: Path) -> bool:
    """
    Make one directory if it is missing.

    @return: whether it was made (so its parent needs an fsync).
    """
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return False
    return True


def _ensureMaildir(root: Path, mailbox: Path) -> None:
    """
    Make C{root} and the Maildir C{mailbox} in it, with its C{tmp}, C{new}
    and C{cur}, durably.
    """
    if all((mailbox / sub).is_dir() for sub in ("tmp", "new", "cur")):
        return
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _fsyncDirectory(root.parent)
    if _makeDirectory(mailbox):
        _fsyncDirectory(root)
    made = [_makeDirectory(mailbox / sub) for sub in ("tmp", "new", "cur")]
    if any(made):
        _fsyncDirectory(mailbox)


def deliverToMaildirs(root: Path, mailboxes: Sequence[Path], data: bytes) -> list[Path]:
    """
    Deliver one message to several Maildirs, all or nothing, blocking; call
    it in a thread.

    Every mailbox is made, then every copy is written and fsynced under
    its C{tmp/}; only then is each renamed into C{new/}, and each C{new/}
    fsynced.  If any step fails, the copies made so far are removed from
    C{tmp/} and from C{new/}, so a 4xx reply leaves nothing for the
    client's retry to duplicate.  (A reader that scans C{new/} in the
    instant between a rename and its withdrawal may still see the copy.)

    @param root: the directory holding the mailboxes.
    @param mailboxes: the Maildirs, each directly under C{root}.
    @param data: the message.
    @return: the delivered files.
    @raise OSError: when the disk refuses; nothing is delivered.
    """
    for mailbox in mailboxes:
        _ensureMaildir(root, mailbox)
    staged: list[tuple[Path, Path]] = []
    published: list[Path] = []
    try:
        for mailbox in mailboxes:
            name = _uniqueName()
            temporary = mailbox / "tmp" / name
            _writeSynced(temporary, data)
            staged.append((temporary, mailbox / "new" / name))
        for temporary, final in staged:
            os.rename(temporary, final)
            published.append(final)
        for mailbox in mailboxes:
            _fsyncDirectory(mailbox / "new")
    except BaseException:
        for final in published:
            _unlinkQuietly(final)
        for temporary, _ in staged[len(published) :]:
            _unlinkQuietly(temporary)
        raise
    return published


def storedForm(message: ReceivedMessage) -> bytes:
    """
    A received message as a Maildir file holds it.

    @param message: the message.
    @return: C{Return-Path: <sender>} and the message, lines ending in LF
        (the local convention of Maildir, which Dovecot and mutt read).
    """
    sender = message.envelope.sender.encode("utf-8")
    return b"".join(
        [b"Return-Path: <", sender, b">\n", message.raw.replace(b"\r\n", b"\n")]
    )


class MaildirSession(SMTPSession):
    """
    One connection to a L{MaildirBackend}: recipients of its domains are
    accepted, others refused with 554 5.7.1; each message is written to the
    Maildir of every accepted recipient before the server answers 250.
    """

    _log = Logger()

    def __init__(self, backend: MaildirBackend, info: ConnectionInfo) -> None:
        """
        @param backend: where messages go.
        @param info: the connection.
        """
        super().__init__(info)
        self.backend = backend

    def rcptTo(self, recipient: Recipient) -> None:
        """
        Accept a recipient of our domains (or the bare C{postmaster}, RFC
        5321 4.5.1).

        @raise SMTPReply: 554 5.7.1 for any other domain (we do not relay);
            553 5.1.3 for an address too long to be a directory name.
        """
        if self.backend.mailboxFor(recipient.address) is None:
            self._log.info(
                "Maildir refused relay to {recipient} from {peer}",
                recipient=recipient.address,
                peer=self.info.peerHost,
            )
            raise RELAY_DENIED

    def message(self, message: ReceivedMessage) -> Deferred[None]:
        """
        Deliver the message to each recipient's Maildir (one copy per
        distinct mailbox) as Maildir readers expect it: a C{Return-Path:}
        header first (RFC 5321 4.4: we make the final delivery), then the
        bytes as received with lines ending in LF.

        @return: a Deferred that fires once every copy is on disk.
        """
        return self.backend.deliver(
            storedForm(message),
            [r.address for r in message.envelope.recipients],
            queueID=message.queueID,
        )


@implementer(ISMTPBackend)
class MaildirBackend:
    """
    Delivers mail for some domains into Maildir folders, one per address,
    under one directory; refuses all other recipients.

    @ivar root: the directory holding the mailboxes.
    @ivar domains: the domains we take mail for, normalized with
        L{normalizeDomain}, in the order given.
    """

    _log = Logger()

    def __init__(
        self,
        root: str | os.PathLike[str],
        domains: Iterable[str],
        reactor: Any = None,
        threadPool: ThreadPool | None = None,
        diskThreads: int = DEFAULT_DISK_THREADS,
    ) -> None:
        """
        @param root: the directory for the mailboxes; made when the first
            message arrives.  A relative path is taken from the current
            directory now.
        @param domains: the domains to accept, in any case or form; the
            first is the home of the bare C{postmaster}.
        @param reactor: an C{IReactorFromThreads} to report back to and,
            unless C{threadPool} is given, an C{IReactorCore} whose
            shutdown stops the backend's pool; default the global reactor.
        @param threadPool: a started pool, owned by the caller, to do the
            disk work in.  By default the backend makes its own of
            C{diskThreads} threads at the first delivery, apart from the
            reactor's pool, and stops it when the reactor shuts down.
        @param diskThreads: the most deliveries written at once by the
            backend's own pool.
        @raise ValueError: when no domain is given, or C{diskThreads} is
            less than one.
        """
        self.root = Path(os.path.abspath(root))
        self.domains = tuple(dict.fromkeys(normalizeDomain(d) for d in domains))
        if not self.domains or not all(self.domains):
            raise ValueError("MaildirBackend needs at least one domain")
        if diskThreads < 1:
            raise ValueError("MaildirBackend needs at least one disk thread")
        self._reactor = reactor
        self._threadPool = threadPool
        self._diskThreads = diskThreads

    def newSession(self, info: ConnectionInfo) -> MaildirSession:
        """
        @param info: the connection.
        @return: a new session.
        """
        return MaildirSession(self, info)

    def mailboxFor(self, address: str) -> Path | None:
        """
        Where mail for an address goes.

        @param address: a recipient as the server parsed it.
        @return: its Maildir, directly under L{root}, or L{None} when its
            domain is not ours.
        @raise SMTPReply: 553 5.1.3 when the directory name would be too
            long.
        """
        local, at, domain = address.rpartition("@")
        if not at:
            if address.lower() != "postmaster":
                return None
            local, domain = "postmaster", self.domains[0]
        else:
            domain = normalizeDomain(domain)
            if domain not in self.domains:
                return None
            local = unquoteLocalPart(local)
            if local.lower() == "postmaster":
                # RFC 5321 4.5.1: postmaster is case-insensitive.
                local = "postmaster"
        name = mailboxDirectoryName(local, domain)
        if len(name) > _MAX_NAME:
            raise MAILBOX_NAME_TOO_LONG
        mailbox = self.root / name
        # The name is one component by construction; stay sure of it.
        if mailbox.parent != self.root or name in (".", ".."):
            raise ValueError(f"unsafe mailbox name {name!r}")
        return mailbox

    def deliver(
        self, data: bytes, addresses: Iterable[str], queueID: str = ""
    ) -> Deferred[None]:
        """
        Write a message to the Maildirs of some addresses, off the reactor
        thread.

        @param data: the message.
        @param addresses: local recipients (see L{mailboxFor}); duplicates
            get one copy.
        @param queueID: the server's identifier for the message, for logs.
        @return: a Deferred that fires with L{None} once every copy is on
            disk, or fails with L{SMTPReply} 451 4.3.0 (452 4.3.1 when the
            disk is full).
        """
        mailboxes: list[Path] = []
        for address in addresses:
            mailbox = self.mailboxFor(address)
            if mailbox is None:
                raise RELAY_DENIED
            if mailbox not in mailboxes:
                mailboxes.append(mailbox)

        def delivered(files: list[Path]) -> None:
            self._log.info(
                "Maildir delivered {queueID} ({size} bytes) to {mailboxes}",
                queueID=queueID,
                size=len(data),
                mailboxes=[m.name for m in mailboxes],
            )

        def failed(error: Any) -> None:
            self._log.failure(
                "Maildir delivery of {queueID} to {mailboxes} failed",
                failure=error,
                queueID=queueID,
                mailboxes=[m.name for m in mailboxes],
            )
            exc = error.value
            if isinstance(exc, OSError) and exc.errno in _FULL_ERRORS:
                raise STORE_FULL
            raise STORE_FAILED

        d = self._inThread(deliverToMaildirs, self.root, mailboxes, data)
        return d.addCallbacks(delivered, failed)

    def _inThread(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run C{f} in the disk pool, starting the backend's own pool first if
        it has none yet.
        """
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = self._reactor = globalReactor
        pool = self._threadPool
        if pool is None:
            pool = ThreadPool(
                minthreads=0, maxthreads=self._diskThreads, name="gomail-maildir"
            )
            pool.start()
            reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
            self._threadPool = pool
        return deferToThreadPool(reactor, pool, f, *args)
