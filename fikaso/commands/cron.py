"""The backup schedule: one cron entry of the deploy user on the VPS, found by its marker."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from cronsim import CronSim, CronSimError

from ..errors import FikasoError
from ..layout import Layout
from ..shell import cmd, q
from . import alert
from .backup import script_path

MARKER = "# fikaso-backup schedule"
# cron's own shorthands (lower case only, as cron reads them) and the five fields each stands for.
_SPECIALS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
             "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# cronsim also reads Quartz-style L, W, # and ?, which cron does not: a field may hold only numbers,
# three-letter month or weekday names, and * , - /
_CRON_FIELD = re.compile(r"[0-9*,/-]*(?:[A-Za-z]{3}[0-9*,/-]*)*")


def check_cron(expression: str) -> None:
    """Refuse anything the server's cron would not run as a five-field schedule."""
    if expression == "@reboot":
        raise FikasoError("'@reboot' is not a cron schedule for backups: it runs only when the server boots",
                          "Give a time instead, e.g. --cron='17 3 * * *' (03:17 every day), or @daily")
    fields = [f for f in re.split(r"[ \t]+", _SPECIALS.get(expression, expression)) if f]
    odd = next((field for field in fields if not _CRON_FIELD.fullmatch(field)), None)
    if len(fields) != 5:
        reason = f"it has {len(fields)} field{'' if len(fields) == 1 else 's'}, cron reads 5"
    elif odd is not None:
        reason = f"{odd!r} is not cron syntax"
    else:
        try:
            CronSim(" ".join(fields), datetime(2000, 1, 1))
            return
        except CronSimError as error:
            reason = str(error).rstrip(".").lower()
    raise FikasoError(f"{expression!r} is not a cron schedule ({reason})",
                      "Give five fields (minute hour day-of-month month day-of-week), e.g. "
                      "--cron='17 3 * * *' (03:17 every day), or @hourly, @daily, @weekly, @monthly or @yearly")


def cron_line(layout: Layout, expression: str, daily: int, weekly: int, monthly: int) -> str:
    check_cron(expression)
    for name, count in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
        if not 0 <= count <= 1000:
            raise FikasoError(f"--{name}={count} is out of range", "Use a count from 0 to 1000")
    if daily + weekly + monthly == 0:
        raise FikasoError("The retention keeps no backup at all", "Keep at least one daily backup")
    job = cmd(script_path(layout), "scheduled", "--daily", daily, "--weekly", weekly, "--monthly", monthly)
    failed = "the scheduled backup failed: the newest backup is older than the schedule says"
    return f"{expression} {alert.cron_job(layout, job, layout.state / 'backup.log', failed)} {MARKER}"


def install_script(line: str, marker: str = MARKER) -> str:
    """Replace the user's crontab entry carrying `marker` with `line`; other entries stay as they are."""
    return (f"{{ crontab -l 2>/dev/null | grep -vF {q(marker)} || true; printf '%s\\n' {q(line)}; }} | crontab -\n"
            f"crontab -l | grep -F {q(marker)}")


def remove_script(marker: str = MARKER) -> str:
    return (f"if crontab -l 2>/dev/null | grep -qF {q(marker)}; then "
            # grep finds no other line when ours was the only one: that is not a failure.
            f"{{ crontab -l | grep -vF {q(marker)} || true; }} | crontab -; echo removed; else echo absent; fi")


def entry_script(marker: str, key: str) -> str:
    """Print the crontab line carrying `marker` as `key=line` (nothing when there is none)."""
    return f"crontab -l 2>/dev/null | grep -F {q(marker)} | sed 's/^/{key}=/' || true"


# A scheduled run may take this long before its backup is complete and verified.
GRACE = timedelta(hours=2)


def schedule_of(line: str) -> str:
    """The cron expression that starts a crontab line."""
    fields = line.split()
    return fields[0] if line.startswith("@") else " ".join(fields[:5])


def missed(line: str, verified: list[datetime], now: datetime, offset: timedelta) -> datetime | None:
    """When the schedule in `line` ran last and left no verified backup after it (UTC), or None.

    The last time the schedule fired at least GRACE ago must have left a verified backup after it.
    Cron reads the schedule in the server's local time (`offset` from UTC); `now` and `verified` are UTC."""
    if not line:
        return None
    expression = schedule_of(line)
    local = (now + offset - GRACE).replace(tzinfo=None, second=0, microsecond=0)
    due = next(CronSim(_SPECIALS.get(expression, expression), local, reverse=True)) - offset
    due = due.replace(tzinfo=timezone.utc)
    newest = max(verified, default=None)
    return None if newest is not None and newest >= due else due


def overdue(line: str, verified: list[datetime], now: datetime, offset: timedelta) -> str:
    """A warning when the newest verified backup is older than the schedule in `line` promises, or ''."""
    due = missed(line, verified, now, offset)
    if due is None:
        return ""
    newest = max(verified, default=None)
    have = f"from {newest:%Y-%m-%d %H:%M} UTC" if newest else "missing"
    return (f"warning: the newest verified backup is {have}, but the schedule ({schedule_of(line)}) ran at "
            f"{due:%Y-%m-%d %H:%M} UTC and should have made one: see state/backup.log and state/alerts.log on "
            "the server, or run `fab backup.now`")
