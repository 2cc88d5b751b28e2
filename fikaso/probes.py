"""What `fab doctor` looks at: facts read on each server, and what this machine sees of it.

Server facts follow fikaso/facts.py: a reading script (fikaso/commands/doctor.py) and its parser,
all of a host's read in one round trip. The local probes ask what a visitor's machine would:
the system's resolver for each domain (socket.getaddrinfo: /etc/hosts, then DNS, as browsers
do), and the proxy's public ports. Nothing here writes anything anywhere.
"""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from . import facts
from .commands import certbot, cron
from .commands import doctor as commands
from .layout import Layout
from .plan import Fact, Values

PROBE_TIMEOUT = 5.0   # seconds for each connection this machine opens


# ---- read on each server ----------------------------------------------------------------------

@dataclass(frozen=True)
class Disk:
    path: str         # the folder asked about
    size: int         # bytes of its filesystem
    free: int         # bytes an unprivileged user may still write

    @property
    def share_free(self) -> float:
        return self.free / self.size if self.size else 0.0


@dataclass(frozen=True)
class HostFacts:
    docker: str = ""                # the engine's version, "" when the user cannot reach it
    compose: str = ""               # Compose v2's version, "" without it
    disks: tuple[Disk, ...] = ()    # the base folder's filesystem, then Docker's (when it is another)
    memory_total: int = 0           # bytes
    memory_available: int = 0       # bytes
    now: float = 0.0                # the server's clock, seconds since the epoch
    ntp: str = ""                   # "yes" or "no" as systemd says, "" when it does not say


def _host(values: Values) -> HostFacts:
    disks: list[Disk] = []
    for key in ("disk_base", "disk_docker"):
        size, _, rest = values.one(key).partition(" ")
        free, _, path = rest.partition(" ")
        # Docker's folder is often on the base folder's filesystem: the same sizes, shown once.
        if size.isdigit() and free.isdigit() and (int(size), int(free)) not in {(d.size, d.free) for d in disks}:
            disks.append(Disk(path, int(size), int(free)))
    kib = lambda key: int(values.one(key, "0") or 0) * 1024  # noqa: E731
    try:
        now = float(values.one("now", "0") or 0)
    except ValueError:
        now = 0.0
    return HostFacts(docker=values.one("docker"), compose=values.one("compose"), disks=tuple(disks),
                     memory_total=kib("mem_total"), memory_available=kib("mem_available"), now=now,
                     ntp=values.one("ntp"))


def host(layout: Layout) -> Fact[HostFacts]:
    """The server itself: its clock first (so that it is read as early in the round trip as can be),
    then Docker's and Compose's versions, disk and memory."""
    script = "\n".join([*commands.clock_lines(), *facts.DOCKER_VERSION_LINES, *commands.disk_lines(layout),
                        *commands.memory_lines()])
    return Fact("doctor_host", script, _host)


@dataclass(frozen=True)
class Crontab:
    backup: str = ""       # the backup schedule's line, "" when there is none
    renewal: str = ""      # the certificate renewal's line
    daemon: bool = False   # a cron daemon runs


def crontab() -> Fact[Crontab]:
    def parse(values: Values) -> Crontab:
        lines = values.all("line")
        find = lambda marker: next((line for line in lines if line.rstrip().endswith(marker)), "")  # noqa: E731
        return Crontab(find(cron.MARKER), find(certbot.MARKER), values.flag("daemon"))
    return Fact("doctor_crontab", "\n".join(commands.crontab_lines()), parse)


def server_facts(layout: Layout, domains: list[str]) -> tuple[Fact, ...]:
    """Everything doctor reads from one VPS, in one round trip (the host's own facts first)."""
    return (host(layout), facts.stack(layout), crontab(), facts.certificates(layout, domains),
            facts.backups(layout), facts.clock())


# ---- seen from this machine -------------------------------------------------------------------

def resolve(name: str) -> tuple[set[str], str]:
    """The addresses the system's resolver gives for `name`, or an empty set and why."""
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        return set(), error.strerror or str(error)
    return {info[4][0] for info in found}, ""


@dataclass(frozen=True)
class PortAnswer:
    kind: str             # "http" or "https"
    address: str
    port: int
    answer: str = ""      # what answered ("HTTP 308", "TLS 1.3"), "" when nothing did
    error: str = ""       # why nothing did

    @property
    def ok(self) -> bool:
        return bool(self.answer)


def _connect(address: str, port: int) -> socket.socket:
    return socket.create_connection((address, port), timeout=PROBE_TIMEOUT)


def http_answer(address: str, port: int, domain: str) -> PortAnswer:
    """Ask for / of `domain` on `address:port` over plain HTTP: any HTTP status line is an answer."""
    try:
        with _connect(address, port) as sock:
            sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: fikaso-doctor\r\n"
                         "Connection: close\r\n\r\n".encode())
            first = sock.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as error:
        return PortAnswer("http", address, port, error=_why(error))
    parts = first.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return PortAnswer("http", address, port, answer=f"HTTP {parts[1]}")
    return PortAnswer("http", address, port, error=f"no HTTP answer ({first[:40]!r})" if first else "closed without answering")


def tls_answer(address: str, port: int, domain: str | None) -> PortAnswer:
    """A TLS handshake with `domain` as the name asked for (certificates are judged on the server's own
    files, so the chain is not verified here). With no domain (none has a certificate yet) a TCP
    connection is the answer: the proxy refuses TLS for names it has no certificate for."""
    try:
        with _connect(address, port) as sock:
            if domain is None:
                return PortAnswer("https", address, port, answer="open (no certificate to ask for yet)")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname=domain) as tls:
                return PortAnswer("https", address, port, answer=f"{tls.version()} for {domain}")
    except (OSError, ssl.SSLError) as error:
        return PortAnswer("https", address, port, error=_why(error))


def _why(error: BaseException) -> str:
    if isinstance(error, socket.timeout):
        return f"no answer within {PROBE_TIMEOUT:.0f} s"
    return getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error) or type(error).__name__
