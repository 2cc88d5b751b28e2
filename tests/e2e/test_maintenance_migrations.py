"""A panel whose migrations are not backward compatible (migrate_in_maintenance): its deploy runs them
in maintenance, so visitors get the 503 maintenance page, never an error, and then the new release;
a migration that fails leaves the old release live in maintenance, with the way out named."""
import re
import time

import pytest

from . import apps
from .helpers import curl, fab, fab_timed
from .load import MAINTENANCE_PAGE, StrictLoad, figure
from .test_deploy import STORE, live, lock_held, version
from .test_snapshot import FAIL, database_state

pytestmark = pytest.mark.e2e

SETTING = "fikaso:\n  panels:\n    store:\n      migrate_in_maintenance: true\n"
# Not backward compatible: the old release reads panel_notes.body, which this renames.
RENAME = "Illuminate\\Support\\Facades\\DB::statement('ALTER TABLE panel_notes RENAME COLUMN body TO content');"


def adding(column: str) -> str:
    """A migration body that adds `column` to panel_notes (whichever release's schema it has)."""
    return ("Illuminate\\Support\\Facades\\Schema::table('panel_notes', function ($table) {\n"
            f"            $table->string('{column}')->nullable();\n        }});")


def step_done(name: str) -> str:
    return rf"^\[ *\d+/\d+\] {name} +changed"


def deploy_maintained(info, source, **kwargs):
    return fab_timed("-f", str(info["setting"]), "deploy", "--panel=store", f"--source={source}", **kwargs)


def reading_content(app):
    """The release that reads the renamed column."""
    controller = app / apps.CONTROLLER
    controller.write_text(controller.read_text().replace("->value('body')", "->value('content')"))
    return app


@pytest.fixture(scope="module")
def maintained(deployed, tmp_path_factory):
    """store deployed with the setting (given in a config file read over fabric.yaml); afterwards store
    out of maintenance, back on that release and its database as it was, for the tests after these."""
    folder = tmp_path_factory.mktemp("maintained")
    setting = folder / "maintained.yaml"
    setting.write_text(SETTING)
    info = {**deployed, "setting": setting, "folder": folder}
    result, _, _, _ = deploy_maintained(info, apps.variant(folder, "mm1"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ 6/10] down" in result.stdout and "[ 9/10] up" in result.stdout, result.stdout
    base, schema = live(deployed), database_state(deployed)
    assert version(curl(deployed, STORE, "/")[1]) == "mm1"
    yield {**info, "base": base}
    assert fab("maintenance.off", "--panel=store").returncode == 0
    if live(deployed) != base:
        rolled = fab("rollback", "--panel=store", f"--release={base}", "--with-database", "--yes")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert database_state(deployed) == schema and version(curl(deployed, STORE, "/")[1]) == "mm1"


def test_an_incompatible_migration_runs_in_maintenance_and_visitors_get_the_503_page_not_errors(maintained):
    renamed = reading_content(apps.with_migration(apps.variant(maintained["folder"], "mm2"),
                                                  "2040_01_01_000000_rename_body_to_content", RENAME))
    with StrictLoad(maintained, STORE, maintenance_ok=True) as load:
        result, start, end, marks = deploy_maintained(maintained, renamed, marks={
            step: step_done(step) for step in ("install", "down", "switch", "up")})
        assert result.returncode == 0, result.stdout + result.stderr
        load.settle(end)
        print(load.check(start, end, switched=marks["up"], new="mm2", old={"mm1"},
                         name="a deploy whose migrations run in maintenance"))
    window = load.during(start, end)
    down = [r for r in window if r.status == 503]
    # Visitors got the maintenance page while it migrated, and only then...
    assert down, "no request saw the maintenance page"
    assert all(marks["install"] <= r.ended and r.started <= marks["up"] for r in down)
    # ...the old release before it, the new one after it, never an error (load.check: none failed).
    assert all(r.version == "mm1" for r in window if r.page and r.ended < marks["install"])
    assert not [r for r in load.requests if r.started > marks["up"] and r.status != 200]
    print(figure(f"maintenance page during that deploy: {len(down)} of {len(window)} requests, for "
                 f"{max(r.ended for r in down) - min(r.started for r in down):.1f} s"))
    code, body = curl(maintained, STORE, "/")
    assert code == 200 and version(body) == "mm2", body
    assert "`content`" in database_state(maintained) and not lock_held(maintained)


def test_a_failing_migration_leaves_the_old_release_live_in_maintenance_and_names_the_way_out(maintained):
    before, schema = live(maintained), database_state(maintained)
    served = version(curl(maintained, STORE, "/")[1])
    column = f"m{int(time.time())}"          # its own column and migration, whatever earlier runs left
    failing = apps.with_migration(apps.variant(maintained["folder"], "mm-broken"),
                                  f"2041_01_01_000000_add_{column}_half_way", adding(column) + FAIL)
    failed, _, _, _ = deploy_maintained(maintained, failing)
    assert failed.returncode == 1
    message = failed.stderr
    assert "the second half of this migration failed" in message and f"Release {before} is live" in message
    assert "store stays in maintenance" in message, message
    restore = re.search(r"`(fab backup\.restore --id=\d{8}T\d{6}Z --database=fikaso_store)`", message)
    assert restore and "`fab maintenance.off --panel=store`" in message, message
    # The old release is live, in maintenance: visitors get the 503 page, not an error or the new code.
    assert live(maintained) == before and not lock_held(maintained)
    code, body = curl(maintained, STORE, "/")
    assert code == 503 and MAINTENANCE_PAGE in body, body
    assert f"`{column}`" in database_state(maintained)            # MySQL kept what the migration did
    # The way out, as the message names it.
    restored = fab(*restore.group(1).split()[1:], "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert fab("maintenance.off", "--panel=store").returncode == 0
    assert database_state(maintained) == schema
    code, body = curl(maintained, STORE, "/")
    assert code == 200 and version(body) == served, body
