"""
Tests for L{gomail_twisted.users}: the users file, its database, the
password hashes, the checker and the realm.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from typing import Any

import argon2
import bcrypt
from hypothesis import given
from hypothesis import strategies as st
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import reactor as globalReactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogEvent, capturedLogs, formatEvent
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import Interface, implementer

from gomail_twisted.maildir.interfaces import IAccount, IMailStore
from gomail_twisted.sasl import PasswordCredentials
from gomail_twisted.users import (
    MAX_ALIAS_HOPS,
    HashingBusy,
    PasswordHashing,
    User,
    UsersChecker,
    UsersDatabase,
    UsersFileError,
    UsersRealm,
    editUsersFile,
    writeAtomically,
)
from gomail_twisted.users._format import (
    AliasEntry,
    DomainEntry,
    UserEntry,
    formatEntry,
    parseLine,
    parseText,
)
from gomail_twisted.users._snapshot import buildSnapshot


def cheapHasher() -> argon2.PasswordHasher:
    """
    An argon2id hasher with the smallest parameters, for speed.
    """
    return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


HASHER = cheapHasher()
ALICE_PASSWORD = "correct horse"
ALICE_HASH = HASHER.hash(ALICE_PASSWORD)
BOB_PASSWORD = "battery staple"
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
CAROL_HASH = HASHER.hash("carol's")


class SynchronousPool:
    """
    A thread pool that runs each call at once, on the calling thread.
    """

    def __init__(self) -> None:
        self.calls = 0

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, object], None], f: Callable[..., Any], *a: Any
    ) -> None:
        self.calls += 1
        try:
            result = f(*a)
        except BaseException as e:
            onResult(False, e)
        else:
            onResult(True, result)


class PendingPool:
    """
    A thread pool that never runs anything.
    """

    def callInThreadWithCallback(self, *a: object) -> None:
        pass


class ImmediateReactor:
    """
    Runs C{callFromThread} calls at once.
    """

    def callFromThread(self, f: Callable[..., object], *a: object) -> None:
        f(*a)


class ThreadedMemoryReactor(MemoryReactor):
    """
    A memory reactor that runs C{callFromThread} calls at once.
    """

    def callFromThread(self, f: Callable[..., object], *a: object) -> None:
        f(*a)


class CountingHasher(argon2.PasswordHasher):
    """
    A cheap hasher that counts its verifications and notes their threads.
    """

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0
        self.threads: list[int] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        self.threads.append(threading.get_ident())
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password, salt=salt)


USERS_TEXT = f"""\
# The users of example.com
domain example.com
domain Example.ORG.
user Alice@Example.com {ALICE_HASH}   # the admin
user bob@example.com {BOB_HASH}
user carol@example.com {CAROL_HASH} disabled
alias postmaster@example.com alice@example.com
alias @example.org postmaster@example.com
"""


def writeFile(case: SynchronousTestCase, text: str) -> str:
    """
    Write a users file in a new directory.
    """
    directory = case.mktemp()
    os.mkdir(directory)
    path = os.path.join(directory, "users")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def logText(events: list[LogEvent]) -> str:
    """
    Every captured event, formatted, and every field's repr.
    """
    return "\n".join(f"{formatEvent(e)} {e!r}" for e in events)


class LineTests(SynchronousTestCase):
    """
    Tests for parsing one line.
    """

    def test_validLines(self) -> None:
        """
        Each kind of entry is parsed, normalized, with its trailing comment.
        """
        cases = [
            ("", None, ""),
            ("   # a comment", None, "# a comment"),
            ("domain Example.COM.", DomainEntry("example.com"), ""),
            ("domain bücher.example", DomainEntry("xn--bcher-kva.example"), ""),
            ("DOMAIN [192.0.2.1]", DomainEntry("[192.0.2.1]"), ""),
            (
                f"user Alice@Example.com {ALICE_HASH}",
                UserEntry("alice@example.com", ALICE_HASH),
                "",
            ),
            (
                f'user "bob"@example.com\t{BOB_HASH} DISABLED #gone',
                UserEntry("bob@example.com", BOB_HASH, False),
                "#gone",
            ),
            (
                "alias postmaster@example.com alice@example.com # admin",
                AliasEntry("postmaster@example.com", "alice@example.com"),
                "# admin",
            ),
            (
                "alias @Example.ORG alice@example.com",
                AliasEntry("@example.org", "alice@example.com"),
                "",
            ),
            ("domain example.com\r", DomainEntry("example.com"), ""),
        ]
        for text, entry, comment in cases:
            parsed = parseLine(7, text)
            self.assertEqual(
                (parsed.entry, parsed.problem, parsed.comment, parsed.text),
                (entry, None, comment, text),
                text,
            )

    def test_malformedLines(self) -> None:
        """
        Each malformed line gets a reason that names the fault and never
        quotes the hash.
        """
        argon = ALICE_HASH
        cases = [
            ("domain", "'domain' takes one domain"),
            ("domain a.example b.example", "'domain' takes one domain"),
            ("domain -bad-.example", "is not a domain"),
            ("user alice@example.com", "'user' takes an address and a password"),
            (f"user alice {argon}", "is not a mail address"),
            (f"user alice@@example.com {argon}", "is not a mail address"),
            ("user alice@example.com secret", "neither argon2 nor bcrypt"),
            ("user alice@example.com $argon2id$v=19$garbage", "argon2 password hash"),
            ("user alice@example.com $2b$03$" + "a" * 53, "neither argon2 nor bcrypt"),
            (f"user alice@example.com {argon} frozen", "unknown flag 'frozen'"),
            (f"user alice@example.com {argon} $x", "unknown flag"),
            ("alias postmaster@example.com", "'alias' takes an alias"),
            ("alias @ alice@example.com", "is not a domain"),
            ("alias a@example.com @example.org", "is not a mail address"),
            ("quota alice@example.com 1G", "unknown keyword 'quota'"),
            (f"{argon} user", "must start with domain, user or alias"),
            (f"user {argon} alice@example.com", "the value is not a mail address"),
            (f"user {BOB_HASH} alice@example.com", "the value is not a mail address"),
            (f"domain {argon}", "the value is not a domain"),
            ("domain b\udcfcs.example", "not UTF-8"),
        ]
        for text, reason in cases:
            parsed = parseLine(3, text)
            self.assertIsNone(parsed.entry, text)
            assert parsed.problem is not None
            self.assertIn(reason, parsed.problem, text)
            self.assertNotIn(argon, parsed.problem)
            self.assertNotIn("$argon2", parsed.problem)
            self.assertNotIn(BOB_HASH, parsed.problem)
            self.assertNotIn("secret", parsed.problem)

    def test_formatRoundTrips(self) -> None:
        """
        A formatted entry parses back to itself, with its comment.
        """
        for entry in (
            DomainEntry("example.com"),
            UserEntry("alice@example.com", ALICE_HASH),
            UserEntry("bob@example.com", BOB_HASH, False),
            AliasEntry("@example.org", "alice@example.com"),
        ):
            parsed = parseLine(1, formatEntry(entry, "# kept"))
            self.assertEqual((parsed.entry, parsed.comment), (entry, "# kept"))

    @given(st.text(max_size=80))
    def test_anyLineParses(self, text: str) -> None:
        """
        Any line, however malformed, parses to an entry, a blank or a
        reason, and never raises.
        """
        parsed = parseLine(1, text.replace("\n", " "))
        self.assertTrue(parsed.entry is None or parsed.problem is None)

    def test_reprHidesHash(self) -> None:
        """
        Neither a user entry's nor a parsed line's repr shows the hash.
        """
        parsed = parseLine(1, f"user alice@example.com {ALICE_HASH}")
        self.assertNotIn(ALICE_HASH, repr(parsed))
        self.assertNotIn(ALICE_HASH, repr(parsed.entry))


class SnapshotTests(SynchronousTestCase):
    """
    Tests for the rules between lines.
    """

    def snapshot(self, text: str) -> Any:
        return buildSnapshot(parseText(text))

    def test_brokenRulesAreSkipped(self) -> None:
        """
        Each line that breaks a rule is reported with its number and
        skipped, and the other lines still count.
        """
        snapshot = self.snapshot(
            f"""\
domain example.com
domain EXAMPLE.com
user alice@example.com {ALICE_HASH}
user ALICE@example.com {CAROL_HASH}
user dave@elsewhere.example {CAROL_HASH}
alias alice@example.com bob@example.com
alias loop1@example.com loop2@example.com
alias loop2@example.com loop1@example.com
alias nowhere@example.com nobody@example.com
alias ok@example.com postmaster@example.com
user bob@example.com {BOB_HASH}
alias postmaster@example.com alice@example.com
garbage
"""
        )
        self.assertEqual(
            [(p.line, p.reason) for p in snapshot.problems],
            [
                (2, "domain example.com is already declared on line 1"),
                (4, "alice@example.com is already defined on line 3"),
                (
                    5,
                    "elsewhere.example is not a local domain: add a "
                    "'domain elsewhere.example' line",
                ),
                (6, "alice@example.com is already defined on line 3"),
                (7, "the alias leads back to itself"),
                (8, "the alias leads back to itself"),
                (9, "nobody@example.com is neither a user nor an alias"),
                (13, "unknown keyword 'garbage'"),
            ],
        )
        self.assertEqual(list(snapshot.users), ["alice@example.com", "bob@example.com"])
        self.assertEqual(
            snapshot.resolve("ok@example.com"), User("alice@example.com", True)
        )

    def test_aliasChainBounded(self) -> None:
        """
        A chain of L{MAX_ALIAS_HOPS} aliases resolves; one more is refused.
        """
        hops = MAX_ALIAS_HOPS
        lines = ["domain example.com", f"user u@example.com {ALICE_HASH}"]
        lines += [f"alias a{i}@example.com a{i + 1}@example.com" for i in range(hops)]
        lines.append(f"alias a{hops}@example.com u@example.com")
        snapshot = self.snapshot("\n".join(lines))
        self.assertEqual(snapshot.problems[0].line, 3)
        self.assertIn("more than", snapshot.problems[0].reason)
        self.assertEqual(len(snapshot.problems), 1)
        self.assertEqual(snapshot.resolve("a1@example.com"), User("u@example.com"))
        self.assertIsNone(snapshot.resolve("a0@example.com"))


class DatabaseTests(SynchronousTestCase):
    """
    Tests for L{UsersDatabase}.
    """

    def test_lookups(self) -> None:
        """
        C{resolve} finds users, aliases and domain aliases, normalizing the
        address; C{isLocalDomain}, C{users}, C{domains} and C{aliases} say
        what the file holds.
        """
        db = UsersDatabase(writeFile(self, USERS_TEXT))
        alice = User("alice@example.com")
        cases = [
            ("alice@example.com", alice),
            ('"ALICE"@EXAMPLE.COM.', alice),
            ("bob@example.com", User("bob@example.com")),
            ("carol@example.com", User("carol@example.com", False)),
            ("postmaster@example.com", alice),
            ("Postmaster", alice),
            ("anyone@example.org", alice),
            ("nobody@example.com", None),
            ("alice@example.net", None),
            ("not an address", None),
        ]
        for address, user in cases:
            self.assertEqual(db.resolve(address), user, address)
        self.assertTrue(db.isLocalDomain("EXAMPLE.org."))
        self.assertFalse(db.isLocalDomain("example.net"))
        self.assertEqual(db.domains(), ("example.com", "example.org"))
        self.assertEqual(
            [u.address for u in db.users()],
            ["alice@example.com", "bob@example.com", "carol@example.com"],
        )
        self.assertEqual(
            [(a.alias, a.target, a.user) for a in db.aliases()],
            [
                ("postmaster@example.com", "alice@example.com", "alice@example.com"),
                ("@example.org", "postmaster@example.com", "alice@example.com"),
            ],
        )
        self.assertIsNone(db.user("postmaster@example.com"))
        self.assertEqual(db.user("ALICE@example.com"), alice)
        self.assertEqual(db.problems(), ())

    def test_missingFile(self) -> None:
        """
        A missing file is an empty database, and is read once it appears.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "users")
        db = UsersDatabase(path)
        self.assertEqual((db.users(), db.domains()), ((), ()))
        self.assertIsNone(db.resolve("alice@example.com"))
        with open(path, "w") as f:
            f.write(USERS_TEXT)
        self.assertEqual(db.resolve("alice@example.com"), User("alice@example.com"))

    def test_handEditPickedUp(self) -> None:
        """
        A file edited in place is read again at the next lookup, whether its
        size or only its modification time changed.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        db = UsersDatabase(path, clock=clock)
        self.assertIsNotNone(db.resolve("bob@example.com"))
        with open(path, "a") as f:
            f.write("user dave@example.com " + CAROL_HASH + "\n")
        self.assertEqual(db.resolve("dave@example.com"), User("dave@example.com"))
        st = os.stat(path)
        with open(path, "r+") as f:
            text = f.read().replace("user dave@", "user evan@")
            f.seek(0)
            f.write(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        clock.advance(1)
        self.assertIsNone(db.resolve("dave@example.com"))
        self.assertEqual(db.resolve("evan@example.com"), User("evan@example.com"))

    def test_unchangedFileNotRead(self) -> None:
        """
        While the file does not change, lookups do not read it again.
        """
        path = writeFile(self, USERS_TEXT)
        db = UsersDatabase(path)
        with capturedLogs() as events:
            for _ in range(5):
                db.resolve("alice@example.com")
        self.assertEqual(sum("Read 3 users" in formatEvent(e) for e in events), 1)

    def test_fileLookedAtOncePerInterval(self) -> None:
        """
        Within the check interval lookups answer from the version read
        last, so a removed user still resolves; once it has passed, the
        next lookup reads the edit.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        db = UsersDatabase(path, clock=clock, checkInterval=2.0)
        self.assertEqual(db.resolve("bob@example.com"), User("bob@example.com"))
        with open(path, "w") as f:
            f.write(USERS_TEXT.replace(f"user bob@example.com {BOB_HASH}\n", ""))
        clock.advance(1.5)
        self.assertEqual(db.resolve("bob@example.com"), User("bob@example.com"))
        self.assertEqual(
            db.loginHash("bob@example.com"), (User("bob@example.com"), BOB_HASH)
        )
        clock.advance(0.5)
        self.assertIsNone(db.resolve("bob@example.com"))
        self.assertIsNone(db.loginHash("bob@example.com"))

    def test_missLooksAgainAtOnce(self) -> None:
        """
        A lookup that finds nothing looks at the file again within the
        interval, so a user, a domain and an alias just added count at
        once.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        db = UsersDatabase(path, clock=clock)
        self.assertIsNone(db.resolve("dave@example.net"))
        self.assertFalse(db.isLocalDomain("example.net"))
        with open(path, "a") as f:
            f.write(f"domain example.net\nuser dave@example.net {CAROL_HASH}\n")
        self.assertTrue(db.isLocalDomain("example.net"))
        with open(path, "a") as f:
            f.write("alias info@example.net dave@example.net\n")
        self.assertEqual(db.resolve("info@example.net"), User("dave@example.net"))
        with open(path, "a") as f:
            f.write(f"user erin@example.net {CAROL_HASH}\n")
        self.assertEqual(db.user("erin@example.net"), User("erin@example.net"))
        with open(path, "a") as f:
            f.write(f"user fred@example.net {ALICE_HASH}\n")
        self.assertEqual(
            db.loginHash("fred@example.net"), (User("fred@example.net"), ALICE_HASH)
        )

    def test_intervalZeroLooksEveryTime(self) -> None:
        """
        With a check interval of 0 every lookup looks at the file, so a
        removal counts at once.
        """
        path = writeFile(self, USERS_TEXT)
        db = UsersDatabase(path, clock=Clock(), checkInterval=0)
        self.assertIsNotNone(db.resolve("bob@example.com"))
        with open(path, "w") as f:
            f.write(USERS_TEXT.replace(f"user bob@example.com {BOB_HASH}\n", ""))
        self.assertIsNone(db.resolve("bob@example.com"))
        self.assertEqual(len(db.users()), 2)

    def test_clockGoingBackLooksAgain(self) -> None:
        """
        When the clock goes back (the wall clock of a reactor may), the
        next lookup looks at the file rather than trusting it for longer.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        clock.advance(100)
        db = UsersDatabase(path, clock=clock)
        self.assertEqual(db.domains(), ("example.com", "example.org"))
        with open(path, "w") as f:
            f.write("domain example.net\n")
        clock.advance(-10)
        self.assertEqual(db.domains(), ("example.net",))

    def test_negativeIntervalRefused(self) -> None:
        """
        A negative check interval is refused.
        """
        with self.assertRaises(ValueError):
            UsersDatabase(writeFile(self, USERS_TEXT), checkInterval=-1)

    def test_unreadableFileKeepsLastVersion(self) -> None:
        """
        When the file cannot be read, the last version read is kept and the
        error is logged once.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        db = UsersDatabase(path, clock=clock)
        self.assertIsNotNone(db.resolve("alice@example.com"))
        os.unlink(path)
        os.mkdir(path)
        with capturedLogs() as events:
            for _ in range(3):
                clock.advance(1)
                self.assertEqual(
                    db.resolve("alice@example.com"), User("alice@example.com")
                )
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                f"Cannot read the users file {path}: Is a directory; "
                "keeping what was read before"
            ],
        )
        os.rmdir(path)
        with open(path, "w") as f:
            f.write("domain example.com\n")
        clock.advance(1)
        self.assertIsNone(db.resolve("alice@example.com"))

    def test_malformedLineLoggedAndSkipped(self) -> None:
        """
        A malformed line is logged with the file, its number and the reason,
        never its hash, and the rest of the file still counts.
        """
        path = writeFile(
            self,
            USERS_TEXT + f"user dave@example.com {ALICE_HASH} frozen\n"
            f"user erin@example.com x{ALICE_HASH}\n",
        )
        with capturedLogs() as events:
            db = UsersDatabase(path)
            self.assertEqual(db.resolve("alice@example.com"), User("alice@example.com"))
        self.assertIsNone(db.resolve("dave@example.com"))
        messages = [formatEvent(e) for e in events]
        self.assertEqual(
            messages[:2],
            [
                f"{path}:9: unknown flag 'frozen'; line skipped",
                f"{path}:10: the password hash is neither argon2 nor bcrypt; "
                "line skipped",
            ],
        )
        self.assertEqual(
            [(p.line, p.reason) for p in db.problems()],
            [
                (9, "unknown flag 'frozen'"),
                (10, "the password hash is neither argon2 nor bcrypt"),
            ],
        )
        text = logText(events)
        for secret in (ALICE_HASH, BOB_HASH, CAROL_HASH, "$argon2", "$2b$"):
            self.assertNotIn(secret, text)
        self.assertNotIn(ALICE_HASH, repr(db))


class EditTests(SynchronousTestCase):
    """
    Tests for L{editUsersFile}.
    """

    def test_rewriteKeepsOtherLines(self) -> None:
        """
        A change rewrites only its own lines: comments, blank lines, unknown
        and malformed lines, CRLF line ends and trailing comments stay.
        """
        original = (
            "# header\r\n"
            "domain example.com\r\n"
            "\n"
            f"user alice@example.com {ALICE_HASH}   # the admin\n"
            "quota alice@example.com 1G\n"
            "user broken\n"
        )
        path = writeFile(self, original)
        os.chmod(path, 0o640)
        with editUsersFile(path) as editor:
            editor.setEnabled("Alice@example.com", False)
            editor.addUser("bob@example.com", BOB_HASH)
        with open(path, "rb") as f:
            written = f.read().decode()
        self.assertEqual(
            written,
            original.replace(
                f"{ALICE_HASH}   # the admin", f"{ALICE_HASH} disabled # the admin"
            )
            + f"user bob@example.com {BOB_HASH}\n",
        )
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertEqual(
            sorted(os.listdir(os.path.dirname(path))), ["users", "users.lock"]
        )

    def test_noChangeNoWrite(self) -> None:
        """
        An edit that changes nothing, or raises, leaves the file as it was.
        """
        path = writeFile(self, USERS_TEXT)
        inode = os.stat(path).st_ino
        with editUsersFile(path) as editor:
            editor.setEnabled("carol@example.com", False)
        self.assertEqual(os.stat(path).st_ino, inode)
        with self.assertRaises(UsersFileError), editUsersFile(path) as editor:
            editor.addDomain("example.net")
            editor.addDomain("example.net")
        with open(path) as f:
            self.assertEqual(f.read(), USERS_TEXT)

    def test_newFileAndDirectory(self) -> None:
        """
        Editing a file that does not exist makes it and its directory, the
        file readable only by its owner.
        """
        path = os.path.join(self.mktemp(), "data", "users")
        with editUsersFile(path) as editor:
            editor.addDomain("Example.COM")
        with open(path) as f:
            self.assertEqual(f.read(), "domain example.com\n")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_lockHeld(self) -> None:
        """
        An edit holds an exclusive lock on C{PATH.lock} until it is written.
        """
        path = writeFile(self, USERS_TEXT)
        with editUsersFile(path):
            fd = os.open(path + ".lock", os.O_RDWR)
            self.addCleanup(os.close, fd)
            with self.assertRaises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_refusals(self) -> None:
        """
        A change that would break the file's rules is refused with a clear
        one-line reason.
        """
        path = writeFile(self, USERS_TEXT)
        cases: list[tuple[Callable[[Any], object], str]] = [
            (
                lambda e: e.addUser("alice@example.com", CAROL_HASH),
                "alice@example.com is already a user",
            ),
            (
                lambda e: e.addUser("postmaster@example.com", CAROL_HASH),
                "postmaster@example.com is already an alias",
            ),
            (
                lambda e: e.addUser("x@example.net", CAROL_HASH),
                "example.net is not a local domain (add it with: "
                "domain add example.net)",
            ),
            (
                lambda e: e.addUser("x at example.com", CAROL_HASH),
                "is not a mail address",
            ),
            (
                lambda e: e.addUser("x@example.com", "plain"),
                "neither argon2 nor bcrypt",
            ),
            (
                lambda e: e.addUser('"a b"@example.com', CAROL_HASH),
                "cannot hold",
            ),
            (
                lambda e: e.removeUser("nobody@example.com"),
                "no such user: nobody@example.com",
            ),
            (
                lambda e: e.removeUser("alice@example.com"),
                "alice@example.com still receives mail for aliases "
                "(postmaster@example.com, @example.org)",
            ),
            (
                lambda e: e.setPassword("postmaster@example.com", CAROL_HASH),
                "no such user",
            ),
            (
                lambda e: e.addAlias("x@example.com", "nobody@example.com"),
                "cannot add alias x@example.com: "
                "nobody@example.com is neither a user nor an alias",
            ),
            (
                lambda e: e.addAlias("bob@example.com", "alice@example.com"),
                "bob@example.com is already a user",
            ),
            (
                lambda e: e.removeAlias("@example.net"),
                "no such alias: @example.net",
            ),
            (
                lambda e: e.removeAlias("postmaster@example.com"),
                "cannot remove alias postmaster@example.com: "
                "postmaster@example.com is neither a user nor an alias",
            ),
            (
                lambda e: e.addDomain("example.com"),
                "example.com is already a local domain",
            ),
            (
                lambda e: e.removeDomain("example.org"),
                "example.org still has users or aliases (@example.org)",
            ),
            (
                lambda e: e.removeDomain("example.net"),
                "example.net is not a local domain",
            ),
        ]
        for change, message in cases:
            with self.assertRaises(UsersFileError) as caught, editUsersFile(path) as e:
                change(e)
            self.assertIn(message, str(caught.exception))
            self.assertNotIn("$", str(caught.exception))
        with open(path) as f:
            self.assertEqual(f.read(), USERS_TEXT)

    def test_changes(self) -> None:
        """
        Users, aliases and domains are added, changed and removed, and the
        database reads the result.
        """
        path = writeFile(self, USERS_TEXT)
        clock = Clock()
        db = UsersDatabase(path, clock=clock)
        self.assertIsNotNone(db.resolve("anyone@example.org"))
        clock.advance(1)
        with editUsersFile(path) as e:
            e.removeAlias("@EXAMPLE.org")
            e.removeDomain("example.org")
            e.addDomain("example.net")
            e.addUser("dave@example.net", CAROL_HASH, enabled=False)
            e.addAlias("info@example.net", "postmaster@example.com")
            e.setPassword("bob@example.com", ALICE_HASH)
            e.setEnabled("carol@example.com", True)
            e.removeUser("carol@example.com")
        self.assertEqual(db.problems(), ())
        self.assertEqual(db.domains(), ("example.com", "example.net"))
        self.assertIsNone(db.resolve("anyone@example.org"))
        self.assertEqual(db.resolve("info@example.net"), User("alice@example.com"))
        self.assertEqual(
            db.users(),
            (
                User("alice@example.com"),
                User("bob@example.com"),
                User("dave@example.net", False),
            ),
        )
        self.assertEqual(
            db.loginHash("bob@example.com"), (User("bob@example.com"), ALICE_HASH)
        )

    def test_removeDropsDuplicates(self) -> None:
        """
        Removing a user removes every line of that address, so a duplicate
        that was skipped does not take its place.
        """
        path = writeFile(
            self,
            "domain example.com\n"
            f"user alice@example.com {ALICE_HASH}\n"
            f"user alice@example.com {CAROL_HASH}\n",
        )
        with editUsersFile(path) as e:
            e.removeUser("alice@example.com")
        with open(path) as f:
            self.assertEqual(f.read(), "domain example.com\n")

    def test_ownerKept(self) -> None:
        """
        A file owned by someone else (a server's user, rewritten by root)
        keeps its owner and group.
        """
        path = writeFile(self, "old\n")
        st = os.stat(path)
        given: list[tuple[int, int]] = []
        self.patch(os, "geteuid", lambda: st.st_uid + 1)
        self.patch(os, "fchown", lambda fd, uid, gid: given.append((uid, gid)))
        writeAtomically(path, "new\n")
        self.assertEqual(given, [(st.st_uid, st.st_gid)])

    def test_writeAtomically(self) -> None:
        """
        The new content replaces the file through a rename, leaving no
        temporary file, and bytes that were not UTF-8 survive.
        """
        path = writeFile(self, "old\n")
        inode = os.stat(path).st_ino
        writeAtomically(path, "new \udcff\n")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"new \xff\n")
        self.assertNotEqual(os.stat(path).st_ino, inode)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["users"])


def hashing(hasher: argon2.PasswordHasher | None = None) -> PasswordHashing:
    """
    A L{PasswordHashing} that runs at once, on the calling thread.
    """
    return PasswordHashing(
        ImmediateReactor(),  # type: ignore[arg-type]
        hasher or cheapHasher(),
        SynchronousPool(),  # type: ignore[arg-type]
    )


class HashingTests(SynchronousTestCase):
    """
    Tests for L{PasswordHashing}.
    """

    def test_argon2id(self) -> None:
        """
        New hashes are argon2id, with the hasher's parameters, and check.
        """
        h = hashing()
        passwordHash = self.successResultOf(h.hash("pässword"))
        self.assertTrue(passwordHash.startswith("$argon2id$v=19$m=8,t=1,p=1$"))
        self.assertTrue(self.successResultOf(h.verify(passwordHash, "pässword")))
        self.assertTrue(
            self.successResultOf(h.verify(passwordHash, "pässword".encode()))
        )
        self.assertFalse(self.successResultOf(h.verify(passwordHash, "password")))

    def test_defaultParameters(self) -> None:
        """
        Without a hasher, new hashes use argon2-cffi's default parameters.
        """
        default = argon2.PasswordHasher()
        h = PasswordHashing(ImmediateReactor())  # type: ignore[arg-type]
        parameters = argon2.extract_parameters(h.hashNow("x"))
        self.assertEqual(
            (parameters.type, parameters.time_cost, parameters.memory_cost),
            (argon2.Type.ID, default.time_cost, default.memory_cost),
        )

    def test_bcrypt(self) -> None:
        """
        bcrypt hashes of every variant check, and a password longer than
        bcrypt's 72 bytes is checked by its first 72.
        """
        h = hashing()
        for prefix in ("$2a$", "$2b$", "$2y$"):
            passwordHash = prefix + BOB_HASH[4:]
            self.assertTrue(h.verifyNow(passwordHash, BOB_PASSWORD), prefix)
            self.assertFalse(h.verifyNow(passwordHash, "wrong"), prefix)
        long = "x" * 72
        longHash = bcrypt.hashpw(long.encode(), bcrypt.gensalt(rounds=4)).decode()
        self.assertTrue(h.verifyNow(longHash, long + "yz"))

    def test_noHashCostsACheck(self) -> None:
        """
        Checking against no hash checks against a dummy argon2 hash, once
        per call, and fails.
        """
        hasher = CountingHasher()
        h = hashing(hasher)
        self.assertFalse(self.successResultOf(h.verify(None, "")))
        self.assertFalse(self.successResultOf(h.verify(None, "anything")))
        self.assertEqual(hasher.verified, 2)

    def test_busy(self) -> None:
        """
        Past C{maxQueued} waiting checks, a check fails at once with
        L{HashingBusy}; a finished check frees its place.
        """
        pool = PendingPool()
        h = PasswordHashing(ImmediateReactor(), cheapHasher(), pool, maxQueued=2)  # type: ignore[arg-type]
        first = h.verify(None, "a")
        h.verify(None, "b")
        self.failureResultOf(h.verify(None, "c"), HashingBusy)
        first.callback(False)
        self.assertNoResult(h.verify(None, "d"))

    def test_poolStartedLazilyAndStoppedAtShutdown(self) -> None:
        """
        The pool is made at the first check, not before, and stopped when
        the reactor shuts down.
        """
        reactor = ThreadedMemoryReactor()
        h = PasswordHashing(reactor, cheapHasher())  # type: ignore[arg-type]
        self.assertEqual(reactor.triggers, {})
        h.verify(None, "a")
        [(stop, _, _)] = reactor.triggers["during"]["shutdown"]
        stop()
        self.assertEqual(repr(h), "<PasswordHashing threads=2>")


class HashingThreadTests(TestCase):
    """
    Tests for L{PasswordHashing} with real threads.
    """

    def test_offTheCallingThread(self) -> None:
        """
        Hashing and checking run in the pool, not on the reactor thread,
        and their results arrive on the reactor thread.
        """
        pool = ThreadPool(1, 1, "test-hashing")
        pool.start()
        self.addCleanup(pool.stop)
        hasher = CountingHasher()
        h = PasswordHashing(globalReactor, hasher, pool)  # type: ignore[arg-type]
        here = threading.get_ident()
        arrived: list[int] = []

        def hashed(passwordHash: str) -> Deferred[bool]:
            arrived.append(threading.get_ident())
            return h.verify(passwordHash, "x")

        def checked(matches: bool) -> None:
            arrived.append(threading.get_ident())
            self.assertTrue(matches)
            self.assertEqual(len(hasher.threads), 2)
            self.assertNotIn(here, hasher.threads)
            self.assertEqual(arrived, [here, here])

        return h.hash("x").addCallback(hashed).addCallback(checked)


class CheckerTests(SynchronousTestCase):
    """
    Tests for L{UsersChecker}.
    """

    def setUp(self) -> None:
        self.hasher = CountingHasher()
        self.db = UsersDatabase(writeFile(self, USERS_TEXT))
        self.checker = UsersChecker(self.db, hashing(self.hasher))
        self.db.users()

    def test_requestAvatarId(self) -> None:
        """
        Right credentials give the user's normalized address as UTF-8
        bytes; every refusal fails with L{UnauthorizedLogin} after one
        password check.
        """
        cases: list[tuple[bytes | str, bytes | str, bytes | None]] = [
            (b"alice@example.com", ALICE_PASSWORD.encode(), b"alice@example.com"),
            (b"ALICE@Example.COM", ALICE_PASSWORD.encode(), b"alice@example.com"),
            ("alice@example.com", ALICE_PASSWORD, b"alice@example.com"),
            (b"bob@example.com", BOB_PASSWORD.encode(), b"bob@example.com"),
            (b"alice@example.com", b"wrong", None),
            (b"bob@example.com", b"wrong", None),
            (b"carol@example.com", b"carol's", None),
            (b"nobody@example.com", ALICE_PASSWORD.encode(), None),
            (b"postmaster@example.com", ALICE_PASSWORD.encode(), None),
            (b"someone@example.org", ALICE_PASSWORD.encode(), None),
            (b"alice", ALICE_PASSWORD.encode(), None),
            (b"\xff@example.com", ALICE_PASSWORD.encode(), None),
        ]
        for login, password, avatarId in cases:
            argon2Checks = self.hasher.verified
            d = self.checker.requestAvatarId(UsernamePassword(login, password))  # type: ignore[arg-type]
            if avatarId is None:
                self.failureResultOf(d, UnauthorizedLogin)
            else:
                self.assertEqual(self.successResultOf(d), avatarId)
            if login != b"bob@example.com":
                self.assertEqual(self.hasher.verified, argon2Checks + 1, login)

    def test_authenticate(self) -> None:
        """
        SASL credentials log in when the authorization identity is empty or
        the user's own address, and are refused otherwise.
        """
        cases = [
            ("", True),
            ("Alice@example.com", True),
            ("bob@example.com", False),
            ("not an address", False),
        ]
        for authzid, allowed in cases:
            d = self.checker.authenticate(
                PasswordCredentials(
                    "PLAIN", "alice@example.com", ALICE_PASSWORD, authzid
                )
            )
            if allowed:
                self.assertEqual(self.successResultOf(d), User("alice@example.com"))
            else:
                self.failureResultOf(d, UnauthorizedLogin)

    def test_noSecretsLogged(self) -> None:
        """
        Refusals are logged with the login and the reason; no password or
        hash is in the log, in the failure, or in a repr.
        """
        with capturedLogs() as events:
            self.failureResultOf(
                self.checker.requestAvatarId(
                    UsernamePassword(b"alice@example.com", b"hunter2")
                ),
                UnauthorizedLogin,
            )
            self.failureResultOf(
                self.checker.requestAvatarId(
                    UsernamePassword(b"carol@example.com", b"carol's")
                ),
                UnauthorizedLogin,
            )
            failure = self.failureResultOf(
                self.checker.authenticate(
                    PasswordCredentials("PLAIN", "nobody@example.com", "hunter3")
                )
            )
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "Login refused for alice@example.com: wrong password",
                "Login refused for carol@example.com: user disabled",
                "Login refused for nobody@example.com: no such user",
            ],
        )
        seen = logText(events) + repr(failure) + failure.getTraceback()
        seen += repr(self.checker) + repr(self.db) + repr(self.db.users())
        for secret in (
            "hunter2",
            "hunter3",
            "carol's",
            ALICE_HASH,
            CAROL_HASH,
            "$argon2",
        ):
            self.assertNotIn(secret, seen)


class IThing(Interface):
    """
    Something a realm does not offer.
    """


@implementer(IAccount)
class FakeAccount:
    def __init__(self, user: str) -> None:
        self.user = user


@implementer(IMailStore)
class FakeStore:
    """
    Opens an account for anyone, noting each call.
    """

    def __init__(self) -> None:
        self.opened: list[tuple[str, bool]] = []

    def openAccount(self, user: str, create: bool = False) -> Deferred[FakeAccount]:
        self.opened.append((user, create))
        return succeed(FakeAccount(user))


class RealmTests(SynchronousTestCase):
    """
    Tests for L{UsersRealm}.
    """

    def test_portalLogin(self) -> None:
        """
        Through a portal, a user's password gives their account in the
        store, made if it is new.
        """
        store = FakeStore()
        db = UsersDatabase(writeFile(self, USERS_TEXT))
        portal = Portal(UsersRealm(store), [UsersChecker(db, hashing())])
        d = portal.login(
            UsernamePassword(b"Alice@Example.com", ALICE_PASSWORD.encode()),
            None,
            IAccount,
        )
        interface, account, logout = self.successResultOf(d)
        self.assertIs(interface, IAccount)
        self.assertEqual(account.user, "alice@example.com")
        self.assertEqual(store.opened, [("alice@example.com", True)])
        self.assertIsNone(logout())
        self.failureResultOf(
            portal.login(UsernamePassword(b"alice@example.com", b"no"), None, IAccount),
            UnauthorizedLogin,
        )
        self.assertEqual(len(store.opened), 1)

    def test_otherInterfaces(self) -> None:
        """
        The realm offers only L{IAccount}, and no anonymous avatar.
        """
        realm = UsersRealm(FakeStore())
        self.failureResultOf(
            realm.requestAvatar(b"alice@example.com", None, IThing), NotImplementedError
        )
        self.failureResultOf(realm.requestAvatar((), None, IAccount), UnauthorizedLogin)
