# -*- test-case-name: tests.test_tap_pop3 -*-
"""
C{twistd gomail-pop3}: the POP3 server (RFC 1939) over the mail store, for
the users of a users file.

    twistd -n gomail-pop3 --users gomail-data/users --maildir ./maildir \\
        --listen tcp:110 --listen ssl:995:privateKey=key.pem:certKey=cert.pem \\
        --tls-cert cert.pem --tls-key key.pem

Each C{--listen} is a Twisted server endpoint string: C{tcp:} endpoints
offer STLS (RFC 2595), C{ssl:} endpoints are implicit TLS (RFC 8314, port
995).  Without C{--tls-cert} and C{--tls-key}, STLS uses a self-signed
certificate made at startup, for development only.  USER/PASS and AUTH are
refused before TLS unless C{--allow-plaintext-auth} is given.

A user logs in with their address and password from the users file (the
same file C{gomail-smtp --users} delivers for) and reads the INBOX of
their account under C{--maildir}, where C{gomail-smtp} puts their mail.
The users file is required: without one nobody could log in, so a missing
file is a usage error rather than a server that refuses everyone.  It
defaults to the file C{python -m gomail_twisted users} edits
(C{$GOMAIL_USERS}, or C{gomail-data/users}), so that the commands of the
README need no option.

A port that cannot be bound ends C{twistd} at startup with one line naming
the endpoint and the reason (L{ListenError}), and a non-zero exit status.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import MultiService
from twisted.python import usage

from gomail_twisted.pop3 import POP3ServerFactory, StoreBackend
from gomail_twisted.tap._common import (
    ListenError,
    ListeningService,
    ServerOptions,
    checkReadable,
    limitRows,
    listeningService,
    storeServing,
)
from gomail_twisted.users import (
    defaultUsersFile,
)

__all__ = ["DEFAULT_LISTEN", "ListenError", "Options", "makeService"]

#: Where the server listens when no C{--listen} is given: loopback only, on
#: an unprivileged port (the standard one is 110).
DEFAULT_LISTEN = "tcp:1110:interface=127.0.0.1"

#: The plugin's name, which starts a L{ListenError}'s message.
PLUGIN = "gomail-pop3"


class Options(ServerOptions):
    """
    The command line of C{twistd gomail-pop3}.

    After parsing, C{options["listen"]} is a list with its default filled
    in, C{options["hostname"]} and C{options["users"]} are set, and
    C{options["tls"]} holds the context factory loaded from C{--tls-cert}
    and C{--tls-key}, or L{None}.
    """

    defaultListen = DEFAULT_LISTEN
    synopsis = "[options]"
    longdesc = (
        "A POP3 server for the users of a users file, each reading the INBOX "
        "of their account in the Maildir store (MAILDIR/<address>/), where "
        "gomail-smtp delivers. --listen takes Twisted server endpoint "
        "strings: tcp:... offers STLS, ssl:... is implicit TLS."
    )

    optFlags = [
        [
            "allow-plaintext-auth",
            None,
            "Accept USER/PASS and AUTH PLAIN without TLS (passwords then cross "
            "the network in clear text).",
        ],
    ]
    optParameters = [
        [
            "users",
            None,
            None,
            "The users file (python -m gomail_twisted users) whose users may "
            "log in (default: $GOMAIL_USERS, or gomail-data/users).",
        ],
        *limitRows(POP3ServerFactory),
    ]

    def opt_listen(self, endpoint: str) -> None:
        """
        A server endpoint to listen on; repeatable
        (default: tcp:1110:interface=127.0.0.1).
        """
        self.addListen(endpoint)

    def postOptions(self) -> None:
        """
        Fill in the defaults and check what was given.

        @raise usage.UsageError: for an endpoint Twisted cannot parse, a
            malformed host name, a lone or unreadable C{--tls-cert} or
            C{--tls-key}, or a users file that cannot be read.
        """
        self.checkServerOptions()
        if self["users"] is None:
            path = defaultUsersFile()
            if not os.path.exists(path):
                raise usage.UsageError(
                    f"no users file at {path}: give --users, or make "
                    "one (python -m gomail_twisted users add ADDRESS)"
                )
            self["users"] = path
        checkReadable("users", self["users"])
        self.loadTLSFiles()


class POP3Service(ListeningService):
    """
    The listening ports of one L{POP3ServerFactory}; stopping it stops the
    ports, then closes the open sessions politely (C{-ERR [SYS/TEMP]}, with
    nothing deleted), dropping whatever is left after C{graceSeconds}.
    """


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """
    The POP3 server over the Maildir store, on every endpoint.

    Starting the service raises L{ListenError} when an endpoint cannot
    listen.

    @param options: parsed L{Options}.
    @param reactor: the reactor to listen with and take time from; by
        default the global one.
    @return: a L{POP3Service} with one C{StreamServerEndpointService} per
        C{--listen}, all sharing one L{POP3ServerFactory}.
    """
    if reactor is None:
        from twisted.internet import reactor

    serving = storeServing(options, reactor, "POP3", "STLS")
    factory = POP3ServerFactory(
        StoreBackend(serving.checker, serving.store),
        hostname=serving.hostname,
        tls=serving.tls,
        **serving.limits,
    )
    service = POP3Service(factory, reactor, closing=[serving.store.close])
    return listeningService(service, options["listen"], reactor, "POP3", PLUGIN)
