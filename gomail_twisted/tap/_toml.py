# -*- test-case-name: tests.test_tap_gomail_config -*-
"""
Reading the values of a TOML configuration: each table's keys taken one
by one and checked (strings, paths, booleans, counts, durations, sizes),
the keys left over refused, and every error one line naming the file, the
table and the key (L{ConfigError}).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "Reader", "Table", "show"]

_DURATION = re.compile(r"\A\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"\A\s*([0-9]+)\s*([KMG]?)i?B?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


class ConfigError(SystemExit, Exception):
    """
    The configuration cannot be used; C{str()} of it is the one line
    C{twistd} prints before it exits with status 1.

    Like L{gomail_twisted.tap._common.ListenError}, it is a L{SystemExit},
    so that Python prints the message alone rather than a traceback or
    C{twistd}'s whole usage text, and an L{Exception}, so that C{twistd}
    cleans up as after any failure to start.

    @ivar where: the file, or C{"command line"}.
    @ivar key: the key, such as C{"[queue] lifetime"} or C{"--domain"}.
    @ivar problem: what is wrong with it.
    """

    def __init__(self, where: str, key: str, problem: str) -> None:
        """
        @param where: the file, or C{"command line"}.
        @param key: the key at fault.
        @param problem: what is wrong.
        """
        prefix = "gomail: " if where == "command line" else f"gomail: config {where}: "
        super().__init__(f"{prefix}{key}: {problem}")
        self.where = where
        self.key = key
        self.problem = problem


class Table:
    """
    One TOML table being read: each key taken is checked, and what is left
    at the end is an unknown key.
    """

    def __init__(self, reader: Reader, name: str, values: Mapping[str, Any]) -> None:
        """
        @param reader: where the values come from.
        @param name: the table's name in messages; empty for the top.
        @param values: the table as parsed.
        """
        self.reader = reader
        self.name = name
        self.values = dict(values)

    def key(self, key: str) -> str:
        """
        @return: how the message names C{key}: C{"[table] key"}.
        """
        return f"[{self.name}] {key}" if self.name else key

    def fail(self, key: str, problem: str) -> ConfigError:
        """
        @return: the error for C{key}, to raise.
        """
        return ConfigError(self.reader.where, self.key(key), problem)

    def take(self, key: str) -> Any:
        """
        @return: the value of C{key}, taken out of the table, or L{None}.
        """
        return self.values.pop(key, None)

    def done(self, known: Sequence[str], allowed: Sequence[str] = ()) -> None:
        """
        @param known: the keys the table may have, for the message.
        @param allowed: keys that may still be left, to be taken later.
        @raise ConfigError: for the first key left that is not allowed.
        """
        for key in self.values:
            if key not in allowed:
                raise self.fail(key, f"unknown key (known: {', '.join(known)})")

    def string(self, key: str) -> str | None:
        """
        @return: a string, or L{None} when absent.
        @raise ConfigError: for another kind of value.
        """
        value = self.take(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {show(value)}")
        return value

    def path(self, key: str) -> Path | None:
        """
        @return: a path, relative to the reader's base, or L{None}.
        @raise ConfigError: for an empty string or not a string.
        """
        value = self.string(key)
        if value is None:
            return None
        if not value:
            raise self.fail(key, "expected a path, got an empty string")
        return self.reader.base / Path(value).expanduser()

    def strings(self, key: str) -> tuple[str, ...] | None:
        """
        @return: a list of strings (one string counts as a list of one),
            or L{None} when absent.
        @raise ConfigError: for another kind of value.
        """
        value = self.take(key)
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {show(value)}")
        return tuple(value)

    def boolean(self, key: str, default: bool) -> bool:
        """
        @return: C{true} or C{false}, or C{default} when absent.
        @raise ConfigError: for another kind of value.
        """
        value = self.take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {show(value)}")
        return value

    def count(self, key: str) -> int | None:
        """
        @return: a positive integer, or L{None} when absent.
        @raise ConfigError: for another value.
        """
        value = self.take(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"expected a positive whole number, got {show(value)}")
        return value

    def seconds(self, key: str) -> float | None:
        """
        @return: a positive number of seconds, from a number or a string
            with a unit (C{"30s"}, C{"30m"}, C{"4h"}, C{"5d"}), or L{None}.
        @raise ConfigError: for another value.
        """
        value = self.take(key)
        if value is None:
            return None
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            match = _DURATION.match(value)
            if match is not None:
                number = float(match.group(1)) * _SECONDS[match.group(2)]
        if number is None or not number > 0 or number == float("inf"):
            raise self.fail(
                key,
                'expected a number of seconds (or "30m", "4h", "5d"), '
                f"got {show(value)}",
            )
        return number

    def size(self, key: str) -> int | None:
        """
        @return: a positive number of bytes, from an integer or a string
            with a K, M or G suffix (powers of 1024), or L{None}.
        @raise ConfigError: for another value.
        """
        value = self.take(key)
        if value is None:
            return None
        number = 0
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            match = _SIZE.match(value)
            if match is not None:
                number = int(match.group(1)) * _UNITS[match.group(2).upper()]
        if number < 1:
            raise self.fail(
                key, f'expected a number of bytes (or "64K", "25M"), got {show(value)}'
            )
        return number

    def table(self, key: str) -> Table:
        """
        @return: the sub-table C{key}, empty when absent.
        @raise ConfigError: for a value that is not a table.
        """
        value = self.take(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {show(value)}")
        return Table(self.reader, key, value)


def show(value: object) -> str:
    """
    @return: a value as the file would spell it, for a message.
    """
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


@dataclass
class Reader:
    """
    Where values come from: a file (relative paths from its directory) or
    the command line (from the current directory).

    @ivar where: the file's name, or C{"command line"}.
    @ivar base: the directory relative paths start from.
    """

    where: str
    base: Path
