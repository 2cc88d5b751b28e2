"""The backup schedule: one cron entry of the deploy user on the VPS, found by its marker."""
from __future__ import annotations

import re

from ..errors import FikasoError
from ..layout import Layout
from ..shell import cmd, q
from .backup import script_path

MARKER = "# fikaso-backup schedule"
_FIELD = re.compile(r"^[0-9*/,\-]+$")
_NAMED = ("@hourly", "@daily", "@weekly", "@monthly")


def cron_line(layout: Layout, expression: str, daily: int, weekly: int, monthly: int) -> str:
    fields = expression.split()
    if not (expression in _NAMED or (len(fields) == 5 and all(_FIELD.match(f) for f in fields))):
        raise FikasoError(f"{expression!r} is not a cron schedule",
                          "Give five fields, e.g. --cron='17 3 * * *' (03:17 every day), or @daily")
    for name, count in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
        if not 0 <= count <= 1000:
            raise FikasoError(f"--{name}={count} is out of range", "Use a count from 0 to 1000")
    if daily + weekly + monthly == 0:
        raise FikasoError("The retention keeps no backup at all", "Keep at least one daily backup")
    job = cmd(script_path(layout), "scheduled", "--daily", daily, "--weekly", weekly, "--monthly", monthly)
    log = layout.state / "backup.log"
    return f"{expression} {job} >> {q(log)} 2>&1 {MARKER}"


def install_script(line: str, marker: str = MARKER) -> str:
    """Replace the user's crontab entry carrying `marker` with `line`; other entries stay as they are."""
    return (f"{{ crontab -l 2>/dev/null | grep -vF {q(marker)} || true; printf '%s\\n' {q(line)}; }} | crontab -\n"
            f"crontab -l | grep -F {q(marker)}")


def remove_script(marker: str = MARKER) -> str:
    return (f"if crontab -l 2>/dev/null | grep -qF {q(marker)}; then "
            f"crontab -l | grep -vF {q(marker)} | crontab -; echo removed; else echo absent; fi")


def entry_script(marker: str, key: str) -> str:
    """Print the crontab line carrying `marker` as `key=line` (nothing when there is none)."""
    return f"crontab -l 2>/dev/null | grep -F {q(marker)} | sed 's/^/{key}=/' || true"
