# -*- test-case-name: tests.test_smtp_submission -*-
"""
The backend of the mail submission ports: message submission (RFC 6409,
port 587, STARTTLS then AUTH) and its implicit-TLS form (RFC 8314 3.3, port
465).  Users of the mail server log in and send mail to anyone: to the
users of our own domains, delivered at once to their store, and to other
domains, handed to the outbound queue.

    local = MaildirBackend(root, users=users, checker=UsersChecker(users, hashing))
    outbound = OutboundQueue(spool, reactor=reactor, hostname="mx.example.com")
    backend = SubmissionBackend(local, outbound, sentCopy=True)
    factory = SMTPServerFactory(backend, hostname="mx.example.com", tls=tls,
                                requireTLS=True)

The rules, in the order a client meets them:

  - AUTH (RFC 4954) against the L{MaildirBackend}'s checker, the same
    passwords as POP3 and IMAP.  Every transaction needs it: MAIL before
    AUTH is answered C{530 5.7.0 Authentication required} (RFC 4954 6,
    RFC 6409 4.3), so the submission port is never a relay for strangers.
  - MAIL FROM: with the C{"own"} sender policy (the default) the reverse
    path must be an address that leads to the logged-in user: their own
    address, or an alias (or a domain alias) of the users file that
    resolves to them, compared in normal form (L{normalizeAddress}).  Any
    other address, and the null reverse path C{<>}, is refused with C{553
    5.7.1} (RFC 5321 4.2.3 553: mailbox name not allowed; RFC 3463 X.7.1:
    not authorized).  The C{"any"} policy takes any sender, C{<>} too, for
    a site whose users may send as anyone (RFC 6409 6.1 leaves it to site
    policy).  A reverse path whose line of the users file (or whose
    domain's) was skipped is answered C{451 4.3.0}: whether the user owns
    it cannot be known until the operator fixes the line.
  - RCPT TO: an address of our domains must lead to a user (C{550 5.1.1},
    as on the inbound port); an address of any other domain is taken for
    the outbound queue.  An address that the users file leaves undecided
    (a skipped line names it or its domain) is answered C{451 4.3.0},
    never taken for the queue.
  - The message: the server has put its C{Received:} header first (RFC
    5321 4.4; C{with ESMTPSA}, RFC 3848), and no second trace header is
    added.  A message without a C{Date:} or a C{Message-ID:} field gets
    one at the end of its header (RFC 6409 8.3, 8.4; many receivers refuse
    mail without them), unless C{addMissingHeaders} is off; nothing else
    is changed.  Local recipients get it in their INBOX with
    C{Return-Path:}, as L{MaildirBackend} delivers; remote ones through
    the queue, in wire form (lines ending in CRLF, dot-unstuffed).  The
    server answers 250 only once both are durable on disk (RFC 5321 6.1).

Local delivery comes first, then the queue.  Neither can be undone, so a
failure after the other succeeded cannot be made whole; the order is chosen
so that the one harm left falls on our own users: when the queue refuses
after the local copies are stored, the client is told C{451 4.3.0} and
tries the whole message again later, and the local recipients get it twice;
no remote recipient ever gets a message that a client was told failed.
(Each step is atomic on its own: the store delivers to all local accounts
or none, and the queue takes a message for all its recipients or none.)

With C{sentCopy}, the message as the server received it (our C{Received:}
header first, lines ending in CRLF) is kept in the sender's C{Sent} folder,
flagged C{\\Seen} (the folder is made if the account lacks it), after both
deliveries, before the 250.  A copy that cannot be stored is logged and
does not change the reply: the message went out, and a client told to try
again would send it to every recipient a second time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Literal, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.address import normalizeAddress
from gomail_twisted.maildir import (
    DISK_ERRORS,
    FULL_ERRORS,
    SEEN,
    FolderExists,
    NoSuchFolder,
)
from gomail_twisted.message import Headers
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    MailFrom,
    ReceivedMessage,
    Recipient,
)
from gomail_twisted.smtp.interfaces import ISMTPAuthSession, ISMTPBackend
from gomail_twisted.smtp.maildir import (
    RECIPIENT_UNAVAILABLE,
    MaildirAuthSession,
    storedForm,
)

if TYPE_CHECKING:
    from gomail_twisted.smtp.maildir import MaildirBackend

#: MAIL before AUTH (RFC 4954 6).
AUTH_REQUIRED = SMTPReply(530, "5.7.0", "Authentication required")
#: A reverse path that does not lead to the logged-in user (RFC 5321 4.2.3
#: 553, RFC 3463 X.7.1).
SENDER_NOT_OWNED = SMTPReply(553, "5.7.1", "Sender address not owned by user")
#: The null reverse path under the C{"own"} policy.
NULL_SENDER_REFUSED = SMTPReply(
    553, "5.7.1", "Null sender not allowed here, send from your own address"
)
#: The queue could not take the message (RFC 3463 4.3.0).
QUEUE_FAILED = SMTPReply(451, "4.3.0", "Could not queue the message, try again later")
#: The queue's disk is full (RFC 5321 4.2.3 452, RFC 3463 4.3.1).
QUEUE_FULL = SMTPReply(452, "4.3.1", "Insufficient storage, try again later")
#: A reverse path that the users file leaves undecided: a line naming it,
#: or its domain, was skipped (RFC 3463 4.3.0).
SENDER_UNAVAILABLE = SMTPReply(
    451, "4.3.0", "Sender address temporarily unavailable, try again later"
)

#: The sender policies: the user's own addresses only, or any address.
SenderPolicy = Literal["own", "any"]

#: The folder that C{sentCopy} keeps copies in (RFC 6154 C{\\Sent}).
SENT = "Sent"


class Outbound(Protocol):
    """
    What takes mail for other domains: the outbound queue
    (L{gomail_twisted.queue.OutboundQueue}), or anything with its
    C{submit}.
    """

    def submit(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> Deferred[str]:
        """
        Take a message for delivery.

        @param sender: the reverse path, C{""} for the null one.
        @param recipients: the forward paths, none of ours.
        @param data: the whole message, lines ending in CRLF, dot-unstuffed.
        @return: a Deferred firing with the queue's identifier only once the
            message is durably on disk; failing (an L{SMTPReply} is given
            to the client as it is, a full disk is C{452 4.3.1}, anything
            else C{451 4.3.0}) when it was not taken.
        """


def completeHeaders(raw: bytes, hostname: str, now: float) -> bytes:
    """
    Add the C{Date:} and C{Message-ID:} fields a submitted message lacks
    (RFC 6409 8.3, 8.4; RFC 5322 3.6.1, 3.6.4), at the end of its header.

    @param raw: the message, lines ending in CRLF.
    @param hostname: our host name, the right side of a new message ID.
    @param now: the time for a new C{Date:}, in seconds since the epoch.
    @return: the message, unchanged when it has both fields or no blank
        line ending a header.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw
    end += 2
    headers = Headers(raw[:end])
    added = []
    if "Date" not in headers:
        added.append(f"Date: {formatdate(now, localtime=True)}\r\n")
    if "Message-ID" not in headers:
        added.append(f"Message-ID: <{uuid.uuid4().hex}@{hostname or 'localhost'}>\r\n")
    if not added:
        return raw
    return raw[:end] + "".join(added).encode("utf-8") + raw[end:]


def queueReply(reason: Failure) -> SMTPReply:
    """
    The reply for a queue's failure.

    @param reason: why L{Outbound.submit} failed.
    @return: the failure's own L{SMTPReply}; L{QUEUE_FULL} for an
        C{OSError} of a full disk or quota; else L{QUEUE_FAILED}.
    """
    value = reason.value
    if isinstance(value, SMTPReply):
        return value
    if isinstance(value, OSError) and value.errno in FULL_ERRORS:
        return QUEUE_FULL
    return QUEUE_FAILED


@implementer(ISMTPAuthSession)
class SubmissionSession(MaildirAuthSession):
    """
    One connection to a L{SubmissionBackend}: AUTH against the users file,
    then any number of transactions as the logged-in user.

    @ivar submission: the backend that made the session.
    """

    _log = Logger()

    def __init__(self, submission: SubmissionBackend, info: ConnectionInfo) -> None:
        """
        @param submission: the backend.
        @param info: the connection.
        """
        super().__init__(submission.local, info)
        self.submission = submission
        self._login: str | None = None

    def mailFrom(self, sender: MailFrom) -> None:
        """
        Start a transaction of the logged-in user.

        @raise SMTPReply: 530 5.7.0 before AUTH (RFC 4954 6); 553 5.7.1 for
            a reverse path the sender policy refuses; 451 4.3.0 for one the
            users file leaves undecided.
        """
        if sender.login is None:
            self._log.info(
                "Submission refused MAIL before AUTH from {peer}",
                peer=self.info.peerHost,
            )
            raise AUTH_REQUIRED
        if not self.submission.mayUseSender(sender.login, sender.address):
            self._log.info(
                "Submission refused sender <{sender}> for {login} from {peer}",
                sender=sender.address,
                login=sender.login,
                peer=self.info.peerHost,
            )
            raise NULL_SENDER_REFUSED if not sender.address else SENDER_NOT_OWNED
        self._login = sender.login

    def rcptTo(self, recipient: Recipient) -> None:
        """
        Accept a user of our domains, or any address of another domain.

        @raise SMTPReply: 530 5.7.0 outside an authenticated transaction;
            550 5.1.1 for an address of our domains that leads to no user;
            451 4.3.0 for one the users file leaves undecided; 553 5.1.3
            for one too long to be a mailbox.
        """
        if self._login is None:
            raise AUTH_REQUIRED
        # Raises for an unknown local address; None for another domain.
        self.backend.mailboxFor(recipient.address)

    def reset(self) -> None:
        """
        Forget the transaction.
        """
        self._login = None

    def message(self, message: ReceivedMessage) -> Deferred[None]:
        """
        Deliver to the local recipients, then queue for the remote ones,
        then keep the sender's copy; see the module's description for the
        order and what a failure between the steps means.

        @return: a Deferred firing once the message is durable; failing
            with L{SMTPReply} 451 4.3.0 or 452 4.3.1 when the store or the
            queue could not take it (nothing is reported delivered then).
        """
        return Deferred.fromCoroutine(self._submit(message))

    async def _submit(self, message: ReceivedMessage) -> None:
        login = message.login
        if login is None:
            raise AUTH_REQUIRED
        if self.submission.addMissingHeaders:
            raw = completeHeaders(message.raw, message.connection.hostname, time.time())
            if raw is not message.raw:
                message = replace(message, raw=raw)
        local: list[str] = []
        remote: list[str] = []
        for recipient in message.envelope.recipients:
            if self.backend.userFor(recipient.address) is None:
                remote.append(recipient.address)
            else:
                local.append(recipient.address)
        if local:
            await self.backend.deliver(
                storedForm(message), local, queueID=message.queueID
            )
        if remote:
            await self._queue(message, remote, local)
        if self.submission.sentCopy:
            await self._keepCopy(login, message)

    async def _queue(
        self, message: ReceivedMessage, remote: list[str], delivered: list[str]
    ) -> None:
        sender = message.envelope.sender
        try:
            queued = await self.submission.outbound.submit(sender, remote, message.raw)
        except Exception:
            reason = Failure()
            reply = queueReply(reason)
            # The local copies stay: the client will send again, and they
            # will have the message twice (see the module's description).
            fields: dict[str, Any] = {
                "queueID": message.queueID,
                "code": reply.code,
                "delivered": ",".join(delivered) or "none",
            }
            value = reason.value
            if isinstance(value, OSError) and value.errno in DISK_ERRORS:
                # The disk's own words say it all: one line, no traceback.
                self._log.warn(
                    "Submission {queueID} could not be queued ({code}): "
                    "{reason}; local recipients already delivered: {delivered}",
                    reason=str(value),
                    **fields,
                )
            elif reply is QUEUE_FAILED:
                self._log.failure(
                    "Submission {queueID} could not be queued ({code});"
                    " local recipients already delivered: {delivered}",
                    failure=reason,
                    **fields,
                )
            else:
                self._log.info(
                    "Submission {queueID} could not be queued ({code}): "
                    "{reason}; local recipients already delivered: {delivered}",
                    reason=str(value),
                    **fields,
                )
            raise reply from None
        self._log.info(
            "Submission {queueID} from {login} queued as {queued} for {recipients}",
            queueID=message.queueID,
            login=message.login,
            queued=queued,
            recipients=",".join(remote),
        )

    async def _keepCopy(self, login: str, message: ReceivedMessage) -> None:
        folder = self.submission.sentFolder
        try:
            account = await self.backend.store.openAccount(login, create=True)
            try:
                await account.append(folder, message.raw, [SEEN])
            except NoSuchFolder:
                try:
                    await account.createFolder(folder)
                except FolderExists:
                    pass
                await account.append(folder, message.raw, [SEEN])
        except Exception:
            self._log.failure(
                "Submission {queueID}: no copy kept in {folder} of {login}",
                failure=Failure(),
                queueID=message.queueID,
                folder=folder,
                login=login,
            )


@implementer(ISMTPBackend)
class SubmissionBackend:
    """
    The backend of the submission ports (RFC 6409, RFC 8314): authenticated
    users send to our users (delivered by a L{MaildirBackend}) and to
    anyone else (through an L{Outbound} queue).

    The inbound port (25) keeps a plain L{MaildirBackend}: mail for our
    users only, no relaying, logged in or not.

    @ivar local: the backend that delivers to our users and checks logins.
    @ivar outbound: where mail for other domains goes.
    @ivar senderPolicy: C{"own"} or C{"any"}.
    @ivar sentCopy: whether a copy goes to the sender's L{sentFolder}.
    @ivar sentFolder: the folder for those copies.
    @ivar addMissingHeaders: whether a message lacking C{Date:} or
        C{Message-ID:} is given one.
    """

    def __init__(
        self,
        local: MaildirBackend,
        outbound: Outbound,
        *,
        senderPolicy: SenderPolicy = "own",
        sentCopy: bool = False,
        sentFolder: str = SENT,
        addMissingHeaders: bool = True,
    ) -> None:
        """
        @param local: delivers to our users and checks AUTH logins: it must
            have a checker, usually with the users file whose aliases then
            count as the users' own addresses.
        @param outbound: takes mail for other domains (the outbound queue).
        @param senderPolicy: C{"own"} (the default): the reverse path must
            lead to the logged-in user, and C{<>} is refused; C{"any"}: any
            reverse path is taken.
        @param sentCopy: keep a copy of each message in the sender's
            C{sentFolder}, made if missing.
        @param sentFolder: the folder for those copies.
        @param addMissingHeaders: give a message without C{Date:} or
            C{Message-ID:} the field it lacks (RFC 6409 8.3, 8.4).
        @raise ValueError: when C{local} has no checker (no one could log
            in), or for an unknown sender policy.
        """
        if local.checker is None:
            raise ValueError("SubmissionBackend needs a MaildirBackend with a checker")
        if senderPolicy not in ("own", "any"):
            raise ValueError(f"unknown sender policy {senderPolicy!r}")
        self.local = local
        self.outbound = outbound
        self.senderPolicy: SenderPolicy = senderPolicy
        self.sentCopy = sentCopy
        self.sentFolder = sentFolder
        self.addMissingHeaders = addMissingHeaders

    def newSession(self, info: ConnectionInfo) -> SubmissionSession:
        """
        @param info: the connection.
        @return: a new session, offering AUTH.
        """
        return SubmissionSession(self, info)

    def mayUseSender(self, login: str, address: str) -> bool:
        """
        Whether a logged-in user may send with a reverse path.

        @param login: the identity the user logged in as (their address).
        @param address: the reverse path, C{""} for the null one.
        @return: always L{True} with the C{"any"} policy; with C{"own"},
            whether the address is ours and leads to the user (their
            address, or an alias of theirs), compared in normal form.
        @raise SMTPReply: 451 4.3.0 (L{SENDER_UNAVAILABLE}) with C{"own"}
            when the users file leaves the address undecided (a line naming
            it, or its domain, was skipped); logged with the file and line.
        """
        if self.senderPolicy == "any":
            return True
        if not address:
            return False
        try:
            owner = self.local.userFor(address)
            return owner is not None and normalizeAddress(owner) == normalizeAddress(
                login
            )
        except SMTPReply as e:
            if e is RECIPIENT_UNAVAILABLE:
                raise SENDER_UNAVAILABLE from None
            return False
        except ValueError:
            return False
