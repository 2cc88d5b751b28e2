"""A dump that dies half-way is a failure, and leaves nothing that looks like a good backup."""
import os
import subprocess
import time

import pytest

from .helpers import FAB, ROOT, fab, ssh
from .test_restore import as_root

pytestmark = pytest.mark.e2e

# About 200 MB of rows: enough for the dump to be caught in the middle. (seq_1_to_N is MariaDB's
# sequence engine, which the offline MySQL stand-in has.)
FILL = """
CREATE TABLE IF NOT EXISTS ballast (id INT PRIMARY KEY AUTO_INCREMENT, filler CHAR(200));
INSERT INTO ballast (filler) SELECT REPEAT('x', 200) FROM seq_1_to_1000000;
"""


def backup_ids() -> list[str]:
    listing = fab("backup.list")
    assert listing.returncode == 0, listing.stderr
    return [line.split()[0] for line in listing.stdout.splitlines()[1:]]


def test_mysql_stopped_mid_dump_fails_the_backup_and_keeps_nothing_usable(deployed):
    filled = as_root(deployed, FILL, "fikaso_admin")
    assert filled.returncode == 0, filled.stderr
    listed_before = backup_ids()
    try:
        run = subprocess.Popen([*FAB, "backup.now", "--database=fikaso_admin"], cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            if ssh(deployed, "find /srv/fikaso/backups -path '*.partial/fikaso_admin.sql.zst' -size +1k "
                             "| grep -q .").returncode == 0:
                break
            time.sleep(0.1)
        assert run.poll() is None, "the backup finished before MySQL could be stopped"
        assert ssh(deployed, "docker kill fikaso_mysql").returncode == 0
        out, err = run.communicate(timeout=300)
        assert run.returncode == 1, out + err
        assert "Error:" in err and "backing up failed" in err
        assert backup_ids() == listed_before
    finally:
        assert ssh(deployed, "cd /srv/fikaso/stack && docker compose up --detach --wait mysql").returncode == 0
        as_root(deployed, "DROP TABLE IF EXISTS ballast", "fikaso_admin")
    partial = ssh(deployed, "ls -d /srv/fikaso/backups/*.partial 2>/dev/null").stdout.split()
    for folder in partial:
        restore = fab("backup.restore", f"--id={folder.rsplit('/', 1)[1]}", "--yes")
        assert restore.returncode == 1 and "no complete backup" in restore.stderr


def test_a_backup_while_mysql_is_down_fails_and_keeps_nothing(deployed):
    listed_before = backup_ids()
    assert ssh(deployed, "docker stop fikaso_mysql").returncode == 0
    try:
        result = fab("backup.now", "--database=fikaso_admin", timeout=180)
    finally:
        assert ssh(deployed, "cd /srv/fikaso/stack && docker compose up --detach --wait mysql").returncode == 0
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the dump of fikaso_admin failed" in result.stderr, result.stderr
    assert backup_ids() == listed_before
