# -*- test-case-name: tests.test_smtp_state -*-
"""
Which SMTP command is legal in which state (RFC 5321 4.1.4, 4.3.2).

The rules, in one table (L{COMMANDS}):

  - Before HELO or EHLO only the session commands (NOOP, RSET, QUIT, VRFY,
    HELP) and HELO/EHLO themselves; STARTTLS and AUTH need EHLO first
    (RFC 3207 4, RFC 4954 4).
  - HELO or EHLO is legal everywhere and aborts any transaction.
  - MAIL opens a transaction only outside one; RCPT needs MAIL; DATA needs
    at least one accepted RCPT.
  - STARTTLS and AUTH are legal only between transactions.
  - While a data block, a SASL exchange or a TLS negotiation is in progress
    no command is read at all (the protocol is in another mode), so those
    modes are not states of this table.

No I/O here: the protocol asks L{refusal} and sends what it says.
"""

from __future__ import annotations

import enum

from gomail_twisted.smtp._reply import (
    BAD_SEQUENCE,
    COMMAND_UNRECOGNIZED,
    HELO_FIRST,
    NEED_MAIL,
    NEED_RCPT,
    NESTED_MAIL,
    NOT_IMPLEMENTED,
    SMTPReply,
)


class State(enum.Enum):
    """
    The states of an SMTP session between commands.
    """

    #: Greeted; no HELO or EHLO yet.
    CONNECTED = "connected"
    #: HELO or EHLO done; no transaction.
    READY = "ready"
    #: MAIL accepted; no recipient accepted yet.
    MAIL = "mail"
    #: At least one RCPT accepted.
    RCPT = "rcpt"


_ANY = frozenset(State)
_SESSION = frozenset({State.READY, State.MAIL, State.RCPT})

#: Verb to the states in which it is legal.
COMMANDS: dict[str, frozenset[State]] = {
    "HELO": _ANY,
    "EHLO": _ANY,
    "MAIL": frozenset({State.READY}),
    "RCPT": frozenset({State.MAIL, State.RCPT}),
    "DATA": frozenset({State.RCPT}),
    "RSET": _ANY,
    "NOOP": _ANY,
    "QUIT": _ANY,
    "VRFY": _ANY,
    "HELP": _ANY,
    "STARTTLS": frozenset({State.READY}),
    "AUTH": frozenset({State.READY}),
}

#: Verbs we know of and do not offer (RFC 5321 4.2.4: 502, not 500).
UNIMPLEMENTED = frozenset({"EXPN", "TURN", "ETRN", "BDAT", "SEND", "SOML", "SAML"})


def refusal(verb: str, state: State) -> SMTPReply | None:
    """
    The reply that refuses C{verb} in C{state}, or L{None} when it is legal.

    @param verb: the upper-case verb.
    @param state: the current state.
    @return: the refusal, or L{None}.
    """
    allowed = COMMANDS.get(verb)
    if allowed is None:
        return NOT_IMPLEMENTED if verb in UNIMPLEMENTED else COMMAND_UNRECOGNIZED
    if state in allowed:
        return None
    if state is State.CONNECTED:
        return HELO_FIRST
    if verb == "MAIL":
        return NESTED_MAIL
    if verb == "RCPT":
        return NEED_MAIL
    if verb == "DATA":
        return NEED_RCPT
    return BAD_SEQUENCE
