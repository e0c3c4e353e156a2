"""
Benchmark: the outbound queue's throughput to a discarding SMTP sink on
loopback, 10 deliveries at once (one connection per delivery, as the
queue makes them), messages of 10 KiB.

Two figures:

  - delivery: the spool is filled first (queue stopped), then a queue is
    started over it and timed until every message is delivered and its
    files removed (the removal fsynced, the files unlinked);
  - end to end: messages are submitted (up to 50 submissions in flight,
    each fsynced before it is acknowledged) while the queue delivers,
    timed from the first submission until the spool is empty.

The sink is C{bench/smtp_client.py}'s (a small asyncio server in a
subprocess).  Recipients are at the address literal C{[127.0.0.1]}, so no
DNS is involved.  Run: C{.venv/bin/python bench/outbound_queue.py [--messages N]}.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.defer import (
    Deferred,
    DeferredSemaphore,
    gatherResults,
)
from twisted.internet.task import deferLater

from gomail_twisted.queue import OutboundQueue

CONCURRENCY = 10
SENDER = "sender@bench.localhost"
RECIPIENT = "rcpt@[127.0.0.1]"


def makeMessage(size: int) -> bytes:
    """
    A message of about C{size} octets with CRLF lines.
    """
    head = b"From: sender@bench.localhost\r\nTo: rcpt@bench.localhost\r\n"
    head += b"Subject: bench\r\n\r\n"
    line = b"x" * 70 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def makeQueue(reactor: Any, spool: str, port: int) -> OutboundQueue:
    return OutboundQueue(
        spool,
        reactor=reactor,
        hostname="bench.localhost",
        port=port,
        maxDeliveries=CONCURRENCY,
        maxPerDomain=CONCURRENCY,
    )


async def untilEmpty(reactor: Any, queue: OutboundQueue, limit: float) -> None:
    start = time.perf_counter()
    while queue.messageCount:
        if time.perf_counter() - start > limit:
            raise RuntimeError(f"{queue.messageCount} messages still queued")
        await deferLater(reactor, 0.005, lambda: None)


async def submitAll(queue: OutboundQueue, message: bytes, count: int) -> None:
    semaphore = DeferredSemaphore(50)
    await gatherResults(
        [
            semaphore.run(queue.submit, SENDER, [RECIPIENT], message)
            for _ in range(count)
        ]
    )


async def run(
    reactor: Any, port: int, count: int, size: int, where: str | None
) -> None:
    message = makeMessage(size)
    reactor.getThreadPool().adjustPoolsize(10, 20)
    top = tempfile.mkdtemp(prefix="queuebench-", dir=where)
    try:
        # Delivery alone: fill the spool, then start a queue over it.
        spool = os.path.join(top, "delivery")
        filler = makeQueue(reactor, spool, port)
        started = time.perf_counter()
        await submitAll(filler, message, count)
        submitted = time.perf_counter() - started
        queue = makeQueue(reactor, spool, port)
        queue.start()
        await queue.whenRunning()
        started, cpuStart = time.perf_counter(), cpu()
        await untilEmpty(reactor, queue, 300)
        # Stopping waits for the last removals to be fsynced and unlinked.
        await queue.stop()
        seconds, cpuSeconds = time.perf_counter() - started, cpu() - cpuStart
        print(f"submit only:  {count / submitted:8.0f} messages/s (fsynced)")
        print(
            f"delivery:     {count / seconds:8.0f} messages/s, "
            f"{cpuSeconds / count * 1e6:6.0f} us CPU/message"
        )

        # End to end.
        queue = makeQueue(reactor, os.path.join(top, "e2e"), port)
        queue.start()
        await queue.whenRunning()
        started = time.perf_counter()
        await submitAll(queue, message, count)
        await untilEmpty(reactor, queue, 300)
        await queue.stop()
        seconds = time.perf_counter() - started
        print(f"end to end:   {count / seconds:8.0f} messages/s")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument(
        "--dir", default=None, help="where the spools go (default a temp dir)"
    )
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sink = subprocess.Popen(
        [sys.executable, os.path.join(here, "smtp_client.py"), "--sink"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline().split()[1])
        from twisted.internet import reactor as _reactor
        from twisted.internet.task import react

        def go(reactor: Any) -> Deferred[None]:
            return Deferred.fromCoroutine(
                run(reactor, port, args.messages, args.size, args.dir)
            )

        del _reactor
        react(go)
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
