"""
The outbound queue's benchmark for C{bench/end_to_end.py}: a
L{LoopbackDNS} server (a thread of the benchmark) gives C{remote.example}
an MX at 127.0.0.1, where C{bench/_smtpbench.py}'s discarding server of
ours listens in its own process; the queue runs in a third, and
L{runQueueBench} returns what it measured as a L{QueueResult}.

Run as a script it is the queue's process (see L{queueBenchMain})::

    python bench/_e2equeue.py queue-bench --spool DIR --messages N
        --size BYTES --sink-port P --dns-port P [--warm N] [--timeout S]
        [--profile PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import _smtpbench as sb
from _e2ebench import DOMAIN, childEnvironment

QUEUE_DOMAIN = "remote.example"
QUEUE_MX = "mx." + QUEUE_DOMAIN


def queueMissing() -> str | None:
    """
    Why the outbound queue cannot be measured, or L{None}.
    """
    try:
        from gomail_twisted.queue import OutboundQueue  # noqa: F401
    except ImportError as error:
        return f"gomail_twisted.queue.OutboundQueue has not landed ({error})"
    return None


class LoopbackDNS:
    """
    A DNS server on a UDP port of 127.0.0.1, in a thread of this process:
    C{remote.example} has one MX, C{mx.remote.example}, whose address is
    127.0.0.1; every other name does not exist.
    """

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.queries = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, wire: bytes) -> bytes | None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().rstrip(".").lower()
            kind = question.rdtype
            if name == QUEUE_DOMAIN and kind == dns.rdatatype.MX:
                answer = f"10 {QUEUE_MX}."
            elif name == QUEUE_MX and kind == dns.rdatatype.A:
                answer = "127.0.0.1"
            elif name in (QUEUE_DOMAIN, QUEUE_MX):
                continue
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            response.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", kind, answer)
            )
        return bytes(response.to_wire())

    def _serve(self) -> None:
        while self.running:
            try:
                wire, peer = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            reply = self._answer(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.socket.sendto(reply, peer)

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        self.socket.close()


@dataclass
class QueueResult:
    """
    What one queue run measured (seconds from the first submission).

    @ivar submitted: until every submission fired (message spooled).
    @ivar settled: until the spool was empty: every message delivered
        (the sink counts them afterwards) and its files removed.
    """

    messages: int
    submitted: float
    settled: float
    cpu: float
    sinkCPU: float
    sinkMessages: int
    dnsQueries: int

    def describe(self, target: float) -> str:
        rate = self.messages / self.settled
        met = "met" if rate >= target else "NOT met"
        lines = [
            f"  {self.messages} messages of one recipient each, submitted at once;"
            " maxDeliveries=10, maxPerDomain=10, one domain",
            f"  {'all submissions fired (spooled)':<36}"
            f" {self.submitted:7.2f} s {self.messages / self.submitted:8.0f} msg/s",
            f"  {'all delivered, spool empty':<36}"
            f" {self.settled:7.2f} s {rate:8.0f} msg/s"
            f"  (target >= {target:.0f}: {met})",
            f"  queue process CPU {1000 * self.cpu / self.messages:.3f} ms/msg,"
            f" sink CPU {1000 * self.sinkCPU / self.messages:.3f} ms/msg,"
            f" sink counted {self.sinkMessages} (warm-up included),"
            f" {self.dnsQueries} DNS queries",
        ]
        return "\n".join(lines)


class _Lines:
    """
    Reads a child's output line by line, with deadlines.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def waitFor(self, prefix: bytes, timeout: float) -> bytes:
        """
        Read until a line starting with C{prefix}; return it.
        """
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, _, self.buffer = self.buffer.partition(b"\n")
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {prefix!r} line in {timeout:.0f} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    raise RuntimeError(f"the process exited before {prefix!r}")
                self.buffer += chunk


def runQueueBench(
    directory: str,
    count: int,
    size: int,
    timeout: float,
    warm: int = 20,
    profile: str | None = None,
) -> QueueResult:
    """
    Run the queue in its own process (C{queue-bench}) against a discarding
    SMTP server (L{_smtpbench}'s C{ours}) in another, with MX records from
    a L{LoopbackDNS} in this one; check that the sink took every message.
    """
    dns = LoopbackDNS()
    sink = None
    process = None
    errors = os.path.join(os.path.dirname(directory), "queue-bench.log")
    try:
        sink = sb.ServerProcess.start("ours", maxSeconds=timeout + 60)
        command = [sys.executable, os.path.abspath(__file__), "queue-bench"]
        command += ["--spool", directory, "--messages", str(count)]
        command += ["--size", str(size), "--warm", str(warm)]
        command += ["--sink-port", str(sink.port), "--dns-port", str(dns.port)]
        command += ["--timeout", str(timeout)]
        if profile is not None:
            command += ["--profile", profile]
        with open(errors, "wb") as log:
            process = subprocess.Popen(
                command,
                env=childEnvironment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=sb._dieWithParent,
            )
        output = _Lines(process)
        output.waitFor(b"WARM", timeout)
        sinkCPU0 = sink.cpuSeconds()
        line = output.waitFor(b"RESULT ", timeout)
        sinkCPU = sink.cpuSeconds() - sinkCPU0
        process.wait(30)
        sink.stop()
        stopped, sink = sink, None
        figures = json.loads(line[len(b"RESULT ") :])
        taken = int(stopped.stats.split()[1]) if stopped.stats else -1
        if taken != count + warm:
            raise RuntimeError(
                f"the sink took {taken} messages, {count + warm} were queued"
            )
        return QueueResult(
            count,
            figures["submitted"],
            figures["settled"],
            figures["cpu"],
            sinkCPU,
            taken,
            dns.queries,
        )
    except BaseException:
        with contextlib.suppress(OSError), open(errors, "rb") as f:
            sys.stderr.write(f.read()[-5000:].decode(errors="replace"))
        raise
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(30)
        if sink is not None:
            sink.stop()
        dns.stop()


def queueBenchMain(argv: Sequence[str]) -> None:
    """
    The queue process: start an L{OutboundQueue} over C{--spool}, submit
    C{--warm} messages and wait for them, print C{WARM}, then submit
    C{--messages} at once and print C{RESULT} and a JSON object of seconds
    (from the first submission) until every submission fired and until
    the spool was empty (every message delivered, its files removed;
    looked at every 10 ms), and of this process's CPU seconds.
    """
    from twisted.internet import reactor, task
    from twisted.internet.defer import Deferred, gatherResults

    from gomail_twisted.dns import Resolver
    from gomail_twisted.queue import OutboundQueue

    parser = argparse.ArgumentParser(prog="_e2equeue.py queue-bench")
    parser.add_argument("--spool", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--sink-port", type=int, required=True)
    parser.add_argument("--dns-port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    messages = [sb.makeMessage(args.size, seed) for seed in range(16)]
    spoolMessages = os.path.join(args.spool, "messages")

    def spoolIsEmpty() -> bool:
        try:
            with os.scandir(spoolMessages) as entries:
                return next(entries, None) is None
        except FileNotFoundError:
            return True

    async def spoolEmpty() -> None:
        # Every message delivered: the queue removed its files.
        for _ in range(int(args.timeout / 0.01)):
            if spoolIsEmpty():
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        raise TimeoutError("the spool did not empty")

    queue = OutboundQueue(
        args.spool,
        reactor=reactor,
        hostname="queue." + DOMAIN,
        resolver=Resolver(reactor, nameservers=["127.0.0.1"], port=args.dns_port),
        port=args.sink_port,
        maxDeliveries=10,
        maxPerDomain=10,
    )

    def submitAll(first: int, count: int) -> Deferred[list[str]]:
        return gatherResults(
            [
                queue.submit(
                    "sender@" + DOMAIN,
                    [f"user{(first + i) % 10}@{QUEUE_DOMAIN}"],
                    messages[(first + i) % len(messages)],
                )
                for i in range(count)
            ],
            consumeErrors=True,
        )

    async def main() -> None:
        queue.start()
        await queue.whenRunning()
        await submitAll(0, args.warm)
        await spoolEmpty()
        print("WARM", flush=True)
        times = os.times()
        cpu0 = times.user + times.system
        start = time.perf_counter()
        await submitAll(args.warm, args.messages)
        submitted = time.perf_counter() - start
        await spoolEmpty()
        settled = time.perf_counter() - start
        times = os.times()
        cpu = times.user + times.system - cpu0
        figures = {"submitted": submitted, "settled": settled, "cpu": cpu}
        print("RESULT " + json.dumps(figures), flush=True)
        await queue.stop()

    failure: list[Any] = []

    def finished(result: Any) -> None:
        if hasattr(result, "getTraceback"):
            failure.append(result)
            sys.stderr.write(result.getTraceback())
        reactor.stop()

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(main()).addBoth(finished))
    reactor.callLater(args.timeout, reactor.stop)
    if args.profile is None:
        reactor.run()
    else:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(reactor.run)
        profiler.dump_stats(args.profile)
    sys.exit(1 if failure else 0)


if __name__ == "__main__":
    if sys.argv[1:2] != ["queue-bench"]:
        sys.exit("usage: _e2equeue.py queue-bench --spool DIR --messages N ...")
    queueBenchMain(sys.argv[2:])
