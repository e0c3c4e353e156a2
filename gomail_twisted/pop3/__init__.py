# -*- test-case-name: tests.test_pop3_server -*-
"""
POP3: a server (RFC 1939, with CAPA, TOP, UIDL, RESP-CODES, PIPELINING,
SASL PLAIN and STLS) whose logins and maildrops are the application's
hooks, or the mail store's INBOX with L{StoreBackend}.

    from twisted.internet import endpoints, reactor
    from gomail_twisted.maildir import MaildirStore
    from gomail_twisted.pop3 import POP3ServerFactory, StoreBackend

    backend = StoreBackend(usersChecker, MaildirStore("/var/mail/store"))
    factory = POP3ServerFactory(backend, hostname="pop.example.com", tls=tls)
    endpoints.serverFromString(reactor, "tcp:110").listen(factory)
    endpoints.serverFromString(reactor, "ssl:995:...").listen(factory)

A backend of one's own gives each login an L{IMaildrop}: a snapshot of the
messages (sizes and UIDL values), C{retrieve(index)} and
C{commit(deletedIndexes)}.
"""

from __future__ import annotations

from gomail_twisted.pop3 import _reply as replies
from gomail_twisted.pop3._reply import POP3Reply
from gomail_twisted.pop3._values import (
    ConnectionInfo,
    LoginFailure,
    MaildropMessage,
    POP3Credentials,
)
from gomail_twisted.pop3.backend import (
    FunctionBackend,
    MemoryMaildrop,
    POP3Backend,
    POP3Session,
    StoreBackend,
    uidlOf,
)
from gomail_twisted.pop3.factory import POP3ServerFactory
from gomail_twisted.pop3.interfaces import (
    IMaildrop,
    IMaildropMarks,
    IPOP3APOPSession,
    IPOP3Backend,
    IPOP3Session,
)
from gomail_twisted.pop3.server import POP3ServerProtocol
from gomail_twisted.tls import TLSInfo

__all__ = [
    "ConnectionInfo",
    "FunctionBackend",
    "IMaildrop",
    "IMaildropMarks",
    "IPOP3APOPSession",
    "IPOP3Backend",
    "IPOP3Session",
    "LoginFailure",
    "MaildropMessage",
    "MemoryMaildrop",
    "POP3Backend",
    "POP3Credentials",
    "POP3Reply",
    "POP3ServerFactory",
    "POP3ServerProtocol",
    "POP3Session",
    "StoreBackend",
    "TLSInfo",
    "replies",
    "uidlOf",
]
