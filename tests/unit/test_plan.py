"""Every plan is exactly its run: the same facts give the same scripts, printed or executed. And
every script a plan prints passes shellcheck."""
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from fikaso import records
from fikaso.commands import php_image
from fikaso.config import load_settings
from fikaso.runner import Runner
from fikaso.secrets import Secrets
from fikaso.steps import deploy, setup

from .helpers import ROOT, FactServer, shipped_section, swarm_section

SETTINGS = load_settings(shipped_section(), root=ROOT)
ACTOR = records.Actor("ana", "laptop", 1)
TAG = php_image.tag(SETTINGS, "1000")

FRESH_SERVER = {
    "stack": "user=deploy\nuid=1000\nhome=/home/deploy\ndocker=20.10.24\ncompose=2.29.0\nbase=missing\n"
             "parent_writable=yes\nsudo=no\nfolders_missing=yes",
    "database_logins": "logins=no",
}
DEPLOYED_SITE = {
    "site": "stack=yes\nlive=20261124000000\nrelease=20261120000000\nrelease=20261124000000\nimage=fikaso/php:old\n"
            "uid=1000\nlog={\"id\": \"20261124000000\", \"result\": \"ok\", \"image\": \"fikaso/php:old\"}",
    "migrations": "ran=2014_10_12_000000_create_users_table",
}


@pytest.fixture(autouse=True)
def frozen_clock(mocker):
    mocker.patch.object(records, "now_iso", return_value="2026-11-25T03:17:00Z")
    mocker.patch.object(deploy.time, "monotonic", return_value=100.0)


def both(steps, make_context, facts, cleanup=None) -> tuple[list[str], list[str]]:
    """The scripts a run executes, and the scripts its plan prints, from the same facts."""
    server = FactServer(facts)
    Runner.on(server, out=io.StringIO()).steps("run", steps, make_context(), cleanup)
    planning = Runner.on(FactServer(facts), plan=True, out=io.StringIO())
    planning.steps("plan", steps, make_context(), cleanup)
    return server.actions, planning.hosts[0].executor.scripts


def secrets() -> Secrets:
    return Secrets("root-password-000000", {p: f"{p}-password-00000000" for p in ("admin", "store", "website")},
                   {p: b"APP_KEY=base64:x\n" for p in ("admin", "store", "website")})


def test_the_plan_of_setup_on_a_fresh_server_is_exactly_its_run():
    run, plan = both(setup.setup_steps(SETTINGS),
                     lambda: setup.SetupRun(settings=SETTINGS, secrets=secrets(), actor=ACTOR,
                                            release_id="20261125031700"), FRESH_SERVER)
    assert run == plan
    assert len(run) > 20 and any("docker compose up" in script for script in run)


def test_the_plan_of_a_deploy_that_moves_to_a_new_php_image_is_exactly_its_run():
    site = SETTINGS.panel("store")
    run, plan = both(deploy.DEPLOY_STEPS,
                     lambda: deploy.SiteRun(settings=SETTINGS, site=site, actor=ACTOR, action="deploy",
                                            release_id="20261125031700", commit="abc", started=0.0),
                     DEPLOYED_SITE, deploy.deploy_cleanup)
    assert run == plan
    joined = "\n".join(run)
    assert TAG in joined and "FIKASO_BACKUP_ID=20261125T031700Z" in joined
    assert '"snapshot": "20261125T031700Z"' in joined


def test_the_plan_of_a_rollback_is_exactly_its_run():
    site = SETTINGS.panel("store")
    run, plan = both(deploy.ROLLBACK_STEPS,
                     lambda: deploy.SiteRun(settings=SETTINGS, site=site, actor=ACTOR, action="rollback",
                                            started=0.0),
                     DEPLOYED_SITE, deploy.rollback_cleanup)
    assert run == plan and "releases/20261120000000" in "\n".join(run)


def _shellcheck() -> str | None:
    found = shutil.which("shellcheck")
    venv = Path(ROOT / ".venv" / "bin" / "shellcheck")
    return found or (str(venv) if venv.exists() else None)


def test_every_script_a_plan_prints_passes_shellcheck(tmp_path):
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make test installs it)")
    site = SETTINGS.panel("store")
    _, setup_plan = both(setup.setup_steps(SETTINGS),
                         lambda: setup.SetupRun(settings=SETTINGS, secrets=secrets(), actor=ACTOR), FRESH_SERVER)
    _, deploy_plan = both(deploy.DEPLOY_STEPS,
                          lambda: deploy.SiteRun(settings=SETTINGS, site=site, actor=ACTOR, action="deploy"),
                          DEPLOYED_SITE, deploy.deploy_cleanup)
    _, rollback_plan = both(deploy.ROLLBACK_STEPS,
                            lambda: deploy.SiteRun(settings=SETTINGS, site=site, actor=ACTOR, action="rollback"),
                            DEPLOYED_SITE)
    failures = []
    for number, script in enumerate([*setup_plan, *deploy_plan, *rollback_plan]):
        path = tmp_path / f"{number}.sh"
        path.write_text("#!/bin/bash\nset -euo pipefail\n" + script + "\n")
        checked = subprocess.run([shellcheck, "--severity=warning", str(path)], capture_output=True, text=True)
        if checked.returncode != 0:
            failures.append(checked.stdout)
    assert not failures, "\n".join(failures)


SWARM = load_settings(swarm_section([
    {"host": "n1", "roles": ["manager", "database", "web", "edge"]},
    {"host": "n2", "roles": ["web", "edge"]}]), root=ROOT)


def test_a_swarm_deploy_locks_records_and_migrates_on_the_primary_and_ships_the_release_to_every_node():
    servers = {"n1": FactServer(DEPLOYED_SITE), "n2": FactServer(DEPLOYED_SITE)}
    group = Runner.group([(name, server, node.roles) for (name, server), node in zip(servers.items(), SWARM.nodes)],
                         out=io.StringIO())
    run = deploy.SiteRun(settings=SWARM, site=SWARM.panel("store"), actor=ACTOR, action="deploy",
                         release_id="20261125031700", commit="abc", started=0.0, primary="n1")
    group.steps("deploy", deploy.DEPLOY_STEPS, run, deploy.deploy_cleanup)
    on_primary, elsewhere = "\n".join(servers["n1"].actions), "\n".join(servers["n2"].actions)
    for only_primary in ("mkdir /srv/fikaso/state/locks/store", "FIKASO_BACKUP_ID=20261125T031700Z", "php artisan migrate --force",
                         "store.releases.jsonl"):
        assert only_primary in on_primary and only_primary not in elsewhere, only_primary
    for everywhere in ("tar -x --no-same-owner", "composer install", "mv -T /srv/fikaso/panels/store/current.next",
                       "docker build"):
        assert everywhere in on_primary and everywhere in elsewhere, everywhere
    assert "docker service update --detach=false --image" in on_primary and "docker compose" not in elsewhere


def test_on_a_swarm_certbot_runs_on_the_primary_and_every_other_edge_node_gets_a_copy():
    from fikaso.steps import certs
    stack = "user=deploy\nuid=1000\ncertificate=store.fikaso.test\ncertificates_hash="
    servers = {"n1": FactServer({"cluster": "service=fikaso_acme 1/1", "stack": stack + "new", "cron": ""}),
               "n2": FactServer({"stack": stack + "old"})}
    group = Runner.group([(name, server, node.roles) for (name, server), node in zip(servers.items(), SWARM.nodes)],
                         out=io.StringIO())
    settings = load_settings(swarm_section([{"host": n.host, "roles": list(n.roles)} for n in SWARM.nodes],
                                           certificates={}), root=ROOT)
    run = certs.SwarmIssueRun(settings=settings, domains=["store.fikaso.test"], server="https://acme.test/dir",
                              seed="n1", where="n1")
    group.steps("certs.issue", certs.issue_steps(run), run)
    on_primary, elsewhere = "\n".join(servers["n1"].actions), "\n".join(servers["n2"].actions)
    for only_primary in ("certonly --reuse-key --webroot", "crontab", "tar -C /srv/fikaso/certificates -c -h live"):
        assert only_primary in on_primary and only_primary not in elsewhere, only_primary
    assert "tar -x -C live.new" in elsewhere and "tar -x -C live.new" not in on_primary
    assert "fikaso-certs publish" in on_primary and "fikaso-certs publish" in elsewhere   # each proxy's own copies
    assert "proxy.next" in on_primary and "proxy.next" in elsewhere     # each edge node checks its own config
