# -*- test-case-name: tests.test_users_cli -*-
"""
C{python -m gomail_twisted COMMAND ...}: the package's command line.

Each command lives in its own module with a C{main(argv, stdin, stdout,
stderr)} function, imported only when it runs; adding one is adding a line
to L{COMMANDS}.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TextIO

#: The commands: name, the module whose C{main} runs it, and what it does.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("users", "gomail_twisted.users._cli", "manage users, aliases and local domains"),
    ("queue", "gomail_twisted.queue._cli", "list, retry or delete queued mail"),
)

_PROGRAM = "python -m gomail_twisted"


def _usage() -> str:
    width = max(len(name) for name, _, _ in COMMANDS)
    lines = [f"usage: {_PROGRAM} COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, _, summary in COMMANDS]
    lines += ["", f"'{_PROGRAM} COMMAND --help' describes a command."]
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """
    Run a command.

    @param argv: the arguments, without the program name; by default
        C{sys.argv[1:]}.
    @param stdin: the command's standard input; by default C{sys.stdin}.
    @param stdout: the command's standard output; by default C{sys.stdout}.
    @param stderr: the command's standard error; by default C{sys.stderr}.
    @return: the exit status: the command's, or 2 for an unknown command.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=stdout if argv else stderr)
        return 0 if argv else 2
    for name, module, _ in COMMANDS:
        if argv[0] == name:
            command = importlib.import_module(module)
            status: int = command.main(
                argv[1:], stdin=stdin, stdout=stdout, stderr=stderr
            )
            return status
    print(f"{_PROGRAM}: unknown command {argv[0]!r}\n\n{_usage()}", file=stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
