# -*- test-case-name: tests.test_imap4_server -*-
"""
What an application plugs into the IMAP4 server.

A backend (L{IIMAPBackend}) hands out one session (L{IIMAPSession}) per
connection (and a new one after STARTTLS).  The session checks logins and
gives the user's account: an L{IAccount<gomail_twisted.maildir.IAccount>}
of the mail store's interface, whose folders the server serves.  An
application with mail kept elsewhere implements that interface (and
L{IFolder<gomail_twisted.maildir.IFolder>}) over its own storage.

Each hook may return a plain value, a L{Deferred} or a coroutine.  A hook
refuses by raising an L{IMAPStatus<gomail_twisted.imap4.IMAPStatus>}
(C{NO [AUTHENTICATIONFAILED] ...}, C{NO [UNAVAILABLE] ...}); any other
exception is logged and answered C{NO [UNAVAILABLE]}.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Interface

from gomail_twisted.imap4._values import ConnectionInfo, IMAPCredentials, LoginFailure


class IIMAPBackend(Interface):
    """
    Hands out sessions.
    """

    def newSession(info: ConnectionInfo) -> Any:
        """
        A client connected, or finished STARTTLS, which starts over (RFC
        3501 6.2.1).  Raise L{IMAPStatus<gomail_twisted.imap4.IMAPStatus>}
        to refuse the connection (it is sent as C{* BYE}).

        @param info: the connection.
        @return: an L{IIMAPSession}, or a Deferred or coroutine of one.
        """


class IIMAPSession(Interface):
    """
    One connection's logins.
    """

    def login(credentials: IMAPCredentials) -> Any:
        """
        LOGIN (RFC 3501 6.2.3) or AUTHENTICATE (6.2.2).  Raise
        L{IMAPStatus<gomail_twisted.imap4.IMAPStatus>} to refuse:
        C{NO [AUTHENTICATIONFAILED]} for wrong credentials, C{NO
        [UNAVAILABLE]} when the check could not be made (RFC 5530).

        @param credentials: the login, password and (PLAIN) authorization
            identity.
        @return: the user's L{IAccount<gomail_twisted.maildir.IAccount>},
            or a Deferred or coroutine of one.
        """

    def loginFailed(failure: LoginFailure) -> Any:
        """
        A login was refused, whatever the reason; called once per refusal,
        so that access control can count them.  Its outcome changes nothing
        the client sees.

        @param failure: what was tried and what the client was told.
        """

    def logout() -> Any:
        """
        The connection is closing, or starting over after STARTTLS.
        """
