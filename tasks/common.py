"""What every task does the same way: settings, the target host, and errors users can act on."""
from __future__ import annotations

import functools
from typing import Any, Callable

from invoke.exceptions import Exit

from fikaso import config as fikaso_config
from fikaso import secrets as fikaso_secrets
from fikaso.connection import connect
from fikaso.sandbox import ALIAS as SANDBOX_ALIAS
from fikaso.errors import FikasoError
from fikaso.remote import SSHRemote


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    return value


def settings_of(c) -> fikaso_config.Settings:
    return fikaso_config.load_settings(_plain(c.config.get("fikaso")))


def target_host(c, settings: fikaso_config.Settings) -> str:
    host = getattr(c, "original_host", None) or settings.host
    if not host:
        raise FikasoError("No target host is set",
                          "Pass one with `fab -H HOST TASK`, or set fikaso.host in fabric.yaml")
    return host


def target(c, settings: fikaso_config.Settings) -> dict:
    """Where to connect: `-H` (which Fabric has parsed into c), or else fikaso.host."""
    if getattr(c, "original_host", None) is None or c.original_host == SANDBOX_ALIAS:
        # An alias: its ssh_config entry (the sandbox's included) supplies user and port.
        return {"host": target_host(c, settings)}
    return {"host": c.original_host, "user": c.user, "port": c.port}


def open_remote(c, settings: fikaso_config.Settings) -> SSHRemote:
    return SSHRemote(connect(config=c.config, **target(c, settings)))


def user_errors(task_body: Callable) -> Callable:
    """Turn FikasoError into one paragraph on stderr and exit code 1, with no traceback."""
    @functools.wraps(task_body)
    def wrapper(*args, **kwargs):
        try:
            return task_body(*args, **kwargs)
        except FikasoError as error:
            raise Exit(f"Error: {error}", code=1) from None
    return wrapper


def load_secrets(settings: fikaso_config.Settings) -> fikaso_secrets.Secrets:
    return fikaso_secrets.load(settings)
