# -*- test-case-name: tests.test_smtp_server -*-
"""
SMTP: an ESMTP server whose every step calls the application's hooks.

    from twisted.internet import endpoints, reactor
    from gomail_twisted.smtp import SMTPServerFactory, FunctionBackend

    factory = SMTPServerFactory(FunctionBackend(...), hostname="mx.example.com")
    endpoints.serverFromString(reactor, "tcp:2525").listen(factory)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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
from gomail_twisted.smtp.server import SMTPServerProtocol
from gomail_twisted.tls import TLSInfo

if TYPE_CHECKING:
    from gomail_twisted.smtp.client import (
        ClientTLSPolicy,
        DeliveryResult,
        ESMTPSender,
        ESMTPSenderFactory,
        SMTPTimeouts,
        TLSFacts,
        Transaction,
    )
    from gomail_twisted.smtp.delivery import SentMail, sendMail
    from gomail_twisted.smtp.outbound import (
        Attachment,
        DKIMSettings,
        OutboundMail,
        Smarthost,
        buildMessage,
    )

# The delivery client pulls in DNS, DKIM and certificate checking; a program
# that only serves mail does not load them until it asks for one of these.
_CLIENT = {
    name: "gomail_twisted.smtp." + module
    for module, names in (
        (
            "client",
            (
                "ClientTLSPolicy",
                "DeliveryResult",
                "ESMTPSender",
                "ESMTPSenderFactory",
                "SMTPTimeouts",
                "TLSFacts",
                "Transaction",
            ),
        ),
        ("delivery", ("SentMail", "sendMail")),
        (
            "outbound",
            ("Attachment", "DKIMSettings", "OutboundMail", "Smarthost", "buildMessage"),
        ),
    )
    for name in names
}


def __getattr__(name: str) -> object:
    module = _CLIENT.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Attachment",
    "ClientTLSPolicy",
    "ConnectionInfo",
    "DKIMSettings",
    "DKIMVerifyingBackend",
    "DeliveryResult",
    "ESMTPSender",
    "ESMTPSenderFactory",
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
    "OutboundMail",
    "ParsedMessage",
    "ReceivedMessage",
    "Recipient",
    "SMTPBackend",
    "SMTPCredentials",
    "SMTPReply",
    "SMTPServerFactory",
    "SMTPServerProtocol",
    "SMTPSession",
    "SMTPTimeouts",
    "SentMail",
    "Smarthost",
    "TLSFacts",
    "TLSInfo",
    "Transaction",
    "buildMessage",
    "replies",
    "sendMail",
]
