# -*- test-case-name: tests.test_queue_cli -*-
"""
C{python -m gomail_twisted queue}: look at the outbound queue and act on
it.

    python -m gomail_twisted queue list
    python -m gomail_twisted queue retry ID... | --all
    python -m gomail_twisted queue delete ID...

The spool is C{gomail-data/queue} (where C{twistd gomail} keeps it when
run from the current directory) unless C{--spool DIR} says otherwise.

While a server runs the queue (it holds the spool's lock), C{retry} and
C{delete} leave a request in the spool's C{control/} directory, which the
queue acts on within a few seconds (C{controlInterval}); otherwise they
change the files themselves, and a queue started later sees the change.
C{delete} tells no one: the sender gets no report.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TextIO

from gomail_twisted.queue._entry import CorruptState, QueuedMessage, isQueueID
from gomail_twisted.queue._spool import DEFAULT_SPOOL, Spool, SpoolLocked, iterStates

__all__ = ["main"]

#: The program name in usage messages.
PROGRAM = "python -m gomail_twisted queue"


def formatAge(seconds: float) -> str:
    """
    @param seconds: a duration.
    @return: it in the two largest units, such as C{"2h13m"} or C{"45s"}.
    """
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return "".join(f"{n}{unit}" for n, unit in parts[:2])


def formatMessage(message: QueuedMessage, now: float) -> list[str]:
    """
    @param message: a queued message.
    @param now: the time.
    @return: the lines C{list} prints for it: identifier, age, sender and
        size, then one line per recipient with its state.
    """
    sender = f"<{message.sender}>"
    lines = [
        f"{message.queueID}  {formatAge(now - message.created)} old  "
        f"from {sender}  {message.size} bytes"
    ]
    for r in message.recipients:
        line = f"    {r.address}  {r.status}"
        if r.status == "pending":
            line += f", {r.attempts} attempts"
            wait = r.nextAttempt - now
            line += f", next in {formatAge(wait)}" if wait > 0 else ", due now"
        elif r.status == "failed":
            line += " (expired)" if r.expired else ""
            line += ", reported" if r.notified else ", not reported yet"
        if r.reply and r.status != "delivered":
            line += f": {r.reply}"
        lines.append(line)
    return lines


def _list(spool: Spool, out: TextIO, now: float) -> int:
    count = 0
    for found in iterStates(spool):
        if isinstance(found, tuple):
            queueID, problem = found
            print(f"{queueID}  unreadable: {problem}", file=out)
        else:
            for line in formatMessage(found, now):
                print(line, file=out)
        count += 1
    print(
        "The queue is empty." if not count else f"{count} message(s).",
        file=out,
    )
    corrupt = spool.corruptNames()
    if corrupt:
        print(
            f"{len(corrupt)} unreadable file(s) set aside in {spool.root / 'corrupt'}.",
            file=out,
        )
    return 0


def _act(
    spool: Spool,
    action: str,
    queueIDs: Sequence[str],
    out: TextIO,
    err: TextIO,
    now: float,
) -> int:
    """
    Retry or delete messages: by request to the running queue, or on the
    files when none runs.
    """
    try:
        spool.lock()
    except SpoolLocked:
        for queueID in queueIDs:
            spool.request(f"{action}-{queueID}")
            what = "every message" if queueID == "all" else queueID
            print(f"{what}: asked the running queue to {action} it", file=out)
        return 0
    status = 0
    try:
        chosen = spool.queueIDs() if queueIDs == ["all"] else queueIDs
        for queueID in chosen:
            try:
                message = spool.readState(queueID)
            except FileNotFoundError:
                print(f"{queueID}: no such message in {spool.root}", file=err)
                status = 1
                continue
            except (CorruptState, OSError) as e:
                print(f"{queueID}: unreadable: {e}", file=err)
                status = 1
                continue
            if action == "delete":
                spool.remove(queueID)
                print(f"{queueID}: deleted", file=out)
            else:
                spool.update(
                    message.withRecipients(
                        {
                            r.address: replace(r, nextAttempt=now)
                            for r in message.pending
                        }
                    )
                )
                print(f"{queueID}: due now", file=out)
    finally:
        spool.unlock()
    return status


def _parser(out: TextIO, err: TextIO) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        """
        Writes help to C{out} and errors to C{err}, not to C{sys}'s.
        """

        def _print_message(self, message: str, file: object = None) -> None:
            if message:
                (out if file is sys.stdout else err).write(message)

    parser = Parser(
        prog=PROGRAM, description="Look at the outbound queue and act on it."
    )
    parser.add_argument(
        "--spool",
        default=DEFAULT_SPOOL,
        help=f"the spool directory (default {DEFAULT_SPOOL})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the queued messages")
    retry = commands.add_parser("retry", help="make messages due now")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every message")
    delete = commands.add_parser("delete", help="remove messages (no report)")
    delete.add_argument("ids", nargs="+", metavar="ID")
    return parser


def main(
    argv: Sequence[str],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """
    Run C{queue list}, C{queue retry} or C{queue delete}.

    @param argv: the arguments after C{queue}.
    @param stdin: unused.
    @param stdout: where output goes.
    @param stderr: where errors go.
    @param now: the clock.
    @return: the exit status: 0, 1 when a message named is not in the
        queue, 2 for bad arguments.
    """
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    parser = _parser(out, err)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    spool = Spool(args.spool)
    if args.command == "list":
        return _list(spool, out, now())
    queueIDs: list[str] = list(args.ids)
    if args.command == "retry":
        if args.all == bool(queueIDs):
            print(f"{PROGRAM} retry: give message IDs or --all", file=err)
            return 2
        if args.all:
            queueIDs = ["all"]
    for queueID in queueIDs:
        if queueID != "all" and not isQueueID(queueID):
            print(f"{PROGRAM}: {queueID!r} is not a queue ID", file=err)
            return 2
    return _act(spool, args.command, queueIDs, out, err, now())
