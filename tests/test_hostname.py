# -*- test-case-name: tests.test_hostname -*-
"""
Tests for L{gomail_twisted._hostname}: which name a machine gives itself,
whatever its C{/etc/hosts} says.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted._hostname import isHostName, localHostName


def _fqdn(answers: dict[str, str]) -> Callable[[str], str]:
    """
    A fake C{getfqdn} answering from C{answers}, the name itself otherwise,
    as C{socket.getfqdn} does when the resolver knows nothing better.
    """

    def getfqdn(name: str) -> str:
        return answers.get(name, name)

    return getfqdn


def _unreachable(name: str) -> str:
    raise AssertionError(f"getfqdn({name!r}) should not be asked")


def _failing(name: str) -> str:
    raise OSError("resolver down")


class LocalHostNameTests(SynchronousTestCase):
    """
    L{localHostName} starts from the host name set on the machine.
    """

    def test_table(self) -> None:
        """
        Each combination of host name and resolver answer gives the name in
        the table.
        """
        cases: list[tuple[str, Callable[[str], str], str]] = [
            # The first newcomer defect: /etc/hosts lists "127.0.0.1 localhost"
            # before the host name, so getfqdn() says localhost.
            ("vm", _fqdn({"vm": "localhost"}), "vm"),
            ("vm", _fqdn({"vm": "localhost.localdomain"}), "vm"),
            ("vm", _fqdn({"vm": "localhost.localdomain.example"}), "vm"),
            ("vm", _fqdn({"vm": "vm.localhost"}), "vm"),
            # /etc/hosts or DNS completes the short name.
            ("mx", _fqdn({"mx": "mx.example.com"}), "mx.example.com"),
            ("MX", _fqdn({"MX": "mx.example.com"}), "mx.example.com"),
            ("mx", _fqdn({"mx": "mx.example.com."}), "mx.example.com"),
            # The canonical name of some other address is not ours.
            ("web1", _fqdn({"web1": "ip-10-0-0-5.ec2.internal"}), "web1"),
            ("mx", _fqdn({"mx": "mx_1.example.com"}), "mx"),
            ("mx", _fqdn({}), "mx"),
            ("mx", _failing, "mx"),
            # A fully qualified host name is taken as it is, unasked.
            ("mx.example.com", _unreachable, "mx.example.com"),
            ("mx.example.com.", _unreachable, "mx.example.com"),
            (" mx.example.com\n", _unreachable, "mx.example.com"),
            # Nothing usable: loopback's own name.
            ("", _unreachable, "localhost"),
            ("localhost", _unreachable, "localhost"),
            ("localhost.localdomain", _unreachable, "localhost"),
            ("my_pc", _unreachable, "localhost"),
            ("b\u00fccher", _unreachable, "localhost"),
        ]
        for hostname, getfqdn, expected in cases:
            self.assertEqual(
                localHostName(lambda h=hostname: h, getfqdn), expected, hostname
            )

    def test_thisMachine(self) -> None:
        """
        On this machine the name begins with the host name it was given, and
        is localhost only when that is what it was given.
        """
        name = localHostName()
        self.assertTrue(isHostName(name), name)
        given = socket.gethostname().rstrip(".")
        if isHostName(given) and given.split(".")[0].lower() != "localhost":
            self.assertEqual(
                name.split(".")[0].lower(), given.split(".")[0].lower(), name
            )
        else:
            self.assertEqual(name, "localhost")


class IsHostNameTests(SynchronousTestCase):
    """
    L{isHostName} accepts RFC 1123 host names and nothing else.
    """

    def test_valid(self) -> None:
        """
        Letters, digits and inner hyphens in labels of up to 63 octets are
        host names.
        """
        for name in [
            "localhost",
            "mx.example.com",
            "MX-1.Example.COM",
            "1.example",
            "xn--bcher-kva.example",
            "a" * 63 + ".example",
            ".".join(["a" * 63] * 3 + ["b" * 61]),
        ]:
            self.assertTrue(isHostName(name), name)

    def test_invalid(self) -> None:
        """
        Empty labels, underscores, outer hyphens, non-ASCII, long labels or
        names, a trailing dot and address literals are not.
        """
        for name in [
            "",
            ".",
            "exa_mple.com",
            "example..com",
            ".example.com",
            "example.com.",
            "-mx.example",
            "mx-.example",
            "b\u00fccher.example",
            "m;x",
            "mx example",
            "a" * 64 + ".example",
            ".".join(["a" * 63] * 4),
            "[127.0.0.1]",
        ]:
            self.assertFalse(isHostName(name), name)
