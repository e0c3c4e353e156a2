# -*- test-case-name: tests.test_delivery_send -*-
"""
Delivery: send mail to other servers with an ESMTP client (RFC 5321) that
reports what each receiving server said.

    from twisted.internet import defer, task
    from gomail_twisted.delivery import OutboundMail, Smarthost, sendMail

    async def main(reactor):
        sent = await sendMail(reactor, OutboundMail(sender=..., to=[...], ...))
        for result in sent.results:
            print(result.host, result.code, result.error)

  - L{sendMail} builds and signs an L{OutboundMail}, finds each recipient
    domain's mail exchangers (or uses a L{Smarthost}) and returns a
    L{SentMail}.
  - L{ESMTPSenderFactory} delivers ready-made L{Transaction}s over one
    connection, for callers that route mail themselves.

This package does not load the SMTP server (L{gomail_twisted.smtp}); the
two share only the reply type, L{SMTPReply}.
"""

from __future__ import annotations

from gomail_twisted.delivery.client import (
    ClientTLSPolicy,
    DeliveryResult,
    ESMTPSender,
    ESMTPSenderFactory,
    SMTPTimeouts,
    TLSFacts,
    Transaction,
)
from gomail_twisted.delivery.outbound import (
    Attachment,
    DKIMSettings,
    OutboundMail,
    Smarthost,
    buildMessage,
)
from gomail_twisted.delivery.send import SentMail, sendMail
from gomail_twisted.smtpreply import SMTPReply

__all__ = [
    "Attachment",
    "ClientTLSPolicy",
    "DKIMSettings",
    "DeliveryResult",
    "ESMTPSender",
    "ESMTPSenderFactory",
    "OutboundMail",
    "SMTPReply",
    "SMTPTimeouts",
    "SentMail",
    "Smarthost",
    "TLSFacts",
    "Transaction",
    "buildMessage",
    "sendMail",
]
