"""
IP access control: the thresholds at which an address is warned about and
blocked, how long counts and blocks last, IPv6 subnets, the allow-list, the
self.events and log lines it makes, and the bound on its memory.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.ipac import (
    BLOCK_LOG_PATTERN,
    DEFAULT_ALLOW,
    AccessEvent,
    EventKind,
    IPAccessControl,
)

PEER = "192.0.2.7"


def _make(**kwargs: Any) -> tuple[IPAccessControl, Clock, list[AccessEvent]]:
    clock = Clock()
    events: list[AccessEvent] = []
    kwargs.setdefault("allow", ())
    ac = IPAccessControl(clock, notify=events.append, **kwargs)
    return ac, clock, events


class _Case(SynchronousTestCase):
    """
    A clock, and the events of the access control L{make} returns.
    """

    clock: Clock
    events: list[AccessEvent]

    def make(self, **kwargs: Any) -> IPAccessControl:
        ac, self.clock, self.events = _make(**kwargs)
        return ac


class ThresholdTests(_Case):
    """
    Warnings and blocks come exactly at their thresholds.
    """

    def test_warnAtEightyConnections(self) -> None:
        """
        79 new connections make no warning; the 80th does, once.
        """
        ac = self.make()
        for _ in range(79):
            ac.connectionMade(PEER)
        self.assertEqual(self.events, [])
        ac.connectionMade(PEER)
        self.assertEqual(
            self.events, [AccessEvent(EventKind.IP_WARNED, PEER, "80 new connections")]
        )
        ac.connectionMade(PEER)
        self.assertEqual(len(self.events), 1)
        self.assertFalse(ac.isBlocked(PEER))

    def test_blockAtSixHundredConnections(self) -> None:
        """
        599 new connections do not block; the 600th does, for an hour.
        """
        ac = self.make()
        for _ in range(599):
            ac.connectionMade(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        ac.connectionMade(PEER)
        self.assertTrue(ac.isBlocked(PEER))
        self.assertEqual(
            self.events[-1],
            AccessEvent(EventKind.IP_BLOCKED, PEER, "600 new connections", 3600.0),
        )

    def test_blockAtThirtyFailures(self) -> None:
        """
        29 failed logins do not block; the 30th does.
        """
        ac = self.make()
        for _ in range(29):
            ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))
        self.assertEqual(
            self.events,
            [AccessEvent(EventKind.IP_BLOCKED, PEER, "30 failed logins", 3600.0)],
        )

    def test_otherAddressesUnaffected(self) -> None:
        """
        One address's block does not block another.
        """
        ac = self.make()
        for _ in range(30):
            ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked("192.0.2.8"))

    def test_configurable(self) -> None:
        """
        The thresholds and the block's length are the caller's.
        """
        ac = self.make(blockAfterFailures=2, blockFor=10.0)
        ac.loginFailed(PEER)
        ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))
        self.clock.advance(10)
        self.assertFalse(ac.isBlocked(PEER))

    def test_invalidSettings(self) -> None:
        """
        Prefixes outside 1-127, a cap or subnet threshold below 1, and an
        invalid allowed network are refused at once.
        """
        for kwargs in [
            {"subnetPrefixes": (0,)},
            {"subnetPrefixes": (128,)},
            {"maxEntries": 0},
            {"subnetThreshold": 0},
            {"allow": ["not a network"]},
        ]:
            self.assertRaises(ValueError, self.make, **kwargs)


class ExpiryTests(_Case):
    """
    Counts last a window, and blocks an hour.
    """

    def test_windowExpiry(self) -> None:
        """
        Failures from an earlier window do not count towards a block.
        """
        ac = self.make()
        for _ in range(29):
            ac.loginFailed(PEER)
        self.clock.advance(3600)
        ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        for _ in range(28):
            ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))

    def test_blockEndsAfterAnHour(self) -> None:
        """
        A block holds for just under an hour and is gone at the hour, with
        the counts that made it.
        """
        ac = self.make()
        for _ in range(30):
            ac.loginFailed(PEER)
        self.clock.advance(3599)
        self.assertTrue(ac.isBlocked(PEER))
        self.clock.advance(1)
        self.assertFalse(ac.isBlocked(PEER))
        ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked(PEER))

    def test_countingWhileBlockedAddsNothing(self) -> None:
        """
        Failures reported while blocked do not carry over past the block.
        """
        ac = self.make()
        for _ in range(100):
            ac.loginFailed(PEER)
        self.clock.advance(3600)
        for _ in range(29):
            ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        self.assertEqual(len(self.events), 1)


class SuccessTests(_Case):
    """
    A successful login does not forgive failures.
    """

    def test_successDoesNotResetFailures(self) -> None:
        """
        Failures interleaved with successes still block at 30.
        """
        ac = self.make()
        for _ in range(29):
            ac.loginFailed(PEER)
            ac.loginSucceeded(PEER)
        self.assertFalse(ac.isBlocked(PEER))
        ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))

    def test_failingAfterSuccess(self) -> None:
        """
        The first failure after a success is told, once.
        """
        ac = self.make()
        ac.loginSucceeded(PEER)
        ac.loginFailed(PEER)
        ac.loginFailed(PEER)
        self.assertEqual(
            self.events,
            [AccessEvent(EventKind.FAILING_AFTER_SUCCESS, PEER, "1 failed logins")],
        )

    def test_successForgivesConnections(self) -> None:
        """
        A login makes the address's later connections count from zero.
        """
        ac = self.make()
        for _ in range(599):
            ac.connectionMade(PEER)
        ac.loginSucceeded(PEER)
        ac.connectionMade(PEER)
        self.assertFalse(ac.isBlocked(PEER))


class AddressTests(_Case):
    """
    IPv6 addresses and subnets, IPv4-mapped addresses, invalid ones, and the
    allow-list.
    """

    def _blockAll(self, ac: IPAccessControl, *addresses: str) -> None:
        for address in addresses:
            for _ in range(30):
                ac.loginFailed(address)

    def test_ipv6PerAddress(self) -> None:
        """
        Two IPv6 addresses in one /64 are counted apart.
        """
        ac = self.make()
        for _ in range(15):
            ac.loginFailed("2001:db8::1")
            ac.loginFailed("2001:db8::2")
        self.assertFalse(ac.isBlocked("2001:db8::1"))
        self._blockAll(ac, "2001:db8::1")
        self.assertTrue(ac.isBlocked("2001:0db8:0:0::1"))
        self.assertFalse(ac.isBlocked("2001:db8::2"))

    def test_subnetBlocked(self) -> None:
        """
        The third blocked address in a /64 blocks the /64, for an hour.
        """
        ac = self.make()
        self._blockAll(ac, "2001:db8::1", "2001:db8::2")
        self.assertFalse(ac.isBlocked("2001:db8::99"))
        self._blockAll(ac, "2001:db8::3")
        self.assertTrue(ac.isBlocked("2001:db8::99"))
        self.assertTrue(ac.isBlocked("2001:db8::ffff:ffff:ffff:ffff"))
        self.assertFalse(ac.isBlocked("2001:db8:0:1::1"))
        self.assertEqual(
            self.events[-1],
            AccessEvent(
                EventKind.SUBNET_BLOCKED, "2001:db8::/64", "3 addresses blocked", 3600.0
            ),
        )
        self.clock.advance(3600)
        self.assertFalse(ac.isBlocked("2001:db8::99"))

    def test_subnetNeedsRecentBlocks(self) -> None:
        """
        Blocks that ended do not count towards a subnet's.
        """
        ac = self.make()
        self._blockAll(ac, "2001:db8::1", "2001:db8::2")
        self.clock.advance(3600)
        self._blockAll(ac, "2001:db8::3")
        self.assertFalse(ac.isBlocked("2001:db8::99"))

    def test_widerSubnet(self) -> None:
        """
        With /48 too, three blocked /64s in it block the /48.
        """
        ac = self.make(subnetPrefixes=(64, 48))
        for net in range(3):
            self._blockAll(ac, *(f"2001:db8:0:{net}::{i}" for i in range(1, 4)))
        self.assertTrue(ac.isBlocked("2001:db8:0:ffff::1"))
        self.assertFalse(ac.isBlocked("2001:db8:1::1"))
        self.assertEqual(
            self.events[-1],
            AccessEvent(
                EventKind.SUBNET_BLOCKED, "2001:db8::/48", "3 subnets blocked", 3600.0
            ),
        )

    def test_ipv4Mapped(self) -> None:
        """
        An IPv4-mapped IPv6 address is its IPv4 address.
        """
        ac = self.make()
        for _ in range(15):
            ac.loginFailed("::ffff:192.0.2.7")
            ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))
        self.assertTrue(ac.isBlocked("::ffff:c000:207"))
        self.assertEqual(self.events[0].address, PEER)

    def test_ipv6Zone(self) -> None:
        """
        An IPv6 address with a zone is the address without it.
        """
        ac = self.make(blockAfterFailures=1)
        ac.loginFailed("fe80::1%eth0")
        self.assertTrue(ac.isBlocked("fe80::1"))
        self.assertEqual(self.events[0].address, "fe80::1")

    def test_invalidAddresses(self) -> None:
        """
        Invalid address strings raise nothing, are never blocked and never
        counted.
        """
        ac = self.make(blockAfterFailures=1, blockAfterConnections=1)
        for bad in ["", "nonsense", "192.0.2.256", "1.2.3", "2001:db8::/64", "::g"]:
            ac.connectionMade(bad)
            ac.loginFailed(bad)
            ac.loginSucceeded(bad)
            self.assertFalse(ac.isBlocked(bad))
        self.assertEqual(self.events, [])
        self.assertEqual(ac.size, 0)

    def test_allowLoopbackByDefault(self) -> None:
        """
        By default loopback addresses are never counted nor blocked.
        """
        clock = Clock()
        ac = IPAccessControl(clock)
        self.assertEqual(DEFAULT_ALLOW, ("127.0.0.0/8", "::1/128"))
        for address in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]:
            for _ in range(1000):
                ac.connectionMade(address)
                ac.loginFailed(address)
            self.assertFalse(ac.isBlocked(address))
        self.assertEqual(ac.size, 0)

    def test_allowListOff(self) -> None:
        """
        With an empty allow-list, loopback is blocked like any address.
        """
        ac = self.make()
        for _ in range(30):
            ac.loginFailed("127.0.0.1")
        self.assertTrue(ac.isBlocked("127.0.0.1"))

    def test_allowListNetworks(self) -> None:
        """
        A configured network is exempt; others are not.
        """
        ac = self.make(allow=["198.51.100.0/24"], blockAfterFailures=1)
        ac.loginFailed("198.51.100.9")
        ac.loginFailed(PEER)
        self.assertFalse(ac.isBlocked("198.51.100.9"))
        self.assertTrue(ac.isBlocked(PEER))


class LogTests(_Case):
    """
    Each block is one log line of a fixed format.
    """

    def _capture(self) -> list[str]:
        lines: list[str] = []

        def observer(event: dict[str, Any]) -> None:
            text = formatEvent(event)
            if text.startswith("gomail ipac:"):
                lines.append(text)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return lines

    def test_failingAfterSuccessLine(self) -> None:
        """
        Failures after a success are logged once, on a line the fail2ban
        filter's block pattern does not match.
        """
        lines = self._capture()
        ac = self.make()
        ac.loginSucceeded(PEER)
        ac.loginFailed(PEER)
        ac.loginFailed(PEER)
        self.assertEqual(
            lines,
            [f"gomail ipac: {PEER} fails logins after a success: 1 failed logins"],
        )
        self.assertIsNone(re.search(BLOCK_LOG_PATTERN, lines[0]))

    def test_blockLines(self) -> None:
        """
        Address and subnet blocks are logged in the documented format, which
        the documented pattern matches.
        """
        lines = self._capture()
        ac = self.make()
        for address in ["192.0.2.7", "2001:db8::1", "2001:db8::2", "2001:db8::3"]:
            for _ in range(30):
                ac.loginFailed(address)
        for _ in range(600):
            ac.connectionMade("198.51.100.1")
        self.assertEqual(
            lines,
            [
                "gomail ipac: blocked 192.0.2.7 for 3600 s: 30 failed logins",
                "gomail ipac: blocked 2001:db8::1 for 3600 s: 30 failed logins",
                "gomail ipac: blocked 2001:db8::2 for 3600 s: 30 failed logins",
                "gomail ipac: blocked 2001:db8::3 for 3600 s: 30 failed logins",
                "gomail ipac: blocked subnet 2001:db8::/64 for 3600 s: "
                "3 addresses blocked",
                "gomail ipac: warned 198.51.100.1: 80 new connections",
                "gomail ipac: blocked 198.51.100.1 for 3600 s: 600 new connections",
            ],
        )
        pattern = re.compile(BLOCK_LOG_PATTERN)
        matches = [pattern.match(line) for line in lines if "blocked" in line]
        self.assertEqual(
            [m.group("host") or m.group("subnet") for m in matches if m],
            [
                "192.0.2.7",
                "2001:db8::1",
                "2001:db8::2",
                "2001:db8::3",
                "2001:db8::/64",
                "198.51.100.1",
            ],
        )

    def test_hookFailureLogged(self) -> None:
        """
        A notify hook that raises does not stop the block.
        """

        def hook(event: AccessEvent) -> None:
            raise RuntimeError("boom")

        ac = IPAccessControl(Clock(), allow=(), notify=hook, blockAfterFailures=1)
        ac.loginFailed(PEER)
        self.assertTrue(ac.isBlocked(PEER))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class MemoryTests(_Case):
    """
    The tables stay bounded.
    """

    def test_floodOfAddresses(self) -> None:
        """
        200,000 distinct addresses leave at most the cap of entries.
        """
        ac = self.make(maxEntries=100_000)
        for i in range(200_000):
            ac.connectionMade(f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::1")
        self.assertLessEqual(ac.size, 100_000)
        self.assertGreater(ac.size, 0)

    def test_smallCap(self) -> None:
        """
        The least recently updated addresses go first, blocks included.
        """
        ac = self.make(maxEntries=10, blockAfterFailures=1)
        for i in range(100):
            ac.loginFailed(f"10.0.0.{i}")
            ac.connectionMade(f"10.1.0.{i}")
        self.assertLessEqual(ac.size, 30)
        self.assertTrue(ac.isBlocked("10.0.0.99"))
        self.assertFalse(ac.isBlocked("10.0.0.0"))

    def test_expiredEntriesSwept(self) -> None:
        """
        Entries whose window or block ended go as later calls are made.
        """
        ac = self.make(blockAfterFailures=1)
        for i in range(50):
            ac.connectionMade(f"10.0.0.{i}")
            ac.loginFailed(f"10.1.0.{i}")
        self.clock.advance(3600)
        for _ in range(50):
            ac.connectionMade(PEER)
        self.assertEqual(ac.size, 1)


class PropertyTests(SynchronousTestCase):
    """
    Blocks come only past a threshold.
    """

    @settings(max_examples=50, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["c", "f", "s"]),
                st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
                st.integers(min_value=0, max_value=50),
            ),
            max_size=200,
        )
    )
    def test_blockedOnlyPastThresholds(self, steps: list[tuple[str, str, int]]) -> None:
        """
        An address is blocked only if, within the window before, it reached
        a threshold of failures or connections.
        """
        ac, clock, events = _make(
            blockAfterFailures=5, blockAfterConnections=8, warnAfterConnections=4
        )
        failures: dict[str, list[float]] = {}
        for kind, address, wait in steps:
            clock.advance(wait)
            {"c": ac.connectionMade, "f": ac.loginFailed, "s": ac.loginSucceeded}[kind](
                address
            )
            if kind == "f":
                failures.setdefault(address, []).append(clock.seconds())
        for event in events:
            self.assertIn(event.kind, EventKind)
            if event.kind is EventKind.IP_BLOCKED and "failed" in event.reason:
                self.assertGreaterEqual(len(failures.get(event.address, [])), 5)
        for address in ["192.0.2.1", "192.0.2.2", "2001:db8::1"]:
            if ac.isBlocked(address):
                self.assertTrue(any(e.address == address for e in events))

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=60))
    def test_anyTextNeverRaises(self, text: str) -> None:
        """
        Whatever text is given as an address, nothing raises, and text that
        is no address is never blocked nor counted.
        """
        ac, _clock, events = _make(blockAfterFailures=1, blockAfterConnections=1)
        ac.connectionMade(text)
        ac.loginSucceeded(text)
        ac.loginFailed(text)
        blocked = ac.isBlocked(text)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            self.assertFalse(blocked)
            self.assertEqual(ac.size, 0)
            self.assertEqual(events, [])
