# -*- test-case-name: tests.test_users -*-
"""
Users, aliases and local domains, kept in a text file that the servers
read and an operator edits, by hand or with
C{python -m gomail_twisted users}.

The file is UTF-8, one entry a line, fields separated by spaces or tabs;
C{#} starts a comment, at the start of a line or of a field::

    # Mail for these domains is ours.
    domain example.com
    domain example.org
    # user ADDRESS PASSWORD-HASH [disabled]
    user alice@example.com $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA
    user bob@example.com $2b$12$...   disabled   # left in March
    # alias ALIAS TARGET: mail for ALIAS goes to TARGET's user.
    alias postmaster@example.com alice@example.com
    alias @example.org alice@example.com   # every address of the domain

  - Addresses are normalized (L{gomail_twisted.address.normalizeAddress}):
    local parts without regard to case, domains in their ASCII form.
  - A user's or an alias's domain must be declared by a C{domain} line.
  - A password hash is argon2 (new ones are argon2id) or bcrypt (C{$2a$},
    C{$2b$}, C{$2y$}).  C{disabled} keeps a user from logging in; they
    still receive mail.
  - An alias leads to a user, directly or through other aliases (at most
    L{MAX_ALIAS_HOPS}, never in a loop).  A user's own address comes
    first, then an alias of that address, then an alias of its domain, so
    C{alias @example.com alice@example.com} catches what no user or alias
    of the domain takes.
  - A line that is malformed or breaks one of these rules is logged with
    its file and line number and skipped; the rest of the file counts.
    The address or domain a skipped line names, when it can still be read,
    is I{damaged} (L{UsersDatabase.damage}) until the line is fixed: mail
    for it gets a temporary SMTP error and its login a temporary failure
    (L{UserUnavailable}), never a refusal, so an operator's typo bounces
    no mail and gets no user blocked by access control.

L{UsersDatabase} reads the file (again whenever it changes);
L{UsersChecker} checks passwords for C{twisted.cred} and SASL;
L{UsersRealm} gives a logged-in user their account in the store, and
L{loginAccount} logs a password in through a portal to that account;
L{editUsersFile} changes the file safely.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gomail_twisted.users._cred import (
    UsersChecker,
    UsersRealm,
    UserUnavailable,
    loginAccount,
)
from gomail_twisted.users._database import UsersDatabase
from gomail_twisted.users._edit import (
    UsersFileEditor,
    UsersFileError,
    editUsersFile,
    writeAtomically,
)
from gomail_twisted.users._hashing import (
    HashingBusy,
    LoginUnavailable,
    PasswordHashing,
)
from gomail_twisted.users._snapshot import MAX_ALIAS_HOPS, Alias, Problem, User

#: Where the users file is unless C{$GOMAIL_USERS} says otherwise: in the
#: data directory that C{twistd gomail} uses.
DEFAULT_USERS_FILE = os.path.join("gomail-data", "users")
#: The environment variable that names the users file.
USERS_FILE_VARIABLE = "GOMAIL_USERS"


def defaultUsersFile(environ: Mapping[str, str] | None = None) -> str:
    """
    The users file to use when none is named.

    @param environ: the environment; by default C{os.environ}.
    @return: C{$GOMAIL_USERS} if set and not empty, else
        L{DEFAULT_USERS_FILE}.
    """
    value = (os.environ if environ is None else environ).get(USERS_FILE_VARIABLE)
    return value or DEFAULT_USERS_FILE


__all__ = [
    "DEFAULT_USERS_FILE",
    "MAX_ALIAS_HOPS",
    "USERS_FILE_VARIABLE",
    "Alias",
    "HashingBusy",
    "LoginUnavailable",
    "PasswordHashing",
    "Problem",
    "User",
    "UserUnavailable",
    "UsersChecker",
    "UsersDatabase",
    "UsersFileEditor",
    "UsersFileError",
    "UsersRealm",
    "defaultUsersFile",
    "editUsersFile",
    "loginAccount",
    "writeAtomically",
]
