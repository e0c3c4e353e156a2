# -*- test-case-name: tests.test_smtp_server -*-
"""
What an application plugs into the SMTP server.

A backend (L{ISMTPBackend}) hands out one session (L{ISMTPSession}) per
connection; the session's methods are the steps of the protocol, called in
order.  Each may return a plain value, a L{Deferred} or a coroutine.  A step
accepts by returning (or returning an L{SMTPReply} to send instead of the
default positive reply) and refuses by raising an L{SMTPReply}; any other
exception is logged and answered C{451 4.3.0}.

Optional abilities are separate interfaces: a session that provides
L{ISMTPAuthSession} gets AUTH advertised.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Interface

from gomail_twisted.message import Headers
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    Greeting,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
)


class ISMTPBackend(Interface):
    """
    Hands out sessions.
    """

    def newSession(info: ConnectionInfo) -> Any:
        """
        A client connected (or finished STARTTLS, which starts over, RFC
        3207 4.2).  Raise L{SMTPReply} to refuse the connection.

        @param info: the connection.
        @return: an L{ISMTPSession}, or a Deferred or coroutine of one.
        """


class ISMTPSession(Interface):
    """
    One connection's steps.
    """

    def helo(greeting: Greeting) -> Any:
        """
        HELO or EHLO.  Refusing leaves the client un-greeted.
        """

    def mailFrom(sender: MailFrom) -> Any:
        """
        MAIL FROM: a transaction starts.
        """

    def rcptTo(recipient: Recipient) -> Any:
        """
        RCPT TO, once per recipient; a refusal refuses that recipient only.
        """

    def headers(headers: Headers) -> Any:
        """
        The message's header block has arrived (the data is still coming).
        A refusal is sent once the data has ended, and nothing is delivered.
        """

    def message(message: ReceivedMessage) -> Any:
        """
        The whole message.  The server answers 250 only once this returns
        (or its Deferred fires): 250 means the backend has the message.
        A hook that logs the message's acceptance itself (queue ID, peer,
        sender, recipients) returns, or fires with,
        L{MESSAGE_LOGGED<gomail_twisted.smtp.MESSAGE_LOGGED>}, and the
        server logs no line of its own for it.
        """

    def reset() -> Any:
        """
        The transaction in progress, if any, was abandoned: RSET, a new
        HELO or EHLO, or a DATA that failed.
        """

    def logout() -> Any:
        """
        The connection is closing (or starting over after STARTTLS).
        """


class ISMTPAuthSession(ISMTPSession):
    """
    A session that accepts AUTH (RFC 4954) with PLAIN and LOGIN.
    """

    def authenticate(credentials: SMTPCredentials) -> Any:
        """
        Check a login.  Raise L{SMTPReply} (usually 535 5.7.8) to refuse.

        @return: the identity the client is now authenticated as (a string),
            or L{None} for C{credentials.login}; or a Deferred or coroutine
            of either.
        """
