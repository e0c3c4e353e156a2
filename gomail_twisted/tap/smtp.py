# -*- test-case-name: tests.test_tap_smtp -*-
"""
C{twistd gomail-smtp}: the ESMTP server on the Maildir backend, as a mail
sink for some domains.

    twistd -n gomail-smtp --domain example.com --maildir /var/mail/sink \\
        --listen tcp:25 --listen ssl:465:privateKey=key.pem:certKey=cert.pem \\
        --tls-cert cert.pem --tls-key key.pem

Each C{--listen} is a Twisted server endpoint string: C{tcp:} endpoints
offer STARTTLS (RFC 3207), C{ssl:} endpoints are implicit TLS (RFC 8314).
Without C{--tls-cert} and C{--tls-key}, STARTTLS uses a self-signed
certificate made at startup, for development only.

The host name defaults to L{gomail_twisted._hostname.localHostName}: the
name set on the machine, completed with its domain when the resolver
knows it, never C{localhost} merely because C{/etc/hosts} says so.  Mail is
accepted for that name and C{localhost} unless C{--domain} says otherwise.

With C{--users}, mail is taken only for the users and aliases of the
users file, and its users may log in with AUTH after STARTTLS.

A port that cannot be bound ends C{twistd} at startup with one line naming
the endpoint and the reason (L{ListenError}), and a non-zero exit status.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from dns.exception import DNSException
from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python import usage

from gomail_twisted.address import checkDomain
from gomail_twisted.dns import Resolver
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.tap._common import (
    ListenError,
    ListeningService,
    ServerOptions,
    checkReadable,
    developmentTLS,
    limitRows,
    listeningService,
    positive,
    size,
)
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase

__all__ = ["DEFAULT_LISTEN", "ListenError", "Options", "SMTPService", "makeService"]

#: Where the server listens when no C{--listen} is given: loopback only, on
#: an unprivileged port.
DEFAULT_LISTEN = "tcp:2525:interface=127.0.0.1"

#: The plugin's name, which starts a L{ListenError}'s message.
PLUGIN = "gomail-smtp"

_FACTORY = inspect.signature(SMTPServerFactory).parameters


class Options(ServerOptions):
    """
    The command line of C{twistd gomail-smtp}.

    After parsing, C{options["listen"]} and C{options["domain"]} are lists
    with their defaults filled in, C{options["hostname"]} is set, and
    C{options["tls"]} holds the context factory loaded from C{--tls-cert}
    and C{--tls-key}, or L{None}.
    """

    defaultListen = DEFAULT_LISTEN
    synopsis = "[options]"
    longdesc = (
        "An ESMTP server that delivers mail for its domains to Maildir "
        "folders, one per address (MAILDIR/<address>/new/), and refuses all "
        "other recipients. With --users, only the users and aliases of the "
        "users file get mail, and they may log in with AUTH. --listen takes "
        "Twisted server endpoint strings: tcp:... offers STARTTLS, ssl:... is "
        "implicit TLS."
    )

    optFlags = [
        ["no-tls", None, "Offer no STARTTLS."],
        [
            "no-dkim",
            None,
            "Do not verify DKIM signatures (verified by default, with the result "
            "in an Authentication-Results header).",
        ],
        ["require-tls", None, "Refuse MAIL before STARTTLS (530 5.7.0)."],
    ]
    optParameters = [
        [
            "users",
            None,
            None,
            "A users file (python -m gomail_twisted users): take mail for its "
            "domains, users and aliases only, and offer AUTH (after STARTTLS) "
            "against it. Without one, every address of the --domain domains "
            "gets a mailbox.",
        ],
        [
            "max-size",
            None,
            _FACTORY["maxMessageSize"].default,
            "Largest message accepted.",
            size("max-size"),
        ],
        [
            "max-recipients",
            None,
            _FACTORY["maxRecipients"].default,
            "Recipients per message.",
            positive("max-recipients", int),
        ],
        *limitRows(SMTPServerFactory),
    ]

    def __init__(self) -> None:
        super().__init__()
        self["domain"] = []

    def opt_listen(self, endpoint: str) -> None:
        """
        A server endpoint to listen on; repeatable
        (default: tcp:2525:interface=127.0.0.1).
        """
        self.addListen(endpoint)

    def opt_domain(self, domain: str) -> None:
        """
        A domain to accept mail for; repeatable (default: the host name and
        localhost).
        """
        self["domain"].append(domain)

    def postOptions(self) -> None:
        """
        Fill in the defaults and check what was given.

        @raise usage.UsageError: for an endpoint Twisted cannot parse, a
            malformed host name or domain, a lone or unreadable C{--tls-cert} or
            C{--tls-key}, or options that contradict each other.
        """
        self.checkServerOptions()
        if self["users"] is not None:
            if self["domain"]:
                raise usage.UsageError(
                    "--domain and --users: the users file declares the domains "
                    "(python -m gomail_twisted users domain add DOMAIN)"
                )
            checkReadable("users", self["users"])
        elif not self["domain"]:
            self["domain"] = [self["hostname"]]
            if self["hostname"].lower() != "localhost":
                self["domain"].append("localhost")
        for domain in self["domain"]:
            if not checkDomain(domain.rstrip(".")):
                raise usage.UsageError(f"--domain {domain!r} is not a domain")
        if self["tls-cert"] is not None and self["no-tls"]:
            raise usage.UsageError("--no-tls contradicts --tls-cert and --tls-key")
        self.loadTLSFiles()
        if self["require-tls"] and self["no-tls"]:
            plain = [d for d in self["listen"] if not d.lower().startswith("ssl:")]
            if plain:
                raise usage.UsageError(
                    f"--require-tls with --no-tls leaves {plain[0]} unusable"
                )


class SMTPService(ListeningService):
    """
    The listening ports of one L{SMTPServerFactory}; stopping it stops the
    ports, then closes the open sessions politely (421 4.3.2), dropping
    whatever is left after C{graceSeconds}.
    """

    def __init__(
        self,
        factory: SMTPServerFactory,
        reactor: IReactorTime,
        graceSeconds: float = 10.0,
    ) -> None:
        """
        @param factory: the factory behind every port.
        @param reactor: provides the clock for the grace period.
        @param graceSeconds: how long sessions have to finish.
        """
        super().__init__(factory, reactor, graceSeconds)


# makeService is a function, so its events get a module-level logger.
_log = Logger()


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """
    The SMTP server, delivering to Maildir folders, on every endpoint.

    Starting the service raises L{ListenError} when an endpoint cannot
    listen.

    @param options: parsed L{Options}.
    @param reactor: the reactor to listen with and take time from; by
        default the global one.
    @return: an L{SMTPService} with one C{StreamServerEndpointService} per
        C{--listen}, all sharing one L{SMTPServerFactory}.
    """
    if reactor is None:
        from twisted.internet import reactor

    hostname = options["hostname"]
    tls = options["tls"]
    if tls is None and not options["no-tls"]:
        tls = developmentTLS(hostname, "STARTTLS", ", or --no-tls")
    maildir = os.path.abspath(options["maildir"])
    if options["users"] is not None:
        users = UsersDatabase(os.path.abspath(options["users"]))
        checker = UsersChecker(users, PasswordHashing(reactor))
        backend = MaildirBackend(maildir, users=users, checker=checker, reactor=reactor)
        domains = list(users.domains())
        if not domains:
            _log.warn(
                "The users file {path} declares no domain: all mail is refused",
                path=users.path,
            )
    else:
        backend = MaildirBackend(maildir, options["domain"], reactor=reactor)
        domains = list(backend.domains)
    dkimLookup = None
    if not options["no-dkim"]:
        try:
            dkimLookup = Resolver(reactor).lookupTXT
        except DNSException as e:
            _log.warn(
                "DKIM verification is off: no DNS resolver configuration ({error})",
                error=str(e),
            )
    factory = SMTPServerFactory(
        backend,
        hostname=hostname,
        tls=tls,
        maxMessageSize=options["max-size"],
        maxRecipients=options["max-recipients"],
        timeout=options["timeout"],
        requireTLS=bool(options["require-tls"]),
        maxConnections=options["max-connections"],
        maxConnectionsPerPeer=options["max-connections-per-peer"],
        maxErrors=options["max-errors"],
        tlsHandshakeTimeout=options["tls-handshake-timeout"],
        dkimLookup=dkimLookup,
        reactor=reactor,
    )
    _log.info(
        "SMTP server {hostname} accepting mail for {domains} into {maildir}",
        hostname=hostname,
        domains=domains,
        maildir=maildir,
    )
    return listeningService(
        SMTPService(factory, reactor), options["listen"], reactor, "SMTP", PLUGIN
    )
