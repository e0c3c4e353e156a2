"""
Helpers for C{bench/imap_server.py}: the messages and the Maildir the
servers share, the two Twisted IMAP4 servers (each run as its own process by
C{python bench/_imapbench.py serve KIND ROOT}), and the client, run as a
process of its own per session (C{python bench/_imapbench.py rows ...} for
the timed commands, C{... mix ...} for a session of the concurrent mix).

A server process prints C{READY <port> <event loop> <seconds to load>} once
it listens on 127.0.0.1, and stops on SIGTERM or at its own deadline.

The client is a blocking socket client with bytes operations only: one
command at a time (no pipelining), literals read by their length.  It
prints one line of JSON with what it measured, then waits for a line on
its standard input before it logs out, so that the server's memory can be
read while the session is still open.
"""

from __future__ import annotations

import argparse
import contextlib
import email.policy
import email.utils
import io
import json
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _smtpbench as sb

USER = "reader@bench.localhost"
PASSWORD = "bench-secret"
HOSTNAME = "bench.localhost"

#: Server kinds of this module; Dovecot is started by C{imap_server.py}.
SERVERS = ("ours", "twisted.mail")

INBOX = "INBOX"
#: The folder of 10 KiB messages, of 5 MiB ones, of MIME messages, and the
#: one the concurrent sessions work in.
TEN, BIG, MIME, WORK = "Ten", "Big", "Mime", "Work"

#: The searches, and which INBOX message (by its number from 0) each finds.
SEARCHES: dict[str, tuple[str, Callable[[int], bool]]] = {
    "SEARCH FROM": ('SEARCH FROM "zeta.quill"', lambda n: n % 97 == 5),
    "SEARCH HEADER Subject": (
        'SEARCH HEADER Subject "quarterly"',
        lambda n: n % 53 == 7,
    ),
    "SEARCH BODY": ('SEARCH BODY "xylophone"', lambda n: n % 211 == 3),
}

_BASE_TIME = 1_700_000_000
_FLAG_LETTERS = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "T": "\\Deleted",
    "D": "\\Draft",
}


# The messages: LF line ends, as a Maildir holds them.

_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
    " tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam"
    " quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo"
).split()
_FIRST = ["Ada", "Brian", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro"]
_LAST = ["Moss", "Reyes", "Lund", "Okafor", "Novak"]
_SENDERS = [
    f"{first} {last} <{first.lower()}.{last.lower()}@example.org>"
    for first in _FIRST
    for last in _LAST
]
_SUBJECTS = [
    "Meeting notes",
    "Re: build failure on main",
    "Lunch on Friday?",
    "Invoice",
    "Weekly status",
    "Fwd: travel plans",
    "Question about the API",
    "Release checklist",
]


def _linePool(seed: int = 1, count: int = 512) -> list[bytes]:
    rng = random.Random(seed)
    pool = []
    for _ in range(count):
        width = rng.randint(20, 76)
        words: list[str] = []
        length = -1
        while length < width:
            word = rng.choice(_WORDS)
            words.append(word)
            length += len(word) + 1
        pool.append(" ".join(words).encode() + b"\n")
    return pool


_POOL = _linePool()


def _date(n: int) -> str:
    return email.utils.formatdate(_BASE_TIME + 60 * n, usegmt=True)


def inboxMessage(n: int) -> bytes:
    """
    The C{n}th message of the big INBOX: a plain text message of 0.5 to 3
    KiB from one of a few dozen senders; some match L{SEARCHES}.
    """
    rng = random.Random(n)
    sender = "Zeta Quill <zeta.quill@example.org>"
    if not SEARCHES["SEARCH FROM"][1](n):
        sender = rng.choice(_SENDERS)
    subject = f"Quarterly report {n}"
    if not SEARCHES["SEARCH HEADER Subject"][1](n):
        subject = f"{rng.choice(_SUBJECTS)} #{n}"
    head = (
        f"From: {sender}\nTo: Reader <{USER}>\nSubject: {subject}\n"
        f"Date: {_date(n)}\nMessage-ID: <{n}.inbox@{HOSTNAME}>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit\n\n"
    ).encode()
    lines = rng.choices(_POOL, k=rng.randint(6, 50))
    if SEARCHES["SEARCH BODY"][1](n):
        lines.insert(len(lines) // 2, b"the xylophone arrived on time\n")
    return head + b"".join(lines)


def sizedMessage(n: int, size: int, tag: str) -> bytes:
    """
    A text message of exactly C{size} octets (LF line ends).
    """
    rng = random.Random(f"{tag}-{n}")
    head = (
        f"From: {rng.choice(_SENDERS)}\nTo: Reader <{USER}>\n"
        f"Subject: {tag} message {n}\nDate: {_date(n)}\n"
        f"Message-ID: <{n}.{tag.lower()}@{HOSTNAME}>\n\n"
    ).encode()
    need = size - len(head)
    body = b"".join(rng.choices(_POOL, k=need // 40 + 8))[:need]
    message = head + body[:-1] + b"\n"
    assert len(message) == size, (len(message), size)
    return message


def _text(rng: random.Random, lines: int) -> str:
    return b"".join(rng.choices(_POOL, k=lines)).decode()


def _html(text: str) -> str:
    paragraphs = "".join(f"<p>{line}</p>\n" for line in text.splitlines())
    return f"<html><body>\n{paragraphs}</body></html>\n"


def mimeMessage(n: int) -> bytes:
    """
    The C{n}th realistic MIME message, made with the standard library's
    C{email} package: by turns multipart/alternative; mixed with an
    alternative and a PDF; mixed with a quoted-printable UTF-8 text, an
    image and a forwarded message; alternative with a related HTML part and
    an inline image; and a text with a calendar attachment.
    """
    rng = random.Random(f"mime-{n}")
    message = EmailMessage()
    message["From"] = rng.choice(_SENDERS)
    message["To"] = f"Reader <{USER}>"
    message["Subject"] = f"{rng.choice(_SUBJECTS)} (mime {n})"
    message["Date"] = _date(n)
    message["Message-ID"] = f"<{n}.mime@{HOSTNAME}>"
    text = _text(rng, rng.randint(5, 40))
    kind = n % 5
    if kind == 0:
        message.set_content(text)
        message.add_alternative(_html(text), subtype="html")
    elif kind == 1:
        message.set_content(text)
        message.add_alternative(_html(text), subtype="html")
        message.add_attachment(
            rng.randbytes(rng.randint(20_000, 120_000)),
            maintype="application",
            subtype="pdf",
            filename=f"report-{n}.pdf",
        )
    elif kind == 2:
        message.set_content(
            "Grüße aus Köln, à bientôt!\n" + text, cte="quoted-printable"
        )
        message.add_attachment(
            rng.randbytes(rng.randint(5_000, 40_000)),
            maintype="image",
            subtype="png",
            filename=f"photo-{n}.png",
        )
        inner = EmailMessage()
        inner["From"] = rng.choice(_SENDERS)
        inner["To"] = rng.choice(_SENDERS)
        inner["Subject"] = "The original"
        inner["Date"] = _date(n - 1000)
        inner.set_content(_text(rng, 8))
        message.add_attachment(inner)
    elif kind == 3:
        message.set_content(text)
        message.add_alternative(
            _html(text) + f'<img src="cid:logo{n}@{HOSTNAME}">', subtype="html"
        )
        html = message.get_payload()[1]  # type: ignore[index]
        html.add_related(
            rng.randbytes(3_000),
            maintype="image",
            subtype="png",
            cid=f"<logo{n}@{HOSTNAME}>",
        )
    else:
        message.set_content(text)
        calendar = (
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\n"
            f"UID:{n}@{HOSTNAME}\nSUMMARY:Review\nEND:VEVENT\nEND:VCALENDAR\n"
        )
        message.add_attachment(calendar, subtype="calendar", filename=f"invite-{n}.ics")
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_bench_{n}_{number}")
    return message.as_bytes(policy=email.policy.default)


@dataclass(frozen=True)
class Folder:
    """
    What a folder of the shared Maildir holds.

    @ivar octets: the total size of its messages with CRLF line ends, what
        C{FETCH BODY[]} sends.
    """

    name: str
    count: int
    octets: int


def _writeFolder(
    name: str, path: str, messages: Sequence[bytes], flags: Callable[[int], str]
) -> Folder:
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    octets = 0
    for n, data in enumerate(messages):
        full = os.path.join(path, "cur", f"{_BASE_TIME + n}.M{n}P1.bench:2,{flags(n)}")
        with open(full, "wb") as f:
            f.write(data)
        when = _BASE_TIME + 60 * n
        os.utime(full, (when, when))
        octets += len(data) + data.count(b"\n")
    return Folder(name, len(messages), octets)


def writeAccount(
    root: str, inbox: int, ten: int, big: int, mime: int, work: int
) -> dict[str, Folder]:
    """
    Write C{USER}'s account under C{root} (C{ROOT/USER/}, its folders in
    Maildir++ sub-directories), every message in C{cur/} as a client that
    has seen the folder leaves it: most of INBOX and of the concurrent
    sessions' folder seen, the newest messages not.

    @return: each folder's facts, by name.
    """
    account = os.path.join(root, USER)
    folders = {
        INBOX: _writeFolder(
            INBOX,
            account,
            [inboxMessage(n) for n in range(inbox)],
            lambda n: ("FS" if n % 50 == 0 else "S") if n < inbox * 0.9 else "",
        )
    }
    specs: list[tuple[str, list[bytes], Callable[[int], str]]] = [
        (TEN, [sizedMessage(n, 10 * 1024, TEN) for n in range(ten)], lambda n: "S"),
        (
            BIG,
            [sizedMessage(n, 5 * 1024 * 1024, BIG) for n in range(big)],
            lambda n: "",
        ),
        (MIME, [mimeMessage(n) for n in range(mime)], lambda n: "S"),
        (
            WORK,
            [
                sizedMessage(n, random.Random(n).randint(2048, 20480), WORK)
                for n in range(work)
            ],
            lambda n: "S" if n < work * 0.8 else "",
        ),
    ]
    for name, messages, flags in specs:
        path = os.path.join(account, "." + name)
        folders[name] = _writeFolder(name, path, messages, flags)
        with open(os.path.join(path, "maildirfolder"), "wb"):
            pass
    return folders


def searchHits(inbox: int) -> dict[str, int]:
    """
    How many INBOX messages each of L{SEARCHES} finds.
    """
    return {
        name: sum(1 for n in range(inbox) if test(n))
        for name, (_, test) in SEARCHES.items()
    }


def copyRoot(source: str, target: str) -> str:
    """
    A copy of a store's root for one server, which may change its files.
    """
    shutil.copytree(source, target)
    return target


def warmCache(root: str) -> None:
    """
    Read every file under C{root} once, so no server pays for the disk.
    """
    for directory, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                while f.read(1 << 20):
                    pass


# The servers.


def _oursFactory(root: str, users: str, reactor: Any) -> Any:
    import argon2

    from gomail_twisted.imap4 import IMAP4ServerFactory, StoreBackend
    from gomail_twisted.maildir import MaildirStore
    from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase

    # Cheap argon2 parameters: the logins of the concurrent mix should cost
    # what twisted.mail's in-memory check and Dovecot's PLAIN one cost.
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    hashing = PasswordHashing(reactor, hasher=hasher)
    with open(users, "w") as f:
        f.write(f"domain {HOSTNAME}\nuser {USER} {hashing.hashNow(PASSWORD)}\n")
    checker = UsersChecker(UsersDatabase(users), hashing)
    backend = StoreBackend(checker, MaildirStore(root, reactor=reactor))
    return IMAP4ServerFactory(
        backend,
        hostname=HOSTNAME,
        allowPlaintextAuth=True,
        reactor=reactor,
        maxConnectionsPerPeer=64,
    )


def _twistedMailFactory(root: str) -> Any:
    """
    twisted.mail's C{IMAP4Server} over an in-memory account holding the
    Maildir's messages: twisted.mail has no Maildir IMAP mailbox.  Parsing
    a message's headers and MIME parts is done at its first use and kept.
    Search is twisted.mail's own (C{IMAP4Server} reads every message
    through L{IMessage} when the mailbox has no C{search}).
    """
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from twisted.cred.portal import IRealm, Portal
    from twisted.internet.protocol import ServerFactory
    from twisted.mail import imap4
    from zope.interface import implementer

    boundaryParameter = re.compile(rb'(?i);\s*boundary="?([^";\r\n]+)"?')

    class HeaderText(str):
        """
        A header's value, which twisted.mail's own SEARCH compares with the
        search key as bytes (C{value.lower().find(key.lower())}, which
        fails on Python 3 with text): here it may.
        """

        def lower(self) -> HeaderText:
            return HeaderText(str.lower(self))

        def find(self, sub: Any, *args: Any) -> int:
            if isinstance(sub, bytes):
                sub = sub.decode("latin-1")
            return str.find(self, sub, *args)

    @implementer(imap4.IMessagePart)
    class Part:
        def __init__(self, raw: bytes) -> None:
            self.raw = raw
            self._headers: list[tuple[str, str]] | None = None
            self._body = b""
            self._parts: list[Part] | None = None

        def _parse(self) -> list[tuple[str, str]]:
            if self._headers is None:
                raw = self.raw
                if raw.startswith(b"\r\n"):
                    head, self._body = b"", raw[2:]
                else:
                    head, _, self._body = raw.partition(b"\r\n\r\n")
                headers = []
                for field in re.split(rb"\r\n(?![ \t])", head):
                    name, colon, value = field.partition(b":")
                    if colon:
                        headers.append(
                            (
                                name.strip().lower().decode("latin-1"),
                                value.replace(b"\r\n", b"").strip().decode("latin-1"),
                            )
                        )
                self._headers = headers
            return self._headers

        def _type(self) -> str:
            for name, value in self._parse():
                if name == "content-type":
                    return value.lower()
            return "text/plain"

        def getHeaders(self, negate: bool, *names: Any) -> dict[Any, str]:
            # Keyed by the names as asked for: twisted.mail's SEARCH HEADER
            # asks with bytes, the rest of it with text.
            wanted = {
                (n.decode() if isinstance(n, bytes) else n).lower(): n for n in names
            }
            result: dict[Any, str] = {}
            for name, value in self._parse():
                if (name in wanted) != negate:
                    result.setdefault(wanted.get(name, name), HeaderText(value))
            return result

        def getBodyFile(self) -> io.BytesIO:
            self._parse()
            return io.BytesIO(self._body)

        def getSize(self) -> int:
            self._parse()
            return len(self._body)

        def isMultipart(self) -> bool:
            return self._type().startswith("multipart/")

        def getSubPart(self, part: int) -> Part:
            kind = self._type()
            if kind.startswith("message/rfc822") and part == 0:
                return Part(self._body)
            if not kind.startswith("multipart/"):
                raise TypeError("not a multipart part")
            if self._parts is None:
                self._parts = []
                found = boundaryParameter.search(kind.encode("latin-1"))
                if found:
                    text = b"\r\n" + self._body
                    chunks = text.split(b"\r\n--" + found.group(1))
                    for chunk in chunks[1:]:
                        if chunk.startswith(b"--"):
                            break
                        end = chunk.find(b"\r\n")
                        self._parts.append(Part(chunk[end + 2 :] if end >= 0 else b""))
            return self._parts[part]

    @implementer(imap4.IMessage, imap4.IMessageFile)
    class Message(Part):
        def __init__(self, uid: int, raw: bytes, flags: set[str], date: str) -> None:
            super().__init__(raw)
            self.uid = uid
            self.flags = flags
            self.date = date

        def getUID(self) -> int:
            return self.uid

        def getFlags(self) -> list[str]:
            return sorted(self.flags)

        def getInternalDate(self) -> str:
            return self.date

        def getSize(self) -> int:
            return len(self.raw)

        def open(self) -> io.BytesIO:
            return io.BytesIO(self.raw)

    @implementer(imap4.IMailbox)
    class Mailbox:
        def __init__(self, messages: list[Message]) -> None:
            self.messages = messages
            self.listeners: list[Any] = []
            self.uidNext = (messages[-1].uid if messages else 0) + 1
            self.byUID = {m.uid: n for n, m in enumerate(messages, 1)}

        def getFlags(self) -> list[str]:
            return sorted(_FLAG_LETTERS.values())

        def getHierarchicalDelimiter(self) -> str:
            return "/"

        def getUIDValidity(self) -> int:
            return _BASE_TIME

        def getUIDNext(self) -> int:
            return self.uidNext

        def getUID(self, message: int) -> int:
            return self.messages[message - 1].uid

        def getMessageCount(self) -> int:
            return len(self.messages)

        def getRecentCount(self) -> int:
            return 0

        def getUnseenCount(self) -> int:
            return sum(1 for m in self.messages if "\\Seen" not in m.flags)

        def isWriteable(self) -> bool:
            return True

        def destroy(self) -> None:
            pass

        def requestStatus(self, names: Any) -> Any:
            return imap4.statusRequestHelper(self, names)

        def addListener(self, listener: Any) -> None:
            self.listeners.append(listener)

        def removeListener(self, listener: Any) -> None:
            self.listeners.remove(listener)

        def addMessage(self, message: Any, flags: Any, date: Any = None) -> Any:
            raise imap4.MailboxException("APPEND is not part of this benchmark")

        def expunge(self) -> list[int]:
            gone = [n for n, m in enumerate(self.messages, 1) if "\\Deleted" in m.flags]
            self.messages = [m for m in self.messages if "\\Deleted" not in m.flags]
            self.byUID = {m.uid: n for n, m in enumerate(self.messages, 1)}
            return gone

        def _chosen(self, messages: Any, uid: bool) -> list[tuple[int, Message]]:
            top = self.uidNext - 1 if uid else len(self.messages)
            # Give "*" its value, unless the server already did.
            with contextlib.suppress(ValueError):
                messages.last = top
            chosen = []
            for number in messages:
                n = self.byUID.get(number) if uid else number
                if n is not None and 1 <= n <= len(self.messages):
                    chosen.append((n, self.messages[n - 1]))
            return chosen

        def fetch(self, messages: Any, uid: bool) -> list[tuple[int, Message]]:
            return self._chosen(messages, uid)

        def store(
            self, messages: Any, flags: Sequence[str], mode: int, uid: bool
        ) -> dict[int, list[str]]:
            result = {}
            for n, message in self._chosen(messages, uid):
                if mode == 1:
                    message.flags.update(flags)
                elif mode == -1:
                    message.flags.difference_update(flags)
                else:
                    message.flags = set(flags)
                result[n] = message.getFlags()
            return result

    def load(path: str) -> Mailbox:
        messages = []
        cur = os.path.join(path, "cur")
        for uid, name in enumerate(sorted(os.listdir(cur)), 1):
            full = os.path.join(cur, name)
            with open(full, "rb") as f:
                raw = f.read().replace(b"\n", b"\r\n")
            letters = name.rpartition(":2,")[2]
            flags = {_FLAG_LETTERS[c] for c in letters if c in _FLAG_LETTERS}
            date = email.utils.formatdate(os.stat(full).st_mtime, usegmt=True)
            messages.append(Message(uid, raw, flags, date))
        return Mailbox(messages)

    account = imap4.MemoryAccount(USER)
    home = os.path.join(root, USER)
    account.addMailbox(INBOX, load(home))
    for name in (TEN, BIG, MIME, WORK):
        account.addMailbox(name, load(os.path.join(home, "." + name)))

    @implementer(IRealm)
    class Realm:
        def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
            return imap4.IAccount, account, lambda: None

    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(USER.encode(), PASSWORD.encode())
    portal = Portal(Realm(), [checker])

    class Factory(ServerFactory):
        def buildProtocol(self, addr: Any) -> Any:
            protocol = imap4.IMAP4Server()
            protocol.portal = portal
            protocol.factory = self
            return protocol

    return Factory()


def serveMain(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="_imapbench.py serve")
    parser.add_argument("kind", choices=SERVERS)
    parser.add_argument("root")
    parser.add_argument("--users", help="where ours writes its users file")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--nodelay", action="store_true", help="TCP_NODELAY")
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    started = time.monotonic()
    if args.kind == "ours":
        factory = _oursFactory(args.root, args.users, reactor)
    else:
        factory = _twistedMailFactory(args.root)
    loaded = time.monotonic() - started
    port = reactor.listenTCP(0, factory, backlog=64, interface="127.0.0.1")  # type: ignore[attr-defined]
    if args.nodelay:
        # Linux gives accepted sockets the listening socket's TCP_NODELAY.
        port.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reactor.callLater(args.max_seconds, reactor.stop)  # type: ignore[attr-defined]
    print(
        f"READY {port.getHost().port} {type(reactor).__name__} {loaded:.3f}",
        flush=True,
    )
    reactor.run()  # type: ignore[attr-defined]


class IMAPServer(sb.ServerProcess):
    """
    An IMAP4 server of L{SERVERS} in its own process.

    @ivar loadSeconds: how long it took to make the server before it
        listened (twisted.mail's reads every message into memory).
    """

    loadSeconds: float = 0.0

    @classmethod
    def launch(
        cls,
        kind: str,
        root: str,
        users: str,
        log: str,
        maxSeconds: float,
        timeout: float,
        nodelay: bool = False,
    ) -> IMAPServer:
        """
        Start a server on C{root} and wait for it to listen.

        @param users: where ours writes its users file.
        @param log: where the server's standard error goes.
        @param nodelay: turn Nagle's algorithm off on its connections.
        """
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "serve",
            kind,
            root,
            "--users",
            users,
            "--max-seconds",
            str(maxSeconds),
        ]
        if nodelay:
            command.append("--nodelay")
        with open(log, "ab") as errors:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                preexec_fn=sb._dieWithParent,
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            )
        server = cls(kind, process)
        try:
            words = server._readLine(timeout).split()
            if len(words) != 4 or words[0] != "READY":
                raise RuntimeError(f"{kind} server did not start: {words!r}")
            server.port = int(words[1])
            server.loop = words[2]
            server.loadSeconds = float(words[3])
        except BaseException as e:
            server.stop()
            with open(log, "rb") as f:
                tail = f.read()[-1500:].decode(errors="replace")
            raise RuntimeError(f"{kind} server did not start: {e}\n{tail}") from None
        return server


def treeMemory(root: int) -> tuple[int, int]:
    """
    The summed resident set sizes, now and at their peaks (C{VmHWM}), of a
    process and all its descendants (Dovecot's master and its children).
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree = {root}
    for _ in range(16):
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        if not more:
            break
        tree |= more
    rss = hwm = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, hwm


# The client.


class Refused(Exception):
    """
    The server answered a command with NO or BAD (or said BYE).
    """


@dataclass
class Reply:
    """
    A command's response: its tagged status line, the untagged responses
    other than FETCH (and the FETCH ones too when collected), how many FETCH
    responses came, and the octets of all literals.
    """

    status: bytes
    untagged: list[bytes]
    fetches: int
    octets: int

    @property
    def ok(self) -> bool:
        return self.status.split(b" ", 2)[1:2] == [b"OK"]


class Connection:
    """
    A blocking IMAP4 client session on 127.0.0.1, one command at a time.
    """

    def __init__(self, port: int, deadline: float) -> None:
        self.deadline = deadline
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=max(deadline - time.monotonic(), 0.5)
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.position = 0
        self.scratch = bytearray(1 << 20)
        self.tags = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise Refused(f"greeting {greeting[:200]!r}")

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the session's deadline passed")
        self.sock.settimeout(left)
        if self.position:
            del self.buffer[: self.position]
            self.position = 0
        got = self.sock.recv_into(self.scratch)
        if not got:
            raise ConnectionError("the server closed the connection")
        self.buffer += memoryview(self.scratch)[:got]

    def _line(self) -> bytes:
        scanned = 0
        while True:
            end = self.buffer.find(b"\r\n", self.position + scanned)
            if end >= 0:
                line = bytes(self.buffer[self.position : end])
                self.position = end + 2
                return line
            # No line end in what came so far, but for a CR at its end.
            scanned = max(len(self.buffer) - self.position - 1, 0)
            self._fill()

    def _literal(self, length: int, keep: bool) -> bytes:
        have = len(self.buffer) - self.position
        if have >= length:
            data = bytes(self.buffer[self.position : self.position + length])
            self.position += length
            return data if keep else b""
        kept = bytearray(self.buffer[self.position :]) if keep else bytearray()
        del self.buffer[:]
        self.position = 0
        need = length - have
        while need > 0:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the session's deadline passed")
            self.sock.settimeout(left)
            got = self.sock.recv_into(self.scratch)
            if not got:
                raise ConnectionError("the server closed the connection")
            view = memoryview(self.scratch)[:got]
            if got > need:
                self.buffer += view[need:]
                view = view[:need]
            if keep:
                kept += view
            need -= len(view)
        return bytes(kept)

    def command(self, text: str, collect: bool = False) -> Reply:
        """
        Send one command and read its whole response.

        @param collect: keep the FETCH responses (literals included) too.
        """
        self.tags += 1
        tag = b"b%d" % self.tags
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        tagged = tag + b" "
        untagged: list[bytes] = []
        fetches = octets = 0
        while True:
            line = self._line()
            if line.startswith(tagged):
                return Reply(line, untagged, fetches, octets)
            full = [line]
            while line.endswith(b"}"):
                opening = line.rfind(b"{")
                length = int(line[opening + 1 : -1].rstrip(b"+"))
                octets += length
                full.append(self._literal(length, collect))
                line = self._line()
                full.append(line)
            isFetch = b" FETCH " in full[0][:32]
            fetches += isFetch
            if collect or not isFetch:
                untagged.append(b"".join(full))
            if full[0].startswith(b"* BYE") and not text.startswith("LOGOUT"):
                raise Refused(full[0][:200].decode(errors="replace"))

    def check(self, text: str, collect: bool = False) -> Reply:
        """
        L{command}, raising L{Refused} unless the server said OK.
        """
        reply = self.command(text, collect)
        if not reply.ok:
            raise Refused(reply.status[:200].decode(errors="replace"))
        return reply

    def login(self, password: str) -> None:
        self.check(f'LOGIN "{USER}" "{password}"')

    def logout(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, Refused):
            pass
        self.close()


def _exists(reply: Reply) -> int:
    for line in reply.untagged:
        words = line.split()
        if len(words) == 3 and words[2].upper() == b"EXISTS":
            return int(words[1])
    return -1


def _searchHits(reply: Reply) -> list[int]:
    hits = []
    for line in reply.untagged:
        if line.upper().startswith(b"* SEARCH"):
            hits.extend(int(word) for word in line.split()[2:] if word.isdigit())
    return hits


def _structure(line: bytes) -> bytes:
    """
    The parenthesized BODYSTRUCTURE of one FETCH response.
    """
    start = line.upper().find(b"BODYSTRUCTURE (")
    if start < 0:
        return b""
    start += len(b"BODYSTRUCTURE ")
    depth = 0
    quoted = False
    index = start
    while index < len(line):
        char = line[index : index + 1]
        if quoted:
            if char == b"\\":
                index += 1
            elif char == b'"':
                quoted = False
        elif char == b'"':
            quoted = True
        elif char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return line[start : index + 1]
        index += 1
    return line[start:]


def _rowsSession(args: argparse.Namespace) -> dict[str, Any]:
    plan = json.loads(args.plan)
    deadline = time.monotonic() + args.timeout
    rows: dict[str, dict[str, Any]] = {
        row["name"]: {"times": [], "failed": None, "count": -1, "octets": 0}
        for row in plan
    }
    connection = None
    try:
        connection = Connection(args.port, deadline)
        connection.login(args.password)
    except (OSError, Refused) as e:
        for row in rows.values():
            row["failed"] = f"login: {e}"
        return {"rows": rows, "connection": connection}
    selected = None
    for row in plan:
        result = rows[row["name"]]
        try:
            if row["folder"] is not None and row["folder"] != selected:
                connection.check(f'SELECT "{row["folder"]}"')
                selected = row["folder"]
            for _ in range(args.reps):
                started = time.perf_counter()
                reply = connection.command(row["command"], row["kind"] == "structure")
                seconds = time.perf_counter() - started
                if not reply.ok:
                    result["failed"] = reply.status[:160].decode(errors="replace")
                    break
                result["times"].append(seconds)
                result["octets"] = reply.octets
                if row["kind"] == "exists":
                    result["count"] = _exists(reply)
                    selected = row["folder"]
                elif row["kind"] == "search":
                    result["count"] = len(_searchHits(reply))
                else:
                    result["count"] = reply.fetches
                if row["kind"] == "structure":
                    result["answers"] = sorted(
                        _structure(line).decode("latin-1").upper()
                        for line in reply.untagged
                        if b" FETCH " in line[:32]
                    )
        except (OSError, Refused, ValueError) as e:
            result["failed"] = f"{type(e).__name__}: {e}"[:160]
            # The session's state is unknown: the rest cannot run on it.
            for other in plan[plan.index(row) + 1 :]:
                rows[other["name"]]["failed"] = "not run: the session broke"
            break
    return {"rows": rows, "connection": connection}


#: The commands of one cycle of the concurrent mix, in order.
MIX_OPS = (
    "LOGIN",
    "SELECT",
    "UID FETCH FLAGS",
    "FETCH BODY",
    "STORE",
    "NOOP",
    "SEARCH UNSEEN",
    "LOGOUT",
)


class _MixTally:
    """
    What one client of the concurrent mix did: commands done and refused,
    by kind, and its completed cycles.
    """

    def __init__(self, started: float) -> None:
        self.done = dict.fromkeys(MIX_OPS, 0)
        self.failed = dict.fromkeys(MIX_OPS, 0)
        self.reasons: dict[str, str] = {}
        self.cycles = 0
        self.cycleTimes: list[float] = []
        self.started = self.finished = started

    def refused(self, op: str, reason: str) -> None:
        self.failed[op] += 1
        self.reasons.setdefault(op, reason[:160])

    def run(self, connection: Connection, op: str, text: str) -> Reply:
        reply = connection.command(text)
        if reply.ok:
            self.done[op] += 1
        else:
            self.refused(op, reply.status.decode(errors="replace"))
        self.finished = time.monotonic()
        return reply

    def report(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "failed": self.failed,
            "reasons": self.reasons,
            "cycles": self.cycles,
            "cycleTimes": self.cycleTimes,
            "seconds": max(self.finished - self.started, 1e-9),
        }


def _mixCycle(
    connection: Connection,
    tally: _MixTally,
    args: argparse.Namespace,
    rng: random.Random,
) -> bool:
    """
    One visit of a mail client; see L{_mixSession}.

    @return: whether it got to the end.
    """
    if not tally.run(connection, "LOGIN", f'LOGIN "{USER}" "{args.password}"').ok:
        return False
    reply = tally.run(connection, "SELECT", f'SELECT "{args.folder}"')
    exists = _exists(reply) if reply.ok else -1
    if exists < 1:
        return False
    tally.run(connection, "UID FETCH FLAGS", "UID FETCH 1:* (FLAGS)")
    recent = [rng.randint(max(1, exists - 49), exists) for _ in range(3)]
    for number in recent:
        tally.run(connection, "FETCH BODY", f"FETCH {number} BODY.PEEK[]")
    for number in recent:
        tally.run(connection, "STORE", f"STORE {number} +FLAGS (\\Seen)")
    tally.run(connection, "NOOP", "NOOP")
    tally.run(connection, "SEARCH UNSEEN", "SEARCH UNSEEN")
    tally.run(connection, "LOGOUT", "LOGOUT")
    return True


def _mixSession(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """
    Cycles of a mail client's visit until C{args.duration} has passed:
    connect and LOGIN, SELECT the folder, C{UID FETCH 1:* (FLAGS)}, C{FETCH
    BODY.PEEK[]} of three recent messages one by one, C{STORE +FLAGS
    (\\Seen)} on each, NOOP, C{SEARCH UNSEEN}, LOGOUT.  A command the server
    refuses counts as failed, and the cycle goes on.
    """
    rng = random.Random(args.seed)
    end = started + args.duration
    deadline = end + args.grace
    tally = _MixTally(started)
    for _ in range(args.max_cycles):
        if time.monotonic() >= end:
            break
        begun = time.monotonic()
        try:
            connection = Connection(args.port, deadline)
        except (OSError, Refused) as e:
            tally.refused("LOGIN", f"connect: {e}")
            time.sleep(0.05)
            continue
        try:
            if _mixCycle(connection, tally, args, rng):
                tally.cycles += 1
                tally.cycleTimes.append(time.monotonic() - begun)
        except (OSError, Refused, ValueError) as e:
            tally.reasons.setdefault("session", f"{type(e).__name__}: {e}"[:160])
            if isinstance(e, TimeoutError):
                break
        finally:
            connection.close()
    return tally.report()


def _waitForLine(timeout: float) -> str:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return sys.stdin.readline() if ready else ""


def clientMain(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="_imapbench.py rows|mix")
    parser.add_argument("mode", choices=("rows", "mix"))
    parser.add_argument("port", type=int)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--plan", help="rows: the commands, as JSON")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--folder", default=WORK)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--max-cycles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cpu = time.process_time()
    if args.mode == "rows":
        report = _rowsSession(args)
        connection = report.pop("connection")
    else:
        print("READY", flush=True)
        if not _waitForLine(args.timeout).startswith("GO"):
            sys.exit("no GO")
        report = _mixSession(args, time.monotonic())
        connection = None
    report["clientCPU"] = time.process_time() - cpu
    print(json.dumps(report), flush=True)
    # Hold the session open while the server's memory is read.
    _waitForLine(30.0)
    if connection is not None:
        connection.logout()


def clientCommand(mode: str, port: int, password: str, **options: Any) -> list[str]:
    """
    The command line of one client process.
    """
    command = [sys.executable, os.path.abspath(__file__), mode, str(port)]
    command += ["--password", password]
    for name, value in options.items():
        command += ["--" + name.replace("_", "-"), str(value)]
    return command


def runClients(
    commands: Sequence[list[str]],
    timeout: float,
    sample: Callable[[], None],
    go: bool = False,
    every: float = 0.25,
) -> list[dict[str, Any]]:
    """
    Run client processes side by side until each has reported, calling
    C{sample} every C{every} seconds and once more when all have reported,
    while their sessions are still open.

    @param go: wait until every client is ready, then start them together.
    @return: each client's report, or C{{"error": ...}} for one that ended
        without one.
    """
    deadline = time.monotonic() + timeout
    processes = []
    errors = []
    try:
        for command in commands:
            error = tempfile.TemporaryFile()
            errors.append(error)
            processes.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=error,
                    preexec_fn=sb._dieWithParent,
                )
            )
        buffers = [b""] * len(processes)

        def lines(wanted: int) -> list[bytes]:
            got: list[bytes | None] = [None] * len(processes)
            while any(g is None for g in got):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                waiting = {
                    p.stdout.fileno(): i  # type: ignore[union-attr]
                    for i, p in enumerate(processes)
                    if got[i] is None
                }
                ready, _, _ = select.select(list(waiting), [], [], min(every, left))
                for fd in ready:
                    i = waiting[fd]
                    chunk = os.read(fd, 1 << 20)
                    buffers[i] += chunk
                    if b"\n" in buffers[i]:
                        got[i], _, buffers[i] = buffers[i].partition(b"\n")
                    elif not chunk:
                        got[i] = b""
                if wanted:
                    sample()
            return [g or b"" for g in got]

        if go:
            lines(0)
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(b"GO\n")
                process.stdin.flush()
        reports = lines(1)
        sample()
        results = []
        for process, line, error in zip(processes, reports, errors, strict=True):
            try:
                assert process.stdin is not None
                process.stdin.write(b"\n")
                process.stdin.close()
            except OSError:
                pass
            try:
                results.append(json.loads(line))
            except ValueError:
                error.seek(0)
                tail = error.read().decode(errors="replace").strip()[-400:]
                results.append({"error": tail or "no report (timed out?)"})
        return results
    finally:
        for process in processes:
            try:
                process.wait(max(min(deadline - time.monotonic(), 15.0), 1.0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        for error in errors:
            error.close()


if __name__ == "__main__":
    # Our server from this working tree, not an installed copy.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[1:2] == ["serve"]:
        serveMain(sys.argv[2:])
    elif sys.argv[1:2] in (["rows"], ["mix"]):
        clientMain(sys.argv[1:])
    else:
        sys.exit("usage: _imapbench.py serve KIND ROOT | rows PORT ... | mix PORT ...")
