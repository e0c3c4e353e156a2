# -*- test-case-name: tests.test_maildir_store -*-
"""
What one piece of a folder's disk work changed (L{Changes}), as the
reactor thread applies it to the open views, and the bulk making of the
L{MessageInfo}s a first look at a large folder needs.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from gomail_twisted.maildir.interfaces import MessageInfo


@dataclass
class Changes:
    """
    What one call changed, for the views.

    @ivar gone: the folder no longer exists.
    @ivar reset: its UIDVALIDITY changed: every message is new.
    @ivar added: messages new to this process, ascending.
    @ivar changed: messages whose flags changed.
    @ivar expunged: UIDs that left the folder.
    @ivar claimed: UIDs moved from C{new/} to C{cur/} by this call.
    """

    gone: bool = False
    reset: bool = False
    added: list[MessageInfo] = field(default_factory=list)
    changed: list[MessageInfo] = field(default_factory=list)
    expunged: list[int] = field(default_factory=list)
    claimed: list[int] = field(default_factory=list)


_FIELD_SETTERS = tuple(
    getattr(MessageInfo, f.name).__set__ for f in dataclasses.fields(MessageInfo)
)


def buildInfos(
    uids: list[int],
    flags: Iterable[frozenset[str]],
    sizes: Iterable[int],
    dates: Iterable[float],
    modSeqs: Iterable[int],
) -> list[MessageInfo]:
    """
    Make many L{MessageInfo}s at once, a field at a time: each field is
    set by its slot's descriptor over all of them, without a call of
    C{__init__} per message, which costs twice as much.  The values are
    the same as C{MessageInfo(uid, flags, size, date, modSeq)}'s.
    """
    infos = list(map(object.__new__, itertools.repeat(MessageInfo, len(uids))))
    columns = (uids, flags, sizes, dates, modSeqs)
    for setter, column in zip(_FIELD_SETTERS, columns, strict=True):
        collections.deque(map(setter, infos, column), maxlen=0)
    return infos
