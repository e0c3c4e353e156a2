# -*- test-case-name: tests.test_delivery_outbound -*-
"""
Outgoing mail as a value: L{OutboundMail} says what to send and how to
deliver it, and L{buildMessage} turns it into an Internet message
(RFC 5322, MIME RFC 2045-2049) with the standard library's C{email} package.
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Literal

from gomail_twisted.delivery._wire import SMTPTimeouts, checkAddress
from gomail_twisted.message import Headers, splitHeaderBlock

__all__ = [
    "Attachment",
    "DKIMSettings",
    "OutboundMail",
    "Smarthost",
    "buildMessage",
]

_HEADER_NAME = re.compile(r"\A[\x21-\x39\x3b-\x7e]+\Z")
#: Fields L{buildMessage} writes itself; extra headers may not set them.
_STRUCTURAL = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "in-reply-to",
        "references",
    }
)


@dataclass(frozen=True)
class Attachment:
    """
    A file sent with a message (RFC 2183).

    @ivar filename: the name the recipient sees.
    @ivar content: the file's bytes.
    @ivar contentType: its MIME type, such as C{"application/pdf"}.
    @ivar inline: whether it is shown in the body (an image the HTML body
        refers to with C{cid:}) rather than offered as a download.
    @ivar contentID: the Content-ID (RFC 2392) without angle brackets, for
        inline parts; generated when L{None}.
    """

    filename: str
    content: bytes
    contentType: str = "application/octet-stream"
    inline: bool = False
    contentID: str | None = None

    def __post_init__(self) -> None:
        maintype, slash, subtype = self.contentType.partition("/")
        if not slash or not maintype or not subtype:
            raise ValueError(f"bad content type {self.contentType!r}")
        for text in (self.filename, self.contentType, self.contentID or ""):
            if "\r" in text or "\n" in text:
                raise ValueError("attachment fields may not contain CR or LF")


@dataclass(frozen=True)
class DKIMSettings:
    """
    How to sign outgoing mail with DKIM (RFC 6376 5).

    @ivar domain: the signing domain (C{d=}).
    @ivar selector: the selector (C{s=}); the public key is published at
        C{<selector>._domainkey.<domain>}.
    @ivar privateKey: an RSA or Ed25519 key, as PEM bytes or a key object;
        it chooses the algorithm (rsa-sha256 or ed25519-sha256).
    @ivar headers: the fields to sign, or L{None} for
        L{gomail_twisted.dkim.DEFAULT_SIGNED_HEADERS}.
    """

    domain: str
    selector: str
    privateKey: Any = field(repr=False)
    headers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Smarthost:
    """
    A relay to hand all mail to instead of looking up MX records: the
    submission service of RFC 6409 on port 587 with STARTTLS, or on port
    465 with implicit TLS (RFC 8314 3.3).

    @ivar host: the relay's host name; its certificate must be valid for it.
    @ivar port: the port.
    @ivar implicitTLS: whether TLS starts at connection (465) rather than
        with STARTTLS (587).
    @ivar login: the AUTH identity (RFC 4954), or L{None} for no AUTH.
    @ivar password: the AUTH password; never logged nor shown.
    @ivar mechanism: C{"PLAIN"} (RFC 4616) or C{"LOGIN"}.
    """

    host: str
    port: int = 587
    implicitTLS: bool = False
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: Literal["PLAIN", "LOGIN"] = "PLAIN"

    def __post_init__(self) -> None:
        if self.mechanism not in ("PLAIN", "LOGIN"):
            raise ValueError(f"unsupported AUTH mechanism {self.mechanism!r}")
        if (self.login is None) != (self.password is None):
            raise ValueError("give both login and password, or neither")


def _addresses(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class OutboundMail:
    """
    A message to send and how to deliver it; L{gomail_twisted.delivery.sendMail}
    takes one.

    Addresses are C{"user@example.com"} or C{"Name <user@example.com>"};
    non-ASCII local parts need SMTPUTF8 (RFC 6531), non-ASCII domains are
    sent as A-labels.

    @ivar sender: the author (From) and envelope sender (MAIL FROM).
    @ivar to: the To recipients.
    @ivar cc: the Cc recipients.
    @ivar bcc: the Bcc recipients: envelope only, never in the message.
    @ivar subject: the Subject.
    @ivar text: the plain text body.
    @ivar html: the HTML body; with C{text}, the two form a
        multipart/alternative (RFC 2046 5.1.4).
    @ivar attachments: files, as L{Attachment}s.
    @ivar headers: extra header fields, (name, value) pairs; a C{Date} or
        C{Message-ID} here replaces the generated one.
    @ivar inReplyTo: the message answered, raw bytes or its L{Headers}:
        In-Reply-To and References are derived from it (RFC 5322 3.6.4).
    @ivar raw: a complete message to send as it is, instead of building one
        from the fields above.
    @ivar dkim: L{DKIMSettings} to sign with, or L{None}.
    @ivar smarthost: a L{Smarthost} to relay through instead of MX delivery.
    @ivar port: the port of MX hosts (25; tests point it elsewhere).
    @ivar resolver: a L{gomail_twisted.dns.Resolver}, or L{None} for one on
        the system configuration.
    @ivar requireTLS: deliver only over TLS (a temporary failure otherwise).
    @ivar requireServerNameOfReceivingAddresses: deliver only to a server
        whose certificate is valid for the recipients' domain, or for its MX
        host when that lies under the domain; all recipients must share one
        domain.
    @ivar tlsOptions: a client TLS configuration
        (C{IOpenSSLClientConnectionCreator}, such as from
        L{twisted.internet.ssl.optionsForClientTLS}) used as it is; not
        allowed with C{requireServerNameOfReceivingAddresses}.
    @ivar trustRoot: the certificate authorities certificates are verified
        against (C{IOpenSSLTrustRoot}), or L{None} for the platform's; with
        opportunistic TLS the check is reported
        (L{gomail_twisted.delivery.TLSFacts.verified}), not enforced.  Give
        every mail the same object: certificates are loaded once per
        trust root object.
    @ivar heloName: the name we give in EHLO; by default the address
        literal of our end of the connection (RFC 5321 4.1.4).
    @ivar timeouts: L{SMTPTimeouts}.
    """

    sender: str
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: Sequence[Attachment] = ()
    headers: Sequence[tuple[str, str]] = ()
    inReplyTo: bytes | Headers | None = None
    raw: bytes | None = None
    dkim: DKIMSettings | None = None
    smarthost: Smarthost | None = None
    port: int = 25
    resolver: Any = None
    requireTLS: bool = False
    requireServerNameOfReceivingAddresses: bool = False
    tlsOptions: Any = None
    trustRoot: Any = None
    heloName: str | None = None
    timeouts: SMTPTimeouts = field(default_factory=SMTPTimeouts)

    def __post_init__(self) -> None:
        for name in ("to", "cc", "bcc"):
            object.__setattr__(self, name, _addresses(getattr(self, name)))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        object.__setattr__(self, "headers", tuple(self.headers))

    @property
    def envelopeSender(self) -> str:
        """
        The sender's bare address, for MAIL FROM.

        @raise ValueError: the sender is missing or malformed.
        """
        return _parse(self.sender)[1]

    @property
    def envelopeRecipients(self) -> tuple[str, ...]:
        """
        Every recipient's bare address (To, Cc, Bcc), without duplicates.

        @raise ValueError: an address is malformed.
        """
        seen: dict[str, None] = {}
        for value in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(_parse(value)[1], None)
        return tuple(seen)


def _parse(value: str) -> tuple[str, str]:
    """
    @param value: C{"user@example.com"} or C{"Name <user@example.com>"}.
    @return: the display name and the checked address.
    @raise ValueError: CR or LF anywhere, or no valid mailbox.
    """
    if "\r" in value or "\n" in value:
        raise ValueError(f"address {value!r} contains CR or LF")
    name, address = email.utils.parseaddr(value)
    if not address:
        raise ValueError(f"no address in {value!r}")
    checkAddress(address)
    return name, address


def _headerAddress(value: str) -> Address:
    """
    @param value: an address as L{OutboundMail} takes it.
    @return: it for a header field, its domain as an A-label when the local
        part is ASCII.
    """
    name, address = _parse(value)
    local, _, domain = address.rpartition("@")
    if local.isascii() and not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return Address(display_name=name, username=local, domain=domain)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _threading(answered: bytes | Headers) -> tuple[str, str] | None:
    """
    Derive In-Reply-To and References (RFC 5322 3.6.4).

    @param answered: the answered message or its header block.
    @return: the two values, or L{None} when it has no Message-ID.
    """
    headers = (
        answered
        if isinstance(answered, Headers)
        else Headers(splitHeaderBlock(_crlf(answered))[0])
    )
    messageID = (headers.get("Message-ID") or "").strip()
    if not messageID:
        return None
    parents = headers.get("References") or headers.get("In-Reply-To") or ""
    references = " ".join([*parents.split(), messageID])
    return messageID, references


def _needsUTF8(mail: OutboundMail) -> bool:
    return any(
        not _parse(value)[1].rpartition("@")[0].isascii()
        for value in (mail.sender, *mail.to, *mail.cc)
    )


def _cte(text: str) -> str | None:
    # Quoted-printable keeps non-ASCII text 7-bit clean for any server.
    return None if text.isascii() else "quoted-printable"


def buildMessage(mail: OutboundMail, now: datetime.datetime | None = None) -> bytes:
    """
    Build the message (RFC 5322, MIME RFC 2045-2049): Date (3.3), Message-ID
    (3.6.4), MIME-Version, header fields encoded (RFC 2047) and folded,
    base64 wrapped at 76 columns; multipart/alternative for text and HTML,
    multipart/related for inline parts, multipart/mixed for attachments.
    Bcc is never written (RFC 5322 3.6.3). When an address needs it, the
    message is written for SMTPUTF8 (RFC 6532).

    @param mail: the mail; when it has C{raw}, that is returned unchanged.
    @param now: the Date; default the current time.
    @return: the message, lines ending in CRLF.
    @raise ValueError: an address or header field is malformed.
    """
    if mail.raw is not None:
        return mail.raw
    policy = email.policy.SMTPUTF8 if _needsUTF8(mail) else email.policy.SMTP
    msg = EmailMessage(policy=policy)
    senderDomain = _headerAddress(mail.sender).domain
    extra = {name.lower(): (name, value) for name, value in mail.headers}
    for name, value in mail.headers:
        if not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            raise ValueError(f"bad header field {name!r}")
        if name.lower() in _STRUCTURAL:
            raise ValueError(f"{name} is set by OutboundMail's own fields")
    when = now or datetime.datetime.now(datetime.timezone.utc)
    msg["Date"] = extra.pop("date", ("", email.utils.format_datetime(when)))[1]
    msg["Message-ID"] = extra.pop(
        "message-id", ("", email.utils.make_msgid(domain=senderDomain))
    )[1]
    msg["From"] = _headerAddress(mail.sender)
    if mail.to:
        msg["To"] = [_headerAddress(a) for a in mail.to]
    if mail.cc:
        msg["Cc"] = [_headerAddress(a) for a in mail.cc]
    if "\r" in mail.subject or "\n" in mail.subject:
        raise ValueError("subject may not contain CR or LF")
    msg["Subject"] = mail.subject
    if mail.inReplyTo is not None:
        threading = _threading(mail.inReplyTo)
        if threading is not None:
            msg["In-Reply-To"], msg["References"] = threading
    for name, value in mail.headers:
        if name.lower() not in ("date", "message-id"):
            msg[name] = value
    msg["MIME-Version"] = "1.0"

    if mail.text is None and mail.html is not None:
        msg.set_content(mail.html, subtype="html", cte=_cte(mail.html))
    else:
        text = mail.text or ""
        msg.set_content(text, cte=_cte(text))
        if mail.html is not None:
            msg.add_alternative(mail.html, subtype="html", cte=_cte(mail.html))
    for attachment in mail.attachments:
        maintype, _, subtype = attachment.contentType.partition("/")
        if attachment.inline:
            cid = attachment.contentID or email.utils.make_msgid(
                domain=senderDomain
            ).strip("<>")
            body = msg.get_body(("html",)) if mail.html is not None else None
            target = body if isinstance(body, EmailMessage) else msg
            add = target.add_related if target is body else target.add_attachment
            add(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                disposition="inline",
                filename=attachment.filename,
                cid=f"<{cid}>",
            )
        else:
            msg.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
            )
    for part in msg.walk():
        if part is not msg:
            # The email package gives parts it creates a MIME-Version of
            # their own; RFC 2045 4 wants it at the top only.
            del part["MIME-Version"]
    return msg.as_bytes(policy=policy)
