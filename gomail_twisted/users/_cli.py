# -*- test-case-name: tests.test_users_cli -*-
"""
C{python -m gomail_twisted users}: manage the users file.

    python -m gomail_twisted users domain add example.com
    python -m gomail_twisted users add alice@example.com
    python -m gomail_twisted users alias add postmaster@example.com alice@example.com

A password is asked for twice at the terminal, or read as one line from
standard input with C{--password-stdin}; never from the command line,
where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass as _getpass
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO, TypeVar

import argon2

from gomail_twisted.users import (
    DEFAULT_USERS_FILE,
    USERS_FILE_VARIABLE,
    defaultUsersFile,
)
from gomail_twisted.users._database import readUsersFile
from gomail_twisted.users._edit import UsersFileEditor, UsersFileError, editUsersFile
from gomail_twisted.users._format import DISABLED

_T = TypeVar("_T")

#: The program name in usage messages.
PROGRAM = "python -m gomail_twisted users"


class _Refused(Exception):
    """
    The command cannot be done; the message says why.
    """


class _UsageError(Exception):
    """
    The arguments are wrong.

    @ivar prog: the (sub)command whose arguments they are.
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """
    A parser whose errors are raised, so that L{main} can keep values out
    of the message.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _UsageError(self.prog, message)


def _redacted(message: str, argv: Sequence[str]) -> str:
    """
    A usage error without the values it quotes from the command line: one
    may be a password given where it must not be (C{--password-stdin=...}).
    """
    for argument in argv:
        for value in (argument, argument.partition("=")[2]):
            if value:
                message = message.replace(repr(value), "(not shown)")
    return message


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        allow_abbrev=False,
        description="Manage the users, aliases and local domains of a users file.",
        epilog="Passwords are read from a prompt, or from standard input with "
        "--password-stdin; never from the command line.",
    )
    parser.add_argument(
        "--file",
        help=f"the users file (default: ${USERS_FILE_VARIABLE} if set, "
        f"else {DEFAULT_USERS_FILE})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def password(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password as one line from standard input",
        )

    add = commands.add_parser("add", allow_abbrev=False, help="add a user")
    add.add_argument("address")
    password(add)
    add.add_argument("--disabled", action="store_true", help="add the user disabled")
    commands.add_parser(
        "remove", allow_abbrev=False, help="remove a user"
    ).add_argument("address")
    passwd = commands.add_parser(
        "passwd", allow_abbrev=False, help="change a user's password"
    )
    passwd.add_argument("address")
    password(passwd)
    commands.add_parser(
        "enable", allow_abbrev=False, help="let a user log in"
    ).add_argument("address")
    commands.add_parser(
        "disable", allow_abbrev=False, help="keep a user from logging in"
    ).add_argument("address")
    commands.add_parser("list", allow_abbrev=False, help="list the users")
    commands.add_parser(
        "check",
        allow_abbrev=False,
        help="report the lines of the file that are skipped",
    )

    alias = commands.add_parser(
        "alias", allow_abbrev=False, help="manage aliases"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    aliasAdd = alias.add_parser(
        "add", allow_abbrev=False, help="deliver an address's mail to a user"
    )
    aliasAdd.add_argument("alias", help="an address, or @DOMAIN for a whole domain")
    aliasAdd.add_argument("target", help="a user's or another alias's address")
    alias.add_parser("remove", allow_abbrev=False, help="remove an alias").add_argument(
        "alias"
    )
    alias.add_parser("list", allow_abbrev=False, help="list the aliases")

    domain = commands.add_parser(
        "domain", allow_abbrev=False, help="manage local domains"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    domain.add_parser(
        "add", allow_abbrev=False, help="accept mail for a domain"
    ).add_argument("domain")
    domain.add_parser(
        "remove", allow_abbrev=False, help="stop accepting mail for a domain"
    ).add_argument("domain")
    domain.add_parser("list", allow_abbrev=False, help="list the local domains")
    return parser


def _readEditor(path: str) -> UsersFileEditor:
    """
    The file as it is now, without the lock: to refuse a change before
    asking for a password.
    """
    try:
        read = readUsersFile(path)
    except OSError as e:
        raise _Refused(f"cannot read {path}: {e.strerror}")
    return UsersFileEditor("" if read is None else read[0])


def _askPassword(useStdin: bool, stdin: TextIO, prompt: Callable[[str], str]) -> str:
    if useStdin:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = prompt("Password: ")
        if prompt("Password again: ") != password:
            raise _Refused("the passwords do not match")
    if not password:
        raise _Refused("the password is empty")
    return password


class _Commands:
    """
    The commands, each given the parsed arguments.
    """

    def __init__(
        self,
        path: str,
        stdin: TextIO,
        stdout: TextIO,
        prompt: Callable[[str], str],
        hasher: argon2.PasswordHasher,
    ) -> None:
        self.path = path
        self.stdin = stdin
        self.stdout = stdout
        self.prompt = prompt
        self.hasher = hasher

    def _edit(self, change: Callable[[UsersFileEditor], _T]) -> _T:
        try:
            with editUsersFile(self.path) as editor:
                return change(editor)
        except OSError as e:
            raise _Refused(f"cannot write {self.path}: {e.strerror}")

    def _newHash(self, args: argparse.Namespace) -> str:
        password = _askPassword(args.password_stdin, self.stdin, self.prompt)
        return self.hasher.hash(password)

    def addUser(self, args: argparse.Namespace) -> None:
        _readEditor(self.path).checkNewUser(args.address)
        passwordHash = self._newHash(args)
        address = self._edit(
            lambda e: e.addUser(args.address, passwordHash, not args.disabled)
        )
        print(
            f"added user {address}" + (" (disabled)" if args.disabled else ""),
            file=self.stdout,
        )

    def removeUser(self, args: argparse.Namespace) -> None:
        address = self._edit(lambda e: e.removeUser(args.address))
        print(f"removed user {address}", file=self.stdout)

    def changePassword(self, args: argparse.Namespace) -> None:
        _readEditor(self.path).checkUser(args.address)
        passwordHash = self._newHash(args)
        address = self._edit(lambda e: e.setPassword(args.address, passwordHash))
        print(f"changed the password of {address}", file=self.stdout)

    def enableUser(self, args: argparse.Namespace) -> None:
        address = self._edit(lambda e: e.setEnabled(args.address, True))
        print(f"enabled {address}", file=self.stdout)

    def disableUser(self, args: argparse.Namespace) -> None:
        address = self._edit(lambda e: e.setEnabled(args.address, False))
        print(f"disabled {address}", file=self.stdout)

    def listUsers(self, args: argparse.Namespace) -> None:
        for user, _ in _readEditor(self.path).snapshot.users.values():
            print(
                user.address + ("" if user.enabled else f" {DISABLED}"),
                file=self.stdout,
            )

    def checkFile(self, args: argparse.Namespace) -> None:
        problems = _readEditor(self.path).snapshot.problems
        for problem in problems:
            print(f"{self.path}:{problem.line}: {problem.reason}", file=self.stdout)
        if problems:
            raise _Refused(f"{len(problems)} line(s) of {self.path} are skipped")

    def aliases(self, args: argparse.Namespace) -> None:
        if args.action == "add":
            alias, target = self._edit(lambda e: e.addAlias(args.alias, args.target))
            print(f"added alias {alias} -> {target}", file=self.stdout)
        elif args.action == "remove":
            alias = self._edit(lambda e: e.removeAlias(args.alias))
            print(f"removed alias {alias}", file=self.stdout)
        else:
            for entry in _readEditor(self.path).snapshot.aliases.values():
                line = f"{entry.alias} -> {entry.target}"
                if entry.user != entry.target:
                    line += f" (-> {entry.user})"
                print(line, file=self.stdout)

    def domains(self, args: argparse.Namespace) -> None:
        if args.action == "add":
            domain = self._edit(lambda e: e.addDomain(args.domain))
            print(f"added domain {domain}", file=self.stdout)
        elif args.action == "remove":
            domain = self._edit(lambda e: e.removeDomain(args.domain))
            print(f"removed domain {domain}", file=self.stdout)
        else:
            for domain in _readEditor(self.path).snapshot.domains:
                print(domain, file=self.stdout)


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    prompt: Callable[[str], str] | None = None,
    hasher: argon2.PasswordHasher | None = None,
) -> int:
    """
    Run C{python -m gomail_twisted users}.

    @param argv: the arguments after C{users}; by default C{sys.argv[2:]}.
    @param stdin: where C{--password-stdin} reads; by default standard input.
    @param stdout: where results go; by default standard output.
    @param stderr: where errors go; by default standard error.
    @param prompt: asks for a password without echoing it; by default
        L{getpass.getpass}.
    @param hasher: makes the hashes; by default argon2-cffi's defaults.
    @return: the exit status: 0, 1 when the change cannot be made (the
        reason on one line of C{stderr}), 2 for bad arguments.
    """
    argv = sys.argv[2:] if argv is None else argv
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    parser = _parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args, extra = parser.parse_known_args(argv)
    except SystemExit as e:
        # --help.
        return e.code if isinstance(e.code, int) else 0
    except _UsageError as e:
        print(f"{e.prog}: error: {_redacted(str(e), argv)}", file=stderr)
        return 2
    if extra:
        # An unexpected argument may be a password given where it must not
        # be: say so without repeating it.
        print(
            f"{PROGRAM}: error: unexpected arguments (not shown); a password "
            "is read from a prompt or with --password-stdin, never from the "
            "command line",
            file=stderr,
        )
        return 2
    commands = _Commands(
        args.file or defaultUsersFile(),
        stdin,
        stdout,
        _getpass.getpass if prompt is None else prompt,
        argon2.PasswordHasher() if hasher is None else hasher,
    )
    run: dict[str, Callable[[argparse.Namespace], None]] = {
        "add": commands.addUser,
        "remove": commands.removeUser,
        "passwd": commands.changePassword,
        "enable": commands.enableUser,
        "disable": commands.disableUser,
        "list": commands.listUsers,
        "check": commands.checkFile,
        "alias": commands.aliases,
        "domain": commands.domains,
    }
    try:
        run[args.command](args)
    except (_Refused, UsersFileError) as e:
        print(f"error: {e}", file=stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("error: interrupted", file=stderr)
        return 1
    return 0
