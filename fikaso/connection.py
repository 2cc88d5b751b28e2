"""Open SSH connections with strict host-key checking.

Fabric's Connection accepts any host key (it hard-codes paramiko's auto-adding policy and never reads
known_hosts). Every connection Fikaso makes goes through `connect`, which loads the known hosts
and rejects unknown or changed keys with an error that shows the fingerprint.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import paramiko
from fabric import Config, Connection

from .config import PROJECT_ROOT
from .errors import FikasoError

SANDBOX_SSH_CONFIG = PROJECT_ROOT / ".sandbox" / "ssh_config"
CONNECT_TIMEOUT = 15
KEEPALIVE_SECONDS = 15


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


def _with_sandbox_alias(config: Config) -> Config:
    """Let `-H fikaso-sandbox` resolve through the sandbox's own ssh_config, after the user's."""
    if SANDBOX_SSH_CONFIG.is_file() and not getattr(config, "_fikaso_sandbox_loaded", False):
        with SANDBOX_SSH_CONFIG.open() as handle:
            config.base_ssh_config.parse(handle)
        object.__setattr__(config, "_fikaso_sandbox_loaded", True)
    return config


def connect(host: str, config: Config | None = None, user: str | None = None,
            port: int | None = None) -> Connection:
    """An open Connection to `host` (an ssh_config alias or user@host:port), host key verified."""
    config = _with_sandbox_alias(config if config is not None else Config())
    connection = Connection(host, user=user, port=port, config=config, connect_timeout=CONNECT_TIMEOUT)
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
    connection.transport.set_keepalive(KEEPALIVE_SECONDS)
    return connection


def offered_host_key(host: str, config: Config | None = None, user: str | None = None,
                     port: int | None = None) -> tuple[str, paramiko.PKey, Path]:
    """The key `host` offers, the known_hosts name to record it under, and the file to record it in.

    Only the key exchange runs: no authentication, no command.
    """
    config = _with_sandbox_alias(config if config is not None else Config())
    connection = Connection(host, user=user, port=port, config=config, connect_timeout=CONNECT_TIMEOUT)
    name = connection.host if connection.port == 22 else f"[{connection.host}]:{connection.port}"
    try:
        sock = socket.create_connection((connection.host, connection.port), timeout=CONNECT_TIMEOUT)
    except OSError as error:
        raise FikasoError(f"Cannot reach {connection.host}:{connection.port} ({error})",
                          "Check the host name and port and that the server is running") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
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
