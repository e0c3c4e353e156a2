# -*- test-case-name: tests.test_tap_imap4 -*-
"""
C{twistd gomail-imap4}: the IMAP4rev1 server (RFC 3501) over the mail
store, for the users of a users file.

    twistd -n gomail-imap4 --users gomail-data/users --maildir ./maildir \\
        --listen tcp:143 --listen ssl:993:privateKey=key.pem:certKey=cert.pem \\
        --tls-cert cert.pem --tls-key key.pem

Each C{--listen} is a Twisted server endpoint string: C{tcp:} endpoints
offer STARTTLS (RFC 3501 6.2.1, standard port 143), C{ssl:} endpoints are
implicit TLS (RFC 8314, port 993).  The default listens on loopback only,
on the unprivileged port 1143.  Without C{--tls-cert} and C{--tls-key},
STARTTLS uses a self-signed certificate made at startup, for development
only.  LOGIN and AUTHENTICATE PLAIN are refused before TLS
(C{LOGINDISABLED}, C{NO [PRIVACYREQUIRED]}) unless
C{--allow-plaintext-auth} is given.

A user logs in with their address and password from the users file (the
same file C{gomail-smtp --users} delivers for) and reads their account
under C{--maildir}: the INBOX where C{gomail-smtp} puts their mail, and
their Maildir++ folders.  The users file is required, and defaults to the
file C{python -m gomail_twisted users} edits, as for C{gomail-pop3}.

C{--timeout} defaults to the 30 minutes RFC 3501 5.4 asks an idle client
be given at least; smaller values are accepted (as C{gomail-pop3} accepts
less than RFC 1939's ten minutes), for a server that must shed idle
clients, at the cost of clients that IDLE for longer without sending
C{DONE}.

A port that cannot be bound ends C{twistd} at startup with one line naming
the endpoint and the reason (L{ListenError}), and a non-zero exit status.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import MultiService
from twisted.python import usage

from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.imap4.factory import (
    DEFAULT_MAX_APPEND,
    DEFAULT_MAX_COMMAND,
    DEFAULT_MAX_LINE,
    IMAP4ServerFactory,
)
from gomail_twisted.tap._common import (
    ListenError,
    ListeningService,
    Row,
    ServerOptions,
    checkReadable,
    limitRows,
    listeningService,
    size,
    storeServing,
)
from gomail_twisted.users import (
    defaultUsersFile,
)

__all__ = ["DEFAULT_LISTEN", "ListenError", "Options", "makeService"]

#: Where the server listens when no C{--listen} is given: loopback only, on
#: an unprivileged port (the standard ones are 143, and 993 for implicit
#: TLS).
DEFAULT_LISTEN = "tcp:1143:interface=127.0.0.1"

#: The plugin's name, which starts a L{ListenError}'s message.
PLUGIN = "gomail-imap4"

#: The shortest C{--max-line-length} the server takes.
MIN_LINE = 1024

#: What the shared limit rows say, in IMAP's words where they differ.
_LIMIT_TEXT = {
    "timeout": (
        "Seconds of client silence before the server says BYE and hangs up; "
        "RFC 3501 5.4 asks for at least 1800 (30 minutes)."
    ),
    "max-errors": (
        "BAD replies (malformed or out-of-state commands) per connection "
        "before the server says BYE and hangs up."
    ),
}


def _limitRows() -> list[Row]:
    """
    The shared limits' rows, with the defaults of L{IMAP4ServerFactory}.
    """
    rows = limitRows(IMAP4ServerFactory)
    for row in rows:
        row[3] = _LIMIT_TEXT.get(row[0], row[3])
    return rows


class Options(ServerOptions):
    """
    The command line of C{twistd gomail-imap4}.

    After parsing, C{options["listen"]} is a list with its default filled
    in, C{options["hostname"]} and C{options["users"]} are set, and
    C{options["tls"]} holds the context factory loaded from C{--tls-cert}
    and C{--tls-key}, or L{None}.
    """

    defaultListen = DEFAULT_LISTEN
    synopsis = "[options]"
    longdesc = (
        "An IMAP4rev1 server for the users of a users file, each reading "
        "their account in the Maildir store (MAILDIR/<address>/: the INBOX "
        "where gomail-smtp delivers, and Maildir++ folders). --listen takes "
        "Twisted server endpoint strings: tcp:... offers STARTTLS (standard "
        "port 143), ssl:... is implicit TLS (standard port 993)."
    )

    optFlags = [
        [
            "allow-plaintext-auth",
            None,
            "Accept LOGIN and AUTHENTICATE PLAIN without TLS (passwords then "
            "cross the network in clear text).",
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
        [
            "max-append-size",
            None,
            DEFAULT_MAX_APPEND,
            "Largest message APPEND takes, announced as APPENDLIMIT (RFC 7889).",
            size("max-append-size"),
        ],
        [
            "max-line-length",
            None,
            DEFAULT_MAX_LINE,
            "Longest command line, CRLF included, literals aside; from 1K to 1M.",
            size("max-line-length"),
        ],
        *_limitRows(),
    ]

    def opt_listen(self, endpoint: str) -> None:
        """
        A server endpoint to listen on; repeatable
        (default: tcp:1143:interface=127.0.0.1).
        """
        self.addListen(endpoint)

    def postOptions(self) -> None:
        """
        Fill in the defaults and check what was given.

        @raise usage.UsageError: for an endpoint Twisted cannot parse, a
            malformed host name, a C{--max-line-length} out of range, a
            lone or unreadable C{--tls-cert} or C{--tls-key}, or a users
            file that cannot be read.
        """
        self.checkServerOptions()
        length = self["max-line-length"]
        if not MIN_LINE <= length <= DEFAULT_MAX_COMMAND:
            raise usage.UsageError(
                f"--max-line-length wants {MIN_LINE} to {DEFAULT_MAX_COMMAND} "
                f"bytes (1K to 1M), not {length}"
            )
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


class IMAP4Service(ListeningService):
    """
    The listening ports of one L{IMAP4ServerFactory}; stopping it stops the
    ports, then closes the open sessions politely (C{* BYE [UNAVAILABLE]},
    once the command in hand is answered), dropping whatever is left after
    C{graceSeconds}, and last closes the store: the watches on the folders
    sessions had selected, and its thread pool.
    """


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """
    The IMAP4 server over the Maildir store, on every endpoint.

    Starting the service raises L{ListenError} when an endpoint cannot
    listen.

    @param options: parsed L{Options}.
    @param reactor: the reactor to listen with and take time from; by
        default the global one.
    @return: an L{IMAP4Service} with one C{StreamServerEndpointService} per
        C{--listen}, all sharing one L{IMAP4ServerFactory}.
    """
    if reactor is None:
        from twisted.internet import reactor

    serving = storeServing(options, reactor, "IMAP4", "STARTTLS")
    factory = IMAP4ServerFactory(
        StoreBackend(serving.checker, serving.store),
        hostname=serving.hostname,
        tls=serving.tls,
        maxLineLength=options["max-line-length"],
        maxAppendSize=options["max-append-size"],
        **serving.limits,
    )
    service = IMAP4Service(factory, reactor, closing=[serving.store.close])
    return listeningService(service, options["listen"], reactor, "IMAP4", PLUGIN)
