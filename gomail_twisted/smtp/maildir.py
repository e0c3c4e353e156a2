# -*- test-case-name: tests.test_smtp_maildir -*-
"""
The default SMTP backend: every recipient of the configured domains gets an
account in the mail store (L{gomail_twisted.maildir}), and anything else is
refused, so the server is never an open relay.

    backend = MaildirBackend("/var/mail/store", ["example.com"])
    factory = SMTPServerFactory(backend, hostname="mx.example.com")

A message for C{Alice@Example.COM} lands in the INBOX of the account
C{alice@example.com}, on disk C{ROOT/alice@example.com/new/}: the domain in
lower case (and in its ASCII form for internationalized domains), and the
local part in lower case too, so that C{Alice@} and C{alice@} share a
mailbox, as they do by default with Postfix and Dovecot (the message
itself keeps the case the client gave).  See
L{gomail_twisted.maildir.mailboxDirectoryName} for how an address becomes
one directory name under the root.

Given a users file (L{gomail_twisted.users.UsersDatabase}), the backend
takes mail for the file's domains instead, only for its users and aliases
(an unknown local recipient is refused at RCPT with 550 5.1.1), delivered
to the account of the user each address leads to.  An address whose line
of the file was skipped as malformed, or whose domain's line was
(L{UsersDatabase.damage<gomail_twisted.users.UsersDatabase.damage>}), is
answered C{451 4.3.0} (RFC 3463 4.3.0) with one log line naming the file
and line, never 550 or 554: an operator's typo must not bounce real mail,
and the client tries again once the line is fixed.  Given a checker
(L{gomail_twisted.users.UsersChecker}) too, it offers AUTH against the
file.  Authenticating does not open relaying: mail for other domains is
still refused.  Users send to other domains through the submission port,
whose backend (L{gomail_twisted.smtp.submission.SubmissionBackend}) uses
this one for local recipients and hands the rest to the outbound queue;
L{MaildirBackend.isLocal} and L{MaildirBackend.deliverNotice} are what that
queue needs to return notices to local senders.

This module only speaks SMTP: it picks the accounts, gives the store the
message with a C{Return-Path:} header (RFC 5321 4.4), and turns the store's
errors into replies.  The store delivers to all the accounts or to none,
each copy fsynced and renamed into C{new/} before the server answers 250
(RFC 5321 6.1), in its own small thread pool.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gomail_twisted.address import normalizeAddress, normalizeDomain, unquoteLocalPart
from gomail_twisted.maildir import (
    DEFAULT_DISK_THREADS,
    MaildirStore,
    NameTooLong,
    StoreFull,
    mailboxDirectoryName,
)
from gomail_twisted.message import Headers, splitHeaderBlock
from gomail_twisted.smtp._reply import (
    AUTH_FAILED,
    AUTH_TEMPORARY_FAILURE,
    RELAY_DENIED,
    UNKNOWN_RECIPIENT,
    SMTPReply,
)
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
)
from gomail_twisted.smtp.backend import SMTPSession
from gomail_twisted.smtp.interfaces import ISMTPAuthSession, ISMTPBackend
from gomail_twisted.smtp.server import MESSAGE_LOGGED
from gomail_twisted.users import LoginUnavailable, UsersChecker, UsersDatabase

#: The reply when the store cannot take the message (RFC 3463 4.3.0).
STORE_FAILED = SMTPReply(451, "4.3.0", "Could not store the message, try again later")
#: The reply when the disk or a quota is full (RFC 5321 4.2.3 452, RFC 3463
#: 4.3.1).
STORE_FULL = SMTPReply(452, "4.3.1", "Insufficient storage, try again later")
#: The reply for an address whose directory name would pass the file
#: system's limit.
MAILBOX_NAME_TOO_LONG = SMTPReply(553, "5.1.3", "Mailbox name too long")
#: The reply for a recipient whose line of the users file (or whose
#: domain's) was skipped (RFC 3463 4.3.0): the operator must fix it first.
RECIPIENT_UNAVAILABLE = SMTPReply(
    451, "4.3.0", "Recipient temporarily unavailable, try again later"
)


def storedForm(message: ReceivedMessage) -> bytes:
    """
    A received message as the store is given it.

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
        # The account each recipient accepted in this transaction leads
        # to, so that delivery does not ask the users file again.
        self._accounts: dict[str, str] = {}

    def mailFrom(self, sender: MailFrom) -> None:
        """
        Begin a transaction: any sender is accepted.
        """
        self._accounts.clear()

    def rcptTo(self, recipient: Recipient) -> None:
        """
        Accept a recipient of our domains (or the bare C{postmaster}, RFC
        5321 4.5.1).

        @raise SMTPReply: 554 5.7.1 for any other domain (we do not relay);
            550 5.1.1 for an address of ours that leads to no user of the
            users file; 451 4.3.0 for one whose line (or whose domain's)
            was skipped; 553 5.1.3 for an address too long to be a
            directory name.
        """
        account = self.backend.accountFor(recipient.address)
        if account is None:
            self._log.info(
                "Maildir refused relay to {recipient} from {peer}",
                recipient=recipient.address,
                peer=self.info.peerHost,
            )
            raise RELAY_DENIED
        self._accounts[recipient.address] = account

    def reset(self) -> None:
        """
        Forget the transaction.
        """
        self._accounts.clear()

    def message(self, message: ReceivedMessage) -> Deferred[Any]:
        """
        Deliver the message to each recipient's Maildir (one copy per
        distinct mailbox) as Maildir readers expect it: a C{Return-Path:}
        header first (RFC 5321 4.4: we make the final delivery), then the
        bytes as received with lines ending in LF.

        Once it is on disk, one line is logged for it: the server's facts
        (queue identifier, peer, sender, recipients), then the size stored
        and the mailboxes.

        @return: a Deferred that fires with L{MESSAGE_LOGGED} once every
            copy is on disk.
        """
        addresses = [r.address for r in message.envelope.recipients]
        known = self._accounts
        if all(address in known for address in addresses):
            accounts = [known[address] for address in addresses]
        else:
            # Not every recipient came through rcptTo here: resolve all.
            accounts = self.backend.accountsFor(addresses)
        return self.backend.deliverReceived(
            storedForm(message), accounts, message
        ).addCallback(lambda _: MESSAGE_LOGGED)


@implementer(ISMTPAuthSession)
class MaildirAuthSession(MaildirSession):
    """
    A L{MaildirSession} that offers AUTH (RFC 4954) against the users file.
    """

    def authenticate(self, credentials: SMTPCredentials) -> Deferred[str]:
        """
        Check a login against the backend's L{UsersChecker}.

        @return: a Deferred firing with the user's address, or failing with
            535 5.7.8 for a refused login and 454 4.7.0 when the passwords
            cannot be checked now (L{LoginUnavailable}: too many checks
            wait, or the login's line of the users file was skipped), which
            the server does not count as a failed login.
        """
        checker = self.backend.checker
        assert checker is not None

        def refused(reason: Failure) -> str:
            if reason.check(UnauthorizedLogin):
                raise AUTH_FAILED
            if not reason.check(LoginUnavailable):
                self._log.failure(
                    "Checking a login from {peer} failed",
                    failure=reason,
                    peer=self.info.peerHost,
                )
            raise AUTH_TEMPORARY_FAILURE

        return checker.authenticate(credentials).addCallbacks(
            lambda user: user.address, refused
        )


@implementer(ISMTPBackend)
class MaildirBackend:
    """
    Delivers mail for some domains into the accounts of a
    L{MaildirStore}: one per address, or one per user of a users file;
    refuses all other recipients.

    @ivar root: the directory holding the accounts.
    @ivar domains: the domains we take mail for, normalized with
        L{normalizeDomain}, in the order given; empty with a users file,
        whose domains count instead.
    @ivar store: the store delivered to.
    @ivar users: the users file, or L{None}.
    @ivar checker: what checks AUTH logins, or L{None} for no AUTH.
    """

    _log = Logger()

    def __init__(
        self,
        root: str | os.PathLike[str],
        domains: Iterable[str] = (),
        reactor: Any = None,
        threadPool: ThreadPool | None = None,
        diskThreads: int = DEFAULT_DISK_THREADS,
        store: MaildirStore | None = None,
        users: UsersDatabase | None = None,
        checker: UsersChecker | None = None,
    ) -> None:
        """
        @param root: the directory for the accounts; made when the first
            message arrives.  A relative path is taken from the current
            directory now.
        @param domains: the domains to accept, in any case or form; the
            first is the home of the bare C{postmaster}.
        @param reactor: an C{IReactorFromThreads} to report back to and,
            unless C{threadPool} is given, an C{IReactorCore} whose
            shutdown stops the store's pool; default the global reactor.
        @param threadPool: a started pool, owned by the caller, to do the
            disk work in.  By default the store makes its own of
            C{diskThreads} threads at the first delivery, apart from the
            reactor's pool, and stops it when the reactor shuts down.
        @param diskThreads: the most deliveries written at once by the
            store's own pool.
        @param store: a store over C{root} to share with other servers
            (IMAP IDLE then sees each delivery at once); by default the
            backend makes its own from the arguments above.
        @param users: a users file: mail is taken for its domains, users
            and aliases only (C{domains} must then be empty).
        @param checker: checks AUTH logins (usually over the same users
            file); without one, AUTH is not offered.
        @raise ValueError: when neither domains nor a users file is given,
            or both are, or C{diskThreads} is less than one.
        """
        self.root = Path(os.path.abspath(root))
        self.domains = tuple(dict.fromkeys(normalizeDomain(d) for d in domains))
        if users is not None:
            if self.domains:
                raise ValueError(
                    "MaildirBackend takes its domains from the users file; "
                    "give no other domains"
                )
        elif not self.domains or not all(self.domains):
            raise ValueError("MaildirBackend needs at least one domain")
        self.users = users
        self.checker = checker
        if store is None:
            if diskThreads < 1:
                raise ValueError("MaildirBackend needs at least one disk thread")
            store = MaildirStore(
                self.root,
                reactor=reactor,
                threadPool=threadPool,
                diskThreads=diskThreads,
            )
        self.store = store

    def newSession(self, info: ConnectionInfo) -> MaildirSession:
        """
        @param info: the connection.
        @return: a new session, offering AUTH when the backend has a
            checker.
        """
        if self.checker is not None:
            return MaildirAuthSession(self, info)
        return MaildirSession(self, info)

    def userFor(self, address: str) -> str | None:
        """
        The account that mail for an address goes to.

        @param address: a recipient as the server parsed it.
        @return: the account's user (local part unquoted and, for
            postmaster, in lower case, then the normalized domain; with a
            users file, the user the address leads to), or L{None} when its
            domain is not ours.
        @raise SMTPReply: 550 5.1.1 for an address of a users file's domain
            that leads to no user; 451 4.3.0 (L{RECIPIENT_UNAVAILABLE}) for
            one that the users file leaves undecided, logged with the
            file's name and the line's number.
        """
        if self.users is not None:
            return self._userFromFile(address, self.users)
        local, at, domain = address.rpartition("@")
        if not at:
            if address.lower() != "postmaster":
                return None
            return f"postmaster@{self.domains[0]}"
        domain = normalizeDomain(domain)
        if domain not in self.domains:
            return None
        local = unquoteLocalPart(local)
        if local.lower() == "postmaster":
            # RFC 5321 4.5.1: postmaster is case-insensitive.
            local = "postmaster"
        return f"{local}@{domain}"

    def _userFromFile(
        self, address: str, users: UsersDatabase, log: bool = True
    ) -> str | None:
        # A skipped line comes first: it may be what would have made the
        # address ours, or kept a domain alias from taking its mail.
        problem = users.damage(address)
        if problem is not None:
            if log:
                self._log.warn(
                    "{path}:{line} was skipped ({reason}); answering "
                    "451 4.3.0 for {address} until it is fixed",
                    path=users.path,
                    line=problem.line,
                    reason=problem.reason,
                    address=address,
                )
            raise RECIPIENT_UNAVAILABLE
        _, at, domain = address.rpartition("@")
        if at and not users.isLocalDomain(domain):
            return None
        user = users.resolve(address)
        if user is None:
            raise UNKNOWN_RECIPIENT
        return normalizeAddress(user.address)

    def isLocal(self, address: str) -> bool:
        """
        Whether mail for an address is ours to deliver: its domain is one
        of ours (or it is the bare C{postmaster}), whether or not a user
        has it.  What the outbound queue asks to send a delivery status
        notification to a local sender's mailbox rather than out.

        @param address: an address, as in C{MAIL FROM} or C{RCPT TO}.
        @return: L{True} when it is local (also when the users file leaves
            it undecided: its delivery then fails for now, and is tried
            again).
        """
        try:
            if self.users is not None:
                return self._userFromFile(address, self.users, log=False) is not None
            return self.userFor(address) is not None
        except SMTPReply:
            # An address of our domains that leads to no user, or one the
            # users file leaves undecided.
            return True

    def deliverNotice(self, address: str, data: bytes) -> Deferred[None]:
        """
        Deliver a message sent with the null reverse path, such as a
        delivery status notification (RFC 3464; RFC 5321 4.5.5), to one
        local address: what the outbound queue's C{localDelivery} is
        given.  It gets C{Return-Path: <>} (RFC 5321 4.4).

        @param address: a local address (see L{isLocal}).
        @param data: the message, lines ending in CRLF or LF.
        @return: a Deferred that fires with L{None} once it is on disk, or
            fails with L{SMTPReply}: 550 5.1.1 for an address that leads to
            no user, 554 5.7.1 for one not ours, 451 4.3.0 when the users
            file leaves it undecided or the store cannot take it, 452 4.3.1
            when the disk is full.
        """
        stored = b"Return-Path: <>\n" + data.replace(b"\r\n", b"\n")
        header = Headers(splitHeaderBlock(data)[0])
        # The log names it by its Message-ID: it has no SMTP queue ID.
        messageID = header.get("Message-ID") or "a notice"
        return maybeDeferred(self.deliver, stored, [address], messageID.strip())

    def mailboxFor(self, address: str) -> Path | None:
        """
        Where mail for an address goes.

        @param address: a recipient as the server parsed it.
        @return: its account's directory (the INBOX Maildir), directly
            under L{root}, or L{None} when its domain is not ours.
        @raise SMTPReply: 553 5.1.3 when the directory name would be too
            long; 550 5.1.1 as L{userFor}.
        """
        user = self.userFor(address)
        if user is None:
            return None
        return self._accountDirectory(user)

    def accountFor(self, address: str) -> str | None:
        """
        The account that mail for an address goes to, checked as
        L{mailboxFor} checks it: what L{deliverToAccounts} takes.

        @param address: a recipient as the server parsed it.
        @return: the account's user (see L{userFor}), or L{None} when its
            domain is not ours.
        @raise SMTPReply: as L{mailboxFor}.
        """
        user = self.userFor(address)
        if user is not None:
            self._accountDirectory(user)
        return user

    def _accountDirectory(self, user: str) -> Path:
        try:
            return self.store.accountDirectory(user)
        except NameTooLong:
            raise MAILBOX_NAME_TOO_LONG from None

    def deliver(
        self, data: bytes, addresses: Iterable[str], queueID: str = ""
    ) -> Deferred[None]:
        """
        Deliver a message to the INBOX of some addresses' accounts.

        @param data: the message.
        @param addresses: local recipients (see L{mailboxFor}); duplicates
            get one copy.
        @param queueID: the server's identifier for the message, for logs.
        @return: a Deferred that fires with L{None} once every copy is on
            disk, or fails with L{SMTPReply} 451 4.3.0 (452 4.3.1 when the
            disk is full).
        """
        return self.deliverToAccounts(
            data, self.accountsFor(addresses), queueID=queueID
        )

    def accountsFor(self, addresses: Iterable[str]) -> list[str]:
        """
        The accounts that mail for some local addresses goes to.

        @param addresses: local recipients (see L{mailboxFor}).
        @return: each address's account, in order (see L{accountFor}).
        @raise SMTPReply: 554 5.7.1 for an address not ours; otherwise as
            L{mailboxFor}.
        """
        accounts: list[str] = []
        for address in addresses:
            user = self.accountFor(address)
            if user is None:
                raise RELAY_DENIED
            accounts.append(user)
        return accounts

    def deliverToAccounts(
        self, data: bytes, accounts: Iterable[str], queueID: str = ""
    ) -> Deferred[None]:
        """
        Deliver a message to the INBOX of some accounts.

        @param data: the message.
        @param accounts: the accounts' users, as L{accountFor} gives them;
            duplicates get one copy.
        @param queueID: the server's identifier for the message, for logs.
        @return: as L{deliver}.
        """
        return self._deliver(data, accounts, queueID, None)

    def deliverReceived(
        self, data: bytes, accounts: Iterable[str], message: ReceivedMessage
    ) -> Deferred[None]:
        """
        Deliver a message received over SMTP to the INBOX of some accounts,
        and log one line for it: the server's facts (queue identifier,
        peer, sender, recipients), then the size stored and the mailboxes.

        @param data: the message, as L{storedForm} makes it.
        @param accounts: as L{deliverToAccounts}.
        @param message: the message as the server received it.
        @return: as L{deliver}.
        """
        return self._deliver(data, accounts, message.queueID, message)

    def _deliver(
        self,
        data: bytes,
        accounts: Iterable[str],
        queueID: str,
        received: ReceivedMessage | None,
    ) -> Deferred[None]:
        users = list(dict.fromkeys(accounts))
        names = sorted({mailboxDirectoryName(*u.rsplit("@", 1)) for u in users})

        def delivered(_: None) -> None:
            if received is None:
                self._log.info(
                    "Maildir delivered {queueID} ({size} bytes) to {mailboxes}",
                    queueID=queueID,
                    size=len(data),
                    mailboxes=names,
                )
                return
            envelope = received.envelope
            self._log.info(
                "SMTP {queueID} accepted from {peer}: <{sender}> to "
                "{recipients}; Maildir delivered ({size} bytes) to {mailboxes}",
                queueID=queueID,
                peer=received.connection.peerHost,
                sender=envelope.sender,
                recipients=",".join(r.address for r in envelope.recipients),
                size=len(data),
                mailboxes=names,
            )

        def failed(reason: Failure) -> None:
            self._log.info(
                "Maildir delivery of {queueID} to {mailboxes} failed: {error}",
                queueID=queueID,
                mailboxes=names,
                error=str(reason.value),
            )
            raise STORE_FULL if reason.check(StoreFull) else STORE_FAILED

        return self.store.deliver(users, data).addCallbacks(delivered, failed)
