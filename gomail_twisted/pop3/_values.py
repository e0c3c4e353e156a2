# -*- test-case-name: tests.test_pop3_server -*-
"""
The frozen value objects the POP3 server hands to hooks and takes from
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gomail_twisted.connection import ConnectionInfo as ConnectionInfo
from gomail_twisted.pop3._reply import POP3Reply
from gomail_twisted.sasl import PasswordCredentials

#: What a client sent to log in: C{mechanism} is C{"USER"} for USER and
#: PASS (RFC 1939 7), C{"PLAIN"} for AUTH PLAIN (RFC 5034); the password is
#: never shown by C{repr}.
POP3Credentials = PasswordCredentials


@dataclass(frozen=True, slots=True)
class MaildropMessage:
    """
    One message of a maildrop, as listed at login.

    @ivar size: its size in octets, lines ending in CRLF, before
        dot-stuffing (RFC 1939 5, LIST).
    @ivar uidl: its unique-id (RFC 1939 7, UIDL): 1 to 70 characters from
        0x21 to 0x7E, the same in every session while the message stays.
    """

    size: int
    uidl: str


@dataclass(frozen=True)
class LoginFailure:
    """
    A login the server refused, as told to
    L{IPOP3Session.loginFailed<gomail_twisted.pop3.interfaces.IPOP3Session.loginFailed>}.

    @ivar mechanism: C{"USER"}, C{"APOP"} or C{"PLAIN"}.
    @ivar login: the login name the client gave.
    @ivar reply: what the client was told, such as C{-ERR [AUTH] ...}, or
        C{-ERR [SYS/TEMP] ...} when the check itself failed.
    @ivar connection: the connection it came on.
    """

    mechanism: str
    login: str
    reply: POP3Reply
    connection: ConnectionInfo
