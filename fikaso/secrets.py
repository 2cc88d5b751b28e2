"""Local secrets: the MySQL root password, one password per panel database and each panel's .env.

They live in a git-ignored folder on the machine that deploys, are generated once, and reach the
server only over the SSH channel's stdin (never argv, never a log line).
"""
from __future__ import annotations

import base64
import io
import os
import re
import secrets as random
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from .config import Settings, check_pem
from .errors import FikasoError

_PASSWORD = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def database_name(panel: str) -> str:
    return f"fikaso_{panel}"


def password_file(panel: str) -> str:
    return f"{panel}_db_password"


ROOT_PASSWORD_FILE = "mysql_root_password"


ALERT_WEBHOOK_FILE = "alert_webhook_url"     # optional: written by the user, never generated
ALERT_CA_FILE = "alert_ca.pem"               # on the server: fikaso.alerts.ca_bundle's copy
# https only, and nothing that would need quoting in curl's config file.
_WEBHOOK = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/%+=&?:@,;-]*)?$")


@dataclass(frozen=True)
class Secrets:
    mysql_root_password: str
    db_passwords: dict[str, str]
    env_files: dict[str, bytes]
    webhook_url: str = ""          # where alerts are posted, if anywhere
    alert_ca: bytes = b""          # the CA bundle of a private webhook's HTTPS

    def files(self) -> dict[str, bytes]:
        """What goes to <base>/secrets on the server (the .env files go to each panel's shared/)."""
        out = {ROOT_PASSWORD_FILE: self.mysql_root_password.encode()}
        for panel, password in sorted(self.db_passwords.items()):
            out[password_file(panel)] = password.encode()
        if self.webhook_url:
            out[ALERT_WEBHOOK_FILE] = f"{self.webhook_url}\n".encode()
        if self.alert_ca:
            out[ALERT_CA_FILE] = self.alert_ca
        return out


def webhook_url(settings: Settings) -> str:
    """The alert webhook's URL from secrets/alert_webhook_url ('' when there is none); https only."""
    path = settings.secrets_dir / ALERT_WEBHOOK_FILE
    if not path.is_file():
        return ""
    url = path.read_text().strip()
    if not _WEBHOOK.match(url):
        raise FikasoError(f"{path} does not hold an https:// URL (alerts would travel, with the webhook's token, "
                          "in the clear, or the URL has spaces or quotes)",
                          "Write the webhook's https:// URL alone in that file, or delete it to send no webhook")
    return url


def _new_password() -> str:
    return random.token_urlsafe(32)


def panel_env(settings: Settings, panel: str, password: str) -> str:
    site = settings.panel(panel)
    app_key = base64.b64encode(random.token_bytes(32)).decode()
    return "\n".join([
        f"APP_NAME={panel}",
        "APP_ENV=production",
        f"APP_KEY=base64:{app_key}",
        "APP_DEBUG=false",
        f"APP_URL=https://{site.domain}",
        "LOG_CHANNEL=stderr",
        "DB_CONNECTION=mysql",
        "DB_HOST=mysql",
        "DB_PORT=3306",
        f"DB_DATABASE={database_name(panel)}",
        f"DB_USERNAME={database_name(panel)}",
        f"DB_PASSWORD={password}",
        "CACHE_DRIVER=file",
        "SESSION_DRIVER=file",
        # Queue workers read jobs from the database (the app needs the queue's table: artisan queue:table).
        f"QUEUE_CONNECTION={'database' if site.workers else 'sync'}",
        "",
    ])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def generate(settings: Settings) -> list[Path]:
    """Create every missing secret; never overwrite one. Returns the files written."""
    folder = settings.secrets_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    written = []
    root = folder / ROOT_PASSWORD_FILE
    if not root.exists():
        _write_private(root, _new_password())
        written.append(root)
    for site in settings.panels:
        pw_path = folder / password_file(site.name)
        if not pw_path.exists():
            _write_private(pw_path, _new_password())
            written.append(pw_path)
        env_path = folder / f"{site.name}.env"
        if not env_path.exists():
            _write_private(env_path, panel_env(settings, site.name, pw_path.read_text().strip()))
            written.append(env_path)
    return written


def _read(path: Path) -> str:
    if not path.is_file():
        raise FikasoError(f"The secret {path} is missing",
                          "Run `fab secrets.generate` to create the missing secrets (existing ones are kept)")
    return path.read_text()


def _password(path: Path) -> str:
    value = _read(path).strip()
    if not _PASSWORD.match(value):
        raise FikasoError(f"The secret {path} is not a usable password: it must be 16 to 128 characters "
                          "of letters, digits, '-' or '_'",
                          "Replace it, or delete it and run `fab secrets.generate`")
    return value


def env_values(env: str) -> dict[str, str | None]:
    """The KEY=VALUE pairs of a .env text, read as dotenv does: quotes, `export` and comments.

    No ${VAR} expansion: it would fill in this machine's environment, not the server's."""
    return dotenv_values(stream=io.StringIO(env), interpolate=False)


def load(settings: Settings) -> Secrets:
    """Read and cross-check every secret the stack needs, before anything touches a server."""
    folder = settings.secrets_dir
    root = _password(folder / ROOT_PASSWORD_FILE)
    passwords, envs = {}, {}
    for site in settings.panels:
        password = _password(folder / password_file(site.name))
        env_path = folder / f"{site.name}.env"
        env = _read(env_path)
        values = env_values(env)
        for key, expected in (("DB_PASSWORD", password), ("DB_DATABASE", database_name(site.name)),
                              ("DB_USERNAME", database_name(site.name)), ("DB_HOST", "mysql")):
            if values.get(key) != expected:
                shown = "the password in " + str(folder / password_file(site.name)) if key == "DB_PASSWORD" else expected
                raise FikasoError(f"{env_path} does not set {key} to {shown}",
                                  f"Edit {key} in that file, or delete it and run `fab secrets.generate`")
        if not (values.get("APP_KEY") or "").startswith("base64:"):
            raise FikasoError(f"{env_path} has no APP_KEY=base64:... line",
                              "Add one (php artisan key:generate --show prints one), or delete the file and "
                              "run `fab secrets.generate`")
        passwords[site.name] = password
        envs[site.name] = env.encode()
    ca = settings.alerts.ca_bundle
    check_pem(ca, "alerts.ca_bundle", "your webhook's HTTPS")
    return Secrets(mysql_root_password=root, db_passwords=passwords, env_files=envs, webhook_url=webhook_url(settings),
                   alert_ca=ca.read_bytes() if ca is not None else b"")


def idle_worker_warnings(settings: Settings, secrets: Secrets) -> list[str]:
    """Panels that run queue workers while their .env sends every job to the `sync` queue, which runs it
    in the request itself: the workers would wait for jobs that never come."""
    warnings = []
    for site in settings.panels:
        connection = env_values(secrets.env_files[site.name].decode()).get("QUEUE_CONNECTION") or "sync"
        if site.workers and connection == "sync":
            warnings.append(f"warning: {site.name} runs {site.workers} queue worker(s), but its .env "
                            f"({settings.secrets_dir / (site.name + '.env')}) sets QUEUE_CONNECTION={connection}, so "
                            "jobs run in the request and the workers stay idle. Set QUEUE_CONNECTION=database (the app "
                            "needs the queue's table: php artisan queue:table) and run `fab setup` again")
    return warnings
