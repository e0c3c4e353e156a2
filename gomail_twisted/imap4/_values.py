# -*- test-case-name: tests.test_imap4_server -*-
"""
The frozen value objects the IMAP4 server hands to hooks.
"""

from __future__ import annotations

from dataclasses import dataclass

from gomail_twisted.connection import ConnectionInfo as ConnectionInfo
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.sasl import PasswordCredentials

#: What a client sent to log in: C{mechanism} is C{"LOGIN"} for the LOGIN
#: command (RFC 3501 6.2.3), else the SASL mechanism of AUTHENTICATE; the
#: password is never shown by C{repr}.
IMAPCredentials = PasswordCredentials


@dataclass(frozen=True)
class LoginFailure:
    """
    A login the server refused, as told to
    L{IIMAPSession.loginFailed<gomail_twisted.imap4.IIMAPSession.loginFailed>}.

    @ivar mechanism: C{"LOGIN"}, or the SASL mechanism.
    @ivar login: the login name the client gave.
    @ivar status: what the client was told, such as C{NO
        [AUTHENTICATIONFAILED] ...}, or C{NO [UNAVAILABLE] ...} when the
        check itself failed.
    @ivar connection: the connection it came on.
    """

    mechanism: str
    login: str
    status: IMAPStatus
    connection: ConnectionInfo
