# -*- test-case-name: tests.test_hooks -*-
"""
Calling the application's hooks, which may return a plain value, a
L{Deferred} or a coroutine.

The servers call hooks on every command, so a hook that answers at once is
handled at once: no Deferred is made for it (L{invokeHook}, L{thenCall}).

L{HookServerProtocol} turns a hook's outcome into the calls that answer the
client, the same way for every protocol; the protocol supplies only its
reply type and which of its replies refuse.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import CoroutineType
from typing import Any, ClassVar, Generic, TypeVar, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure
from zope.interface.interface import InterfaceClass

from gomail_twisted.connection import LineServerProtocol

#: A protocol's reply type: hooks return it to answer and raise it to refuse.
_R = TypeVar("_R", bound=Exception)

#: The hold reason while a hook's Deferred is pending.
_HOOK = "hook"


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


class HookServerProtocol(LineServerProtocol, Generic[_R]):
    """
    A line server whose commands call the application's hooks.

    A subclass sets L{replyType}, L{temporaryFailure} and the two log
    formats, and implements L{isRefusal} and L{refuse}; then
    L{awaitHook} answers the client from whatever a hook did.

    @cvar replyType: the protocol's reply, an exception type.
    @cvar temporaryFailure: the reply to a hook that failed unexpectedly.
    @cvar hookFailureFormat: the log format for such a failure, with the
        fields C{hook} and C{peer}.
    @cvar internalErrorFormat: the log format for an error of the server
        while answering, with the field C{peer}.
    """

    replyType: type[_R]
    temporaryFailure: _R
    hookFailureFormat: ClassVar[str]
    internalErrorFormat: ClassVar[str]

    def isRefusal(self, reply: _R) -> bool:
        """
        Whether a reply a hook returned refuses (rather than replacing the
        positive reply).

        @param reply: the hook's reply.
        @return: C{True} for a negative reply.
        """
        raise NotImplementedError

    def refuse(self, reply: _R) -> None:
        """
        Send a refusal: the default answer to a refusing hook.

        @param reply: the refusal.
        """
        raise NotImplementedError

    def logHookFailure(self, failure: Failure, hook: str) -> None:
        """
        Log a hook's unexpected failure.

        @param failure: what it raised.
        @param hook: its name.
        """
        self._log.failure(
            self.hookFailureFormat, failure=failure, hook=hook, peer=self.peer[0]
        )

    def notifyHook(self, hook: Callable[..., object], name: str, *args: object) -> None:
        """
        Call a hook whose outcome changes nothing the client sees; log its
        failure.

        @param hook: the hook.
        @param name: its name, for the log.
        @param args: its arguments.
        """
        outcome = invokeHook(hook, *args)
        if isinstance(outcome, Deferred):
            outcome.addErrback(self.logHookFailure, name)
        elif isinstance(outcome, Failure):
            self.logHookFailure(outcome, name)

    def startSession(
        self,
        backend: Any,
        info: object,
        interface: InterfaceClass,
        started: Callable[[Any], object],
        refused: Callable[[_R], object],
        unavailable: _R,
    ) -> None:
        """
        Ask the backend for a session for this connection (at connection,
        or after STARTTLS), as every server does.

        @param backend: has C{newSession(info)}, a hook.
        @param info: the connection, as the backend is told it.
        @param interface: what the session must provide.
        @param started: called with the session.
        @param refused: called with the reply that refuses the connection:
            it sends it and closes.
        @param unavailable: the reply when the backend fails or gives
            something that is not a session.
        """
        name = self.hookFailureFormat.split(" ", 1)[0]

        def accept(session: Any) -> None:
            if not interface.providedBy(session):
                self._log.error(
                    "{protocol} newSession returned {session!r}, not an {interface}",
                    protocol=name,
                    session=session,
                    interface=interface.__name__,
                )
                refused(unavailable)
                return
            started(session)

        def refuse(reply: _R) -> None:
            self._log.info(
                "{protocol} connection from {peer} refused: {reply}",
                protocol=name,
                peer=self.peer[0],
                reply=str(reply),
            )
            refused(reply)

        def keep(session: object) -> object:
            if self.closed and interface.providedBy(session):
                # The client went meanwhile: the session ends unused.
                self.notifyHook(session.logout, "logout")
            return session

        self.awaitHook(
            thenCall(invokeHook(backend.newSession, info), keep),
            accept,
            refuse,
            failure=unavailable,
            hook="newSession",
        )

    def awaitHook(
        self,
        outcome: object,
        onResult: Callable[[Any], object],
        onReply: Callable[[_R], object] | None = None,
        failure: _R | None = None,
        hook: str = "",
    ) -> None:
        """
        Answer from a hook's outcome (from L{invokeHook}); while it is a
        pending Deferred, hold all further input, so replies keep command
        order (RFC 2920).

        A returned refusal (L{isRefusal}), or a raised reply, goes to
        C{onReply}; any other value to C{onResult}.  Other exceptions are
        logged and answered with C{failure}.  Once the connection is
        closing, nothing is answered.

        @param outcome: a value, a L{Deferred} or a L{Failure}.
        @param onResult: called with an accepting value.
        @param onReply: called with a refusal; L{None} for L{refuse}.
        @param failure: the answer to an unexpected failure; L{None} for
            L{temporaryFailure}.
        @param hook: the hook's name, for the log.
        """
        if outcome is None or not isinstance(outcome, Deferred):
            self._settle(outcome, onResult, onReply, failure, hook)
            return
        pending = True
        held = False

        def done(result: object) -> None:
            nonlocal pending
            pending = False
            try:
                self._settle(result, onResult, onReply, failure, hook)
            finally:
                if held:
                    self.release(_HOOK)

        outcome.addBoth(done)
        if pending:
            held = True
            self.hold(_HOOK)

    def _settle(
        self,
        result: object,
        onResult: Callable[[Any], object],
        onReply: Callable[[_R], object] | None,
        failure: _R | None,
        hook: str,
    ) -> None:
        try:
            if result is None:
                # Accepted, as most hooks do.
                if not self.closed:
                    onResult(None)
            elif isinstance(result, Failure):
                if result.check(self.replyType):
                    reply = cast(_R, result.value)
                else:
                    self.logHookFailure(result, hook)
                    reply = self.temporaryFailure if failure is None else failure
                if not self.closed:
                    (onReply or self.refuse)(reply)
            elif self.closed:
                return
            elif isinstance(result, self.replyType) and self.isRefusal(result):
                (onReply or self.refuse)(result)
            else:
                onResult(result)
        except self.replyType as e:
            self.refuse(e)
        except Exception:
            self._log.failure(self.internalErrorFormat, peer=self.peer[0])
            self.refuse(self.temporaryFailure if failure is None else failure)
