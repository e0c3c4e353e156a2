# -*- test-case-name: tests.test_queue -*-
"""
The outbound queue: messages are spooled durably (L{OutboundQueue.submit}
fires only once the message and its state are fsynced), then delivered to
each recipient domain's mail exchangers (several messages to one domain
over one connection), retried with backoff after temporary failures, and
reported to their sender (RFC 3464) when a recipient fails for good, when
the lifetime is over, and once when delivery is late.

Scheduling runs on the reactor given (C{callLater}); the disk work runs in
threads.  At most C{maxDeliveries} deliveries run at once, and at most
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.delivery import DKIMSettings, SMTPTimeouts
from gomail_twisted.dkim import RunInThread, loadPrivateKey, sign
from gomail_twisted.dns import Resolver
from gomail_twisted.queue._attempt import Backoff
from gomail_twisted.queue._entry import (
    QueuedMessage,
    RecipientState,
    domainOf,
    newQueueID,
)
from gomail_twisted.queue._notify import Notifier
from gomail_twisted.queue._route import DeliverBatch, MXDelivery
from gomail_twisted.queue._scheduler import Scheduler
from gomail_twisted.queue._spool import LoadedSpool, Spool, SpoolLocked

__all__ = ["OutboundQueue", "QueueService"]

_T = TypeVar("_T")

#: Local delivery of a report: the address and the message.
LocalDelivery = Callable[[str, bytes], "Deferred[None]"]


def _nothingLocal(address: str) -> bool:
    return False


class OutboundQueue(Service):
    """
    A durable queue of outgoing mail over a spool directory (see the
    module's description and L{gomail_twisted.queue._spool} for the files).

    It is a Twisted service: its C{startService} calls L{start} and its
    C{stopService} L{stop}.

    @ivar spool: the spool's files.
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
        resolver: Resolver | None = None,
        port: int = 25,
        trustRoot: Any = None,
        requireTLS: bool = False,
        lifetime: float = 5 * 86400.0,
        delayWarning: float = 4 * 3600.0,
        maxDeliveries: int = 10,
        maxPerDomain: int = 2,
        maxBatch: int = 100,
        retryDelay: float = 300.0,
        maxRetryDelay: float = 3600.0,
        controlInterval: float = 5.0,
        stopTimeout: float = 30.0,
        timeouts: SMTPTimeouts | None = None,
        runInThread: RunInThread | None = None,
        deliver: DeliverBatch | None = None,
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
            that a message is not delivered yet; never when it is not less
            than C{lifetime}.
        @param maxDeliveries: deliveries (connections) under way at once.
        @param maxPerDomain: deliveries under way at once to one domain.
        @param maxBatch: the most messages sent over one connection.
        @param retryDelay: seconds before the first retry after a
            temporary failure; doubled after each further one.
        @param maxRetryDelay: the longest delay between two attempts.
        @param controlInterval: seconds between looks at the command
            line's requests (and between tries to take a spool another
            process holds).
        @param stopTimeout: seconds L{stop} waits for deliveries under way
            before cancelling them (they are tried again after a start).
        @param timeouts: the SMTP client's timeouts, or L{None} for the
            defaults.
        @param runInThread: runs the disk work (and DKIM signing); by
            default in the reactor's thread pool.
        @param deliver: delivers a batch of transactions to a domain, as
            L{MXDelivery} does (the default, with the settings above).
        @raise ValueError: for limits below one, or times below zero.
        """
        if min(maxDeliveries, maxPerDomain, maxBatch) < 1:
            raise ValueError("maxDeliveries, maxPerDomain, maxBatch must be at least 1")
        if min(lifetime, delayWarning, retryDelay, maxRetryDelay, stopTimeout) < 0:
            raise ValueError("queue times may not be negative")
        if controlInterval <= 0:
            raise ValueError("controlInterval must be above 0")
        self.spool = Spool(directory)
        self._reactor = reactor
        self._keys = {
            domain.lower(): (settings, loadPrivateKey(settings.privateKey))
            for domain, settings in dkim.items()
        }
        self._controlInterval = controlInterval
        self._stopTimeout = stopTimeout
        self._thread: RunInThread = runInThread or partial(
            deferToThreadPool, reactor, reactor.getThreadPool()
        )
        if deliver is None:
            deliver = MXDelivery(
                reactor,
                hostname,
                resolver=resolver,
                port=port,
                trustRoot=trustRoot,
                requireTLS=requireTLS,
                timeouts=timeouts,
            )
        notifier = Notifier(
            self,
            reactor,
            self._thread,
            hostname,
            localDelivery,
            isLocal,
            lifetime,
            delayWarning,
        )
        self._scheduler = Scheduler(
            reactor,
            self.spool,
            self._thread,
            deliver,
            Backoff(retryDelay, maxRetryDelay, lifetime),
            notifier,
            maxDeliveries,
            maxPerDomain,
            maxBatch,
        )
        self._state = "stopped"
        self._timer: IDelayedCall | None = None
        self._waiting: list[Deferred[None]] = []
        self._stopping: list[Deferred[None]] | None = None
        self._lockWaited = False

    @property
    def messageCount(self) -> int:
        """
        How many messages the running queue holds.
        """
        return self._scheduler.messageCount

    def messages(self) -> list[QueuedMessage]:
        """
        @return: the current state of every message the running queue
            holds (ahead of the spool's files while changes are being
            saved).
        """
        return self._scheduler.messages()

    # -- submission ------------------------------------------------------

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
            SMTP server then answers with a temporary error), or with
            L{ValueError} for no recipient or an address with CR, LF, C{<}
            or C{>}, or a recipient without C{@}.
        """
        unique = tuple(dict.fromkeys(recipients))
        if not unique:
            return fail(ValueError("a queued message needs a recipient"))
        for address in (sender, *unique):
            if any(c in address for c in "\r\n<>") or (
                address is not sender and "@" not in address
            ):
                return fail(ValueError(f"bad address {address!r}"))
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
                "Queue {queueID}: {problem}", queueID=message.queueID, problem=warning
            )
        self._log.info(
            "Queued {queueID} from <{sender}> to {recipients} ({size} bytes)",
            queueID=message.queueID,
            sender=message.sender,
            recipients=", ".join(r.address for r in message.recipients),
            size=message.size,
        )
        if self._state in ("starting", "running"):
            self._scheduler.track(message)
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
        def load() -> LoadedSpool:
            self.spool.lock()
            return self.spool.load()

        self._timer = None
        self._thread(load).addCallbacks(self._loaded, self._notOpened)

    def _notOpened(self, reason: Failure) -> None:
        if self._state != "starting":
            return
        if reason.check(SpoolLocked):
            if not self._lockWaited:
                self._log.error(
                    "Queue spool {spool} is locked by another process; "
                    "trying again every {interval} seconds",
                    spool=self.spool.root,
                    interval=self._controlInterval,
                )
            self._lockWaited = True
        else:
            self._log.failure(
                "Queue spool {spool} cannot be loaded", reason, spool=self.spool.root
            )
            self.spool.unlock()
        self._timer = self._reactor.callLater(self._controlInterval, self._open)

    def _loaded(self, loaded: LoadedSpool) -> None:
        if self._state != "starting":
            self.spool.unlock()
            return
        for problem in loaded.problems:
            self._log.error("Queue spool: {problem}", problem=problem)
        self._state = "running"
        self._lockWaited = False
        self._scheduler.resume()
        for message in loaded.messages:
            self._scheduler.track(message)
        self._log.info(
            "Queue started over {spool} with {count} messages",
            spool=self.spool.root,
            count=self._scheduler.messageCount,
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
        Start no more deliveries; wait up to C{stopTimeout} seconds for
        those under way, then cancel the rest (their recipients stay
        pending, and are tried after the next start); release the spool.

        @return: a Deferred that fires when the queue stopped.
        """
        if self._state == "stopped":
            return succeed(None)
        d: Deferred[None] = Deferred()
        if self._stopping is not None:
            self._stopping.append(d)
            return d
        self._stopping = [d]
        self._state = "stopping"
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        halting = Deferred.fromCoroutine(self._scheduler.halt(self._stopTimeout))
        halting.addBoth(self._halted)
        return d

    def _halted(self, result: object) -> None:
        if isinstance(result, Failure):
            self._log.failure("Queue: stopping failed", result)
        self.spool.unlock()
        self._state = "stopped"
        waiting, self._stopping = self._stopping or [], None
        self._log.info("Queue stopped")
        for d in waiting:
            d.callback(None)

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

    # -- requests from the command line -----------------------------------

    def _control(self) -> None:
        self._timer = None
        if self._state != "running":
            return
        d = self._thread(self.spool.takeRequests).addCallback(self._handleRequests)
        d.addBoth(self._controlAgain)
        self._scheduler.background(d, "reading requests")

    def _controlAgain(self, result: _T) -> _T:
        if self._state == "running":
            self._timer = self._reactor.callLater(self._controlInterval, self._control)
        return result

    def _handleRequests(self, names: list[str]) -> None:
        for name in names:
            action, _, queueID = name.partition("-")
            if action == "retry":
                chosen = (
                    [m.queueID for m in self._scheduler.messages()]
                    if queueID == "all"
                    else [queueID]
                )
                for one in chosen:
                    self.retryNow(one)
            elif action == "delete":
                self.delete(queueID)

    def retryNow(self, queueID: str) -> bool:
        """
        Make every pending recipient of a queued message due now.

        @param queueID: its identifier.
        @return: whether the running queue holds it.
        """
        held = self._scheduler.retryNow(queueID)
        if held:
            self._log.info("Queue {queueID}: retry requested", queueID=queueID)
        return held

    def delete(self, queueID: str) -> Deferred[bool]:
        """
        Remove a message from the queue, telling no one; a delivery under
        way is not interrupted, but its result is dropped.

        @param queueID: its identifier.
        @return: a Deferred firing with whether the running queue held it,
            once its files are removed.
        """
        removed = self._scheduler.delete(queueID)
        if removed is None:
            return succeed(False)
        self._log.info("Queue {queueID}: deleted", queueID=queueID)
        return removed.addCallback(lambda _: True)


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
