"""
Benchmark our ESMTP server against aiosmtpd and twisted.mail.

Each server runs in its own process on 127.0.0.1 with a backend that
accepts every recipient and discards every message:

  - ours: C{SMTPServerFactory(FunctionBackend(rcptTo=accept,
    message=discard))}, default limits, C{maxMessageSize} 32 MiB;
  - aiosmtpd (asyncio's default event loop) with a C{handle_DATA} that
    returns C{250 OK}, C{data_size_limit} 32 MiB;
  - twisted.mail's C{ESMTP} protocol with a discarding C{IMessageDelivery}
    (per-message log lines off), on the same reactor as ours.

Three clients drive all three servers the same way, EHLO (HELO for
smtp-source) and then per message MAIL, RCPT, DATA and the dot-stuffed
data block:

  - C{pipelined}: one asyncio client in this process sends MAIL, RCPT and
    DATA in one write (RFC 2920) to the servers that advertise PIPELINING
    (of the three, only ours does) and stays sequential with the others,
    as a real MTA would;
  - C{sequential}: the same client, each command waiting for its reply, as
    scripts on smtplib and monitoring probes do;
  - C{smtp-source}: Postfix's C test client (C{apt-get install postfix},
    not configured nor started; only C{/usr/sbin/smtp-source} is used),
    which never pipelines, run on one CPU together with the server, so a
    client that costs little leaves the server's cost to show.  Its
    messages are its own (a few headers and 80-column lines of the
    workload's size).  When it is not installed its rows are skipped.

The workloads:

  - 2,000 messages of 1 KiB over 10 connections;
  - 2,000 messages of 10 KiB over 10 connections;
  - 100 messages of 1 MiB over 10 connections;
  - 1,000 messages of 1 KiB, each on a new connection (10 at once).

Messages have CRLF line endings, lines under 998 octets and some lines
beginning with a dot.  Several rounds run interleaved across the servers
(the order rotates each round); the table gives medians of messages per
second and of server CPU time per message (from C{/proc/PID/stat}), the
highest peak RSS (C{VmHWM}, reset before each run with C{clear_refs}), and
the client's CPU use, to show it is not the bottleneck.  Then each server,
freshly started, takes one 20 MiB message and its peak RSS is printed with
its ratio to the message size.

Run from the repository root::

    .venv/bin/python bench/smtp_server.py            # 3 rounds
    .venv/bin/python bench/smtp_server.py --quick    # smoke run
    .venv/bin/python bench/smtp_server.py --rounds 5
    .venv/bin/python bench/smtp_server.py --clients sequential,smtp-source
    .venv/bin/python bench/smtp_server.py --profile  # ours under cProfile

The headline at the end gives, for each workload and client, our
throughput over each peer's and the targets: 1.5x twisted.mail at 1 KiB,
3x twisted.mail at 1 MiB, 3x aiosmtpd everywhere.

Throughput on a small shared machine is noisy (the table shows the spread);
server CPU per message is the steadier figure.  Peak RSS per workload
starts from the RSS the process still holds, so memory kept after the
1 MiB runs shows in the later rounds of the small workloads.  C{--profile}
runs each workload once with each chosen client against our server under
cProfile, prints the functions that took the most time and keeps the
C{.prof} files.

The whole run is bounded by C{--deadline} seconds (default 900), every
reply by C{--op-timeout}; server processes are stopped on any exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _smtpbench as sb

KIB = 1024
MIB = 1024 * 1024
RSS_MESSAGE = 20 * MIB


def _workloads(quick: bool) -> list[sb.Workload]:
    scale = 10 if quick else 1

    def messages(size: int, variants: int) -> list[bytes]:
        return [sb.stuff(sb.makeMessage(size, seed)) for seed in range(variants)]

    small = messages(KIB, 16)
    return [
        sb.Workload("1 KiB x 2000, 10 conns", small, 2000 // scale, 10, size=KIB),
        sb.Workload(
            "10 KiB x 2000, 10 conns",
            messages(10 * KIB, 16),
            2000 // scale,
            10,
            size=10 * KIB,
        ),
        sb.Workload(
            "1 MiB x 100, 10 conns", messages(MIB, 4), 100 // scale, 10, size=MIB
        ),
        sb.Workload(
            "1 KiB x 1000, new conn each, 10 at once",
            small,
            1000 // scale,
            10,
            perMessage=True,
            size=KIB,
        ),
    ]


def _versions() -> str:
    from importlib.metadata import version

    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" Twisted {version('Twisted')}, aiosmtpd {version('aiosmtpd')}"
    )


#: The clients, in the order of the report.
CLIENTS = ("pipelined", "sequential", "smtp-source")

#: Throughput targets, ours over twisted.mail's, by workload size; none on
#: new connections.
TARGETS = {"1 KiB": 1.5, "1 MiB": 3.0}
#: Ours over aiosmtpd's, on every workload.
AIOSMTPD_TARGET = 3.0


def _median(results: Sequence[sb.Result], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in results))


def _target(workload: sb.Workload, peer: str) -> float | None:
    if peer == "aiosmtpd":
        return AIOSMTPD_TARGET
    if workload.perMessage:
        return None
    return TARGETS.get(workload.name.split(" x")[0])


class Bench:
    """
    One benchmark run.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline: float = time.monotonic() + args.deadline
        self.loop = asyncio.new_event_loop()
        self.clients: list[str] = args.clients
        self.smtpSource = sb.findSmtpSource()
        self.skipped = ""
        if "smtp-source" in self.clients and self.smtpSource is None:
            self.clients = [c for c in self.clients if c != "smtp-source"]
            self.skipped = (
                "smtp-source rows skipped: Postfix's smtp-source is not installed"
                " (apt-get install postfix; it need not be configured)"
            )
        allowed = sorted(os.sched_getaffinity(0))
        self.cpu: int | None = allowed[-1] if args.cpu is None else args.cpu
        if self.cpu is not None and self.cpu < 0:
            self.cpu = None

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark's deadline has passed")
        return left

    def start(
        self, kind: str, servers: list[sb.ServerProcess], profile: str | None = None
    ) -> sb.ServerProcess:
        server = sb.ServerProcess.start(
            kind, maxSeconds=self.left() + 60, profile=profile
        )
        servers.append(server)
        return server

    def run(
        self,
        server: sb.ServerProcess,
        workload: sb.Workload,
        client: str = "sequential",
    ) -> sb.Result:
        timeout = min(self.left(), self.args.workload_timeout)
        if client == "smtp-source":
            assert self.smtpSource is not None
            return sb.runSmtpSource(
                self.smtpSource, server, workload, timeout, self.cpu
            )
        workload.pipelining = client == "pipelined"
        return sb.run(
            server,
            workload,
            opTimeout=self.args.op_timeout,
            timeout=timeout,
            loop=self.loop,
        )

    def warmUp(self, server: sb.ServerProcess, workload: sb.Workload) -> None:
        warm = sb.Workload("warm-up", workload.messages, 50, 5)
        self.run(server, warm)

    def describeClients(self) -> None:
        what = {
            "pipelined": "one asyncio process, MAIL, RCPT and DATA pipelined"
            " where the server advertises PIPELINING, else sequential",
            "sequential": "the same asyncio process, plain sequential commands"
            " (no PIPELINING)",
            "smtp-source": f"Postfix's {self.smtpSource}, sequential commands,"
            + (
                f" client and server both on CPU {self.cpu}"
                if self.cpu is not None
                else " not pinned"
            ),
        }
        print("  clients:")
        for client in self.clients:
            print(f"    {client + ':':<13} {what[client]}")
        if self.skipped:
            print(f"  {self.skipped}")

    def main(self, servers: list[sb.ServerProcess]) -> None:
        args = self.args
        print(f"SMTP server benchmark: {_versions()}")
        print(
            f"  {platform.system()} {platform.release()}, {os.cpu_count()} CPUs,"
            f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        workloads = _workloads(args.quick)
        rounds = 1 if args.quick else args.rounds
        if args.profile:
            self.describeClients()
            self.profile(servers, workloads)
            return
        running = {kind: self.start(kind, servers) for kind in sb.SERVERS}
        loops = ", ".join(f"{k}: {s.loop}" for k, s in running.items())
        print(f"  event loops: {loops}")
        self.describeClients()
        print(f"  {rounds} round(s), interleaved, medians (min-max of msg/s)")
        print(flush=True)
        for server in running.values():
            self.warmUp(server, workloads[0])
        results: dict[tuple[str, str, str], list[sb.Result]] = {}
        kinds = list(sb.SERVERS)
        for number in range(rounds):
            order = kinds[number % len(kinds) :] + kinds[: number % len(kinds)]
            for workload in workloads:
                for client in self.clients:
                    for kind in order:
                        result = self.run(running[kind], workload, client)
                        key = (workload.name, client, kind)
                        results.setdefault(key, []).append(result)
            print(f"  round {number + 1}/{rounds} done", flush=True)
        print()
        self.report(workloads, results)
        for server in running.values():
            server.stop()
        self.rssRun(servers)
        self.checks(list(running.values()))
        self.headline(workloads, results)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average at the end: {load}")

    def report(
        self,
        workloads: Sequence[sb.Workload],
        results: dict[tuple[str, str, str], list[sb.Result]],
    ) -> None:
        header = (
            f"  {'client':<12} {'server':<13} {'msg/s':>7} {'(min-max)':>13}"
            f" {'MiB/s':>7} {'CPU ms/msg':>11} {'peak RSS':>10} {'client CPU':>11}"
        )
        for workload in workloads:
            count = len(results[workload.name, self.clients[0], "ours"])
            print(f"{workload.name} (median of {count})")
            print(header)
            for client in self.clients:
                for kind in sb.SERVERS:
                    rs = results[workload.name, client, kind]
                    rate = statistics.median(r.rate for r in rs)
                    cpu = statistics.median(r.cpuPerMessage for r in rs)
                    peak = max(r.peakRSS for r in rs)
                    used = statistics.median(r.clientCPU / r.seconds for r in rs)
                    spread = (
                        f"({min(r.rate for r in rs):.0f}-{max(r.rate for r in rs):.0f})"
                    )
                    piped = " pipelined" if any(r.pipelined for r in rs) else ""
                    label = client if kind == sb.SERVERS[0] else ""
                    print(
                        f"  {label:<12} {kind:<13} {rate:7.0f} {spread:>13}"
                        f" {rate * workload.size / MIB:7.1f}"
                        f" {1000 * cpu:11.3f} {peak / MIB:6.1f} MiB"
                        f" {100 * used:10.0f}%{piped}"
                    )
            print(flush=True)

    def headline(
        self,
        workloads: Sequence[sb.Workload],
        results: dict[tuple[str, str, str], list[sb.Result]],
    ) -> None:
        """
        Ours over each peer, throughput and CPU per message, by workload and
        client, with the targets.
        """
        print("Headline: ours / peer, throughput (and CPU per message, less)")
        peers = sb.SERVERS[1:]
        print(
            f"  {'workload':<24} {'client':<12}" + "".join(f" {p:>27}" for p in peers)
        )
        missed = 0
        for workload in workloads:
            name = workload.name.split(",")[0]
            if workload.perMessage:
                name += ", new conns"
            for client in self.clients:
                cells = []
                for peer in peers:
                    ours = results[workload.name, client, "ours"]
                    theirs = results[workload.name, client, peer]
                    speed = _median(ours, "rate") / _median(theirs, "rate")
                    cpu = _median(theirs, "cpuPerMessage") / max(
                        _median(ours, "cpuPerMessage"), 1e-9
                    )
                    target = _target(workload, peer)
                    mark = ""
                    if target is not None:
                        met = speed >= target
                        missed += not met
                        sign, word = (">=", "ok") if met else ("< ", "NO")
                        mark = f" {sign}{target:.1f} {word}"
                    cells.append(f"{speed:5.2f}x ({cpu:4.2f}x){mark:<10}")
                print(
                    f"  {name:<24} {client:<12}" + "".join(f" {c:>27}" for c in cells)
                )
        verdict = "all targets met" if not missed else f"{missed} target(s) NOT met"
        print(f"  {verdict}")
        if self.skipped:
            print(f"  {self.skipped}")
        print(flush=True)

    def rssRun(self, servers: list[sb.ServerProcess]) -> None:
        print(f"Peak RSS, one {RSS_MESSAGE // MIB} MiB message, fresh servers")
        message = [sb.stuff(sb.makeMessage(RSS_MESSAGE, 1))]
        small = [sb.stuff(sb.makeMessage(KIB, 1))]
        print(
            f"  {'server':<13} {'before':>10} {'peak':>10} {'peak/size':>10}"
            f" {'(peak-before)/size':>19} {'seconds':>8}"
        )
        for kind in sb.SERVERS:
            server = self.start(kind, servers)
            self.run(server, sb.Workload("warm-up", small, 5, 1))
            before = server.memory()[0]
            result = self.run(server, sb.Workload("20 MiB", message, 1, 1))
            peak = result.peakRSS
            target = "  (target < 3x)" if kind == "ours" else ""
            print(
                f"  {kind:<13} {before / MIB:6.1f} MiB {peak / MIB:6.1f} MiB"
                f" {peak / RSS_MESSAGE:9.2f}x {(peak - before) / RSS_MESSAGE:18.2f}x"
                f" {result.seconds:8.2f}{target}"
            )
            server.stop()
        print(flush=True)

    def checks(self, servers: Sequence[sb.ServerProcess]) -> None:
        print("Server-side counts (messages taken, sizes checked, size mismatches)")
        for server in servers:
            print(f"  {server.kind:<13} {server.stats or 'no report'}")
        print()

    def profile(
        self, servers: list[sb.ServerProcess], workloads: Sequence[sb.Workload]
    ) -> None:
        directory = self.args.profile_dir or tempfile.mkdtemp(prefix="smtpbench-")
        os.makedirs(directory, exist_ok=True)
        print("  profile: our server under cProfile (rates below are skewed by it)")
        print()
        for number, workload in enumerate(workloads):
            for client in self.clients:
                path = os.path.join(directory, f"ours-{number}-{client}.prof")
                server = self.start("ours", servers, profile=path)
                self.warmUp(server, workload)
                result = self.run(server, workload, client)
                server.stop()
                print(
                    f"{workload.name}, {client}: {result.rate:.0f} msg/s under the"
                    f" profiler, {1000 * result.cpuPerMessage:.3f} ms CPU/msg;"
                    f" stats in {path}"
                )
                print(sb.profileSummary(path, limit=self.args.profile_rows))
                print(flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="seconds for the whole run"
    )
    parser.add_argument(
        "--op-timeout", type=float, default=60.0, help="seconds to wait for a reply"
    )
    parser.add_argument(
        "--workload-timeout", type=float, default=300.0, help="seconds per run"
    )
    parser.add_argument(
        "--clients",
        type=sb.commaList(CLIENTS, "client"),
        default=list(CLIENTS),
        help=f"comma-separated, from {','.join(CLIENTS)} (default all)",
    )
    parser.add_argument(
        "--pipelining",
        action="store_true",
        help="the pipelined client only (same as --clients pipelined)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="the CPU smtp-source and the server share (default the last"
        " allowed; -1 not to pin)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile our server instead"
    )
    parser.add_argument("--profile-dir", default=None)
    parser.add_argument("--profile-rows", type=int, default=20)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.rounds > 50:
        parser.error("--rounds must be between 1 and 50")
    if args.pipelining:
        args.clients = ["pipelined"]
    bench = Bench(args)
    try:
        sb.withCleanup(bench.main)
    finally:
        # Interrupted mid-run: end the client's connections quietly.
        bench.loop.set_exception_handler(lambda loop, context: None)
        pending = asyncio.all_tasks(bench.loop)
        for task in pending:
            task.cancel()
        if pending:
            bench.loop.run_until_complete(
                asyncio.gather(*pending, return_exceptions=True)
            )
        bench.loop.close()


if __name__ == "__main__":
    main()
