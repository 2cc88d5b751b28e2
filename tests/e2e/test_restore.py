"""A database with every kind of object survives backup, loss and restore exactly."""
import re
import shlex

import pytest

from .helpers import fab, ssh

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
"""

DESCRIBE = """
CHECKSUM TABLE vault, audit_trail, panel_notes;
SHOW CREATE VIEW vault_labels;
SHOW CREATE TRIGGER vault_audit;
SHOW CREATE PROCEDURE vault_add;
SHOW CREATE FUNCTION vault_total;
SHOW CREATE EVENT vault_sweep;
SELECT vault_total();
"""

CLEAN = """
DROP EVENT IF EXISTS vault_sweep; DROP FUNCTION IF EXISTS vault_total; DROP PROCEDURE IF EXISTS vault_add;
DROP TRIGGER IF EXISTS vault_audit; DROP VIEW IF EXISTS vault_labels; DROP TABLE IF EXISTS vault, audit_trail;
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
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert describe(deployed) == before
    assert as_root(deployed, CLEAN).returncode == 0


def describe_fails(info) -> bool:
    return as_root(info, DESCRIBE).returncode != 0
