"""A deploy that migrates backs the database up first; rollback --with-database undoes it all."""
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
