# -*- test-case-name: tests.test_queue -*-
"""
The outbound queue: messages are spooled durably (L{OutboundQueue.submit}
fires only once the message and its state are fsynced), then delivered by
recipient domain with L{gomail_twisted.delivery.sendMail}, retried with
backoff after temporary failures, and reported to their sender (RFC 3464)
when a recipient fails for good, when the lifetime is over, and once when
delivery is late.

Scheduling runs on the reactor given (C{callLater}); the disk work runs in
threads.  At most C{maxDeliveries} attempts run at once, and at most
C{maxPerDomain} to one domain, so a domain whose servers hang holds up only
its own mail.

The command line (C{python -m gomail_twisted queue}) asks the running
queue to retry or delete messages by leaving a request file in the spool's
C{control/} directory, which the queue reads every C{controlInterval}
seconds; when no queue runs (the spool's lock is free) it acts on the files
itself.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    DeferredLock,
    fail,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.delivery import DKIMSettings, SentMail, SMTPTimeouts, sendMail
from gomail_twisted.dkim import RunInThread, loadPrivateKey, sign
from gomail_twisted.queue._attempt import (
    Backoff,
    Outcome,
    SendMail,
    advanceAll,
    mailFor,
    outcomes,
)
from gomail_twisted.queue._entry import (
    QueuedMessage,
    RecipientState,
    domainOf,
    newQueueID,
)
from gomail_twisted.queue._notify import Notifier
from gomail_twisted.queue._spool import Spool, SpoolLocked

__all__ = ["OutboundQueue", "QueueService"]

_T = TypeVar("_T")

#: Local delivery of a report: the address and the message.
LocalDelivery = Callable[[str, bytes], "Deferred[None]"]


def _nothingLocal(address: str) -> bool:
    return False


class _Entry:
    """
    A message the running queue holds.

    @ivar message: its current state (ahead of the disk while an attempt's
        result is being written).
    @ivar timers: the pending attempt of each domain.
    @ivar busy: the domains with an attempt under way.
    @ivar removed: whether it left the queue.
    """

    def __init__(self, message: QueuedMessage) -> None:
        self.message = message
        self.timers: dict[str, IDelayedCall] = {}
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


class OutboundQueue(Service):
    """
    A durable queue of outgoing mail over a spool directory (see the
    module's description and L{gomail_twisted.queue._spool} for the files).

    It is a Twisted service: its C{startService} calls L{start} and its
    C{stopService} L{stop}.
    """

    _log = Logger()

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        reactor: Any,
        hostname: str,
        localDelivery: LocalDelivery | None = None,
        isLocal: Callable[[str], bool] = _nothingLocal,
        dkim: Mapping[str, DKIMSettings] = MappingProxyType({}),
        resolver: Any = None,
        port: int = 25,
        trustRoot: Any = None,
        requireTLS: bool = False,
        lifetime: float = 5 * 86400.0,
        delayWarning: float = 4 * 3600.0,
        maxDeliveries: int = 10,
        maxPerDomain: int = 2,
        retryDelay: float = 300.0,
        maxRetryDelay: float = 3600.0,
        controlInterval: float = 5.0,
        stopTimeout: float = 30.0,
        timeouts: SMTPTimeouts | None = None,
        runInThread: RunInThread | None = None,
        send: SendMail = sendMail,
    ) -> None:
        """
        @param directory: the spool directory; made when needed.
        @param reactor: provides C{IReactorTime}, and for delivery
            C{IReactorTCP}; and, unless C{runInThread} is given,
            C{IReactorThreads}, whose pool does the disk work.
        @param hostname: our host name: given in EHLO, and the author of
            delivery status notifications.
        @param localDelivery: delivers a report to a local address,
            firing once it is stored; L{None} to queue every report.
        @param isLocal: whether an address is delivered by
            C{localDelivery}.
        @param dkim: DKIM settings by sender domain: a message whose sender
            is in one of them is signed once, when queued (RFC 6376).
        @param resolver: a L{gomail_twisted.dns.Resolver}, or L{None} for
            one on the system configuration.
        @param port: the port of mail exchangers (25; tests change it).
        @param trustRoot: the certificate authorities for outbound TLS, or
            L{None} for the platform's.
        @param requireTLS: deliver only over TLS.
        @param lifetime: seconds a message may stay queued; then its
            pending recipients fail (DSN status 4.4.7).
        @param delayWarning: seconds after which the sender is told, once,
            that a message is not delivered yet; not when it is not less
            than C{lifetime}.
        @param maxDeliveries: attempts under way at once.
        @param maxPerDomain: attempts under way at once to one domain.
        @param retryDelay: seconds before the first retry after a
            temporary failure; doubled after each further one.
        @param maxRetryDelay: the longest delay between two attempts.
        @param controlInterval: seconds between looks at the command
            line's requests.
        @param stopTimeout: seconds L{stop} waits for attempts under way
            before cancelling them (they are tried again after a start).
        @param timeouts: the SMTP client's timeouts, or L{None} for the
            defaults.
        @param runInThread: runs the disk work (and DKIM signing); by
            default in the reactor's thread pool.
        @param send: delivers a mail, as L{sendMail} does.
        @raise ValueError: for limits below one, or times below zero.
        """
        if maxDeliveries < 1 or maxPerDomain < 1:
            raise ValueError("maxDeliveries and maxPerDomain must be at least 1")
        if min(lifetime, delayWarning, retryDelay, maxRetryDelay) < 0:
            raise ValueError("queue times may not be negative")
        if controlInterval <= 0 or stopTimeout < 0:
            raise ValueError("controlInterval must be above 0, stopTimeout 0 or more")
        self.spool = Spool(directory)
        self._reactor = reactor
        self._hostname = hostname
        self._keys = {
            domain.lower(): (settings, loadPrivateKey(settings.privateKey))
            for domain, settings in dkim.items()
        }
        self._mailSettings: dict[str, Any] = {
            "port": port,
            "resolver": resolver,
            "trustRoot": trustRoot,
            "requireTLS": requireTLS,
        }
        if timeouts is not None:
            self._mailSettings["timeouts"] = timeouts
        self._backoff = Backoff(retryDelay, maxRetryDelay, lifetime)
        self._delayWarning = delayWarning
        self._maxDeliveries = maxDeliveries
        self._maxPerDomain = maxPerDomain
        self._controlInterval = controlInterval
        self._stopTimeout = stopTimeout
        self._runInThread: RunInThread = runInThread or partial(
            deferToThreadPool, reactor, reactor.getThreadPool()
        )
        self._send = send
        self._notifier = Notifier(
            self, hostname, localDelivery, isLocal, lifetime, delayWarning
        )
        self._entries: dict[str, _Entry] = {}
        self._ready: list[tuple[_Entry, str]] = []
        self._active = 0
        self._activeDomains: Counter[str] = Counter()
        self._tasks: set[Deferred[None]] = set()
        self._sending: set[Deferred[SentMail]] = set()
        self._pumping = False
        self._pumpAgain = False
        self._state = "stopped"
        self._timer: IDelayedCall | None = None
        self._waiting: list[Deferred[None]] = []

    # -- submission ------------------------------------------------------

    def _thread(self, f: Callable[[], _T]) -> Deferred[_T]:
        return self._runInThread(f)

    def _signed(self, sender: str, data: bytes) -> tuple[bytes, str | None]:
        """
        Sign the message when its sender's domain has a key; in a thread.

        @return: the message, and a warning to log, if any.
        """
        found = self._keys.get(domainOf(sender)) if sender else None
        if found is None:
            return data, None
        settings, key = found
        try:
            signature = sign(
                data, settings.domain, settings.selector, key, settings.headers
            )
        except Exception as e:
            return data, f"not signed with DKIM: {e}"
        return signature + data, None

    def submit(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> Deferred[str]:
        """
        Queue a message.

        @param sender: the envelope sender, C{""} for the null reverse-path.
        @param recipients: the envelope recipients.
        @param data: the whole message, lines ending in CRLF, as SMTP
            received it (dot-unstuffed).
        @return: a Deferred that fires with the queue identifier once the
            message and its state are on disk (fsynced, renamed, the
            directory fsynced); it fails when they cannot be written (the
            SMTP server then answers with a temporary error).
        """
        unique = tuple(dict.fromkeys(recipients))
        if not unique:
            return fail(ValueError("a queued message needs a recipient"))
        now = self._reactor.seconds()
        pending = tuple(RecipientState(a, nextAttempt=now) for a in unique)
        message = QueuedMessage(newQueueID(now), sender, now, len(data), pending)

        def write() -> tuple[QueuedMessage, str | None]:
            body, warning = self._signed(sender, data)
            stored = replace(message, size=len(body))
            self.spool.makeDirectories()
            self.spool.add(stored, body)
            return stored, warning

        return self._thread(write).addCallback(self._queued)

    def _queued(self, result: tuple[QueuedMessage, str | None]) -> str:
        message, warning = result
        if warning is not None:
            self._log.warn(
                "Queue {queueID}: {warning}", queueID=message.queueID, warning=warning
            )
        self._log.info(
            "Queued {queueID} from <{sender}> to {recipients} ({size} bytes)",
            queueID=message.queueID,
            sender=message.sender,
            recipients=", ".join(r.address for r in message.recipients),
            size=message.size,
        )
        if self._state in ("starting", "running"):
            self._track(message)
        return message.queueID

    # -- starting and stopping -------------------------------------------

    def start(self) -> None:
        """
        Take the spool's lock, load the spool (moving unreadable state
        files aside) and resume delivery.  While another process holds the
        lock, try again every C{controlInterval} seconds.
        """
        if self._state != "stopped":
            return
        self._state = "starting"
        self._open()

    def _open(self) -> None:
        def load() -> Any:
            self.spool.lock()
            return self.spool.load()

        self._timer = None
        self._thread(load).addCallbacks(self._loaded, self._notOpened)

    def _notOpened(self, reason: Failure) -> None:
        if self._state != "starting":
            return
        if reason.check(SpoolLocked):
            self._log.error(
                "Queue spool {spool} is locked by another process; "
                "trying again in {interval} seconds",
                spool=self.spool.root,
                interval=self._controlInterval,
            )
        else:
            self._log.failure(
                "Queue spool {spool} cannot be loaded", reason, spool=self.spool.root
            )
            self.spool.unlock()
        self._timer = self._reactor.callLater(self._controlInterval, self._open)

    def _loaded(self, loaded: Any) -> None:
        if self._state != "starting":
            self.spool.unlock()
            return
        for problem in loaded.problems:
            self._log.error("Queue spool: {problem}", problem=problem)
        self._state = "running"
        for message in loaded.messages:
            if message.queueID not in self._entries:
                self._track(message)
        self._log.info(
            "Queue started over {spool} with {count} messages",
            spool=self.spool.root,
            count=len(self._entries),
        )
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)
        self._control()

    def whenRunning(self) -> Deferred[None]:
        """
        @return: a Deferred that fires once L{start} loaded the spool (at
            once when it did).
        """
        if self._state == "running":
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def stop(self) -> Deferred[None]:
        """
        Start no more attempts; wait up to C{stopTimeout} seconds for those
        under way, then cancel the rest (their recipients stay pending and
        are tried after the next start); release the spool.

        @return: a Deferred that fires when the queue stopped.
        """
        if self._state == "stopped":
            return succeed(None)
        self._state = "stopping"
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for entry in self._entries.values():
            entry.cancelTimers()
        self._ready.clear()
        tasks = list(self._tasks)

        def cancelSending() -> None:
            for d in list(self._sending):
                d.cancel()

        timer = self._reactor.callLater(self._stopTimeout, cancelSending)

        def stopped(_: object) -> None:
            if timer.active():
                timer.cancel()
            self._entries.clear()
            self.spool.unlock()
            self._state = "stopped"
            self._log.info("Queue stopped")

        return DeferredList(tasks).addCallback(stopped)

    def startService(self) -> None:
        """
        Start the service: L{start}.
        """
        Service.startService(self)
        self.start()

    def stopService(self) -> Deferred[None]:
        """
        Stop the service: L{stop}.
        """
        Service.stopService(self)
        return self.stop()

    # -- scheduling -------------------------------------------------------

    def _background(self, d: Deferred[None], what: str) -> None:
        self._tasks.add(d)

        def done(result: object) -> None:
            self._tasks.discard(d)
            if isinstance(result, Failure):
                self._log.failure("Queue: {what} failed", result, what=what)

        d.addBoth(done)

    def _track(self, message: QueuedMessage) -> None:
        entry = _Entry(message)
        self._entries[message.queueID] = entry
        if message.unnotified or message.done or self._notifier.warningDue(message):
            self._settleLater(entry)
        self._schedule(entry)

    def _schedule(self, entry: _Entry) -> None:
        if self._state != "running" or entry.removed:
            return
        now = self._reactor.seconds()
        message = entry.message
        queued = {domain for e, domain in self._ready if e is entry}
        for domain, recipients in message.pendingDomains().items():
            if domain in entry.busy or domain in queued:
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
        if entry.removed or self._state != "running":
            return
        self._ready.append((entry, domain))
        self._pump()

    def _pump(self) -> None:
        if self._pumping:
            self._pumpAgain = True
            return
        self._pumping = True
        try:
            self._pumpAgain = True
            while self._pumpAgain:
                self._pumpAgain = False
                self._startReady()
        finally:
            self._pumping = False

    def _startReady(self) -> None:
        i = 0
        while (
            self._state == "running"
            and i < len(self._ready)
            and self._active < self._maxDeliveries
        ):
            entry, domain = self._ready[i]
            if self._activeDomains[domain] >= self._maxPerDomain:
                i += 1
                continue
            del self._ready[i]
            if entry.removed:
                continue
            self._active += 1
            self._activeDomains[domain] += 1
            entry.busy.add(domain)
            d = Deferred.fromCoroutine(self._attempt(entry, domain))
            d.addBoth(self._attempted, entry, domain)
            self._background(d, f"delivery of {entry.message.queueID}")

    def _attempted(self, result: _T, entry: _Entry, domain: str) -> _T:
        self._active -= 1
        self._activeDomains[domain] -= 1
        if not self._activeDomains[domain]:
            del self._activeDomains[domain]
        entry.busy.discard(domain)
        self._schedule(entry)
        self._pump()
        return result

    # -- delivery ---------------------------------------------------------

    async def _attempt(self, entry: _Entry, domain: str) -> None:
        message = entry.message
        recipients = message.pendingDomains().get(domain, ())
        if not recipients:
            return
        queueID = message.queueID
        try:
            data = await self._thread(partial(self.spool.readMessage, queueID))
        except OSError as e:
            self._log.error(
                "Queue {queueID}: the message cannot be read ({error}); "
                "moving it aside",
                queueID=queueID,
                error=e,
            )
            self._forget(entry)
            await self._thread(partial(self.spool.moveAside, queueID))
            return
        addresses = [r.address for r in recipients]
        found = await self._deliver(message.sender, addresses, data, queueID)
        if found is None or entry.removed:
            return
        now = self._reactor.seconds()
        updates = advanceAll(self._backoff, message.created, recipients, found, now)
        entry.message = entry.message.withRecipients(updates)
        for r in updates.values():
            self._log.info(
                "Queue {queueID} to <{recipient}>: {status} after {attempts} "
                "attempts ({reply})",
                queueID=queueID,
                recipient=r.address,
                status=r.status,
                attempts=r.attempts,
                reply=r.reply,
            )
        await self._settle(entry)

    async def _deliver(
        self, sender: str, addresses: list[str], data: bytes, queueID: str
    ) -> dict[str, Outcome] | None:
        """
        @return: each recipient's outcome, or L{None} when cancelled.
        """
        settings = dict(self._mailSettings)
        if settings["resolver"] is None:
            from gomail_twisted.dns import Resolver

            settings["resolver"] = self._mailSettings["resolver"] = Resolver(
                self._reactor
            )
        mail = mailFor(sender, addresses, data, self._hostname, **settings)
        sending = maybeDeferred(self._send, self._reactor, mail)
        self._sending.add(sending)
        try:
            sent = await sending
        except CancelledError:
            return None
        except ValueError as e:
            return {
                a: Outcome("failed", text=f"cannot be sent: {e}") for a in addresses
            }
        except Exception as e:
            self._log.failure("Queue {queueID}: delivery failed", queueID=queueID)
            return {
                a: Outcome("deferred", text=f"internal error: {e!r}") for a in addresses
            }
        finally:
            self._sending.discard(sending)
        return outcomes(sent, addresses)

    def _settleLater(self, entry: _Entry) -> None:
        self._background(
            Deferred.fromCoroutine(self._settle(entry)),
            f"saving {entry.message.queueID}",
        )

    async def _settle(self, entry: _Entry) -> None:
        """
        After a change: tell the sender what is due (failures, the delay
        warning), then write the state, or remove the message when nothing
        is left to do.  The report is queued before the state says it was,
        so a crash can repeat a report but never lose one.
        """
        async with entry.lock:
            if entry.removed:
                return
            notified = await self._notifier.notify(entry.message)
            if notified is None:
                self._retryNotify(entry)
            else:
                entry.message = notified(entry.message)
            message = entry.message
            queueID = message.queueID
            try:
                if message.done:
                    self._forget(entry)
                    await self._thread(partial(self.spool.remove, queueID))
                    self._log.info("Queue {queueID}: done", queueID=queueID)
                else:
                    await self._thread(partial(self.spool.update, message))
            except OSError as e:
                self._log.error(
                    "Queue {queueID}: cannot save its state ({error})",
                    queueID=queueID,
                    error=e,
                )

    def _retryNotify(self, entry: _Entry) -> None:
        if self._state == "running" and entry.notifyTimer is None:
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

    # -- requests from the command line -----------------------------------

    def _control(self) -> None:
        if self._state != "running":
            return
        self._timer = None
        d = self._thread(self.spool.takeRequests).addCallback(self._handleRequests)
        d.addBoth(self._controlAgain)
        self._background(d, "reading requests")

    def _controlAgain(self, result: _T) -> _T:
        if self._state == "running":
            self._timer = self._reactor.callLater(self._controlInterval, self._control)
        return result

    def _handleRequests(self, names: list[str]) -> None:
        for name in names:
            action, _, queueID = name.partition("-")
            if action == "retry":
                chosen = (
                    list(self._entries.values())
                    if queueID == "all"
                    else [e for e in (self._entries.get(queueID),) if e is not None]
                )
                for entry in chosen:
                    self.retryNow(entry.message.queueID)
            elif action == "delete":
                self.delete(queueID)

    def retryNow(self, queueID: str) -> bool:
        """
        Make every pending recipient of a queued message due now.

        @param queueID: its identifier.
        @return: whether the running queue holds it.
        """
        entry = self._entries.get(queueID)
        if entry is None:
            return False
        now = self._reactor.seconds()
        entry.message = entry.message.withRecipients(
            {r.address: replace(r, nextAttempt=now) for r in entry.message.pending}
        )
        self._log.info("Queue {queueID}: retry requested", queueID=queueID)
        self._schedule(entry)
        return True

    def delete(self, queueID: str) -> Deferred[bool]:
        """
        Remove a message from the queue, telling no one; an attempt under
        way is not interrupted, but its result is dropped.

        @param queueID: its identifier.
        @return: a Deferred firing with whether the running queue held it,
            once its files are removed.
        """
        entry = self._entries.get(queueID)
        if entry is None:
            return succeed(False)
        self._forget(entry)
        self._log.info("Queue {queueID}: deleted", queueID=queueID)
        d = self._thread(partial(self.spool.remove, queueID))
        return d.addCallback(lambda _: True)


class QueueService(Service):
    """
    A Twisted service that runs an L{OutboundQueue}, for a parent service
    that wants a separate one (the queue is a service itself).
    """

    def __init__(self, queue: OutboundQueue) -> None:
        """
        @param queue: the queue.
        """
        self.queue = queue

    def startService(self) -> None:
        """
        Start the queue.
        """
        Service.startService(self)
        self.queue.start()

    def stopService(self) -> Deferred[None]:
        """
        Stop the queue.
        """
        Service.stopService(self)
        return self.queue.stop()
