"""Backups: the script shipped in the bundle does the work on the VPS; these build its calls."""
from __future__ import annotations

from datetime import datetime, timezone

from .config import PANELS
from .errors import FikasoError
from .layout import Layout
from .remote import cmd
from .secrets import database_name
from .tables import table

DATABASES = tuple(database_name(panel) for panel in PANELS)


def script_path(layout: Layout):
    return layout.stack / "bin" / "fikaso-backup"


def now_script(layout: Layout, database: str | None = None) -> str:
    _check_database(database)
    return cmd(script_path(layout), "now", *([database] if database else []))


def verify_script(layout: Layout, backup_id: str | None) -> str:
    return cmd(script_path(layout), "verify", *([backup_id] if backup_id else []))


def _check_database(database: str | None) -> None:
    if database is not None and database not in DATABASES:
        raise FikasoError(f"There is no database named {database!r}", f"Use one of: {', '.join(DATABASES)}")


def restore_script(layout: Layout, backup_id: str, database: str | None = None) -> str:
    _check_database(database)
    if not backup_id:
        raise FikasoError("No backup given", "Pass --id=ID with one from `fab backup.list`")
    return cmd(script_path(layout), "restore", backup_id, *([database] if database else []))


def migrations_script(layout: Layout, database: str) -> str:
    return cmd(script_path(layout), "migrations", database)


def created_id(output: str) -> str:
    """The id in the script's closing line, "backup <id> ok in N s"."""
    for line in reversed(output.splitlines()):
        if line.startswith("backup ") and " ok in " in line:
            return line.split()[1]
    raise FikasoError("The backup script did not report a backup id", "See its output above")


def list_script(layout: Layout) -> str:
    return cmd(script_path(layout), "list")


def _age(backup_id: str, now: datetime) -> str:
    try:
        made = datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "?"
    seconds = int((now - made).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def render_list(text: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    rows = []
    for line in sorted(text.splitlines()):
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        backup_id, size, databases, verified = parts
        rows.append((backup_id, _age(backup_id, now), _size(int(size)), databases, verified))
    out = table(("BACKUP", "AGE", "SIZE", "DATABASES", "VERIFIED"), rows,
                align=("left", "right", "right", "left", "left"))
    return out if rows else out + "\n(no backups yet: `fab backup.now` makes one)"
