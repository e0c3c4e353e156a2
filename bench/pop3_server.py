"""
Benchmark our POP3 server against twisted.mail's (and Dovecot's, when
installed).

Every server serves one user's INBOX, a Maildir of identical messages
(LF line ends on disk, one line in 40 starting with a dot), each server
from its own copy of it, since each writes its own state beside the
messages:

  - ours: C{POP3ServerFactory(StoreBackend(checker, MaildirStore(root)))}
    with default limits and plain-text logins allowed;
  - twisted.mail: its C{twisted.mail.pop3.POP3} protocol, logging in
    through a portal whose realm gives a
    C{twisted.mail.maildir.MaildirMailbox} over the same Maildir (its
    C{getMessage} made to open files in binary mode: as shipped it opens
    them as text, which RETR cannot send on Python 3), on the same reactor
    as ours;
  - twisted.mail-nodelay: the same with C{TCP_NODELAY} on its connections.
    twisted.mail sends a response's status line and each chunk of the
    message as separate writes, and with Nagle's algorithm on, a small
    last segment waits for the client's delayed ACK (40 ms on Linux):
    this column shows what twisted.mail costs without that stall;
  - Dovecot's pop3 (C{apt-get install dovecot-pop3d}), started on
    loopback with a configuration of its own, when installed; its
    throughput only, since its work is spread over several processes.

Passwords are checked by an in-memory checker for both Twisted servers (the
login is not timed).  One client process per session (so the server's CPU
is what a run measures) logs in, STATs, then RETRs every message once, each
command after the previous response ended, and checks each message's
length after un-stuffing.  The workloads:

  - 1,000 messages of 10 KiB in one session;
  - 20 messages of 5 MiB in one session.

Each run gets a fresh server process (Dovecot is started once per
workload): a warm-up session RETRs one message, then the idle RSS is read
and the peak RSS reset (Linux C{clear_refs}), and the timed session's peak
(C{VmHWM}) is read after it.  Several rounds run interleaved across the
servers; the table gives medians of messages per second, MiB per second
(the CRLF octets of the responses), server CPU per message, and the
highest peak RSS above idle.  The headline gives our throughput over
each peer's, against the targets: at least 2x twisted.mail on both
workloads (as shipped and without the stall), and during the 5 MiB run a
peak under 3x the message size above idle.

Run from the repository root::

    .venv/bin/python bench/pop3_server.py            # 3 rounds
    .venv/bin/python bench/pop3_server.py --quick    # smoke run
    .venv/bin/python bench/pop3_server.py --rounds 5 --no-dovecot

The whole run is bounded by C{--deadline} seconds (default 900), every
session by C{--session-timeout}; server processes are stopped on any exit.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _pop3bench as pb
import _smtpbench as sb

KIB = 1024
MIB = 1024 * 1024

#: Ours over twisted.mail's throughput, on each workload.
TARGET = 2.0
#: The most peak RSS above idle during the 5 MiB run, in message sizes.
RSS_TARGET = 3.0


@dataclass(frozen=True)
class Workload:
    """
    One session's worth of messages.
    """

    name: str
    count: int
    size: int


@dataclass(frozen=True)
class Result:
    """
    One timed session.
    """

    seconds: float
    octets: int
    bad: int
    serverCPU: float | None
    idleRSS: int | None
    peakRSS: int | None
    clientCPU: float

    def rate(self, workload: Workload) -> float:
        return workload.count / self.seconds

    def mibps(self) -> float:
        return self.octets / self.seconds / MIB


_Results = dict[tuple[str, str], list[Result]]


def _workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            Workload("10 KiB x 200", 200, 10 * KIB),
            Workload("5 MiB x 4", 4, 5 * MIB),
        ]
    return [
        Workload("10 KiB x 1000", 1000, 10 * KIB),
        Workload("5 MiB x 20", 20, 5 * MIB),
    ]


def _versions() -> str:
    from importlib.metadata import version

    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" Twisted {version('Twisted')}"
    )


def _freePort() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Bench:
    """
    One benchmark run.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.deadline
        self.directory = tempfile.mkdtemp(prefix="pop3bench-")
        # Dovecot's mail processes run unprivileged and must reach the store.
        os.chmod(self.directory, 0o755)
        self.kinds: list[str] = list(pb.SERVERS)
        self.dovecot: Any = None
        self.note = ""
        if not args.no_dovecot:
            if shutil.which("dovecot") is None:
                self.note = (
                    "Dovecot skipped: not installed (apt-get install dovecot-pop3d)"
                )
            elif os.geteuid() != 0:
                self.note = "Dovecot skipped: it needs root to start here"
            else:
                self.kinds.append("dovecot")

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark's deadline has passed")
        return left

    def prepare(self, number: int, workload: Workload) -> dict[str, str]:
        """
        Write the workload's Maildir once and give each server a copy.

        @return: each kind's store root.
        """
        source = os.path.join(self.directory, f"source-{number}")
        pb.writeMaildir(source, workload.count, workload.size)
        roots = {}
        for kind in self.kinds:
            root = os.path.join(self.directory, f"{kind}-{number}")
            roots[kind] = pb.copyRoot(source, root)
        shutil.rmtree(source)
        for root in roots.values():
            pb.warmCache(root)
        return roots

    def startDovecot(self, root: str) -> Any:
        import _interop

        _interop.handOver(root)
        base = os.path.join(self.directory, f"dovecot-{os.path.basename(root)}")
        os.makedirs(base)
        dovecot = _interop.Dovecot(base, root, [pb.USER], _freePort())
        dovecot.start()
        return dovecot

    def session(
        self, port: int, workload: Workload, password: str, only: int | None = None
    ) -> dict[str, Any]:
        timeout = min(self.left(), self.args.session_timeout)
        return pb.runClient(
            port,
            workload.count,
            pb.wireSize(workload.size),
            timeout,
            password=password,
            only=only,
        )

    def runDovecot(self, dovecot: Any, workload: Workload) -> Result:
        import _interop

        try:
            self.session(dovecot.popPort, workload, _interop.PASSWORD, only=1)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nDovecot's log:\n{dovecot.tail()}") from None
        report = self.session(dovecot.popPort, workload, _interop.PASSWORD)
        return Result(
            report["seconds"],
            report["octets"],
            report["bad"],
            None,
            None,
            None,
            report["clientCPU"],
        )

    def runTwisted(
        self, kind: str, root: str, workload: Workload, servers: list[Any]
    ) -> Result:
        server = pb.POP3Server.launch(kind, root, maxSeconds=self.left() + 60)
        servers.append(server)
        try:
            self.session(server.port, workload, pb.PASSWORD, only=1)
            idle = server.memory()[0]
            reset = server.resetPeak()
            cpu = server.cpuSeconds()
            report = self.session(server.port, workload, pb.PASSWORD)
            used = server.cpuSeconds() - cpu
            peak = server.memory()[1] if reset else None
        finally:
            server.stop()
        return Result(
            report["seconds"],
            report["octets"],
            report["bad"],
            used,
            idle,
            peak,
            report["clientCPU"],
        )

    def main(self, servers: list[Any]) -> None:
        args = self.args
        print(f"POP3 server benchmark: {_versions()}")
        print(
            f"  {platform.system()} {platform.release()}, {os.cpu_count()} CPUs,"
            f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        rounds = 1 if args.quick else args.rounds
        print(
            f"  servers: {', '.join(self.kinds)}; {rounds} round(s), interleaved,"
            " medians (min-max of msg/s); one client process per session,"
            " sequential RETRs"
        )
        if self.note:
            print(f"  {self.note}")
        print(flush=True)
        results: dict[tuple[str, str], list[Result]] = {}
        workloads = _workloads(args.quick)
        try:
            for number, workload in enumerate(workloads):
                roots = self.prepare(number, workload)
                dovecot = None
                if "dovecot" in self.kinds:
                    dovecot = self.startDovecot(roots["dovecot"])
                try:
                    for index in range(rounds):
                        order = self.kinds[index % len(self.kinds) :]
                        order += self.kinds[: index % len(self.kinds)]
                        for kind in order:
                            if kind == "dovecot":
                                result = self.runDovecot(dovecot, workload)
                            else:
                                result = self.runTwisted(
                                    kind, roots[kind], workload, servers
                                )
                            results.setdefault((workload.name, kind), []).append(result)
                        print(
                            f"  {workload.name}: round {index + 1}/{rounds} done",
                            flush=True,
                        )
                finally:
                    if dovecot is not None:
                        dovecot.stop()
            print()
            self.report(workloads, results)
            self.headline(workloads, results)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average at the end: {load}")

    def report(
        self,
        workloads: Sequence[Workload],
        results: dict[tuple[str, str], list[Result]],
    ) -> None:
        header = (
            f"  {'server':<20} {'msg/s':>8} {'(min-max)':>15} {'MiB/s':>7}"
            f" {'CPU ms/msg':>11} {'idle RSS':>10} {'peak-idle':>10}"
            f" {'/size':>6} {'client CPU':>11} {'bad':>4}"
        )
        for workload in workloads:
            count = len(results[workload.name, "ours"])
            print(f"{workload.name}, one session (median of {count})")
            print(header)
            for kind in self.kinds:
                rs = results[workload.name, kind]
                rates = [r.rate(workload) for r in rs]
                spread = f"({min(rates):.0f}-{max(rates):.0f})"
                mibps = statistics.median(r.mibps() for r in rs)
                cpus = [r.serverCPU for r in rs if r.serverCPU is not None]
                cpu = (
                    f"{1000 * statistics.median(cpus) / workload.count:11.3f}"
                    if cpus
                    else f"{'-':>11}"
                )
                idles = [r.idleRSS for r in rs if r.idleRSS is not None]
                above = [
                    r.peakRSS - r.idleRSS
                    for r in rs
                    if r.peakRSS is not None and r.idleRSS is not None
                ]
                memory = (
                    f" {max(idles) / MIB:6.1f} MiB {max(above) / MIB:6.1f} MiB"
                    f" {max(above) / workload.size:5.2f}x"
                    if above
                    else f" {'-':>10} {'-':>10} {'-':>6}"
                )
                used = statistics.median(r.clientCPU / r.seconds for r in rs)
                bad = sum(r.bad for r in rs)
                print(
                    f"  {kind:<20} {statistics.median(rates):8.0f} {spread:>15}"
                    f" {mibps:7.1f} {cpu}{memory} {100 * used:10.0f}% {bad:>4}"
                )
            print(flush=True)

    def headline(
        self,
        workloads: Sequence[Workload],
        results: dict[tuple[str, str], list[Result]],
    ) -> None:
        print("Headline: ours / peer, throughput (and server CPU per message, less)")
        missed = 0
        for workload in workloads:
            ours = results[workload.name, "ours"]
            oursRate = statistics.median(r.rate(workload) for r in ours)
            cells = []
            for peer in self.kinds[1:]:
                theirs = results[workload.name, peer]
                speed = oursRate / statistics.median(r.rate(workload) for r in theirs)
                cell = f"{peer}: {speed:5.2f}x"
                ourCPU = [r.serverCPU for r in ours if r.serverCPU is not None]
                theirCPU = [r.serverCPU for r in theirs if r.serverCPU is not None]
                if ourCPU and theirCPU:
                    cpu = statistics.median(theirCPU) / max(
                        statistics.median(ourCPU), 1e-9
                    )
                    cell += f" ({cpu:4.2f}x)"
                if peer.startswith("twisted.mail"):
                    met = speed >= TARGET
                    missed += not met
                    cell += (
                        f" {'>=' if met else '< '}{TARGET:.1f} {'ok' if met else 'NO'}"
                    )
                cells.append(cell)
            print(f"  {workload.name:<16} " + "   ".join(cells))
        big = workloads[-1]
        above = [
            r.peakRSS - r.idleRSS
            for r in results[big.name, "ours"]
            if r.peakRSS is not None and r.idleRSS is not None
        ]
        if above:
            ratio = max(above) / big.size
            met = ratio < RSS_TARGET
            missed += not met
            print(
                f"  ours, peak RSS above idle during {big.name}: {ratio:.3f}x the"
                f" message size ({'<' if met else '>='} {RSS_TARGET:.0f}x"
                f" {'ok' if met else 'NO'})"
            )
        else:
            print("  peak RSS not measured (no /proc/PID/clear_refs)")
        bad = sum(r.bad for rs in results.values() for r in rs)
        if bad:
            print(f"  {bad} message(s) came back with the wrong length")
        verdict = "all targets met" if not missed else f"{missed} target(s) NOT met"
        print(f"  {verdict}")
        print(flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="seconds for the whole run"
    )
    parser.add_argument(
        "--session-timeout", type=float, default=300.0, help="seconds per session"
    )
    parser.add_argument("--no-dovecot", action="store_true", help="leave Dovecot out")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.rounds > 50:
        parser.error("--rounds must be between 1 and 50")
    bench = Bench(args)
    sb.withCleanup(bench.main)


if __name__ == "__main__":
    main()
