import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

import pytest

from fikaso.commands import cron as schedule
from fikaso.errors import FikasoError
from fikaso.layout import Layout

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_cron_line_runs_the_bundled_script_with_retention_and_a_log():
    assert schedule.cron_line(LAYOUT, "17 3 * * *", 7, 4, 12) == (
        "17 3 * * * /srv/fikaso/stack/bin/fikaso-backup scheduled --daily 7 --weekly 4 --monthly 12 "
        ">> /srv/fikaso/state/backup.log 2>&1 || tail -n 40 /srv/fikaso/state/backup.log | "
        "/srv/fikaso/stack/bin/fikaso-alert 'the scheduled backup failed: the newest backup is older than the "
        "schedule says' >/dev/null 2>&1 # fikaso-backup schedule")


def test_a_cron_line_passes_shellcheck_as_cron_runs_it(tmp_path):
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed (make test installs it)")
    line = schedule.cron_line(LAYOUT, "17 3 * * *", 7, 4, 12)
    path = tmp_path / "cron.sh"
    path.write_text("#!/bin/sh\n" + line.split(" ", 5)[5] + "\n")
    checked = subprocess.run([shellcheck, str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("expression", [
    "0 3 * * MON", "0 3 * * mon-fri", "@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@annually",
    "@midnight", "*/15 * * * *", "0 0 1 JAN *", "17 3 * * *", "0 2 1-7,15 * 0-7", "30 1 * jan-mar/2 sun"])
def test_what_cron_reads_is_accepted(expression):
    assert schedule.cron_line(LAYOUT, expression, 7, 4, 12).startswith(expression + " /srv/fikaso/stack/bin/")


@pytest.mark.parametrize("expression, reason", [
    ("99 99 * * *", "bad minute"),
    ("61 * * * *", "bad minute"),
    ("0 24 * * *", "bad hour"),
    ("0 0 * 13 *", "bad month"),
    ("* * * *", "4 fields"),
    ("17 3 * *", "4 fields"),
    ("0 0 * * * *", "6 fields"),
    ("17 3 * * * rm -rf /", "8 fields"),
    ("every day", "2 fields"),
    ("", "0 fields"),
    ("@DAILY", "1 field,"),
    ("0 0 L * *", "'L' is not cron syntax"),
    ("0 0 * * 1#2", "'1#2' is not cron syntax"),
    ("0 0 ? * *", "'?' is not cron syntax"),
])
def test_a_bad_schedule_is_refused(expression, reason):
    with pytest.raises(FikasoError, match="not a cron schedule") as error:
        schedule.cron_line(LAYOUT, expression, 7, 4, 12)
    assert reason in str(error.value)
    assert "Give five fields" in str(error.value)


def test_reboot_is_cron_but_not_a_backup_schedule():
    with pytest.raises(FikasoError, match="only when the server boots.*Give a time instead"):
        schedule.cron_line(LAYOUT, "@reboot", 7, 4, 12)


def test_retention_must_keep_something():
    with pytest.raises(FikasoError, match="keeps no backup"):
        schedule.cron_line(LAYOUT, "@daily", 0, 0, 0)


def test_install_replaces_only_its_own_entry():
    script = schedule.install_script("@daily job # fikaso-backup schedule")
    assert script.splitlines()[0] == (
        "{ crontab -l 2>/dev/null | grep -vF '# fikaso-backup schedule' || true; "
        "printf '%s\\n' '@daily job # fikaso-backup schedule'; } | crontab -")


@pytest.mark.parametrize("before, after", [
    ("@daily job # fikaso-backup schedule\n", ""),            # ours was the only entry
    ("@daily job # fikaso-backup schedule\n@hourly other\n", "@hourly other\n"),
])
def test_removing_the_entry_keeps_every_other_line_and_succeeds_when_it_was_the_only_one(tmp_path, before, after):
    table = tmp_path / "crontab"
    table.write_text(before)
    # crontab(1) stood in by a function over a file: -l prints it, - replaces it whole from stdin.
    shim = f'crontab() {{ if [ "$1" = -l ]; then cat {table}; else cat > {table}.new; mv {table}.new {table}; fi; }}\n'
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + shim + schedule.remove_script()],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed\n" and table.read_text() == after


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("line, newest, offset, warned", [
    ("17 3 * * * job", datetime(2026, 12, 1, 3, 40, tzinfo=timezone.utc), 0, False),   # today's run made one
    ("17 3 * * * job", datetime(2026, 11, 30, 3, 40, tzinfo=timezone.utc), 0, True),   # today's run did not
    ("17 3 * * * job", None, 0, True),                                                # none at all
    ("@hourly job", datetime(2026, 12, 1, 9, 5, tzinfo=timezone.utc), 0, False),       # 10:00 is within the grace
    ("@hourly job", datetime(2026, 12, 1, 8, 5, tzinfo=timezone.utc), 0, True),
    # A server on UTC+5 ran "17 3" at 22:17 UTC yesterday: yesterday's 22:30 backup is on time.
    ("17 3 * * * job", datetime(2026, 11, 30, 22, 30, tzinfo=timezone.utc), 5, False),
    ("", None, 0, False),                                                              # no schedule, no promise
])
def test_a_verified_backup_older_than_the_schedule_promises_is_warned_of(line, newest, offset, warned):
    message = schedule.overdue(line, [newest] if newest else [], NOW, timedelta(hours=offset))
    assert bool(message) == warned, message
    assert not message or "fab backup.now" in message
