# -*- test-case-name: tests.test_queue -*-
"""
The queue's scheduler: when each message is tried for each of its
recipient domains, how many attempts run at once, and saving what they
did.

Each (message, domain) with pending recipients has a timer for its next
attempt (on the reactor given, so tests drive it with a C{Clock}).  When
it fires the pair joins its domain's line of ready messages; a delivery
takes up to C{maxBatch} messages (and L{MAX_BATCH_BYTES}) from one line
over one connection, while fewer than C{maxDeliveries} run in all and
fewer than C{maxPerDomain} to that domain.

State changes are saved by a L{StateWriter}, which takes every change made
meanwhile (group commit).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    DeferredLock,
    maybeDeferred,
)
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.delivery import SentMail, Transaction
from gomail_twisted.dkim import RunInThread
from gomail_twisted.queue._attempt import Backoff, Outcome, advanceAll, outcomes
from gomail_twisted.queue._entry import QueuedMessage
from gomail_twisted.queue._notify import Notifier
from gomail_twisted.queue._route import DeliverBatch
from gomail_twisted.queue._spool import Spool
from gomail_twisted.queue._writer import StateWriter

__all__ = ["Scheduler"]

_T = TypeVar("_T")

#: Seconds L{Scheduler.halt} still waits after cancelling deliveries.
_STOP_GRACE = 1.0

#: The most bytes of messages one delivery takes (a single larger message
#: still goes alone): a batch is read into memory whole before it is sent,
#: so without it C{maxDeliveries} batches of C{maxBatch} large messages
#: would hold gigabytes at once.
MAX_BATCH_BYTES = 32 * 2**20


class _Entry:
    """
    A message the running queue holds.

    @ivar message: its current state (ahead of the disk until saved).
    @ivar timers: the pending attempt of each domain.
    @ivar ready: the domains in whose line it waits.
    @ivar busy: the domains with an attempt under way.
    @ivar removed: whether it left the queue.
    @ivar lock: held while its reports are sent, so that none is sent
        twice.
    """

    def __init__(self, message: QueuedMessage) -> None:
        self.message = message
        self.timers: dict[str, IDelayedCall] = {}
        self.ready: set[str] = set()
        self.busy: set[str] = set()
        self.warnTimer: IDelayedCall | None = None
        self.notifyTimer: IDelayedCall | None = None
        self.removed = False
        self.lock = DeferredLock()

    def cancelTimers(self) -> None:
        for timer in [*self.timers.values(), self.warnTimer, self.notifyTimer]:
            if timer is not None and timer.active():
                timer.cancel()
        self.timers.clear()
        self.warnTimer = self.notifyTimer = None


class Scheduler:
    """
    Runs the attempts of a queue's messages (see the module's description).

    @ivar running: whether attempts may start.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        spool: Spool,
        runInThread: RunInThread,
        deliver: DeliverBatch,
        backoff: Backoff,
        notifier: Notifier,
        maxDeliveries: int,
        maxPerDomain: int,
        maxBatch: int,
    ) -> None:
        self._reactor = reactor
        self._spool = spool
        self._thread = runInThread
        self._deliver = deliver
        self._backoff = backoff
        self._notifier = notifier
        self._maxDeliveries = maxDeliveries
        self._maxPerDomain = maxPerDomain
        self._maxBatch = maxBatch
        self.running = False
        self._entries: dict[str, _Entry] = {}
        self._ready: dict[str, deque[_Entry]] = {}
        self._active = 0
        self._activeDomains: Counter[str] = Counter()
        self._tasks: set[Deferred[Any]] = set()
        self._sending: set[Deferred[list[SentMail]]] = set()
        self._pumpCall: IDelayedCall | None = None
        self._writer = StateWriter(
            reactor,
            spool,
            runInThread,
            self.background,
            self._forget,
            backoff.first / 10,
        )

    @property
    def messageCount(self) -> int:
        """
        How many messages are held.
        """
        return len(self._entries)

    def resume(self) -> None:
        """
        Let attempts start (again, after L{halt}), for the messages held
        already too (queued while the spool was being loaded).
        """
        self.running = True
        self._writer.sweeping = True
        for entry in list(self._entries.values()):
            self._schedule(entry)

    def messages(self) -> list[QueuedMessage]:
        """
        @return: the held messages' current states.
        """
        return [e.message for e in self._entries.values()]

    def background(self, d: Deferred[Any], what: str) -> None:
        """
        Keep track of work that L{halt} waits for; log its failure.
        """
        self._tasks.add(d)

        def done(result: object) -> None:
            self._tasks.discard(d)
            if isinstance(result, Failure):
                self._log.failure("Queue: {what} failed", result, what=what)

        d.addBoth(done)

    # -- timers -----------------------------------------------------------

    def track(self, message: QueuedMessage) -> None:
        """
        Hold a message and schedule its attempts.
        """
        if message.queueID in self._entries:
            return
        entry = _Entry(message)
        self._entries[message.queueID] = entry
        if message.unnotified or message.done or self._notifier.warningDue(message):
            self._settleLater(entry)
        self._schedule(entry)

    def _schedule(self, entry: _Entry) -> None:
        if not self.running or entry.removed:
            return
        now = self._reactor.seconds()
        message = entry.message
        for domain, recipients in message.pendingDomains().items():
            if domain in entry.busy or domain in entry.ready:
                continue
            old = entry.timers.pop(domain, None)
            if old is not None and old.active():
                old.cancel()
            when = min(r.nextAttempt for r in recipients)
            entry.timers[domain] = self._reactor.callLater(
                max(0.0, when - now), self._due, entry, domain
            )
        warnAt = self._notifier.warningTime(message)
        if warnAt is not None and entry.warnTimer is None:
            entry.warnTimer = self._reactor.callLater(
                max(0.0, warnAt - now), self._warn, entry
            )

    def _warn(self, entry: _Entry) -> None:
        entry.warnTimer = None
        if not entry.removed:
            self._settleLater(entry)

    def _due(self, entry: _Entry, domain: str) -> None:
        entry.timers.pop(domain, None)
        if entry.removed or not self.running:
            return
        entry.ready.add(domain)
        self._ready.setdefault(domain, deque()).append(entry)
        # Start at the end of this turn, so that what comes due together
        # goes in one batch.
        if self._pumpCall is None:
            self._pumpCall = self._reactor.callLater(0, self._pump)

    def retryNow(self, queueID: str) -> bool:
        """
        Make every pending recipient of a message due now.

        @return: whether it is held.
        """
        entry = self._entries.get(queueID)
        if entry is None:
            return False
        now = self._reactor.seconds()
        entry.message = entry.message.withRecipients(
            {r.address: replace(r, nextAttempt=now) for r in entry.message.pending}
        )
        self._schedule(entry)
        return True

    # -- attempts ----------------------------------------------------------

    def _pump(self) -> None:
        self._pumpCall = None
        progress = True
        while progress and self.running and self._active < self._maxDeliveries:
            progress = False
            for domain in list(self._ready):
                if self._active >= self._maxDeliveries:
                    break
                if self._activeDomains[domain] >= self._maxPerDomain:
                    continue
                line = self._ready[domain]
                batch: list[_Entry] = []
                size = 0
                while line and len(batch) < self._maxBatch:
                    entry = line[0]
                    if (
                        batch
                        and not entry.removed
                        and size + entry.message.size > MAX_BATCH_BYTES
                    ):
                        break
                    line.popleft()
                    entry.ready.discard(domain)
                    if not entry.removed:
                        batch.append(entry)
                        size += entry.message.size
                if not line:
                    del self._ready[domain]
                if batch:
                    self._begin(domain, batch)
                    progress = True

    def _begin(self, domain: str, batch: list[_Entry]) -> None:
        self._active += 1
        self._activeDomains[domain] += 1
        for entry in batch:
            entry.busy.add(domain)
        d = Deferred.fromCoroutine(self._attempt(domain, batch))
        d.addBoth(self._attempted, domain, batch)
        self.background(d, f"delivery to {domain}")

    def _attempted(self, result: _T, domain: str, batch: list[_Entry]) -> _T:
        self._active -= 1
        self._activeDomains[domain] -= 1
        if not self._activeDomains[domain]:
            del self._activeDomains[domain]
        for entry in batch:
            entry.busy.discard(domain)
            self._schedule(entry)
        self._pump()
        self._writer.sweep(busy=bool(self._active))
        return result

    def _read(self, queueIDs: list[str]) -> list[bytes | OSError]:
        out: list[bytes | OSError] = []
        for queueID in queueIDs:
            try:
                out.append(self._spool.readMessage(queueID))
            except OSError as e:
                out.append(e)
        return out

    async def _attempt(self, domain: str, batch: list[_Entry]) -> None:
        ids = [e.message.queueID for e in batch]
        found = await self._thread(partial(self._read, ids))
        sending: list[tuple[_Entry, QueuedMessage, Transaction]] = []
        for entry, data in zip(batch, found, strict=True):
            message = entry.message
            recipients = message.pendingDomains().get(domain, ())
            if isinstance(data, OSError):
                self._unreadable(entry, data)
            elif recipients and not entry.removed:
                addresses = tuple(r.address for r in recipients)
                sending.append(
                    (entry, message, Transaction(message.sender, addresses, data))
                )
        if not sending:
            return
        transactions = [t for _, _, t in sending]
        d = maybeDeferred(self._deliver, domain, transactions)
        self._sending.add(d)
        try:
            sent: list[SentMail] | None = await d
        except CancelledError:
            return
        except Exception:
            self._log.failure("Queue: delivery to {domain} failed", domain=domain)
            sent = None
        finally:
            self._sending.discard(d)
        if sent is not None and len(sent) != len(transactions):
            self._log.error(
                "Queue: delivery to {domain} gave {count} results for {expected} "
                "messages",
                domain=domain,
                count=len(sent),
                expected=len(transactions),
            )
            sent = None
        now = self._reactor.seconds()
        for k, (entry, message, transaction) in enumerate(sending):
            if entry.removed:
                continue
            if sent is None:
                why = Outcome("deferred", text="internal error")
                results = {a: why for a in transaction.recipients}
            else:
                results = outcomes(sent[k], transaction.recipients)
            targets = [
                r for r in entry.message.pending if r.address in transaction.recipients
            ]
            updates = advanceAll(self._backoff, message.created, targets, results, now)
            entry.message = entry.message.withRecipients(updates)
            for r in updates.values():
                self._log.info(
                    "Queue {queueID} to <{recipient}>: {status} after {attempts} "
                    "attempts ({reply})",
                    queueID=message.queueID,
                    recipient=r.address,
                    status=r.status,
                    attempts=r.attempts,
                    reply=r.reply,
                )
            self._settleLater(entry)

    def _unreadable(self, entry: _Entry, error: OSError) -> None:
        queueID = entry.message.queueID
        self._log.error(
            "Queue {queueID}: the message cannot be read ({error}); moving it "
            "to {spool}/corrupt",
            queueID=queueID,
            error=error,
            spool=self._spool.root,
        )
        self._forget(entry)
        self.background(
            self._thread(partial(self._spool.moveAside, queueID)), "moving aside"
        )

    # -- reports and saving ------------------------------------------------

    def _settleLater(self, entry: _Entry) -> None:
        self.background(
            Deferred.fromCoroutine(self._settle(entry)),
            f"saving {entry.message.queueID}",
        )

    async def _settle(self, entry: _Entry) -> None:
        """
        After a change: send the reports that are due, then save.  A report
        is queued (or delivered) before the state saying so is saved, so a
        crash can repeat a report but never lose one.
        """
        message = entry.message
        if message.unnotified:
            # Saved first, so that a crash (or a stop) while the report is
            # on its way does not try the recipients again, only reports.
            await self._writer.save(entry)
        if message.unnotified or self._notifier.warningDue(message):
            async with entry.lock:
                if entry.removed:
                    return
                update = await self._notifier.notify(entry.message)
                if update is None:
                    self._retryNotify(entry)
                else:
                    entry.message = update(entry.message)
        if not entry.removed:
            await self._writer.save(entry)

    def _retryNotify(self, entry: _Entry) -> None:
        if self.running and entry.notifyTimer is None:
            entry.notifyTimer = self._reactor.callLater(
                self._backoff.first, self._notifyAgain, entry
            )

    def _notifyAgain(self, entry: _Entry) -> None:
        entry.notifyTimer = None
        if not entry.removed:
            self._settleLater(entry)

    def _forget(self, entry: _Entry) -> None:
        entry.removed = True
        entry.cancelTimers()
        self._entries.pop(entry.message.queueID, None)

    def delete(self, queueID: str) -> Deferred[None] | None:
        """
        Drop a message: no attempt, no report; its files are removed by the
        writer (after any write of its state under way).

        @return: a Deferred that fires once its files are removed, or
            L{None} when the message is not held.
        """
        entry = self._entries.get(queueID)
        if entry is None:
            return None
        self._forget(entry)
        return self._writer.remove(queueID)

    # -- stopping ----------------------------------------------------------

    async def halt(self, timeout: float) -> None:
        """
        Start nothing more; wait for the work under way, cancelling
        deliveries still running after C{timeout} seconds; forget every
        message.
        """
        self.running = False
        if self._pumpCall is not None and self._pumpCall.active():
            self._pumpCall.cancel()
        self._pumpCall = None
        self._writer.flush()
        for entry in self._entries.values():
            entry.cancelTimers()
            entry.ready.clear()
        self._ready.clear()

        givenUp: Deferred[Any] = Deferred()

        def giveUp() -> None:
            if not givenUp.called:
                givenUp.callback(None)

        def cancel() -> None:
            for d in list(self._sending):
                d.cancel()
            # What still runs a moment later (a report whose local delivery
            # hangs) is left behind: the state on disk lets it resume.
            timers.append(self._reactor.callLater(_STOP_GRACE, giveUp))

        timers = [self._reactor.callLater(timeout, cancel)]
        # Saving may bring more saving; each round ends what it waited for.
        for _ in range(100):
            if not self._tasks:
                break
            everything: Deferred[Any] = DeferredList(list(self._tasks))
            await DeferredList([everything, givenUp], fireOnOneCallback=True)
            if givenUp.called:
                self._log.warn(
                    "Queue: stopped with {count} tasks unfinished",
                    count=len(self._tasks),
                )
                break
        for timer in timers:
            if timer.active():
                timer.cancel()
        self._entries.clear()
