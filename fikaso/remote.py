"""The one executor: runs remote scripts over SSH, or prints them.

Command builders elsewhere are pure and return bash script text; only this module touches the
network. Each `run` is one SSH exec channel (one round trip), and `channels` counts them.
"""
from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Protocol

import paramiko
from fabric import Connection

from .errors import ConnectionLost, telling_lines

CHUNK = 256 * 1024


def wrap(script: str) -> str:
    """The argv sent over SSH: a strict bash running the script."""
    return "bash -c " + shlex.quote("set -euo pipefail\n" + script)


@dataclass
class Result:
    stdout: str
    stderr: str
    exit_code: int
    facts: tuple = ()       # the parsed facts an action read at its end (fikaso/plan.py)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class RemoteError(Exception):
    def __init__(self, label: str, result: Result):
        self.label = label
        self.result = result
        tail = telling_lines(result.stderr) or telling_lines(result.stdout)
        super().__init__(f"{label} failed on the server (exit {result.exit_code})" +
                         ("".join("\n    " + line for line in tail) if tail else ""))


class Remote(Protocol):
    """What runs scripts on one server: over SSH, or printing them."""

    channels: int

    def run(self, script: str, *, label: str, stdin: bytes | None = None,
            check: bool = True, echo: Callable[[str], None] | None = None) -> Result: ...

    def download(self, script: str, sink: BinaryIO, *, label: str,
                 progress: Callable[[int], None] | None = None) -> int: ...


@dataclass
class SSHRemote:
    """Runs scripts over one open, host-key-verified Fabric Connection."""

    connection: Connection
    channels: int = 0

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        with self._link(label):
            channel = self.connection.client.get_transport().open_session()
            self.channels += 1
            try:
                channel.exec_command(wrap(script))
                if stdin is not None:
                    view = memoryview(stdin)
                    for start in range(0, len(view), CHUNK):
                        channel.sendall(view[start:start + CHUNK])
                channel.shutdown_write()
                stdout, stderr = _drain(channel, echo)
                result = Result(stdout, stderr, channel.recv_exit_status())
            finally:
                channel.close()
            self._still_up()
        if check and not result.ok:
            raise RemoteError(label, result)
        return result


    def download(self, script, sink: BinaryIO, *, label: str, progress: Callable[[int], None] | None = None) -> int:
        """Run `script` and write its raw stdout into `sink`; returns the bytes received."""
        received, err = 0, bytearray()
        with self._link(label):
            channel = self.connection.client.get_transport().open_session()
            self.channels += 1
            try:
                channel.exec_command(wrap(script))
                channel.shutdown_write()
                while True:
                    data = channel.recv(CHUNK)
                    if not data:
                        break
                    sink.write(data)
                    received += len(data)
                    if progress is not None:
                        progress(received)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(CHUNK)
                code = channel.recv_exit_status()
            finally:
                channel.close()
            self._still_up()
        if code != 0:
            raise RemoteError(label, Result("", err.decode(errors="replace"), code))
        return received


    def _still_up(self) -> None:
        """A channel of a dead transport ends as if its command had (exit -1): say which it was."""
        transport = self.connection.client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("the SSH session ended")

    @contextmanager
    def _link(self, label: str):
        try:
            yield
        except (OSError, EOFError, paramiko.SSHException) as error:
            # The name the user gave (an ssh_config alias), not the address it resolved to.
            name = getattr(self.connection, "original_host", None) or self.connection.host
            raise ConnectionLost(name, label, error) from None


def _drain(channel, echo) -> tuple[str, str]:
    out, err = bytearray(), bytearray()
    pending = b""
    while True:
        got_any = False
        if channel.recv_ready():
            data = channel.recv(CHUNK)
            out += data
            got_any = bool(data)
            if echo is not None:
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    echo(line.decode(errors="replace"))
        if channel.recv_stderr_ready():
            err += channel.recv_stderr(CHUNK)
            got_any = True
        if not got_any:
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            channel.status_event.wait(0.05)
    if echo is not None and pending:
        echo(pending.decode(errors="replace"))
    return out.decode(errors="replace"), err.decode(errors="replace")


@dataclass
class PrintRemote:
    """Prints what would run instead of running it (plans and dry runs)."""

    out: BinaryIO | None = None
    channels: int = 0
    scripts: list[str] = field(default_factory=list)

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        self.channels += 1
        self.scripts.append(script)
        stream = self.out or sys.stdout
        note = f"  ({len(stdin)} bytes on stdin)" if stdin is not None else ""
        print(f"# {label}{note}\n{script}\n", file=stream)
        return Result("", "", 0)

    def download(self, script, sink, *, label, progress=None):
        self.run(script, label=f"{label} (its output saved here)")
        return 0
