"""Alerts from the server: stack/bin/fikaso-alert, and the cron jobs that call it when they fail."""
from __future__ import annotations

from ..layout import Layout
from ..shell import cmd, q


def script_path(layout: Layout):
    return layout.stack / "bin" / "fikaso-alert"


def send_script(layout: Layout, summary: str) -> str:
    """An alert saying `summary`, with the details arriving on stdin."""
    return cmd(script_path(layout), summary)


def cron_job(layout: Layout, job: str, log, summary: str) -> str:
    """`job` as cron runs it: its output appended to `log`; if it fails, an alert carrying the log's
    last lines (fikaso-alert logs what became of it to state/alerts.log)."""
    return f"{job} >> {q(log)} 2>&1 || tail -n 40 {q(log)} | {send_script(layout, summary)} >/dev/null 2>&1"
