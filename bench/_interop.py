# -*- test-case-name: tests.test_maildir_store -*-
"""
The pieces of C{interop_store.py}: the expected and seen messages and their
comparison, a private Dovecot, IMAP and mutt helpers, and readers of our
store and of C{mailbox.Maildir}.
"""

from __future__ import annotations

import base64
import imaplib
import mailbox
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zope.interface import implementer

from gomail_twisted.maildir.interfaces import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    SYSTEM_FLAGS,
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
