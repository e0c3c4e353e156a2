"""
IMAP4: a server (RFC 3501, IMAP4rev1) whose logins are the application's
hooks and whose mailboxes are the mail store's interface, served by
default from the L{MaildirStore<gomail_twisted.maildir.MaildirStore>} with
L{StoreBackend}.

    from twisted.internet import endpoints, reactor
    from gomail_twisted.imap4 import IMAP4ServerFactory, StoreBackend
    from gomail_twisted.maildir import MaildirStore

    backend = StoreBackend(usersChecker, MaildirStore("/var/mail/store"))
    factory = IMAP4ServerFactory(backend, hostname="imap.example.com", tls=tls)
    endpoints.serverFromString(reactor, "tcp:143").listen(factory)
    endpoints.serverFromString(reactor, "ssl:993:...").listen(factory)

Extensions: LITERAL+, SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UNSELECT,
UIDPLUS, MOVE, CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS,
APPENDLIMIT and CONDSTORE.

A backend of one's own (L{IIMAPBackend}) checks logins and gives each
user an L{IAccount<gomail_twisted.maildir.IAccount>}: the store's
interface, which an application with its mail elsewhere implements over
its own storage.
"""

from __future__ import annotations

from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._values import ConnectionInfo, IMAPCredentials, LoginFailure
from gomail_twisted.imap4.backend import IMAPBackend, IMAPSession, StoreBackend
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.imap4.interfaces import IIMAPBackend, IIMAPSession
from gomail_twisted.imap4.server import IMAP4Server

__all__ = [
    "ConnectionInfo",
    "IIMAPBackend",
    "IIMAPSession",
    "IMAP4Server",
    "IMAP4ServerFactory",
    "IMAPBackend",
    "IMAPCredentials",
    "IMAPSession",
    "IMAPStatus",
    "LoginFailure",
    "StoreBackend",
]
