# -*- test-case-name: tests.test_pop3_state -*-
"""
Tests for L{gomail_twisted.pop3._state}: which command is legal in which
state, and what refuses the others.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.pop3 import _reply as R
from gomail_twisted.pop3._state import COMMANDS, LOGIN_COMMANDS, State, refusal

A, T, U = State.AUTHORIZATION, State.TRANSACTION, State.UPDATE

#: RFC 1939 4-6, RFC 2449, RFC 2595, RFC 5034: verb to legal states.
_EXPECTED = {
    "USER": {A},
    "PASS": {A},
    "APOP": {A},
    "AUTH": {A},
    "STLS": {A},
    "CAPA": {A, T},
    "QUIT": {A, T},
    "STAT": {T},
    "LIST": {T},
    "RETR": {T},
    "DELE": {T},
    "NOOP": {T},
    "RSET": {T},
    "TOP": {T},
    "UIDL": {T},
}


class StateTableTests(SynchronousTestCase):
    """
    L{COMMANDS} and L{refusal}.
    """

    def test_table(self) -> None:
        """
        Each command is legal in exactly the states the RFCs give it.
        """
        self.assertEqual(
            {verb: set(states) for verb, states in COMMANDS.items()}, _EXPECTED
        )

    def test_legal(self) -> None:
        """
        A legal command has no refusal.
        """
        for verb, states in _EXPECTED.items():
            for state in states:
                self.assertIsNone(refusal(verb, state), (verb, state))

    def test_noCommandInUpdate(self) -> None:
        """
        Nothing is legal while a QUIT is committed.
        """
        for verb in _EXPECTED:
            self.assertEqual(refusal(verb, U), R.BAD_SEQUENCE)

    def test_refusals(self) -> None:
        """
        Transaction commands before login ask to log in; login commands
        after it say the session is logged in; unknown ones are unknown.
        """
        for verb in ("STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"):
            self.assertEqual(refusal(verb, A), R.NOT_AUTHENTICATED)
        for verb in LOGIN_COMMANDS:
            self.assertEqual(refusal(verb, T), R.ALREADY_AUTHENTICATED)
        self.assertEqual(refusal("STLS", T), R.BAD_SEQUENCE)
        for verb in ("", "LAST", "XTND", "HELO", "EHLO"):
            for state in State:
                self.assertEqual(refusal(verb, state), R.UNKNOWN_COMMAND)
