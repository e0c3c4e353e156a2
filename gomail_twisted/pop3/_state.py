# -*- test-case-name: tests.test_pop3_state -*-
"""
Which POP3 command is legal in which state (RFC 1939 3, 4, 5, 6).

The rules, in one table (L{COMMANDS}):

  - AUTHORIZATION, from the greeting until a login succeeds: USER, PASS,
    APOP, AUTH (RFC 5034), STLS (RFC 2595), CAPA (RFC 2449) and QUIT.
    PASS needs USER just before it, which the protocol checks: that is a
    step within the state, not a state.
  - TRANSACTION, once logged in: STAT, LIST, RETR, DELE, NOOP, RSET, TOP,
    UIDL, CAPA and QUIT.  No login command is legal here: a session never
    switches accounts.
  - UPDATE, after QUIT in TRANSACTION, while deletions are committed: no
    command at all; input is not even read, and the connection closes when
    the commit is answered.
  - During a SASL exchange or a TLS handshake no command is read (the
    protocol is in another mode), so those are not states here.

No I/O here: the protocol asks L{refusal} and sends what it says.
"""

from __future__ import annotations

import enum

from gomail_twisted.pop3._reply import (
    ALREADY_AUTHENTICATED,
    BAD_SEQUENCE,
    NOT_AUTHENTICATED,
    UNKNOWN_COMMAND,
    POP3Reply,
)


class State(enum.Enum):
    """
    The states of a POP3 session (RFC 1939 3).
    """

    #: Greeted; not logged in.
    AUTHORIZATION = "authorization"
    #: Logged in; the maildrop is open.
    TRANSACTION = "transaction"
    #: QUIT received in TRANSACTION; deletions are being committed.
    UPDATE = "update"


_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_BOTH = _AUTHORIZATION | _TRANSACTION

#: Verb to the states in which it is legal.
COMMANDS: dict[str, frozenset[State]] = {
    "USER": _AUTHORIZATION,
    "PASS": _AUTHORIZATION,
    "APOP": _AUTHORIZATION,
    "AUTH": _AUTHORIZATION,
    "STLS": _AUTHORIZATION,
    "CAPA": _BOTH,
    "QUIT": _BOTH,
    "STAT": _TRANSACTION,
    "LIST": _TRANSACTION,
    "RETR": _TRANSACTION,
    "DELE": _TRANSACTION,
    "NOOP": _TRANSACTION,
    "RSET": _TRANSACTION,
    "TOP": _TRANSACTION,
    "UIDL": _TRANSACTION,
}

#: The commands that log in: refused once logged in.
LOGIN_COMMANDS = frozenset({"USER", "PASS", "APOP", "AUTH"})


def refusal(verb: str, state: State) -> POP3Reply | None:
    """
    The reply that refuses C{verb} in C{state}, or L{None} when it is legal.

    @param verb: the upper-case verb.
    @param state: the current state.
    @return: the refusal, or L{None}.
    """
    allowed = COMMANDS.get(verb)
    if allowed is None:
        return UNKNOWN_COMMAND
    if state in allowed:
        return None
    if state is State.AUTHORIZATION:
        return NOT_AUTHENTICATED
    if state is State.TRANSACTION and verb in LOGIN_COMMANDS:
        return ALREADY_AUTHENTICATED
    return BAD_SEQUENCE
