"""
Tests for C{python -m gomail_twisted queue}: what it prints, what it does
to the spool, and how it asks a running queue.
"""

from __future__ import annotations

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.__main__ import main as programMain
from gomail_twisted.queue._cli import formatAge, main
from gomail_twisted.smtpreply import SMTPReply
from tests.test_queue import makeQueue, stateOf, submitted


def run(*argv: str, now: float = 1_000_000.0) -> tuple[int, str, str]:
    """
    Run the command.

    @return: its exit status, output and errors.
    """
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err, now=lambda: now)
    return status, out.getvalue(), err.getvalue()


class ListTests(SynchronousTestCase):
    """
    C{queue list} shows each message and each recipient's state.
    """

    def test_listShowsStates(self) -> None:
        """
        The list gives the identifier, age, sender, size, and each
        recipient's state, attempts, next attempt and last reply.
        """
        directory = self.mktemp()
        queue, clock, sender = makeQueue(self, directory)
        queueID = submitted(self, queue, "bob@example.net", "carol@example.net")
        clock.advance(0)
        sender.answer(
            0,
            accepted=("bob@example.net",),
            refused=(("carol@example.net", SMTPReply(451, "4.2.2", "Mailbox full")),),
        )
        status, out, err = run("--spool", directory, "list", now=clock.seconds() + 7260)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(
            out.splitlines(),
            [
                f"{queueID}  2h1m old  from <alice@example.com>  102 bytes",
                "    bob@example.net  delivered",
                "    carol@example.net  pending, 1 attempts, due now: "
                "451 4.2.2 Mailbox full",
                "1 message(s).",
            ],
        )

    def test_listEmpty(self) -> None:
        """
        An empty (or missing) spool says so.
        """
        self.assertEqual(
            run("--spool", self.mktemp(), "list"), (0, "The queue is empty.\n", "")
        )

    def test_listUnreadable(self) -> None:
        """
        A state file that cannot be read is listed as such, not skipped.
        """
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        queueID = submitted(self, queue)
        queue.spool.statePath(queueID).write_bytes(b"garbage")
        _status, out, _err = run("--spool", directory, "list")
        self.assertIn(f"{queueID}  unreadable: not JSON", out)

    def test_listCorrupt(self) -> None:
        """
        Files a queue set aside as corrupt are counted at the end.
        """
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        queueID = submitted(self, queue)
        queue.spool.moveAside(queueID)
        _status, out, _err = run("--spool", directory, "list")
        self.assertEqual(
            out.splitlines(),
            [
                "The queue is empty.",
                "2 unreadable file(s) set aside in "
                f"{os.path.abspath(directory)}/corrupt.",
            ],
        )

    def test_throughMainProgram(self) -> None:
        """
        C{python -m gomail_twisted queue} runs the command.
        """
        out, err = io.StringIO(), io.StringIO()
        status = programMain(
            ["queue", "--spool", self.mktemp(), "list"], stdout=out, stderr=err
        )
        self.assertEqual((status, out.getvalue()), (0, "The queue is empty.\n"))

    def test_formatAge(self) -> None:
        """
        Ages are given in their two largest units.
        """
        table = [
            (0, "0s"),
            (59, "59s"),
            (61, "1m1s"),
            (3600, "1h0m"),
            (86400 * 3 + 7200 + 5, "3d2h"),
            (-5, "0s"),
        ]
        for seconds, expected in table:
            self.assertEqual(formatAge(seconds), expected)


class ActionTests(SynchronousTestCase):
    """
    C{queue retry} and C{queue delete}, with and without a running queue.
    """

    def test_retryWithoutQueue(self) -> None:
        """
        With no queue running, retry makes the message due now in its
        state file.
        """
        directory = self.mktemp()
        queue, clock, sender = makeQueue(self, directory)
        queueID = submitted(self, queue)
        clock.advance(0)
        sender.deferAll(0)
        self.successResultOf(queue.stop())
        status, out, err = run("--spool", directory, "retry", queueID, now=1234.0)
        self.assertEqual((status, out, err), (0, f"{queueID}: due now\n", ""))
        self.assertEqual(
            stateOf(queue, queueID)["recipients"][0]["nextAttempt"], 1234.0
        )

    def test_retryAllRunningQueue(self) -> None:
        """
        With a queue running, retry --all asks it, and it tries every
        message within controlInterval seconds.
        """
        directory = self.mktemp()
        queue, clock, sender = makeQueue(self, directory, controlInterval=5)
        submitted(self, queue)
        clock.advance(0)
        sender.deferAll(0)
        _status, out, _err = run("--spool", directory, "retry", "--all")
        self.assertEqual(out, "every message: asked the running queue to retry it\n")
        clock.advance(5)
        self.assertEqual(len(sender.calls), 2)

    def test_deleteWithoutQueue(self) -> None:
        """
        With no queue running, delete removes the message's files.
        """
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        queueID = submitted(self, queue)
        self.successResultOf(queue.stop())
        status, out, _err = run("--spool", directory, "delete", queueID)
        self.assertEqual((status, out), (0, f"{queueID}: deleted\n"))
        self.assertEqual(os.listdir(os.path.join(directory, "messages")), [])

    def test_deleteRunningQueue(self) -> None:
        """
        With a queue running, delete asks it; it removes the message and
        never tries it again, nor reports it.
        """
        directory = self.mktemp()
        queue, clock, sender = makeQueue(self, directory, controlInterval=5)
        queueID = submitted(self, queue)
        clock.advance(0)
        sender.deferAll(0)
        _status, out, _err = run("--spool", directory, "delete", queueID)
        self.assertEqual(out, f"{queueID}: asked the running queue to delete it\n")
        clock.advance(5)
        self.assertEqual(os.listdir(os.path.join(directory, "messages")), [])
        clock.advance(10 * 86400)
        self.assertEqual(len(sender.calls), 1)

    def test_unknownMessage(self) -> None:
        """
        Naming a message that is not queued is an error (status 1).
        """
        status, _out, err = run(
            "--spool", self.mktemp(), "delete", "0000000003e8a1b2c3d4"
        )
        self.assertEqual(status, 1)
        self.assertIn("no such message", err)

    def test_badArguments(self) -> None:
        """
        A malformed identifier, retry without a target, or an unknown
        command is a usage error (status 2), and nothing is touched.
        """
        directory = self.mktemp()
        for argv in [
            ["delete", "../../etc/passwd"],
            ["retry"],
            ["retry", "--all", "0000000003e8a1b2c3d4"],
            ["frobnicate"],
            [],
        ]:
            status, _out, err = run("--spool", directory, *argv)
            self.assertEqual(status, 2, argv)
            self.assertIn("python -m gomail_twisted queue", err)
        self.assertFalse(os.path.exists(directory))
