"""
The servers of C{bench/end_to_end.py} that each run as one child process,
all storing every message as one file in a Maildir C{new/}:

  - L{OursSMTP}: C{twistd -n gomail-smtp --users FILE --maildir DIR
    --listen tcp:PORT:interface=127.0.0.1}, logging to a file; a users
    file made with C{python -m gomail_twisted users} holds the recipients;
  - L{OursGomail}: C{twistd -n gomail --data DIR}, the whole server (its
    other services on OS-chosen loopback ports), on its inbound SMTP port;
  - L{AiosmtpdServer} with C{maildir}: aiosmtpd's C{SMTP} with a handler
    that, in a pool of as many threads as our store uses, calls
    C{mailbox.Maildir(ROOT/rcpt).add(data)} (which writes the file under
    C{tmp/}, fsyncs it, links it into C{new/} and unlinks the C{tmp/}
    name) and then fsyncs C{new/}: the same durability as ours before the
    250;
  - L{AiosmtpdServer} with C{stock}: aiosmtpd's own Maildir handler,
    C{aiosmtpd.handlers.Mailbox(ROOT)}: one Maildir for every recipient,
    the message parsed into an C{email.message.Message} with C{X-Peer},
    C{X-MailFrom} and C{X-RcptTo} headers added, C{add()} run in the event
    loop (file fsynced, C{new/} not).

Run as a script it is the aiosmtpd server's process::

    python bench/_e2eservers.py serve-aiosmtpd --handler maildir|stock
        --root DIR --port P [--max-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from _e2ebench import (
    DISK_THREADS,
    DOMAIN,
    REPOSITORY,
    ChildServer,
    childEnvironment,
    freePort,
)


def twistd() -> list[str]:
    """
    The command that runs this interpreter's C{twistd}.
    """
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def makeUsersFile(path: str, addresses: Sequence[str]) -> None:
    """
    A users file holding C{addresses} (password C{bench}), made with
    C{python -m gomail_twisted users}.
    """
    base = [sys.executable, "-m", "gomail_twisted", "users", "--file", path]

    def run(argv: list[str], stdin: bytes = b"") -> None:
        subprocess.run(
            base + argv,
            input=stdin,
            env=childEnvironment(),
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
            timeout=120,
        )

    run(["domain", "add", DOMAIN])
    for address in addresses:
        run(["add", "--password-stdin", address], b"bench\n")


class OursSMTP(ChildServer):
    """
    C{twistd -n gomail-smtp} with a users file.
    """

    name = "ours"

    def __init__(
        self, workdir: str, profile: str | None = None, options: Sequence[str] = ()
    ) -> None:
        """
        @param profile: run under twistd's cProfile, dumping the stats to
            this path when stopped.
        @param options: more options for C{gomail-smtp}.
        """
        super().__init__(workdir)
        self.profile = profile
        self.options = list(options)

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        users = os.path.join(self.workdir, "users")
        makeUsersFile(users, recipients)
        self.port = freePort()
        profiling = []
        if self.profile is not None:
            profiling = [f"--profile={self.profile}", "--profiler=cprofile"]
            profiling.append("--savestats")
        self.command = [
            *twistd(),
            "-n",
            f"--logfile={os.path.join(self.workdir, 'twistd.log')}",
            f"--pidfile={os.path.join(self.workdir, 'twistd.pid')}",
            *profiling,
            "gomail-smtp",
            "--users",
            users,
            "--maildir",
            self.root,
            "--listen",
            f"tcp:{self.port}:interface=127.0.0.1",
            *self.options,
        ]
        self.spawn(self.command, self.workdir)

    def describe(self) -> str:
        more = "".join(" " + o for o in self.options)
        return (
            "twistd -n gomail-smtp --users FILE --maildir DIR --listen tcp:PORT" + more
        )


class OursGomail(ChildServer):
    """
    C{twistd -n gomail} (the whole mail server: SMTP, submission, POP3,
    IMAP, the outbound queue, IP access control) over a data directory,
    measured on its inbound SMTP port; its other services listen on
    OS-chosen ports of 127.0.0.1, out of the way of anything else.
    """

    name = "gomail"

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        data = os.path.join(self.workdir, "data")
        os.makedirs(data)
        makeUsersFile(os.path.join(data, "users"), recipients)
        self.root = os.path.join(data, "mail")
        self.port = freePort()
        command = [
            *twistd(),
            "-n",
            f"--logfile={os.path.join(self.workdir, 'twistd.log')}",
            f"--pidfile={os.path.join(self.workdir, 'twistd.pid')}",
            "gomail",
            "--data",
            data,
            "--hostname",
            "gomail." + DOMAIN,
            "--listen",
            f"smtp=tcp:{self.port}:interface=127.0.0.1",
        ]
        for service in ("submission", "submissions", "pop3", "pop3s", "imap", "imaps"):
            command += ["--listen", f"{service}=tcp:0:interface=127.0.0.1"]
        self.spawn(command, self.workdir)

    def describe(self) -> str:
        return "twistd -n gomail --data DIR --listen smtp=tcp:PORT (all services)"


def gomailAvailable() -> bool:
    """
    Whether C{twistd gomail} (the whole mail server) is installed.
    """
    return os.path.exists(
        os.path.join(REPOSITORY, "gomail_twisted", "tap", "gomail.py")
    )


class AiosmtpdServer(ChildServer):
    """
    aiosmtpd in its own process, with one of the handlers of
    L{serveAiosmtpd}.
    """

    def __init__(self, workdir: str, handler: str) -> None:
        super().__init__(workdir)
        self.handler = handler
        self.name = "aiosmtpd" if handler == "maildir" else "aiosmtpd-stock"

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        self.port = freePort()
        command = [sys.executable, os.path.abspath(__file__), "serve-aiosmtpd"]
        command += ["--handler", self.handler, "--root", self.root]
        command += ["--port", str(self.port), "--max-seconds", str(maxSeconds)]
        # mailbox.Maildir makes tmp/, new/ and cur/ only for a new root.
        self.spawn(command, self.workdir)

    def describe(self) -> str:
        if self.handler == "maildir":
            return (
                f"Maildir(ROOT/rcpt).add(data) + fsync(new/) in {DISK_THREADS} threads"
            )
        return "aiosmtpd.handlers.Mailbox(ROOT), in the event loop"


def _fsyncDirectory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _MaildirHandler:
    """
    aiosmtpd handler: each message into the Maildir of each recipient,
    C{ROOT/<address>/}, in a thread pool; C{mailbox.Maildir.add} writes
    and fsyncs the file in C{tmp/} and links it into C{new/}; then C{new/}
    is fsynced.
    """

    def __init__(self, root: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.root = root
        os.makedirs(root, exist_ok=True)
        self.executor = ThreadPoolExecutor(DISK_THREADS)
        self.boxes: dict[str, Any] = {}

    def box(self, address: str) -> Any:
        import mailbox

        key = address.lower()
        found = self.boxes.get(key)
        if found is None:
            found = mailbox.Maildir(os.path.join(self.root, key), create=True)
            self.boxes[key] = found
        return found

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if not address.lower().endswith("@" + DOMAIN):
            return "550 5.7.1 relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        boxes = [
            self.box(a) for a in dict.fromkeys(a.lower() for a in envelope.rcpt_tos)
        ]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, _deliver, boxes, envelope.content)
        except OSError:
            return "451 4.3.0 could not store the message"
        return "250 OK"


def _deliver(boxes: Sequence[Any], data: bytes) -> None:
    for box in boxes:
        box.add(data)
        _fsyncDirectory(os.path.join(box._path, "new"))


def serveAiosmtpd(argv: Sequence[str]) -> None:
    """
    Run aiosmtpd with a Maildir handler until SIGTERM or its deadline.
    """
    from aiosmtpd.handlers import Mailbox
    from aiosmtpd.smtp import SMTP

    parser = argparse.ArgumentParser(prog="_e2eservers.py serve-aiosmtpd")
    parser.add_argument("--handler", choices=("maildir", "stock"), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args(argv)
    handler: Any
    if args.handler == "maildir":
        handler = _MaildirHandler(args.root)
    else:
        handler = Mailbox(args.root)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname="aiosmtpd." + DOMAIN),
            "127.0.0.1",
            args.port,
            backlog=128,
        )
    )
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.call_later(args.max_seconds, loop.stop)
    print(f"READY {args.port}", flush=True)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve-aiosmtpd"]:
        sys.exit("usage: _e2eservers.py serve-aiosmtpd --handler H --root DIR --port P")
    serveAiosmtpd(sys.argv[2:])
