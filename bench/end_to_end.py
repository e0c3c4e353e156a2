"""
Benchmark local delivery end to end: SMTP in, each message fsynced into a
Maildir, against aiosmtpd and Postfix on the same disk; then the outbound
queue's throughput to a loopback sink.

Local delivery: C{--messages} messages of 10 KiB (CRLF lines, some
beginning with a dot) over 10 concurrent connections, several messages per
connection, connection I sending to C{user<I>@bench.localhost}.  The client
is one asyncio process in this one, sending plain sequential commands
(EHLO once, then MAIL, RCPT, DATA and the data block, each waiting for its
reply; no PIPELINING, which aiosmtpd lacks).  The servers, each started
once in its own working directory under C{--dir} (one filesystem):

  - C{ours}: C{twistd -n gomail-smtp --users FILE --maildir DIR --listen
    tcp:PORT:interface=127.0.0.1}, everything else default (STARTTLS
    offered and not used, DKIM verification on, log to a file); the
    users file, made with C{python -m gomail_twisted users}, holds the ten
    recipients.  Each message is written under C{tmp/}, fsynced, renamed
    into C{new/}, and C{new/} fsynced before the 250;
  - C{gomail}: C{twistd -n gomail --data DIR}, the whole server (its
    submission, POP3 and IMAP ports moved to OS-chosen loopback ports, the
    outbound queue and IP access control running), measured on its
    inbound SMTP port, with the users file in C{DIR/users};
  - C{aiosmtpd}: aiosmtpd's C{SMTP} (asyncio's default loop) with a small
    handler that, in a pool of 4 threads (our store's default), calls
    C{mailbox.Maildir(ROOT/<rcpt>).add(data)} (the standard library writes
    the file under C{tmp/}, fsyncs it, links it into C{new/}) and then
    fsyncs C{new/}: the same durability as ours before the 250;
  - C{aiosmtpd-stock}: aiosmtpd's own Maildir handler,
    C{aiosmtpd.handlers.Mailbox(ROOT)}, as shipped: one Maildir for all,
    the message parsed into an C{email} message, C{add()} in the event
    loop, C{new/} not fsynced;
  - C{postfix}: a private Postfix instance (root only; its own
    C{config_directory}, queue and data directories, smtpd on a free port
    of 127.0.0.1, C{virtual(8)} delivering to C{BASE/<rcpt>/Maildir/}),
    everything else Postfix's defaults.  Postfix answers 250 once the
    message is fsynced in its queue and delivers afterwards (fsyncing the
    Maildir file, not C{new/}), so it gets two rates: accepted (the
    client's last 250) and delivered (every file in C{new/}, looked for
    every 2 ms).  It is stopped at the end, and a guard process stops it
    should this script die.

For every run the script counts the new files in the servers' Maildirs
and stops with an error unless exactly C{--messages} appeared (and were
all answered 250).  Several rounds run interleaved (the order rotates);
the table gives medians:

  - C{accepted/s}: messages over the time until the client had the last
    250 (min-max over the rounds);
  - C{delivered/s}: messages over the time until every message was in a
    Maildir (the same as accepted/s for all but Postfix);
  - C{CPU ms/msg}: the server's user+system CPU time (all threads, from
    C{/proc/PID/stat}; for Postfix the master, its reaped children and
    its live processes) from the first connection until every message was
    delivered, over the messages; C{sys}: the system time's share of it
    (fsync and loopback TCP are system time);
  - C{peak RSS}: the server's C{VmHWM}, reset with C{clear_refs} before
    each run (for Postfix, the sum over its processes alive at the end,
    shared pages counted in each);
  - C{loop CPU}: the CPU time of the server's event-loop thread (its main
    thread) over the wall time: near 100% means the loop is the
    bottleneck; the rest of the server's CPU is its disk threads (none
    for Postfix, whose work is spread over processes);
  - C{client CPU}: the load generator's CPU time over the wall time, to
    show whether it could be the bottleneck.

Queue throughput: after 20 warm-up messages, C{--queue-messages} messages
of 10 KiB, one recipient each, submitted at once to
C{gomail_twisted.queue.OutboundQueue} (in its own process) for one remote
domain whose MX, served by a loopback DNS server, is a discarding SMTP
server (ours, from C{bench/_smtpbench.py}) in another process;
C{maxDeliveries=10} and C{maxPerDomain=10}, so ten deliveries at once.
Reported: the time until every submission fired (spooled, fsynced) and
until the spool was empty (every message delivered and its files
removed), as messages per second; the queue process's and the sink's CPU
per message; the sink's count of messages, which must match.  Target:
1,000 messages/s.  C{--queue-only} skips local delivery,
C{--queue-profile PATH} runs the queue process under cProfile.

Run from the repository root (Postfix needs root)::

    .venv/bin/python bench/end_to_end.py --quick     # 300 messages, 1 round
    .venv/bin/python bench/end_to_end.py             # 2,000 messages, 3 rounds
    .venv/bin/python bench/end_to_end.py --servers ours,aiosmtpd
    .venv/bin/python bench/end_to_end.py --quick --dir /dev/shm  # no disk
    .venv/bin/python bench/end_to_end.py --quick --profile ours.prof
    .venv/bin/python bench/end_to_end.py --ours-option=--no-dkim
    .venv/bin/python bench/end_to_end.py --queue-only --queue-profile q.prof

Targets: ours at least 2x aiosmtpd (the fsyncing handler) in throughput;
Postfix for reference.  On a small shared machine throughput is noisy
(the table shows the spread, and the load average is printed before and
after); CPU per message is the steadier figure.  The whole run is bounded
by C{--deadline} seconds; every server is stopped on any exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import _e2ebench as e2e
import _smtpbench as sb
from _e2epostfix import PostfixServer, postfixMissing
from _e2equeue import queueMissing, runQueueBench
from _e2eservers import AiosmtpdServer, OursGomail, OursSMTP, gomailAvailable

KIB = 1024
MIB = 1024 * 1024
SERVERS = ("ours", "gomail", "aiosmtpd", "aiosmtpd-stock", "postfix")
#: Ours, in the headline, over the others.
OURS = ("ours", "gomail")
#: Ours over the fsyncing aiosmtpd, in throughput.
AIOSMTPD_TARGET = 2.0
#: Messages per second through the outbound queue.
QUEUE_TARGET = 1000.0


def _versions() -> str:
    from importlib.metadata import version

    return (
        f"Python {platform.python_version()}, Twisted {version('Twisted')},"
        f" aiosmtpd {version('aiosmtpd')}"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Bench:
    """
    One benchmark run.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.deadline
        self.loop = asyncio.new_event_loop()
        self.servers: list[e2e.Server] = []
        self.notes: list[str] = []

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark's deadline has passed")
        return left

    def make(self, name: str, base: str) -> e2e.Server | None:
        workdir = os.path.join(base, name)
        os.makedirs(workdir)
        if name == "ours":
            return OursSMTP(
                workdir, profile=self.args.profile, options=self.args.ours_option
            )
        if name == "gomail":
            if not gomailAvailable():
                self.notes.append(
                    "gomail: not measured, twistd gomail is not installed yet"
                )
                return None
            return OursGomail(workdir)
        if name == "aiosmtpd":
            return AiosmtpdServer(workdir, "maildir")
        if name == "aiosmtpd-stock":
            return AiosmtpdServer(workdir, "stock")
        why = postfixMissing()
        if why is not None:
            self.notes.append(f"postfix: not measured, {why}")
            return None
        return PostfixServer(workdir)

    def startAll(self, base: str, recipients: list[str]) -> list[e2e.Server]:
        started = []
        for name in self.args.servers:
            server = self.make(name, base)
            if server is None:
                continue
            self.servers.append(server)
            try:
                server.start(recipients, self.left() + 60)
            except (
                OSError,
                RuntimeError,
                TimeoutError,
                subprocess.SubprocessError,
            ) as error:
                server.stop()
                self.servers.remove(server)
                self.notes.append(f"{name}: could not be started: {error}")
                continue
            started.append(server)
        return started

    def run(self, server: e2e.Server, load: e2e.Load) -> e2e.Result:
        timeout = min(self.left(), self.args.run_timeout)
        return e2e.run(server, load, self.loop, timeout)

    def main(self, base: str) -> None:
        args = self.args
        print(f"End-to-end benchmark: {_versions()}")
        print(
            f"  {platform.system()} {platform.release()}, {os.cpu_count()} CPUs,"
            f" load average {_load()}"
        )
        print(f"  Maildirs and spools under {base} ({e2e.filesystemOf(base)})")
        if args.servers:
            self.localDelivery(base)
        self.queueBench(base)
        print(f"  load average at the end: {_load()}")

    def localDelivery(self, base: str) -> None:
        """
        Start the servers, run the rounds, print the table and the
        headline, stop the servers.
        """
        args = self.args
        recipients = e2e.recipients(args.connections)
        messages = [sb.stuff(sb.makeMessage(args.size, seed)) for seed in range(16)]
        servers = self.startAll(base, recipients)
        print("  servers:")
        for server in servers:
            print(f"    {server.name + ':':<16} {server.describe()}")
        for note in self.notes:
            print(f"  {note}")
        rounds = 1 if args.quick else args.rounds
        count = args.messages
        print(
            f"  {count} messages of {args.size // KIB} KiB over {args.connections}"
            f" connections, {rounds} round(s) interleaved, medians"
        )
        print(flush=True)
        results: dict[str, list[e2e.Result]] = {s.name: [] for s in servers}
        if servers:
            warm = e2e.Load(messages, 50, 5, recipients, args.op_timeout)
            for server in servers:
                self.run(server, warm)
            for number in range(rounds):
                shift = number % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    load = e2e.Load(
                        messages, count, args.connections, recipients, args.op_timeout
                    )
                    results[server.name].append(self.run(server, load))
                print(f"  round {number + 1}/{rounds} done", flush=True)
            print()
            self.report(servers, results)
            self.headline(results)
        for server in servers:
            server.stop()
        self.servers.clear()
        if args.profile and servers and servers[0].name == "ours":
            print(f"Our server ran under cProfile: {args.profile}")
            print(sb.profileSummary(args.profile, limit=25))
            print(flush=True)

    def report(
        self, servers: Sequence[e2e.Server], results: dict[str, list[e2e.Result]]
    ) -> None:
        size = self.args.size
        print(
            f"Local delivery, {self.args.messages} x {size // KIB} KiB,"
            f" {self.args.connections} connections"
        )
        print(
            f"  {'server':<15} {'accepted/s':>10} {'(min-max)':>11}"
            f" {'delivered/s':>11} {'MiB/s':>6} {'CPU ms/msg':>10} {'sys':>4}"
            f" {'peak RSS':>10} {'loop CPU':>8} {'client CPU':>10}"
        )
        for server in servers:
            rs = results[server.name]
            accepted = statistics.median(r.acceptedRate for r in rs)
            delivered = statistics.median(r.deliveredRate for r in rs)
            spread = f"({min(r.acceptedRate for r in rs):.0f}-"
            spread += f"{max(r.acceptedRate for r in rs):.0f})"
            cpu = statistics.median(r.cpuPerMessage for r in rs)
            system = statistics.median(r.systemShare for r in rs)
            peak = max(r.peakRSS for r in rs)
            client = statistics.median(r.clientCPU / r.accepted for r in rs)
            loops = [r.loopCPU / r.delivered for r in rs if r.loopCPU is not None]
            loop = f"{100 * statistics.median(loops):7.0f}%" if loops else f"{'-':>8}"
            print(
                f"  {server.name:<15} {accepted:10.0f} {spread:>11}"
                f" {delivered:11.0f} {delivered * size / MIB:6.1f}"
                f" {1000 * cpu:10.3f} {100 * system:4.0f}%"
                f" {peak / MIB:6.1f} MiB {loop} {100 * client:9.0f}%"
            )
        stored = ", ".join(
            f"{name} {sum(r.stored for r in rs)}" for name, rs in results.items()
        )
        print(f"  files counted in new/ over all rounds (checked each run): {stored}")
        print(flush=True)

    def headline(self, results: dict[str, list[e2e.Result]]) -> None:
        """
        Each of our servers over each peer: throughput (delivered; for
        Postfix both rates) and CPU per message, with the target.
        """
        ours = [name for name in OURS if name in results]
        peers = [name for name in results if name not in OURS]
        if not ours or not peers:
            return
        print("Headline: ours / peer (CPU per message: peer / ours, higher is better)")

        def median(name: str, attribute: str) -> float:
            return float(
                statistics.median(getattr(r, attribute) for r in results[name])
            )

        for mine in ours:
            rate = median(mine, "deliveredRate")
            cpu = median(mine, "cpuPerMessage")
            for peer in peers:
                label = f"{mine}/{peer}"
                cpuRatio = median(peer, "cpuPerMessage") / max(cpu, 1e-9)
                if peer == "postfix":
                    accepted = rate / median(peer, "acceptedRate")
                    delivered = rate / median(peer, "deliveredRate")
                    print(
                        f"  {label:<24} {accepted:5.2f}x its accepted rate,"
                        f" {delivered:5.2f}x its delivered rate;"
                        f" CPU {cpuRatio:5.2f}x"
                    )
                    continue
                speed = rate / median(peer, "deliveredRate")
                mark = ""
                if peer == "aiosmtpd":
                    verdict = "met" if speed >= AIOSMTPD_TARGET else "NOT met"
                    mark = f"  (target >= {AIOSMTPD_TARGET:.1f}x: {verdict})"
                print(
                    f"  {label:<24} {speed:5.2f}x throughput;"
                    f" CPU {cpuRatio:5.2f}x{mark}"
                )
        print(flush=True)

    def queueBench(self, base: str) -> None:
        print("Outbound queue, to a discarding SMTP server on loopback")
        if not self.args.queue_messages:
            print("  skipped (--queue-messages 0)")
            return
        why = queueMissing()
        if why is not None:
            print(f"  not measured: {why}")
            print(flush=True)
            return
        directory = os.path.join(base, "queue")
        os.makedirs(directory)
        result = runQueueBench(
            directory,
            self.args.queue_messages,
            self.args.size,
            timeout=min(self.left(), self.args.run_timeout),
            profile=self.args.queue_profile,
        )
        print(result.describe(QUEUE_TARGET))
        if self.args.queue_profile:
            print(f"  the queue process ran under cProfile: {self.args.queue_profile}")
            print(sb.profileSummary(self.args.queue_profile, limit=20))
        print(flush=True)

    def stopAll(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            except Exception as error:
                print(f"  could not stop {server.name}: {error}", file=sys.stderr)
        self.servers.clear()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=10 * KIB)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--servers",
        type=sb.commaList(SERVERS, "server"),
        default=list(SERVERS),
        help=f"comma-separated, from {','.join(SERVERS)} (default all)",
    )
    parser.add_argument("--queue-messages", type=int, default=None)
    parser.add_argument(
        "--queue-only", action="store_true", help="measure the queue only"
    )
    parser.add_argument(
        "--ours-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="one more option for gomail-smtp (repeatable), such as"
        " --ours-option=--no-dkim",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="PATH",
        help="run ours (gomail-smtp) under cProfile, dump the stats to PATH"
        " (its rates are then skewed)",
    )
    parser.add_argument(
        "--queue-profile",
        default=None,
        metavar="PATH",
        help="run the queue process under cProfile, dump the stats to PATH",
    )
    parser.add_argument(
        "--dir", default=None, help="where the Maildirs go (default a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the directories")
    parser.add_argument("--deadline", type=float, default=1200.0)
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--op-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.messages is None:
        args.messages = 300 if args.quick else 2000
    if args.queue_only:
        args.servers = []
    if args.queue_messages is None:
        args.queue_messages = 300 if args.quick else 2000
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    if not 1 <= args.connections <= 100:
        parser.error("--connections must be between 1 and 100")
    if not 1 <= args.messages <= 100_000 or args.queue_messages > 100_000:
        parser.error("--messages must be between 1 and 100000")
    if args.size < 400:
        parser.error("--size must be at least 400")

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    base = tempfile.mkdtemp(prefix="e2ebench-", dir=args.dir)
    bench = Bench(args)
    try:
        bench.main(base)
    finally:
        bench.stopAll()
        if args.keep:
            print(f"  kept {base}")
        else:
            e2e.removeTree(base)


if __name__ == "__main__":
    main()
