"""
Tests for L{gomail_twisted._hooks}: hooks answering at once, later, or as
coroutines.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted._hooks import callHook, invokeHook, thenCall


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
