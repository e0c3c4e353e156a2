"""
Tests for C{python -m gomail_twisted users} and the C{python -m
gomail_twisted} dispatcher.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Sequence

import argon2
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.__main__ import main as packageMain
from gomail_twisted.users import PasswordHashing, UsersDatabase, defaultUsersFile
from gomail_twisted.users._cli import main

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Prompt:
    """
    Answers password prompts from a list, noting the prompts.
    """

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


class UsersCommandTests(SynchronousTestCase):
    """
    Tests for C{python -m gomail_twisted users}, through its C{main}.
    """

    def setUp(self) -> None:
        self.path = os.path.join(self.mktemp(), "users")

    def command(
        self, *argv: str, stdin: str = "", prompt: Prompt | None = None
    ) -> tuple[int, str, str]:
        """
        Run the command on the test's file.

        @return: the exit status, standard output and standard error.
        """
        out, err = io.StringIO(), io.StringIO()
        status = main(
            ["--file", self.path, *argv],
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
            prompt=prompt or Prompt(),
            hasher=HASHER,
        )
        return status, out.getvalue(), err.getvalue()

    def checks(self, address: str, password: str) -> bool:
        """
        Whether the file's hash for an address checks against a password.
        """
        found = UsersDatabase(self.path).loginHash(address)
        assert found is not None
        hashing = PasswordHashing(None, HASHER)  # type: ignore[arg-type]
        return hashing.verifyNow(found[1], password)

    def table(self, cases: Sequence[tuple[Sequence[str], str, int, str, str]]) -> None:
        """
        Run commands in turn, each with its standard input, and check each
        one's status and output.
        """
        for argv, stdin, status, out, err in cases:
            self.assertEqual(self.command(*argv, stdin=stdin), (status, out, err), argv)

    def test_usersAndDomains(self) -> None:
        """
        Users and domains are added, listed, changed and removed, each
        mistake refused with one line and status 1.
        """
        self.table(
            [
                (["list"], "", 0, "", ""),
                (
                    ["add", "alice@example.com", "--password-stdin"],
                    "pw\n",
                    1,
                    "",
                    "error: example.com is not a local domain "
                    "(add it with: domain add example.com)\n",
                ),
                (
                    ["domain", "add", "Example.COM."],
                    "",
                    0,
                    "added domain example.com\n",
                    "",
                ),
                (
                    ["domain", "add", "example.com"],
                    "",
                    1,
                    "",
                    "error: example.com is already a local domain\n",
                ),
                (
                    ["domain", "add", "bad..example"],
                    "",
                    1,
                    "",
                    "error: 'bad..example' is not a domain\n",
                ),
                (
                    ["add", "Alice@Example.com", "--password-stdin"],
                    "first secret\n",
                    0,
                    "added user alice@example.com\n",
                    "",
                ),
                (
                    ["add", "alice@example.com", "--password-stdin"],
                    "pw\n",
                    1,
                    "",
                    "error: alice@example.com is already a user\n",
                ),
                (
                    ["add", "not-an-address", "--password-stdin"],
                    "pw\n",
                    1,
                    "",
                    "error: 'not-an-address' is not a mail address (no @ in mailbox)\n",
                ),
                (
                    ["add", "bob@example.com", "--password-stdin"],
                    "\n",
                    1,
                    "",
                    "error: the password is empty\n",
                ),
                (
                    ["add", "bob@example.com", "--password-stdin", "--disabled"],
                    "bob's\r\n",
                    0,
                    "added user bob@example.com (disabled)\n",
                    "",
                ),
                (["list"], "", 0, "alice@example.com\nbob@example.com disabled\n", ""),
                (["enable", "bob@example.com"], "", 0, "enabled bob@example.com\n", ""),
                (
                    ["disable", "alice@example.com"],
                    "",
                    0,
                    "disabled alice@example.com\n",
                    "",
                ),
                (["list"], "", 0, "alice@example.com disabled\nbob@example.com\n", ""),
                (
                    ["passwd", "alice@example.com", "--password-stdin"],
                    "second secret\n",
                    0,
                    "changed the password of alice@example.com\n",
                    "",
                ),
                (
                    ["passwd", "nobody@example.com", "--password-stdin"],
                    "x\n",
                    1,
                    "",
                    "error: no such user: nobody@example.com\n",
                ),
                (
                    ["remove", "nobody@example.com"],
                    "",
                    1,
                    "",
                    "error: no such user: nobody@example.com\n",
                ),
                (
                    ["enable", "nobody@example.com"],
                    "",
                    1,
                    "",
                    "error: no such user: nobody@example.com\n",
                ),
                (
                    ["domain", "remove", "example.com"],
                    "",
                    1,
                    "",
                    "error: example.com still has users or aliases "
                    "(alice@example.com, bob@example.com): remove them first\n",
                ),
                (
                    ["remove", "bob@example.com"],
                    "",
                    0,
                    "removed user bob@example.com\n",
                    "",
                ),
                (
                    ["domain", "add", "example.org"],
                    "",
                    0,
                    "added domain example.org\n",
                    "",
                ),
                (["domain", "list"], "", 0, "example.com\nexample.org\n", ""),
                (
                    ["domain", "remove", "example.org"],
                    "",
                    0,
                    "removed domain example.org\n",
                    "",
                ),
                (
                    ["domain", "remove", "example.org"],
                    "",
                    1,
                    "",
                    "error: example.org is not a local domain\n",
                ),
                (["check"], "", 0, "", ""),
            ]
        )
        self.assertTrue(self.checks("alice@example.com", "second secret"))
        self.assertFalse(self.checks("alice@example.com", "first secret"))

    def test_aliases(self) -> None:
        """
        Aliases are added, listed with the user they lead to, and removed.
        """
        self.command("domain", "add", "example.com")
        self.command("domain", "add", "example.org")
        self.command("add", "alice@example.com", "--password-stdin", stdin="pw\n")
        self.table(
            [
                (["alias", "list"], "", 0, "", ""),
                (
                    ["alias", "add", "Postmaster@example.com", "alice@example.com"],
                    "",
                    0,
                    "added alias postmaster@example.com -> alice@example.com\n",
                    "",
                ),
                (
                    ["alias", "add", "@example.org", "postmaster@example.com"],
                    "",
                    0,
                    "added alias @example.org -> postmaster@example.com\n",
                    "",
                ),
                (
                    ["alias", "add", "info@example.net", "alice@example.com"],
                    "",
                    1,
                    "",
                    "error: example.net is not a local domain "
                    "(add it with: domain add example.net)\n",
                ),
                (
                    ["alias", "add", "info@example.com", "nobody@example.com"],
                    "",
                    1,
                    "",
                    "error: cannot add alias info@example.com: "
                    "nobody@example.com is neither a user nor an alias\n",
                ),
                (
                    ["alias", "list"],
                    "",
                    0,
                    "postmaster@example.com -> alice@example.com\n"
                    "@example.org -> postmaster@example.com (-> alice@example.com)\n",
                    "",
                ),
                (
                    ["remove", "alice@example.com"],
                    "",
                    1,
                    "",
                    "error: alice@example.com still receives mail for aliases "
                    "(postmaster@example.com, @example.org): remove them first\n",
                ),
                (
                    ["alias", "remove", "@Example.ORG"],
                    "",
                    0,
                    "removed alias @example.org\n",
                    "",
                ),
                (
                    ["alias", "remove", "@example.org"],
                    "",
                    1,
                    "",
                    "error: no such alias: @example.org\n",
                ),
            ]
        )
        db = UsersDatabase(self.path)
        self.assertEqual(
            db.resolve("postmaster@example.com"), db.user("alice@example.com")
        )

    def test_prompt(self) -> None:
        """
        Without C{--password-stdin} the password is asked for twice, and
        two different answers are refused.
        """
        self.command("domain", "add", "example.com")
        prompt = Prompt("typed", "typed")
        status, out, _ = self.command("add", "alice@example.com", prompt=prompt)
        self.assertEqual((status, out), (0, "added user alice@example.com\n"))
        self.assertEqual(prompt.prompts, ["Password: ", "Password again: "])
        self.assertTrue(self.checks("alice@example.com", "typed"))
        mismatch = Prompt("one", "two")
        self.assertEqual(
            self.command("passwd", "alice@example.com", prompt=mismatch),
            (1, "", "error: the passwords do not match\n"),
        )
        self.assertTrue(self.checks("alice@example.com", "typed"))

    def test_passwordNeverFromArguments(self) -> None:
        """
        A password on the command line is refused without being repeated,
        and nothing is written.
        """
        self.command("domain", "add", "example.com")
        with open(self.path) as f:
            before = f.read()
        for argv in (
            ["add", "alice@example.com", "hunter2"],
            ["add", "alice@example.com", "--password", "hunter2"],
            ["add", "alice@example.com", "--password=hunter2"],
            ["add", "alice@example.com", "--password-stdin=hunter2"],
            ["passwd", "alice@example.com", "-p", "hunter2"],
        ):
            status, out, err = self.command(*argv, stdin="pw\n")
            self.assertEqual((status, out), (2, ""), argv)
            self.assertIn("(not shown)", err)
            self.assertNotIn("hunter2", err)
        with open(self.path) as f:
            self.assertEqual(f.read(), before)

    def test_noSecretsPrinted(self) -> None:
        """
        No command prints a password or a hash.
        """
        self.command("domain", "add", "example.com")
        outputs = [
            self.command(
                "add", "alice@example.com", "--password-stdin", stdin="s3cret\n"
            )
        ]
        outputs += [
            self.command(*argv) for argv in (["list"], ["alias", "list"], ["check"])
        ]
        with open(self.path) as f:
            passwordHash = f.read().split()[-1]
        self.assertTrue(passwordHash.startswith("$argon2id$"))
        for _, out, err in outputs:
            self.assertNotIn("s3cret", out + err)
            self.assertNotIn("$argon2", out + err)

    def test_check(self) -> None:
        """
        C{check} lists the skipped lines with their numbers and fails.
        """
        os.makedirs(os.path.dirname(self.path))
        with open(self.path, "w") as f:
            f.write("domain example.com\nuser alice@example.com plain\nbogus\n")
        self.assertEqual(
            self.command("check"),
            (
                1,
                f"{self.path}:2: the password hash is neither argon2 nor bcrypt\n"
                f"{self.path}:3: unknown keyword 'bogus'\n",
                f"error: 2 line(s) of {self.path} are skipped\n",
            ),
        )

    def test_unwritableFile(self) -> None:
        """
        A file that cannot be written is reported in one line.
        """
        os.makedirs(self.path)
        status, out, err = self.command("domain", "add", "example.com")
        self.assertEqual((status, out), (1, ""))
        self.assertTrue(err.startswith("error: cannot "), err)
        self.assertEqual(err.count("\n"), 1)

    def test_defaultFile(self) -> None:
        """
        The file is C{$GOMAIL_USERS} when set and not empty, else
        C{gomail-data/users}.
        """
        self.assertEqual(defaultUsersFile({}), os.path.join("gomail-data", "users"))
        self.assertEqual(defaultUsersFile({"GOMAIL_USERS": ""}), "gomail-data/users")
        self.assertEqual(defaultUsersFile({"GOMAIL_USERS": "/etc/users"}), "/etc/users")


class DispatcherTests(SynchronousTestCase):
    """
    Tests for C{python -m gomail_twisted}.
    """

    def test_usage(self) -> None:
        """
        Without a command, or with an unknown one, the commands are listed
        and the status is 2; C{--help} lists them with status 0.
        """
        for argv, status in (([], 2), (["frob"], 2), (["--help"], 0)):
            out, err = io.StringIO(), io.StringIO()
            self.assertEqual(packageMain(argv, stdout=out, stderr=err), status)
            self.assertIn(
                "users  manage users, aliases and local domains",
                out.getvalue() + err.getvalue(),
            )

    def test_subprocess(self) -> None:
        """
        C{python -m gomail_twisted users} runs as a program, taking the file
        from C{$GOMAIL_USERS} and the password from standard input.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        env = dict(os.environ, GOMAIL_USERS=os.path.join(directory, "users"))

        def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "gomail_twisted", "users", *argv],
                input=stdin,
                capture_output=True,
                text=True,
                env=env,
                cwd=directory,
                timeout=60,
            )

        self.assertEqual(run("domain", "add", "example.com").returncode, 0)
        added = run("add", "alice@example.com", "--password-stdin", stdin="pw\n")
        self.assertEqual(
            (added.returncode, added.stdout), (0, "added user alice@example.com\n")
        )
        duplicate = run("add", "alice@example.com", "--password-stdin", stdin="pw\n")
        self.assertEqual(
            (duplicate.returncode, duplicate.stderr),
            (1, "error: alice@example.com is already a user\n"),
        )
        self.assertEqual(run("list").stdout, "alice@example.com\n")
        self.assertEqual(sorted(os.listdir(directory)), ["users", "users.lock"])
