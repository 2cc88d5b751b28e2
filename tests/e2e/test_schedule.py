"""Scheduled backups: one cron entry however often it is installed, a real run, and retention."""
from datetime import date, timedelta

import pytest

from .helpers import fab, ssh

pytestmark = pytest.mark.e2e

BACKUPS = "/srv/fikaso/backups"


def entries(info) -> list[str]:
    return [line for line in ssh(info, "crontab -l 2>/dev/null").stdout.splitlines()
            if "# fikaso-backup schedule" in line]


def test_scheduling_three_times_leaves_one_entry_whose_job_runs(deployed):
    ssh(deployed, "(crontab -l 2>/dev/null; echo '0 1 * * * echo keep-me') | crontab -")
    for cron in ("17 3 * * *", "17 3 * * *", "30 2 * * *"):
        result = fab("backup.schedule", f"--cron={cron}")
        assert result.returncode == 0, result.stderr
    lines = entries(deployed)
    assert len(lines) == 1 and lines[0].startswith("30 2 * * * ")
    assert "keep-me" in ssh(deployed, "crontab -l").stdout
    assert ssh(deployed, "pgrep -x cron").returncode == 0  # the VPS's cron daemon would run it
    before = set(ssh(deployed, f"ls {BACKUPS} 2>/dev/null").stdout.split())
    job = lines[0].split(" ", 5)[5]  # what cron would run, as cron would run it
    assert ssh(deployed, job).returncode == 0
    after = set(ssh(deployed, f"ls {BACKUPS}").stdout.split())
    assert len(after - before) == 1
    assert "scheduled run at" in ssh(deployed, "cat /srv/fikaso/state/backup.log").stdout
    assert fab("backup.unschedule").returncode == 0
    assert entries(deployed) == [] and "keep-me" in ssh(deployed, "crontab -l").stdout
    ssh(deployed, "crontab -l | grep -v keep-me | crontab -")


def expected_survivors(days: list[date], daily: int, weekly: int, monthly: int) -> set[date]:
    keep, seen_d, seen_w, seen_m = set(), [], [], []
    for day in sorted(days, reverse=True):
        week, month = day.isocalendar()[:2], (day.year, day.month)
        if day not in seen_d and len(seen_d) < daily:
            seen_d.append(day), keep.add(day)
        if week not in seen_w and len(seen_w) < weekly:
            seen_w.append(week), keep.add(day)
        if month not in seen_m and len(seen_m) < monthly:
            seen_m.append(month), keep.add(day)
    return keep


FIXTURE_BASE = "/home/deploy/fixture-base"


def fixture_backups(info, ids: list[str], then: str = "") -> None:
    """A copy of the layout whose backups/ holds only fixtures with these ids (the script works on
    <base>/backups, <base>/state and the releases beside its own stack/ folder); `then` adds more."""
    base = FIXTURE_BASE
    make = " && ".join(f"mkdir -p {base}/backups/{i} && echo 'databases fikaso_store' > {base}/backups/{i}/manifest"
                       for i in ids)
    setup = (f"rm -rf {base} && {make} && mkdir -p {base}/stack {base}/state && "
             f"cp -r /srv/fikaso/stack/bin /srv/fikaso/stack/.env {base}/stack/" + (f" && {then}" if then else ""))
    assert ssh(info, setup).returncode == 0


def test_retention_keeps_7_daily_4_weekly_12_monthly(deployed):
    newest = date(2026, 11, 24)
    days = [newest - timedelta(days=n) for n in range(0, 500, 3)]
    ids = [d.strftime("%Y%m%dT031700Z") for d in days]
    fixture_backups(deployed, ids)
    result = ssh(deployed, "/home/deploy/fixture-base/stack/bin/fikaso-backup prune --daily 7 --weekly 4 --monthly 12")
    assert result.returncode == 0, result.stderr
    left = set(ssh(deployed, "ls /home/deploy/fixture-base/backups").stdout.split())
    expected = {d.strftime("%Y%m%dT031700Z") for d in expected_survivors(days, 7, 4, 12)}
    assert left == expected
    assert len(left) < len(ids)
    ssh(deployed, "rm -rf /home/deploy/fixture-base")


def test_retention_keeps_the_snapshots_of_kept_releases_and_clears_unfinished_backups(deployed):
    base = FIXTURE_BASE
    newest = date(2026, 11, 24)
    days = [newest - timedelta(days=n) for n in range(0, 120, 3)]
    ids = [d.strftime("%Y%m%dT031700Z") for d in days]
    snapshot, gone = ids[-1], ids[-2]     # both far outside the retention below
    records = (f'{{"id": "20250101000000", "result": "ok", "snapshot": "{snapshot}"}}\\n'
               f'{{"id": "20240101000000", "result": "ok", "snapshot": "{gone}"}}\\n')
    fixture_backups(deployed, ids, f"mkdir -p {base}/backups/20261124T040000Z.partial "
                                   f"{base}/panels/store/releases/20250101000000 && "
                                   f"printf '{records}' > {base}/state/store.releases.jsonl")
    result = ssh(deployed, f"{base}/stack/bin/fikaso-backup prune --daily 2 --weekly 1 --monthly 1")
    assert result.returncode == 0, result.stderr
    left = set(ssh(deployed, f"ls {base}/backups").stdout.split())
    expected = {d.strftime("%Y%m%dT031700Z") for d in expected_survivors(days, 2, 1, 1)}
    assert left == expected | {snapshot}, left
    assert f"kept {snapshot}: the snapshot of store release 20250101000000" in result.stderr
    assert f"pruned {gone}" in result.stderr          # its release is no longer kept
    assert "removed 20261124T040000Z.partial" in result.stderr
    assert "prune: removed" in result.stderr and "kept 1 outside the retention" in result.stderr
    ssh(deployed, f"rm -rf {base}")
