"""The panels' databases inside the stack's MySQL: create them, and check each panel's login."""
from __future__ import annotations

from ..config import PANELS
from ..layout import Layout
from ..secrets import database_name, password_file
from .compose import exec_in

BOOTSTRAP_SCRIPT = "/docker-entrypoint-initdb.d/01-databases.sh"


def logins_check(layout: Layout) -> str:
    """Exits 0 only if every panel user logs in to its own database with its current password."""
    checks = []
    for panel in PANELS:
        db = database_name(panel)
        option_file = (f"<(printf '[client]\\nuser={db}\\npassword=%s\\n' "
                       f"\"$(cat /run/secrets/{password_file(panel)})\")")
        checks.append(f"mysql --defaults-extra-file={option_file} -h 127.0.0.1 -e 'SELECT 1' {db} >/dev/null")
    return exec_in(layout, "mysql", "bash", "-c", " && ".join(checks))


def bootstrap_script(layout: Layout) -> str:
    """Create the databases and users, and set their passwords from the mounted secrets (idempotent)."""
    return exec_in(layout, "mysql", "bash", BOOTSTRAP_SCRIPT)
