"""
The Postfix peer of C{bench/end_to_end.py}: a private Postfix instance
(its own configuration, queue and data directories, smtpd on a free port of
127.0.0.1) delivering with C{virtual(8)} to C{BASE/<address>/Maildir/}.  It
answers 250 once the message is in its queue (fsynced) and delivers
afterwards.

Run as a script it is the instance's guard::

    python bench/_e2epostfix.py postfix-guard CONFIG_DIRECTORY

which stops that Postfix instance once its standard input ends, so that a
benchmark killed outright leaves no Postfix behind.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from _e2ebench import (
    DOMAIN,
    Server,
    addCPU,
    cpuOf,
    descendants,
    freePort,
    waitForBanner,
)

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
                total = addCPU(total, cpuOf(pid))
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


if __name__ == "__main__":
    if sys.argv[1:2] != ["postfix-guard"] or len(sys.argv) != 3:
        sys.exit("usage: _e2epostfix.py postfix-guard CONFIG_DIRECTORY")
    guardPostfix(sys.argv[2])
