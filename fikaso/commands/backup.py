"""Backups: the script shipped in the bundle does the work on the VPS; these build its calls."""
from __future__ import annotations

from ..config import PANELS
from ..errors import FikasoError
from ..layout import Layout
from ..shell import cmd, q
from ..secrets import database_name

DATABASES = tuple(database_name(panel) for panel in PANELS)
OLD_BUNDLE = ("the backup script on the server is older than this Fikaso and did not take the snapshot's "
              "name: run `fab setup` to update it, then deploy again")


def script_path(layout: Layout):
    return layout.stack / "bin" / "fikaso-backup"


def now_script(layout: Layout, database: str | None = None, backup_id: str | None = None,
               kind: str = "") -> str:
    """Back up now; `backup_id` (a UTC time such as 20261125T031700Z) names it in advance, `kind`
    says what it is for (`fab backup.list` shows it)."""
    _check_database(database)
    run = cmd(script_path(layout), "now", *([database] if database else []))
    if kind:
        run = f"FIKASO_BACKUP_KIND={q(kind)} {run}"
    if not backup_id:
        return run
    # A server whose bundle predates named backups would pick its own id: say so rather than
    # record a snapshot that does not exist.
    return (f"FIKASO_BACKUP_ID={q(backup_id)} {run}\n"
            f"[ -d {q(layout.base / 'backups' / backup_id)} ] || {{ echo {q(OLD_BUNDLE)} >&2; exit 1; }}")


def unfinished_restores_script(layout: Layout) -> str:
    """The databases whose last restore did not finish, as fikaso-backup records them (one line each:
    DATABASE, BACKUP, SAFETY BACKUP, SINCE, tab-separated)."""
    pending = q(layout.state / 'restore.pending')
    return f"if [ -f {pending} ]; then cat {pending}; fi"


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


def list_script(layout: Layout) -> str:
    return cmd(script_path(layout), "list")


def fetch_script(layout: Layout, backup_id: str, name: str, offset: int) -> str:
    """Print a backup's file from byte `offset` on (a cut download resumes there)."""
    return f"tail -c +{offset + 1} {q(layout.base / 'backups' / backup_id / name)}"
