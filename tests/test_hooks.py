"""
Tests for L{gomail_twisted._hooks}: hooks answering at once, later, or as
coroutines, and how a server answers from their outcome.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted._hooks import HookServerProtocol, callHook, invokeHook, thenCall
from gomail_twisted.connection import LimitedServerFactory


class InvokeHookTests(SynchronousTestCase):
    """
    L{invokeHook} keeps plain values plain.
    """

    def test_value(self) -> None:
        """
        A plain value comes back as it is.
        """
        self.assertEqual(invokeHook(lambda x: x + 1, 1), 2)

    def test_raises(self) -> None:
        """
        An exception comes back as a L{Failure}.
        """

        def broken() -> None:
            raise KeyError("x")

        outcome = invokeHook(broken)
        assert isinstance(outcome, Failure)
        self.assertTrue(outcome.check(KeyError))

    def test_coroutine(self) -> None:
        """
        A coroutine comes back as a Deferred of its result.
        """

        async def hook() -> int:
            return 7

        outcome = invokeHook(hook)
        assert isinstance(outcome, Deferred)
        self.assertEqual(self.successResultOf(outcome), 7)

    def test_callHookAlwaysDeferred(self) -> None:
        """
        L{callHook} wraps even a plain value.
        """
        self.assertEqual(self.successResultOf(callHook(lambda: 3)), 3)


class ThenCallTests(SynchronousTestCase):
    """
    L{thenCall} goes on at once or later.
    """

    def test_now(self) -> None:
        """
        After a value, the next step runs at once.
        """
        self.assertEqual(thenCall(2, lambda x: x * 10), 20)

    def test_later(self) -> None:
        """
        After a Deferred, the next step runs when it fires.
        """
        d: Deferred[int] = Deferred()
        outcome = thenCall(d, lambda x: x * 10)
        assert isinstance(outcome, Deferred)
        self.assertNoResult(outcome)
        d.callback(3)
        self.assertEqual(self.successResultOf(outcome), 30)

    def test_failureSkips(self) -> None:
        """
        After a failure the next step does not run.
        """
        failure = Failure(ValueError("x"))
        self.assertIs(thenCall(failure, lambda x: self.fail("ran")), failure)

    def test_stepRaises(self) -> None:
        """
        A next step that raises gives a failure.
        """

        def broken(x: object) -> None:
            raise ValueError("y")

        outcome = thenCall(succeed(1), broken)
        assert isinstance(outcome, Deferred)
        self.failureResultOf(outcome, ValueError)
        outcome = thenCall(1, broken)
        assert isinstance(outcome, Failure)
        self.assertTrue(outcome.check(ValueError))


class _Reply(Exception):
    """
    A protocol's reply: positive or not.
    """

    def __init__(self, ok: bool, text: str) -> None:
        super().__init__(text)
        self.ok = ok


_FAILED = _Reply(False, "temporary failure")


class _Protocol(HookServerProtocol[_Reply]):
    """
    Records what it would answer.
    """

    replyType = _Reply
    temporaryFailure = _FAILED
    hookFailureFormat = "test hook {hook} failed for {peer}"
    internalErrorFormat = "test internal error for {peer}"

    def __init__(self) -> None:
        self.answers: list[object] = []
        self.factory = LimitedServerFactory(reactor=Clock())
        self.transport = StringTransport()

    def refuse(self, reply: _Reply) -> None:
        self.answers.append(("refuse", reply))

    def isRefusal(self, reply: _Reply) -> bool:
        return not reply.ok

    def accept(self, value: object) -> None:
        self.answers.append(("accept", value))


class AwaitHookTests(SynchronousTestCase):
    """
    L{HookServerProtocol.awaitHook} answers from whatever a hook did.
    """

    def setUp(self) -> None:
        self.protocol = _Protocol()

    def test_acceptingValues(self) -> None:
        """
        L{None}, a plain value and a positive reply are accepted as they are.
        """
        positive = _Reply(True, "fine")
        for value in (None, 7, positive):
            self.protocol.awaitHook(invokeHook(lambda v=value: v), self.protocol.accept)
        self.assertEqual(
            self.protocol.answers,
            [("accept", None), ("accept", 7), ("accept", positive)],
        )

    def test_refusals(self) -> None:
        """
        A returned negative reply and a raised reply both refuse, through
        C{onReply} when given.
        """
        negative = _Reply(False, "no")
        other: list[_Reply] = []

        def raising() -> None:
            raise negative

        self.protocol.awaitHook(invokeHook(lambda: negative), self.protocol.accept)
        self.protocol.awaitHook(invokeHook(raising), self.protocol.accept)
        self.protocol.awaitHook(invokeHook(raising), self.protocol.accept, other.append)
        self.assertEqual(
            self.protocol.answers, [("refuse", negative), ("refuse", negative)]
        )
        self.assertEqual(other, [negative])

    def test_unexpectedFailure(self) -> None:
        """
        An unexpected exception is logged and answered with the given
        failure, or the temporary failure by default.
        """
        given = _Reply(False, "not available")

        def broken() -> None:
            raise KeyError("x")

        self.protocol.awaitHook(invokeHook(broken), self.protocol.accept, hook="b")
        self.protocol.awaitHook(
            invokeHook(broken), self.protocol.accept, failure=given, hook="b"
        )
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)
        self.assertEqual(
            self.protocol.answers, [("refuse", _FAILED), ("refuse", given)]
        )

    def test_brokenCallback(self) -> None:
        """
        An error of the server while answering is logged and answered with
        the temporary failure.
        """

        def broken(value: object) -> None:
            raise KeyError("x")

        self.protocol.awaitHook(invokeHook(lambda: 1), broken)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        self.assertEqual(self.protocol.answers, [("refuse", _FAILED)])

    def test_pendingHolds(self) -> None:
        """
        While a hook's Deferred is pending, input is held; it is answered
        and released once it fires.
        """
        pending: Deferred[object] = Deferred()
        self.protocol.awaitHook(invokeHook(lambda: pending), self.protocol.accept)
        self.assertTrue(self.protocol.holding)
        self.assertEqual(self.protocol.answers, [])
        pending.callback("done")
        self.assertFalse(self.protocol.holding)
        self.assertEqual(self.protocol.answers, [("accept", "done")])

    def test_closedMeanwhile(self) -> None:
        """
        Once the connection is closing, a hook's outcome is not answered.
        """
        pending: Deferred[object] = Deferred()
        self.protocol.awaitHook(invokeHook(lambda: pending), self.protocol.accept)
        self.protocol.closed = True
        pending.errback(_Reply(False, "no"))
        self.assertEqual(self.protocol.answers, [])
