# -*- test-case-name: tests.test_smtp_client -*-
"""
Benchmark: deliver 2,000 messages of 10 KiB to one discarding SMTP sink on
loopback with our client, with C{twisted.mail.smtp.sendmail} and with the
standard library's C{smtplib} (in threads), in one run, and print
messages/s and our ratio to each.

The sink is a small asyncio server in a subprocess (the same for every
client): it offers PIPELINING, 8BITMIME and SIZE, discards each message at
the end-of-data line and answers 250.  Each client keeps 10 connections
(or deliveries) in flight:

  - ours, reused: L{ESMTPSenderFactory} with 10 connections, each sending
    its share of the messages as successive transactions (pipelined);
  - ours, sendMail: L{sendMail} with a raw message and the sink as
    smarthost, one connection per message, 10 at a time;
  - twisted.mail: C{twisted.mail.smtp.sendmail}, one connection per message
    (it cannot reuse one), 10 at a time;
  - smtplib: 10 threads, each with one connection sending its share.

Run: C{.venv/bin/python bench/smtp_client.py [--messages N]}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOST = "127.0.0.1"
SENDER = "sender@bench.localhost"
RECIPIENT = "rcpt@bench.localhost"
CONCURRENCY = 10
WARMUP = 100
EHLO_REPLY = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n"
EHLO_REPLY = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n"
#: No client run may take longer than this, in seconds.
DEADLINE = 120.0


def makeMessage(size: int = 10 * 1024) -> bytes:
    """
    A message of C{size} octets with CRLF lines, some starting with a dot.
    """
    head = b"From: sender@bench.localhost\r\nTo: rcpt@bench.localhost\r\n"
    head += b"Subject: bench\r\n\r\n"
    lines = []
    total = len(head)
    n = 0
    while total < size - 80:
        line = (b"." if n % 10 == 0 else b"") + b"line %05d " % n + b"x" * 60 + b"\r\n"
        lines.append(line)
        total += len(line)
        n += 1
    body = head + b"".join(lines)
    return body + b"y" * (size - len(body) - 2) + b"\r\n"


# The sink, in its own process.


class _Sink(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""
        self.data = False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        out = []
        while True:
            if self.data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end == -1:
                    break
                self.buffer = self.buffer[end + 5 :]
                self.data = False
                _Sink.count += 1
                out.append(b"250 2.0.0 OK\r\n")
                continue
            at = self.buffer.find(b"\r\n")
            if at == -1:
                break
            line, self.buffer = self.buffer[:at], self.buffer[at + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.append(EHLO_REPLY)
            elif verb == b"DATA":
                out.append(b"354 go ahead\r\n")
                self.data = True
                # Keep the CRLF before the data, so an empty message's
                # ".CRLF" is found as the end too.
                self.buffer = b"\r\n" + self.buffer
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(b"250 2.0.0 OK\r\n")
        if out:
            self.transport.write(b"".join(out))


def runSink() -> None:
    """
    Serve until SIGTERM, then print the count of messages taken.
    """
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Sink, HOST, 0, backlog=512))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.call_later(DEADLINE * 5, loop.stop)
    loop.run_forever()
    print("COUNT", _Sink.count, flush=True)


# The clients.


def runSmtplib(port: int, message: bytes, count: int) -> float:
    """
    @return: seconds to send C{count} messages from 10 threads, each over
        one reused connection.
    """
    shares = [
        count // CONCURRENCY + (i < count % CONCURRENCY) for i in range(CONCURRENCY)
    ]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with smtplib.SMTP(
                HOST, port, local_hostname="bench.localhost", timeout=30
            ) as s:
                for _ in range(n):
                    s.sendmail(SENDER, [RECIPIENT], message)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


async def runOurs(reactor: Any, port: int, message: bytes, count: int) -> float:
    """
    @return: seconds for 10 reused connections of L{ESMTPSenderFactory}.
    """
    from twisted.internet.defer import gatherResults
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from gomail_twisted.smtp import ClientTLSPolicy, ESMTPSenderFactory, Transaction

    transaction = Transaction(SENDER, (RECIPIENT,), message)
    shares = [
        count // CONCURRENCY + (i < count % CONCURRENCY) for i in range(CONCURRENCY)
    ]
    started = time.perf_counter()
    batches = await gatherResults(
        [
            ESMTPSenderFactory(
                reactor,
                [transaction] * n,
                heloName="bench.localhost",
                tls=ClientTLSPolicy("never"),
            ).deliverVia(TCP4ClientEndpoint(reactor, HOST, port))
            for n in shares
        ]
    )
    elapsed = time.perf_counter() - started
    failed = [r for batch in batches for r in batch if not r.delivered]
    if failed:
        raise RuntimeError(f"{len(failed)} not delivered: {failed[0].error}")
    return elapsed


async def _limited(count: int, send: Callable[[], Any]) -> float:
    from twisted.internet.defer import DeferredSemaphore, gatherResults

    semaphore = DeferredSemaphore(CONCURRENCY)
    started = time.perf_counter()
    await gatherResults([semaphore.run(send) for _ in range(count)])
    return time.perf_counter() - started


async def runOursSendMail(reactor: Any, port: int, message: bytes, count: int) -> float:
    """
    @return: seconds for L{sendMail}, one connection per message, 10 at a
        time.
    """
    from gomail_twisted.smtp import OutboundMail, Smarthost, sendMail

    mail = OutboundMail(
        sender=SENDER,
        to=[RECIPIENT],
        raw=message,
        smarthost=Smarthost(HOST, port),
        heloName="bench.localhost",
    )

    async def send() -> None:
        sent = await sendMail(reactor, mail)
        if not sent.results[0].delivered:
            raise RuntimeError(sent.results[0].error)

    def one() -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(send())

    return await _limited(count, one)


async def runTwistedMail(reactor: Any, port: int, message: bytes, count: int) -> float:
    """
    @return: seconds for C{twisted.mail.smtp.sendmail}, one connection per
        message, 10 at a time.
    """
    from twisted.mail.smtp import sendmail

    return await _limited(
        count,
        lambda: sendmail(
            HOST,
            SENDER,
            [RECIPIENT],
            message,
            senderDomainName="bench.localhost",
            port=port,
            reactor=reactor,
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        runSink()
        return
    sink = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--sink"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        ready = sink.stdout.readline().split()
        port = int(ready[1])
        message = makeMessage()
        count = args.messages
        times: dict[str, float] = {}
        # Each client first sends a few untimed messages, so imports and
        # first-call costs stay out of the timing.
        runSmtplib(port, message, WARMUP)
        times["smtplib (10 threads, reused connections)"] = runSmtplib(
            port, message, count
        )

        from twisted.internet import reactor as _reactor
        from twisted.internet.defer import ensureDeferred

        reactor: Any = _reactor

        async def twistedRuns() -> None:
            await runOurs(reactor, port, message, WARMUP)
            await runOursSendMail(reactor, port, message, WARMUP)
            await runTwistedMail(reactor, port, message, WARMUP)
            times["ours: ESMTPSenderFactory (10 reused connections)"] = await runOurs(
                reactor, port, message, count
            )
            times[
                "ours: sendMail (1 connection/message, 10 at a time)"
            ] = await runOursSendMail(reactor, port, message, count)
            times[
                "twisted.mail sendmail (1 connection/message, 10 at a time)"
            ] = await runTwistedMail(reactor, port, message, count)

        def run() -> None:
            d = ensureDeferred(twistedRuns())
            d.addErrback(lambda f: print(f.getTraceback(), file=sys.stderr))
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        watchdog = reactor.callLater(DEADLINE * 3, reactor.stop)
        reactor.run()
        if watchdog.active():
            watchdog.cancel()
    finally:
        sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=30)
    print(f"{count} messages of {len(message)} octets each, to one asyncio sink")
    counted = out.split()[-1] if out.split() else "?"
    print(f"sink counted {counted} messages (including {4 * WARMUP} warm-up ones)")
    rates = {name: count / seconds for name, seconds in times.items()}
    for name, rate in rates.items():
        print(f"  {name:62s} {rate:8.0f} msg/s  ({times[name]:.2f}s)")
    ours = rates.get("ours: ESMTPSenderFactory (10 reused connections)")
    oursSend = rates.get("ours: sendMail (1 connection/message, 10 at a time)")
    smtp = rates.get("smtplib (10 threads, reused connections)")
    tm = rates.get("twisted.mail sendmail (1 connection/message, 10 at a time)")
    if ours and smtp:
        print(f"ratio ours (reused) / smtplib (reused):         {ours / smtp:.2f}x")
    if ours and tm:
        print(f"ratio ours (reused) / twisted.mail:             {ours / tm:.2f}x")
    if oursSend and tm:
        print(f"ratio ours sendMail / twisted.mail (1 conn/msg): {oursSend / tm:.2f}x")


if __name__ == "__main__":
    main()
