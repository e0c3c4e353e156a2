# -*- test-case-name: tests.test_smtp_state -*-
"""
Tests for L{gomail_twisted.smtp._state}: which command is legal in which
state (RFC 5321 4.1.4, 4.3.2; RFC 3207 4; RFC 4954 4).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import _reply as R
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp._state import COMMANDS, UNIMPLEMENTED, State, refusal

C, READY, MAIL, RCPT = State.CONNECTED, State.READY, State.MAIL, State.RCPT
OK = None

#: Every implemented verb and, per state, the expected answer of L{refusal}.
TABLE: dict[str, dict[State, SMTPReply | None]] = {
    "HELO": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "EHLO": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "MAIL": {C: R.HELO_FIRST, READY: OK, MAIL: R.NESTED_MAIL, RCPT: R.NESTED_MAIL},
    "RCPT": {C: R.HELO_FIRST, READY: R.NEED_MAIL, MAIL: OK, RCPT: OK},
    "DATA": {C: R.HELO_FIRST, READY: R.NEED_RCPT, MAIL: R.NEED_RCPT, RCPT: OK},
    "RSET": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "NOOP": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "QUIT": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "VRFY": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "HELP": {C: OK, READY: OK, MAIL: OK, RCPT: OK},
    "STARTTLS": {
        C: R.HELO_FIRST,
        READY: OK,
        MAIL: R.BAD_SEQUENCE,
        RCPT: R.BAD_SEQUENCE,
    },
    "AUTH": {C: R.HELO_FIRST, READY: OK, MAIL: R.BAD_SEQUENCE, RCPT: R.BAD_SEQUENCE},
}


class RefusalTests(SynchronousTestCase):
    """
    L{refusal} answers every verb in every state.
    """

    def test_tableCoversEveryVerbAndState(self) -> None:
        """
        The expected table names exactly the implemented verbs and every state.
        """
        self.assertEqual(set(TABLE), set(COMMANDS))
        for verb, row in TABLE.items():
            self.assertEqual(set(row), set(State), verb)

    def test_everyVerbInEveryState(self) -> None:
        """
        Each implemented verb is allowed or refused with the exact reply in
        each state.
        """
        for verb, row in TABLE.items():
            for state, expected in row.items():
                self.assertEqual(refusal(verb, state), expected, (verb, state))

    def test_refusalsAre503(self) -> None:
        """
        Every out-of-sequence refusal is 503 5.5.1 (RFC 5321 4.2.4).
        """
        for verb, row in TABLE.items():
            for state in row:
                reply = refusal(verb, state)
                if reply is not None:
                    self.assertEqual((reply.code, reply.enhanced), (503, "5.5.1"))

    def test_unimplementedVerbs(self) -> None:
        """
        Known verbs we do not offer are 502 5.5.1 in every state.
        """
        verbs = {"EXPN", "TURN", "ETRN", "BDAT", "SEND", "SOML", "SAML"}
        self.assertEqual(UNIMPLEMENTED, verbs)
        for verb in verbs:
            for state in State:
                self.assertEqual(refusal(verb, state), R.NOT_IMPLEMENTED, (verb, state))
        self.assertEqual(
            (R.NOT_IMPLEMENTED.code, R.NOT_IMPLEMENTED.enhanced), (502, "5.5.1")
        )

    def test_unknownVerbs(self) -> None:
        """
        Unknown verbs, empty or junk verbs and lower-case verbs (the protocol
        upper-cases first) are 500 5.5.2 in every state.
        """
        for verb in ["", "FOO", "MAILFROM", "helo", "EHLO\t", "\ufffd", "X" * 600]:
            for state in State:
                self.assertEqual(
                    refusal(verb, state), R.COMMAND_UNRECOGNIZED, (verb, state)
                )
        self.assertEqual(
            (R.COMMAND_UNRECOGNIZED.code, R.COMMAND_UNRECOGNIZED.enhanced),
            (500, "5.5.2"),
        )

    def test_implementedAndUnimplementedDisjoint(self) -> None:
        """
        No verb is both implemented and listed as unimplemented.
        """
        self.assertEqual(set(COMMANDS) & UNIMPLEMENTED, set())
