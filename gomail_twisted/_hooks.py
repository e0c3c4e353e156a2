# -*- test-case-name: tests.test_hooks -*-
"""
Calling the application's hooks, which may return a plain value, a
L{Deferred} or a coroutine.

The servers call hooks on every command, so a hook that answers at once is
handled at once: no Deferred is made for it (L{invokeHook}, L{thenCall}).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure


def invokeHook(f: Callable[..., Any], *args: Any) -> object:
    """
    Call a hook without wrapping a plain value.

    @param f: the hook.
    @param args: its arguments.
    @return: the hook's value, a L{Deferred} (a coroutine is wrapped in
        one), or a L{Failure} when it raised.
    """
    try:
        result = f(*args)
    except Exception:
        return Failure()
    # inspect.iscoroutine's test, without its call: hooks run on every
    # command.
    if isinstance(result, CoroutineType):
        return Deferred.fromCoroutine(result)
    return result


def thenCall(outcome: object, f: Callable[[Any], object]) -> object:
    """
    Go on with C{f} after an outcome of L{invokeHook}: at once for a value,
    once it fires for a Deferred; a L{Failure} skips C{f}.

    @param outcome: a value, a L{Deferred} or a L{Failure}.
    @param f: called with the value; may itself return any of the three.
    @return: C{f}'s outcome, in the same three forms.
    """
    if isinstance(outcome, Deferred):
        return outcome.addCallback(f)
    if isinstance(outcome, Failure):
        return outcome
    try:
        return f(outcome)
    except Exception:
        return Failure()


def callHook(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """
    Call a hook and always get a Deferred of its result.

    @param f: the hook.
    @param args: its arguments.
    @return: a Deferred of its result.
    """

    def call() -> Any:
        result = f(*args)
        if inspect.iscoroutine(result):
            return Deferred.fromCoroutine(result)
        return result

    return maybeDeferred(call)
