# -*- test-case-name: tests.test_queue -*-
"""
After a delivery attempt: what its L{SentMail} says of each recipient, and
where each recipient stands afterwards (the backoff of RFC 5321 4.5.4.1,
the lifetime, permanent failures).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from gomail_twisted.delivery import DeliveryResult, SentMail
from gomail_twisted.queue._entry import RecipientState

__all__ = ["Backoff", "Outcome", "advanceAll", "outcomes"]


@dataclass(frozen=True)
class Outcome:
    """
    What one attempt did for one recipient.

    @ivar status: C{"delivered"}, C{"failed"} (for good) or C{"deferred"}
        (try again).
    @ivar code: the reply code, or L{None} when no reply decided it.
    @ivar enhanced: the reply's enhanced status code, or L{None}.
    @ivar text: the reply's text, or what went wrong.
    @ivar host: the server that replied.
    """

    status: Literal["delivered", "failed", "deferred"]
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    host: str = ""


def _fromResult(result: DeliveryResult, address: str) -> Outcome:
    refusals = dict(result.refused)
    refusal = refusals.get(address)
    if refusal is not None:
        return Outcome(
            "failed" if refusal.code >= 500 else "deferred",
            refusal.code,
            refusal.enhanced,
            " ".join(refusal.lines),
            result.host,
        )
    text = result.text if result.code is not None else ""
    return Outcome(
        "failed" if result.permanent else "deferred",
        result.code,
        result.enhanced,
        text or result.error or "",
        result.host,
    )


def outcomes(sent: SentMail, recipients: Iterable[str]) -> dict[str, Outcome]:
    """
    @param sent: what L{sendMail} reported.
    @param recipients: the recipients it was given.
    @return: each one's L{Outcome}.
    """
    out: dict[str, Outcome] = {}
    for address in recipients:
        taken = [r for r in sent.results if r.delivered and address in r.accepted]
        if taken:
            r = taken[-1]
            out[address] = Outcome("delivered", r.code, r.enhanced, r.text, r.host)
            continue
        result = sent.resultFor(address)
        if result is None:
            out[address] = Outcome("deferred", text="no server was tried")
        else:
            out[address] = _fromResult(result, address)
    return out


@dataclass(frozen=True)
class Backoff:
    """
    When to try again after a temporary failure: C{first} seconds after the
    first attempt, doubling after each further one, never more than
    C{longest} apart (RFC 5321 4.5.4.1 asks for at least 30 minutes between
    attempts in general; the first retry comes sooner, as most servers do,
    for greylisting); the last attempt at C{lifetime} after queueing.

    @ivar first: the first delay, in seconds.
    @ivar longest: the longest delay.
    @ivar lifetime: how long a message may stay queued.
    """

    first: float
    longest: float
    lifetime: float

    def delay(self, attempts: int) -> float:
        """
        @param attempts: how many attempts failed so far, at least one.
        @return: the delay before the next.
        """
        # Past 2**40 the product is above any sane cap, and stays a float.
        return float(min(self.first * 2 ** min(attempts - 1, 40), self.longest))

    def advance(
        self,
        created: float,
        recipient: RecipientState,
        outcome: Outcome,
        now: float,
    ) -> RecipientState:
        """
        @param created: when the message was queued.
        @param recipient: a pending recipient.
        @param outcome: what an attempt did for it.
        @param now: the time.
        @return: where it stands afterwards: delivered; failed (a permanent
            refusal, or the lifetime is over); or pending, with its next
            attempt set.
        """
        attempts = recipient.attempts + 1
        base = replace(
            recipient,
            attempts=attempts,
            lastAttempt=now,
            code=outcome.code,
            enhanced=outcome.enhanced,
            text=outcome.text,
            remoteHost=outcome.host,
        )
        if outcome.status == "delivered":
            return replace(base, status="delivered")
        if outcome.status == "failed":
            return replace(base, status="failed")
        expiry = created + self.lifetime
        if now >= expiry:
            return replace(base, status="failed", expired=True)
        return replace(base, nextAttempt=min(now + self.delay(attempts), expiry))


def advanceAll(
    backoff: Backoff,
    created: float,
    recipients: Iterable[RecipientState],
    found: Mapping[str, Outcome],
    now: float,
) -> dict[str, RecipientState]:
    """
    @return: L{Backoff.advance} for each recipient, by address.
    """
    return {
        r.address: backoff.advance(created, r, found[r.address], now)
        for r in recipients
    }
