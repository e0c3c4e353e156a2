"""
Benchmark our IMAP4 server against twisted.mail's (and Dovecot's, when
installed and run as root), on the same messages, in one run.

One user's account, written once as a Maildir (LF line ends on disk, every
message in C{cur/}), served by:

  - ours: C{IMAP4ServerFactory(StoreBackend(UsersChecker(...),
    MaildirStore(root)))} with plain-text logins allowed, a users file whose
    argon2 hash is made with cheap parameters, in its own process, over its
    own copy of the Maildir (it writes its UID list and caches beside the
    messages);
  - twisted.mail: its C{IMAP4Server} behind a portal (in-memory password
    check) whose realm gives a C{MemoryAccount} of in-memory mailboxes
    holding the same messages as bytes with their flags (twisted.mail has
    no Maildir IMAP mailbox), read from the Maildir before it listens; a
    message's headers and MIME parts are parsed at their first use and
    kept.  Its SEARCH is its own (every message through C{IMessage}).
    Memory favours twisted.mail: no disk, no cache to check;
  - Dovecot's imap (C{apt-get install dovecot-imapd}), started on loopback
    with a configuration of its own (passwd-file, PLAIN), over its own copy
    of the Maildir; its index is built at its first SELECT of each folder.

The workload, each step timed on each server in turn:

  1. SELECT of a 10,000-message INBOX, several times;
  2. C{UID FETCH 1:* (UID FLAGS RFC822.SIZE)} on it;
  3. C{FETCH 1:* BODY.PEEK[]} of a folder of 1,000 messages of 10 KiB, and
     of one of 20 messages of 5 MiB;
  4. C{FETCH 1:* BODYSTRUCTURE} of a folder of 500 MIME messages (made with
     the standard library's C{email}: multipart/alternative, attachments, a
     forwarded message, related parts, quoted-printable text);
  5. C{SEARCH FROM}, C{SEARCH HEADER Subject} and C{SEARCH BODY} on INBOX;
  6. 10 concurrent sessions, each a client process repeating a mail
     client's visit (connect and LOGIN, SELECT, C{UID FETCH 1:* (FLAGS)},
     C{FETCH n BODY.PEEK[]} of three recent messages, C{STORE n +FLAGS
     (\\Seen)} on each, NOOP, C{SEARCH UNSEEN}, LOGOUT) on a folder of
     1,000 messages for a fixed time: commands per second.

Steps 1 to 5 run in one client process per step and server (a fresh
session each), one command at a time (no pipelining); each command runs
several times, the first on a server that has not yet served it (cold:
ours' structure and size caches, Dovecot's index, twisted.mail's parse) and
the rest warm (their median).  A command the server refuses (NO or BAD) is
reported as failed, and the answers are checked: message counts, octets,
search hits, and each BODYSTRUCTURE against Dovecot's.

The peak RSS of ours and twisted.mail is their process's C{VmHWM} during
the step (reset first through C{/proc/PID/clear_refs}); Dovecot's is the
highest sum of the RSS of all its processes, sampled every quarter second
and once more while the session is still open.

The headline gives ours over each peer in speed (warm), against the
targets: at least 3x twisted.mail on every step, and at least 0.5x Dovecot
on the concurrent mix.

Neither Twisted server turns Nagle's algorithm off: a response written in
several pieces can wait for the client's delayed ACK (40 ms on Linux) at
its end.  C{--nodelay} sets C{TCP_NODELAY} on both to show what that costs.

Run from the repository root (as root for Dovecot)::

    .venv/bin/python bench/imap_server.py            # about 3 minutes
    .venv/bin/python bench/imap_server.py --quick    # smoke run, smaller
    .venv/bin/python bench/imap_server.py --no-dovecot --nodelay

The whole run is bounded by C{--deadline} seconds, every session by
C{--session-timeout}; server processes are stopped on any exit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _imapbench as ib
import _smtpbench as sb

KIB = 1024
MIB = 1024 * 1024

#: Ours over twisted.mail's speed, on every step.
TARGET = 3.0
#: Ours over Dovecot's commands per second in the concurrent mix.
DOVECOT_TARGET = 0.5


@dataclass(frozen=True)
class Sizes:
    """
    How big a run is.
    """

    inbox: int
    ten: int
    big: int
    mime: int
    work: int
    selectReps: int
    reps: int
    mixSeconds: float
    clients: int


FULL = Sizes(10_000, 1_000, 20, 500, 1_000, 5, 3, 20.0, 10)
QUICK = Sizes(2_000, 200, 3, 100, 300, 3, 2, 3.0, 10)


@dataclass(frozen=True)
class Row:
    """
    One timed command of a step.

    @ivar kind: what its answer is checked by: C{exists}, C{fetch},
        C{structure} or C{search}.
    @ivar unit: what a rate counts.
    @ivar items: how many of C{unit} one command does.
    @ivar expect: the answer's count (EXISTS, FETCH responses, hits).
    @ivar octets: the literals' octets it must bring, if not 0.
    """

    name: str
    folder: str | None
    command: str
    kind: str
    unit: str
    items: int
    expect: int
    octets: int = 0


@dataclass(frozen=True)
class Step:
    """
    Rows run in one session, one after the other.
    """

    title: str
    rows: tuple[Row, ...]
    reps: int


@dataclass
class Measured:
    """
    One row on one server.
    """

    times: list[float] = field(default_factory=list)
    failed: str | None = None
    count: int = -1
    octets: int = 0
    answers: list[str] | None = None
    peak: int | None = None

    @property
    def cold(self) -> float | None:
        return self.times[0] if self.times else None

    @property
    def warm(self) -> float | None:
        if len(self.times) > 1:
            return statistics.median(self.times[1:])
        return self.cold


@dataclass
class Mix:
    """
    The concurrent mix on one server.
    """

    rate: float = 0.0
    done: int = 0
    failed: int = 0
    cycles: int = 0
    cycleTimes: list[float] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    byOp: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    peak: int | None = None
    clientCPU: float = 0.0
    seconds: float = 0.0


class Target:
    """
    A server the clients talk to: its port, the user's password there, and
    how its memory is read.
    """

    def __init__(
        self,
        kind: str,
        port: int,
        password: str,
        stop: Callable[[], None],
        reset: Callable[[], bool],
        memory: Callable[[], int],
    ) -> None:
        self.kind = kind
        self.port = port
        self.password = password
        self._stop = stop
        self.reset = reset
        self.memory = memory

    def stop(self, timeout: float = 30.0) -> None:
        self._stop()


def _steps(sizes: Sizes, folders: dict[str, ib.Folder]) -> list[Step]:
    inbox, ten, big = folders[ib.INBOX], folders[ib.TEN], folders[ib.BIG]
    mime = folders[ib.MIME]
    hits = ib.searchHits(sizes.inbox)
    body = "FETCH 1:* BODY.PEEK[]"
    return [
        Step(
            f"1. SELECT INBOX ({inbox.count} messages)",
            (
                Row(
                    "SELECT INBOX",
                    None,
                    'SELECT "INBOX"',
                    "exists",
                    "SELECT",
                    1,
                    inbox.count,
                ),
            ),
            sizes.selectReps,
        ),
        Step(
            f"2. UID FETCH 1:* (UID FLAGS RFC822.SIZE) on INBOX ({inbox.count})",
            (
                Row(
                    "UID FETCH 1:* (UID FLAGS RFC822.SIZE)",
                    ib.INBOX,
                    "UID FETCH 1:* (UID FLAGS RFC822.SIZE)",
                    "fetch",
                    "msg",
                    inbox.count,
                    inbox.count,
                ),
            ),
            sizes.reps,
        ),
        Step(
            f"3a. {body} of {ten.count} messages of 10 KiB",
            (
                Row(
                    f"{body} {ten.count} x 10 KiB",
                    ib.TEN,
                    body,
                    "fetch",
                    "msg",
                    ten.count,
                    ten.count,
                    ten.octets,
                ),
            ),
            sizes.reps,
        ),
        Step(
            f"3b. {body} of {big.count} messages of 5 MiB",
            (
                Row(
                    f"{body} {big.count} x 5 MiB",
                    ib.BIG,
                    body,
                    "fetch",
                    "msg",
                    big.count,
                    big.count,
                    big.octets,
                ),
            ),
            sizes.reps,
        ),
        Step(
            f"4. FETCH 1:* BODYSTRUCTURE of {mime.count} MIME messages",
            (
                Row(
                    "FETCH 1:* BODYSTRUCTURE",
                    ib.MIME,
                    "FETCH 1:* BODYSTRUCTURE",
                    "structure",
                    "msg",
                    mime.count,
                    mime.count,
                ),
            ),
            sizes.reps,
        ),
        Step(
            f"5. SEARCH on INBOX ({inbox.count} messages)",
            tuple(
                Row(
                    name,
                    ib.INBOX,
                    command,
                    "search",
                    "search",
                    1,
                    hits[name],
                )
                for name, (command, _) in ib.SEARCHES.items()
            ),
            sizes.reps,
        ),
    ]


def _freePorts() -> int:
    """
    A port whose next one is free too (Dovecot's IMAP and POP3).
    """
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row on 127.0.0.1")


def _facts() -> list[str]:
    from importlib.metadata import version

    model = ""
    memory = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            memory = f", {kib / MIB:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    dovecot = ""
    if shutil.which("dovecot"):
        done = subprocess.run(
            ["dovecot", "--version"], capture_output=True, text=True, check=False
        )
        dovecot = f", Dovecot {done.stdout.split()[0]}" if done.stdout else ""
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" Twisted {version('Twisted')}{dovecot}",
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
        f"{f' ({model})' if model else ''}{memory}",
    ]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return f"{'-':>10}"
    return f"{1000 * seconds:10.1f}"


def _mib(octets: int | None) -> str:
    return f"{'-':>9}" if octets is None else f"{octets / MIB:9.1f}"


class Bench:
    """
    One benchmark run.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.began = time.monotonic()
        self.deadline = self.began + args.deadline
        self.directory = tempfile.mkdtemp(prefix="imapbench-")
        # Dovecot's mail processes run unprivileged and must reach the store.
        os.chmod(self.directory, 0o755)
        self.kinds: list[str] = list(ib.SERVERS)
        self.note = "Dovecot left out (--no-dovecot)" if args.no_dovecot else ""
        if not args.no_dovecot:
            if shutil.which("dovecot") is None:
                self.note = (
                    "Dovecot skipped: not installed (apt-get install dovecot-imapd)"
                )
            elif os.geteuid() != 0:
                self.note = "Dovecot skipped: it needs root to start here"
            else:
                self.kinds.append("dovecot")
        self.targets: dict[str, Target] = {}

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark's deadline has passed")
        return left

    def prepare(self) -> tuple[dict[str, ib.Folder], dict[str, str]]:
        """
        Write the account once and give ours and Dovecot a copy each;
        twisted.mail reads the original into memory.
        """
        s = self.sizes
        source = os.path.join(self.directory, "source")
        started = time.monotonic()
        folders = ib.writeAccount(source, s.inbox, s.ten, s.big, s.mime, s.work)
        roots = {"twisted.mail": source}
        for kind in self.kinds:
            if kind != "twisted.mail":
                roots[kind] = ib.copyRoot(source, os.path.join(self.directory, kind))
        for root in roots.values():
            ib.warmCache(root)
        made = time.monotonic() - started
        described = ", ".join(
            f"{name} {f.count} ({f.octets / MIB:.1f} MiB)"
            for name, f in folders.items()
        )
        print(f"  messages: {described}; written and copied in {made:.1f} s")
        return folders, roots

    def startTwisted(self, kind: str, root: str, servers: list[Any]) -> None:
        server = ib.IMAPServer.launch(
            kind,
            root,
            os.path.join(self.directory, "users"),
            os.path.join(self.directory, f"{kind}.log"),
            maxSeconds=self.left() + 60,
            timeout=min(self.left(), 120.0),
            nodelay=self.args.nodelay,
        )
        servers.append(server)
        rss = server.memory()[0]
        print(
            f"  {kind}: pid {server.pid}, {server.loop}, ready in"
            f" {server.loadSeconds:.1f} s, RSS {rss / MIB:.1f} MiB",
            flush=True,
        )
        self.targets[kind] = Target(
            kind,
            server.port,
            ib.PASSWORD,
            server.stop,
            server.resetPeak,
            lambda: server.memory()[1],
        )

    def startDovecot(self, root: str, servers: list[Any]) -> None:
        import _interop

        _interop.handOver(root)
        base = os.path.join(self.directory, "dovecot-run")
        os.makedirs(base)
        dovecot = _interop.Dovecot(base, root, [ib.USER], _freePorts())
        with open(dovecot.conf, "a") as f:
            # Ten sessions of one user from one address, and the next
            # cycle's login before the last one's process has gone.
            f.write("protocol imap {\n  mail_max_userip_connections = 100\n}\n")
        target = Target(
            "dovecot",
            dovecot.imapPort,
            _interop.PASSWORD,
            dovecot.stop,
            lambda: False,
            lambda: ib.treeMemory(dovecot.process.pid)[0],
        )
        servers.append(target)
        dovecot.start()
        self.targets["dovecot"] = target
        rss = target.memory()
        print(
            f"  dovecot: pid {dovecot.process.pid} and children, RSS {rss / MIB:.1f}"
            " MiB (all processes)",
            flush=True,
        )

    def runStep(self, step: Step, target: Target) -> dict[str, Measured]:
        plan = [
            {
                "name": row.name,
                "folder": row.folder,
                "command": row.command,
                "kind": row.kind,
            }
            for row in step.rows
        ]
        timeout = min(self.left(), self.args.session_timeout)
        peak = 0
        sampling = target.kind == "dovecot"

        def sample() -> None:
            nonlocal peak
            peak = max(peak, target.memory())

        reset = target.reset()
        command = ib.clientCommand(
            "rows",
            target.port,
            target.password,
            plan=json.dumps(plan),
            reps=step.reps,
            timeout=max(timeout - 10, 5),
        )
        report = ib.runClients([command], timeout, sample if sampling else _nothing)[0]
        sample()
        measured = {}
        for row in step.rows:
            m = Measured(peak=peak if (reset or sampling) else None)
            if "error" in report:
                m.failed = f"client: {report['error'][-160:]}"
            else:
                got = report["rows"][row.name]
                m.times = got["times"]
                m.failed = got["failed"]
                m.count = got["count"]
                m.octets = got["octets"]
                m.answers = got.get("answers")
            measured[row.name] = m
        return measured

    def runMix(self, target: Target) -> Mix:
        s = self.sizes
        grace = 30.0
        timeout = min(self.left(), s.mixSeconds + grace + 30.0)
        commands = [
            ib.clientCommand(
                "mix",
                target.port,
                target.password,
                folder=ib.WORK,
                duration=s.mixSeconds,
                grace=grace,
                seed=index,
                timeout=timeout,
            )
            for index in range(s.clients)
        ]
        peak = 0
        sampling = target.kind == "dovecot"

        def sample() -> None:
            nonlocal peak
            peak = max(peak, target.memory())

        reset = target.reset()
        reports = ib.runClients(
            commands, timeout, sample if sampling else _nothing, go=True
        )
        sample()
        mix = Mix(peak=peak if (reset or sampling) else None)
        byOp: collections.Counter[str] = collections.Counter()
        for report in reports:
            if "error" in report:
                mix.errors.append(report["error"][-200:])
                continue
            done = sum(report["done"].values())
            mix.rate += done / report["seconds"]
            mix.done += done
            mix.failed += sum(report["failed"].values())
            byOp.update({k: v for k, v in report["failed"].items() if v})
            mix.cycles += report["cycles"]
            mix.cycleTimes += report["cycleTimes"]
            mix.clientCPU += report["clientCPU"]
            mix.seconds = max(mix.seconds, report["seconds"])
            for op, reason in report["reasons"].items():
                mix.reasons.setdefault(op, reason)
        mix.byOp = dict(byOp)
        return mix

    def main(self, servers: list[Any]) -> None:
        args = self.args
        s = self.sizes
        print("IMAP4 server benchmark")
        for line in _facts():
            print(f"  {line}")
        print(f"  load average at the start: {_load()}")
        print(
            f"  servers: {', '.join(self.kinds)}; {'--quick' if args.quick else 'full'}"
            f" run; a client process per session, one command at a time;"
            f" Nagle {'off (--nodelay)' if args.nodelay else 'as shipped'}"
        )
        print(
            "  twisted.mail serves in-memory mailboxes (no Maildir IMAP mailbox"
            " in twisted.mail): that favours it"
        )
        if self.note:
            print(f"  {self.note}")
        try:
            folders, roots = self.prepare()
            for kind in list(self.kinds):
                if kind != "dovecot":
                    self.startTwisted(kind, roots[kind], servers)
                    continue
                try:
                    self.startDovecot(roots[kind], servers)
                except (RuntimeError, OSError) as e:
                    self.kinds.remove(kind)
                    print(f"  Dovecot skipped: it did not start: {e}")
            print(flush=True)
            results: dict[tuple[str, str], Measured] = {}
            steps = _steps(s, folders)
            for step in steps:
                started = time.monotonic()
                for kind in self.kinds:
                    measured = self.runStep(step, self.targets[kind])
                    for name, m in measured.items():
                        results[name, kind] = m
                self.reportStep(step, results, time.monotonic() - started)
            started = time.monotonic()
            mixes = {}
            for kind in self.kinds:
                mixes[kind] = self.runMix(self.targets[kind])
            self.reportMix(mixes, time.monotonic() - started)
            self.headline(steps, results, mixes)
        finally:
            for target in self.targets.values():
                target.stop()
            shutil.rmtree(self.directory, ignore_errors=True)
        print(
            f"  load average at the end: {_load()};"
            f" {time.monotonic() - self.began:.0f} s in all"
        )

    def check(self, row: Row, kind: str, m: Measured, results: Any) -> str:
        if m.failed:
            return f"FAILED: {m.failed}"
        if m.count != row.expect:
            return f"WRONG: {m.count} answers, not {row.expect}"
        if row.octets and m.octets != row.octets:
            return f"WRONG: {m.octets} octets, not {row.octets}"
        if row.kind == "structure" and kind != "dovecot":
            theirs = results.get((row.name, "dovecot"))
            if theirs is not None and theirs.answers and m.answers:
                same = sum(
                    (
                        collections.Counter(m.answers)
                        & collections.Counter(theirs.answers)
                    ).values()
                )
                return f"ok; {same}/{len(m.answers)} as Dovecot's (but for case)"
        return "ok"

    def reportStep(
        self, step: Step, results: dict[tuple[str, str], Measured], seconds: float
    ) -> None:
        print(f"{step.title}, {step.reps} times on each server ({seconds:.1f} s)")
        for row in step.rows:
            if len(step.rows) > 1:
                print(f"  {row.command}")
            rate = f"{row.unit}/s"
            print(
                f"  {'server':<14} {'cold ms':>10} {'warm ms':>10} {rate:>10}"
                f" {'MiB/s':>7} {'peak RSS':>9}  answer"
            )
            for kind in self.kinds:
                m = results[row.name, kind]
                warm = m.warm
                speed = f"{row.items / warm:10.1f}" if warm else f"{'-':>10}"
                mibps = (
                    f"{m.octets / warm / MIB:7.1f}"
                    if warm and m.octets
                    else f"{'-':>7}"
                )
                print(
                    f"  {kind:<14} {_ms(m.cold)} {_ms(warm)} {speed} {mibps}"
                    f" {_mib(m.peak)}  {self.check(row, kind, m, results)}"
                )
        print(flush=True)

    def reportMix(self, mixes: dict[str, Mix], seconds: float) -> None:
        s = self.sizes
        print(
            f"6. Concurrent mix: {s.clients} sessions for {s.mixSeconds:.0f} s on"
            f" each server, on a folder of {s.work} messages ({seconds:.1f} s)"
        )
        print(
            "  a visit: connect, LOGIN, SELECT, UID FETCH 1:* (FLAGS), 3x FETCH n"
            " BODY.PEEK[], 3x STORE n +FLAGS (\\Seen), NOOP, SEARCH UNSEEN, LOGOUT"
        )
        print(
            f"  {'server':<14} {'cmds/s':>8} {'visits':>7} {'visit p50':>10}"
            f" {'p95 ms':>8} {'failed':>7} {'peak RSS':>9} {'client CPU':>11}"
        )
        for kind in self.kinds:
            mix = mixes[kind]
            times = sorted(mix.cycleTimes)
            p50 = _ms(statistics.median(times)) if times else f"{'-':>10}"
            p95 = f"{1000 * times[int(0.95 * (len(times) - 1))]:8.1f}" if times else "-"
            cpu = mix.clientCPU / max(mix.seconds, 1e-9)
            print(
                f"  {kind:<14} {mix.rate:8.1f} {mix.cycles:7d} {p50} {p95:>8}"
                f" {mix.failed:7d} {_mib(mix.peak)} {100 * cpu:10.0f}%"
            )
            for op, count in mix.byOp.items():
                reason = mix.reasons.get(op, "")
                print(f"      {count} x {op} refused: {reason}")
            if "session" in mix.reasons:
                print(f"      a session broke: {mix.reasons['session']}")
            for error in mix.errors[:3]:
                print(f"      a client failed: {error}")
        print(flush=True)

    def headline(
        self,
        steps: Sequence[Step],
        results: dict[tuple[str, str], Measured],
        mixes: dict[str, Mix],
    ) -> None:
        print(
            f"Headline: ours' speed over each peer's, warm (cold); targets: at least"
            f" {TARGET:.0f}x twisted.mail on every step, {DOVECOT_TARGET}x Dovecot"
            " on the concurrent mix"
        )
        missed = 0
        peers = self.kinds[1:]
        for step in steps:
            for row in step.rows:
                ours = results[row.name, "ours"]
                cells = []
                for peer in peers:
                    theirs = results[row.name, peer]
                    if ours.failed or not ours.times:
                        cells.append(f"{peer}: n/a (ours failed)")
                        if peer == "twisted.mail":
                            missed += 1
                        continue
                    if theirs.failed or not theirs.times:
                        cells.append(f"{peer}: n/a ({peer} failed)")
                        continue
                    assert ours.warm and theirs.warm and ours.cold and theirs.cold
                    speed = theirs.warm / ours.warm
                    cold = theirs.cold / ours.cold
                    cell = f"{peer}: {speed:6.2f}x ({cold:5.2f}x)"
                    if peer == "twisted.mail":
                        met = speed >= TARGET
                        missed += not met
                        cell += " ok" if met else " NO"
                    cells.append(cell)
                print(f"  {row.name:<40} " + "   ".join(cells))
        ours = mixes["ours"]
        cells = []
        for peer in peers:
            theirs = mixes[peer]
            if not theirs.rate or not ours.rate:
                cells.append(f"{peer}: n/a")
                continue
            speed = ours.rate / theirs.rate
            target = TARGET if peer == "twisted.mail" else DOVECOT_TARGET
            met = speed >= target
            missed += not met
            cells.append(f"{peer}: {speed:6.2f}x {'ok' if met else 'NO'}")
        failed = f" ({ours.failed} of ours' commands refused)" if ours.failed else ""
        print(f"  {'concurrent mix, commands/s':<40} " + "   ".join(cells) + failed)
        verdict = "all targets met" if not missed else f"{missed} target(s) NOT met"
        print(f"  {verdict}")
        if not self.args.nodelay:
            print(
                "  (Nagle as shipped: a warm time near 40 ms may be a stall on the"
                " client's delayed ACK; --nodelay shows the servers without it)"
            )
        print(flush=True)


def _nothing() -> None:
    pass


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="seconds for the whole run"
    )
    parser.add_argument(
        "--session-timeout", type=float, default=180.0, help="seconds per session"
    )
    parser.add_argument("--no-dovecot", action="store_true", help="leave Dovecot out")
    parser.add_argument(
        "--nodelay",
        action="store_true",
        help="set TCP_NODELAY on both Twisted servers' connections",
    )
    args = parser.parse_args(argv)
    if not 10 <= args.deadline <= 3600 or not 5 <= args.session_timeout <= 900:
        parser.error("--deadline: 10 to 3600 s; --session-timeout: 5 to 900 s")
    bench = Bench(args)
    sb.withCleanup(bench.main)


if __name__ == "__main__":
    main()
