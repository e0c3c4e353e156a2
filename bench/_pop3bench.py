"""
Helpers for C{bench/pop3_server.py}: the Maildir the servers share (one
copy each), the two Twisted POP3 servers (each run as its own process by
C{python bench/_pop3bench.py serve KIND ROOT}), and the client (its own
process too, C{python bench/_pop3bench.py client ...}) that logs in and
RETRs every message of the maildrop in one session, one command at a time.

A server process prints C{READY <port> <event loop>} once it listens on
127.0.0.1, and stops on SIGTERM or at its own deadline.  The client prints
one line of JSON: the seconds from the first RETR to the end of the last
response, the octets of the responses, the messages whose un-stuffed
length was not the expected one, and its own CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _smtpbench as sb

USER = "reader@bench.localhost"
PASSWORD = "bench-secret"
HOSTNAME = "bench.localhost"

#: Server kinds of this module; Dovecot is started by C{pop3_server.py}.
#: C{twisted.mail-nodelay} is twisted.mail with Nagle's algorithm off on its
#: connections (C{TCP_NODELAY}, inherited from the listening socket): it
#: writes a response's status line and its chunks as separate small
#: sends, which Nagle's algorithm and the client's delayed ACK can hold
#: back for tens of milliseconds each.
SERVERS = ("ours", "twisted.mail", "twisted.mail-nodelay")


# The messages.


def makeMessage(size: int, seed: int) -> bytes:
    """
    A message of exactly C{size} octets with LF line ends, as a Maildir
    holds it: a few headers, then 78-column text lines, one in 40 of them
    starting with a dot, so that RETR has dots to stuff.

    Every message of one size has the same line count, so the length of
    its CRLF form (L{wireSize}) is the same too.
    """
    rng = random.Random(seed)
    head = (
        f"From: sender@bench.localhost\nTo: {USER}\n"
        f"Subject: bench message {seed}\nMessage-ID: <{seed}.{size}@bench>\n\n"
    ).encode()
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"tempor", b"magna"]
    lines = []
    length = len(head)
    number = 0
    while length + 79 <= size:
        line = b" ".join(rng.choice(words) for _ in range(14))[:78].ljust(78, b"x")
        if number % 40 == 7:
            line = b"." + line[1:]
        lines.append(line + b"\n")
        length += 79
        number += 1
    rest = size - length
    if rest:
        lines.append(b"y" * (rest - 1) + b"\n")
    message = head + b"".join(lines)
    assert len(message) == size, (len(message), size)
    return message


def wireSize(size: int) -> int:
    """
    The length of a L{makeMessage} of C{size} octets with CRLF line ends:
    what a RETR response carries, un-stuffed, without its status line.
    """
    return len(makeMessage(size, 0).replace(b"\n", b"\r\n"))


def writeMaildir(root: str, count: int, size: int) -> str:
    """
    Put C{count} messages of C{size} octets in C{USER}'s INBOX under
    C{root} (C{ROOT/USER/new/}), as a delivery agent would.

    @return: the Maildir's path.
    """
    maildir = os.path.join(root, USER)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    base = 1_700_000_000
    for n in range(count):
        name = f"{base + n}.M{n}P1.bench"
        with open(os.path.join(maildir, "new", name), "wb") as f:
            f.write(makeMessage(size, n))
    return maildir


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


def _oursFactory(root: str, reactor: Any) -> Any:
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse

    from gomail_twisted.maildir import MaildirStore
    from gomail_twisted.pop3 import POP3ServerFactory, StoreBackend

    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(USER.encode(), PASSWORD.encode())
    backend = StoreBackend(checker, MaildirStore(root, reactor=reactor))
    return POP3ServerFactory(
        backend, hostname=HOSTNAME, allowPlaintextAuth=True, reactor=reactor
    )


def _twistedMailFactory(root: str) -> Any:
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from twisted.cred.portal import IRealm, Portal
    from twisted.internet.protocol import ServerFactory
    from twisted.mail import pop3
    from twisted.mail.maildir import MaildirMailbox
    from zope.interface import implementer

    class BinaryMaildirMailbox(MaildirMailbox):
        # MaildirMailbox.getMessage opens the file in text mode, which
        # POP3's byte transform cannot take on Python 3; open it in binary.
        def getMessage(self, i: int) -> Any:
            return open(self.list[i], "rb")

    @implementer(IRealm)
    class Realm:
        def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
            path = os.path.join(root, avatarId.decode())
            return pop3.IMailbox, BinaryMaildirMailbox(path.encode()), lambda: None

    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(USER.encode(), PASSWORD.encode())
    portal = Portal(Realm(), [checker])

    class Factory(ServerFactory):
        def buildProtocol(self, addr: Any) -> Any:
            protocol = pop3.POP3()
            protocol.portal = portal
            protocol.factory = self
            return protocol

    return Factory()


def serveMain(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="_pop3bench.py serve")
    parser.add_argument("kind", choices=SERVERS)
    parser.add_argument("root")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    if args.kind == "ours":
        factory = _oursFactory(args.root, reactor)
    else:
        factory = _twistedMailFactory(args.root)
    port = reactor.listenTCP(0, factory, backlog=16, interface="127.0.0.1")  # type: ignore[attr-defined]
    if args.kind.endswith("-nodelay"):
        # Linux gives accepted sockets the listening socket's TCP_NODELAY.
        port.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reactor.callLater(args.max_seconds, reactor.stop)  # type: ignore[attr-defined]
    print(f"READY {port.getHost().port} {type(reactor).__name__}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


class POP3Server(sb.ServerProcess):
    """
    A POP3 server of L{SERVERS} in its own process.
    """

    @classmethod
    def launch(
        cls, kind: str, root: str, maxSeconds: float, timeout: float = 30.0
    ) -> POP3Server:
        """
        Start a server on C{root} and wait for it to listen.
        """
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "serve",
            kind,
            root,
            "--max-seconds",
            str(maxSeconds),
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            preexec_fn=sb._dieWithParent,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        server = cls(kind, process)
        try:
            words = server._readLine(timeout).split()
            if len(words) != 3 or words[0] != "READY":
                raise RuntimeError(f"{kind} server did not start: {words!r}")
            server.port = int(words[1])
            server.loop = words[2]
        except BaseException:
            server.stop()
            raise
        return server


# The client.


class _Reader:
    """
    A blocking POP3 client over a raw socket that reads whole responses
    with bytes operations only.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = bytearray()
        self.received = 0

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.received += len(chunk)
        self.buffer += chunk

    def line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end != -1:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            self._fill()

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        reply = self.line()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{line!r} refused: {reply!r}")
        return reply

    def multiline(self) -> bytes:
        """
        The body of a multi-line response, un-stuffed, once its
        C{CRLF.CRLF} has come.
        """
        start = 0
        while True:
            if self.buffer.startswith(b".\r\n"):
                del self.buffer[:3]
                return b""
            end = self.buffer.find(b"\r\n.\r\n", start)
            if end != -1:
                body = bytes(self.buffer[: end + 2])
                del self.buffer[: end + 5]
                return body.replace(b"\r\n..", b"\r\n.")
            start = max(len(self.buffer) - 4, 0)
            self._fill()


def clientMain(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="_pop3bench.py client")
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, required=True, help="wire size")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument(
        "--only", type=int, default=None, help="RETR only this many (a warm-up)"
    )
    args = parser.parse_args(argv)
    reader = _Reader(args.port, args.timeout)
    greeting = reader.line()
    if not greeting.startswith(b"+OK"):
        raise RuntimeError(f"greeting {greeting!r}")
    reader.command(b"USER " + USER.encode())
    reader.command(b"PASS " + args.password.encode())
    stat = reader.command(b"STAT").split()
    if int(stat[1]) != args.count:
        raise RuntimeError(f"STAT says {stat!r}, not {args.count} messages")
    cpu = time.process_time()
    before = reader.received
    started = time.perf_counter()
    bad = 0
    last = args.count if args.only is None else min(args.only, args.count)
    for number in range(1, last + 1):
        reader.command(b"RETR %d" % number)
        if len(reader.multiline()) != args.size:
            bad += 1
    seconds = time.perf_counter() - started
    octets = reader.received - before
    reader.command(b"QUIT")
    reader.sock.close()
    result = {
        "seconds": seconds,
        "octets": octets,
        "bad": bad,
        "clientCPU": time.process_time() - cpu,
    }
    print(json.dumps(result), flush=True)


def runClient(
    port: int,
    count: int,
    size: int,
    timeout: float,
    password: str = PASSWORD,
    only: int | None = None,
) -> dict[str, Any]:
    """
    Run one client session in a process of its own.

    @param port: the server's port on 127.0.0.1.
    @param count: the messages of the maildrop, each RETRieved once.
    @param size: each message's wire size (L{wireSize}).
    @param timeout: seconds for the whole session.
    @param password: the user's password on that server.
    @param only: RETR only the first this many messages.
    @return: the client's report.
    """
    extra = [] if only is None else ["--only", str(only)]
    result = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "client",
            str(port),
            "--count",
            str(count),
            "--size",
            str(size),
            "--timeout",
            str(timeout),
            "--password",
            password,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"client failed: {result.stderr.strip()[-800:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


if __name__ == "__main__":
    # Our server from this working tree, not an installed copy.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[1:2] == ["serve"]:
        serveMain(sys.argv[2:])
    elif sys.argv[1:2] == ["client"]:
        clientMain(sys.argv[2:])
    else:
        sys.exit("usage: _pop3bench.py serve KIND ROOT | client PORT ...")
