"""A database with every kind of object survives backup, loss and restore exactly, whether its rows
are loaded in one chunk per table or in many chunks by several loaders at once; queue workers and
schedulers never write while a restore loads; an interrupted restore says so until it is finished."""
import re
import shlex

import pytest

from .helpers import curl, fab, ssh

pytestmark = pytest.mark.e2e

OBJECTS = """
CREATE TABLE vault (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(40), payload BLOB, amount DECIMAL(10,2));
INSERT INTO vault (label, payload, amount) VALUES ('a', UNHEX('00FF10'), 1.50), ('b', NULL, 2.25), ('ç€', '', 0);
CREATE TABLE audit_trail (id INT PRIMARY KEY AUTO_INCREMENT, vault_id INT, at DATETIME);
CREATE VIEW vault_labels AS SELECT id, label FROM vault;
CREATE TRIGGER vault_audit AFTER INSERT ON vault FOR EACH ROW INSERT INTO audit_trail (vault_id, at) VALUES (NEW.id, NOW());
CREATE PROCEDURE vault_add(IN l VARCHAR(40)) INSERT INTO vault (label) VALUES (l);
CREATE FUNCTION vault_total() RETURNS DECIMAL(10,2) DETERMINISTIC READS SQL DATA RETURN (SELECT SUM(amount) FROM vault);
CREATE EVENT vault_sweep ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit_trail WHERE at < NOW() - INTERVAL 30 DAY;
CALL vault_add('c');
CREATE TABLE ledger (id INT PRIMARY KEY AUTO_INCREMENT, vault_id INT, note VARCHAR(200), at TIMESTAMP NULL,
  KEY by_note (note), CONSTRAINT ledger_vault FOREIGN KEY (vault_id) REFERENCES vault (id));
INSERT INTO ledger (vault_id, note, at)
  SELECT 1 + n % 3, CONCAT('entry ', n, ' ', MD5(n), IF(n % 7 = 0, '\n-- Dumping data for table `vault`', '')),
         '2026-01-01' + INTERVAL n MINUTE
  FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n FROM
        (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5
         UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,
        (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5
         UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b,
        (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5
         UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c,
        (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5
         UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e,
        (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2) f) numbers
  WHERE n > 0;
CREATE VIEW vault_entries AS SELECT l.label, COUNT(*) AS entries FROM vault_labels l JOIN ledger ON ledger.vault_id = l.id
  GROUP BY l.label;
CREATE TRIGGER ledger_stamp BEFORE INSERT ON ledger FOR EACH ROW SET NEW.note = CONCAT('stamped ', NEW.note);
"""

DESCRIBE = """
CHECKSUM TABLE vault, audit_trail, ledger, panel_notes;
SHOW CREATE TABLE vault; SHOW CREATE TABLE audit_trail; SHOW CREATE TABLE ledger; SHOW CREATE TABLE panel_notes;
SELECT COUNT(*), SUM(note LIKE 'stamped %') FROM ledger;
SHOW CREATE VIEW vault_entries;
SHOW CREATE TRIGGER ledger_stamp;
SHOW CREATE VIEW vault_labels;
SHOW CREATE TRIGGER vault_audit;
SHOW CREATE PROCEDURE vault_add;
SHOW CREATE FUNCTION vault_total;
SHOW CREATE EVENT vault_sweep;
SELECT vault_total();
"""

CLEAN = """
DROP EVENT IF EXISTS vault_sweep; DROP FUNCTION IF EXISTS vault_total; DROP PROCEDURE IF EXISTS vault_add;
DROP TRIGGER IF EXISTS vault_audit; DROP TRIGGER IF EXISTS ledger_stamp; DROP VIEW IF EXISTS vault_entries;
DROP VIEW IF EXISTS vault_labels; DROP TABLE IF EXISTS ledger, vault, audit_trail;
"""
LOSE = CLEAN + "DELETE FROM panel_notes;"


def as_root(info, sql: str, database: str = "fikaso_store"):
    inner = ("mysql --defaults-extra-file=<(printf '[client]\\nuser=root\\npassword=%s\\n' "
             "\"$(cat /run/secrets/mysql_root_password)\") -N " + database)
    return ssh(info, "cd /srv/fikaso/stack && printf '%s' " + shlex.quote(sql) +
               " | docker compose exec -T mysql bash -c " + shlex.quote(inner))


def describe(info) -> str:
    result = as_root(info, DESCRIBE)
    assert result.returncode == 0, result.stderr
    # A restored trigger has a new creation time; everything else must be the same.
    return re.sub(r"\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$", "", result.stdout, flags=re.M)


def test_tables_views_triggers_routines_and_events_come_back_identical(deployed):
    assert as_root(deployed, CLEAN).returncode == 0  # a re-run starts from the same state
    created = as_root(deployed, OBJECTS)
    assert created.returncode == 0, created.stderr
    before = describe(deployed)
    assert "vault_labels" in before and "vault_total" in before
    made = fab("backup.now", "--database=fikaso_store")
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.split("backup ", 1)[1].split()[0]
    assert as_root(deployed, LOSE).returncode == 0
    assert describe_fails(deployed)
    restored = fab("backup.restore", f"--id={backup_id}", "--database=fikaso_store", "--yes")
    said = restored.stdout + restored.stderr
    assert restored.returncode == 0, said
    assert describe(deployed) == before
    assert re.search(r"the panels were in maintenance for \d+\.\d s", said), said
    # The safety backup holds what the restore replaces, the database, and not the panels' storage.
    safety = re.search(r"safety backup (\d{8}T\d{6}Z) taken", said).group(1)
    files = ssh(deployed, f"cd /srv/fikaso/backups/{safety} && ls *.zst").stdout.split()
    assert files == ["fikaso_store.sql.zst"], files
    assert as_root(deployed, CLEAN).returncode == 0


def describe_fails(info) -> bool:
    return as_root(info, DESCRIBE).returncode != 0


SCRIPT = "/srv/fikaso/stack/bin/fikaso-backup"
PENDING = "/srv/fikaso/state/restore.pending"
BACKGROUND = ("docker ps --filter status=running --format '{{.Label \"com.docker.compose.service\"}}' "
              "| grep -cE '^store_(worker|scheduler)$'")


def backed_up(info) -> tuple[str, str]:
    """The objects created afresh, described, backed up, then lost: the backup's id and the description."""
    assert as_root(info, CLEAN).returncode == 0
    created = as_root(info, OBJECTS)
    assert created.returncode == 0, created.stderr
    before = describe(info)
    made = fab("backup.now", "--database=fikaso_store")
    assert made.returncode == 0, made.stderr
    assert as_root(info, LOSE).returncode == 0
    return made.stdout.split("backup ", 1)[1].split()[0], before


def go_back_if_unfinished(info) -> None:
    """After a failed test: restore the safety backup of any restore left unfinished, so that the next
    tests can back up that database again."""
    pending = ssh(info, f"cat {PENDING} 2>/dev/null").stdout
    for line in pending.splitlines():
        database, _backup, safety, _since = line.split("\t")
        fab("backup.restore", f"--id={safety}", f"--database={database}", "--yes")


def background_starts(info) -> list[str]:
    """When each of the store's queue workers and its scheduler started (the test setup runs 2 and 1)."""
    result = ssh(info, "docker inspect -f '{{.State.StartedAt}}' $(docker ps -q --filter status=running "
                       "--filter label=com.docker.compose.service=store_worker; docker ps -q --filter status=running "
                       "--filter label=com.docker.compose.service=store_scheduler)")
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def test_many_chunks_by_three_loaders_come_back_identical_and_workers_never_run_while_they_load(deployed):
    backup_id, before = backed_up(deployed)
    started = background_starts(deployed)
    assert len(started) == 3
    # Small chunks, so that the ledger's rows are shared out; every ~50 ms, while the restore is
    # marked as under way (before and after the count), how many of the store's workers and schedulers run.
    run = ssh(deployed, f"out=$(mktemp); FIKASO_RESTORE_CHUNK_BYTES=65536 FIKASO_RESTORE_LOADERS=3 {SCRIPT} restore "
                        f"{backup_id} fikaso_store >$out 2>&1 & pid=$!\n"
                        f"while kill -0 $pid 2>/dev/null; do if [ -e {PENDING} ]; then n=$({BACKGROUND}); "
                        f"[ ! -e {PENDING} ] || echo \"running $n\"; fi; "
                        "sleep 0.05; done\nwait $pid; echo \"status $?\"; cat $out; rm -f $out", timeout=600)
    assert "status 0" in run.stdout, run.stdout + run.stderr
    samples = re.findall(r"^running (\d+)$", run.stdout, re.M)
    assert samples and set(samples) == {"0"}, run.stdout
    assert "stopping store_scheduler store_worker until the restore is done" in run.stdout, run.stdout
    chunks = int(re.search(r"prepared fikaso_store in [\d.]+ s: (\d+) chunk", run.stdout).group(1))
    assert chunks > 3 and "3 loader(s)" in run.stdout, run.stdout
    assert describe(deployed) == before
    # Started again: the same services, in new runs.
    after = background_starts(deployed)
    assert len(after) == 3 and not set(after) & set(started), (started, after)
    assert ssh(deployed, f"test ! -e {PENDING}").returncode == 0
    assert as_root(deployed, CLEAN).returncode == 0


def test_an_interrupted_restore_is_reported_until_a_restore_finishes_it(deployed):
    backup_id, before = backed_up(deployed)
    # Killed outright (kill -9: no clean-up runs) once a loader runs.
    killed = ssh(deployed, f"FIKASO_RESTORE_CHUNK_BYTES=65536 FIKASO_RESTORE_LOADERS=2 {SCRIPT} restore {backup_id} "
                           "fikaso_store >/dev/null 2>&1 & pid=$!\n"
                           "until docker ps -q --filter label=fikaso.restore-loader=yes | grep -q .; do "
                           "kill -0 $pid || { echo 'restore ended before a loader was seen'; exit 1; }; sleep 0.05; done\n"
                           f"kill -9 $pid; cat {PENDING}", timeout=600)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    database, restoring, safety, _since = killed.stdout.split("\t")
    try:
        assert (database, restoring) == ("fikaso_store", backup_id)
        # No backup of a half-restored database: it would look like a good one.
        refused = fab("backup.now", "--database=fikaso_store")
        assert refused.returncode != 0
        assert f"the restore of fikaso_store from backup {backup_id}" in refused.stdout + refused.stderr
        assert f"fab backup.restore --id={safety} --database=fikaso_store" in refused.stdout + refused.stderr
        again = fab("backup.restore", f"--id={backup_id}", "--database=fikaso_store", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"safety backup {safety} kept for fikaso_store" in again.stdout, again.stdout
        assert describe(deployed) == before
        # What the killed run stopped runs again, and its safety backup is still there to go back to.
        assert ssh(deployed, BACKGROUND).stdout.strip() == "3"
        assert safety in fab("backup.list").stdout
        assert ssh(deployed, f"test ! -e {PENDING}").returncode == 0
        assert as_root(deployed, CLEAN).returncode == 0
    finally:
        go_back_if_unfinished(deployed)


def test_a_restore_that_fails_half_way_loses_nothing_and_keeps_its_panel_closed_until_one_finishes(deployed):
    backup_id, _ = backed_up(deployed)
    restored = fab("backup.restore", f"--id={backup_id}", "--database=fikaso_store", "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    before = describe(deployed)
    # A backup whose ledger rows hold one row twice: the restore fails while its loaders run.
    broken = "20991231T000000Z"
    made = ssh(deployed, f"cd /srv/fikaso/backups && rm -rf {broken} && mkdir -m 700 {broken} && "
                         f"cp {backup_id}/manifest {broken}/ && zstd -q -dc {backup_id}/fikaso_store.sql.zst | "
                         f"sed '/^INSERT INTO `ledger` VALUES$/{{n;p}}' | zstd -q -o {broken}/fikaso_store.sql.zst && "
                         f"cd {broken} && sha256sum fikaso_store.sql.zst >SHA256SUMS")
    assert made.returncode == 0, made.stderr
    try:
        failed = fab("backup.restore", f"--id={broken}", "--database=fikaso_store", "--yes")
        said = failed.stdout + failed.stderr
        assert failed.returncode != 0 and "failed half-way" in said, said
        safety = re.search(r"fab backup.restore --id=(\d{8}T\d{6}Z) --database=fikaso_store", said).group(1)
        assert "the store panel stays in maintenance" in said, said
        # Nobody sees or writes into the half-loaded database; the other panels serve.
        assert curl(deployed, "store.fikaso.test")[0] == 503
        assert curl(deployed, "admin.fikaso.test")[0] == 200
        assert ssh(deployed, BACKGROUND).stdout.strip() == "0"
        assert ssh(deployed, f"test -e {PENDING}").returncode == 0
        live = ssh(deployed, "readlink /srv/fikaso/panels/store/current").stdout
        refused = fab("deploy", "--panel=store")
        assert refused.returncode == 1 and f"--id={safety} --database=fikaso_store`, then deploy again" in refused.stderr
        assert ssh(deployed, "readlink /srv/fikaso/panels/store/current").stdout == live
        set_up = fab("setup")
        assert set_up.returncode == 0 and "store_scheduler, store_worker stay stopped" in set_up.stdout, set_up.stdout
        assert ssh(deployed, BACKGROUND).stdout.strip() == "0"
        assert "fikaso_store: a restore did not finish" in fab("status").stdout
        checked = fab("doctor")
        assert (f"the restore of fikaso_store from backup {broken}" in checked.stdout
                and f"`fab backup.restore --id={safety} --database=fikaso_store`" in checked.stdout), checked.stdout
        back = fab("backup.restore", f"--id={safety}", "--database=fikaso_store", "--yes")
        assert back.returncode == 0, back.stdout + back.stderr
        assert describe(deployed) == before
        assert ssh(deployed, f"test ! -e {PENDING}").returncode == 0
        assert curl(deployed, "store.fikaso.test")[0] == 200
        assert ssh(deployed, BACKGROUND).stdout.strip() == "3"
    finally:
        go_back_if_unfinished(deployed)
        ssh(deployed, f"rm -rf /srv/fikaso/backups/{broken}")
    assert as_root(deployed, CLEAN).returncode == 0
