# -*- test-case-name: tests.test_queue_spool -*-
"""
What the queue knows about one message: its envelope sender, and per
recipient whether it is still to be delivered, delivered, or failed for
good, with the last reply; and how that is written to the message's state
file (JSON, one object).

A state file looks like this::

    {"version": 1, "id": "0000000003e8a1b2c3d4", "sender": "a@example.com",
     "created": 1000.0, "size": 1234, "delayWarned": false,
     "recipients": [
        {"address": "b@example.net", "status": "pending", "attempts": 1,
         "nextAttempt": 1300.0, "lastAttempt": 1000.0, "code": 451,
         "enhanced": "4.3.0", "text": "Try again later",
         "remoteHost": "mx.example.net", "notified": false,
         "expired": false}]}

Times are seconds since the epoch, by the queue's reactor clock.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "CorruptState",
    "QueuedMessage",
    "RecipientState",
    "RecipientStatus",
    "decodeState",
    "encodeState",
    "isQueueID",
    "newQueueID",
]

#: The version of the state file format.
STATE_VERSION = 1

#: A recipient's state: still to be delivered, taken by its server, or
#: failed for good (refused permanently, or the message expired).
RecipientStatus = Literal["pending", "delivered", "failed"]

_STATUSES = ("pending", "delivered", "failed")
_QUEUE_ID = re.compile(r"\A[0-9a-f]{20}\Z")
#: Seeded once from the system: reading os.urandom for every identifier
#: costs a system call each, which is slow on some virtual machines.
_random = random.Random()


class CorruptState(ValueError):
    """
    A state file cannot be read: not JSON, or not the shape it must have.
    """


def newQueueID(now: float) -> str:
    """
    Make a queue identifier: the time in milliseconds and eight random hex
    digits, so that identifiers sort by age and never collide in practice.

    @param now: the time, in seconds since the epoch.
    @return: twenty lower-case hex digits.
    """
    return f"{int(now * 1000) & 0xFFFFFFFFFFFF:012x}{_random.getrandbits(32):08x}"


def isQueueID(text: str) -> bool:
    """
    @param text: a string, such as a command line argument.
    @return: whether it has the form of a queue identifier (and so is safe
        to use in a file name).
    """
    return _QUEUE_ID.match(text) is not None


def domainOf(address: str) -> str:
    """
    @param address: an address, C{local@domain}.
    @return: its domain, lower case.
    """
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class RecipientState:
    """
    Where one recipient of a queued message stands.

    @ivar address: the envelope recipient.
    @ivar status: C{"pending"}, C{"delivered"} or C{"failed"}.
    @ivar attempts: how many delivery attempts were made for it.
    @ivar nextAttempt: when to try next, while pending.
    @ivar lastAttempt: when it was last tried, or L{None}.
    @ivar code: the last reply code about it, or L{None} (no reply: a
        connection or DNS error).
    @ivar enhanced: that reply's enhanced status code (RFC 3463), or
        L{None}.
    @ivar text: the last reply's text, or what went wrong.
    @ivar remoteHost: the server that gave the last reply, if any.
    @ivar notified: whether the sender was told of its failure (a DSN was
        queued or delivered), once failed.
    @ivar expired: whether it failed because the message stayed in the
        queue past its lifetime, rather than by a permanent refusal.
    """

    address: str
    status: RecipientStatus = "pending"
    attempts: int = 0
    nextAttempt: float = 0.0
    lastAttempt: float | None = None
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    remoteHost: str = ""
    notified: bool = False
    expired: bool = False

    @property
    def domain(self) -> str:
        """
        The recipient's domain, lower case.
        """
        return domainOf(self.address)

    @property
    def reply(self) -> str:
        """
        The last reply as one line (C{"451 4.3.0 Try again later"}), or the
        error text when there was no reply.
        """
        parts = [str(self.code) if self.code is not None else "", self.enhanced or ""]
        return " ".join(p for p in (*parts, self.text) if p)


@dataclass(frozen=True)
class QueuedMessage:
    """
    A message in the queue.

    @ivar queueID: its identifier (see L{newQueueID}).
    @ivar sender: the envelope sender, or C{""} for the null reverse-path
        (a delivery status notification, which never gets one itself).
    @ivar created: when it was queued.
    @ivar size: the message's size in bytes.
    @ivar recipients: one L{RecipientState} per envelope recipient.
    @ivar delayWarned: whether the sender was warned of the delay.
    """

    queueID: str
    sender: str
    created: float
    size: int
    recipients: tuple[RecipientState, ...]
    delayWarned: bool = False

    @property
    def pending(self) -> tuple[RecipientState, ...]:
        """
        The recipients still to be delivered.
        """
        return tuple(r for r in self.recipients if r.status == "pending")

    @property
    def unnotified(self) -> tuple[RecipientState, ...]:
        """
        The recipients that failed and the sender was not yet told about.
        """
        return tuple(
            r for r in self.recipients if r.status == "failed" and not r.notified
        )

    @property
    def done(self) -> bool:
        """
        Whether nothing is left to do: no recipient pending, every failure
        reported.
        """
        return not self.pending and not self.unnotified

    def pendingDomains(self) -> dict[str, tuple[RecipientState, ...]]:
        """
        @return: the pending recipients grouped by domain, in order.
        """
        groups: dict[str, list[RecipientState]] = {}
        for r in self.pending:
            groups.setdefault(r.domain, []).append(r)
        return {d: tuple(rs) for d, rs in groups.items()}

    def withRecipients(self, updates: Mapping[str, RecipientState]) -> QueuedMessage:
        """
        @param updates: new states, by address.
        @return: this message with those recipients' states replaced.
        """
        return replace(
            self,
            recipients=tuple(updates.get(r.address, r) for r in self.recipients),
        )


def encodeState(message: QueuedMessage) -> bytes:
    """
    @param message: a queued message.
    @return: its state file's contents.
    """
    document = {
        "version": STATE_VERSION,
        "id": message.queueID,
        "sender": message.sender,
        "created": message.created,
        "size": message.size,
        "delayWarned": message.delayWarned,
        "recipients": [
            {
                "address": r.address,
                "status": r.status,
                "attempts": r.attempts,
                "nextAttempt": r.nextAttempt,
                "lastAttempt": r.lastAttempt,
                "code": r.code,
                "enhanced": r.enhanced,
                "text": r.text,
                "remoteHost": r.remoteHost,
                "notified": r.notified,
                "expired": r.expired,
            }
            for r in message.recipients
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"


def _field(obj: Mapping[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    value = obj.get(name)
    # bool is an int: refuse it where a number is wanted.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise CorruptState(f"field {name!r} is missing or of the wrong type")
    return value


def _number(obj: Mapping[str, Any], name: str) -> float:
    return float(_field(obj, name, (int, float)))


def _recipient(obj: Any) -> RecipientState:
    if not isinstance(obj, dict):
        raise CorruptState("a recipient is not an object")
    status = _field(obj, "status", (str,))
    if status not in _STATUSES:
        raise CorruptState(f"unknown recipient status {status!r}")
    address = _field(obj, "address", (str,))
    if "@" not in address or any(c in address for c in "\r\n<>"):
        raise CorruptState(f"bad recipient address {address!r}")
    lastAttempt = obj.get("lastAttempt")
    code = obj.get("code")
    enhanced = obj.get("enhanced")
    if lastAttempt is not None:
        lastAttempt = _number(obj, "lastAttempt")
    if code is not None:
        code = int(_field(obj, "code", (int,)))
    if enhanced is not None:
        enhanced = _field(obj, "enhanced", (str,))
    return RecipientState(
        address=address,
        status=status,
        attempts=int(_field(obj, "attempts", (int,))),
        nextAttempt=_number(obj, "nextAttempt"),
        lastAttempt=lastAttempt,
        code=code,
        enhanced=enhanced,
        text=_field(obj, "text", (str,)),
        remoteHost=_field(obj, "remoteHost", (str,)),
        notified=_field(obj, "notified", (bool,)),
        expired=_field(obj, "expired", (bool,)),
    )


def decodeState(data: bytes, queueID: str | None = None) -> QueuedMessage:
    """
    Read a state file.

    @param data: its contents.
    @param queueID: the identifier its name gives, which it must hold.
    @return: the queued message it describes.
    @raise CorruptState: it is not a state file of this version, or holds
        another identifier.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptState(f"not JSON: {e}") from None
    if not isinstance(document, dict):
        raise CorruptState("not a JSON object")
    if document.get("version") != STATE_VERSION:
        raise CorruptState(f"unknown version {document.get('version')!r}")
    found = _field(document, "id", (str,))
    if not isQueueID(found) or (queueID is not None and found != queueID):
        raise CorruptState(f"identifier {found!r} does not match the file name")
    recipients = _field(document, "recipients", (list,))
    if not recipients:
        raise CorruptState("no recipients")
    sender = _field(document, "sender", (str,))
    if any(c in sender for c in "\r\n<>"):
        raise CorruptState(f"bad sender {sender!r}")
    return QueuedMessage(
        queueID=found,
        sender=sender,
        created=_number(document, "created"),
        size=int(_field(document, "size", (int,))),
        recipients=tuple(_recipient(r) for r in recipients),
        delayWarned=_field(document, "delayWarned", (bool,)),
    )
