# -*- test-case-name: tests.test_pop3_server -*-
"""
What an application plugs into the POP3 server.

A backend (L{IPOP3Backend}) hands out one session (L{IPOP3Session}) per
connection (and a new one after STLS, RFC 2595 4).  The session checks a
login and gives the user's maildrop (L{IMaildrop}), a snapshot of the
messages taken at login: their numbers and sizes do not move while the
session lasts.  Deletions are only marks until QUIT, when
L{IMaildrop.commit} carries them out (RFC 1939 6).

Each hook may return a plain value, a L{Deferred} or a coroutine.  A hook
refuses by raising a L{POP3Reply} (C{-ERR [AUTH] ...}, C{-ERR [IN-USE]
...}); any other exception is logged and answered C{-ERR [SYS/TEMP]}.

Optional abilities are separate interfaces: a session that provides
L{IPOP3APOPSession} gets APOP, and a timestamp in the greeting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zope.interface import Attribute, Interface

from gomail_twisted.pop3._values import (
    ConnectionInfo,
    LoginFailure,
    POP3Credentials,
)


class IPOP3Backend(Interface):
    """
    Hands out sessions.
    """

    def newSession(info: ConnectionInfo) -> Any:
        """
        A client connected, or finished STLS, which starts over (RFC 2595
        4).  Raise L{POP3Reply} to refuse the connection.

        @param info: the connection.
        @return: an L{IPOP3Session}, or a Deferred or coroutine of one.
        """


class IPOP3Session(Interface):
    """
    One connection's logins.
    """

    def login(credentials: POP3Credentials) -> Any:
        """
        USER and PASS (RFC 1939 7), or AUTH PLAIN (RFC 5034).  Raise
        L{POP3Reply} to refuse: C{-ERR [AUTH]} for wrong credentials,
        C{-ERR [IN-USE]} when the maildrop is open in another session,
        C{-ERR [SYS/TEMP]} when the check could not be made.

        @param credentials: the login, password and (PLAIN) authorization
            identity.
        @return: the user's L{IMaildrop}, or a Deferred or coroutine of
            one.
        """

    def loginFailed(failure: LoginFailure) -> Any:
        """
        A login was refused, whatever the reason; called once per refusal,
        so that access control can count them.  Its outcome changes
        nothing the client sees.

        @param failure: what was tried and what the client was told.
        """

    def logout() -> Any:
        """
        The connection is closing, or starting over after STLS.  The
        maildrop, if any, was closed first.
        """


class IPOP3APOPSession(IPOP3Session):
    """
    A session that accepts APOP (RFC 1939 7): the client proves it knows
    the password with the MD5 digest of the greeting's timestamp and the
    password, so the check needs the password itself, not a hash of it.
    """

    def apop(user: str, timestamp: str, digest: str) -> Any:
        """
        Check an APOP login.

        @param user: the login name.
        @param timestamp: the greeting's timestamp, brackets included, such
            as C{"<1896.697170952@dbc.mtview.ca.us>"}.
        @param digest: the client's digest, 32 lower-case hex digits.
        @return: the user's L{IMaildrop}, or a Deferred or coroutine of
            one.  Raise L{POP3Reply} to refuse, as L{IPOP3Session.login}.
        """


class IMaildrop(Interface):
    """
    A user's messages, as they were at login.  Message indexes count from
    0 (the client's message number less one).
    """

    messages = Attribute(
        "The messages at login, in order: a sequence of"
        " L{MaildropMessage<gomail_twisted.pop3.MaildropMessage>}."
    )

    def retrieve(index: int) -> Any:
        """
        One message, whole, in its RFC 5322 form with lines ending in CRLF
        (not dot-stuffed).

        @param index: the message's index.
        @return: the bytes, or a Deferred or coroutine of them.  Raise
            L{POP3Reply} when it cannot be read.
        """

    def commit(deleted: Sequence[int], retrieved: Sequence[int]) -> Any:
        """
        QUIT in the UPDATE state (RFC 1939 6): remove the deleted messages,
        all or none.  Raise L{POP3Reply} (the server sends C{-ERR
        [SYS/TEMP]} otherwise) when they could not be removed; the client
        is told that nothing was.

        Called only when one of the two is not empty.

        @param deleted: the indexes of the messages marked with DELE, in
            ascending order.
        @param retrieved: the indexes of the other messages sent whole with
            RETR, in ascending order: a store that keeps a seen flag marks
            them (an IMAP client of the same mailbox then shows them read,
            as Dovecot does).
        @return: L{None}, or a Deferred or coroutine of it.
        """

    def close() -> None:
        """
        The session is over (after L{commit}, or without it when the
        connection dropped): release the maildrop.
        """


class IMaildropMarks(IMaildrop):
    """
    A maildrop that is told which messages the client has marked with DELE,
    so that it need not prepare them (such as one that reads the next
    message before it is asked for).  The server calls L{marksChanged} on
    maildrops that provide it; the marks still take effect only at
    L{IMaildrop.commit}.
    """

    def marksChanged(deleted: frozenset[int]) -> None:
        """
        DELE marked a message, or RSET took every mark back (RFC 1939 5).

        @param deleted: the indexes marked now.
        """
