"""A deploy that migrates backs the database up first; rollback --with-database undoes it all."""
import re
import time

import pytest

from . import apps
from .helpers import curl, fab
from .test_deploy import STORE, deploy_store, version
from .test_restore import as_root

pytestmark = pytest.mark.e2e

ADD_COLOUR = """Illuminate\\Support\\Facades\\Schema::table('panel_notes', function ($table) {
            $table->string('colour')->default('teal');
        });
        Illuminate\\Support\\Facades\\DB::table('panel_notes')->insert(['body' => 'added by a migration']);"""

STATE = "SHOW CREATE TABLE panel_notes; CHECKSUM TABLE panel_notes; SELECT migration FROM migrations ORDER BY id;"


def database_state(info) -> str:
    result = as_root(info, STATE)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rollback_with_database_returns_schema_and_data_to_before_the_deploy(deployed, tmp_path):
    base = apps.variant(tmp_path, "before")
    assert deploy_store(base).returncode == 0
    before = database_state(deployed)
    migrating = apps.with_migration(apps.variant(tmp_path, "after"), "2031_01_01_000000_add_colour_to_notes",
                                    ADD_COLOUR)
    result = deploy_store(migrating)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backed up as" in result.stdout and "before 1 pending migration(s)" in result.stdout
    changed = database_state(deployed)
    assert "`colour`" in changed and changed != before
    assert version(curl(deployed, STORE, "/")[1]) == "after"
    rolled = fab("rollback", "--panel=store", "--with-database", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "restored from" in rolled.stdout
    assert database_state(deployed) == before
    assert version(curl(deployed, STORE, "/")[1]) == "before"


def test_rollback_with_database_without_a_snapshot_says_what_to_do(deployed, tmp_path):
    assert deploy_store(apps.variant(tmp_path, "plain")).returncode == 0
    result = fab("rollback", "--panel=store", "--with-database", "--yes")
    assert result.returncode == 1
    assert "recorded no pre-deploy database snapshot" in result.stderr and "fab backup.restore" in result.stderr


FAIL = """
        throw new RuntimeException('the second half of this migration failed');"""


def adding(column: str) -> str:
    """A migration body that adds `column` to panel_notes (and a row)."""
    return ADD_COLOUR.replace("colour", column)


def deploy_with(source, env=None):
    return fab("deploy", "--panel=store", env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source), **(env or {})})


def put_back(info, before: str) -> None:
    """Shared state back as the test found it: the snapshot of the last deploy restored, its code left."""
    rolled = fab("rollback", "--panel=store", "--with-database", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert database_state(info) == before


def test_a_migration_that_fails_half_way_names_the_way_back_and_the_next_deploy_works(deployed, tmp_path):
    assert deploy_store(apps.variant(tmp_path, "steady")).returncode == 0
    before = database_state(deployed)
    column = f"c{int(time.time())}"      # its own column and migration, whatever earlier runs left
    name = f"2032_01_01_000000_add_{column}_half_way"
    failed = deploy_with(apps.with_migration(apps.variant(tmp_path, "half"), name, adding(column) + FAIL))
    assert failed.returncode == 1
    assert "may now be half-migrated" in failed.stderr and "the second half of this migration failed" in failed.stderr
    command = re.search(r"`(fab backup\.restore --id=\d{8}T\d{6}Z --database=fikaso_store)`", failed.stderr)
    assert command, failed.stderr
    assert "discards every change to fikaso_store since" in failed.stderr
    assert f"`{column}`" in database_state(deployed)           # MySQL kept what the migration did
    assert version(curl(deployed, STORE, "/")[1]) == "steady"
    restored = fab(*command.group(1).split()[1:], "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert database_state(deployed) == before
    fixed = deploy_with(apps.with_migration(apps.variant(tmp_path, "fixed"), name, adding(column)))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert version(curl(deployed, STORE, "/")[1]) == "fixed"
    put_back(deployed, before)


def test_with_the_setting_a_failed_migration_is_undone_at_once(deployed, tmp_path):
    assert deploy_store(apps.variant(tmp_path, "steady")).returncode == 0
    before = database_state(deployed)
    column = f"s{int(time.time())}"
    name = f"2033_01_01_000000_add_{column}_half_way"
    failed = deploy_with(apps.with_migration(apps.variant(tmp_path, "half"), name, adding(column) + FAIL),
                         {"FABRIC_FIKASO_RESTORE_SNAPSHOT_ON_FAILED_MIGRATIONS": "true"})
    assert failed.returncode == 1
    assert "It was put back from the snapshot" in failed.stderr, failed.stderr
    assert database_state(deployed) == before
    assert version(curl(deployed, STORE, "/")[1]) == "steady"
    fixed = deploy_with(apps.with_migration(apps.variant(tmp_path, "fixed"), name, adding(column)))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    put_back(deployed, before)
