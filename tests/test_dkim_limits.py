# -*- test-case-name: tests.test_dkim_limits -*-
"""
Tests for the bounds of L{gomail_twisted.dkim.verify}: work linear in the
message however many signatures it carries, a limit on the signatures
checked (RFC 6376 6.1), one lookup per key, a time bound on a fake clock,
and the CPU work going through the C{runInThread} callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import (
    DEFAULT_MAX_SIGNATURES,
    DKIMResult,
    DKIMStatus,
    _verify,
    sign,
    verify,
)
from tests.test_dkim import DOMAIN, MESSAGE, NOW, FakeDNS, ed25519Key, recordFor
from tests.test_dkim_bad import signatureWith

_T = TypeVar("_T")
NAME = f"sel._domainkey.{DOMAIN}"


def copies(n: int, **kwargs: Any) -> bytes:
    """
    @return: L{MESSAGE} with C{n} copies of one good signature on top.
    """
    kwargs.setdefault("timestamp", NOW)
    field = sign(MESSAGE, DOMAIN, "sel", ed25519Key(), **kwargs)
    return field * n + MESSAGE


def goodDNS() -> FakeDNS:
    """
    @return: a lookup publishing the Ed25519 test key as C{sel}.
    """
    return FakeDNS({NAME: [recordFor("ed25519")]})


class HeldThread:
    """
    A C{runInThread} that keeps each function until the test runs it, so a
    test sees what happens between the steps.

    @ivar queue: the functions waiting, with the Deferreds of their results.
    @ivar ran: how many have been run.
    """

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[[], Any], Deferred[Any]]] = []
        self.ran = 0

    def __call__(self, f: Callable[[], _T]) -> Deferred[_T]:
        d: Deferred[_T] = Deferred()
        self.queue.append((f, d))
        return d

    def runOne(self) -> None:
        """
        Run the function that has waited longest.
        """
        f, d = self.queue.pop(0)
        self.ran += 1
        try:
            result = f()
        except Exception as e:
            d.errback(e)
        else:
            d.callback(result)

    def runAll(self) -> None:
        """
        Run the waiting functions, and those they queue, until none is left.
        """
        while self.queue:
            self.runOne()


class CountingTests(SynchronousTestCase):
    """
    Counts of the work done for many copies of one signature.
    """

    def setUp(self) -> None:
        self.counts: dict[str, int] = {}
        for name in ("parseMessage", "canonicalizeBody", "parseKeyRecord"):
            self.patch(_verify, name, self.counting(name, getattr(_verify, name)))

    def counting(self, name: str, f: Callable[..., _T]) -> Callable[..., _T]:
        def counted(*args: Any) -> _T:
            self.counts[name] = self.counts.get(name, 0) + 1
            return f(*args)

        return counted

    def test_copiesShareTheWork(self) -> None:
        """
        200 copies of one signature, all checked, cost one parse of the
        message, one body canonicalization, one lookup and one key parse.
        """
        dns = goodDNS()
        results = self.successResultOf(
            verify(copies(200), dns.lookupTXT, now=NOW, maxSignatures=200)
        )
        self.assertEqual({r.status for r in results}, {DKIMStatus.PASS})
        self.assertEqual(len(results), 200)
        self.assertEqual(dns.queries, [NAME])
        self.assertEqual(
            self.counts,
            {"parseMessage": 1, "canonicalizeBody": 1, "parseKeyRecord": 1},
        )

    def test_oneBodyPerCanonicalization(self) -> None:
        """
        Signatures with two body canonicalizations and two C{l=} values
        canonicalize the body twice, once per canonicalization.
        """
        inner = copies(1, canonicalization=("relaxed", "simple"))
        key = ed25519Key()
        outer = (
            sign(inner, DOMAIN, "sel", key, timestamp=NOW, bodyLength=True)
            + sign(inner, DOMAIN, "sel", key, timestamp=NOW)
            + inner
        )
        results = self.successResultOf(verify(outer, goodDNS().lookupTXT, now=NOW))
        self.assertEqual([r.status for r in results], [DKIMStatus.PASS] * 3)
        self.assertEqual(self.counts["canonicalizeBody"], 2)

    def test_lookupsPerDistinctName(self) -> None:
        """
        Each key name is looked up once, whatever the case of its letters
        in the signatures.
        """
        key = ed25519Key()
        fields = b"".join(
            sign(MESSAGE, domain, selector, key, timestamp=NOW)
            for domain, selector in (
                (DOMAIN, "sel"),
                (DOMAIN, "other"),
                ("EXAMPLE.com", "sel"),
            )
        )
        dns = FakeDNS({NAME: [recordFor("ed25519")], f"other._domainkey.{DOMAIN}": []})
        results = self.successResultOf(verify(fields + MESSAGE, dns.lookupTXT, now=NOW))
        self.assertEqual(
            [r.status for r in results],
            [DKIMStatus.PASS, DKIMStatus.PERMERROR, DKIMStatus.PASS],
        )
        self.assertEqual(sorted(dns.queries), [f"other._domainkey.{DOMAIN}", NAME])


class LimitTests(SynchronousTestCase):
    """
    The limit on the signatures checked (RFC 6376 6.1).
    """

    def test_pastTheLimitNotChecked(self) -> None:
        """
        Past C{maxSignatures} well-formed signatures, the rest are
        C{policy} results saying they were not checked, in order.
        """
        dns = goodDNS()
        results = self.successResultOf(
            verify(copies(50), dns.lookupTXT, now=NOW, maxSignatures=10)
        )
        self.assertEqual(
            [r.status for r in results],
            [DKIMStatus.PASS] * 10 + [DKIMStatus.POLICY] * 40,
        )
        self.assertIn("not checked", results[-1].reason)
        self.assertIn("RFC 6376 6.1", results[-1].reason)
        self.assertEqual(dns.queries, [NAME])

    def test_defaultLimit(self) -> None:
        """
        Without C{maxSignatures}, L{DEFAULT_MAX_SIGNATURES} are checked.
        """
        results = self.successResultOf(
            verify(copies(DEFAULT_MAX_SIGNATURES + 3), goodDNS().lookupTXT, now=NOW)
        )
        self.assertEqual(
            [r.status for r in results].count(DKIMStatus.PASS),
            DEFAULT_MAX_SIGNATURES,
        )
        self.assertEqual(
            [r.status for r in results][DEFAULT_MAX_SIGNATURES:],
            [DKIMStatus.POLICY] * 3,
        )

    def test_malformedDoNotCount(self) -> None:
        """
        Malformed signatures cost no lookup and do not use up the limit, so
        junk on top cannot push a good signature out.
        """
        junk = signatureWith({"v": None}) * 5
        results = self.successResultOf(
            verify(junk + copies(1), goodDNS().lookupTXT, now=NOW, maxSignatures=1)
        )
        self.assertEqual(
            [r.status for r in results],
            [DKIMStatus.PERMERROR] * 5 + [DKIMStatus.PASS],
        )

    def test_zero(self) -> None:
        """
        With C{maxSignatures=0} nothing is looked up and every signature is
        reported as not checked.
        """
        dns = goodDNS()
        results = self.successResultOf(
            verify(copies(3), dns.lookupTXT, now=NOW, maxSignatures=0)
        )
        self.assertEqual([r.status for r in results], [DKIMStatus.POLICY] * 3)
        self.assertEqual(dns.queries, [])

    def test_negative(self) -> None:
        """
        A negative limit is refused.
        """
        self.assertRaises(
            ValueError, verify, MESSAGE, goodDNS().lookupTXT, maxSignatures=-1
        )


class TimeoutTests(SynchronousTestCase):
    """
    The time bound, on a fake clock.
    """

    def test_lookupTooSlow(self) -> None:
        """
        A signature whose key has not arrived when the time is up is a
        C{temperror}; one whose key came is checked; the pending lookup is
        cancelled.
        """
        cancelled: list[str] = []
        pending: Deferred[Sequence[bytes]] = Deferred(
            lambda d: cancelled.append("slow")
        )

        def lookup(name: str) -> Deferred[Sequence[bytes]]:
            if name.startswith("slow."):
                return pending
            return succeed([recordFor("ed25519")])

        key = ed25519Key()
        message = (
            sign(MESSAGE, DOMAIN, "slow", key, timestamp=NOW)
            + sign(MESSAGE, DOMAIN, "sel", key, timestamp=NOW)
            + MESSAGE
        )
        clock = Clock()
        d = verify(message, lookup, now=NOW, timeout=5, clock=clock)
        self.assertNoResult(d)
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        slow, fast = self.successResultOf(d)
        self.assertEqual(
            (slow.status, slow.selector, slow.reason),
            (
                DKIMStatus.TEMPERROR,
                "slow",
                "verification took longer than 5 seconds",
            ),
        )
        self.assertEqual(fast.status, DKIMStatus.PASS)
        self.assertEqual(cancelled, ["slow"])

    def test_finishedInTime(self) -> None:
        """
        A verification that finishes in time leaves no timer behind.
        """
        clock = Clock()
        d = verify(copies(1), goodDNS().lookupTXT, now=NOW, timeout=5, clock=clock)
        self.assertEqual(self.successResultOf(d)[0].status, DKIMStatus.PASS)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stillParsing(self) -> None:
        """
        When the time is up before the message is even parsed, the one
        result is a C{temperror}, and the parse, once it runs, does not
        start the lookups.
        """
        clock = Clock()
        thread = HeldThread()
        dns = goodDNS()
        d = verify(
            copies(2),
            dns.lookupTXT,
            now=NOW,
            timeout=1,
            clock=clock,
            runInThread=thread,
        )
        clock.advance(1)
        [result] = self.successResultOf(d)
        self.assertEqual(result.status, DKIMStatus.TEMPERROR)
        thread.runAll()
        self.assertEqual(dns.queries, [])

    def test_stepsAfterTheBoundSkipped(self) -> None:
        """
        Checks not yet handed to the thread when the time is up are not
        run; every unfinished signature is a C{temperror}.
        """
        clock = Clock()
        thread = HeldThread()
        d = verify(
            copies(3),
            goodDNS().lookupTXT,
            now=NOW,
            timeout=1,
            clock=clock,
            runInThread=thread,
        )
        thread.runOne()
        self.assertEqual(len(thread.queue), 1)
        clock.advance(1)
        self.assertEqual(
            [r.status for r in self.successResultOf(d)], [DKIMStatus.TEMPERROR] * 3
        )
        thread.runAll()
        self.assertEqual(thread.ran, 2)


class ThreadTests(SynchronousTestCase):
    """
    The CPU work goes through C{runInThread}.
    """

    def test_everyStepThroughTheCallable(self) -> None:
        """
        Nothing is parsed or checked until the thread runs it: one step
        parses, then one step per signature checked.
        """
        thread = HeldThread()
        dns = goodDNS()
        d = verify(
            copies(12), dns.lookupTXT, now=NOW, maxSignatures=4, runInThread=thread
        )
        self.assertNoResult(d)
        self.assertEqual((len(thread.queue), dns.queries), (1, []))
        thread.runAll()
        results: list[DKIMResult] = self.successResultOf(d)
        self.assertEqual(
            [r.status for r in results],
            [DKIMStatus.PASS] * 4 + [DKIMStatus.POLICY] * 8,
        )
        self.assertEqual(thread.ran, 1 + 4)

    def test_oneStepAtATime(self) -> None:
        """
        The checks are queued one after the other: the next is handed to
        the thread only once the one before it is done.
        """
        thread = HeldThread()
        d = verify(copies(3), goodDNS().lookupTXT, now=NOW, runInThread=thread)
        for expected in range(4):
            self.assertEqual(len(thread.queue), 1, expected)
            f, step = thread.queue.pop(0)
            step.callback(f())
        self.assertEqual(thread.queue, [])
        self.assertEqual(len(self.successResultOf(d)), 3)

    def test_threadFailure(self) -> None:
        """
        A check that raises an unexpected error is a permerror, logged; the
        others are unaffected.
        """

        def flaky(f: Callable[[], _T]) -> Deferred[_T]:
            calls.append(f)
            if len(calls) == 2:
                raise RuntimeError("thread pool broke")
            return succeed(f())

        calls: list[Callable[[], Any]] = []
        results = self.successResultOf(
            verify(copies(2), goodDNS().lookupTXT, now=NOW, runInThread=flaky)
        )
        self.assertEqual(
            [(r.status, r.reason) for r in results],
            [
                (DKIMStatus.PERMERROR, "verification error"),
                (DKIMStatus.PASS, "signature verified"),
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_parseFailure(self) -> None:
        """
        An unexpected error while parsing the message gives one permerror,
        logged, rather than a Deferred that never fires.
        """

        def broken(message: bytes) -> None:
            raise RuntimeError("parser broke")

        self.patch(_verify, "parseMessage", broken)
        results = self.successResultOf(verify(copies(2), goodDNS().lookupTXT, now=NOW))
        self.assertEqual(
            [(r.status, r.reason) for r in results],
            [(DKIMStatus.PERMERROR, "verification error")],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
