"""
Helpers for C{bench/smtp_server.py}: the three discarding SMTP servers (each
run as its own process by C{python bench/_smtpbench.py serve KIND}), the test
messages, a low-overhead asyncio SMTP client, and readers of a process's CPU
time and peak RSS from C{/proc}.

A server process prints one line, C{READY <port> <event loop>}, once it
listens on 127.0.0.1, and on SIGTERM (or its own deadline) one line
C{STATS <messages> <checked> <mismatched>} before it exits: C{checked}
messages had their size compared with the C{X-Bench-Length} header the
client put first in each message (after dot-unstuffing, without any trace
header the server prepends).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Every server accepts messages this big (the RSS run sends 20 MiB).
MAX_SIZE = 32 * 2**20
HOSTNAME = "bench.localhost"
SENDER = b"sender@bench.localhost"
RECIPIENT = b"rcpt@bench.localhost"
LENGTH_HEADER = b"X-Bench-Length: "
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# The servers, each in its own process.


class _Stats:
    """
    Counts the messages a server took and checks their sizes.
    """

    def __init__(self) -> None:
        self.messages = 0
        self.checked = 0
        self.mismatched = 0

    def check(self, raw: bytes) -> None:
        self.messages += 1
        at = raw.find(LENGTH_HEADER, 0, 4096)
        if at == -1:
            return
        start = at + len(LENGTH_HEADER)
        self.checked += 1
        if len(raw) - at != int(raw[start : start + 10]):
            self.mismatched += 1

    def line(self) -> str:
        return f"STATS {self.messages} {self.checked} {self.mismatched}"


def _report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _serveTwisted(kind: str, maxSeconds: float, profile: str | None) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory

    stats = _Stats()
    factory: Factory
    if kind == "ours":
        from gomail_twisted.smtp import FunctionBackend, SMTPServerFactory

        def onMessage(info: object, message: Any) -> None:
            stats.check(message.raw)

        backend = FunctionBackend(rcptTo=lambda info, rcpt: None, message=onMessage)
        # twisted.mail runs with its per-message log line off too.
        factory = SMTPServerFactory(
            backend,
            hostname=HOSTNAME,
            maxMessageSize=MAX_SIZE,
            reactor=reactor,
            logMessages=False,
        )
    else:
        factory = _twistedMailFactory(stats)
    port = reactor.listenTCP(0, factory, backlog=128, interface="127.0.0.1")
    reactor.callLater(maxSeconds, reactor.stop)
    reactor.addSystemEventTrigger("after", "shutdown", lambda: _report(stats.line()))
    _report(f"READY {port.getHost().port} {type(reactor).__name__}")
    if profile is None:
        reactor.run()
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(reactor.run)
    profiler.dump_stats(profile)


def _twistedMailFactory(stats: _Stats) -> Any:
    from twisted.internet.defer import succeed
    from twisted.internet.protocol import ServerFactory
    from twisted.mail import smtp
    from zope.interface import implementer

    @implementer(smtp.IMessage)
    class DiscardMessage:
        def lineReceived(self, line: bytes) -> None:
            pass

        def eomReceived(self) -> Any:
            stats.messages += 1
            return succeed(None)

        def connectionLost(self) -> None:
            pass

    def newMessage() -> DiscardMessage:
        return DiscardMessage()

    @implementer(smtp.IMessageDelivery)
    class DiscardDelivery:
        def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:
            return b"Received: from bench by " + HOSTNAME.encode() + b"; now"

        def validateFrom(self, helo: Any, origin: Any) -> Any:
            return origin

        def validateTo(self, user: Any) -> Any:
            return newMessage

    class ESMTPFactory(ServerFactory):
        def buildProtocol(self, addr: Any) -> Any:
            p = smtp.ESMTP()
            # Per-message log lines are twisted.mail's default; they are off
            # here so the peer is measured at its fastest.
            p.noisy = False
            p.host = HOSTNAME.encode()
            p.delivery = DiscardDelivery()
            p.factory = self
            return p

    return ESMTPFactory()


def _serveAiosmtpd(maxSeconds: float, profile: str | None) -> None:
    from aiosmtpd.smtp import SMTP

    stats = _Stats()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            stats.check(envelope.content)
            return "250 OK"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname=HOSTNAME, data_size_limit=MAX_SIZE),
            "127.0.0.1",
            0,
            backlog=128,
        )
    )
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.call_later(maxSeconds, loop.stop)
    port = server.sockets[0].getsockname()[1]
    _report(f"READY {port} {type(loop).__name__}")
    if profile is None:
        loop.run_forever()
    else:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(loop.run_forever)
        profiler.dump_stats(profile)
    _report(stats.line())


def serveMain(argv: Sequence[str]) -> None:
    """
    Run one server until SIGTERM or its deadline.

    @param argv: C{KIND [--max-seconds S] [--profile PATH]}.
    """
    parser = argparse.ArgumentParser(prog="_smtpbench.py serve")
    parser.add_argument("kind", choices=SERVERS)
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    if args.kind == "aiosmtpd":
        _serveAiosmtpd(args.max_seconds, args.profile)
    else:
        _serveTwisted(args.kind, args.max_seconds, args.profile)


SERVERS = ("ours", "twisted.mail", "aiosmtpd")


def commaList(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """
    An C{argparse} type for a comma-separated list of some of C{choices}.

    @param what: what one name names, for the error messages (C{"server"}).
    @return: a parser giving the names listed, in the order of C{choices}.
    """

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        for name in names:
            if name not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {name!r}; choose from {', '.join(choices)}"
                )
        if not names:
            raise argparse.ArgumentTypeError(f"no {what} named")
        return [n for n in choices if n in names]

    return parse


# Controlling a server process from the benchmark.


def _dieWithParent() -> None:
    # PR_SET_PDEATHSIG: a server never outlives the benchmark.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


@dataclass
class ServerProcess:
    """
    A server running in its own process.
    """

    kind: str
    process: subprocess.Popen[bytes]
    port: int = 0
    loop: str = ""
    stats: str = ""
    _out: bytes = b""

    @classmethod
    def start(
        cls,
        kind: str,
        maxSeconds: float,
        profile: str | None = None,
        timeout: float = 30.0,
    ) -> ServerProcess:
        """
        Start a server and wait for it to listen.

        @param kind: one of L{SERVERS}.
        @param maxSeconds: the server stops by itself after this long.
        @param profile: a path: run the server under cProfile and dump the
            stats there.
        @param timeout: seconds to wait for the server to listen.
        """
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "serve",
            kind,
            "--max-seconds",
            str(maxSeconds),
        ]
        if profile is not None:
            command += ["--profile", profile]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            preexec_fn=_dieWithParent,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        server = cls(kind, process)
        try:
            line = server._readLine(timeout)
            words = line.split()
            if len(words) != 3 or words[0] != "READY":
                raise RuntimeError(f"{kind} server did not start: {line!r}")
            server.port = int(words[1])
            server.loop = words[2]
        except BaseException:
            server.stop()
            raise
        return server

    def _readLine(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the {self.kind} server")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"the {self.kind} server exited")
                self._out += chunk
        line, _, self._out = self._out.partition(b"\n")
        return line.decode()

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpuSeconds(self) -> float:
        """
        User and system CPU time used so far.
        """
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        # utime and stime are fields 14 and 15; fields[0] is field 3.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def memory(self) -> tuple[int, int]:
        """
        @return: the resident set size and its peak (VmHWM), in bytes.
        """
        rss = hwm = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        return rss, hwm

    def resetPeak(self) -> bool:
        """
        Reset the peak RSS to the current RSS (Linux C{clear_refs} 5).

        @return: whether it worked.
        """
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """
        Stop the server (SIGTERM, then SIGKILL) and read its last report.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            line = self._readLine(timeout)
            if line.startswith("STATS"):
                self.stats = line
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()


# The messages.

_WORDS = (
    b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    b"tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam"
).split()


def _linePool(rng: random.Random) -> list[bytes]:
    pool = []
    for i in range(512):
        if i % 97 == 0:
            width = rng.randint(700, 990)
        else:
            width = rng.randint(0, 120)
        words: list[bytes] = []
        length = -1
        while length < width:
            word = rng.choice(_WORDS)
            words.append(word)
            length += len(word) + 1
        line = b" ".join(words)[:width]
        if i % 7 == 0:
            # A leading dot: the client stuffs it, the server un-stuffs it.
            line = b"." + line[1:]
        elif i % 53 == 0:
            line = b"."
        pool.append(line + b"\r\n")
    return pool


def makeMessage(size: int, seed: int) -> bytes:
    """
    A message of exactly C{size} octets: CRLF line endings, lines shorter
    than 998 octets, some beginning with a dot.  Its first header,
    C{X-Bench-Length}, gives its size.

    @param size: at least 400.
    @param seed: picks the text.
    """
    rng = random.Random(seed)
    head = (
        LENGTH_HEADER + b"%010d\r\n"
        b"From: Sender <%s>\r\n"
        b"To: Recipient <%s>\r\n"
        b"Subject: benchmark message %d\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
        b"Message-ID: <%d.%d@bench.localhost>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
    ) % (size, SENDER, RECIPIENT, seed, seed, size)
    pool = _linePool(rng)
    parts = [head]
    length = len(head)
    while True:
        line = rng.choice(pool)
        if length + len(line) + 130 > size:
            break
        parts.append(line)
        length += len(line)
    last = size - length
    assert 2 <= last < 998
    parts.append(b"x" * (last - 2) + b"\r\n")
    message = b"".join(parts)
    assert len(message) == size
    return message


def stuff(message: bytes) -> bytes:
    """
    The data block for C{message}: dot-stuffed, with the end marker.
    """
    return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


# The client.


class SMTPError(Exception):
    """
    An unexpected reply, a timeout or a lost connection.
    """


class _Connection(asyncio.Protocol):
    """
    One client connection: complete replies are queued as they arrive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.replies: collections.deque[tuple[int, bytes]] = collections.deque()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self.lastActivity = loop.time()
        self.pipelining = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.lastActivity = self.loop.time()
        buffer = self.buffer + data
        start = 0
        while True:
            end = buffer.find(b"\r\n", start)
            if end == -1:
                break
            # The last line of a reply has no "-" after the code.
            if buffer[start + 3 : start + 4] != b"-":
                self._reply(int(buffer[start : start + 3]), buffer[: end + 2])
                buffer = buffer[end + 2 :]
                start = 0
            else:
                start = end + 2
        self.buffer = buffer

    def _reply(self, code: int, text: bytes) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((code, text))
        else:
            self.replies.append((code, text))

    def fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.fail(SMTPError(f"connection lost: {exc}"))

    async def expect(self, code: int, what: str) -> bytes:
        """
        Wait for the next reply; it must have C{code}.

        @return: the reply's text, lines and CRLFs included.
        """
        if self.replies:
            got, text = self.replies.popleft()
        else:
            if self.closed.done():
                raise SMTPError(f"{what}: connection closed")
            self.waiter = self.loop.create_future()
            got, text = await self.waiter
        if got != code:
            raise SMTPError(f"{what}: expected {code}, got {text!r}")
        return text

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.lastActivity = self.loop.time()
        self.transport.write(data)


@dataclass
class Workload:
    """
    What one run sends.

    @ivar messages: the data blocks (stuffed, with end marker), used in turn.
    @ivar count: how many messages in all.
    @ivar connections: how many connections at once.
    @ivar perMessage: a new connection for each message.
    @ivar pipelining: pipeline MAIL, RCPT and DATA (RFC 2920) when the
        server advertises PIPELINING; else plain sequential commands.
    """

    name: str
    messages: list[bytes]
    count: int
    connections: int
    perMessage: bool = False
    size: int = 0
    pipelining: bool = False
    sent: int = field(default=0, init=False)
    pipelined: bool = field(default=False, init=False)


_MAIL = b"MAIL FROM:<" + SENDER + b">\r\n"
_RCPT = b"RCPT TO:<" + RECIPIENT + b">\r\n"
_EHLO = b"EHLO client.bench.localhost\r\n"


async def _open(
    loop: asyncio.AbstractEventLoop,
    port: int,
    live: set[_Connection],
    pipelining: bool,
) -> _Connection:
    _, conn = await loop.create_connection(lambda: _Connection(loop), "127.0.0.1", port)
    live.add(conn)
    await conn.expect(220, "greeting")
    conn.send(_EHLO)
    text = await conn.expect(250, "EHLO")
    lines = text.upper().split(b"\r\n")
    conn.pipelining = pipelining and (
        b"250-PIPELINING" in lines or b"250 PIPELINING" in lines
    )
    return conn


async def _close(conn: _Connection, live: set[_Connection]) -> None:
    conn.send(b"QUIT\r\n")
    await conn.expect(221, "QUIT")
    # Wait for the server to close: a polite client, and the server has
    # counted the connection as gone before the next one comes.
    await conn.closed
    live.discard(conn)


async def _transaction(conn: _Connection, data: bytes) -> None:
    if conn.pipelining:
        # RFC 2920: MAIL, RCPT and DATA in one write; the data block only
        # after the 354.
        conn.send(_MAIL + _RCPT + b"DATA\r\n")
        await conn.expect(250, "MAIL")
        await conn.expect(250, "RCPT")
        await conn.expect(354, "DATA")
        conn.send(data)
        await conn.expect(250, "end of data")
        return
    # Plain sequential commands, each waiting for its reply.
    conn.send(_MAIL)
    await conn.expect(250, "MAIL")
    conn.send(_RCPT)
    await conn.expect(250, "RCPT")
    conn.send(b"DATA\r\n")
    await conn.expect(354, "DATA")
    conn.send(data)
    await conn.expect(250, "end of data")


async def _worker(
    loop: asyncio.AbstractEventLoop,
    port: int,
    workload: Workload,
    live: set[_Connection],
) -> None:
    messages = workload.messages
    conn: _Connection | None = None
    while workload.sent < workload.count:
        index = workload.sent
        workload.sent += 1
        if conn is None:
            conn = await _open(loop, port, live, workload.pipelining)
            workload.pipelined = workload.pipelined or conn.pipelining
        await _transaction(conn, messages[index % len(messages)])
        if workload.perMessage:
            await _close(conn, live)
            conn = None
    if conn is not None:
        await _close(conn, live)


async def _watchdog(live: set[_Connection], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(min(1.0, timeout))
        now = loop.time()
        for conn in list(live):
            if now - conn.lastActivity > timeout:
                conn.fail(SMTPError(f"no reply in {timeout:.0f} s"))


async def _drive(
    port: int, workload: Workload, opTimeout: float, timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    live: set[_Connection] = set()
    workers = [
        asyncio.ensure_future(_worker(loop, port, workload, live))
        for _ in range(workload.connections)
    ]
    watchdog = asyncio.ensure_future(_watchdog(live, opTimeout))
    try:
        await asyncio.wait_for(asyncio.gather(*workers), timeout)
    finally:
        watchdog.cancel()
        for task in workers:
            task.cancel()
        for conn in live:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.gather(watchdog, *workers, return_exceptions=True)


@dataclass
class Result:
    """
    One workload against one server.
    """

    seconds: float
    serverCPU: float
    clientCPU: float
    peakRSS: int
    messages: int
    pipelined: bool

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpuPerMessage(self) -> float:
        return self.serverCPU / self.messages


def ownCPU() -> float:
    """
    This process's user and system CPU seconds so far.
    """
    times = os.times()
    return times.user + times.system


def run(
    server: ServerProcess,
    workload: Workload,
    opTimeout: float,
    timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> Result:
    """
    Send a workload to a server and measure it.

    @param opTimeout: seconds a connection may wait for one reply.
    @param timeout: seconds for the whole workload.
    """
    workload.sent = 0
    workload.pipelined = False
    server.resetPeak()
    cpu0 = server.cpuSeconds()
    client0 = ownCPU()
    start = time.perf_counter()
    loop.run_until_complete(_drive(server.port, workload, opTimeout, timeout))
    seconds = time.perf_counter() - start
    client = ownCPU() - client0
    cpu = server.cpuSeconds() - cpu0
    peak = server.memory()[1]
    return Result(seconds, cpu, client, peak, workload.count, workload.pipelined)


# Postfix's smtp-source as the client.

#: Where Debian's postfix package puts it (C{/usr/sbin} is not always on
#: C{PATH}).
SMTP_SOURCE = "/usr/sbin/smtp-source"


def findSmtpSource() -> str | None:
    """
    @return: the path of Postfix's C{smtp-source}, or L{None} when it is
        not installed.
    """
    found = shutil.which("smtp-source")
    if found is None and os.access(SMTP_SOURCE, os.X_OK):
        found = SMTP_SOURCE
    return found


def runSmtpSource(
    smtpSource: str,
    server: ServerProcess,
    workload: Workload,
    timeout: float,
    cpu: int | None,
) -> Result:
    """
    Send a workload with Postfix's C{smtp-source}: HELO, then MAIL, RCPT,
    DATA and the data block, each waiting for its reply (it never
    pipelines), C{workload.connections} sessions at once, and a new
    connection per message when C{workload.perMessage}.  Its messages are
    its own: a few headers and C{workload.size} octets of 80-column lines.

    @param smtpSource: the program.
    @param timeout: seconds for the whole workload; then it is killed.
    @param cpu: run the client and the server on this one CPU (restored
        afterwards), as the client's cost then counts against the server's;
        L{None} to leave both where they are.
    """
    command = [smtpSource, "-s", str(workload.connections)]
    command += ["-m", str(workload.count), "-l", str(workload.size)]
    if not workload.perMessage:
        command.append("-d")
    command += ["-M", "client." + HOSTNAME]
    command += ["-f", SENDER.decode(), "-t", RECIPIENT.decode()]
    command.append(f"127.0.0.1:{server.port}")
    allowed = os.sched_getaffinity(server.pid)
    pin: Callable[[], None] | None = None
    if cpu is not None:
        os.sched_setaffinity(server.pid, {cpu})

        def pin() -> None:
            os.sched_setaffinity(0, {cpu})

    try:
        server.resetPeak()
        cpu0 = server.cpuSeconds()
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pin,
        )
        status, usage = _waitFor(process, timeout)
        seconds = time.perf_counter() - start
        serverCPU = server.cpuSeconds() - cpu0
        peak = server.memory()[1]
    finally:
        if cpu is not None:
            os.sched_setaffinity(server.pid, allowed)
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace").strip()
    process.stderr.close()
    if status != 0 or errors:
        raise SMTPError(f"smtp-source against {server.kind}: {status} {errors}")
    client = usage.ru_utime + usage.ru_stime
    return Result(seconds, serverCPU, client, peak, workload.count, False)


def _waitFor(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any]:
    """
    Wait for a child, killing it past C{timeout}.

    @return: its exit status (negative: the signal) and its resource usage.
    """
    deadline = time.monotonic() + timeout
    # A pidfd wakes us the moment the child ends, so its exit is timed
    # to the microsecond; without one (before Linux 5.3), poll.
    pidfd = os.pidfd_open(process.pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                process.returncode = code
                return code, usage
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                os.wait4(process.pid, 0)
                process.returncode = -signal.SIGKILL
                raise TimeoutError(f"smtp-source took more than {timeout:.0f} s")
            if pidfd is not None:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.001))
    finally:
        if pidfd is not None:
            os.close(pidfd)


# Reading a profile.


def profileSummary(path: str, limit: int = 25) -> str:
    """
    The functions that took the most time in a cProfile dump, with their
    share of the total.
    """
    import pstats

    stats = pstats.Stats(path)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1e-9

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        short = re.sub(r".*/(site-packages|lib/python[0-9.]+)/", "", filename)
        short = re.sub(r".*/gomail_twisted/", "gomail_twisted/", short)
        return f"{short}:{line}({function})" if line else function

    def table(title: str, column: int) -> list[str]:
        rows = [
            f"  {title}",
            "    tottime  %tot   cumtime  %tot     ncalls  function",
        ]
        ordered: list[tuple[Any, Any]] = sorted(
            raw.items(), key=lambda item: item[1][column], reverse=True
        )
        for key, (_, calls, tt, ct, _) in ordered[:limit]:
            rows.append(
                f"    {tt:7.3f} {100 * tt / total:5.1f}% {ct:8.3f}"
                f" {100 * ct / total:5.1f}% {calls:9d}  {name(key)}"
            )
        return rows

    lines = [f"  total {total:.3f} s of profiled CPU"]
    lines += table("by own time (tottime)", 2)
    lines += table("by cumulative time", 3)
    return "\n".join(lines)


def withCleanup(body: Callable[[list[ServerProcess]], None]) -> None:
    """
    Run C{body} with a list it adds its servers to; stop them all on any
    exit, SIGTERM, SIGINT and SIGHUP included.
    """
    servers: list[ServerProcess] = []

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        body(servers)
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop(timeout=10.0)


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: _smtpbench.py serve KIND [--max-seconds S] [--profile P]")
    # Our server from this working tree, not an installed copy.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    serveMain(sys.argv[2:])
