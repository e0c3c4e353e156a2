# -*- test-case-name: tests.test_address -*-
"""
Mail addresses and domains, checked and compared the same way by every
part of the package: the SMTP server and the delivery client, the users
file, the store and the twistd plugins.

  - L{checkDomain} and L{parseMailbox} say whether a domain or a mailbox
    is well formed (RFC 5321 4.1.2, RFC 6531 3.3).
  - L{normalizeDomain}, L{unquoteLocalPart} and L{normalizeAddress} give
    the one form under which an address is looked up: two addresses that
    reach the same mailbox have the same normal form.

The local part is compared without regard to case, as Postfix and Dovecot
do by default: RFC 5321 2.4 lets the receiving host decide, and no one
expects C{Alice@} and C{alice@} to be two people.
"""

from __future__ import annotations

import ipaddress
import re

import idna

#: RFC 5321 4.5.3.1.1: the longest local part, in octets.
MAX_LOCAL_PART = 64
#: RFC 5321 4.5.3.1.2: the longest domain, in octets.
MAX_DOMAIN = 255

_UTF8 = "\u0080-\U0010ffff"
# The hyphen last, so it stays literal when more ranges are appended before it.
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_DOT_STRING = re.compile(rf"[{_UTF8}{_ATEXT}]+(?:\.[{_UTF8}{_ATEXT}]+)*\Z")
_QUOTED_STRING = re.compile(
    rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"\Z'
)
_LABEL = re.compile(rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9{_UTF8}-]*[A-Za-z0-9{_UTF8}])?\Z")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+\Z")


def checkDomain(domain: str) -> bool:
    """
    Whether C{domain} is a domain or address literal as RFC 5321 4.1.2 and
    RFC 6531 3.3 allow in a mailbox.

    @param domain: the domain, without the C{@}.
    @return: L{True} when it is well formed.
    """
    if not domain or len(domain.encode("utf-8")) > MAX_DOMAIN:
        return False
    if domain.startswith("["):
        if not domain.endswith("]"):
            return False
        literal = domain[1:-1]
        if literal.lower().startswith("ipv6:"):
            if "%" in literal:
                # ipaddress takes a zone index; IPv6-addr (4.1.3) has none.
                return False
            try:
                ipaddress.IPv6Address(literal[5:])
            except ValueError:
                return False
            return True
        try:
            ipaddress.IPv4Address(literal)
        except ValueError:
            return _GENERAL_LITERAL.match(literal) is not None
        return True
    return all(
        _LABEL.match(label) and len(label.encode("utf-8")) <= 63
        for label in domain.split(".")
    )


def parseMailbox(text: str) -> tuple[str, str]:
    """
    Split and check a mailbox (RFC 5321 4.1.2).

    @param text: C{local-part@domain}.
    @return: the local part, as given (quoted or not), and the domain.
    @raise ValueError: when it is not a mailbox.
    """
    local, at, domain = text.rpartition("@")
    if not at or not local:
        raise ValueError("no @ in mailbox")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise ValueError("local part too long")
    if not (_DOT_STRING.match(local) or _QUOTED_STRING.match(local)):
        raise ValueError("bad local part")
    if not checkDomain(domain):
        raise ValueError("bad domain")
    return local, domain


def normalizeDomain(domain: str) -> str:
    """
    The canonical form of a domain, for comparing and for directory names:
    lower case, without a trailing dot, internationalized labels in their
    ASCII form (RFC 5890 A-labels, with the UTS 46 mapping, so C{Bücher},
    C{bücher} and C{xn--bcher-kva} are one domain).  Address literals such
    as C{[192.0.2.1]} are only lower-cased.

    @param domain: a domain, as configured or as in an address.
    @return: its canonical form.
    """
    domain = domain.strip().rstrip(".")
    if domain.startswith("[") or domain.isascii():
        # Plain ASCII needs no mapping beyond case, and idna would refuse
        # names it does not like (underscores) that are still our domains.
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except idna.IDNAError:
        return domain.lower()


def unquoteLocalPart(local: str) -> str:
    """
    A quoted local part's content (RFC 5321 4.1.2): C{"alice"} is C{alice}
    and C{"a\\"b"} is C{a"b}.  A local part that is not quoted is returned
    unchanged.

    @param local: a local part, as in a mailbox.
    @return: its content.
    """
    if len(local) < 2 or not (local.startswith('"') and local.endswith('"')):
        return local
    out = []
    chars = iter(local[1:-1])
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def normalizeAddress(address: str) -> str:
    """
    The form under which an address is looked up: the local part unquoted
    (RFC 5321 4.1.2: C{"alice"} and C{alice} are one mailbox) and in lower
    case (RFC 5321 2.4 leaves case to the receiving host; we ignore it, as
    Postfix and Dovecot do), C{@}, the domain as L{normalizeDomain} gives
    it.  The bare C{Postmaster} of RFC 5321 4.5.1 is C{postmaster}.

    The address is not checked: use L{parseMailbox} first for addresses
    that come from outside.

    @param address: C{local-part@domain}, or C{postmaster}.
    @return: the normal form, such as C{alice@xn--bcher-kva.example}.
    @raise ValueError: when it has no C{@} and is not C{postmaster}.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        if address.lower() == "postmaster":
            return "postmaster"
        raise ValueError("no @ in address")
    return f"{unquoteLocalPart(local).lower()}@{normalizeDomain(domain)}"


__all__ = [
    "MAX_DOMAIN",
    "MAX_LOCAL_PART",
    "checkDomain",
    "normalizeAddress",
    "normalizeDomain",
    "parseMailbox",
    "unquoteLocalPart",
]
