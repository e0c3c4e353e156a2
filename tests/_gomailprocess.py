# -*- test-case-name: tests.test_gomail_proof -*-
"""
C{twistd -n gomail} and its peers as child processes, for the end-to-end
proofs: a L{Peer} process serves a loopback DNS zone (the recipient
domains' MX, the DKIM key records) and an SMTP sink that records what it
is given on disk and refuses what the test says; a L{Gomail} process is
the real server over a data directory and a TOML configuration.

The server's configuration file gets, before it starts, the peer's zone
as its name server (C{[dns]}) and the peer's port as the port of remote
mail exchangers (C{[queue] port}); everything else is the server as an
operator runs it.

Run as C{python -m tests._gomailprocess DIRECTORY}, this module is
the peer: it reads the zone from C{DIRECTORY/zone.json}, writes each
message the sink takes as C{DIRECTORY/sink/N.eml} with its envelope in
C{N.json} (written last), reads C{DIRECTORY/refuse.json} (address, or
C{"*"}, to reply text) at every RCPT, and says on its output C{peer: dns
PORT smtp PORT}, then one line per refusal and per message taken.
"""

from __future__ import annotations

import email
import json
import os
import re
import signal
import smtplib
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import argon2

from tests._twistd import GOMAIL_LISTENING, Output, spawn, stop, twistd

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

#: The line the peer says once it serves.
PEER_READY = re.compile(r"peer: dns (\d+) smtp (\d+)")
#: A port of 127.0.0.1 where nothing listens (TCP and UDP "discard").
NOWHERE = 9
#: Seconds any one wait of the proofs may take.
WAIT = 15.0
#: Seconds a process may take to start serving (imports are slow on a
#: busy machine).
START = 60.0

#: The password of every user of the proofs.
PASSWORD = "a long passphrase"
#: A cheap argon2 hash of L{PASSWORD}: the users file takes any parameters.
PASSWORD_HASH = argon2.PasswordHasher(
    time_cost=1, memory_cost=1024, parallelism=1
).hash(PASSWORD)
#: The zone of the remote domain.
ZONE = {
    "mx": [["example.net", 10, "mx.example.net"]],
    "a": [["mx.example.net", "127.0.0.1"]],
}
#: The configuration shared by the proofs: our domain, quick retries.
CONFIG = """\
hostname = "mx.example.com"
domains = ["example.com"]

[queue]
retry-delay = 1
max-retry-delay = 1
"""

#: The services the proofs use, each on a port the system chooses; the
#: implicit-TLS ones are proven by the twistd tests and left off here.
SERVED = ("SMTP", "submission", "POP3", "IMAP")
LISTEN_ARGUMENTS = [
    "--listen=smtp=tcp:0:interface=127.0.0.1",
    "--listen=submission=tcp:0:interface=127.0.0.1",
    "--listen=submissions=",
    "--listen=pop3=tcp:0:interface=127.0.0.1",
    "--listen=pop3s=",
    "--listen=imap=tcp:0:interface=127.0.0.1",
    "--listen=imaps=",
]


def _writeAtomically(path: Path, data: bytes) -> None:
    written = path.with_name(path.name + ".part")
    written.write_bytes(data)
    os.replace(written, path)


@dataclass(frozen=True)
class Received:
    """
    One message the sink took.

    @ivar sender: its MAIL FROM.
    @ivar recipients: its RCPT TOs.
    @ivar raw: its bytes as the sink received them (with the sink's own
        C{Received:} field on top).
    """

    sender: str
    recipients: tuple[str, ...]
    raw: bytes


class Peer:
    """
    The other side of the internet, as a child process: the DNS zone and
    the recipient domains' mail server.

    @ivar dnsPort: the zone's UDP and TCP port on 127.0.0.1.
    @ivar smtpPort: the sink's port on 127.0.0.1.
    """

    def __init__(
        self, test: SynchronousTestCase, directory: Path, zone: dict[str, Any]
    ) -> None:
        """
        @param test: ends the process at cleanup.
        @param directory: the peer's files.
        @param zone: C{{"mx": [[domain, preference, host]], "a": [[host,
            address]], "txt": [[name, text]]}}.
        """
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "zone.json").write_text(json.dumps(zone))
        self.refuse({})
        self.process = spawn(
            [sys.executable, "-m", "tests._gomailprocess", str(directory)],
            directory,
        )
        test.addCleanup(stop, self.process)
        assert self.process.stdout is not None
        self.output = Output(self.process.stdout)
        ready = self.output.waitFor(PEER_READY, START)
        self.dnsPort, self.smtpPort = int(ready.group(1)), int(ready.group(2))

    def refuse(self, replies: dict[str, str]) -> None:
        """
        From now on, answer RCPT for these addresses (C{"*"}: any other)
        with these replies, such as C{"451 4.2.0 Later"}.
        """
        _writeAtomically(
            self.directory / "refuse.json", json.dumps(replies).encode("utf-8")
        )

    def received(self) -> list[Received]:
        """
        What the sink has taken so far, in order.
        """
        sink = self.directory / "sink"
        found = []
        for envelope in sorted(sink.glob("*.json")) if sink.exists() else ():
            values = json.loads(envelope.read_text())
            found.append(
                Received(
                    values["sender"],
                    tuple(values["recipients"]),
                    envelope.with_suffix(".eml").read_bytes(),
                )
            )
        return found

    def lookupTXT(self, name: str) -> bytes | None:
        """
        Ask the zone for a TXT record, as a DKIM verifier does.

        @return: its strings joined, or L{None} when there is none.
        """
        import dns.message
        import dns.query
        import dns.rdatatype

        query = dns.message.make_query(name, dns.rdatatype.TXT)
        reply = dns.query.udp(query, "127.0.0.1", timeout=WAIT, port=self.dnsPort)
        for answer in reply.answer:
            for record in answer:
                return b"".join(record.strings)
        return None


class Gomail:
    """
    One C{twistd -n gomail} process over C{cwd}, delivering through a
    L{Peer}.

    @ivar ports: each service's port, by its log label (C{"IMAP"}).
    @ivar data: its data directory.
    """

    def __init__(
        self,
        test: SynchronousTestCase,
        cwd: Path,
        peer: Peer | None,
        *arguments: str,
        fileSizeLimit: int | None = None,
    ) -> None:
        """
        @param test: ends the process at cleanup.
        @param cwd: where it runs; its data directory is C{cwd/gomail-data}.
        @param peer: whose zone it resolves and whose sink it delivers to;
            L{None} for none: its queue then asks a DNS server on a port
            of 127.0.0.1 where none listens, and never leaves loopback.
        @param arguments: more arguments of C{twistd gomail}.
        @param fileSizeLimit: the largest file the process may write
            (C{RLIMIT_FSIZE}); past it a write fails, as on a full disk.
        """
        self.data = cwd / "gomail-data"
        given = [a for a in arguments if a.startswith("--config=")]
        if not given:
            (cwd / "gomail.toml").write_text("")
            arguments = (*arguments, "--config=gomail.toml")
        for argument in given or ["--config=gomail.toml"]:
            _route(cwd / argument.partition("=")[2], peer)
        command = [
            *twistd(),
            "-n",
            "--pidfile=",
            "--logfile=-",
            "gomail",
            *LISTEN_ARGUMENTS,
            *arguments,
        ]
        preexec = None
        if fileSizeLimit is not None:
            preexec = partial(_limitFileSize, fileSizeLimit)
        self.process = spawn(command, cwd, preexec)
        test.addCleanup(stop, self.process)
        assert self.process.stdout is not None
        self.output = Output(self.process.stdout)
        self.ports: dict[str, int] = {}
        for _ in SERVED:
            match = self.output.waitFor(GOMAIL_LISTENING, START)
            self.ports[match.group(1)] = int(match.group(2))
        self.output.waitFor(re.compile("Queue started over "), START)

    def kill(self) -> None:
        """
        End the server with C{SIGKILL}: no shutdown at all.
        """
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT)

    def log(self) -> str:
        """
        What the server has logged so far (read by L{Output.waitFor}).
        """
        return "".join(self.output.lines)


def _route(config: Path, peer: Peer | None) -> None:
    """
    Point a configuration at the peer: its zone as the name server, its
    sink's port as the port of every mail exchanger; without a peer, at a
    port of 127.0.0.1 where nothing listens, so nothing leaves loopback.
    """
    dnsPort = peer.dnsPort if peer else NOWHERE
    mxPort = peer.smtpPort if peer else NOWHERE
    text = config.read_text()
    if "\n[dns]\n" in text:
        return  # a restart over the same file
    if "[queue]\n" in text:
        text = text.replace("[queue]\n", f"[queue]\nport = {mxPort}\n", 1)
    else:
        text += f"\n[queue]\nport = {mxPort}\n"
    text += f'\n[dns]\nnameservers = ["127.0.0.1"]\nport = {dnsPort}\n'
    config.write_text(text)


def _limitFileSize(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def waitUntil(condition: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    """
    Poll C{condition} every 50 ms until it holds, for C{seconds} at most:
    for what the server does on disk or the peer's sink receives, which
    another process does.

    @raise AssertionError: it did not hold in time.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def message(subject: str, size: int = 0) -> bytes:
    """
    A message from alice with C{subject}, whose body is C{size} bytes of
    text or more.
    """
    line = b"x" * 76 + b"\r\n"
    body = b"Hello.\r\n" + line * (size // len(line))
    return (
        b"From: alice@example.com\r\nTo: someone@example.net\r\n"
        b"Subject: " + subject.encode("ascii") + b"\r\n\r\n" + body
    )


def writeUsers(cwd: Path, *lines: str) -> None:
    """
    Write the users file of the data directory C{cwd/gomail-data}: the
    domain C{example.com}, then C{lines}; C{USER address} stands for a
    user line with L{PASSWORD}.
    """
    data = cwd / "gomail-data"
    data.mkdir(parents=True, exist_ok=True)
    text = ["domain example.com"]
    for line in lines:
        if line.startswith("USER "):
            line = f"user {line[5:]} {PASSWORD_HASH}"
        text.append(line)
    (data / "users").write_text("\n".join(text) + "\n")


def unverified() -> ssl.SSLContext:
    """
    A client context for the server's development certificate.
    """
    return ssl._create_unverified_context()


def submission(server: Gomail, user: str = "alice@example.com") -> smtplib.SMTP:
    """
    A client on the submission port, after STARTTLS and AUTH as C{user}.
    """
    client = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=WAIT)
    client.starttls(context=unverified())
    client.login(user, PASSWORD)
    return client


def expect(output: Output, pattern: str) -> re.Match[str]:
    """
    The first line of a process's output, already read or still to come,
    that matches C{pattern}, within L{WAIT}.
    """
    compiled = re.compile(pattern)
    for line in output.lines:
        match = compiled.search(line)
        if match is not None:
            return match
    return output.waitFor(compiled, WAIT)


def mailbox(server: Gomail, user: str) -> list[bytes]:
    """
    The messages delivered to C{user}'s INBOX, oldest first.
    """
    root = server.data / "mail" / user
    files = [p for d in ("new", "cur") for p in (root / d).glob("*")]
    return [p.read_bytes() for p in sorted(files, key=lambda p: p.name)]


def spoolEmpty(server: Gomail) -> bool:
    """
    Whether the queue holds no message.
    """
    return not any((server.data / "queue" / "messages").iterdir())


def subjects(received: list[Received]) -> list[tuple[str, str]]:
    """
    (subject, recipient) for each recipient of each message the sink took.
    """
    pairs: list[tuple[str, str]] = []
    for taken in received:
        subject = email.message_from_bytes(taken.raw)["Subject"]
        pairs.extend((subject, r) for r in taken.recipients)
    return sorted(pairs)


# The child processes.


def _runPeer(directory: Path) -> None:
    """
    Serve the zone and the sink until ended.
    """
    from twisted.internet import reactor as _reactor

    from gomail_twisted.smtp import (
        ConnectionInfo,
        FunctionBackend,
        ReceivedMessage,
        Recipient,
        SMTPReply,
        SMTPServerFactory,
    )
    from tests._dnsserver import LoopbackDNSServer

    reactor: Any = _reactor
    zone = json.loads((directory / "zone.json").read_text())
    server = LoopbackDNSServer()
    for domain, preference, host in zone.get("mx", ()):
        server.addMX(domain, preference, host)
    for host, address in zone.get("a", ()):
        server.addA(host, address)
    for name, text in zone.get("txt", ()):
        encoded = text.encode("ascii")
        server.addTXT(
            name, *[encoded[i : i + 255] for i in range(0, len(encoded), 255)]
        )
    dnsPort = server.start(reactor)
    sink = directory / "sink"
    sink.mkdir(exist_ok=True)
    count = [0]

    def rcptTo(info: ConnectionInfo, recipient: Recipient) -> None:
        rules = json.loads((directory / "refuse.json").read_text())
        reply = rules.get(recipient.address, rules.get("*"))
        if reply is not None:
            print(f"peer: refused {recipient.address} {reply}", flush=True)
            code, enhanced, text = reply.split(" ", 2)
            raise SMTPReply(int(code), enhanced, text)

    def message(info: ConnectionInfo, received: ReceivedMessage) -> None:
        count[0] += 1
        name = sink / f"{count[0]:05d}"
        recipients = [r.address for r in received.envelope.recipients]
        _writeAtomically(name.with_suffix(".eml"), received.raw)
        envelope = {"sender": received.envelope.sender, "recipients": recipients}
        _writeAtomically(name.with_suffix(".json"), json.dumps(envelope).encode())
        print(f"peer: received {name.name} for {','.join(recipients)}", flush=True)

    factory = SMTPServerFactory(
        FunctionBackend(rcptTo=rcptTo, message=message),
        hostname="mx.example.net",
        reactor=reactor,
        logMessages=False,
    )
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"peer: dns {dnsPort} smtp {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    _runPeer(Path(sys.argv[1]))
