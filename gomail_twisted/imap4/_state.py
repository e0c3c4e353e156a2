# -*- test-case-name: tests.test_imap4_state -*-
"""
Which IMAP4 command is legal in which state (RFC 3501 3, 6).

The four states of RFC 3501 3, in one table (L{COMMANDS}):

  - NOT_AUTHENTICATED, from the greeting until a login: CAPABILITY, NOOP,
    LOGOUT, STARTTLS, AUTHENTICATE, LOGIN, ID.
  - AUTHENTICATED, once logged in, with no mailbox selected: the mailbox
    commands (SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
    UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND), NAMESPACE, ENABLE, IDLE.
  - SELECTED, with a mailbox selected: all of those, and the message
    commands (CHECK, CLOSE, UNSELECT, EXPUNGE, SEARCH, FETCH, STORE,
    COPY, MOVE and their UID forms).
  - LOGOUT, after LOGOUT: nothing; the connection closes.

No I/O here: the protocol asks L{refusal} and sends what it says.
"""

from __future__ import annotations

import enum

from gomail_twisted.imap4._status import IMAPStatus


class State(enum.Enum):
    """
    The states of an IMAP4 session (RFC 3501 3).
    """

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
_AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
_SELECTED = frozenset({State.SELECTED})

#: Command name (as L{Command.name<gomail_twisted.imap4._commands.Command>}
#: gives it) to the states in which it is legal.
COMMANDS: dict[str, frozenset[State]] = {
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,
    "STARTTLS": _NOT_AUTHENTICATED,
    "AUTHENTICATE": _NOT_AUTHENTICATED,
    "LOGIN": _NOT_AUTHENTICATED,
    "ENABLE": _AUTHENTICATED,
    "SELECT": _AUTHENTICATED,
    "EXAMINE": _AUTHENTICATED,
    "CREATE": _AUTHENTICATED,
    "DELETE": _AUTHENTICATED,
    "RENAME": _AUTHENTICATED,
    "SUBSCRIBE": _AUTHENTICATED,
    "UNSUBSCRIBE": _AUTHENTICATED,
    "LIST": _AUTHENTICATED,
    "LSUB": _AUTHENTICATED,
    "STATUS": _AUTHENTICATED,
    "APPEND": _AUTHENTICATED,
    "NAMESPACE": _AUTHENTICATED,
    "IDLE": _AUTHENTICATED,
    "CHECK": _SELECTED,
    "CLOSE": _SELECTED,
    "UNSELECT": _SELECTED,
    "EXPUNGE": _SELECTED,
    "SEARCH": _SELECTED,
    "FETCH": _SELECTED,
    "STORE": _SELECTED,
    "COPY": _SELECTED,
    "MOVE": _SELECTED,
}


def refusal(name: str, state: State) -> IMAPStatus | None:
    """
    The reply that refuses a command in a state, or L{None} when it is
    legal there.

    @param name: the command's name, upper case.
    @param state: the session's state.
    @return: a C{BAD} status naming what is wrong.
    """
    allowed = COMMANDS.get(name)
    if allowed is None:
        return IMAPStatus.bad(f"Unknown command {name}")
    if state in allowed:
        return None
    if state is State.NOT_AUTHENTICATED:
        return IMAPStatus.bad(f"{name} needs a login first")
    if allowed == _NOT_AUTHENTICATED:
        return IMAPStatus.bad(f"{name} is not allowed once logged in")
    if allowed == _SELECTED:
        return IMAPStatus.bad(f"{name} needs a selected mailbox")
    return IMAPStatus.bad(f"{name} is not allowed now")
