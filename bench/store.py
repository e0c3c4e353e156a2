# -*- test-case-name: tests.test_maildir_store -*-
"""
Benchmark our Maildir store against the standard library's
C{mailbox.Maildir}, side by side in one process, on folders of 1,000 and
50,000 messages, with a bare C{os.scandir} (and bare renames, unlinks and
synced writes) as the floor.

Each implementation gets its own copy of the same folder: the same file
names (C{<time>.M<n>P<pid>Q<n>.bench,S=<size>[,W=<size>]:2,<flags>}, the
size fields as our store writes them) and the same contents, realistic
messages of 2-4 KiB with the line ends our store keeps on disk, written
straight into C{cur/} (70% seen, 5% answered, none flagged or deleted).
Before any timing our store opens its folder once with a throwaway
instance, so the UIDs exist (that first look is timed and reported on its
own, as C{first open ever}).  The page cache is warm throughout: "cold"
means a new store instance, not a cold disk.

The operations, and what stands for each with the standard library:

  - C{open (new instance)}: ours, a new C{MaildirStore}, C{openAccount}
    (untimed) and C{openFolder("INBOX")}; stdlib, a new C{mailbox.Maildir}
    and C{keys()}; floor, C{os.scandir} of C{cur/} and C{new/}, names
    only.
  - C{reopen (unchanged)}: ours, the view closed, C{openFolder} again on
    the same instance; stdlib, C{keys()} again on the same instance, more
    than 2 seconds after its last listing (sooner it always lists again,
    by design, because of 2-second mtime granularity; later it lists again
    only if an mtime changed, but C{keys()} still checks that each file
    exists); floor as above.
  - C{reopen (view open)}: ours, C{openFolder} while another view is
    open; no peer.
  - C{refresh (unchanged)}: ours, C{IFolder.refresh()}; no peer.
  - C{list uid+flags+size}: ours, C{messages()} and a tuple of (UID, flags,
    size) per message; stdlib, which knows no sizes and no UIDs, the
    cheapest fair equivalent: its table of contents (C{_toc}, filled by
    C{keys()}), the flags parsed from each name (what its C{get_flags}
    does) and one C{os.stat} per message for the size.
  - C{flag 1,000}: ours, C{setFlags(uids, ["\\Flagged"], FlagChange.ADD)}
    on 1,000 messages spread over the folder (C{REMOVE} in every other
    round); stdlib, which before Python 3.13 has no flag API but rewriting
    the whole message (C{box[key] = msg}), the cheapest way: what 3.13's
    C{Maildir.add_flag} and C{remove_flag} do, C{_lookup(key)} and one
    C{os.rename} per message (the public methods are used where they
    exist); floor, bare C{os.rename}s.
  - C{expunge 1,000}: each round first adds 1,000 messages to each copy
    (untimed, written straight into C{cur/} and written back with
    C{os.sync}, as a mailbox's messages are on disk, and our view
    refreshed), so the folder holds its size and 1,000; then ours, C{expunge()} after
    C{\\Deleted} was set (untimed) on 1,000 messages spread over it;
    stdlib, C{remove(key)} for each after the C{T} flag was set
    (untimed); floor, bare C{os.unlink}s.
  - C{deliver 1,000}: ours, C{store.deliver([user], message)} one after
    another, each waited for, through the store's own thread pool under
    the real reactor (tmp/, fsync, rename, directory fsync); stdlib,
    C{add(message)} (it fsyncs the file but not C{new/}: reported, not
    compared); floor,
    write, fsync, rename into C{new/} and fsync of C{new/} per message.
    Then ours again with 10 deliveries at once, as concurrent SMTP sessions
    make them (no peer).

Ratios are C{stdlib / ours}: above 1 means ours is faster.  C{ours/floor}
is how many times the floor ours takes.  Opens, lists, flags and
expunges are medians over C{--rounds}, ours, stdlib and the floor taking
turns to go first for flags and expunges; delivery runs once per size
(1,000 messages).  The folders are written back (C{os.sync}) after they
are filled: unlinking a file whose blocks are on disk costs several times
what unlinking one still only in the page cache does.

The targets (issue 8, "Performance"): open and list at least 2x
C{mailbox.Maildir}; flag and expunge at least as fast as it; reopening an
unchanged folder within 2x of the floor; flag, expunge and deliver taking
no more than 1.5x as long at the largest size as at the smallest.  Each is
printed with PASS or SHORT.

Run from the repository root::

    .venv/bin/python bench/store.py                # 1,000 and 50,000
    .venv/bin/python bench/store.py --quick        # 1,000 and 5,000
    .venv/bin/python bench/store.py --sizes 1000,20000 --rounds 3
    .venv/bin/python bench/store.py --profile --sizes 50000  # ours only

C{--profile} runs our cold open, flag and expunge once each under
cProfile, the store given a pool that does its disk work inline (on the
reactor thread, where the profiler sees it), and prints the functions
that took the most time.

The whole run is bounded by C{--deadline} seconds; the folders are made in
a temporary directory (C{--dir} to choose where, C{--keep} to keep them).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The helpers, after everything else so that no bench script shadows a
# package.
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import mailbox  # noqa: E402

from _storebench import (  # noqa: E402
    InlinePool,
    Layout,
    aclock,
    clock,
    each,
    findInbox,
    floorDeliver,
    inTurn,
    learnLayout,
    makeMessages,
    populate,
    scanFloor,
    show,
    spread,
    stdlibFlag,
    stdlibList,
)
from twisted.internet import task  # noqa: E402
from twisted.internet.defer import (  # noqa: E402
    Deferred,
    DeferredSemaphore,
    gatherResults,
)

from gomail_twisted.maildir.interfaces import (  # noqa: E402
    DELETED,
    FLAGGED,
    INBOX,
    FlagChange,
)

USER = "bench@example.com"
#: How many messages the per-message operations touch.
BATCH = 1000
#: How many deliveries run at once in the concurrent delivery.
CONCURRENT = 10
DEFAULT_STORE = "gomail_twisted.maildir:MaildirStore"


@dataclass
class Row:
    """
    One line of the table: seconds, or L{None} where there is no peer.
    """

    key: str
    operation: str
    size: int
    ours: float | None
    stdlib: float | None = None
    floor: float | None = None
    compared: bool = True
    note: str = ""
    batch: int = 1


@dataclass
class Bench:
    """
    One benchmark run under the reactor.
    """

    args: argparse.Namespace
    reactor: Any
    storeClass: Callable[..., Any]
    rows: list[Row] = field(default_factory=list)
    stores: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.args.deadline

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TimeoutError("the benchmark's deadline has passed")

    def newStore(self, root: str, inline: bool = False) -> Any:
        """
        @param inline: do the store's disk work on the reactor thread (for
            the profiler), not in its pool.
        """
        if inline:
            store = self.storeClass(root, reactor=self.reactor, threadPool=InlinePool())
        else:
            store = self.storeClass(root, reactor=self.reactor)
        self.stores.append(store)
        return store

    async def profile(self, base: str, count: int, layout: Layout) -> None:
        """
        Profile our cold open, flag and expunge on a folder of C{count}
        messages, the disk work done inline so the profiler sees it.
        """
        messages = makeMessages(16, layout.crlf)
        root = os.path.join(base, f"profile-{count}")
        store = self.newStore(root, inline=True)
        account = await store.openAccount(USER, create=True)
        await store.deliver([USER], messages[0])
        inbox = findInbox(root)
        populate([inbox], range(1, count), messages, layout)
        (await account.openFolder(INBOX)).close()
        fresh = self.newStore(root, inline=True)
        account = await fresh.openAccount(USER)
        batch = min(BATCH, count)
        profiler = cProfile.Profile()
        profiler.enable()
        folder = await account.openFolder(INBOX)
        profiler.disable()
        show(profiler, f"open (new instance), {count} messages", self.args.profile_rows)
        infos = list(folder.messages())
        uids = [m.uid for m in spread(infos, batch)]
        profiler = cProfile.Profile()
        profiler.enable()
        await folder.setFlags(uids, [FLAGGED], FlagChange.ADD)
        profiler.disable()
        show(profiler, f"flag {batch}, {count} messages", self.args.profile_rows)
        uids = [m.uid for m in spread(infos, batch, offset=1)]
        await folder.setFlags(uids, [DELETED], FlagChange.ADD)
        profiler = cProfile.Profile()
        profiler.enable()
        await folder.expunge()
        profiler.disable()
        show(profiler, f"expunge {batch}, {count} messages", self.args.profile_rows)
        folder.close()

    async def closeStores(self) -> None:
        """
        Stop every store made, if the store has a way to be stopped.
        """
        for store in self.stores:
            for name in ("close", "stopService"):
                stop = getattr(store, name, None)
                if stop is not None:
                    result = stop()
                    if isinstance(result, Deferred):
                        await result
                    break
        self.stores.clear()

    async def layout(self, base: str) -> Layout:
        root = os.path.join(base, "probe")
        store = self.newStore(root)
        await store.openAccount(USER, create=True)
        [message] = makeMessages(1, crlf=True)
        await store.deliver([USER], message)
        return learnLayout(findInbox(root), message)

    async def size(self, base: str, count: int, layout: Layout) -> None:
        """
        Time every operation on folders of C{count} messages.
        """
        rounds = self.args.rounds
        messages = makeMessages(16, layout.crlf)
        root = os.path.join(base, f"ours-{count}")
        store = self.newStore(root)
        await store.openAccount(USER, create=True)
        # One delivery shows where the account's INBOX lives on disk.
        await store.deliver([USER], messages[0])
        inbox = findInbox(root)
        stdlibDir = os.path.join(base, f"stdlib-{count}")
        floorDir = os.path.join(base, f"floor-{count}")
        # Our INBOX holds the one message delivered besides, so it gets one
        # fewer; the others get it as the first of theirs.
        started = time.perf_counter()
        populate([inbox, stdlibDir, floorDir], range(1, count), messages, layout)
        populate([stdlibDir, floorDir], range(1), messages, layout)
        os.sync()
        print(
            f"  {count}: populated three folders in"
            f" {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        self.check()

        account = await store.openAccount(USER)
        first, folder = await aclock(lambda: account.openFolder(INBOX))
        assert len(folder.messages()) == count, len(folder.messages())
        folder.close()
        self.rows.append(
            Row("first", "first open ever (UIDs)", count, first, compared=False)
        )
        self.check()

        # Opening with a new instance.
        ours: list[float] = []
        for _ in range(rounds):
            fresh = self.newStore(root)
            freshAccount = await fresh.openAccount(USER)
            seconds, view = await aclock(partial(freshAccount.openFolder, INBOX))
            ours.append(seconds)
            view.close()
            self.check()
        theirs: list[float] = []
        box = mailbox.Maildir(stdlibDir, factory=None, create=False)
        for _ in range(rounds):
            start = time.perf_counter()
            box = mailbox.Maildir(stdlibDir, factory=None, create=False)
            keys = box.keys()
            theirs.append(time.perf_counter() - start)
        assert len(keys) == count, len(keys)
        floor = [clock(lambda: scanFloor(floorDir)) for _ in range(rounds)]
        openFloor = statistics.median(floor)
        self.rows.append(
            Row(
                "open",
                "open (new instance)",
                count,
                statistics.median(ours),
                statistics.median(theirs),
                openFloor,
            )
        )
        self.check()

        # Reopening, unchanged.
        folder = await account.openFolder(INBOX)
        ours = []
        for _ in range(rounds):
            folder.close()
            seconds, folder = await aclock(lambda: account.openFolder(INBOX))
            ours.append(seconds)
        others = []
        for _ in range(rounds):
            seconds, view = await aclock(lambda: account.openFolder(INBOX))
            others.append(seconds)
            view.close()
        refreshes = []
        for _ in range(rounds):
            seconds, _ignored = await aclock(folder.refresh)
            refreshes.append(seconds)
        theirs = []
        for _ in range(rounds):
            # Within 2 seconds of its last listing, mailbox.Maildir lists
            # again whatever the mtimes say; give it its best case.
            wait = 2.2 + box._skewfactor - (time.time() - box._last_read)  # type: ignore[attr-defined]
            if wait > 0:
                time.sleep(min(wait, 3.0))
            theirs.append(clock(box.keys))
        self.rows.append(
            Row(
                "reopen",
                "reopen (unchanged)",
                count,
                statistics.median(ours),
                statistics.median(theirs),
                openFloor,
            )
        )
        self.rows.append(
            Row(
                "reopen-view",
                "reopen (view open)",
                count,
                statistics.median(others),
                None,
                openFloor,
            )
        )
        self.rows.append(
            Row(
                "refresh",
                "refresh (unchanged)",
                count,
                statistics.median(refreshes),
                None,
                openFloor,
            )
        )
        self.check()

        # Listing UIDs, flags and sizes.
        ours = [
            clock(lambda: [(m.uid, m.flags, m.size) for m in folder.messages()])
            for _ in range(rounds)
        ]
        box.keys()
        theirs = [clock(lambda: stdlibList(box)) for _ in range(rounds)]
        self.rows.append(
            Row(
                "list",
                "list uid+flags+size",
                count,
                statistics.median(ours),
                statistics.median(theirs),
            )
        )
        self.check()

        # A flag on 1,000 messages spread over the folder (all of a smaller
        # one); then 1,000 others expunged.
        batch = min(BATCH, count)
        infos = list(folder.messages())
        keys = sorted(box.keys())
        cur = os.path.join(floorDir, "cur")
        floorNames = sorted(os.listdir(cur))
        uids = [m.uid for m in spread(infos, batch)]
        flagKeys = spread(keys, batch)
        flagged = spread(range(len(floorNames)), batch)

        def renames(add: bool) -> None:
            for i in flagged:
                old = os.path.join(cur, floorNames[i])
                floorNames[i] = floorNames[i] + "F" if add else floorNames[i][:-1]
                os.rename(old, os.path.join(cur, floorNames[i]))

        # Rounds add the flag and take it off in turn, so each changes every
        # message; the three take turns going first.
        ours, theirs, floor = [], [], []
        for number in range(rounds):
            add = number % 2 == 0
            change = FlagChange.ADD if add else FlagChange.REMOVE

            async def oursFlag(add: bool = add, change: FlagChange = change) -> None:
                seconds, update = await aclock(
                    partial(folder.setFlags, uids, [FLAGGED], change)
                )
                assert len(update.updated) == batch, len(update.updated)
                ours.append(seconds)

            async def theirFlag(add: bool = add) -> None:
                flag = partial(stdlibFlag, box, flag="F", add=add)
                theirs.append(clock(each(flag, flagKeys)))

            async def floorFlag(add: bool = add) -> None:
                floor.append(clock(partial(renames, add)))

            await inTurn(number, [oursFlag, theirFlag, floorFlag])
            self.check()
        self.rows.append(
            Row(
                "flag",
                f"flag {batch:,}",
                count,
                statistics.median(ours),
                statistics.median(theirs),
                statistics.median(floor),
                batch=batch,
            )
        )

        # Expunging: each round first adds 1,000 messages (untimed, written
        # back to disk as a mailbox's messages are), then expunges 1,000
        # spread over the folder, so every round finds the folder as large
        # (its size and 1,000) and leaves it as it was.
        ours, theirs, floor = [], [], []
        for number in range(rounds):
            first = count + number * batch
            populate(
                [inbox, stdlibDir, floorDir],
                range(first, first + batch),
                messages,
                layout,
            )
            os.sync()
            await folder.refresh()
            uids = [m.uid for m in spread(list(folder.messages()), batch, number)]
            await folder.setFlags(uids, [DELETED], FlagChange.ADD)
            goneKeys = spread(sorted(box.keys()), batch, number)
            for key in goneKeys:
                stdlibFlag(box, key, "T")
            goneNames = spread(sorted(os.listdir(cur)), batch, number)

            async def oursExpunge() -> None:
                seconds, gone = await aclock(folder.expunge)
                assert len(gone) == batch, len(gone)
                ours.append(seconds)

            async def theirExpunge(goneKeys: list[str] = goneKeys) -> None:
                theirs.append(clock(each(box.remove, goneKeys)))

            async def floorExpunge(goneNames: list[str] = goneNames) -> None:
                unlink = each(lambda n: os.unlink(os.path.join(cur, n)), goneNames)
                floor.append(clock(unlink))

            await inTurn(number, [oursExpunge, theirExpunge, floorExpunge])
            self.check()
        self.rows.append(
            Row(
                "expunge",
                f"expunge {batch:,}",
                count,
                statistics.median(ours),
                statistics.median(theirs),
                statistics.median(floor),
                batch=batch,
            )
        )
        self.check()

        # Delivering 1,000.
        async def deliverAll() -> None:
            for n in range(batch):
                await store.deliver([USER], messages[n % len(messages)])

        start = time.perf_counter()
        await Deferred.fromCoroutine(deliverAll())
        seconds = time.perf_counter() - start
        theirSeconds = clock(
            lambda: [box.add(messages[n % len(messages)]) for n in range(batch)]
        )
        floorSeconds = clock(lambda: floorDeliver(floorDir, messages, batch))
        self.rows.append(
            Row(
                "deliver",
                f"deliver {batch:,}",
                count,
                seconds,
                theirSeconds,
                floorSeconds,
                compared=False,
                note="stdlib: no fsync of new/",
                batch=batch,
            )
        )
        self.check()

        # Delivering 1,000 again, 10 at once, as concurrent SMTP sessions do.
        semaphore = DeferredSemaphore(CONCURRENT)
        start = time.perf_counter()
        await gatherResults(
            [
                semaphore.run(store.deliver, [USER], messages[n % len(messages)])
                for n in range(batch)
            ]
        )
        self.rows.append(
            Row(
                "deliver-concurrent",
                f"deliver {batch:,}, {CONCURRENT} at once",
                count,
                time.perf_counter() - start,
                compared=False,
                batch=batch,
            )
        )
        folder.close()
        await self.closeStores()

    def report(self) -> int:
        print()
        print(
            f"  {'operation':<27}{'messages':>9}{'ours (s)':>11}{'stdlib (s)':>12}"
            f"{'floor (s)':>11}{'stdlib/ours':>13}{'ours/floor':>12}"
        )

        def cell(x: float | None, width: int) -> str:
            return f"{x:>{width}.5f}" if x is not None else f"{'-':>{width}}"

        for r in self.rows:
            ratio = (
                f"{r.stdlib / r.ours:>12.2f}x"
                if r.ours and r.stdlib is not None
                else f"{'-':>13}"
            )
            toFloor = (
                f"{r.ours / r.floor:>11.2f}x"
                if r.ours is not None and r.floor
                else f"{'-':>12}"
            )
            print(
                f"  {r.operation:<27}{r.size:>9}{cell(r.ours, 11)}"
                f"{cell(r.stdlib, 12)}{cell(r.floor, 11)}{ratio}{toFloor}"
                + (f"  ({r.note})" if r.note else "")
            )
        print()
        print("Targets (issue 8)")
        short = 0

        def verdict(label: str, value: float, target: float, above: bool) -> None:
            nonlocal short
            met = value >= target if above else value <= target
            short += not met
            sign = ">=" if above else "<="
            print(
                f"  {label:<44} {value:7.2f}x  (target {sign} {target:g}x)"
                f"  {'PASS' if met else 'SHORT'}"
            )

        byKey = {(r.key, r.size): r for r in self.rows}
        sizes = sorted({r.size for r in self.rows})
        for size in sizes:
            for op, target in (
                ("open", 2.0),
                ("list", 2.0),
                ("flag", 1.0),
                ("expunge", 1.0),
            ):
                row = byKey.get((op, size))
                if row and row.ours and row.stdlib is not None:
                    verdict(
                        f"{op} {size}: stdlib / ours",
                        row.stdlib / row.ours,
                        target,
                        True,
                    )
            row = byKey.get(("reopen", size))
            if row and row.ours is not None and row.floor:
                verdict(
                    f"reopen {size}: ours / floor", row.ours / row.floor, 2.0, False
                )
        if len(sizes) > 1:
            small, large = sizes[0], sizes[-1]
            for op in ("flag", "expunge", "deliver"):
                a, b = byKey.get((op, small)), byKey.get((op, large))
                if a and b and a.ours and b.ours is not None:
                    # Per message: a small folder may have had fewer to touch.
                    perA = a.ours / a.batch
                    perB = b.ours / b.batch
                    verdict(
                        f"{op} per message: {large} / {small}", perB / perA, 1.5, False
                    )
                    if a.floor and b.floor:
                        # The file system's own cost moves too; this shows
                        # how much of the change is ours.
                        print(
                            f"  {'':<44} (ours/floor {a.ours / a.floor:.2f}x at"
                            f" {small}, {b.ours / b.floor:.2f}x at {large})"
                        )
        print(f"  {'all targets met' if not short else f'{short} target(s) SHORT'}")
        return short


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    if not sizes or sizes[0] < 10 or sizes[-1] > 1_000_000:
        raise argparse.ArgumentTypeError("sizes between 10 and 1,000,000")
    return sizes


def _filesystem(path: str) -> str:
    best = ("?", "")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if (
                len(parts) > 2
                and path.startswith(parts[1])
                and len(parts[1]) >= len(best[1])
            ):
                best = (parts[2], parts[1])
    return best[0]


async def run(reactor: Any, args: argparse.Namespace) -> None:
    module, _, name = args.store.partition(":")
    storeClass = getattr(importlib.import_module(module), name)
    from importlib.metadata import version

    base = tempfile.mkdtemp(prefix="storebench-", dir=args.dir)
    print(
        f"Maildir store benchmark: Python {platform.python_version()},"
        f" Twisted {version('Twisted')}, {platform.system()} {platform.release()},"
        f" {os.cpu_count()} CPUs"
    )
    print(f"  store: {args.store}; folders in {base} ({_filesystem(base)})")
    bench = Bench(args, reactor, storeClass)
    try:
        layout = await bench.layout(base)
        print(
            f"  on disk: {'CRLF' if layout.crlf else 'LF'} line ends,"
            f" S= {layout.sizeField or 'absent'},"
            f" W= {'present' if layout.wideField else 'absent'}"
            f" (sample name {layout.sample!r})"
        )
        if not args.profile:
            print(f"  {args.rounds} round(s) for opens and lists, medians", flush=True)
        if args.profile:
            await bench.profile(base, args.sizes[-1], layout)
            return
        for count in args.sizes:
            await bench.size(base, count, layout)
    finally:
        await bench.closeStores()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    short = bench.report()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average at the end: {load}")
    if short and args.strict:
        raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="folders of 1,000 and 5,000, 3 rounds"
    )
    parser.add_argument("--sizes", type=_sizes, default=None, help="default 1000,50000")
    parser.add_argument("--rounds", type=int, default=None, help="default 5")
    parser.add_argument("--deadline", type=float, default=1800.0)
    parser.add_argument("--dir", default=None, help="where to make the folders")
    parser.add_argument("--keep", action="store_true", help="keep the folders")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile ours (open, flag, expunge) at the largest size instead",
    )
    parser.add_argument("--profile-rows", type=int, default=15)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is short"
    )
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"module:class of the store to measure (default {DEFAULT_STORE})",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [1000, 5000] if args.quick else [1000, 50_000]
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be between 1 and 50")
    task.react(lambda reactor: Deferred.fromCoroutine(run(reactor, args)))


if __name__ == "__main__":
    main()
