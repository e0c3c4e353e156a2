# -*- test-case-name: tests.test_imap4_idle -*-
"""
Tests of what an IMAP4 session hears of changes made elsewhere, with a
real client: imaplib over loopback sockets, against the server over a
real Maildir store.  Another session's flags and expunges, and a message
the SMTP server delivers, are told at the next NOOP, and to a session in
IDLE (RFC 2177) at once, without a command: through the same store, or
through another store on the same root and the directory watcher.
Python's imaplib has no IDLE, so the client sends it and reads the
responses line by line, with a bounded wait for each.
"""

from __future__ import annotations

import imaplib
import re

from tests.test_imap4_clients import (
    ALICE,
    GREETINGS,
    LUNCH,
    PASSWORD,
    REPORT,
    IMAPServerTestCase,
    messageFiles,
    stored,
)

#: Seconds to wait for a change made in this process to reach the client.
PROMPT = 5.0
#: Seconds to wait for a change another store made, seen by the directory
#: watcher.
WATCHED = 10.0


class Idling:
    """
    An imaplib client in IDLE, read line by line.

    @ivar client: the client.
    @ivar tag: the tag of its IDLE command.
    """

    def __init__(self, client: imaplib.IMAP4) -> None:
        self.client = client
        self.tag = b""

    def start(self) -> bytes:
        """
        Send IDLE.

        @return: the server's continuation line.
        """
        self.tag = self.client._new_tag()
        self.client.send(self.tag + b" IDLE\r\n")
        return self.client.readline()

    def waitFor(self, pattern: bytes, seconds: float) -> list[bytes]:
        """
        Read lines, sending nothing, until one matches C{pattern}.

        @param seconds: how long the socket waits for each line.
        @return: the lines read, the matching one last.
        @raise TimeoutError: when no line comes in time.
        """
        assert self.client.sock is not None
        self.client.sock.settimeout(seconds)
        lines = []
        for _ in range(20):
            line = self.client.readline()
            lines.append(line)
            if re.fullmatch(pattern, line):
                return lines
        raise AssertionError(f"no line matched {pattern!r}: {lines!r}")

    def done(self, line: bytes = b"DONE") -> list[bytes]:
        """
        End IDLE with C{line}.

        @return: the lines up to the tagged one, which is last.
        """
        self.client.send(line + b"\r\n")
        return self.waitFor(re.escape(self.tag) + rb" .*\r\n", PROMPT)


class NoopTests(IMAPServerTestCase):
    """
    Changes made elsewhere (by another session on the mailbox, by the SMTP
    server): a session is told at its next NOOP.
    """

    async def test_expungeSeenAtNoop(self) -> None:
        """
        A message one session expunges is named in an C{EXPUNGE} at the
        other's next NOOP, after which its sequence numbers follow.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        first = await self.login(select="INBOX")
        second = await self.login(select="INBOX")
        await self.call(first.store, "2", "+FLAGS.SILENT", "(\\Deleted)")
        self.assertEqual(await self.call(first.expunge), ("OK", [b"2"]))
        self.assertEqual(await self.call(second.noop), ("OK", [b"NOOP completed"]))
        self.assertEqual(second.response("EXPUNGE"), ("EXPUNGE", [b"2"]))
        self.assertEqual(await self.call(second.search, None, "ALL"), ("OK", [b"1 2"]))
        self.assertEqual(await self.call(second.uid, "SEARCH", "ALL"), ("OK", [b"1 3"]))

    async def test_flagsSeenAtNoop(self) -> None:
        """
        Flags one session sets are shown to the other at its next NOOP, in
        an untagged FETCH of the message's flags; a message delivered
        meanwhile is counted in C{EXISTS}.
        """
        await self.deliver(GREETINGS, REPORT)
        first = await self.login(select="INBOX")
        second = await self.login(select="INBOX")
        await self.call(first.store, "1", "+FLAGS.SILENT", "(\\Answered $Done)")
        await self.store.deliver([ALICE], LUNCH)
        self.assertEqual(await self.call(second.noop), ("OK", [b"NOOP completed"]))
        self.assertEqual(
            second.response("FETCH"), ("FETCH", [b"1 (FLAGS ($Done \\Answered))"])
        )
        self.assertEqual(second.response("EXISTS")[1][-1], b"3")
        self.assertEqual(
            second.response("FLAGS")[1][-1],
            b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Done)",
        )

    async def test_smtpDeliverySeenAtNoop(self) -> None:
        """
        A message the SMTP server delivers over the same store is counted
        in C{EXISTS} at the next NOOP of a session with INBOX selected,
        and is on disk with the C{Return-Path:} of the final delivery.
        """
        client = await self.login(select="INBOX")
        await self.sendMail(self.smtpServer(), LUNCH)
        self.assertEqual(await self.call(client.noop), ("OK", [b"NOOP completed"]))
        self.assertEqual(client.response("EXISTS")[1][-1], b"1")
        self.assertEqual(client.response("RECENT")[1][-1], b"1")
        self.assertEqual(
            await self.call(client.search, None, "FROM", "carol"), ("OK", [b"1"])
        )
        [path] = messageFiles(self.root)
        content = path.read_bytes()
        self.assertTrue(content.startswith(b"Return-Path: <sender@example.net>\n"))
        self.assertTrue(content.endswith(stored(LUNCH)), content)


class IdleTests(IMAPServerTestCase):
    """
    A session in IDLE hears of changes as they happen.
    """

    async def idle(self, select: str | None = "INBOX") -> Idling:
        """
        Alice logged in, C{select} selected, in IDLE.
        """
        client = await self.login(select=select)
        idling = Idling(client)
        self.assertEqual(await self.call(idling.start), b"+ idling\r\n")
        return idling

    async def test_smtpDeliverySameStore(self) -> None:
        """
        A message the SMTP server delivers through the store the IMAP
        server reads is announced at once to a session in IDLE: C{* 1
        EXISTS} and C{* 1 RECENT}, the client sending nothing.  After
        DONE the message can be searched.
        """
        port = self.smtpServer()
        idling = await self.idle()
        waiting = self.call(idling.waitFor, rb"\* 1 RECENT\r\n", PROMPT)
        await self.sendMail(port, LUNCH)
        self.assertEqual(await waiting, [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"])
        self.assertEqual(
            await self.call(idling.done), [idling.tag + b" OK IDLE terminated\r\n"]
        )
        client = idling.client
        self.assertEqual(
            await self.call(client.search, None, "FROM", "carol"), ("OK", [b"1"])
        )

    async def test_smtpDeliveryOtherStore(self) -> None:
        """
        A message the SMTP server delivers through another store on the
        same root (as another process would) reaches a session in IDLE
        through the directory watcher, within a few seconds.
        """
        port = self.smtpServer(store=self.makeStore())
        await self.deliver(GREETINGS)
        idling = await self.idle()
        for count, message in ((2, LUNCH), (3, REPORT)):
            pattern = rb"\* %d EXISTS\r\n" % (count,)
            waiting = self.call(idling.waitFor, pattern, WATCHED)
            await self.sendMail(port, message)
            lines = await waiting
            self.assertEqual(
                [line for line in lines if not line.endswith(b" RECENT\r\n")],
                [b"* %d EXISTS\r\n" % (count,)],
            )
        ended = await self.call(idling.done)
        self.assertEqual(ended[-1], idling.tag + b" OK IDLE terminated\r\n")
        self.assertEqual(len(messageFiles(self.root)), 3)
        client = idling.client
        self.assertEqual(
            await self.call(client.search, None, "OR", "FROM", "carol", "FROM", "bob"),
            ("OK", [b"2 3"]),
        )

    async def test_otherSessionsChanges(self) -> None:
        """
        Flags another session stores, and messages it expunges, are told
        to a session in IDLE as they happen: an untagged FETCH of the new
        flags, then C{EXPUNGE}.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        other = await self.login(select="INBOX")
        idling = await self.idle()
        waiting = self.call(idling.waitFor, rb"\* 2 FETCH .*\r\n", PROMPT)
        await self.call(other.store, "2", "+FLAGS.SILENT", "(\\Flagged \\Deleted)")
        self.assertEqual(
            await waiting, [b"* 2 FETCH (FLAGS (\\Deleted \\Flagged))\r\n"]
        )
        waiting = self.call(idling.waitFor, rb"\* 2 EXPUNGE\r\n", PROMPT)
        await self.call(other.expunge)
        self.assertEqual(await waiting, [b"* 2 EXPUNGE\r\n"])
        await self.call(idling.done)
        self.assertEqual(
            sorted(p.read_bytes() for p in messageFiles(self.root)),
            sorted([stored(GREETINGS), stored(LUNCH)]),
        )

    async def test_idleOverTLS(self) -> None:
        """
        Over implicit TLS, a session in IDLE is told of a delivery too.
        """
        port = self.serve(implicitTLS=True, plainText=False)
        client = await self.connect(port, implicitTLS=True)
        await self.call(client.login, ALICE, PASSWORD)
        await self.call(client.select)
        idling = Idling(client)
        self.assertEqual(await self.call(idling.start), b"+ idling\r\n")
        waiting = self.call(idling.waitFor, rb"\* 1 EXISTS\r\n", PROMPT)
        await self.store.deliver([ALICE], GREETINGS)
        self.assertEqual(await waiting, [b"* 1 EXISTS\r\n"])
        ended = await self.call(idling.done)
        self.assertEqual(
            ended, [b"* 1 RECENT\r\n", idling.tag + b" OK IDLE terminated\r\n"]
        )

    async def test_done(self) -> None:
        """
        DONE ends IDLE, in the selected state or the authenticated one,
        after which commands are answered again; a line other than DONE
        ends it with BAD (RFC 2177 3).
        """
        for select in ("INBOX", None):
            idling = await self.idle(select)
            self.assertEqual(
                await self.call(idling.done),
                [idling.tag + b" OK IDLE terminated\r\n"],
            )
            self.assertEqual(
                await self.call(idling.client.noop), ("OK", [b"NOOP completed"])
            )
        idling = await self.idle()
        self.assertEqual(
            await self.call(idling.done, b"NOOP"),
            [idling.tag + b" BAD Expected DONE\r\n"],
        )
        self.assertEqual(
            await self.call(idling.client.noop), ("OK", [b"NOOP completed"])
        )
