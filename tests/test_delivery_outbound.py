# -*- test-case-name: tests.test_delivery_outbound -*-
"""
Tests for L{gomail_twisted.delivery.outbound}: messages built from
L{OutboundMail} are parsed back with the standard library and checked.
"""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import email.utils
from email.message import EmailMessage

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.delivery.outbound import (
    Attachment,
    DKIMSettings,
    OutboundMail,
    Smarthost,
    buildMessage,
)
from gomail_twisted.message import Headers

NOW = datetime.datetime(2024, 4, 9, 12, 30, 0, tzinfo=datetime.timezone.utc)


def parse(data: bytes) -> EmailMessage:
    """
    Parse a built message with the standard library.
    """
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def text(part: EmailMessage) -> str:
    """
    A text part's content, its CRLF line ends read as newlines.
    """
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def mail(**kwargs: object) -> OutboundMail:
    """
    A mail from alice to bob with the given fields.
    """
    fields: dict[str, object] = {
        "sender": "Alice <alice@example.com>",
        "to": ["Bob <bob@example.org>"],
        "subject": "Hello",
        "text": "Hi Bob.\n",
    }
    fields.update(kwargs)
    return OutboundMail(**fields)  # type: ignore[arg-type]


class HeaderTests(SynchronousTestCase):
    """
    The header block of built messages.
    """

    def test_requiredFields(self) -> None:
        """
        Date (RFC 5322 3.3), Message-ID in the sender's domain, From, To,
        Subject and MIME-Version are present and well formed.
        """
        message = parse(buildMessage(mail(), now=NOW))
        self.assertEqual(message["Date"], "Tue, 09 Apr 2024 12:30:00 +0000")
        self.assertEqual(email.utils.parsedate_to_datetime(message["Date"]), NOW)
        self.assertRegex(message["Message-ID"], r"\A<[^<>@]+@example\.com>\Z")
        self.assertEqual(message["From"], "Alice <alice@example.com>")
        self.assertEqual(message["To"], "Bob <bob@example.org>")
        self.assertEqual(message["Subject"], "Hello")
        self.assertEqual(message["MIME-Version"], "1.0")
        self.assertEqual(message.get_content_type(), "text/plain")
        self.assertEqual(text(message), "Hi Bob.\n")

    def test_linesEndInCRLF(self) -> None:
        """
        Every line of the message ends in CRLF, and no line is longer than
        78 characters.
        """
        data = buildMessage(mail(subject="word " * 60, text="x\n" * 3), now=NOW)
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))
        for line in data.split(b"\r\n"):
            self.assertLessEqual(len(line), 78)

    def test_bccNeverWritten(self) -> None:
        """
        Bcc recipients are envelope recipients, never in the message
        (RFC 5322 3.6.3).
        """
        outbound = mail(cc="carol@example.net", bcc=["dave@example.net"])
        data = buildMessage(outbound, now=NOW)
        self.assertNotIn(b"dave", data)
        self.assertNotIn(b"Bcc", data)
        self.assertEqual(parse(data)["Cc"], "carol@example.net")
        self.assertEqual(
            outbound.envelopeRecipients,
            ("bob@example.org", "carol@example.net", "dave@example.net"),
        )

    def test_nonASCIISubjectAndNameEncoded(self) -> None:
        """
        A non-ASCII subject and display name are encoded words (RFC 2047)
        when no address needs SMTPUTF8, and decode back.
        """
        data = buildMessage(
            mail(sender="Zoë <zoe@example.com>", subject=" ".join(["Grüße"] * 20)),
            now=NOW,
        )
        self.assertTrue(data.isascii())
        message = parse(data)
        self.assertEqual(message["Subject"], " ".join(["Grüße"] * 20))
        self.assertEqual(message["From"].addresses[0].display_name, "Zoë")

    def test_nonASCIILocalPartUsesUTF8(self) -> None:
        """
        A non-ASCII local part is written as UTF-8 (RFC 6532), which the
        message then needs SMTPUTF8 for.
        """
        data = buildMessage(mail(to=["jörg@example.org"]), now=NOW)
        self.assertIn("To: jörg@example.org\r\n".encode(), data)

    def test_internationalDomainAsALabel(self) -> None:
        """
        A non-ASCII domain with an ASCII local part is written as its
        A-label, keeping the message ASCII.
        """
        data = buildMessage(mail(to=["bob@bücher.de"]), now=NOW)
        self.assertIn(b"To: bob@xn--bcher-kva.de\r\n", data)
        self.assertTrue(data.isascii())

    def test_extraHeaders(self) -> None:
        """
        Extra fields are written; Date and Message-ID given there replace
        the generated ones.
        """
        data = buildMessage(
            mail(
                headers=[
                    ("X-Mailer", "test"),
                    ("Message-ID", "<fixed@example.com>"),
                    ("Date", "Mon, 01 Jan 2024 00:00:00 +0000"),
                ]
            ),
            now=NOW,
        )
        message = parse(data)
        self.assertEqual(message["X-Mailer"], "test")
        self.assertEqual(message.get_all("Message-ID"), ["<fixed@example.com>"])
        self.assertEqual(message.get_all("Date"), ["Mon, 01 Jan 2024 00:00:00 +0000"])

    def test_badHeadersRefused(self) -> None:
        """
        Extra fields with CR or LF, a bad name, or a name the mail's own
        fields set, and a subject with a line break, are refused.
        """
        for headers in (
            [("X-A", "a\r\nBcc: x@example.com")],
            [("Bad Name", "x")],
            [("Content-Type", "text/html")],
            [("Bcc", "x@example.com")],
        ):
            self.assertRaises(ValueError, buildMessage, mail(headers=headers))
        self.assertRaises(ValueError, buildMessage, mail(subject="a\nb"))

    def test_badAddressesRefused(self) -> None:
        """
        Addresses with CR or LF, or that are no mailbox, are refused.
        """
        for bad in ("bob@example.org\r\nRCPT TO:<x@y>", "no-at-sign", "a@b@", ""):
            self.assertRaises(ValueError, buildMessage, mail(to=[bad]))
            with self.assertRaises(ValueError):
                mail(to=[bad]).envelopeRecipients  # noqa: B018

    def test_replyThreadingFromRawMessage(self) -> None:
        """
        Answering a message sets In-Reply-To to its Message-ID and References
        to its References followed by its Message-ID (RFC 5322 3.6.4).
        """
        answered = (
            b"Message-ID: <two@example.org>\n"
            b"References: <zero@example.org> <one@example.org>\n"
            b"In-Reply-To: <one@example.org>\n\nbody\n"
        )
        message = parse(buildMessage(mail(inReplyTo=answered), now=NOW))
        self.assertEqual(message["In-Reply-To"], "<two@example.org>")
        self.assertEqual(
            message["References"],
            "<zero@example.org> <one@example.org> <two@example.org>",
        )

    def test_replyThreadingFromHeaders(self) -> None:
        """
        The answered message may be given as L{Headers}; without References,
        its In-Reply-To starts the chain.
        """
        headers = Headers(
            b"Message-ID: <b@example.org>\r\nIn-Reply-To: <a@example.org>\r\n"
        )
        message = parse(buildMessage(mail(inReplyTo=headers), now=NOW))
        self.assertEqual(message["In-Reply-To"], "<b@example.org>")
        self.assertEqual(message["References"], "<a@example.org> <b@example.org>")

    def test_rawReturnedUnchanged(self) -> None:
        """
        A raw message is sent as it is.
        """
        raw = b"From: a@example.com\r\nSubject: raw\r\n\r\nbody\r\n"
        self.assertEqual(buildMessage(mail(raw=raw)), raw)


class StructureTests(SynchronousTestCase):
    """
    The MIME structure of built messages.
    """

    def test_alternative(self) -> None:
        """
        Text and HTML make a multipart/alternative, text first
        (RFC 2046 5.1.4).
        """
        message = parse(buildMessage(mail(html="<p>Hi Bob.</p>"), now=NOW))
        self.assertEqual(message.get_content_type(), "multipart/alternative")
        types = [p.get_content_type() for p in message.iter_parts()]
        self.assertEqual(types, ["text/plain", "text/html"])
        html = message.get_body(("html",))
        assert html is not None
        self.assertEqual(text(html).strip(), "<p>Hi Bob.</p>")

    def test_htmlOnly(self) -> None:
        """
        HTML without text is a single text/html part.
        """
        message = parse(buildMessage(mail(text=None, html="<b>x</b>"), now=NOW))
        self.assertEqual(message.get_content_type(), "text/html")

    def test_nonASCIITextQuotedPrintable(self) -> None:
        """
        Non-ASCII text is quoted-printable, so the message stays 7-bit, and
        decodes back exactly.
        """
        body = "Grüße, Jörg.\n.leading dot\n"
        data = buildMessage(mail(text=body), now=NOW)
        self.assertTrue(data.isascii())
        message = parse(data)
        self.assertEqual(message["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(text(message), body)

    def test_attachmentsMixed(self) -> None:
        """
        Attachments make a multipart/mixed whose parts decode to the files'
        bytes, with base64 lines of at most 76 characters (RFC 2045 6.8).
        """
        blob = bytes(range(256)) * 40
        message = parse(
            buildMessage(
                mail(
                    html="<p>x</p>",
                    attachments=[
                        Attachment("data.bin", blob),
                        Attachment("notes.txt", b"notes", "text/plain"),
                    ],
                ),
                now=NOW,
            )
        )
        self.assertEqual(message.get_content_type(), "multipart/mixed")
        parts = list(message.iter_parts())
        self.assertEqual(
            [p.get_content_type() for p in parts],
            ["multipart/alternative", "application/octet-stream", "text/plain"],
        )
        attachments = list(message.iter_attachments())
        self.assertEqual(
            [a.get_filename() for a in attachments], ["data.bin", "notes.txt"]
        )
        self.assertEqual(attachments[0].get_content(), blob)
        self.assertEqual(attachments[0]["Content-Transfer-Encoding"], "base64")
        encoded = attachments[0].get_payload()
        assert isinstance(encoded, str)
        lines = encoded.splitlines()
        self.assertGreater(len(lines), 100)
        self.assertTrue(all(len(line) <= 76 for line in lines))
        for part in message.walk():
            if part is not message:
                self.assertNotIn("MIME-Version", part)

    def test_inlineRelated(self) -> None:
        """
        An inline attachment sits beside the HTML in a multipart/related,
        with the Content-ID the HTML refers to (RFC 2387, RFC 2392).
        """
        image = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
        message = parse(
            buildMessage(
                mail(
                    html='<img src="cid:logo@example.com">',
                    attachments=[
                        Attachment(
                            "logo.png",
                            image,
                            "image/png",
                            inline=True,
                            contentID="logo@example.com",
                        ),
                        Attachment("report.pdf", b"%PDF", "application/pdf"),
                    ],
                ),
                now=NOW,
            )
        )
        self.assertEqual(message.get_content_type(), "multipart/mixed")
        alternative = next(message.iter_parts())
        related = list(alternative.iter_parts())[1]
        self.assertEqual(related.get_content_type(), "multipart/related")
        html, logo = related.iter_parts()
        self.assertEqual(html.get_content_type(), "text/html")
        self.assertEqual(logo["Content-ID"], "<logo@example.com>")
        self.assertEqual(logo.get_content_disposition(), "inline")
        self.assertEqual(logo.get_content(), image)

    def test_inlineGeneratedContentID(self) -> None:
        """
        An inline attachment without a Content-ID gets one in the sender's
        domain.
        """
        message = parse(
            buildMessage(
                mail(
                    html="<p/>",
                    attachments=[Attachment("a.png", b"x", "image/png", inline=True)],
                ),
                now=NOW,
            )
        )
        cids = [p["Content-ID"] for p in message.walk() if p["Content-ID"]]
        self.assertEqual(len(cids), 1)
        self.assertRegex(cids[0], r"\A<[^<>@]+@example\.com>\Z")


class ValueTests(SynchronousTestCase):
    """
    The value objects check themselves and keep secrets out of their repr.
    """

    def test_smarthostPasswordNotInRepr(self) -> None:
        """
        A smarthost's password is not shown.
        """
        host = Smarthost("smtp.example.com", 465, True, "alice", "s3cret")
        self.assertNotIn("s3cret", repr(host))

    def test_smarthostChecks(self) -> None:
        """
        An unknown mechanism, or a login without password, is refused.
        """
        self.assertRaises(ValueError, Smarthost, "h", mechanism="CRAM-MD5")  # type: ignore[arg-type]
        self.assertRaises(ValueError, Smarthost, "h", login="alice")

    def test_dkimKeyNotInRepr(self) -> None:
        """
        A DKIM private key is not shown.
        """
        settings = DKIMSettings("example.com", "s1", b"-----BEGIN PRIVATE KEY-----")
        self.assertNotIn("PRIVATE", repr(settings))

    def test_attachmentChecks(self) -> None:
        """
        A malformed content type, or a line break in a field, is refused.
        """
        self.assertRaises(ValueError, Attachment, "a", b"", "nonsense")
        self.assertRaises(ValueError, Attachment, "a\r\nX: y", b"")

    def test_addressListsBecomeTuples(self) -> None:
        """
        One address or a list of them is kept as a tuple, so the mail is
        immutable.
        """
        outbound = mail(to="bob@example.org", cc=["c@example.org"])
        self.assertEqual(outbound.to, ("bob@example.org",))
        self.assertEqual(outbound.cc, ("c@example.org",))
        self.assertEqual(outbound.envelopeSender, "alice@example.com")
