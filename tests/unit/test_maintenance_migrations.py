"""A deploy of a panel with migrate_in_maintenance: its order of actions, its plan (exactly its run),
and its failure paths (the previous release live, in maintenance, and the way out named), on a
stand-in server."""
import io
import re
import subprocess

import pytest

from fikaso import records
from fikaso.commands import php_image, release
from fikaso.config import load_settings
from fikaso.errors import FikasoError
from fikaso.plan import FACT_HEADER
from fikaso.remote import Result
from fikaso.runner import Runner
from fikaso.steps import deploy

from .helpers import ROOT, FactServer, shipped_section
from .test_plan import _shellcheck

ACTOR = records.Actor("ana", "laptop", 1)
RELEASE = "20261125031700"
SNAPSHOT = "20261125T031700Z"


def settings(in_maintenance: bool = True, **top):
    section = shipped_section()
    section["panels"]["store"]["migrate_in_maintenance"] = in_maintenance
    section.update(top)
    return load_settings(section, root=ROOT)


def server_facts(settings, down: str = "") -> dict[str, str]:
    """A deployed store on the image this deploy builds (no image move), with one migration pending."""
    tag = php_image.tag(settings, "1000")
    return {"site": f"stack=yes\nlive=20261124000000\nrelease=20261120000000\nrelease=20261124000000\nimage={tag}\n"
                    f"uid=1000\nlog={{\"id\": \"20261124000000\", \"result\": \"ok\", \"image\": \"{tag}\"}}",
            "migrations": "ran=2014_10_12_000000_create_users_table",
            "maintenance": down}


class Server(FactServer):
    """Answers facts from a table; the first action whose script holds `fail_on` gets `failure`."""

    def __init__(self, facts, fail_on: str | None = None, failure: Result | None = None):
        super().__init__(facts)
        self.fail_on, self.failure, self.labels = fail_on, failure, []

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        result = super().run(script, label=label, stdin=stdin, check=check, echo=echo)
        if not script.startswith(f"echo '{FACT_HEADER} "):
            self.labels.append(label)
        if self.fail_on and self.fail_on in script.split(f"echo '{FACT_HEADER} ")[0]:
            self.fail_on = None
            return self.failure
        return result


def make_run(settings):
    return deploy.SiteRun(settings=settings, site=settings.panel("store"), actor=ACTOR, action="deploy",
                          release_id=RELEASE, commit="abc", started=0.0)


def deploy_on(server, settings, plan=False):
    out = io.StringIO()
    run = make_run(settings)
    runner = Runner.on(server, plan=plan, out=out)
    try:
        runner.steps("deploy store", deploy.deploy_steps(run), run, deploy.deploy_cleanup)
    finally:
        server.out = out.getvalue()
    return runner


def first(scripts: list[str], text: str) -> int:
    found = [number for number, script in enumerate(scripts) if text in script]
    assert found, f"no script holds {text!r}"
    return found[0]


@pytest.fixture(autouse=True)
def frozen_clock(mocker):
    mocker.patch.object(records, "now_iso", return_value="2026-11-25T03:17:00Z")
    mocker.patch.object(deploy.time, "monotonic", return_value=100.0)


def test_a_panel_with_the_setting_migrates_between_down_and_the_switch_and_comes_up_after_its_checks():
    chosen = settings()
    server = Server(server_facts(chosen))
    deploy_on(server, chosen)
    scripts = server.actions
    install = scripts[first(scripts, "composer install")]
    assert "php artisan migrate" not in install          # migrations wait for maintenance
    order = [first(scripts, text) for text in (
        "FIKASO_BACKUP_ID=" + SNAPSHOT,                   # the snapshot, while the old release serves
        "composer install",
        "store_panel php artisan down",                   # down, in the live release
        "sh -c 'php artisan migrate --force'",            # then the migrations
        "mv -T /srv/fikaso/panels/store/current.next",    # the switch, its checks passing maintenance
        "php artisan queue:restart",                      # workers start again on the new release...
        "store_panel php artisan up",                     # ...before it opens to visitors
        ">> /srv/fikaso/state/store.releases.jsonl")]
    assert order == sorted(order) and len(set(order)) == len(order), order
    assert [line.split("]")[1].split()[0] for line in server.out.splitlines() if line.startswith("[")] == \
        ["lock", "upload", "image", "snapshot", "install", "down", "migrate", "switch", "up", "finish"]
    switch = scripts[first(scripts, "current.next")]
    assert switch.count("curl -K -") == 4 and "wget" not in switch   # both checks pass maintenance


def test_a_panel_without_the_setting_deploys_as_before():
    plain = settings(in_maintenance=False)
    run = make_run(plain)
    assert deploy.deploy_steps(run) is deploy.DEPLOY_STEPS
    server = Server(server_facts(plain))
    deploy_on(server, plain)
    scripts = "\n".join(server.actions)
    assert "artisan down" not in scripts and "artisan up" not in scripts and "curl -K" not in scripts
    assert "&& php artisan migrate --force &&" in scripts[scripts.index("composer install") - 400:]


def test_the_plan_is_exactly_the_run_and_passes_shellcheck(tmp_path):
    chosen = settings()
    run_server, plan_server = Server(server_facts(chosen)), Server(server_facts(chosen))
    deploy_on(run_server, chosen)
    runner = deploy_on(plan_server, chosen, plan=True)
    printed = runner.hosts[0].executor.scripts
    assert printed == run_server.actions
    assert "[ 6/10] down" in plan_server.out and "[ 9/10] up" in plan_server.out
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make test installs it)")
    for number, script in enumerate(printed):
        path = tmp_path / f"{number}.sh"
        path.write_text("#!/bin/bash\nset -euo pipefail\n" + script + "\n")
        checked = subprocess.run([shellcheck, "--severity=warning", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
    probe = tmp_path / "probe.sh"
    probe.write_text(release.BYPASS_PROBE)
    checked = subprocess.run([shellcheck, "--shell=sh", str(probe)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def after_failure(server) -> list[str]:
    return server.actions[first(server.actions, ">> /srv/fikaso/state/store.releases.jsonl"):]


def test_failed_migrations_leave_the_old_release_live_in_maintenance_and_name_the_way_out():
    chosen = settings()
    server = Server(server_facts(chosen), fail_on="php artisan migrate --force",
                    failure=Result("Migrating: 2026_11_25_000000_rename_prices\n",
                                   "SQLSTATE[42S22]: Column not found: 1054 Unknown column 'price'", 1))
    with pytest.raises(FikasoError) as raised:
        deploy_on(server, chosen)
    message = str(raised.value)
    assert "Column not found" in message and "Release 20261124000000 is live" in message
    assert "store stays in maintenance" in message
    assert f"`fab backup.restore --id={SNAPSHOT} --database=fikaso_store`" in message
    assert message.index("fab backup.restore") < message.index("`fab maintenance.off --panel=store`")
    assert not any("current.next" in script for script in server.actions)     # never switched
    cleanup = "\n".join(after_failure(server))
    assert "artisan up" not in cleanup and "backup restore" not in cleanup     # it stays in maintenance
    assert f"rm -rf /srv/fikaso/panels/store/releases/{RELEASE}" in cleanup and '"result": "failed"' in cleanup
    assert cleanup.rstrip().endswith("rm -rf /srv/fikaso/state/locks/store")


def test_with_restore_on_failed_migrations_the_snapshot_is_restored_and_the_message_says_so():
    chosen = settings(restore_snapshot_on_failed_migrations=True)
    server = Server(server_facts(chosen), fail_on="php artisan migrate --force",
                    failure=Result("Migrating: 2026_11_25_000000_rename_prices\n", "SQLSTATE: boom", 1))
    with pytest.raises(FikasoError, match=f"(?s)put back from the snapshot {SNAPSHOT}.*opened store to visitors again"):
        deploy_on(server, chosen)
    assert any(f"fikaso-backup restore {SNAPSHOT} fikaso_store" in script for script in server.actions)


def test_a_failed_health_check_in_maintenance_switches_back_and_stays_down():
    chosen = settings()
    server = Server(server_facts(chosen), fail_on="current.next",
                    failure=Result("", "failed after the switch: switched back", release.UNHEALTHY))
    with pytest.raises(FikasoError) as raised:
        deploy_on(server, chosen)
    message = str(raised.value)
    assert "failed its health check" in message and "20261124000000 stays live" in message
    assert "store stays in maintenance" in message and "migrations, which 20261124000000 may not work with" in message
    assert f"fab backup.restore --id={SNAPSHOT}" in message and "fab maintenance.off --panel=store" in message
    switch = server.actions[first(server.actions, "current.next")]
    back = switch[switch.rindex("failed after the switch") - 400:]
    assert "releases/20261124000000" in back                                   # the activation switches back
    assert "artisan up" not in "\n".join(after_failure(server))


def test_a_panel_a_person_put_in_maintenance_stays_in_it():
    chosen = settings()
    server = Server(server_facts(chosen, down="down=yes"))
    deploy_on(server, chosen)
    scripts = "\n".join(server.actions)
    assert "php artisan down" in scripts and "php artisan up" not in scripts
    assert '"fikaso_deploy"' not in scripts     # its maintenance stays a person's
    assert "was in maintenance already" in server.out and "fab maintenance.off --panel=store" in server.out


def test_the_maintenance_a_failed_deploy_left_ends_with_the_next_deploy():
    chosen = settings()
    server = Server(server_facts(chosen, down="down=yes\ndeploy=yes"))
    deploy_on(server, chosen)
    down = server.actions[first(server.actions, "php artisan down")]
    assert '$d["fikaso_deploy"] = true' in down
    assert "store_panel php artisan up" in "\n".join(server.actions)


def test_up_that_fails_says_so_and_records_the_live_release_as_deployed():
    chosen = settings()
    server = Server(server_facts(chosen), fail_on="store_panel php artisan up",
                    failure=Result("", "Application is not writable", 1))
    with pytest.raises(FikasoError, match="(?s)is live and answered its health check, but `php artisan up` failed.*"
                                          "Run `fab maintenance.off --panel=store`"):
        deploy_on(server, chosen)
    record = server.actions[-1]
    assert '"result": "ok"' in record and f'"id": "{RELEASE}"' in record
    assert f"releases/{RELEASE}" not in re.sub(r"\{.*\}", "", record.split("printf")[0])   # not removed


def test_migrations_that_fail_before_any_ran_leave_the_database_as_it_was_and_name_maintenance_off():
    chosen = settings()
    server = Server(server_facts(chosen), fail_on="php artisan migrate --force",
                    failure=Result("", "SQLSTATE[HY000] [2002] Connection refused", 1))
    with pytest.raises(FikasoError) as raised:
        deploy_on(server, chosen)
    message = str(raised.value)
    assert "failed before any of them ran" in message and "fikaso_store is as it was" in message
    assert "`fab maintenance.off --panel=store`" in message and "fab backup.restore" not in message


@pytest.mark.parametrize("in_maintenance", [True, False])
def test_laravel_9_and_later_migration_output_is_known_as_migrations_under_way(in_maintenance):
    chosen = settings(in_maintenance=in_maintenance)
    laravel_11 = Result("\n   INFO  Running migrations.\n\n  2026_11_25_000000_rename_prices ........ FAIL\n",
                        "SQLSTATE[42S22]: Column not found", 1)
    server = Server(server_facts(chosen), fail_on="php artisan migrate --force", failure=laravel_11)
    with pytest.raises(FikasoError) as raised:
        deploy_on(server, chosen)
    assert "may now be half-migrated" in str(raised.value)
    assert f"--id={SNAPSHOT} --database=fikaso_store" in str(raised.value)


UNFINISHED = "unfinished=fikaso_store\t20261120T031700Z\t20261125T020000Z\t2026-11-25T02:00:05Z"


@pytest.mark.parametrize("in_maintenance", [True, False])
def test_a_deploy_onto_a_half_loaded_database_stops_before_it_installs_and_names_both_ways_out(in_maintenance):
    chosen = settings(in_maintenance=in_maintenance)
    server = Server({**server_facts(chosen), "unfinished_restores": UNFINISHED})
    with pytest.raises(FikasoError) as refused:
        deploy_on(server, chosen)
    assert "the restore of fikaso_store from backup 20261120T031700Z" in str(refused.value)
    assert "`fab backup.restore --id=20261125T020000Z --database=fikaso_store`, then deploy again" in str(refused.value)
    scripts = "\n".join(server.actions)
    assert "composer install" not in scripts and "FIKASO_BACKUP_ID" not in scripts and "artisan" not in scripts
    assert f"rm -rf /srv/fikaso/panels/store/releases/{RELEASE} " in server.actions[-1]   # the upload goes
