"""
Tests for L{gomail_twisted.smtp.server}: the protocol over a
L{StringTransport}, the order of replies and hook calls, and the limits.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import (
    FunctionBackend,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
    SMTPReply,
)
from gomail_twisted.smtp.server import MESSAGE_LOGGED
from tests._smtphelpers import RecordingBackend, codes, connect, makeFactory, take

EHLO = b"EHLO client.test\r\n"
ENVELOPE = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
MESSAGE = b"Subject: hi\r\n\r\nbody\r\n"


class GreetingTests(SynchronousTestCase):
    """
    The greeting and EHLO.
    """

    def test_greeting(self) -> None:
        """
        A new connection is greeted with 220, the host name, no enhanced code.
        """
        factory, _ = makeFactory()
        _, transport = connect(factory)
        self.assertEqual(take(transport), b"220 mx.test ESMTP gomail_twisted\r\n")

    def test_ehloCapabilities(self) -> None:
        """
        EHLO lists the extensions, without enhanced codes (RFC 2034 3);
        STARTTLS and AUTH are absent without TLS configured.
        """
        factory, _ = makeFactory(maxMessageSize=1000)
        protocol, transport = connect(factory)
        take(transport)
        protocol.dataReceived(EHLO)
        self.assertEqual(
            take(transport),
            b"250-mx.test Hello client.test [192.0.2.1]\r\n"
            b"250-PIPELINING\r\n"
            b"250-SIZE 1000\r\n"
            b"250-8BITMIME\r\n"
            b"250-SMTPUTF8\r\n"
            b"250-ENHANCEDSTATUSCODES\r\n"
            b"250 HELP\r\n",
        )

    def test_ehloOffersStartTLSAndAuth(self) -> None:
        """
        With a TLS context STARTTLS is offered; AUTH only when plain-text
        AUTH is allowed, since the session is not encrypted yet.
        """
        factory, _ = makeFactory(tls=object())
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        reply = take(transport)
        self.assertIn(b"250-STARTTLS\r\n", reply)
        self.assertNotIn(b"AUTH", reply)
        factory, _ = makeFactory(allowPlaintextAuth=True)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        self.assertIn(b"250-AUTH PLAIN LOGIN\r\n", take(transport))

    def test_heloHasNoEnhancedCodes(self) -> None:
        """
        After HELO, replies carry no enhanced status codes and parameters
        are refused.
        """
        factory, _ = makeFactory()
        protocol, transport = connect(factory)
        take(transport)
        protocol.dataReceived(b"HELO client.test\r\nMAIL FROM:<a@example.com>\r\n")
        self.assertEqual(
            take(transport),
            b"250 mx.test Hello client.test [192.0.2.1]\r\n250 Sender OK\r\n",
        )
        protocol.dataReceived(b"RSET\r\nMAIL FROM:<a@example.com> SIZE=10\r\n")
        self.assertEqual(codes(take(transport)), ["250", "555"])

    def test_commandsBeforeHelo(self) -> None:
        """
        MAIL before HELO/EHLO is refused with 503 5.5.1; NOOP is fine.
        """
        factory, _ = makeFactory()
        protocol, transport = connect(factory)
        take(transport)
        protocol.dataReceived(b"MAIL FROM:<a@example.com>\r\nNOOP\r\n")
        self.assertEqual(codes(take(transport)), ["503", "250"])

    def test_connectionRefusedByBackend(self) -> None:
        """
        A backend that raises L{SMTPReply} from newSession refuses the
        connection with that reply and closes it.
        """

        def connect_(info: object) -> None:
            raise SMTPReply(554, "5.7.1", "Go away")

        factory, _ = makeFactory(FunctionBackend(connect=connect_))
        _, transport = connect(factory)
        self.assertEqual(take(transport), b"554 Go away\r\n")
        self.assertTrue(transport.disconnecting)

    def test_brokenBackend(self) -> None:
        """
        A backend whose newSession returns something that is not a session
        gets the client a 421 and a close, and is logged.
        """
        from zope.interface import implementer

        from gomail_twisted.smtp import ISMTPBackend

        @implementer(ISMTPBackend)
        class Broken:
            def newSession(self, info: object) -> object:
                return "not a session"

        factory, _ = makeFactory(Broken())
        _, transport = connect(factory)
        self.assertEqual(codes(take(transport)), ["421"])
        self.assertTrue(transport.disconnecting)


class TransactionTests(SynchronousTestCase):
    """
    A whole transaction and what the hooks see.
    """

    def setUp(self) -> None:
        self.backend = RecordingBackend()
        self.factory, self.clock = makeFactory(self.backend)
        self.protocol, self.transport = connect(self.factory)
        self.protocol.dataReceived(EHLO)
        take(self.transport)

    def test_transaction(self) -> None:
        """
        MAIL, RCPT, DATA and the message: each reply exact, the message
        un-stuffed with a Received header first, the envelope complete.
        """
        self.protocol.dataReceived(
            ENVELOPE + b"DATA\r\n" + b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n"
        )
        replies = take(self.transport)
        self.assertEqual(
            replies.split(b"\r\n")[:3],
            [
                b"250 2.1.0 Sender OK",
                b"250 2.1.5 Recipient OK",
                b"354 End data with <CR><LF>.<CR><LF>",
            ],
        )
        [message] = self.backend.messages
        self.assertEqual(
            replies.split(b"\r\n")[3],
            b"250 2.0.0 OK: queued as " + message.queueID.encode(),
        )
        self.assertTrue(message.raw.startswith(b"Received: from client.test"))
        self.assertTrue(
            message.raw.endswith(b"\r\nSubject: hi\r\n\r\n.leading dot\r\n")
        )
        self.assertEqual(message.envelope.sender, "a@example.com")
        self.assertEqual(
            [r.address for r in message.envelope.recipients], ["b@example.net"]
        )
        self.assertEqual(message.headers.get("subject"), "hi")
        self.assertIn(b"for <b@example.net>;", message.raw)
        self.assertEqual(
            self.backend.names(),
            ["helo", "mailFrom", "rcptTo", "headers", "message"],
        )

    def test_mimeParts(self) -> None:
        """
        The hook sees the MIME leaves with their headers, the alternatives
        of a multipart/alternative marked, attachments decoded.
        """
        mime = (
            b"Subject: parts\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="outer"\r\n'
            b"\r\n"
            b"--outer\r\n"
            b'Content-Type: multipart/alternative; boundary="inner"\r\n'
            b"\r\n"
            b"--inner\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"plain\r\n"
            b"--inner\r\n"
            b"Content-Type: text/html\r\n"
            b"\r\n"
            b"<p>html</p>\r\n"
            b"--inner--\r\n"
            b"--outer\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="a.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n"
            b"\r\n"
            b"AAEC\r\n"
            b"--outer--\r\n"
        )
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + mime + b".\r\n")
        [message] = self.backend.messages
        self.assertEqual(
            [(p.contentType, p.alternative, p.filename) for p in message.parts],
            [
                ("text/plain", True, None),
                ("text/html", True, None),
                ("application/octet-stream", False, "a.bin"),
            ],
        )
        self.assertEqual(message.parts[2].payload, b"\x00\x01\x02")
        self.assertIn(("Content-Type", "text/html"), message.parts[1].headers)

    def test_refusedRecipientKeepsTransaction(self) -> None:
        """
        A refused recipient is refused alone; the others still get the
        message.
        """
        self.protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.net>\r\n"
            b"RCPT TO:<b@example.net>\r\nDATA\r\n" + MESSAGE + b".\r\n"
        )
        self.assertEqual(
            codes(take(self.transport)),
            ["250 2.1.0", "550 5.1.1", "250 2.1.5", "354", "250 2.0.0"],
        )
        [message] = self.backend.messages
        self.assertEqual(
            [r.address for r in message.envelope.recipients], ["b@example.net"]
        )

    def test_dataWithoutRecipient(self) -> None:
        """
        DATA with no accepted recipient is refused with 503 5.5.1.
        """
        self.protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.net>\r\nDATA\r\n"
        )
        self.assertEqual(
            codes(take(self.transport)), ["250 2.1.0", "550 5.1.1", "503 5.5.1"]
        )

    def test_rsetClearsEnvelope(self) -> None:
        """
        After RSET the envelope is gone: RCPT needs a new MAIL, and the next
        message has only its own recipients.
        """
        self.protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<old@example.net>\r\nRSET\r\n"
            b"RCPT TO:<b@example.net>\r\n" + ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n"
        )
        self.assertEqual(
            codes(take(self.transport)),
            [
                "250 2.1.0",
                "250 2.1.5",
                "250 2.0.0",
                "503 5.5.1",
                "250 2.1.0",
                "250 2.1.5",
                "354",
                "250 2.0.0",
            ],
        )
        [message] = self.backend.messages
        self.assertEqual(
            [r.address for r in message.envelope.recipients], ["b@example.net"]
        )
        self.assertIn("reset", self.backend.names())

    def test_recipientsDoNotPileUp(self) -> None:
        """
        Two messages on one connection each have only their own recipients.
        """
        for rcpt in (b"one@example.net", b"two@example.net"):
            self.protocol.dataReceived(
                b"MAIL FROM:<a@example.com>\r\nRCPT TO:<"
                + rcpt
                + b">\r\nDATA\r\n"
                + MESSAGE
                + b".\r\n"
            )
        self.assertEqual(
            [[r.address for r in m.envelope.recipients] for m in self.backend.messages],
            [["one@example.net"], ["two@example.net"]],
        )

    def test_nestedMail(self) -> None:
        """
        A second MAIL inside a transaction is refused with 503 5.5.1.
        """
        self.protocol.dataReceived(ENVELOPE + b"MAIL FROM:<c@example.com>\r\n")
        self.assertEqual(
            codes(take(self.transport)), ["250 2.1.0", "250 2.1.5", "503 5.5.1"]
        )

    def test_mailParametersReachHook(self) -> None:
        """
        BODY, SMTPUTF8 and SIZE are parsed and given to the MAIL hook.
        """
        self.protocol.dataReceived(
            "MAIL FROM:<ä@example.com> BODY=8BITMIME SMTPUTF8 SIZE=42\r\n".encode()
        )
        self.assertEqual(codes(take(self.transport)), ["250 2.1.0"])
        [(_, sender)] = [c for c in self.backend.calls if c[0] == "mailFrom"]
        assert isinstance(sender, MailFrom)
        self.assertEqual(
            (sender.address, sender.body, sender.smtputf8, sender.size),
            ("ä@example.com", "8BITMIME", True, 42),
        )

    def test_customPositiveReply(self) -> None:
        """
        A hook that returns an L{SMTPReply} has it sent instead of the
        default reply.
        """
        self.backend.behaviour["message"] = lambda m: SMTPReply(
            250, "2.6.0", "Stored as 42"
        )
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        self.assertTrue(take(self.transport).endswith(b"250 2.6.0 Stored as 42\r\n"))

    def test_hookFailureIsTemporary(self) -> None:
        """
        A hook raising anything but L{SMTPReply} is logged and answered
        451 4.3.0 without details; the session goes on.
        """

        def broken(value: object) -> None:
            raise RuntimeError("database password is hunter2")

        self.backend.behaviour["mailFrom"] = broken
        self.protocol.dataReceived(b"MAIL FROM:<a@example.com>\r\nNOOP\r\n")
        replies = take(self.transport)
        self.assertEqual(codes(replies), ["451 4.3.0", "250 2.0.0"])
        self.assertNotIn(b"hunter2", replies)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failedDeferredReply(self) -> None:
        """
        A hook's Deferred that fails with L{SMTPReply} sends that reply.
        """
        self.backend.behaviour["rcptTo"] = lambda r: fail(
            SMTPReply(450, "4.2.1", "Mailbox busy")
        )
        self.protocol.dataReceived(ENVELOPE)
        self.assertEqual(
            take(self.transport), b"250 2.1.0 Sender OK\r\n450 4.2.1 Mailbox busy\r\n"
        )

    def test_coroutineHook(self) -> None:
        """
        A hook may be a coroutine function.
        """

        async def mailFrom(value: object) -> SMTPReply:
            return SMTPReply(250, "2.1.0", "Coroutine OK")

        self.backend.behaviour["mailFrom"] = mailFrom
        self.protocol.dataReceived(b"MAIL FROM:<a@example.com>\r\n")
        self.assertEqual(take(self.transport), b"250 2.1.0 Coroutine OK\r\n")

    def test_headersRefusal(self) -> None:
        """
        A refusal from the headers hook is the answer to the end of data,
        and the message hook is never called.
        """
        self.backend.behaviour["headers"] = lambda h: fail(
            SMTPReply(550, "5.7.1", "Spam")
        )
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE)
        self.assertEqual(codes(take(self.transport)), ["250 2.1.0", "250 2.1.5", "354"])
        self.protocol.dataReceived(b".\r\nNOOP\r\n")
        self.assertEqual(codes(take(self.transport)), ["550 5.7.1", "250 2.0.0"])
        self.assertEqual(self.backend.messages, [])
        self.assertIn("reset", self.backend.names())

    def test_headersHookWithoutBody(self) -> None:
        """
        A message with no empty line is all header: the headers hook sees it
        at the end of data.
        """
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\nSubject: only\r\n.\r\n")
        [(_, headers)] = [c for c in self.backend.calls if c[0] == "headers"]
        self.assertEqual(headers.get("Subject"), "only")  # type: ignore[attr-defined]
        self.assertEqual(len(self.backend.messages), 1)

    def test_dataArgument(self) -> None:
        """
        DATA with an argument is a syntax error.
        """
        self.protocol.dataReceived(ENVELOPE + b"DATA now\r\n")
        self.assertEqual(codes(take(self.transport))[-1], "501 5.5.2")

    def test_sessionCommands(self) -> None:
        """
        NOOP, VRFY, HELP and QUIT answer as RFC 5321 4.1.1 says.
        """
        self.protocol.dataReceived(b"NOOP\r\nVRFY someone\r\nHELP\r\nQUIT\r\n")
        self.assertEqual(
            codes(take(self.transport)),
            ["250 2.0.0", "252 2.5.0", "214 2.0.0", "221 2.0.0"],
        )
        self.assertTrue(self.transport.disconnecting)

    def test_messageLogged(self) -> None:
        """
        Each accepted message is logged with its queue identifier, peer,
        sender and recipients, unless the operator turns that off.
        """
        from twisted.logger import LogEvent, globalLogPublisher

        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        [event] = [e for e in events if e.get("queueID")]
        self.assertEqual(
            (event["queueID"], event["peer"], event["sender"], event["recipients"]),
            (
                self.backend.messages[0].queueID,
                "192.0.2.1",
                "a@example.com",
                "b@example.net",
            ),
        )
        self.factory.logMessages = False
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        self.assertEqual(len([e for e in events if e.get("queueID")]), 1)

    def test_messageLoggedByHook(self) -> None:
        """
        A message hook that answers L{MESSAGE_LOGGED} has logged the message
        itself: the server logs no line of its own, and still answers 250
        with the queue identifier.
        """
        from twisted.logger import LogEvent, globalLogPublisher

        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.backend.behaviour["message"] = lambda _: MESSAGE_LOGGED
        self.protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        self.assertEqual([e for e in events if e.get("queueID")], [])
        self.assertEqual(
            take(self.transport).split(b"\r\n")[-2],
            b"250 2.0.0 OK: queued as " + self.backend.messages[0].queueID.encode(),
        )

    def test_logoutOnDisconnect(self) -> None:
        """
        Losing the connection calls the logout hook once.
        """
        self.protocol.connectionLost()
        self.assertEqual(self.backend.names().count("logout"), 1)


class PipeliningTests(SynchronousTestCase):
    """
    RFC 2920: replies in command order, even while hooks are pending.
    """

    def test_heldHooksKeepOrder(self) -> None:
        """
        While a hook's Deferred is pending nothing after it is read; each
        reply comes out in order as the hooks fire.
        """
        backend = RecordingBackend()
        backend.hold = {"mailFrom", "rcptTo"}
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        take(transport)
        protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
            b"RCPT TO:<c@example.net>\r\nNOOP\r\n"
        )
        self.assertEqual(take(transport), b"")
        self.assertEqual(backend.names()[-1], "mailFrom")
        backend.held[0].callback(None)
        self.assertEqual(take(transport), b"250 2.1.0 Sender OK\r\n")
        self.assertEqual(backend.names()[-1], "rcptTo")
        backend.held[1].errback(SMTPReply(550, "5.1.1", "No"))
        self.assertEqual(take(transport), b"550 5.1.1 No\r\n")
        backend.held[2].callback(None)
        self.assertEqual(take(transport), b"250 2.1.5 Recipient OK\r\n250 2.0.0 OK\r\n")

    def test_250OnlyAfterMessageHook(self) -> None:
        """
        The 250 after DATA waits for the message hook's Deferred, and
        commands pipelined after the data wait too.
        """
        backend = RecordingBackend()
        backend.hold = {"message"}
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\nQUIT\r\n")
        self.assertEqual(codes(take(transport))[-1], "354")
        self.assertFalse(transport.disconnecting)
        backend.held[0].callback(None)
        self.assertEqual(codes(take(transport)), ["250 2.0.0", "221 2.0.0"])
        self.assertTrue(transport.disconnecting)

    def test_noTimerAfterClose(self) -> None:
        """
        A hook that answers after the client has gone leaves no idle timer
        behind.
        """
        backend = RecordingBackend()
        backend.hold = {"mailFrom"}
        factory, clock = makeFactory(backend, timeout=10)
        protocol, _ = connect(factory)
        protocol.dataReceived(EHLO + b"MAIL FROM:<a@example.com>\r\n")
        protocol.connectionLost()
        backend.held[0].callback(None)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_timeoutStopsWhileHookWorks(self) -> None:
        """
        The idle clock does not run while the server waits for a hook.
        """
        backend = RecordingBackend()
        backend.hold = {"message"}
        factory, clock = makeFactory(backend, timeout=10)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO + ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        take(transport)
        clock.advance(60)
        self.assertEqual(take(transport), b"")
        backend.held[0].callback(None)
        self.assertEqual(codes(take(transport)), ["250 2.0.0"])
        clock.advance(10)
        self.assertEqual(codes(take(transport)), ["421 4.4.2"])


class AuthTests(SynchronousTestCase):
    """
    AUTH PLAIN and LOGIN (RFC 4954, RFC 4616).
    """

    def setUp(self) -> None:
        self.backend = RecordingBackend()
        self.factory, _ = makeFactory(self.backend, allowPlaintextAuth=True)
        self.protocol, self.transport = connect(self.factory)
        self.protocol.dataReceived(EHLO)
        take(self.transport)

    def credentials(self) -> list[SMTPCredentials]:
        return [v for n, v in self.backend.calls if n == "authenticate"]  # type: ignore[misc]

    def test_plainInitialResponse(self) -> None:
        """
        AUTH PLAIN with an initial response authenticates, and the login
        reaches the MAIL hook.
        """
        token = base64.b64encode(b"\0alice\0secret")
        self.protocol.dataReceived(b"AUTH PLAIN " + token + b"\r\n")
        self.assertEqual(
            take(self.transport), b"235 2.7.0 Authentication successful\r\n"
        )
        self.protocol.dataReceived(b"MAIL FROM:<alice@example.com>\r\n")
        take(self.transport)
        [(_, sender)] = [c for c in self.backend.calls if c[0] == "mailFrom"]
        assert isinstance(sender, MailFrom)
        self.assertEqual(sender.login, "alice")
        [creds] = self.credentials()
        self.assertEqual((creds.mechanism, creds.login), ("PLAIN", "alice"))
        self.assertNotIn("secret", repr(creds))

    def test_plainChallenge(self) -> None:
        """
        AUTH PLAIN without a response gets an empty 334 challenge.
        """
        self.protocol.dataReceived(b"AUTH PLAIN\r\n")
        self.assertEqual(take(self.transport), b"334 \r\n")
        self.protocol.dataReceived(base64.b64encode(b"\0alice\0secret") + b"\r\n")
        self.assertEqual(codes(take(self.transport)), ["235 2.7.0"])

    def test_login(self) -> None:
        """
        AUTH LOGIN asks for the user name and the password in base64.
        """
        self.protocol.dataReceived(b"AUTH LOGIN\r\n")
        self.assertEqual(take(self.transport), b"334 VXNlcm5hbWU6\r\n")
        self.protocol.dataReceived(base64.b64encode(b"bob") + b"\r\n")
        self.assertEqual(take(self.transport), b"334 UGFzc3dvcmQ6\r\n")
        self.protocol.dataReceived(base64.b64encode(b"secret") + b"\r\n")
        self.assertEqual(codes(take(self.transport)), ["235 2.7.0"])
        self.assertEqual(self.credentials()[0].login, "bob")

    def test_wrongPassword(self) -> None:
        """
        A refused login is answered 535 5.7.8 and the session stays
        unauthenticated.
        """
        token = base64.b64encode(b"\0alice\0wrong")
        self.protocol.dataReceived(b"AUTH PLAIN " + token + b"\r\n")
        self.assertEqual(codes(take(self.transport)), ["535 5.7.8"])
        self.protocol.dataReceived(b"MAIL FROM:<alice@example.com>\r\n")
        take(self.transport)
        [(_, sender)] = [c for c in self.backend.calls if c[0] == "mailFrom"]
        assert isinstance(sender, MailFrom)
        self.assertIsNone(sender.login)

    def test_cancelAndGarbage(self) -> None:
        """
        C{*} cancels (501 5.0.0); undecodable base64 is 501 5.5.2; an
        unknown mechanism is 504 5.5.4.
        """
        self.protocol.dataReceived(b"AUTH LOGIN\r\n*\r\n")
        self.assertEqual(codes(take(self.transport)), ["334", "501 5.0.0"])
        self.protocol.dataReceived(b"AUTH PLAIN !!!notbase64\r\n")
        self.assertEqual(codes(take(self.transport)), ["501 5.5.2"])
        self.protocol.dataReceived(b"AUTH CRAM-MD5\r\n")
        self.assertEqual(codes(take(self.transport)), ["504 5.5.4"])

    def test_authTwice(self) -> None:
        """
        A second AUTH after success is refused with 503 5.5.1.
        """
        token = base64.b64encode(b"\0alice\0secret")
        self.protocol.dataReceived(b"AUTH PLAIN " + token + b"\r\n")
        self.protocol.dataReceived(b"AUTH PLAIN " + token + b"\r\n")
        self.assertEqual(codes(take(self.transport)), ["235 2.7.0", "503 5.5.1"])

    def test_authNeedsTLS(self) -> None:
        """
        Without TLS and without the operator's consent, AUTH is refused with
        538 5.7.11 and the hook never sees the password.
        """
        backend = RecordingBackend()
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        take(transport)
        token = base64.b64encode(b"\0alice\0secret")
        protocol.dataReceived(b"AUTH PLAIN " + token + b"\r\n")
        self.assertEqual(codes(take(transport)), ["538 5.7.11"])
        self.assertNotIn("authenticate", backend.names())

    def test_noAuthWithoutAuthSession(self) -> None:
        """
        A backend whose sessions cannot authenticate gets 502 5.5.1.
        """
        factory, _ = makeFactory(FunctionBackend(), allowPlaintextAuth=True)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        self.assertNotIn(b"AUTH", take(transport))
        protocol.dataReceived(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        self.assertEqual(codes(take(transport)), ["502 5.5.1"])


class FunctionBackendTests(SynchronousTestCase):
    """
    L{FunctionBackend} calls plain functions with the connection info.
    """

    def test_functions(self) -> None:
        """
        Each callable gets the connection info and the step's value;
        without rcptTo every recipient is refused.
        """
        seen: list[Any] = []

        def message(info: Any, msg: ReceivedMessage) -> Deferred[None]:
            seen.append((info.peerHost, msg.envelope.sender))
            return succeed(None)

        def rcptTo(info: Any, rcpt: Recipient) -> None:
            if rcpt.address != "b@example.net":
                raise SMTPReply(550, "5.1.1", "Unknown")

        factory, _ = makeFactory(FunctionBackend(rcptTo=rcptTo, message=message))
        protocol, transport = connect(factory)
        protocol.dataReceived(
            EHLO
            + b"MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.net>\r\n"
            + b"RCPT TO:<b@example.net>\r\nDATA\r\n"
            + MESSAGE
            + b".\r\n"
        )
        self.assertEqual(
            codes(take(transport))[2:],
            ["250 2.1.0", "550 5.1.1", "250 2.1.5", "354", "250 2.0.0"],
        )
        self.assertEqual(seen, [("192.0.2.1", "a@example.com")])

    def test_defaultsRefuse(self) -> None:
        """
        A FunctionBackend with no callables refuses every recipient.
        """
        factory, _ = makeFactory(FunctionBackend())
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO + ENVELOPE)
        self.assertEqual(codes(take(transport))[-1], "550 5.1.1")


class ShutdownTests(SynchronousTestCase):
    """
    Stopping the server politely (RFC 5321 3.8).
    """

    def test_idleConnection(self) -> None:
        """
        An idle connection gets 421 4.3.2 and is closed; the shutdown
        completes when it is gone.
        """
        factory, _ = makeFactory()
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        take(transport)
        done = factory.shutdown()
        self.assertEqual(
            take(transport), b"421 4.3.2 Server shutting down, closing connection\r\n"
        )
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(done)
        protocol.connectionLost()
        self.successResultOf(done)

    def test_messageBeingStored(self) -> None:
        """
        A message whose hook is still storing it gets its 250 first, then
        421, so the client does not send it again.
        """
        backend = RecordingBackend()
        backend.hold = {"message"}
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO + ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        take(transport)
        factory.shutdown()
        self.assertEqual(take(transport), b"")
        self.assertFalse(transport.disconnecting)
        backend.held[0].callback(None)
        self.assertEqual(codes(take(transport)), ["250 2.0.0", "421 4.3.2"])
        self.assertTrue(transport.disconnecting)

    def test_newConnectionRefused(self) -> None:
        """
        A connection arriving during a shutdown is told so and closed.
        """
        factory, _ = makeFactory()
        self.successResultOf(factory.shutdown())
        _, transport = connect(factory)
        self.assertEqual(codes(take(transport)), ["421"])
        self.assertTrue(transport.disconnecting)

    def test_abortAll(self) -> None:
        """
        C{abortAll} drops every connection at once.
        """
        backend = RecordingBackend()
        backend.hold = {"mailFrom"}
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO + b"MAIL FROM:<a@example.com>\r\n")
        factory.shutdown()
        factory.abortAll()
        self.assertTrue(transport.disconnected)


class EdgeTests(SynchronousTestCase):
    """
    The less travelled paths of the protocol.
    """

    def session(
        self, backend: RecordingBackend | None = None, **kwargs: Any
    ) -> tuple[RecordingBackend, Any, Any]:
        backend = backend or RecordingBackend()
        factory, _ = makeFactory(backend, **kwargs)
        protocol, transport = connect(factory)
        protocol.dataReceived(EHLO)
        take(transport)
        return backend, protocol, transport

    def test_commandArguments(self) -> None:
        """
        RSET and STARTTLS take no argument, VRFY needs one, STARTTLS without
        a TLS configuration is not implemented.
        """
        _, protocol, transport = self.session()
        protocol.dataReceived(b"RSET now\r\nVRFY\r\nSTARTTLS\r\n")
        self.assertEqual(
            codes(take(transport)), ["501 5.5.2", "501 5.5.2", "502 5.5.1"]
        )
        _, protocol, transport = self.session(tls=object())
        protocol.dataReceived(b"STARTTLS please\r\n")
        self.assertEqual(codes(take(transport)), ["501 5.5.2"])

    def test_requireTLS(self) -> None:
        """
        With C{requireTLS}, MAIL before STARTTLS is refused with 530 5.7.0.
        """
        _, protocol, transport = self.session(requireTLS=True)
        protocol.dataReceived(b"MAIL FROM:<a@example.com>\r\n")
        self.assertEqual(codes(take(transport)), ["530 5.7.0"])

    def test_ehloAbortsTransaction(self) -> None:
        """
        EHLO in the middle of a transaction abandons it (the session is
        reset) and RCPT then needs a new MAIL.
        """
        backend, protocol, transport = self.session()
        protocol.dataReceived(ENVELOPE + EHLO + b"RCPT TO:<b@example.net>\r\n")
        self.assertEqual(codes(take(transport))[-1], "503 5.5.1")
        self.assertIn("reset", backend.names())

    def test_returnedRefusal(self) -> None:
        """
        A hook that returns (rather than raises) a negative L{SMTPReply}
        refuses with it; a HELO hook may replace the greeting reply.
        """
        backend = RecordingBackend()
        backend.behaviour["mailFrom"] = lambda v: SMTPReply(550, "5.7.1", "No thanks")
        backend.behaviour["helo"] = lambda v: SMTPReply(250, None, "Hi there")
        factory, _ = makeFactory(backend)
        protocol, transport = connect(factory)
        take(transport)
        protocol.dataReceived(EHLO + b"MAIL FROM:<a@example.com>\r\n")
        self.assertEqual(take(transport), b"250 Hi there\r\n550 5.7.1 No thanks\r\n")

    def test_headersHookBroken(self) -> None:
        """
        A headers hook that fails with anything but L{SMTPReply} refuses the
        message with 451 4.3.0 at the end of data, and is logged.
        """
        backend = RecordingBackend()

        def broken(value: object) -> None:
            raise RuntimeError("headers")

        backend.behaviour["headers"] = broken
        _, protocol, transport = self.session(backend)
        protocol.dataReceived(ENVELOPE + b"DATA\r\n" + MESSAGE + b".\r\n")
        self.assertEqual(codes(take(transport))[-1], "451 4.3.0")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(backend.messages, [])

    def test_lateHeadersRefusal(self) -> None:
        """
        A message with no empty line shows the headers hook its whole text
        at the end, and a returned refusal is the answer.
        """
        backend = RecordingBackend()
        backend.behaviour["headers"] = lambda h: SMTPReply(554, "5.7.1", "No")
        _, protocol, transport = self.session(backend)
        protocol.dataReceived(ENVELOPE + b"DATA\r\nSubject: only\r\n.\r\n")
        self.assertEqual(codes(take(transport))[-1], "554 5.7.1")
        self.assertEqual(backend.messages, [])

    def test_logoutFailureLogged(self) -> None:
        """
        A logout hook that fails, at once or later, is logged and harms
        nothing.
        """
        for outcome in (RuntimeError("now"), fail(RuntimeError("later"))):
            backend = RecordingBackend()

            def logout(value: object, outcome: object = outcome) -> object:
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome

            backend.behaviour["logout"] = logout
            _, protocol, _ = self.session(backend)
            protocol.connectionLost()
            self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_internalError(self) -> None:
        """
        A fault in a command handler costs that command a 451 4.3.0, is
        logged, and the connection goes on.
        """
        backend = RecordingBackend()
        _, protocol, transport = self.session(backend)
        protocol._session = None  # A broken invariant: no session.
        protocol.dataReceived(b"MAIL FROM:<a@example.com>\r\nNOOP\r\n")
        self.assertEqual(codes(take(transport)), ["451 4.3.0", "250 2.0.0"])
        self.assertEqual(len(self.flushLoggedErrors(AttributeError)), 1)
