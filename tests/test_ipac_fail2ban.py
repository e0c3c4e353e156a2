# -*- test-case-name: tests.test_ipac_fail2ban -*-
"""
Tests for the fail2ban filter shipped in C{contrib/fail2ban}: read as
fail2ban reads it (its C{%(name)s} values expanded, C{<HOST>} and
C{<SUBNET>} turned into address groups, the time stamp cut off by the date
detector), it matches the block lines that L{gomail_twisted.ipac} logs as
twistd's log file writes them, for IPv4, IPv6 and subnets, and nothing
else.
"""

from __future__ import annotations

import configparser
import io
import ipaddress
import re
from pathlib import Path

from twisted.internet.task import Clock
from twisted.logger import Logger, globalLogPublisher, textFileLogObserver
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.ipac import IPAccessControl

CONTRIB = Path(__file__).resolve().parent.parent / "contrib" / "fail2ban"
FILTER = CONTRIB / "filter.d" / "gomail.conf"
JAIL = CONTRIB / "jail.d" / "gomail.local"

#: What fail2ban puts for C{<HOST>} and C{<SUBNET>}, less its host-name
#: branch (this filter's lines hold addresses only): an IPv4 address
#: (optionally IPv4-mapped), or an IPv6 one; the address is checked with
#: L{ipaddress} after the match, as fail2ban does.
_IPV4 = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})"
_IPV6 = r"(?P<ip6>[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)"
_TAGS = {
    "<HOST>": rf"\[?(?:{_IPV4}|{_IPV6})\]?",
    "<SUBNET>": rf"\[?(?:{_IPV4}|{_IPV6})(?:/(?P<cidr>\d+))?\]?",
}

#: The default date template fail2ban's C{{^LN-BEG}} keeps: an ISO 8601
#: time at the start of the line, cut out before the patterns are tried.
_DATE = re.compile(
    r"^\d{4}-\d\d-\d\d(?:T| ?)\d\d:\d\d:\d\d(?:[.,]\d+)?(?:\s*(?:[+-]\d{4}|Z))?"
)


def failRegexes() -> list[re.Pattern[str]]:
    """
    The filter's failregex lines, as fail2ban compiles them.
    """
    parser = configparser.ConfigParser()
    parser.read(FILTER, encoding="utf-8")
    self = parser["Definition"]
    lines = [line for line in self["failregex"].splitlines() if line.strip()]
    patterns = []
    for line in lines:
        for tag, expression in _TAGS.items():
            line = line.replace(tag, expression)
        patterns.append(re.compile(line))
    return patterns


def matchLine(line: str) -> str | None:
    """
    What fail2ban would ban for one log line: the line's time stamp cut
    out, then the first failregex that matches.

    @return: the address or subnet, or L{None}.
    """
    found = _DATE.search(line)
    if found is not None:
        line = line[: found.start()] + line[found.end() :]
    for pattern in failRegexes():
        match = pattern.search(line)
        if match is None:
            continue
        address = match.group("ip4") or match.group("ip6")
        if "cidr" in pattern.groupindex and match.group("cidr") is not None:
            return str(ipaddress.ip_network(f"{address}/{match.group('cidr')}"))
        return str(ipaddress.ip_address(address))
    return None


class FilterTests(SynchronousTestCase):
    """
    The filter against the lines twistd's log file gets.
    """

    def setUp(self) -> None:
        self.output = io.StringIO()
        # twistd's log file: the same observer, on the global publisher.
        observer = textFileLogObserver(self.output)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.clock = Clock()

    def logLines(self) -> list[str]:
        return self.output.getvalue().splitlines()

    def blockLines(self) -> list[str]:
        """
        The lines access control logged.
        """
        return [line for line in self.logLines() if "gomail ipac:" in line]

    def test_ipv4Block(self) -> None:
        """
        An IPv4 block's line, as twistd writes it, bans the address.
        """
        control = IPAccessControl(self.clock, allow=())
        for _ in range(30):
            control.loginFailed("192.0.2.7")
        (line,) = self.blockLines()
        self.assertRegex(
            line,
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} "
            r"\[gomail_twisted\.ipac\.IPAccessControl#warn\] "
            r"gomail ipac: blocked 192\.0\.2\.7 for 3600 s: 30 failed logins$",
        )
        self.assertEqual(matchLine(line), "192.0.2.7")

    def test_ipv6BlockAndSubnet(self) -> None:
        """
        IPv6 blocks' lines ban each address, and the subnet's line bans
        the subnet.
        """
        control = IPAccessControl(self.clock, allow=())
        for address in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):
            for _ in range(30):
                control.loginFailed(address)
        self.assertEqual(
            [matchLine(line) for line in self.blockLines()],
            ["2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8::/64"],
        )

    def test_connectionBlock(self) -> None:
        """
        A block for too many connections bans too; its warning does not.
        """
        control = IPAccessControl(
            self.clock, allow=(), warnAfterConnections=2, blockAfterConnections=3
        )
        for _ in range(3):
            control.connectionMade("198.51.100.23")
        warned, blocked = self.blockLines()
        self.assertIn("warned", warned)
        self.assertIsNone(matchLine(warned))
        self.assertEqual(matchLine(blocked), "198.51.100.23")

    def test_journalForm(self) -> None:
        """
        The line as fail2ban's systemd backend gives it (twistd logging to
        the journal: host and program before twistd's own time stamp)
        bans, and a continuation line there does not.
        """
        block = (
            "[gomail_twisted.ipac.IPAccessControl#warn] "
            "gomail ipac: blocked 2001:db8::9 for 3600 s: 30 failed logins"
        )
        prefix = "mail twistd[123]: "
        self.assertEqual(
            matchLine(prefix + "2026-11-30T18:00:00+0000 " + block), "2001:db8::9"
        )
        self.assertIsNone(matchLine(prefix + "\t" + block))

    def test_syslogForm(self) -> None:
        """
        The line as syslog forwards it from the journal (host, program and
        pid before twistd's own time stamp) bans too.
        """
        line = (
            "Nov 30 18:00:00 mail twistd[123]: 2026-11-30T18:00:00+0000 "
            "[gomail_twisted.ipac.IPAccessControl#warn] "
            "gomail ipac: blocked 203.0.113.9 for 3600 s: 30 failed logins"
        )
        self.assertEqual(matchLine(line[len("Nov 30 18:00:00") :]), "203.0.113.9")

    def test_injectedTextBansNoOne(self) -> None:
        """
        Text a client gets into another line (such as the fields of IMAP
        ID, which may hold a line break) does not match: only the access
        control's own lines do.
        """
        injected = (
            "[gomail_twisted.ipac.IPAccessControl#warn] "
            "gomail ipac: blocked 203.0.113.5 for 3600 s: 30 failed logins"
        )
        log = Logger(namespace="gomail_twisted.imap4.server.IMAP4Server")
        log.info(
            "IMAP client of {peer} says ID {fields}", peer="192.0.2.9", fields=injected
        )
        log.info(
            "IMAP client of {peer} says ID {fields}",
            peer="192.0.2.9",
            fields="name=x\n" + injected,
        )
        lines = self.logLines()
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[2], "\t" + injected)
        self.assertEqual([matchLine(line) for line in lines], [None, None, None])

    def test_jailUsesFilter(self) -> None:
        """
        The example jail names the filter, bans at the first line (each is
        a block already), covers every mail port, and reads the journal of
        the systemd unit the README gives.
        """
        parser = configparser.ConfigParser()
        parser.read(JAIL, encoding="utf-8")
        jail = parser["gomail"]
        self.assertEqual(jail["filter"], FILTER.stem)
        self.assertEqual(jail["maxretry"], "1")
        self.assertEqual(jail["backend"], "systemd")
        self.assertEqual(jail["journalmatch"], "_SYSTEMD_UNIT=gomail.service")
        self.assertEqual(
            set(jail["port"].split(",")),
            {"smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"},
        )
