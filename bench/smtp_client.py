# -*- test-case-name: tests.test_delivery_client -*-
"""
Benchmark: deliver 2,000 messages of 10 KiB to one discarding SMTP sink on
loopback with our client, with C{twisted.mail}'s client and with the
standard library's C{smtplib} (in threads), and print messages/s, client
CPU per message and our ratio to each.

The comparison is kept fair: one sink for every client, a small asyncio
server in a subprocess that offers PIPELINING, 8BITMIME and SIZE,
discards each message at the end-of-data line and answers 250; every
client keeps 10 connections (or deliveries) in flight; and every client
reuses its connections where it can, sending its share of the messages
as successive transactions:

  - ours: L{ESMTPSenderFactory}, 10 connections (pipelined, as the sink
    offers PIPELINING);
  - twisted.mail: its C{ESMTPClient}, 10 connections, each sending its
    share (it has no pipelining, and sends RSET after each message); once
    as it comes, once with TCP_NODELAY, which spares it a delayed-ACK
    wait per message (the ratio is taken against its fastest run);
  - smtplib: 10 threads, each with one connection sending its share.

For reference, one connection per message, 10 at a time: our L{sendMail}
(raw message, the sink as smarthost) and C{twisted.mail.smtp.sendmail}.

Each client first sends a few untimed messages; then the timed runs go
round by round (every client once per round), and the median of the
rounds is reported, so a busy neighbour on the machine skews one round,
not the result.

Run: C{.venv/bin/python bench/smtp_client.py [--messages N] [--rounds R]}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOST = "127.0.0.1"
SENDER = "sender@bench.localhost"
RECIPIENT = "rcpt@bench.localhost"
CONCURRENCY = 10
WARMUP = 100
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

    from gomail_twisted.delivery import ClientTLSPolicy, ESMTPSenderFactory, Transaction

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
    from gomail_twisted.delivery import OutboundMail, Smarthost, sendMail

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


async def runTwistedMailReused(
    reactor: Any, port: int, message: bytes, count: int, noDelay: bool = False
) -> float:
    """
    @param noDelay: whether to turn Nagle's algorithm off (TCP_NODELAY):
        by default the message's last segment waits for the sink's delayed
        ACK, some 40 ms a message.
    @return: seconds for 10 connections of C{twisted.mail}'s C{ESMTPClient},
        each sending its share of the messages in turn.
    """
    import io

    from twisted.internet.defer import Deferred, gatherResults
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import ClientFactory
    from twisted.mail.smtp import ESMTPClient

    class Sender(ESMTPClient):  # type: ignore[misc]
        def __init__(self, share: int, done: Deferred[int]) -> None:
            ESMTPClient.__init__(self, None, None, identity="bench.localhost")
            self.left = share
            self.sent = 0
            self.done = done

        def getMailFrom(self) -> str | None:
            if self.left == 0:
                return None
            self.left -= 1
            return SENDER

        def connectionMade(self) -> None:
            if noDelay:
                self.transport.setTcpNoDelay(True)
            ESMTPClient.connectionMade(self)

        def getMailTo(self) -> list[str]:
            return [RECIPIENT]

        def getMailData(self) -> io.BytesIO:
            return io.BytesIO(message)

        def sentMail(self, code: int, *args: Any) -> None:
            if code == 250:
                self.sent += 1

        def sendError(self, exc: Any) -> None:
            ESMTPClient.sendError(self, exc)
            if not self.done.called:
                self.done.errback(exc)

        def connectionLost(self, reason: Any = None) -> None:
            ESMTPClient.connectionLost(self, reason)
            if not self.done.called:
                self.done.callback(self.sent)

    shares = [
        count // CONCURRENCY + (i < count % CONCURRENCY) for i in range(CONCURRENCY)
    ]
    started = time.perf_counter()
    waits = []
    for share in shares:
        done: Deferred[int] = Deferred()
        factory = ClientFactory.forProtocol(
            lambda share=share, done=done: Sender(share, done)
        )
        await TCP4ClientEndpoint(reactor, HOST, port).connect(factory)
        waits.append(done)
    sent = sum(await gatherResults(waits))
    elapsed = time.perf_counter() - started
    if sent != count:
        raise RuntimeError(f"twisted.mail sent {sent} of {count}")
    return elapsed


#: The timed clients, by the name printed.
OURS = "ours: ESMTPSenderFactory (10 reused connections)"
TWISTED_REUSED = "twisted.mail ESMTPClient (10 reused connections)"
TWISTED_NODELAY = "twisted.mail ESMTPClient, TCP_NODELAY (10 reused)"
SMTPLIB = "smtplib (10 threads, reused connections)"
OURS_SENDMAIL = "ours: sendMail (1 connection/message, 10 at a time)"
TWISTED_SENDMAIL = "twisted.mail sendmail (1 connection/message, 10 at a time)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
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
    count = args.messages
    message = makeMessage()
    #: Per client: (seconds, client CPU seconds) of each round.
    times: dict[str, list[tuple[float, float]]] = {}
    failure: list[str] = []
    try:
        assert sink.stdout is not None
        ready = sink.stdout.readline().split()
        port = int(ready[1])

        from twisted.internet import reactor as _reactor
        from twisted.internet.defer import ensureDeferred
        from twisted.internet.threads import deferToThread

        reactor: Any = _reactor
        runs: dict[str, Callable[[int], Awaitable[float]]] = {
            SMTPLIB: lambda n: deferToThread(runSmtplib, port, message, n),
            OURS: lambda n: runOurs(reactor, port, message, n),
            TWISTED_REUSED: lambda n: runTwistedMailReused(reactor, port, message, n),
            TWISTED_NODELAY: lambda n: runTwistedMailReused(
                reactor, port, message, n, noDelay=True
            ),
            OURS_SENDMAIL: lambda n: runOursSendMail(reactor, port, message, n),
            TWISTED_SENDMAIL: lambda n: runTwistedMail(reactor, port, message, n),
        }

        async def twistedRuns() -> None:
            # Untimed first, so imports and first-call costs stay out.
            for run in runs.values():
                await run(WARMUP)
            for _ in range(args.rounds):
                for name, run in runs.items():
                    cpu = time.process_time()
                    seconds = await run(count)
                    cpu = time.process_time() - cpu
                    times.setdefault(name, []).append((seconds, cpu))

        def run() -> None:
            d = ensureDeferred(twistedRuns())

            def failed(f: Any) -> None:
                failure.append(f.getTraceback())

            d.addErrback(failed)
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        watchdog = reactor.callLater(DEADLINE * 3 * args.rounds, reactor.stop)
        reactor.run()
        if watchdog.active():
            watchdog.cancel()
    finally:
        sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=30)
    if failure:
        print(failure[0], file=sys.stderr)
        sys.exit(1)
    print(
        f"{count} messages of {len(message)} octets each, to one asyncio sink "
        f"(PIPELINING offered); {CONCURRENCY} connections or deliveries in "
        "flight for every client; connections reused by every client that can"
    )
    counted = out.split()[-1] if out.split() else "?"
    print(f"sink counted {counted} messages (warm-up included)")
    print(f"median of {args.rounds} rounds (msg/s of each round in brackets):")
    rates: dict[str, float] = {}
    for name, rounds in times.items():
        each = [count / seconds for seconds, _ in rounds]
        rates[name] = statistics.median(each)
        cpu = statistics.median(c for _, c in rounds) / count * 1e6
        listed = ", ".join(f"{r:.0f}" for r in each)
        print(
            f"  {name:60s} {rates[name]:6.0f} msg/s  "
            f"client CPU {cpu:4.0f} us/msg  [{listed}]"
        )
    # Compared with twisted.mail at its fastest: by default it is slower
    # reusing a connection (Nagle's algorithm against the delayed ACK
    # after each message) than with one per message; with TCP_NODELAY it
    # is fastest.  None of the other clients sets TCP_NODELAY.
    best = max(
        (TWISTED_REUSED, TWISTED_NODELAY, TWISTED_SENDMAIL),
        key=lambda n: rates.get(n, 0.0),
    )
    ratios = [
        ("ours / smtplib (both reused)", OURS, SMTPLIB),
        ("ours / twisted.mail (both reused)", OURS, TWISTED_REUSED),
        (
            "ours / twisted.mail, its fastest (" + best[13:].split(" (")[0] + ")",
            OURS,
            best,
        ),
        (
            "ours sendMail / twisted.mail sendmail (1 conn/msg)",
            OURS_SENDMAIL,
            TWISTED_SENDMAIL,
        ),
    ]
    for label, mine, theirs in ratios:
        if mine in rates and theirs in rates:
            print(f"ratio {label:60s} {rates[mine] / rates[theirs]:.2f}x")


if __name__ == "__main__":
    main()
