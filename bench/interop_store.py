# -*- test-case-name: tests.test_maildir_store -*-
"""
Check, beyond the test suite, that our Maildir store and Dovecot, mutt and
the standard library's C{mailbox.Maildir} read each other's folders the
same way: messages (bytes, modulo line ends), flags, keywords, sizes,
internal dates, folders and subscriptions.

  1. Ours writes: an account made with our C{MaildirStore} (its special-use
     folders, sub-folders, a non-ASCII name, subscriptions, messages
     delivered and appended with system flags and keywords, a flag set
     afterwards).  Then:

       - Dovecot (IMAP, read-only EXAMINE) lists the same folders and
         subscriptions and fetches the same messages, flags, keywords,
         sizes and internal dates; its POP3 gives the same sizes;
       - C{mailbox.Maildir} sees the same sub-folders, messages and system
         flags;
       - mutt (in batch, under C{script} for a terminal) copies INBOX to
         an MMDF mailbox with the same messages and flags.

  2. Both write: Dovecot selects INBOX read-write, sets flags and a
     keyword, copies a message to another folder (whose keywords file
     differs), expunges and appends; mutt flags one message and deletes
     another.
     An open view of ours with a listener must be told within a couple of
     seconds, unasked; then the view refreshed, and a new instance, see
     the same messages and flags, every other message keeping its UID and
     the new one getting a UID above all given before.

  3. They write: Dovecot creates folders (one without its parent, one
     non-ASCII), subscribes, and appends messages with flags, keywords
     and internal dates; C{mailbox.Maildir} drops one into C{new/} and
     one into C{cur/} with a flag letter no one here knows (C{P}).  Our
     store lists the same folders and subscriptions and reads the same
     messages and flags; ours appends a message with a keyword that
     Dovecot already gave a letter, and Dovecot sees it; ours flags the
     C{P} message and keeps the letter; then each side renames and
     deletes folders and the other lists the same.

UIDs are not compared across servers: ours keeps its own
(C{gomail-uidlist}), Dovecot its own (C{dovecot-uidlist}).

Needs root (Dovecot's mail processes run as C{nobody}, so the mail
directory is handed to it), C{apt-get install dovecot-imapd dovecot-pop3d
mutt}, and nothing listening on the chosen ports.  Dovecot runs in the
foreground (C{dovecot -F}) with its own configuration, state and log in a
temporary directory, listening on 127.0.0.1 only, plaintext login
allowed, and is stopped at the end.

Run from the repository root::

    .venv/bin/python bench/interop_store.py
    .venv/bin/python bench/interop_store.py --keep   # keep the directory

Every check prints PASS or FAIL with what differed; the exit status is 1
when any failed.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import mailbox
import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from twisted.internet import task  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402
from zope.interface import implementer  # noqa: E402

from gomail_twisted.maildir.interfaces import (  # noqa: E402
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    SYSTEM_FLAGS,
    FlagChange,
    IFolderListener,
)

PASSWORD = "interop-secret"
ALICE = "alice@example.com"
BOB = "bob@example.com"
#: The unprivileged user Dovecot's mail processes run as.
MAIL_UID = MAIL_GID = 65534


# Modified UTF-7 (RFC 3501 5.1.3), written here so the check does not
# lean on our own codec.


def mutf7Encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-"
            )
            run.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def mutf7Decode(name: str) -> str:
    def shift(match: re.Match[str]) -> str:
        text = match.group(1)
        if not text:
            return "&"
        text = text.replace(",", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4)).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", shift, name)


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def crlf(data: bytes) -> bytes:
    return lf(data).replace(b"\n", b"\r\n")


def makeMessage(tag: str, extra: bytes = b"", lines: int = 20) -> bytes:
    """
    @return: a message with a unique Message-ID, CRLF line ends.
    """
    body = b"".join(b"Line %d of %s.\r\n" % (n, tag.encode()) for n in range(lines))
    return (
        b"From: Sender <sender@example.net>\r\n"
        b"To: Alice <alice@example.com>\r\n"
        b"Subject: " + tag.encode() + b"\r\n"
        b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        b"Message-ID: <" + tag.encode() + b"@interop.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + extra
    )


def messageID(data: bytes) -> str:
    match = re.search(rb"(?im)^Message-ID:\s*<([^>]*)>", data)
    return match.group(1).decode() if match else "?"


@dataclass
class Expected:
    """
    One message as a writer stored it.
    """

    folder: str
    data: bytes
    flags: frozenset[str]
    internalDate: float | None = None

    @property
    def tag(self) -> str:
        return messageID(self.data)


@dataclass
class Seen:
    """
    One message as a reader saw it.
    """

    data: bytes
    flags: frozenset[str]
    size: int | None = None
    internalDate: float | None = None
    uid: int | None = None


@dataclass
class Checks:
    """
    The results so far.
    """

    failed: list[str] = field(default_factory=list)
    passed: int = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(
            f"  {'PASS' if ok else 'FAIL'}  {name}"
            + (f": {detail}" if detail and not ok else "")
        )
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok

    def same(self, name: str, ours: Any, theirs: Any) -> bool:
        if ours == theirs:
            return self.check(name, True)
        return self.check(name, False, f"expected {_show(ours)}, got {_show(theirs)}")

    def compare(
        self,
        reader: str,
        expected: Sequence[Expected],
        seen: dict[str, dict[str, Seen]],
        sizes: bool = True,
        dates: bool = True,
        keywords: bool = True,
    ) -> None:
        """
        Check that C{seen} (folder to Message-ID to message) holds exactly
        the C{expected} messages, with their bytes and flags.
        """
        folders = sorted(
            {e.folder for e in expected} | {k for k, v in seen.items() if v}
        )
        for folder in folders:
            want = {e.tag: e for e in expected if e.folder == folder}
            got = seen.get(folder, {})
            self.same(f"{reader}: messages in {folder!r}", sorted(want), sorted(got))
            contents, flags, sizeErrors, dateErrors = [], [], [], []
            for tag in sorted(set(want) & set(got)):
                e, s = want[tag], got[tag]
                if lf(e.data) != lf(s.data):
                    contents.append(
                        f"{tag}: {len(lf(e.data))} vs {len(lf(s.data))} bytes"
                    )
                wanted = e.flags if keywords else e.flags & SYSTEM_FLAGS
                if wanted != s.flags:
                    flags.append(f"{tag}: {sorted(wanted)} vs {sorted(s.flags)}")
                if sizes and s.size is not None and s.size != len(crlf(e.data)):
                    sizeErrors.append(f"{tag}: {len(crlf(e.data))} vs {s.size}")
                if (
                    dates
                    and e.internalDate is not None
                    and s.internalDate is not None
                    and abs(e.internalDate - s.internalDate) >= 1
                ):
                    dateErrors.append(
                        f"{tag}: {e.internalDate:.0f} vs {s.internalDate:.0f}"
                    )
            self.check(
                f"{reader}: bytes in {folder!r}", not contents, "; ".join(contents)
            )
            self.check(f"{reader}: flags in {folder!r}", not flags, "; ".join(flags))
            if sizes and any(s.size is not None for s in got.values()):
                self.check(
                    f"{reader}: sizes in {folder!r}",
                    not sizeErrors,
                    "; ".join(sizeErrors),
                )
            if dates and any(s.internalDate is not None for s in got.values()):
                self.check(
                    f"{reader}: internal dates in {folder!r}",
                    not dateErrors,
                    "; ".join(dateErrors),
                )


def _show(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


# Dovecot.


class Dovecot:
    """
    A Dovecot of our own, in the foreground.
    """

    def __init__(
        self, base: str, mailRoot: str, users: Iterable[str], port: int
    ) -> None:
        self.base = base
        self.imapPort = port
        self.popPort = port + 1
        self.log = os.path.join(base, "dovecot.log")
        run = os.path.join(base, "run")
        os.makedirs(run, exist_ok=True)
        os.makedirs(os.path.join(base, "state"), exist_ok=True)
        os.chmod(base, 0o755)
        os.chmod(run, 0o755)
        passwd = os.path.join(base, "passwd")
        with open(passwd, "w") as f:
            for user in users:
                home = os.path.join(mailRoot, user)
                f.write(f"{user}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_GID}::{home}::\n")
        self.conf = os.path.join(base, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"""\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {run}
state_dir = {base}/state
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {MAIL_UID}
mail_location = maildir:{mailRoot}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imapPort}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.popPort}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
            )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", self.conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.imapPort), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen within {timeout} s: {self.tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def tail(self, lines: int = 8) -> str:
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def imap(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.imapPort, timeout=30)
        client.login(user, PASSWORD)
        return client


def imapList(client: imaplib.IMAP4, command: str = "LIST") -> dict[str, list[str]]:
    """
    @return: each folder name (decoded) to its attributes.
    """
    typ, data = client._simple_command(command, '""', '"*"')
    typ, data = client._untagged_response(typ, data, command)
    folders = {}
    for line in data:
        if not isinstance(line, bytes):
            continue
        match = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        if not match:
            continue
        name = match.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        folders[mutf7Decode(name)] = match.group(1).decode().split()
    return folders


def selectable(listing: dict[str, list[str]]) -> set[str]:
    """
    @return: the names in a LIST answer that are folders, not only the
        parents of folders (C{\\NonExistent}, C{\\Noselect}).
    """
    absent = {"\\nonexistent", "\\noselect"}
    return {n for n, a in listing.items() if not absent & {x.lower() for x in a}}


def quoted(name: str) -> str:
    return '"' + mutf7Encode(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def imapFolder(client: imaplib.IMAP4, name: str) -> dict[str, Seen]:
    """
    EXAMINE a folder and fetch every message.
    """
    typ, _ = client.select(quoted(name), readonly=True)
    if typ != "OK":
        raise RuntimeError(f"EXAMINE {name}: {typ}")
    typ, data = client.uid(
        "FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
    )
    seen = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))  # type: ignore[union-attr]
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()  # type: ignore[union-attr]
        size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))  # type: ignore[union-attr]
        date = imaplib.Internaldate2tuple(meta)
        seen[messageID(body)] = Seen(
            body,
            frozenset(f for f in flags if f != "\\Recent"),
            size,
            time.mktime(date) if date else None,
            uid,
        )
    return seen


# mutt, in batch, under script(1) for a terminal.


def mutt(
    folder: str, keys: str, readOnly: bool, timeout: float = 30.0
) -> tuple[bool, str]:
    """
    Run mutt on C{folder} with C{keys} pushed, then quit.

    In C{keys}, C{^x} is a control key (so patterns cannot anchor) and
    C{|} joins patterns; a pattern that tags nothing leaves mutt's
    tag-prefix acting on the current message.

    @return: whether it ended in time with status 0, and its output.
    """
    settings = (
        "set confirmcreate=no confirmappend=no mbox_type=MMDF wait_key=no"
        " auto_tag=yes quit=yes delete=yes move=no sort=mailbox-order"
    )
    command = (
        f"mutt -n -F /dev/null {'-R ' if readOnly else ''}-f {folder}"
        f" -e '{settings}' -e 'push \"{keys}<quit>\"'"
    )
    try:
        done = subprocess.run(
            ["script", "-qec", command, "/dev/null"],
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "TERM": "xterm"},
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return done.returncode == 0, done.stdout.decode(errors="replace")[-500:]


def muttFlags(message: mailbox.MMDFMessage) -> frozenset[str]:
    status = message.get("Status", "")
    xstatus = message.get("X-Status", "")
    flags = set()
    if "R" in status:
        flags.add(SEEN)
    if "A" in xstatus:
        flags.add(ANSWERED)
    if "F" in xstatus:
        flags.add(FLAGGED)
    return frozenset(flags)


def muttBody(data: bytes) -> bytes:
    """
    The message without the headers mutt adds when it copies, and with the
    last line end that Python's MMDF reader takes off (mutt adds none
    before the separator).
    """
    head, _, body = lf(data).partition(b"\n\n")
    if not body.endswith(b"\n"):
        body += b"\n"
    kept = [
        line
        for line in re.split(rb"\n(?![ \t])", head)
        if not re.match(rb"(?i)(Status|X-Status|Content-Length|Lines):", line)
    ]
    return b"\n".join(kept) + b"\n\n" + body


# The store.


@implementer(IFolderListener)
class Recorder:
    """
    What a view's listener was told.
    """

    def __init__(self) -> None:
        self.added: list[int] = []
        self.flags: dict[int, frozenset[str]] = {}
        self.expunged: set[int] = set()
        self.gone = False

    def messagesAdded(self, folder: Any, messages: Sequence[Any]) -> None:
        self.added.extend(m.uid for m in messages)

    def flagsChanged(self, folder: Any, messages: Sequence[Any]) -> None:
        for m in messages:
            self.flags[m.uid] = m.flags

    def messagesExpunged(self, folder: Any, uids: Sequence[int]) -> None:
        self.expunged.update(uids)

    def folderGone(self, folder: Any) -> None:
        self.gone = True


STDLIB_FLAGS = {"S": SEEN, "R": ANSWERED, "F": FLAGGED, "T": DELETED, "D": DRAFT}


async def oursSeen(account: Any, name: str) -> tuple[Any, dict[str, Seen]]:
    folder = await account.openFolder(name)
    seen = {}
    for info in folder.messages():
        data = await folder.read(info.uid)
        seen[messageID(data)] = Seen(
            data, info.flags, info.size, info.internalDate, info.uid
        )
    return folder, seen


def stdlibSeen(root: str, folders: Iterable[str]) -> dict[str, dict[str, Seen]]:
    """
    Read each folder with C{mailbox.Maildir}: bytes and system flags.
    """
    seen: dict[str, dict[str, Seen]] = {}
    for name in folders:
        path = (
            root
            if name == "INBOX"
            else os.path.join(
                root, "." + ".".join(mutf7Encode(p) for p in name.split("/"))
            )
        )
        box = mailbox.Maildir(path, factory=None, create=False)
        messages = {}
        for key in box.keys():
            data = box.get_bytes(key)
            letters = box.get_message(key).get_flags()
            messages[messageID(data)] = Seen(
                data, frozenset(STDLIB_FLAGS[c] for c in letters if c in STDLIB_FLAGS)
            )
        seen[name] = messages
    return seen


def handOver(path: str) -> None:
    """
    Give a mail directory to Dovecot's unprivileged user.
    """
    for directory, _subdirectories, files in os.walk(path):
        os.chown(directory, MAIL_UID, MAIL_GID)
        for name in files:
            os.chown(os.path.join(directory, name), MAIL_UID, MAIL_GID)


def dump(path: str) -> str:
    """
    @return: the files under C{path}, for a report.
    """
    lines = []
    for directory, subdirectories, files in sorted(os.walk(path)):
        subdirectories.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            lines.append(
                f"    {os.path.relpath(full, path)} ({os.path.getsize(full)} B)"
            )
    return "\n".join(lines[:80])


class Interop:
    """
    The three parts, in order.
    """

    def __init__(self, args: argparse.Namespace, reactor: Any, base: str) -> None:
        self.args = args
        self.reactor = reactor
        self.base = base
        self.root = os.path.join(base, "mail")
        os.makedirs(self.root)
        self.checks = Checks()
        self.stores: list[Any] = []
        self.dovecot = Dovecot(base, self.root, [ALICE, BOB], args.port)

    def newStore(self) -> Any:
        from gomail_twisted.maildir import MaildirStore

        store = MaildirStore(self.root, reactor=self.reactor)
        self.stores.append(store)
        return store

    async def run(self) -> None:
        try:
            expected = await self.oursWrite()
            self.dovecot.start()
            await self.theyRead(expected)
            await self.bothWrite(expected)
            await self.theyWrite()
        finally:
            self.dovecot.stop()
            for store in self.stores:
                for name in ("close", "stopService"):
                    stop = getattr(store, name, None)
                    if stop is not None:
                        result = stop()
                        if isinstance(result, Deferred):
                            await result
                        break

    # Part 1.

    async def oursWrite(self) -> list[Expected]:
        print("1. Our store writes; Dovecot, mailbox.Maildir and mutt read")
        store = self.newStore()
        account = await store.openAccount(ALICE, create=True)
        self.aliceFolders = [
            "Archive/2024",
            "Entwürfe",
            "Projects",
            "A&B",
            "INBOX/Sub",
            "Old Mail",
        ]
        for name in self.aliceFolders:
            await account.createFolder(name)
        self.aliceSubscribed = {"INBOX", "Sent", "Archive/2024", "Entwürfe", "Ghost"}
        for name in self.aliceSubscribed:
            await account.subscribe(name)
        expected: list[Expected] = []
        delivered = makeMessage("delivered")
        await store.deliver([ALICE], delivered)
        expected.append(Expected("INBOX", delivered, frozenset()))
        appends: list[tuple[str, bytes, set[str], float]] = [
            ("INBOX", makeMessage("seen"), {SEEN}, 1_700_000_000),
            ("INBOX", makeMessage("label"), {SEEN, FLAGGED, "$Label1"}, 1_700_003_600),
            (
                "INBOX",
                makeMessage("answered", b"From the start of a line\r\n"),
                {ANSWERED, "projectx", "$Forwarded"},
                1_700_007_200,
            ),
            ("INBOX", makeMessage("deleted"), {DELETED, SEEN}, 1_700_010_800),
            (
                "INBOX",
                makeMessage("lf-only").replace(b"\r\n", b"\n"),
                set(),
                1_700_014_400,
            ),
            ("Drafts", makeMessage("draft"), {DRAFT}, 1_700_018_000),
            ("Archive/2024", makeMessage("archived"), {SEEN, "$Label1"}, 1_690_000_000),
            (
                "Archive/2024",
                makeMessage("big", "Grüße, ünïcödé\r\n".encode() * 5000),
                {SEEN},
                1_690_003_600,
            ),
            ("Entwürfe", makeMessage("umlaut"), set(), 1_690_007_200),
        ]
        for folder, data, flags, date in appends:
            await account.append(folder, data, flags, date)
            expected.append(Expected(folder, data, frozenset(flags), date))
        # A keyword added afterwards, through a view.
        inbox = await account.openFolder("INBOX")
        [seen] = [m for m in inbox.messages() if m.flags == frozenset({SEEN})]
        await inbox.setFlags([seen.uid], ["later"], FlagChange.ADD)
        inbox.close()
        for e in expected:
            if e.tag == "seen@interop.example":
                e.flags = frozenset({SEEN, "later"})
        folders = await account.listFolders()
        names = {f.name for f in folders}
        self.checks.same(
            "ours: folders after creating them",
            {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive", *self.aliceFolders},
            names,
        )
        # A new account may subscribe its special-use folders too; what
        # Dovecot lists must be what ours says, and a name that is no
        # folder stays subscribed.
        subscribed = {f.name for f in folders if f.subscribed}
        self.checks.same(
            "ours: subscriptions include those made",
            self.aliceSubscribed - {"Ghost"},
            (self.aliceSubscribed - {"Ghost"}) & subscribed,
        )
        self.aliceSubscribed |= subscribed
        ours = {}
        for name in sorted(names):
            view, ours[name] = await oursSeen(account, name)
            view.close()
        self.checks.compare("ours (own reading)", expected, ours)
        self.aliceUIDs: dict[str, int] = {
            tag: s.uid
            for messages in ours.values()
            for tag, s in messages.items()
            if s.uid is not None
        }
        self.aliceFolderNames = names
        self.aliceTags = {name: set(messages) for name, messages in ours.items()}
        print("   files written:")
        print(dump(os.path.join(self.root, ALICE)))
        handOver(self.root)
        return expected

    async def theyRead(self, expected: list[Expected]) -> None:
        home = os.path.join(self.root, ALICE)
        client = self.dovecot.imap(ALICE)
        try:
            listed = imapList(client)
            self.checks.same("dovecot: LIST", self.aliceFolderNames, selectable(listed))
            subscribed = imapList(client, "LSUB")
            self.checks.same("dovecot: LSUB", self.aliceSubscribed, set(subscribed))
            seen = {
                name: imapFolder(client, name)
                for name in sorted(self.aliceFolderNames)
                if name in listed
            }
            self.checks.compare("dovecot", expected, seen)
        finally:
            client.logout()
        pop = poplib.POP3("127.0.0.1", self.dovecot.popPort, timeout=30)
        try:
            pop.user(ALICE)
            pop.pass_(PASSWORD)
            _, listing, _ = pop.list()
            sizes = sorted(int(line.split()[1]) for line in listing)
            want = sorted(len(crlf(e.data)) for e in expected if e.folder == "INBOX")
            self.checks.same("dovecot: POP3 LIST sizes of INBOX", want, sizes)
        finally:
            pop.quit()

        stdlib = stdlibSeen(home, sorted(self.aliceFolderNames))
        self.checks.compare("mailbox.Maildir", expected, stdlib, keywords=False)
        box = mailbox.Maildir(home, factory=None, create=False)
        self.checks.same(
            "mailbox.Maildir: list_folders",
            {
                mutf7Encode(n).replace("/", ".")
                for n in self.aliceFolderNames - {"INBOX"}
            },
            set(box.list_folders()),
        )
        self.muttRead(home, expected)

    def muttRead(self, home: str, expected: list[Expected]) -> None:
        if shutil.which("mutt") is None or shutil.which("script") is None:
            self.checks.check("mutt: installed", False, "mutt or script(1) missing")
            return
        out = os.path.join(self.base, "mutt-inbox.mmdf")
        ok, output = mutt(
            home, f"<tag-pattern>~A<enter><copy-message>{out}<enter>", readOnly=True
        )
        if not self.checks.check(
            "mutt: copies INBOX in batch", ok and os.path.exists(out), output
        ):
            return
        seen = {}
        copied = mailbox.MMDF(out, create=False)
        for key in copied.keys():
            data = copied.get_bytes(key)
            seen[messageID(data)] = Seen(muttBody(data), muttFlags(copied[key]))
        want = [
            Expected(e.folder, e.data, e.flags & {SEEN, ANSWERED, FLAGGED})
            for e in expected
            if e.folder == "INBOX"
        ]
        self.checks.compare("mutt", want, {"INBOX": seen}, sizes=False, dates=False)

    # Part 2.

    async def bothWrite(self, expected: list[Expected]) -> None:
        print("2. Dovecot and mutt change our INBOX; our store follows")
        home = os.path.join(self.root, ALICE)
        store = self.newStore()
        account = await store.openAccount(ALICE)
        view = await account.openFolder("INBOX")
        recorder = Recorder()
        view.addListener(recorder)
        client = self.dovecot.imap(ALICE)
        try:
            seen = imapFolder(client, "INBOX")
            client.select("INBOX")
            byTag = {tag: s.uid for tag, s in seen.items()}

            def store_(tag: str, how: str, flags: str) -> None:
                uid = str(byTag[f"{tag}@interop.example"])
                typ, data = client.uid("STORE", uid, how, flags)
                self.checks.check(
                    f"dovecot: STORE {how}{flags} on {tag}", typ == "OK", repr(data)
                )

            store_("delivered", "+FLAGS", "(\\Seen)")
            store_("label", "+FLAGS", "(dovecot-set)")
            store_("answered", "-FLAGS", "(projectx)")
            typ, data = client.uid(
                "COPY", str(byTag["answered@interop.example"]), quoted("Archive/2024")
            )
            self.checks.check("dovecot: COPY to Archive/2024", typ == "OK", repr(data))
            typ, data = client.expunge()
            self.checks.check("dovecot: EXPUNGE", typ == "OK", repr(data))
            arrived = makeMessage("dovecot-appended")
            typ, data = client.append("INBOX", "(\\Answered)", None, arrived)
            self.checks.check("dovecot: APPEND to INBOX", typ == "OK", repr(data))
        finally:
            client.logout()
        expected.append(Expected("INBOX", arrived, frozenset({ANSWERED})))
        changes = {
            "delivered@interop.example": ({SEEN}, set()),
            "label@interop.example": ({"dovecot-set"}, set()),
            "answered@interop.example": (set(), {"projectx"}),
        }
        [answered] = [e for e in expected if e.tag == "answered@interop.example"]
        expected.append(
            Expected("Archive/2024", answered.data, answered.flags - {"projectx"})
        )
        ok, output = mutt(
            home,
            "<tag-pattern>~s lf-only|~s answered<enter><tag-prefix><flag-message>"
            "<untag-pattern>~A<enter>"
            "<tag-pattern>~s seen<enter><tag-prefix><delete-message>"
            "<sync-mailbox>",
            readOnly=False,
        )
        self.checks.check("mutt: flags and deletes in batch", ok, output)
        changes["lf-only@interop.example"] = ({FLAGGED}, set())
        changes["answered@interop.example"] = ({FLAGGED}, {"projectx"})
        # Dovecot expunged the one flagged \Deleted; mutt deleted another.
        gone = {"deleted@interop.example", "seen@interop.example"}
        now = [e for e in expected if e.folder == "INBOX" and e.tag not in gone]
        for e in now:
            add, remove = changes.get(e.tag, (set(), set()))
            e.flags = (e.flags | add) - remove

        # The view's listener is told within a couple of seconds, unasked.
        goneUIDs = {self.aliceUIDs[t] for t in gone}
        changedUIDs = {self.aliceUIDs[t]: t for t in changes}
        started = time.monotonic()
        while time.monotonic() - started < 5 and not (
            goneUIDs <= recorder.expunged
            and set(changedUIDs) <= set(recorder.flags)
            and recorder.added
        ):
            await task.deferLater(self.reactor, 0.1, lambda: None)
        waited = time.monotonic() - started
        self.checks.same(
            f"ours (listener, {waited:.1f} s): expunged UIDs told",
            goneUIDs,
            recorder.expunged,
        )
        self.checks.same(
            "ours (listener): the message Dovecot appended told",
            1,
            len(recorder.added),
        )
        wanted = {e.tag: e.flags for e in now if e.tag in changes}
        self.checks.same(
            "ours (listener): changed flags told",
            wanted,
            {changedUIDs[u]: f for u, f in recorder.flags.items() if u in changedUIDs},
        )
        await view.refresh()
        got = {}
        for info in view.messages():
            data = await view.read(info.uid)
            got[messageID(data)] = Seen(data, info.flags, info.size, None, info.uid)
        self.checks.compare("ours (view refreshed)", now, {"INBOX": got}, dates=False)
        self.checks.same(
            "ours (view refreshed): UIDs kept",
            {t: u for t, u in self.aliceUIDs.items() if t in got},
            {t: s.uid for t, s in got.items() if t in self.aliceUIDs},
        )
        newUID = got["dovecot-appended@interop.example"].uid
        before = sorted(
            u for t, u in self.aliceUIDs.items() if t in self.aliceTags["INBOX"]
        )
        self.checks.check(
            "ours: the new message's UID is above every UID INBOX gave before",
            newUID is not None and newUID > before[-1],
            f"{newUID} after {before}",
        )
        view.close()
        fresh = self.newStore()
        account = await fresh.openAccount(ALICE)
        read: dict[str, dict[str, Seen]] = {}
        for name in ("INBOX", "Archive/2024"):
            view, read[name] = await oursSeen(account, name)
            view.close()
        self.checks.compare(
            "ours (new instance)",
            now + [e for e in expected if e.folder == "Archive/2024"],
            read,
        )
        self.checks.same(
            "ours (new instance): UIDs kept",
            {t: u for t, u in self.aliceUIDs.items() if t in read["INBOX"]},
            {t: s.uid for t, s in read["INBOX"].items() if t in self.aliceUIDs},
        )

    # Part 3.

    async def theyWrite(self) -> None:
        print("3. Dovecot and mailbox.Maildir write; our store reads")
        home = os.path.join(self.root, BOB)
        expected: list[Expected] = []
        client = self.dovecot.imap(BOB)
        folders = ["Projects/2025", "Reisen/Übersee", "Sent"]
        subscribed = {"INBOX", "Projects/2025", "Reisen/Übersee"}
        try:
            for name in folders:
                typ, response = client.create(quoted(name))
                self.checks.check(
                    f"dovecot: CREATE {name}", typ == "OK", repr(response)
                )
            for name in subscribed:
                client.subscribe(quoted(name))
            appends: list[tuple[str, bytes, str, float]] = [
                ("INBOX", makeMessage("d-seen"), "\\Seen $Important", 1_700_000_000),
                (
                    "INBOX",
                    makeMessage("d-flagged"),
                    "\\Flagged \\Answered todo",
                    1_700_003_600,
                ),
                ("INBOX", makeMessage("d-deleted"), "\\Deleted", 1_700_007_200),
                ("INBOX", makeMessage("d-plain"), "", 1_700_010_800),
                (
                    "Projects/2025",
                    makeMessage("d-draft"),
                    "\\Draft todo",
                    1_700_014_400,
                ),
                (
                    "Reisen/Übersee",
                    makeMessage("d-utf8", "Straße nach Übersee\r\n".encode() * 50),
                    "\\Seen",
                    1_700_018_000,
                ),
            ]
            for folder, data, flags, date in appends:
                typ, response = client.append(
                    quoted(folder), f"({flags})", imaplib.Time2Internaldate(date), data
                )
                self.checks.check(
                    f"dovecot: APPEND to {folder}", typ == "OK", repr(response)
                )
                expected.append(Expected(folder, data, frozenset(flags.split()), date))
            client.select("INBOX")
            typ, found = client.uid(
                "SEARCH", "HEADER", "Message-ID", "d-plain@interop.example"
            )
            client.uid("STORE", found[0].decode(), "+FLAGS", "(later $Important)")
            for e in expected:
                if e.tag == "d-plain@interop.example":
                    e.flags = frozenset({"later", "$Important"})
        finally:
            client.logout()
        procmail = makeMessage("from-stdlib")
        box = mailbox.Maildir(home, factory=None, create=False)
        box.add(procmail)
        expected.append(Expected("INBOX", procmail, frozenset()))
        # A flag letter no one here knows (P, passed) must survive a change.
        passed = mailbox.MaildirMessage(makeMessage("passed"))
        passed.set_subdir("cur")
        passed.set_flags("PS")
        passedKey = box.add(passed)
        expected.append(Expected("INBOX", passed.as_bytes(), frozenset({SEEN})))
        print("   files written by Dovecot and mailbox.Maildir:")
        print(dump(home))

        store = self.newStore()
        try:
            account = await store.openAccount(BOB)
        except Exception as e:
            self.checks.check("ours: opens an account Dovecot made", False, repr(e))
            account = await store.openAccount(BOB, create=True)
        listed = await account.listFolders()
        names = {f.name for f in listed}
        print(
            "   ours lists: "
            + ", ".join(
                f"{f.name}{' (subscribed)' if f.subscribed else ''}"
                f"{' (children)' if f.hasChildren else ''}"
                for f in listed
            )
        )
        self.checks.same("ours: folders Dovecot made", {"INBOX", *folders}, names)
        self.checks.same(
            "ours: subscriptions Dovecot made",
            subscribed,
            {f.name for f in listed if f.subscribed},
        )
        # Ours changes the subscriptions file Dovecot wrote: Dovecot must
        # still see every subscription.
        await account.subscribe("Sent")
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            self.checks.same(
                "dovecot: LSUB after ours subscribed one more",
                subscribed | {"Sent"},
                set(imapList(client, "LSUB")),
            )
        finally:
            client.logout()
        seen = {}
        for name in ["INBOX", *folders]:
            if name in names:
                view, seen[name] = await oursSeen(account, name)
                view.close()
        self.checks.compare("ours (reading Dovecot's)", expected, seen)

        # Ours appends with a keyword Dovecot gave a letter, and a new one.
        ourMessage = makeMessage("ours-into-dovecot")
        await account.append(
            "Projects/2025", ourMessage, ["todo", "ours-kw", SEEN], 1_700_020_000
        )
        expected.append(
            Expected(
                "Projects/2025",
                ourMessage,
                frozenset({"todo", "ours-kw", SEEN}),
                1_700_020_000,
            )
        )
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            got = imapFolder(client, "Projects/2025")
        finally:
            client.logout()
        self.checks.compare(
            "dovecot (after ours appended)",
            [e for e in expected if e.folder == "Projects/2025"],
            {"Projects/2025": got},
        )
        await self.folderChanges(account, passedKey, home)

    async def folderChanges(self, account: Any, passedKey: str, home: str) -> None:
        """
        Flags on a file with a letter ours does not know; folders renamed
        and deleted on either side.
        """
        inbox = await account.openFolder("INBOX")
        for m in inbox.messages():
            data = await inbox.read(m.uid)
            if messageID(data) == "passed@interop.example":
                await inbox.setFlags([m.uid], [FLAGGED], FlagChange.ADD)
        inbox.close()
        names = [
            name
            for sub in ("cur", "new")
            for name in os.listdir(os.path.join(home, sub))
            if name.startswith(passedKey)
        ]
        self.checks.check(
            "ours: keeps an unknown flag letter (P) when it adds F",
            len(names) == 1 and names[0].endswith(":2,FPS"),
            repr(names),
        )
        await account.renameFolder("Sent", "Gesendet/2025")
        await account.deleteFolder("Reisen/Übersee")
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            listed = selectable(imapList(client))
            mine = {f.name for f in await account.listFolders()}
            self.checks.same(
                "dovecot: LIST after ours renamed and deleted", mine, listed
            )
            typ, data = client.rename(quoted("Projects/2025"), quoted("Projekte/Alt"))
            self.checks.check("dovecot: RENAME", typ == "OK", repr(data))
            typ, data = client.delete(quoted("Gesendet/2025"))
            self.checks.check("dovecot: DELETE", typ == "OK", repr(data))
            listed = selectable(imapList(client))
        finally:
            client.logout()
        mine = {f.name for f in await account.listFolders()}
        self.checks.same("ours: LIST after Dovecot renamed and deleted", listed, mine)
        if "Projekte/Alt" in mine:
            view, got = await oursSeen(account, "Projekte/Alt")
            view.close()
            self.checks.same(
                "ours: messages of the folder Dovecot renamed",
                ["d-draft@interop.example", "ours-into-dovecot@interop.example"],
                sorted(got),
            )


async def main(reactor: Any, args: argparse.Namespace) -> None:
    base = tempfile.mkdtemp(prefix="interop-")
    print(f"Interoperability of our Maildir store; files in {base}")
    interop = Interop(args, reactor, base)
    try:
        await interop.run()
    finally:
        log = interop.dovecot.tail(20)
        errors = [
            line
            for line in log.splitlines()
            if ("Error" in line or "Warning" in line)
            and "Killed with signal 15" not in line
        ]
        if errors:
            print("Dovecot's log reports:")
            for line in errors:
                print(f"    {line}")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    checks = interop.checks
    print()
    print(f"{checks.passed} passed, {len(checks.failed)} failed")
    for name in checks.failed:
        print(f"  FAIL {name}")
    if checks.failed:
        raise SystemExit(1)


def run(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the directory")
    parser.add_argument(
        "--port", type=int, default=14143, help="Dovecot's IMAP port; POP3 on the next"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's mail processes need a user to run as")
    if shutil.which("dovecot") is None:
        parser.error("install Dovecot: apt-get install dovecot-imapd dovecot-pop3d")
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, args)))


if __name__ == "__main__":
    run()
