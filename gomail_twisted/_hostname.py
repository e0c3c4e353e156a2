# -*- test-case-name: tests.test_hostname -*-
"""
This machine's host name, as a mail server should give it, and the check
for host names shared by the command-line tools.

C{socket.getfqdn()} alone is not the answer: it asks the resolver for the
canonical name of the host name's address, and on the many machines whose
C{/etc/hosts} lists the host name on a line beginning with C{localhost}
(Debian's and Docker's defaults among them) that is C{localhost}.  The name
the operator set is C{socket.gethostname()}: L{localHostName} starts there
and consults C{getfqdn} only to complete a short name with its domain.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

__all__ = ["isHostName", "localHostName"]

# RFC 1123 2.1 host names: letters, digits and hyphens (RFC 952), a label
# starting and ending with a letter or digit.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")

# RFC 6761 6.3: names that always mean the loopback address.
_LOOPBACK = frozenset(["localhost", "localhost.localdomain", "localhost6"])


def isHostName(name: str) -> bool:
    """
    Whether C{name} is an ASCII host name: dot-separated labels of letters,
    digits and inner hyphens, each at most 63 octets, at most 253 in all
    (RFC 1123 2.1, RFC 1035 2.3.4), without a trailing dot.

    @param name: the name to check.
    @return: L{True} when it is one.
    """
    return (
        0 < len(name) <= 253
        and name.isascii()
        and all(_LABEL.match(label) for label in name.split("."))
    )


def _isLoopbackName(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in _LOOPBACK
        or lowered.startswith("localhost.localdomain")
        or lowered.endswith(".localhost")
    )


def localHostName(
    gethostname: Callable[[], str] = socket.gethostname,
    getfqdn: Callable[[str], str] = socket.getfqdn,
) -> str:
    """
    The name of this machine, for the SMTP greeting and EHLO (RFC 5321
    4.1.1.1 asks for the fully-qualified name where there is one).

    In order:
      1. the host name set on the machine (C{socket.gethostname()}, from
         C{/etc/hostname} or C{hostnamectl} on Linux) when it is already
         fully qualified;
      2. C{socket.getfqdn()} of it, but only when that is a dotted name
         whose first label is the host name (C{/etc/hosts} or DNS adding
         the domain), never C{localhost} or C{localhost.localdomain}, nor
         the unrelated name of some other address;
      3. the host name as it is;
      4. C{localhost}, when the host name is empty or not a valid host name
         (such as C{my_pc}).

    A trailing dot is dropped.  The resolver is consulted only in step 2,
    so this may wait for DNS once; call it at startup, not per connection.

    @param gethostname: returns the host name; for tests.
    @param getfqdn: returns the canonical name of a name; for tests.
    @return: a host name that L{isHostName} accepts.
    """
    short = gethostname().strip().rstrip(".")
    if not isHostName(short) or _isLoopbackName(short):
        return "localhost"
    if "." in short:
        return short
    try:
        full = getfqdn(short).strip().rstrip(".")
    except (OSError, UnicodeError):
        full = ""
    if (
        "." in full
        and isHostName(full)
        and not _isLoopbackName(full)
        and full.split(".", 1)[0].lower() == short.lower()
    ):
        return full
    return short
