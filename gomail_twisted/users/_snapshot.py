# -*- test-case-name: tests.test_users -*-
"""
What a whole users file means: its lines checked against each other.

The rules, each broken by a line that is then reported and skipped:

  - An address appears once, as a user or as an alias; a domain once.
  - A user's or an alias's domain is a declared local domain (a C{domain}
    line, anywhere in the file): declaring the domains is what keeps the
    server from accepting mail for a domain by a typo in an address.
  - An alias resolves to a user, through at most L{MAX_ALIAS_HOPS} aliases
    and never in a loop, and never through an address whose own line was
    skipped (a domain alias would otherwise take its mail).

A skipped line that names an address, C{@domain} or domain (see
L{Snapshot.damage}) leaves mail for that name undecided until the line is
fixed: the servers answer it with temporary errors, never with a refusal
that would bounce real mail because of an operator's typo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gomail_twisted.users._format import (
    AliasEntry,
    DomainEntry,
    ParsedLine,
    UserEntry,
)

#: The most aliases a chain may pass through to reach a user.
MAX_ALIAS_HOPS = 8


@dataclass(frozen=True)
class User:
    """
    A user of the users file.  The password hash is not here: it stays in
    the database, so that a user can be logged or shown safely.

    @ivar address: the user's address, normalized; the login name, and the
        avatar ID that the checker gives (UTF-8 encoded).
    @ivar enabled: L{False} for a disabled user, who cannot log in but
        still receives mail.
    """

    address: str
    enabled: bool = True


@dataclass(frozen=True)
class Alias:
    """
    An alias of the users file.

    @ivar alias: an address, or C{@domain} for a whole domain.
    @ivar target: the address it names.
    @ivar user: the user's address that it resolves to.
    """

    alias: str
    target: str
    user: str


@dataclass(frozen=True)
class Problem:
    """
    A line of the users file that was skipped.

    @ivar line: its line number, from 1.
    @ivar reason: why; never quotes the line.
    @ivar name: the address, C{@domain} or domain the line names, normalized,
        when one can still be read from it; else L{None}.
    """

    line: int
    reason: str
    name: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """
    The users, aliases and domains of one version of the file.

    @ivar domains: the local domains, in file order.
    @ivar users: each user and their password hash, by address.
    @ivar aliases: each alias, by its normalized left side.
    @ivar problems: the lines that were skipped, in file order.
    @ivar damaged: the first skipped line naming each address, C{@domain}
        or domain that no line taken defines.
    """

    domains: tuple[str, ...] = ()
    users: dict[str, tuple[User, str]] = field(default_factory=dict, repr=False)
    aliases: dict[str, Alias] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    damaged: dict[str, Problem] = field(default_factory=dict)

    def resolve(self, address: str) -> User | None:
        """
        The user that mail for an address goes to: the user of that
        address, else its alias's user, else its domain's alias's user.

        @param address: a normalized address.
        @return: the user, or L{None}.
        """
        found = self.users.get(address)
        if found is not None:
            return found[0]
        alias = self.aliases.get(address)
        if alias is None:
            alias = self.aliases.get("@" + address.rpartition("@")[2])
        if alias is None:
            return None
        return self.users[alias.user][0]

    def damage(self, address: str, *, domainAlias: bool = True) -> Problem | None:
        """
        The skipped line that leaves mail for an address undecided: its
        own line (a user or an alias), else its domain's C{domain} line,
        else (with C{domainAlias}) its domain's alias (C{@domain}) line.
        An address that a line taken defines (a user, an alias that
        resolves) is never damaged, nor is one whose domain is declared and
        whose domain alias was taken.

        @param address: a normalized address.
        @param domainAlias: whether a skipped C{@domain} alias counts; not
            for logins, which an alias never gives.
        @return: the first such line, or L{None}.
        """
        if address in self.users or address in self.aliases:
            return None
        own = self.damaged.get(address)
        if own is not None:
            return own
        domain = address.rpartition("@")[2]
        if domain not in self.domains:
            found = self.damaged.get(domain)
            if found is not None:
                return found
        if domainAlias and "@" + domain not in self.aliases:
            return self.damaged.get("@" + domain)
        return None


def _follow(
    start: str,
    users: dict[str, tuple[User, str]],
    aliases: dict[str, AliasEntry],
    skipped: dict[str, int],
) -> str:
    """
    The user an alias leads to.

    @param skipped: the line numbers of the skipped lines, by the name
        each gives.
    @raise ValueError: when it leads nowhere, in a loop, too far, or
        through an address whose own line was skipped.
    """
    seen = {start}
    target = aliases[start].target
    for _ in range(MAX_ALIAS_HOPS):
        if target in users:
            return target
        if target not in aliases and target in skipped:
            line = skipped[target]
            raise ValueError(f"{target} is on line {line}, which was skipped")
        nextAlias = aliases.get(target) or aliases.get("@" + target.rpartition("@")[2])
        if nextAlias is None:
            raise ValueError(f"{target} is neither a user nor an alias")
        if nextAlias.alias in seen:
            raise ValueError("the alias leads back to itself")
        seen.add(nextAlias.alias)
        target = nextAlias.target
    raise ValueError(f"the alias passes through more than {MAX_ALIAS_HOPS} aliases")


def buildSnapshot(lines: Sequence[ParsedLine]) -> Snapshot:
    """
    Check the lines of a file against each other.

    @param lines: every line of the file, parsed.
    @return: what the file means; every skipped line is in its
        C{problems}.
    """
    problems: dict[int, str] = {
        line.number: line.problem for line in lines if line.problem is not None
    }
    names: dict[int, str] = {
        line.number: line.name for line in lines if line.name is not None
    }
    domains: dict[str, int] = {}
    for line in lines:
        if isinstance(line.entry, DomainEntry):
            names[line.number] = line.entry.domain
            if line.entry.domain in domains:
                problems[line.number] = (
                    f"domain {line.entry.domain} is already declared on line "
                    f"{domains[line.entry.domain]}"
                )
            else:
                domains[line.entry.domain] = line.number
    users: dict[str, tuple[User, str]] = {}
    aliases: dict[str, AliasEntry] = {}
    aliasLines: dict[str, int] = {}
    where: dict[str, int] = {}
    for line in lines:
        entry = line.entry
        if not isinstance(entry, UserEntry | AliasEntry):
            continue
        address = entry.address if isinstance(entry, UserEntry) else entry.alias
        names[line.number] = address
        domain = address.rpartition("@")[2]
        if address in where:
            problems[line.number] = (
                f"{address} is already defined on line {where[address]}"
            )
        elif domain not in domains:
            problems[line.number] = (
                f"{domain} is not a local domain: add a 'domain {domain}' line"
            )
        else:
            where[address] = line.number
            if isinstance(entry, UserEntry):
                users[address] = (User(address, entry.enabled), entry.passwordHash)
            else:
                aliases[address] = entry
                aliasLines[address] = line.number
    skipped: dict[str, int] = {}
    for number in sorted(problems):
        if number in names:
            skipped.setdefault(names[number], number)
    resolved: dict[str, Alias] = {}
    for address, entry in aliases.items():
        try:
            user = _follow(address, users, aliases, skipped)
        except ValueError as e:
            problems[aliasLines[address]] = str(e)
        else:
            resolved[address] = Alias(address, entry.target, user)
    found = tuple(
        Problem(number, problems[number], names.get(number))
        for number in sorted(problems)
    )
    damaged: dict[str, Problem] = {}
    for problem in found:
        name = problem.name
        if name is None or name in users or name in resolved or name in domains:
            continue
        damaged.setdefault(name, problem)
    return Snapshot(tuple(domains), users, resolved, found, damaged)
