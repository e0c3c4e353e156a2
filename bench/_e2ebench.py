"""
Helpers for C{bench/end_to_end.py}: the servers under test, each in its own
process (or, for Postfix, its own private instance), a sequential asyncio
SMTP load generator, and readers of CPU time and peak RSS from C{/proc}.

The servers, all storing every message as one file in a Maildir C{new/}
on the disk of C{--dir}:

  - C{ours}: C{twistd -n gomail-smtp --users FILE --maildir DIR --listen
    tcp:PORT:interface=127.0.0.1}, logging to a file; a users file made
    with C{python -m gomail_twisted users} holds the recipients;
  - C{gomail}: C{twistd -n gomail --data DIR}, the whole server (its
    other services on OS-chosen loopback ports), on its inbound SMTP port;
  - C{aiosmtpd}: aiosmtpd's C{SMTP} with a handler that, in a pool of as
    many threads as our store uses, calls C{mailbox.Maildir(ROOT/rcpt).add(
    data)} (which writes the file under C{tmp/}, fsyncs it, links it into
    C{new/} and unlinks the C{tmp/} name) and then fsyncs C{new/}: the
    same durability as ours before the 250;
  - C{aiosmtpd-stock}: aiosmtpd's own Maildir handler,
    C{aiosmtpd.handlers.Mailbox(ROOT)}: one Maildir for every recipient,
    the message parsed into an C{email.message.Message} with C{X-Peer},
    C{X-MailFrom} and C{X-RcptTo} headers added, C{add()} run in the event
    loop (file fsynced, C{new/} not);
  - C{postfix}: a private Postfix instance (own configuration, queue and
    data directories) delivering with C{virtual(8)} to
    C{BASE/<address>/Maildir/}; it answers 250 once the message is in its
    queue (fsynced) and delivers afterwards.

For the outbound queue: a L{LoopbackDNS} server (a thread of the
benchmark) gives C{remote.example} an MX at 127.0.0.1, where
C{bench/_smtpbench.py}'s discarding server of ours listens in its own
process; the queue runs in a third.

Run as a script it is one of the benchmark's processes:

  - C{serve-aiosmtpd --handler maildir|stock --root DIR --port P}: the
    aiosmtpd server;
  - C{queue-bench ...}: the queue process (see L{queueBenchMain});
  - C{postfix-guard CONFIG_DIRECTORY}: stops that Postfix instance once its
    standard input ends, so that a benchmark killed outright leaves no
    Postfix behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(BENCH)
DOMAIN = "bench.localhost"
SENDER = "sender@example.net"
#: Our store's default number of disk threads; the aiosmtpd handler gets as
#: many.
DISK_THREADS = 4
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def recipients(count: int) -> list[str]:
    """
    The addresses the messages go to, one per connection in turn.
    """
    return [f"user{i}@{DOMAIN}" for i in range(count)]


# Reading /proc.


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name; fields[0] is field 3 (state).
        return f.read().rpartition(")")[2].split()


def cpuOf(pid: int, children: bool = False) -> tuple[float, float]:
    """
    User and system CPU seconds (all threads) of a process, and with
    C{children} those of the children it has waited for.
    """
    fields = _stat(pid)
    user, system = int(fields[11]), int(fields[12])
    if children:
        user += int(fields[13])
        system += int(fields[14])
    return user / _CLOCK_TICKS, system / _CLOCK_TICKS


def _add(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], a[1] + b[1]


def peakRSSOf(pid: int) -> int:
    """
    The peak resident set size (C{VmHWM}) of a process, in bytes.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def resetPeakOf(pid: int) -> None:
    """
    Reset a process's peak RSS to its current RSS (Linux C{clear_refs} 5).
    """
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def descendants(root: int) -> list[int]:
    """
    The live processes below C{root}, found by scanning C{/proc}.
    """
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            parent = int(_stat(int(name))[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 10000:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def countMessages(root: str) -> int:
    """
    The files in every C{new/} and C{cur/} directory under C{root}.
    """
    total = 0
    for directory, subdirectories, files in os.walk(root):
        name = os.path.basename(directory)
        if name in ("new", "cur"):
            total += len(files)
            subdirectories[:] = []
    return total


def filesystemOf(path: str) -> str:
    """
    The type and device of the filesystem C{path} is on, from
    C{/proc/mounts}, such as C{"ext4 on /dev/vda"}.
    """
    path = os.path.realpath(path)
    best = ("", "unknown", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3:
                continue
            device, mountPoint, kind = fields[:3]
            inside = path == mountPoint or path.startswith(mountPoint.rstrip("/") + "/")
            if inside and len(mountPoint) >= len(best[0]):
                best = (mountPoint, kind, device)
    return f"{best[1]} on {best[2]}"


def freePort() -> int:
    """
    A TCP port of 127.0.0.1 that nothing listened on a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def waitForBanner(port: int, timeout: float, alive: Callable[[], bool]) -> None:
    """
    Wait until an SMTP server greets on C{port}.

    @param alive: says whether the server is still running.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing greeted on port {port} in {timeout:.0f} s")


def _dieWithParent() -> None:
    # PR_SET_PDEATHSIG: a server never outlives the benchmark.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def twistd() -> list[str]:
    """
    The command that runs this interpreter's C{twistd}.
    """
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPOSITORY
    return env


# The servers.


class Server:
    """
    A server under test.

    @ivar name: its name in the report.
    @ivar port: where it takes SMTP on 127.0.0.1.
    @ivar root: the directory its Maildirs are under.
    @ivar queued: whether it answers 250 before delivery (so delivered
        messages must be waited for).
    """

    name = ""
    queued = False

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.root = os.path.join(workdir, "mail")
        self.port = 0

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        raise NotImplementedError()

    def pids(self) -> list[int]:
        raise NotImplementedError()

    def loopSeconds(self) -> float | None:
        """
        CPU seconds of the thread that runs the event loop, or L{None} when
        the server has no single one.
        """
        return None

    def cpuSeconds(self) -> tuple[float, float]:
        """
        User and system CPU seconds used so far.
        """
        total = (0.0, 0.0)
        for pid in self.pids():
            total = _add(total, cpuOf(pid))
        return total

    def resetPeak(self) -> None:
        for pid in self.pids():
            resetPeakOf(pid)

    def peakRSS(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += peakRSSOf(pid)
        return total

    def delivered(self) -> int:
        return countMessages(self.root)

    def stop(self) -> None:
        raise NotImplementedError()

    def describe(self) -> str:
        return ""


class _ChildServer(Server):
    """
    A server that is one child process.
    """

    process: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]

    def loopSeconds(self) -> float | None:
        # The main thread, whose thread id is the process id.
        assert self.process is not None
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            values = f.read().rpartition(")")[2].split()
        return (int(values[11]) + int(values[12])) / _CLOCK_TICKS

    def spawn(self, command: list[str], cwd: str, timeout: float = 60.0) -> None:
        log = open(os.path.join(self.workdir, "output.log"), "wb")
        with log:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_dieWithParent,
            )
        try:
            waitForBanner(self.port, timeout, lambda: self.process.poll() is None)  # type: ignore[union-attr]
        except BaseException:
            self.stop()
            raise

    def output(self, lines: int = 20) -> str:
        path = os.path.join(self.workdir, "output.log")
        with contextlib.suppress(OSError), open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        return ""

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


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
            env=_environment(),
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
            timeout=120,
        )

    run(["domain", "add", DOMAIN])
    for address in addresses:
        run(["add", "--password-stdin", address], b"bench\n")


class OursSMTP(_ChildServer):
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


class OursGomail(_ChildServer):
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


class AiosmtpdServer(_ChildServer):
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

    parser = argparse.ArgumentParser(prog="_e2ebench.py serve-aiosmtpd")
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


# Postfix.

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"

#: A master.cf with only what delivery to virtual Maildirs needs, nothing
#: chrooted; the smtpd line is added with the port.
_MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfixMissing() -> str | None:
    """
    Why Postfix cannot be run here, or L{None} when it can be tried.
    """
    if not (os.access(POSTFIX, os.X_OK) and os.access(POSTCONF, os.X_OK)):
        return f"{POSTFIX} is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no postfix user"
    return None


class PostfixServer(Server):
    """
    A private Postfix instance under C{workdir}: its own C{main.cf} and
    C{master.cf}, queue and data directories, smtpd on 127.0.0.1:PORT,
    and C{virtual(8)} delivering to C{ROOT/<address>/Maildir/} as
    C{nobody}.
    """

    name = "postfix"
    queued = True

    def __init__(self, workdir: str) -> None:
        super().__init__(workdir)
        self.config = os.path.join(workdir, "etc")
        self.queue = os.path.join(workdir, "spool")
        self.data = os.path.join(workdir, "data")
        self.log = os.path.join(workdir, "maillog")
        self.started = False
        self.version = ""
        self.guard: subprocess.Popen[bytes] | None = None

    def _run(self, argv: list[str], timeout: float = 60.0) -> str:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({done.returncode}):"
                f" {(done.stderr or done.stdout).strip()[-800:]}"
                f" {self.logTail(5)}"
            )
        return done.stdout + done.stderr

    def start(self, recipients: Sequence[str], maxSeconds: float) -> None:
        nobody = pwd.getpwnam("nobody")
        self.port = freePort()
        # The postfix user must reach every directory of the instance.
        os.chmod(os.path.dirname(self.workdir), 0o755)
        os.chmod(self.workdir, 0o755)
        for path in (self.config, self.queue, self.data):
            os.makedirs(path, mode=0o755, exist_ok=True)
        postfix = pwd.getpwnam("postfix")
        os.chown(self.data, postfix.pw_uid, postfix.pw_gid)
        os.makedirs(self.root, mode=0o755, exist_ok=True)
        os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(self.config, "vmailbox"), "w") as f:
            for address in recipients:
                f.write(f"{address} {address}/Maildir/\n")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "maillog_file": self.log,
            "maillog_file_prefixes": self.workdir,
            "myhostname": "postfix." + DOMAIN,
            "mydomain": DOMAIN,
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.root,
            "virtual_mailbox_maps": f"texthash:{self.config}/vmailbox",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "virtual_transport": "virtual",
            "local_transport": "error:no local delivery",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "master_service_disable": "",
        }
        with open(os.path.join(self.config, "main.cf"), "w") as f:
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")
        with open(os.path.join(self.config, "master.cf"), "w") as f:
            f.write(f"127.0.0.1:{self.port} inet n - n - - smtpd\n" + _MASTER_CF)
        self.version = self._run([POSTCONF, "-c", self.config, "-h", "mail_version"])
        self.version = self.version.strip()
        self._run([POSTFIX, "-c", self.config, "check"])
        # Should this process die without stopping Postfix, the guard (in
        # its own session, so a Ctrl-C does not reach it) sees its input
        # end and stops the instance.
        self.guard = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "postfix-guard", self.config],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Stopped by stop() even when starting fails half-way.
        self.started = True
        try:
            self._run([POSTFIX, "-c", self.config, "start"])
            waitForBanner(self.port, 60.0, lambda: self.masterPid() is not None)
        except BaseException:
            self.stop()
            raise

    def masterPid(self) -> int | None:
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.exists(f"/proc/{pid}") else None

    def pids(self) -> list[int]:
        master = self.masterPid()
        if master is None:
            return []
        return [master, *descendants(master)]

    def cpuSeconds(self) -> tuple[float, float]:
        """
        The master's CPU, its reaped children's, and its live descendants'.
        """
        master = self.masterPid()
        if master is None:
            return 0.0, 0.0
        total = cpuOf(master, children=True)
        for pid in descendants(master):
            with contextlib.suppress(OSError):
                total = _add(total, cpuOf(pid))
        return total

    def queueFiles(self) -> int:
        """
        Messages still in the queue.
        """
        total = 0
        for name in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _, _, files in os.walk(os.path.join(self.queue, name)):
                total += len(files)
        return total

    def logTail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError), open(self.log, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        return ""

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        master = self.masterPid()
        try:
            self._run([POSTFIX, "-c", self.config, "stop"])
        except (RuntimeError, subprocess.TimeoutExpired):
            if master is not None:
                with contextlib.suppress(OSError):
                    os.kill(master, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while master is not None and os.path.exists(f"/proc/{master}"):
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(master, signal.SIGKILL)
                break
            time.sleep(0.1)
        guard, self.guard = self.guard, None
        if guard is not None:
            assert guard.stdin is not None
            guard.stdin.close()
            try:
                guard.wait(30)
            except subprocess.TimeoutExpired:
                guard.kill()
                guard.wait(30)

    def describe(self) -> str:
        return (
            f"Postfix {self.version}, private instance, virtual(8) to"
            " BASE/<address>/Maildir/"
        )


# The load generator.


class SMTPError(Exception):
    """
    An unexpected reply, a timeout or a lost connection.
    """


@dataclass
class Load:
    """
    What one run sends: C{count} messages over C{connections} connections
    (connection I sends to C{recipients[I % len(recipients)]}).
    """

    messages: list[bytes]
    count: int
    connections: int
    recipients: list[str]
    opTimeout: float = 60.0
    sent: int = 0
    accepted: int = 0


async def _reply(
    reader: asyncio.StreamReader, expected: int, what: str, timeout: float
) -> None:
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line.endswith(b"\r\n"):
            raise SMTPError(f"{what}: connection closed")
        if line[3:4] != b"-":
            break
    if not line.startswith(b"%d" % expected):
        raise SMTPError(f"{what}: expected {expected}, got {line!r}")


async def _connection(port: int, load: Load, number: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    timeout = load.opTimeout
    rcpt = load.recipients[number % len(load.recipients)]
    mail = f"MAIL FROM:<{SENDER}>\r\n".encode()
    rcptLine = f"RCPT TO:<{rcpt}>\r\n".encode()
    try:
        await _reply(reader, 220, "greeting", timeout)
        writer.write(b"EHLO client.bench.localhost\r\n")
        await _reply(reader, 250, "EHLO", timeout)
        while load.sent < load.count:
            index = load.sent
            load.sent += 1
            # Plain sequential commands, each waiting for its reply.
            writer.write(mail)
            await _reply(reader, 250, "MAIL", timeout)
            writer.write(rcptLine)
            await _reply(reader, 250, "RCPT", timeout)
            writer.write(b"DATA\r\n")
            await _reply(reader, 354, "DATA", timeout)
            writer.write(load.messages[index % len(load.messages)])
            await _reply(reader, 250, "end of data", timeout)
            load.accepted += 1
        writer.write(b"QUIT\r\n")
        await _reply(reader, 221, "QUIT", timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _drive(port: int, load: Load, timeout: float) -> None:
    tasks = [
        asyncio.ensure_future(_connection(port, load, n))
        for n in range(load.connections)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Result:
    """
    One load against one server.

    @ivar accepted: seconds until the client had its last 250.
    @ivar delivered: seconds until every message was in a Maildir.
    @ivar serverCPU: the server's user and system CPU seconds, from the
        start until every message was delivered.
    @ivar clientCPU: this process's CPU seconds while it sent.
    @ivar loopCPU: the CPU seconds of the server's event-loop thread, or
        L{None} (Postfix).
    """

    messages: int
    accepted: float
    delivered: float
    serverCPU: tuple[float, float]
    clientCPU: float
    peakRSS: int
    stored: int
    loopCPU: float | None = None

    @property
    def acceptedRate(self) -> float:
        return self.messages / self.accepted

    @property
    def deliveredRate(self) -> float:
        return self.messages / self.delivered

    @property
    def cpuPerMessage(self) -> float:
        return sum(self.serverCPU) / self.messages

    @property
    def systemShare(self) -> float:
        return self.serverCPU[1] / max(sum(self.serverCPU), 1e-9)


def _ownCPU() -> float:
    times = os.times()
    return times.user + times.system


def run(
    server: Server,
    load: Load,
    loop: asyncio.AbstractEventLoop,
    timeout: float,
    poll: float = 0.002,
) -> Result:
    """
    Send a load, wait for every message to be delivered, and check that
    exactly C{load.count} new files appeared.

    @param timeout: seconds for sending and delivering.
    @raise SMTPError: when the count of files differs.
    """
    load.sent = load.accepted = 0
    before = server.delivered()
    server.resetPeak()
    cpu0 = server.cpuSeconds()
    loop0 = server.loopSeconds()
    client0 = _ownCPU()
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    loop.run_until_complete(_drive(server.port, load, timeout))
    accepted = time.perf_counter() - start
    client = _ownCPU() - client0
    stored = server.delivered() - before
    while stored < load.count and server.queued:
        if time.monotonic() > deadline:
            raise SMTPError(
                f"{server.name}: {stored} of {load.count} delivered in {timeout:.0f} s"
            )
        time.sleep(poll)
        stored = server.delivered() - before
    delivered = time.perf_counter() - start
    cpu1 = server.cpuSeconds()
    cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
    loop1 = server.loopSeconds()
    loopCPU = None if loop0 is None or loop1 is None else loop1 - loop0
    peak = server.peakRSS()
    if server.queued:
        # Let a late duplicate show.
        time.sleep(0.2)
        stored = server.delivered() - before
    if stored != load.count or load.accepted != load.count:
        raise SMTPError(
            f"{server.name}: {load.accepted} accepted, {stored} stored,"
            f" {load.count} sent"
        )
    return Result(load.count, accepted, delivered, cpu, client, peak, stored, loopCPU)


class _Lines:
    """
    Reads a child's output line by line, with deadlines.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def waitFor(self, prefix: bytes, timeout: float) -> bytes:
        """
        Read until a line starting with C{prefix}; return it.
        """
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, _, self.buffer = self.buffer.partition(b"\n")
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {prefix!r} line in {timeout:.0f} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    raise RuntimeError(f"the process exited before {prefix!r}")
                self.buffer += chunk


def removeTree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def guardPostfix(config: str) -> None:
    """
    Wait for standard input to end, then stop the Postfix instance of
    C{config} (harmless when it is already stopped).
    """
    with contextlib.suppress(OSError, KeyboardInterrupt):
        while sys.stdin.buffer.read(4096):
            pass
    subprocess.run(
        [POSTFIX, "-c", config, "stop"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )


# The outbound queue.

QUEUE_DOMAIN = "remote.example"
QUEUE_MX = "mx." + QUEUE_DOMAIN


def queueMissing() -> str | None:
    """
    Why the outbound queue cannot be measured, or L{None}.
    """
    try:
        from gomail_twisted.queue import OutboundQueue  # noqa: F401
    except ImportError as error:
        return f"gomail_twisted.queue.OutboundQueue has not landed ({error})"
    return None


class LoopbackDNS:
    """
    A DNS server on a UDP port of 127.0.0.1, in a thread of this process:
    C{remote.example} has one MX, C{mx.remote.example}, whose address is
    127.0.0.1; every other name does not exist.
    """

    def __init__(self) -> None:
        import threading

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.queries = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, wire: bytes) -> bytes | None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().rstrip(".").lower()
            kind = question.rdtype
            if name == QUEUE_DOMAIN and kind == dns.rdatatype.MX:
                answer = f"10 {QUEUE_MX}."
            elif name == QUEUE_MX and kind == dns.rdatatype.A:
                answer = "127.0.0.1"
            elif name in (QUEUE_DOMAIN, QUEUE_MX):
                continue
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            response.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", kind, answer)
            )
        return bytes(response.to_wire())

    def _serve(self) -> None:
        while self.running:
            try:
                wire, peer = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            reply = self._answer(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.socket.sendto(reply, peer)

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        self.socket.close()


@dataclass
class QueueResult:
    """
    What one queue run measured (seconds from the first submission).

    @ivar submitted: until every submission fired (message spooled).
    @ivar settled: until the spool was empty: every message delivered
        (the sink counts them afterwards) and its files removed.
    """

    messages: int
    submitted: float
    settled: float
    cpu: float
    sinkCPU: float
    sinkMessages: int
    dnsQueries: int

    def describe(self, target: float) -> str:
        rate = self.messages / self.settled
        met = "met" if rate >= target else "NOT met"
        lines = [
            f"  {self.messages} messages of one recipient each, submitted at once;"
            " maxDeliveries=10, maxPerDomain=10, one domain",
            f"  {'all submissions fired (spooled)':<36}"
            f" {self.submitted:7.2f} s {self.messages / self.submitted:8.0f} msg/s",
            f"  {'all delivered, spool empty':<36}"
            f" {self.settled:7.2f} s {rate:8.0f} msg/s"
            f"  (target >= {target:.0f}: {met})",
            f"  queue process CPU {1000 * self.cpu / self.messages:.3f} ms/msg,"
            f" sink CPU {1000 * self.sinkCPU / self.messages:.3f} ms/msg,"
            f" sink counted {self.sinkMessages} (warm-up included),"
            f" {self.dnsQueries} DNS queries",
        ]
        return "\n".join(lines)


def runQueueBench(
    directory: str,
    count: int,
    size: int,
    timeout: float,
    warm: int = 20,
    profile: str | None = None,
) -> QueueResult:
    """
    Run the queue in its own process (C{queue-bench}) against a discarding
    SMTP server (L{_smtpbench}'s C{ours}) in another, with MX records from
    a L{LoopbackDNS} in this one; check that the sink took every message.
    """
    import json

    import _smtpbench as sb

    dns = LoopbackDNS()
    sink = None
    process = None
    errors = os.path.join(os.path.dirname(directory), "queue-bench.log")
    try:
        # The sink runs as bench/_smtpbench.py: keep bench/ off the front
        # of its path (see _benchLast) with Python 3.11's safe path.
        saved = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            sink = sb.ServerProcess.start("ours", maxSeconds=timeout + 60)
        finally:
            if saved is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = saved
        command = [sys.executable, os.path.abspath(__file__), "queue-bench"]
        command += ["--spool", directory, "--messages", str(count)]
        command += ["--size", str(size), "--warm", str(warm)]
        command += ["--sink-port", str(sink.port), "--dns-port", str(dns.port)]
        command += ["--timeout", str(timeout)]
        if profile is not None:
            command += ["--profile", profile]
        with open(errors, "wb") as log:
            process = subprocess.Popen(
                command,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=_dieWithParent,
            )
        output = _Lines(process)
        output.waitFor(b"WARM", timeout)
        sinkCPU0 = sink.cpuSeconds()
        line = output.waitFor(b"RESULT ", timeout)
        sinkCPU = sink.cpuSeconds() - sinkCPU0
        process.wait(30)
        sink.stop()
        stopped, sink = sink, None
        figures = json.loads(line[len(b"RESULT ") :])
        taken = int(stopped.stats.split()[1]) if stopped.stats else -1
        if taken != count + warm:
            raise RuntimeError(
                f"the sink took {taken} messages, {count + warm} were queued"
            )
        return QueueResult(
            count,
            figures["submitted"],
            figures["settled"],
            figures["cpu"],
            sinkCPU,
            taken,
            dns.queries,
        )
    except BaseException:
        with contextlib.suppress(OSError), open(errors, "rb") as f:
            sys.stderr.write(f.read()[-5000:].decode(errors="replace"))
        raise
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(30)
        if sink is not None:
            sink.stop()
        dns.stop()


def queueBenchMain(argv: Sequence[str]) -> None:
    """
    The queue process: start an L{OutboundQueue} over C{--spool}, submit
    C{--warm} messages and wait for them, print C{WARM}, then submit
    C{--messages} at once and print C{RESULT} and a JSON object of seconds
    (from the first submission) until every submission fired and until
    the spool was empty (every message delivered, its files removed;
    looked at every 10 ms), and of this process's CPU seconds.
    """
    import json

    import _smtpbench as sb
    from twisted.internet import reactor, task
    from twisted.internet.defer import Deferred, gatherResults

    from gomail_twisted.dns import Resolver
    from gomail_twisted.queue import OutboundQueue

    parser = argparse.ArgumentParser(prog="_e2ebench.py queue-bench")
    parser.add_argument("--spool", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--sink-port", type=int, required=True)
    parser.add_argument("--dns-port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    messages = [sb.makeMessage(args.size, seed) for seed in range(16)]
    spoolMessages = os.path.join(args.spool, "messages")

    def spoolIsEmpty() -> bool:
        try:
            with os.scandir(spoolMessages) as entries:
                return next(entries, None) is None
        except FileNotFoundError:
            return True

    async def spoolEmpty() -> None:
        # Every message delivered: the queue removed its files.
        for _ in range(int(args.timeout / 0.01)):
            if spoolIsEmpty():
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        raise TimeoutError("the spool did not empty")

    queue = OutboundQueue(
        args.spool,
        reactor=reactor,
        hostname="queue." + DOMAIN,
        resolver=Resolver(reactor, nameservers=["127.0.0.1"], port=args.dns_port),
        port=args.sink_port,
        maxDeliveries=10,
        maxPerDomain=10,
    )

    def submitAll(first: int, count: int) -> Deferred[list[str]]:
        return gatherResults(
            [
                queue.submit(
                    "sender@" + DOMAIN,
                    [f"user{(first + i) % 10}@{QUEUE_DOMAIN}"],
                    messages[(first + i) % len(messages)],
                )
                for i in range(count)
            ],
            consumeErrors=True,
        )

    async def main() -> None:
        queue.start()
        await queue.whenRunning()
        await submitAll(0, args.warm)
        await spoolEmpty()
        print("WARM", flush=True)
        times = os.times()
        cpu0 = times.user + times.system
        start = time.perf_counter()
        await submitAll(args.warm, args.messages)
        submitted = time.perf_counter() - start
        await spoolEmpty()
        settled = time.perf_counter() - start
        times = os.times()
        cpu = times.user + times.system - cpu0
        figures = {"submitted": submitted, "settled": settled, "cpu": cpu}
        print("RESULT " + json.dumps(figures), flush=True)
        await queue.stop()

    failure: list[Any] = []

    def finished(result: Any) -> None:
        if hasattr(result, "getTraceback"):
            failure.append(result)
            sys.stderr.write(result.getTraceback())
        reactor.stop()

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(main()).addBoth(finished))
    reactor.callLater(args.timeout, reactor.stop)
    if args.profile is None:
        reactor.run()
    else:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(reactor.run)
        profiler.dump_stats(args.profile)
    sys.exit(1 if failure else 0)


def _benchLast() -> None:
    """
    Search this directory after the standard library: run as a script, it
    comes first, where a bench script named like a standard module (such
    as C{bench/queue.py}) would hide that module.
    """
    sys.path[:] = [p for p in sys.path if not p or os.path.abspath(p) != BENCH]
    sys.path.insert(0, REPOSITORY)
    sys.path.append(BENCH)


if __name__ == "__main__":
    _benchLast()
    command = sys.argv[1:2]
    if command == ["serve-aiosmtpd"]:
        serveAiosmtpd(sys.argv[2:])
    elif command == ["postfix-guard"] and len(sys.argv) == 3:
        guardPostfix(sys.argv[2])
    elif command == ["queue-bench"]:
        queueBenchMain(sys.argv[2:])
    else:
        sys.exit(
            "usage: _e2ebench.py serve-aiosmtpd --handler H --root DIR --port P\n"
            "       _e2ebench.py postfix-guard CONFIG_DIRECTORY"
        )
