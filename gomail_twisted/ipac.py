# -*- test-case-name: tests.test_ipac -*-
"""
IP access control, after the model of go-ip-ac: per-address counts, within
a window, of new unauthenticated connections and of failed logins; a warning
and then a block once they pass their thresholds; IPv6 addresses aggregated
into subnets that are blocked once enough addresses in them are.

A server asks L{IPAccessControl.isBlocked} when a peer connects (a few dict
lookups, no scan) and refuses a blocked peer with its protocol's own short
error; it reports L{IPAccessControl.connectionMade},
L{IPAccessControl.loginFailed} and L{IPAccessControl.loginSucceeded}.

Not bypassable by a good login: a successful login forgives the address's
new-connection count (a client opening many connections of its own), never
its failed logins, which count per address whatever else happens.

Each block is logged, at level C{warn}, on one line of a fixed format::

    gomail ipac: blocked 192.0.2.7 for 3600 s: 30 failed logins
    gomail ipac: blocked 192.0.2.7 for 3600 s: 600 new connections
    gomail ipac: blocked subnet 2001:db8::/64 for 3600 s: 3 addresses blocked

whose text (after the log file's own time stamp and prefix) this regular
expression matches (the C{host} group is the address, absent in a subnet
line, the C{subnet} group the subnet)::

    ^gomail ipac: blocked (?:subnet (?P<subnet>[0-9A-Fa-f:.]+/[0-9]+)|
    (?P<host>[0-9A-Fa-f:.]+)) for [0-9]+ s: .+$

(one line, without the break after C{|}; L{BLOCK_LOG_PATTERN}).  In
twistd's log file such a line reads::

    2026-11-30T18:00:00+0000 [gomail_twisted.ipac.IPAccessControl#warn]
    gomail ipac: blocked 192.0.2.7 for 3600 s: 30 failed logins

(one line, without the break after C{]}); the fail2ban filter
C{contrib/fail2ban/filter.d/gomail.conf} matches it, anchored at the
C{[namespace#level]} field so that text a client gets into another log
line cannot ban anyone.

Memory is bounded: an address's counts go once its window ends, a block
once it ends; each call does a little of that expiry (no full scans), and
each table holds at most C{maxEntries} entries, dropping the least recently
updated beyond it, so a flood of distinct addresses cannot grow it.

An address string that does not parse (L{ipaddress.ip_address}, with an
IPv6 zone dropped) is neither counted nor blocked, and logged at debug: it
cannot have come from a real TCP peer.  IPv4-mapped IPv6 addresses
(C{::ffff:a.b.c.d}) are the IPv4 address.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = [
    "BLOCK_LOG_PATTERN",
    "DEFAULT_ALLOW",
    "AccessEvent",
    "EventKind",
    "IPAccessControl",
]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What the tables are keyed by: C{(version * 1000 + prefix, value)}, the
#: value an address's integer shifted right to its prefix; cheaper to make
#: and hash than text or L{ipaddress} objects, and turned into text only
#: for the log and events (L{_text}).
_Key = tuple[int, int]


def _addressKey(ip: _Address) -> _Key:
    """
    The key of an address.
    """
    return (ip.version * 1000 + ip.max_prefixlen, int(ip))


def _text(key: _Key) -> str:
    """
    An address, or a subnet in CIDR notation, as text.
    """
    code, value = key
    version, prefix = divmod(code, 1000)
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    if prefix == 128:
        return str(ipaddress.IPv6Address(value))
    return str(ipaddress.IPv6Network((value << (128 - prefix), prefix)))


#: The regular expression every block's log line matches; C{host} is the
#: blocked address, C{subnet} the blocked subnet.
BLOCK_LOG_PATTERN = (
    r"^gomail ipac: blocked (?:subnet (?P<subnet>[0-9A-Fa-f:.]+/[0-9]+)|"
    r"(?P<host>[0-9A-Fa-f:.]+)) for [0-9]+ s: .+$"
)

#: The networks never counted nor blocked by default: loopback.
DEFAULT_ALLOW: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

#: How many stale entries one call may expire; enough to keep up with the
#: calls that add them, small enough to cost nothing.
_SWEEP = 4


class EventKind(enum.Enum):
    """
    What happened, as the notify hook is told.
    """

    IP_WARNED = "ip warned"
    IP_BLOCKED = "ip blocked"
    SUBNET_BLOCKED = "subnet blocked"
    FAILING_AFTER_SUCCESS = "logins failing after a success"


#: The log line of each event that is not a block.
_TOLD = {
    EventKind.IP_WARNED: "gomail ipac: warned {address}: {reason}",
    EventKind.FAILING_AFTER_SUCCESS: (
        "gomail ipac: {address} fails logins after a success: {reason}"
    ),
}


@dataclass(frozen=True)
class AccessEvent:
    """
    One event of access control.

    @ivar kind: what happened.
    @ivar address: the address, or the subnet in CIDR notation.
    @ivar reason: why, in words (such as C{"30 failed logins"}).
    @ivar until: when a block ends, in reactor seconds; C{0.0} for other
        events.
    """

    kind: EventKind
    address: str
    reason: str
    until: float = 0.0


class _Counts:
    """
    One address's counts within its window.
    """

    __slots__ = ("connections", "failures", "start", "succeeded", "told", "warned")

    def __init__(self, start: float) -> None:
        self.start = start
        self.connections = 0
        self.failures = 0
        self.warned = False
        self.succeeded = False
        self.told = False


class IPAccessControl:
    """
    Counts, warnings and blocks per peer address.

    @ivar reactor: the clock.
    @ivar window: seconds over which connections and failures are counted,
        from an address's first counted event.
    @ivar warnAfterConnections: new unauthenticated connections in a window
        at which the address is warned about (notify and log only).
    @ivar blockAfterConnections: new unauthenticated connections in a
        window at which the address is blocked.
    @ivar blockAfterFailures: failed logins in a window at which the
        address is blocked.
    @ivar blockFor: seconds a block lasts.
    @ivar subnetPrefixes: the IPv6 prefix lengths addresses are aggregated
        into, narrowest first; each wider subnet counts the blocked subnets
        of the next narrower one.
    @ivar subnetThreshold: distinct blocked members at which a subnet is
        blocked.
    @ivar maxEntries: the most entries each table holds.
    @ivar notify: called with each L{AccessEvent}, or L{None}.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        window: float = 3600.0,
        warnAfterConnections: int = 80,
        blockAfterConnections: int = 600,
        blockAfterFailures: int = 30,
        blockFor: float = 3600.0,
        subnetPrefixes: Sequence[int] = (64,),
        subnetThreshold: int = 3,
        allow: Iterable[str] = DEFAULT_ALLOW,
        maxEntries: int = 100_000,
        notify: Callable[[AccessEvent], None] | None = None,
    ) -> None:
        """
        @param reactor: see L{reactor}.
        @param window: see L{window}.
        @param warnAfterConnections: see L{warnAfterConnections}.
        @param blockAfterConnections: see L{blockAfterConnections}.
        @param blockAfterFailures: see L{blockAfterFailures}.
        @param blockFor: see L{blockFor}.
        @param subnetPrefixes: see L{subnetPrefixes}; each below 128.
        @param subnetThreshold: see L{subnetThreshold}.
        @param allow: networks (CIDR) never counted nor blocked; empty to
            count and block every address.
        @param maxEntries: see L{maxEntries}.
        @param notify: see L{notify}.
        @raise ValueError: for an invalid network or prefix, or a bound
            below 1.
        """
        self.reactor = reactor
        self.window = window
        self.warnAfterConnections = warnAfterConnections
        self.blockAfterConnections = blockAfterConnections
        self.blockAfterFailures = blockAfterFailures
        self.blockFor = blockFor
        self.subnetPrefixes = tuple(sorted(subnetPrefixes, reverse=True))
        if any(not 0 < p < 128 for p in self.subnetPrefixes):
            raise ValueError(f"invalid IPv6 prefixes: {subnetPrefixes!r}")
        if maxEntries < 1 or subnetThreshold < 1:
            raise ValueError("maxEntries and subnetThreshold must be positive")
        self.subnetThreshold = subnetThreshold
        self.maxEntries = maxEntries
        self.notify = notify
        self._allow: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allow
        )
        # Each table in the order of last update, oldest first: an
        # OrderedDict, since taking the first item of a plain dict that has
        # lost many from its front scans their holes.
        self._counts: OrderedDict[_Key, _Counts] = OrderedDict()
        # Address or subnet -> when its block ends; blocks all last as
        # long, so this order is also the order they end in.
        self._blocks: OrderedDict[_Key, float] = OrderedDict()
        # Subnet -> its blocked members -> when each was counted.
        self._members: OrderedDict[_Key, dict[_Key, float]] = OrderedDict()

    # Parsing.

    def _parse(self, address: str) -> _Address | None:
        """
        The address, or L{None} if it is invalid or allowed.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            self._log.debug("Invalid peer address {address!r}", address=address)
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            elif ip.scope_id is not None:
                ip = ipaddress.IPv6Address(int(ip))
        for network in self._allow:
            if ip.version == network.version and ip in network:
                return None
        return ip

    def _subnets(self, ip: _Address) -> list[_Key]:
        """
        The subnets an address is aggregated into, narrowest first.
        """
        if not isinstance(ip, ipaddress.IPv6Address):
            return []
        value = int(ip)
        return [(6000 + p, value >> (128 - p)) for p in self.subnetPrefixes]

    # Asking.

    def isBlocked(self, address: str) -> bool:
        """
        Whether a peer is to be refused now, as a server asks when it
        connects.

        @param address: the peer's IP address, as text.
        @return: whether it, or a subnet of it, is blocked.
        """
        blocks = self._blocks
        if not blocks:
            return False
        ip = self._parse(address)
        if ip is None:
            return False
        now = self.reactor.seconds()
        for key in (_addressKey(ip), *self._subnets(ip)):
            until = blocks.get(key)
            if until is not None and until > now:
                return True
        return False

    # Counting.

    def _entry(self, key: _Key, now: float) -> _Counts:
        """
        The address's counts in the current window, made the most recent.
        """
        counts = self._counts
        entry = counts.get(key)
        if entry is None or entry.start + self.window <= now:
            entry = counts[key] = _Counts(now)
        counts.move_to_end(key)
        return entry

    def _counting(self, address: str) -> tuple[_Address, float, _Counts] | None:
        """
        The counts of an address that is not blocked, its table made fresh
        when its window has passed.

        @return: the address, the time, and its counts; L{None} for text
            that is no IP address, an allowed one, or a blocked one.
        """
        ip = self._parse(address)
        if ip is None:
            return None
        now = self._expire()
        key = _addressKey(ip)
        if self._blocked(key, now):
            return None
        return ip, now, self._entry(key, now)

    def _tell(self, kind: EventKind, ip: _Address, reason: str) -> None:
        """
        Log an event that is not a block, and tell the notify hook.
        """
        text = _text(_addressKey(ip))
        self._log.info(_TOLD[kind], address=text, reason=reason)
        self._emit(AccessEvent(kind, text, reason))

    def connectionMade(self, address: str) -> None:
        """
        Count a new, unauthenticated connection.

        @param address: the peer's IP address, as text.
        """
        counting = self._counting(address)
        if counting is None:
            return
        ip, now, entry = counting
        entry.connections += 1
        reason = f"{entry.connections} new connections"
        if entry.connections >= self.blockAfterConnections:
            self._block(ip, now, reason)
        elif entry.connections >= self.warnAfterConnections and not entry.warned:
            entry.warned = True
            self._tell(EventKind.IP_WARNED, ip, reason)

    def loginFailed(self, address: str) -> None:
        """
        Count a failed login; a success never forgives it.

        @param address: the peer's IP address, as text.
        """
        counting = self._counting(address)
        if counting is None:
            return
        ip, now, entry = counting
        entry.failures += 1
        reason = f"{entry.failures} failed logins"
        if entry.succeeded and not entry.told:
            entry.told = True
            self._tell(EventKind.FAILING_AFTER_SUCCESS, ip, reason)
        if entry.failures >= self.blockAfterFailures:
            self._block(ip, now, reason)

    def loginSucceeded(self, address: str) -> None:
        """
        Note a successful login: the address's new connections are no longer
        unauthenticated, so their count starts again; its failed logins stay.

        @param address: the peer's IP address, as text.
        """
        ip = self._parse(address)
        if ip is None:
            return
        now = self._expire()
        entry = self._entry(_addressKey(ip), now)
        entry.succeeded = True
        entry.connections = 0
        entry.warned = False

    # Blocking.

    def _blocked(self, key: _Key, now: float) -> bool:
        until = self._blocks.get(key)
        return until is not None and until > now

    def _block(self, ip: _Address, now: float, reason: str) -> None:
        """
        Block an address, forget its counts, and count it in its subnets.
        """
        key = _addressKey(ip)
        self._counts.pop(key, None)
        self._addBlock(key, now)
        text = str(ip)
        self._log.warn(
            "gomail ipac: blocked {address} for {seconds} s: {reason}",
            address=text,
            seconds=int(self.blockFor),
            reason=reason,
        )
        self._emit(AccessEvent(EventKind.IP_BLOCKED, text, reason, now + self.blockFor))
        member, what = key, "addresses"
        for subnet in self._subnets(ip):
            if self._blocked(subnet, now):
                return
            members = self._members.pop(subnet, {})
            members = {m: t for m, t in members.items() if t + self.blockFor > now}
            members[member] = now
            if len(members) < self.subnetThreshold:
                self._members[subnet] = members
                self._trim(self._members)
                return
            reason = f"{len(members)} {what} blocked"
            self._addBlock(subnet, now)
            text = _text(subnet)
            self._log.warn(
                "gomail ipac: blocked subnet {subnet} for {seconds} s: {reason}",
                subnet=text,
                seconds=int(self.blockFor),
                reason=reason,
            )
            self._emit(
                AccessEvent(EventKind.SUBNET_BLOCKED, text, reason, now + self.blockFor)
            )
            member, what = subnet, "subnets"

    def _addBlock(self, key: _Key, now: float) -> None:
        self._blocks.pop(key, None)
        self._blocks[key] = now + self.blockFor
        self._trim(self._blocks)

    def _emit(self, event: AccessEvent) -> None:
        if self.notify is None:
            return
        try:
            self.notify(event)
        except Exception:
            self._log.failure("ipac notify hook failed on {event!r}", event=event)

    # Memory.

    def _trim(self, table: OrderedDict[_Key, Any]) -> None:
        while len(table) > self.maxEntries:
            table.popitem(last=False)

    def _expire(self) -> float:
        """
        Drop a few stale entries from the front of each table, and the
        least recent beyond the cap.

        @return: the time now.
        """
        now = self.reactor.seconds()
        counts = self._counts
        for _ in range(_SWEEP):
            if not counts:
                break
            key = next(iter(counts))
            if counts[key].start + self.window > now:
                break
            del counts[key]
        blocks = self._blocks
        for _ in range(_SWEEP):
            if not blocks:
                break
            key = next(iter(blocks))
            if blocks[key] > now:
                break
            del blocks[key]
        members = self._members
        for _ in range(_SWEEP):
            if not members:
                break
            key = next(iter(members))
            if max(members[key].values(), default=0.0) + self.blockFor > now:
                break
            del members[key]
        # One more than the cap at most: each call adds at most one.
        while len(counts) >= self.maxEntries:
            counts.popitem(last=False)
        return now

    @property
    def size(self) -> int:
        """
        How many entries are held in all, for tests and monitoring.
        """
        return len(self._counts) + len(self._blocks) + len(self._members)
