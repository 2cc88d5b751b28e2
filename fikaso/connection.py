"""Open SSH connections with strict host-key checking.

Fabric's Connection accepts any host key (it hard-codes paramiko's auto-adding policy and never reads
known_hosts). Every connection Fikaso makes goes through `connect`, which loads the known hosts
and rejects unknown or changed keys with an error that shows the fingerprint.

Hosts are found through ssh_config: the user's and the system's files (as Fabric reads them), then
the project's own files (fikaso.ssh_config), which only fill in what the earlier ones leave unset.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterable

import paramiko
from fabric import Config, Connection

from .errors import FikasoError

DEFAULT_CONNECT_TIMEOUT = 15  # seconds, when neither Fabric's config nor ssh_config sets one
# As OpenSSH's ServerAliveInterval and ServerAliveCountMax (ssh_config sets both): a link that has
# answered nothing for interval x count seconds is given up as lost.
KEEPALIVE_SECONDS = 15
KEEPALIVE_COUNT = 3


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:base64, no padding)."""
    return key.fingerprint


class UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey):
        super().__init__(f"unknown host key for {hostname}")
        self.hostname = hostname
        self.key = key


class _RejectShowingFingerprint(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise UnknownHostKey(hostname, key)


def known_hosts_files(connection: Connection) -> list[Path]:
    configured = connection.ssh_config.get("userknownhostsfile")
    names = configured.split() if configured else ["~/.ssh/known_hosts"]
    return [Path(os.path.expanduser(name)) for name in names]


def load_ssh_config_files(config: Config, paths: Iterable[Path]) -> Config:
    """Parse extra ssh_config files into `config`, after the ones Fabric read; each file once per Config.

    Files that do not exist are skipped, as OpenSSH skips an Include that matches nothing (and one
    that appears later is read then). As in OpenSSH, the first value found for an option wins, so
    these files only fill in what the user's and the system's leave unset.
    """
    loaded = getattr(config, "_fikaso_ssh_config_files", None)
    if loaded is None:
        loaded = set()
        object.__setattr__(config, "_fikaso_ssh_config_files", loaded)
    for path in map(Path, paths):
        if str(path) in loaded or not path.is_file():
            continue
        try:
            with path.open() as handle:
                config.base_ssh_config.parse(handle)
        except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as error:
            raise FikasoError(f"Cannot read the ssh_config file {path} ({error})",
                              "Fix or remove it, or take it out of fikaso.ssh_config in fabric.yaml") from None
        loaded.add(str(path))
    return config


def _unopened(host: str, config: Config, user: str | None, port: int | None) -> Connection:
    """A Connection to `host`, not yet open, whose connect_timeout is, first found: `fab -t N` (which
    Fabric stores as connect_kwargs.timeout), config timeouts.connect (fabric.yaml, FABRIC_TIMEOUTS_CONNECT),
    the host's ssh_config ConnectTimeout, else DEFAULT_CONNECT_TIMEOUT.
    """
    try:
        # Fabric resolves ssh_config's ConnectTimeout (or else timeouts.connect) into connect_timeout.
        connection = Connection(host, user=user, port=port, config=config)
    except ValueError as error:
        raise FikasoError(f"The SSH settings for {host} hold a value that is not a whole number ({error})",
                          "Check Port and ConnectTimeout in its ssh_config entry, and timeouts.connect in "
                          "fabric.yaml") from None
    given = (config.connect_kwargs.get("timeout") or config.timeouts.connect or connection.connect_timeout
             or DEFAULT_CONNECT_TIMEOUT)
    try:
        timeout = int(given)  # whole seconds, as Fabric takes them
    except (TypeError, ValueError):
        timeout = 0
    if timeout <= 0:
        raise FikasoError(f"The SSH connect timeout must be a positive number of seconds, not {given!r}",
                          "Fix timeouts.connect (or connect_kwargs.timeout) in fabric.yaml, or pass `fab -t SECONDS`")
    # Fabric refuses a timeout given both ways at open(); keep it in one place, leaving config untouched.
    connection.connect_kwargs = {key: value for key, value in connection.connect_kwargs.items() if key != "timeout"}
    connection.connect_timeout = timeout
    # As OpenSSH's ConnectTimeout, it also bounds the wait for the server's SSH banner.
    connection.connect_kwargs.setdefault("banner_timeout", timeout)
    return connection


def connect(host: str, config: Config | None = None, user: str | None = None, port: int | None = None,
            ssh_config_files: Iterable[Path] = ()) -> Connection:
    """An open Connection to `host` (an ssh_config alias or user@host:port), host key verified.

    `ssh_config_files` are read after the user's and the system's ssh_config (see load_ssh_config_files).
    """
    config = load_ssh_config_files(config if config is not None else Config(), ssh_config_files)
    connection = _unopened(host, config, user, port)
    client = connection.client
    client.set_missing_host_key_policy(_RejectShowingFingerprint())
    for path in known_hosts_files(connection):
        if path.is_file():
            client.get_host_keys().load(str(path))
    where = f"{connection.user}@{connection.host}:{connection.port}"
    try:
        connection.open()
    except UnknownHostKey as error:
        raise FikasoError(
            f"The host key of {where} is not known (it offered {error.key.get_name()} "
            f"{fingerprint(error.key)}), so Fikaso will not talk to it",
            "Check that fingerprint against the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on its "
            f"console), then trust it with `fab host.trust -H {where}`",
        ) from None
    except paramiko.BadHostKeyException as error:
        raise FikasoError(
            f"The host key of {where} has CHANGED: it offered {fingerprint(error.key)} but "
            f"{fingerprint(error.expected_key)} is recorded. Someone may be intercepting the connection, "
            "or the server was reinstalled",
            "If you know it was reinstalled, remove the old key with "
            f"`ssh-keygen -R '[{connection.host}]:{connection.port}'` (or the plain host name for port 22) "
            f"and trust the new one with `fab host.trust -H {where}`; otherwise stop and investigate",
        ) from None
    except paramiko.AuthenticationException:
        raise FikasoError(
            f"{where} refused the SSH login",
            "Check the user and key (IdentityFile in ~/.ssh/config, or ssh-add), and that the key is in "
            "the user's ~/.ssh/authorized_keys on the server",
        ) from None
    except (OSError, socket.timeout, paramiko.SSHException) as error:
        raise FikasoError(
            f"Cannot reach {where} over SSH ({error or type(error).__name__})",
            "Check the host name and port, that the server is running and that a firewall lets SSH through; "
            f"`ssh -p {connection.port} {connection.user}@{connection.host} true` should work from this machine",
        ) from None
    _notice_a_dead_link(connection)
    return connection


def _notice_a_dead_link(connection: Connection) -> None:
    """Make a silently dead link (a cut cable, a VPS that vanished) fail within a minute, not hang.

    TCP retransmits unacknowledged data for about 15 minutes before it gives up; TCP_USER_TIMEOUT
    shortens that, and keepalives keep data in flight while a long remote command prints nothing.
    """
    ssh_config = connection.ssh_config
    interval = int(ssh_config.get("serveraliveinterval", KEEPALIVE_SECONDS))
    count = int(ssh_config.get("serveralivecountmax", KEEPALIVE_COUNT))
    if interval <= 0:       # ServerAliveInterval 0: keepalives off, as in OpenSSH
        return
    connection.transport.set_keepalive(interval)
    sock = connection.transport.sock
    if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, interval * max(count, 1) * 1000)


def offered_host_key(host: str, config: Config | None = None, user: str | None = None, port: int | None = None,
                     ssh_config_files: Iterable[Path] = ()) -> tuple[str, paramiko.PKey, Path]:
    """The key `host` offers, the known_hosts name to record it under, and the file to record it in.

    Only the key exchange runs: no authentication, no command.
    """
    config = load_ssh_config_files(config if config is not None else Config(), ssh_config_files)
    connection = _unopened(host, config, user, port)
    name = connection.host if connection.port == 22 else f"[{connection.host}]:{connection.port}"
    try:
        sock = socket.create_connection((connection.host, connection.port), timeout=connection.connect_timeout)
    except OSError as error:
        raise FikasoError(f"Cannot reach {connection.host}:{connection.port} ({error})",
                          "Check the host name and port and that the server is running") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=connection.connect_timeout)
        key = transport.get_remote_server_key()
    except paramiko.SSHException as error:
        raise FikasoError(f"{connection.host}:{connection.port} did not complete an SSH handshake ({error})",
                          "Check that the port is the server's SSH port") from None
    finally:
        transport.close()
    return name, key, known_hosts_files(connection)[0]


def record_host_key(name: str, key: paramiko.PKey, path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")
