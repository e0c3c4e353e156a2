# -*- test-case-name: tests.test_smtp_server -*-
"""
The frozen value objects the SMTP server hands to hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from gomail_twisted.connection import ConnectionInfo as ConnectionInfo
from gomail_twisted.message import Headers, MessagePart, ParsedMessage
from gomail_twisted.sasl import PasswordCredentials

if TYPE_CHECKING:
    from gomail_twisted.dkim import DKIMResult


@dataclass(frozen=True)
class Greeting:
    """
    The client's HELO or EHLO.

    @ivar name: the name the client gave for itself.
    @ivar extended: L{True} for EHLO.
    """

    name: str
    extended: bool


#: What a client sent with AUTH (RFC 4954): mechanism, login, password
#: (never shown by C{repr}) and authorization identity.
SMTPCredentials = PasswordCredentials


@dataclass(frozen=True)
class MailFrom:
    """
    The reverse-path and parameters of MAIL FROM.

    @ivar address: the sender, or C{""} for the null reverse-path.
    @ivar params: every ESMTP parameter as given, keywords upper case.
    @ivar size: the SIZE parameter (RFC 1870), or L{None}.
    @ivar body: C{"7BIT"} or C{"8BITMIME"} (RFC 6152).
    @ivar smtputf8: whether SMTPUTF8 was given (RFC 6531).
    @ivar login: the identity the client authenticated as, or L{None}.
    @ivar heloName: the name from HELO or EHLO.
    """

    address: str
    params: Mapping[str, str | None]
    size: int | None
    body: str
    smtputf8: bool
    login: str | None
    heloName: str


@dataclass(frozen=True)
class Recipient:
    """
    One forward-path of RCPT TO.

    @ivar address: the recipient.
    @ivar params: its ESMTP parameters.
    """

    address: str
    params: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """
    A transaction's envelope (RFC 5321 2.3.1).

    @ivar mailFrom: the sender and its parameters.
    @ivar recipients: the accepted recipients, in order.
    """

    mailFrom: MailFrom
    recipients: tuple[Recipient, ...]

    @property
    def sender(self) -> str:
        """
        The reverse-path address.
        """
        return self.mailFrom.address


@dataclass(frozen=True)
class ReceivedMessage:
    """
    A message as the server received it.

    @ivar raw: the exact bytes received, dot-unstuffed, with our
        C{Received:} trace header prepended (RFC 5321 4.4).
    @ivar envelope: the transaction's envelope.
    @ivar connection: the connection it came on.
    @ivar queueID: our identifier, also in the C{Received:} header and the
        250 reply.
    @ivar dkim: one result per DKIM signature, top to bottom, when the
        server verifies DKIM (then C{raw} starts with an
        C{Authentication-Results:} header); L{None} when it does not.
    """

    raw: bytes
    envelope: Envelope
    connection: ConnectionInfo
    queueID: str
    dkim: tuple[DKIMResult, ...] | None = None

    @cached_property
    def parsed(self) -> ParsedMessage:
        """
        Lazy views of the message: C{headers}, C{body}, C{email}, C{parts}.
        """
        return ParsedMessage(self.raw)

    @property
    def headers(self) -> Headers:
        """
        The header block, our trace headers first.
        """
        return self.parsed.headers

    @property
    def parts(self) -> tuple[MessagePart, ...]:
        """
        The leaves of the MIME tree, each with its own headers, those of a
        C{multipart/alternative} marked; parsed on first use.
        """
        return self.parsed.parts

    @property
    def login(self) -> str | None:
        """
        The identity the client authenticated as, or L{None}.
        """
        return self.envelope.mailFrom.login
