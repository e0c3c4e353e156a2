"""
Helpers for tests that run C{twistd} or Python in a child process: the
command, its environment, and reading its output with a deadline.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

import gomail_twisted

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

#: The line the C{gomail-smtp} plugin logs for each bound port.
LISTENING = re.compile(r"listening on (\S+) port (\d+)")


class Output:
    """
    Collects a process's output lines in a thread, to wait for one with a
    deadline.

    @ivar lines: the lines read so far by L{waitFor}.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def waitFor(self, pattern: re.Pattern[str], seconds: float) -> re.Match[str]:
        """
        Read lines until one matches.

        @raise AssertionError: the output ended, or C{seconds} passed, first.
        """
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = None
                if remaining > 0:
                    continue
            if line is None:
                raise AssertionError(
                    f"no line matching {pattern.pattern!r}:\n" + "".join(self.lines)
                )
            self.lines.append(line)
            match = pattern.search(line)
            if match is not None:
                return match


def binary(name: str) -> str:
    """
    A script installed next to this interpreter, such as C{.venv/bin/twistd}
    for C{.venv/bin/python}.
    """
    return os.path.join(os.path.dirname(sys.executable), name)


def twistd() -> list[str]:
    """
    The command that runs this interpreter's C{twistd}.
    """
    script = binary("twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def environment() -> dict[str, str]:
    """
    This environment, with C{PYTHONPATH} only the directory holding the
    gomail_twisted these tests import: site-packages for an installed
    package, the repository for a checkout.  Either way twistd must find
    the plugin next to it.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(gomail_twisted.__file__))
    return env


#: Seconds a child process run to its end may take.
DEADLINE = 60


def run(
    argv: list[str],
    cwd: str | os.PathLike[str],
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """
    Run a child process to its end, within L{DEADLINE}, with no input and
    its output and errors captured as text.

    @param argv: the command.
    @param cwd: the directory to run it in.
    @param env: its environment; L{environment} by default.
    @return: what it did.
    """
    return subprocess.run(
        argv,
        cwd=cwd,
        env=environment() if env is None else env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def assertBusyPortRefused(
    case: SynchronousTestCase,
    plugin: str,
    argv: Callable[[str], list[str]],
    cwd: str | os.PathLike[str],
) -> None:
    """
    Run a twistd command told to listen on a loopback port something else
    listens on, and check that it ends with status 1 and one line naming
    the plugin, the endpoint and the reason, with no traceback.

    @param plugin: the plugin's name, which starts the line.
    @param argv: the command, given the busy port's endpoint.
    @param cwd: the directory to run it in.
    """
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        endpoint = f"tcp:{occupier.getsockname()[1]}:interface=127.0.0.1"
        result = run(argv(endpoint), cwd)
    case.assertEqual(result.returncode, 1)
    output = result.stdout + result.stderr
    case.assertNotIn("Traceback", output)
    [line] = [line for line in output.splitlines() if "cannot listen" in line]
    case.assertTrue(
        line.endswith(f"{plugin}: cannot listen on {endpoint}: Address already in use"),
        output,
    )


def spawn(
    argv: list[str],
    cwd: str | os.PathLike[str],
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    """
    Start a child process in C{cwd} with L{environment}, no input, and its
    output and errors together as text; end it with L{stop}.

    @param argv: the command.
    @param cwd: the directory to run it in.
    @param preexec: called in the child before it runs the command (to
        set a resource limit, say), or L{None}.
    @return: the process.
    """
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """
    End a child process, by force after ten seconds, and close its output.
    """
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


#: The line C{twistd gomail} logs for each bound port: the service's label
#: (C{"IMAPS"}) and the port.
GOMAIL_LISTENING = re.compile(r"gomail: (\S+) listening on 127\.0\.0\.1:(\d+) \(")

#: The seven services of C{twistd gomail}, by their C{--listen} names.
GOMAIL_SERVICES = (
    "smtp",
    "submission",
    "submissions",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
)

#: C{twistd gomail} options putting every service on a port the system
#: chooses, on loopback.
GOMAIL_ANY_PORT = [
    f"--listen={name}=tcp:0:interface=127.0.0.1" for name in GOMAIL_SERVICES
]


def gomailPorts(output: Output) -> dict[str, int]:
    """
    Wait for C{twistd gomail}'s line for each of its services.

    @return: each service's port, by its label (C{"SMTP"}, C{"IMAPS"}).
    """
    ports = {}
    for _ in GOMAIL_SERVICES:
        match = output.waitFor(GOMAIL_LISTENING, DEADLINE)
        ports[match.group(1)] = int(match.group(2))
    return ports
