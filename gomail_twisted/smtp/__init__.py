# -*- test-case-name: tests.test_smtp_server -*-
"""
SMTP: an ESMTP server whose every step calls the application's hooks.
The client that sends mail to other servers is L{gomail_twisted.delivery}.

    from twisted.internet import endpoints, reactor
    from gomail_twisted.smtp import SMTPServerFactory, FunctionBackend

    factory = SMTPServerFactory(FunctionBackend(...), hostname="mx.example.com")
    endpoints.serverFromString(reactor, "tcp:2525").listen(factory)
"""

from __future__ import annotations

from gomail_twisted.message import Headers, MessagePart, ParsedMessage
from gomail_twisted.smtp import _reply as replies
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp._values import (
    ConnectionInfo,
    Envelope,
    Greeting,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
)
from gomail_twisted.smtp.backend import FunctionBackend, SMTPBackend, SMTPSession
from gomail_twisted.smtp.dkimcheck import DKIMVerifyingBackend
from gomail_twisted.smtp.factory import SMTPServerFactory
from gomail_twisted.smtp.interfaces import (
    ISMTPAuthSession,
    ISMTPBackend,
    ISMTPSession,
)
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.smtp.server import MESSAGE_LOGGED, SMTPServerProtocol
from gomail_twisted.smtp.submission import Outbound, SubmissionBackend
from gomail_twisted.tls import TLSInfo

__all__ = [
    "MESSAGE_LOGGED",
    "ConnectionInfo",
    "DKIMVerifyingBackend",
    "Envelope",
    "FunctionBackend",
    "Greeting",
    "Headers",
    "ISMTPAuthSession",
    "ISMTPBackend",
    "ISMTPSession",
    "MailFrom",
    "MaildirBackend",
    "MessagePart",
    "Outbound",
    "ParsedMessage",
    "ReceivedMessage",
    "Recipient",
    "SMTPBackend",
    "SMTPCredentials",
    "SMTPReply",
    "SMTPServerFactory",
    "SMTPServerProtocol",
    "SMTPSession",
    "SubmissionBackend",
    "TLSInfo",
    "replies",
]
