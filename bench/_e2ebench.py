"""
Helpers shared by C{bench/end_to_end.py}'s local delivery benchmark: the
names it uses, readers of CPU time and peak RSS from C{/proc}, the L{Server}
base (and L{ChildServer}, for a server that is one child process), and a
sequential asyncio SMTP load generator with L{run}, which sends a load to a
server and checks that exactly as many new files appeared in its Maildirs.

The servers themselves are in C{_e2eservers.py} (ours, gomail, aiosmtpd)
and C{_e2epostfix.py} (a private Postfix instance); the outbound queue's
benchmark is in C{_e2equeue.py}.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import _smtpbench as sb

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAIN = "bench.localhost"
SENDER = "sender@example.net"
#: Our store's default number of disk threads; the aiosmtpd handler gets as
#: many.
DISK_THREADS = 4
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def recipients(count: int) -> list[str]:
    """
    The addresses the messages go to, one per connection in turn.
    """
    return [f"user{i}@{DOMAIN}" for i in range(count)]


# Reading /proc.


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name; fields[0] is field 3 (state).
        return f.read().rpartition(")")[2].split()


def cpuOf(pid: int, children: bool = False) -> tuple[float, float]:
    """
    User and system CPU seconds (all threads) of a process, and with
    C{children} those of the children it has waited for.
    """
    fields = _stat(pid)
    user, system = int(fields[11]), int(fields[12])
    if children:
        user += int(fields[13])
        system += int(fields[14])
    return user / _CLOCK_TICKS, system / _CLOCK_TICKS


def addCPU(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """
    The sum of two (user, system) pairs of CPU seconds.
    """
    return a[0] + b[0], a[1] + b[1]


def peakRSSOf(pid: int) -> int:
    """
    The peak resident set size (C{VmHWM}) of a process, in bytes.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def resetPeakOf(pid: int) -> None:
    """
    Reset a process's peak RSS to its current RSS (Linux C{clear_refs} 5).
    """
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def descendants(root: int) -> list[int]:
    """
    The live processes below C{root}, found by scanning C{/proc}.
    """
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            parent = int(_stat(int(name))[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 10000:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def countMessages(root: str) -> int:
    """
    The files in every C{new/} and C{cur/} directory under C{root}.
    """
    total = 0
    for directory, subdirectories, files in os.walk(root):
        name = os.path.basename(directory)
        if name in ("new", "cur"):
            total += len(files)
            subdirectories[:] = []
    return total


def filesystemOf(path: str) -> str:
    """
    The type and device of the filesystem C{path} is on, from
    C{/proc/mounts}, such as C{"ext4 on /dev/vda"}.
    """
    path = os.path.realpath(path)
    best = ("", "unknown", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3:
                continue
            device, mountPoint, kind = fields[:3]
            inside = path == mountPoint or path.startswith(mountPoint.rstrip("/") + "/")
            if inside and len(mountPoint) >= len(best[0]):
                best = (mountPoint, kind, device)
    return f"{best[1]} on {best[2]}"


def freePort() -> int:
    """
    A TCP port of 127.0.0.1 that nothing listened on a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def waitForBanner(port: int, timeout: float, alive: Callable[[], bool]) -> None:
    """
    Wait until an SMTP server greets on C{port}.

    @param alive: says whether the server is still running.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing greeted on port {port} in {timeout:.0f} s")


def childEnvironment() -> dict[str, str]:
    """
    The environment of a child process: this one's, with the repository
    on C{PYTHONPATH} so that it runs this working tree's code.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = REPOSITORY
    return env


def removeTree(path: str) -> None:
    """
    Remove a directory and everything under it, ignoring errors.
    """
    shutil.rmtree(path, ignore_errors=True)


# The servers' base.


class Server:
    """
    A server under test.

    @ivar name: its name in the report.
    @ivar port: where it takes SMTP on 127.0.0.1.
    @ivar root: the directory its Maildirs are under.
    @ivar queued: whether it answers 250 before delivery (so delivered
        messages must be waited for).
    """

    name = ""
    queued = False

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.root = os.path.join(workdir, "mail")
        self.port = 0

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        raise NotImplementedError()

    def pids(self) -> list[int]:
        raise NotImplementedError()

    def loopSeconds(self) -> float | None:
        """
        CPU seconds of the thread that runs the event loop, or L{None} when
        the server has no single one.
        """
        return None

    def cpuSeconds(self) -> tuple[float, float]:
        """
        User and system CPU seconds used so far.
        """
        total = (0.0, 0.0)
        for pid in self.pids():
            total = addCPU(total, cpuOf(pid))
        return total

    def resetPeak(self) -> None:
        for pid in self.pids():
            resetPeakOf(pid)

    def peakRSS(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += peakRSSOf(pid)
        return total

    def delivered(self) -> int:
        return countMessages(self.root)

    def stop(self) -> None:
        raise NotImplementedError()

    def describe(self) -> str:
        return ""


class ChildServer(Server):
    """
    A server that is one child process.
    """

    process: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]

    def loopSeconds(self) -> float | None:
        # The main thread, whose thread id is the process id.
        assert self.process is not None
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            values = f.read().rpartition(")")[2].split()
        return (int(values[11]) + int(values[12])) / _CLOCK_TICKS

    def spawn(self, command: list[str], cwd: str, timeout: float = 60.0) -> None:
        log = open(os.path.join(self.workdir, "output.log"), "wb")
        with log:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=childEnvironment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=sb._dieWithParent,
            )
        try:
            waitForBanner(self.port, timeout, lambda: self.process.poll() is None)  # type: ignore[union-attr]
        except BaseException:
            self.stop()
            raise

    def output(self, lines: int = 20) -> str:
        path = os.path.join(self.workdir, "output.log")
        with contextlib.suppress(OSError), open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        return ""

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


# The load generator.


class SMTPError(Exception):
    """
    An unexpected reply, a timeout or a lost connection.
    """


@dataclass
class Load:
    """
    What one run sends: C{count} messages over C{connections} connections
    (connection I sends to C{recipients[I % len(recipients)]}).
    """

    messages: list[bytes]
    count: int
    connections: int
    recipients: list[str]
    opTimeout: float = 60.0
    sent: int = 0
    accepted: int = 0


async def _reply(
    reader: asyncio.StreamReader, expected: int, what: str, timeout: float
) -> None:
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line.endswith(b"\r\n"):
            raise SMTPError(f"{what}: connection closed")
        if line[3:4] != b"-":
            break
    if not line.startswith(b"%d" % expected):
        raise SMTPError(f"{what}: expected {expected}, got {line!r}")


async def _connection(port: int, load: Load, number: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    timeout = load.opTimeout
    rcpt = load.recipients[number % len(load.recipients)]
    mail = f"MAIL FROM:<{SENDER}>\r\n".encode()
    rcptLine = f"RCPT TO:<{rcpt}>\r\n".encode()
    try:
        await _reply(reader, 220, "greeting", timeout)
        writer.write(b"EHLO client.bench.localhost\r\n")
        await _reply(reader, 250, "EHLO", timeout)
        while load.sent < load.count:
            index = load.sent
            load.sent += 1
            # Plain sequential commands, each waiting for its reply.
            writer.write(mail)
            await _reply(reader, 250, "MAIL", timeout)
            writer.write(rcptLine)
            await _reply(reader, 250, "RCPT", timeout)
            writer.write(b"DATA\r\n")
            await _reply(reader, 354, "DATA", timeout)
            writer.write(load.messages[index % len(load.messages)])
            await _reply(reader, 250, "end of data", timeout)
            load.accepted += 1
        writer.write(b"QUIT\r\n")
        await _reply(reader, 221, "QUIT", timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _drive(port: int, load: Load, timeout: float) -> None:
    tasks = [
        asyncio.ensure_future(_connection(port, load, n))
        for n in range(load.connections)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Result:
    """
    One load against one server.

    @ivar accepted: seconds until the client had its last 250.
    @ivar delivered: seconds until every message was in a Maildir.
    @ivar serverCPU: the server's user and system CPU seconds, from the
        start until every message was delivered.
    @ivar clientCPU: this process's CPU seconds while it sent.
    @ivar loopCPU: the CPU seconds of the server's event-loop thread, or
        L{None} (Postfix).
    """

    messages: int
    accepted: float
    delivered: float
    serverCPU: tuple[float, float]
    clientCPU: float
    peakRSS: int
    stored: int
    loopCPU: float | None = None

    @property
    def acceptedRate(self) -> float:
        return self.messages / self.accepted

    @property
    def deliveredRate(self) -> float:
        return self.messages / self.delivered

    @property
    def cpuPerMessage(self) -> float:
        return sum(self.serverCPU) / self.messages

    @property
    def systemShare(self) -> float:
        return self.serverCPU[1] / max(sum(self.serverCPU), 1e-9)


def run(
    server: Server,
    load: Load,
    loop: asyncio.AbstractEventLoop,
    timeout: float,
    poll: float = 0.002,
) -> Result:
    """
    Send a load, wait for every message to be delivered, and check that
    exactly C{load.count} new files appeared.

    @param timeout: seconds for sending and delivering.
    @raise SMTPError: when the count of files differs.
    """
    load.sent = load.accepted = 0
    before = server.delivered()
    server.resetPeak()
    cpu0 = server.cpuSeconds()
    loop0 = server.loopSeconds()
    client0 = sb.ownCPU()
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    loop.run_until_complete(_drive(server.port, load, timeout))
    accepted = time.perf_counter() - start
    client = sb.ownCPU() - client0
    stored = server.delivered() - before
    while stored < load.count and server.queued:
        if time.monotonic() > deadline:
            raise SMTPError(
                f"{server.name}: {stored} of {load.count} delivered in {timeout:.0f} s"
            )
        time.sleep(poll)
        stored = server.delivered() - before
    delivered = time.perf_counter() - start
    cpu1 = server.cpuSeconds()
    cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
    loop1 = server.loopSeconds()
    loopCPU = None if loop0 is None or loop1 is None else loop1 - loop0
    peak = server.peakRSS()
    if server.queued:
        # Let a late duplicate show.
        time.sleep(0.2)
        stored = server.delivered() - before
    if stored != load.count or load.accepted != load.count:
        raise SMTPError(
            f"{server.name}: {load.accepted} accepted, {stored} stored,"
            f" {load.count} sent"
        )
    return Result(load.count, accepted, delivered, cpu, client, peak, stored, loopCPU)
