# -*- test-case-name: tests.test_tap_gomail -*-
"""
The server factories of C{twistd gomail}, and the outbound queue behind
submission, made from a checked L{GomailConfig} and the pieces they share.

Inbound SMTP is a L{MaildirBackend} over the users file, without AUTH,
wrapped in DKIM verification (through the factory's C{dkimLookup});
submission is a L{SubmissionBackend} over a second L{MaildirBackend} of
the same store and users, with the checker, in front of the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dns.exception import DNSException
from twisted.logger import Logger

from gomail_twisted.delivery import DKIMSettings
from gomail_twisted.dns import Resolver
from gomail_twisted.imap4.backend import StoreBackend as IMAP4StoreBackend
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.ipac import IPAccessControl
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.pop3 import POP3ServerFactory
from gomail_twisted.pop3 import StoreBackend as POP3StoreBackend
from gomail_twisted.queue import OutboundQueue
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.smtp.submission import SubmissionBackend
from gomail_twisted.tap._config import DNSSettings, GomailConfig, ServerSettings
from gomail_twisted.tls import ReloadingServerTLS
from gomail_twisted.users import UsersChecker, UsersDatabase

__all__ = ["Servers", "buildServers"]

_log = Logger()


@dataclass(frozen=True)
class Servers:
    """
    The factories of one mail server, and its queue.

    @ivar smtp: incoming mail.
    @ivar submission: mail from the users, behind C{submission} and
        C{submissions}.
    @ivar pop3: behind C{pop3} and C{pop3s}.
    @ivar imap: behind C{imap} and C{imaps}.
    @ivar queue: the outbound queue.
    """

    smtp: SMTPServerFactory
    submission: SMTPServerFactory
    pop3: POP3ServerFactory
    imap: IMAP4ServerFactory
    queue: OutboundQueue


def _smtpLimits(settings: ServerSettings) -> dict[str, Any]:
    limits = settings.limits()
    if settings.maxMessageSize is not None:
        limits["maxMessageSize"] = settings.maxMessageSize
    if settings.maxRecipients is not None:
        limits["maxRecipients"] = settings.maxRecipients
    return limits


def _resolver(reactor: Any, settings: DNSSettings) -> Resolver | None:
    """
    One resolver for inbound DKIM verification and the queue: on the
    configured name servers, or the system's configuration, or L{None}
    when there is none to read.
    """
    try:
        return Resolver(reactor, settings.nameservers, port=settings.port)
    except DNSException as e:
        _log.warn(
            "gomail: no DNS resolver configuration ({error}): DKIM verification "
            "is off and mail for other domains cannot be delivered",
            error=str(e),
        )
        return None


def makeQueue(
    config: GomailConfig,
    reactor: Any,
    local: MaildirBackend,
    resolver: Resolver | None = None,
) -> OutboundQueue:
    """
    The outbound queue over C{DATA/queue}: DKIM-signing with the
    configured keys, delivery status notifications for our own users
    delivered straight to their INBOX.

    @param config: the configuration.
    @param reactor: the reactor.
    @param local: delivers to our users, and says which addresses are
        ours.
    @param resolver: finds the mail exchangers of other domains; L{None}
        for one the queue makes.
    @return: the queue.
    """
    dkim = {
        domain: DKIMSettings(domain, key.selector, key.privateKey)
        for domain, key in config.dkim.items()
    }
    return OutboundQueue(
        str(config.spool),
        reactor=reactor,
        hostname=config.hostname,
        localDelivery=local.deliverNotice,
        isLocal=local.isLocal,
        dkim=dkim,
        resolver=resolver,
        **config.queue.arguments(),
    )


def buildServers(
    config: GomailConfig,
    reactor: Any,
    tls: ReloadingServerTLS,
    store: MaildirStore,
    users: UsersDatabase,
    checker: UsersChecker,
    accessControl: IPAccessControl,
) -> Servers:
    """
    Make every server factory and the queue.

    @param config: the configuration.
    @param reactor: the reactor.
    @param tls: the certificate for STARTTLS (implicit TLS is the ports').
    @param store: the one store.
    @param users: the one users file.
    @param checker: checks passwords against it.
    @param accessControl: shared by every factory.
    @return: the factories.
    """
    common = {
        "hostname": config.hostname,
        "tls": tls,
        "reactor": reactor,
        "accessControl": accessControl,
    }
    smtp = config.servers["smtp"]
    inbound = MaildirBackend(config.mail, store=store, users=users, reactor=reactor)
    local = MaildirBackend(
        config.mail, store=store, users=users, checker=checker, reactor=reactor
    )
    resolver = _resolver(reactor, config.dns)
    queue = makeQueue(config, reactor, local, resolver)
    submission = config.servers["submission"]
    imap = config.servers["imap"]
    imapSizes: dict[str, Any] = {}
    if imap.maxAppendSize is not None:
        imapSizes["maxAppendSize"] = imap.maxAppendSize
    if imap.maxLineLength is not None:
        imapSizes["maxLineLength"] = imap.maxLineLength
    return Servers(
        smtp=SMTPServerFactory(
            inbound,
            dkimLookup=(
                resolver.lookupTXT if smtp.dkimVerify and resolver is not None else None
            ),
            **common,
            **_smtpLimits(smtp),
        ),
        submission=SMTPServerFactory(
            SubmissionBackend(
                local,
                queue,
                senderPolicy="any" if submission.senderPolicy == "any" else "own",
                sentCopy=submission.sentCopy,
            ),
            **common,
            **_smtpLimits(submission),
        ),
        pop3=POP3ServerFactory(
            POP3StoreBackend(checker, store),
            **common,
            **config.servers["pop3"].limits(),
        ),
        imap=IMAP4ServerFactory(
            IMAP4StoreBackend(checker, store),
            **common,
            **imap.limits(),
            **imapSizes,
        ),
        queue=queue,
    )
