# -*- test-case-name: tests.test_smtp_reply -*-
"""
Tests for L{gomail_twisted.smtpreply} and L{gomail_twisted.smtp._reply}:
the SMTP reply type, its wire format (RFC 5321 4.2, RFC 2034), its
validation, and the server's own replies.
"""

from __future__ import annotations

import pickle

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import _reply as R
from gomail_twisted.smtp._reply import SMTPReply


class FormatTests(SynchronousTestCase):
    """
    L{SMTPReply.format} writes the reply as the peer sees it.
    """

    def test_singleLineWithoutEnhancedCodes(self) -> None:
        """
        Without enhanced codes a one-line reply is the code, a space, the text
        and CRLF.
        """
        reply = SMTPReply(250, "2.1.0", "Sender OK")
        self.assertEqual(reply.format(False), b"250 Sender OK\r\n")

    def test_singleLineWithEnhancedCodes(self) -> None:
        """
        With enhanced codes the reply's own enhanced code follows the code.
        """
        reply = SMTPReply(550, "5.1.1", "No such user")
        self.assertEqual(reply.format(True), b"550 5.1.1 No such user\r\n")

    def test_multiLineWithoutEnhancedCodes(self) -> None:
        """
        Every line but the last has a hyphen after the code (RFC 5321 4.2.1).
        """
        reply = SMTPReply(250, None, ["mx.example", "PIPELINING", "8BITMIME"])
        self.assertEqual(
            reply.format(False),
            b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
        )

    def test_multiLineWithEnhancedCodes(self) -> None:
        """
        Every line of a multi-line reply carries the enhanced code (RFC 2034 3).
        """
        reply = SMTPReply(214, "2.0.0", ["one", "two"])
        self.assertEqual(reply.format(True), b"214-2.0.0 one\r\n214 2.0.0 two\r\n")

    def test_enhancedCodeFilledIn(self) -> None:
        """
        A reply without an enhanced code gets X.0.0 of its class when enhanced
        codes are on.
        """
        self.assertEqual(SMTPReply(250, None, "OK").format(True), b"250 2.0.0 OK\r\n")
        self.assertEqual(
            SMTPReply(451, None, "later").format(True), b"451 4.0.0 later\r\n"
        )
        self.assertEqual(
            SMTPReply(554, None, ["a", "b"]).format(True),
            b"554-5.0.0 a\r\n554 5.0.0 b\r\n",
        )

    def test_enhancedCodeOmittedWhenOff(self) -> None:
        """
        A reply's own enhanced code is not written when enhanced codes are off.
        """
        self.assertEqual(
            R.UNKNOWN_RECIPIENT.format(False), b"550 No such recipient here\r\n"
        )

    def test_intermediateNeverPrefixed(self) -> None:
        """
        A 3xx reply never carries an enhanced code, not even a filled-in one.
        """
        self.assertEqual(
            R.START_DATA.format(True), b"354 End data with <CR><LF>.<CR><LF>\r\n"
        )
        self.assertEqual(SMTPReply(334, None, "").format(True), b"334 \r\n")
        self.assertEqual(
            SMTPReply(334, None, ["a", "b"]).format(True), b"334-a\r\n334 b\r\n"
        )

    def test_emptyText(self) -> None:
        """
        An empty text or an empty list of lines is one empty line.
        """
        self.assertEqual(SMTPReply(250, None, "").format(False), b"250 \r\n")
        self.assertEqual(SMTPReply(250, None, []).format(False), b"250 \r\n")
        self.assertEqual(SMTPReply(250, None, []).lines, ("",))

    def test_utf8Text(self) -> None:
        """
        Non-ASCII text is encoded as UTF-8.
        """
        self.assertEqual(
            SMTPReply(250, None, "d\u00e9j\u00e0").format(False),
            b"250 d\xc3\xa9j\xc3\xa0\r\n",
        )

    def test_namedConstantsFormat(self) -> None:
        """
        Every named reply formats to lines that start with its code and end in
        CRLF, with its enhanced code (or X.0.0) when enhanced codes are on.
        """
        for name in dir(R):
            reply = getattr(R, name)
            if not isinstance(reply, SMTPReply):
                continue
            wire = reply.format(True)
            lines = wire.split(b"\r\n")
            self.assertEqual(lines[-1], b"", name)
            for line in lines[:-1]:
                self.assertTrue(line.startswith(str(reply.code).encode()), name)
                if reply.code // 100 != 3:
                    enhanced = reply.enhanced or f"{reply.code // 100}.0.0"
                    self.assertEqual(
                        line[4 : 5 + len(enhanced)], f"{enhanced} ".encode(), name
                    )


class AccessorTests(SynchronousTestCase):
    """
    The attributes and derived values of L{SMTPReply}.
    """

    def test_attributes(self) -> None:
        """
        Code, enhanced code and lines are kept as given, a single text as one
        line.
        """
        reply = SMTPReply(452, "4.5.3", "Too many")
        self.assertEqual(
            (reply.code, reply.enhanced, reply.lines), (452, "4.5.3", ("Too many",))
        )
        self.assertEqual(reply.args, (452, "4.5.3", ("Too many",)))

    def test_textJoinsLines(self) -> None:
        """
        C{text} is the lines joined with a space.
        """
        self.assertEqual(SMTPReply(250, None, ["a", "b", "c"]).text, "a b c")

    def test_isPositive(self) -> None:
        """
        2xx and 3xx replies are positive, 4xx and 5xx are not.
        """
        self.assertEqual(
            [
                SMTPReply(c, None, "x").isPositive
                for c in (200, 250, 354, 399, 400, 421, 554)
            ],
            [True, True, True, True, False, False, False],
        )

    def test_withText(self) -> None:
        """
        C{withText} keeps both codes and replaces the text.
        """
        reply = R.BAD_SENDER_SYNTAX.withText("Nope")
        self.assertEqual(reply, SMTPReply(501, "5.1.7", "Nope"))
        self.assertEqual(R.BAD_SENDER_SYNTAX.text, "Bad sender address syntax")

    def test_strAndRepr(self) -> None:
        """
        C{str} is code, enhanced code and text; C{repr} rebuilds the reply.
        """
        self.assertEqual(str(SMTPReply(550, "5.1.1", "No")), "550 5.1.1 No")
        self.assertEqual(str(SMTPReply(250, None, ["a", "b"])), "250 a b")
        self.assertEqual(
            repr(SMTPReply(550, "5.1.1", "No")), "SMTPReply(550, '5.1.1', 'No')"
        )

    def test_isException(self) -> None:
        """
        A reply can be raised and caught as itself.
        """
        with self.assertRaises(SMTPReply) as caught:
            raise R.RELAY_DENIED
        self.assertIs(caught.exception, R.RELAY_DENIED)

    def test_pickles(self) -> None:
        """
        A reply survives pickling unchanged (it crosses thread boundaries).
        """
        reply = SMTPReply(250, "2.0.0", ["a", "b"])
        self.assertEqual(pickle.loads(pickle.dumps(reply)), reply)


class EqualityTests(SynchronousTestCase):
    """
    Replies compare by value.
    """

    def test_equalByValue(self) -> None:
        """
        Two replies with the same code, enhanced code and lines are equal and
        hash alike; a text and its one-element list are the same.
        """
        a = SMTPReply(250, "2.0.0", "OK")
        b = SMTPReply(250, "2.0.0", ["OK"])
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual(len({a, b}), 1)

    def test_unequalWhenAnyPartDiffers(self) -> None:
        """
        A different code, enhanced code or text makes replies unequal.
        """
        base = SMTPReply(550, "5.1.1", "No")
        for other in [
            SMTPReply(551, "5.1.1", "No"),
            SMTPReply(550, "5.1.2", "No"),
            SMTPReply(550, None, "No"),
            SMTPReply(550, "5.1.1", "no"),
            SMTPReply(550, "5.1.1", ["No", ""]),
        ]:
            self.assertNotEqual(base, other)

    def test_notEqualToOtherTypes(self) -> None:
        """
        A reply is never equal to a tuple or string of the same content.
        """
        reply = SMTPReply(250, None, "OK")
        self.assertNotEqual(reply, (250, None, ("OK",)))
        self.assertNotEqual(reply, "250 OK")


class ValidationTests(SynchronousTestCase):
    """
    L{SMTPReply} refuses values that cannot be written on the wire.
    """

    def test_codeOutOfRange(self) -> None:
        """
        Codes outside 200-599 raise L{ValueError}.
        """
        for code in (0, 199, 600, 1000, -250):
            self.assertRaises(ValueError, SMTPReply, code, None, "x")

    def test_codeBoundaries(self) -> None:
        """
        200 and 599 are accepted.
        """
        self.assertEqual(SMTPReply(200, None, "x").code, 200)
        self.assertEqual(SMTPReply(599, None, "x").code, 599)

    def test_malformedEnhancedCode(self) -> None:
        """
        Enhanced codes that are not class.subject.detail with a 2, 4 or 5 class
        and 1-3 digit parts raise L{ValueError}.
        """
        for enhanced in [
            "",
            "2",
            "2.0",
            "2.0.0.0",
            "3.0.0",
            "1.0.0",
            "2.1000.0",
            "2.0.1000",
            "2..0",
            "2.\u0663.0",
            "2.a.0",
            " 2.0.0",
            "2.0.0 ",
            "2.0.0\n",
        ]:
            self.assertRaises(ValueError, SMTPReply, 250, enhanced, "x")

    def test_enhancedClassMustMatch(self) -> None:
        """
        The enhanced code's class must be the reply code's first digit.
        """
        self.assertRaises(ValueError, SMTPReply, 250, "5.0.0", "x")
        self.assertRaises(ValueError, SMTPReply, 550, "4.0.0", "x")
        self.assertRaises(ValueError, SMTPReply, 450, "2.0.0", "x")
        self.assertRaises(ValueError, SMTPReply, 354, "2.0.0", "x")
        self.assertEqual(SMTPReply(450, "4.123.999", "x").enhanced, "4.123.999")

    def test_lineBreaksInText(self) -> None:
        """
        CR or LF in any line raises L{ValueError}: a reply cannot inject lines.
        """
        for text in ["a\r\nb", "a\nb", "a\rb", ["ok", "b\n"], ["\r"]]:
            self.assertRaises(ValueError, SMTPReply, 250, None, text)
        self.assertRaises(ValueError, R.OK.withText, "x\r\n250 y")


class HelpReplyTests(SynchronousTestCase):
    """
    L{R.helpReply} lists only the commands a session is offered.
    """

    def test_table(self) -> None:
        """
        STARTTLS and AUTH appear in the 214 reply exactly when offered; the
        other commands always do.
        """
        base = "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"
        cases = [
            (False, False, base),
            (True, False, base + " STARTTLS"),
            (False, True, base + " AUTH"),
            (True, True, base + " STARTTLS AUTH"),
        ]
        for startTLS, auth, first in cases:
            self.assertEqual(
                R.helpReply(startTLS, auth).format(True),
                f"214-2.0.0 {first}\r\n214 2.0.0 See RFC 5321\r\n".encode(),
                (startTLS, auth),
            )

    def test_madeOnce(self) -> None:
        """
        The same offer gives the same reply object, so its wire form is
        formatted once.
        """
        self.assertIs(R.helpReply(True, False), R.helpReply(True, False))


class SharedTypeTests(SynchronousTestCase):
    """
    The server and the delivery client use one reply type.
    """

    def test_oneType(self) -> None:
        """
        L{gomail_twisted.smtp.SMTPReply} and
        L{gomail_twisted.delivery.SMTPReply} are the class of
        L{gomail_twisted.smtpreply}, so a reply from either side compares
        and catches the same.
        """
        from gomail_twisted import delivery, smtp, smtpreply

        self.assertIs(smtp.SMTPReply, smtpreply.SMTPReply)
        self.assertIs(delivery.SMTPReply, smtpreply.SMTPReply)
        self.assertIs(SMTPReply, smtpreply.SMTPReply)
