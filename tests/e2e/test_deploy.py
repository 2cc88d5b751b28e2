"""Deploy and roll back one panel on the sandbox, as a user would, under load."""
import json
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from fikaso.commands import release

from . import apps
from .helpers import FAB, ROOT, curl, fab, fab_timed, server_snapshot, ssh
from .load import StrictLoad, fetch_https

pytestmark = pytest.mark.e2e

STORE = "store.fikaso.test"
OTHERS = ("admin_panel", "admin_nginx", "website_panel", "website_nginx", "landing_nginx", "mysql",
          "nginx_proxy")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("apps")


def deploy_store(source, *args, timeout=600):
    return fab("deploy", "--panel=store", *args, env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)},
               timeout=timeout)


SWITCHED = r"^\[ *\d+/\d+\] switch +changed"


def deploy_timed(source, *args):
    return fab_timed("deploy", "--panel=store", *args, env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)},
                     marks={"switch": SWITCHED})


def page(info) -> str:
    code, body = curl(info, STORE, "/")
    assert code == 200, body
    return body


def version(body: str) -> str:
    found = re.search(r'<p id="version">([^<]+)</p>', body)
    return found.group(1) if found else ""


def live(info) -> str:
    return ssh(info, "basename \"$(readlink /srv/fikaso/panels/store/current)\"").stdout.strip()


def audit_tail(info) -> dict:
    return json.loads(ssh(info, "tail -n 1 /srv/fikaso/state/audit.log").stdout)


def lock_held(info) -> bool:
    return ssh(info, "test -d /srv/fikaso/state/locks/store").returncode == 0


@pytest.fixture(scope="module")
def v1(deployed, scratch):
    source = apps.variant(scratch, "v1")
    result = deploy_store(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert version(page(deployed)) == "v1"
    return source


def test_deploy_then_rollback_under_load_fails_no_request(v1, https, scratch):
    v2 = apps.variant(scratch, "v2")
    with StrictLoad(https, STORE, tls=https["tls"]) as load:
        deployed_v2, start, end, marks = deploy_timed(v2)
        assert deployed_v2.returncode == 0, deployed_v2.stdout + deployed_v2.stderr
        load.settle(end)
        print(load.check(start, end, switched=marks["switch"], new="v2", old={"v1"}, name="a deploy"))
        assert re.search(r"^deployed store \d{14} in [\d.]+ s$", deployed_v2.stdout, re.M)
        rolled, start, end, marks = fab_timed("rollback", "--panel=store", marks={"switch": SWITCHED})
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        load.settle(end)
        print(load.check(start, end, switched=marks["switch"], new="v1", old={"v2"}, name="a rollback"))
    code, body = fetch_https(https, STORE)
    assert code == 200 and version(body) == "v1"


def test_rollback_undoes_the_last_deploy_and_never_returns_to_a_release_rolled_back_from(deployed, v1, scratch):
    r1 = live(deployed)
    assert deploy_store(apps.variant(scratch, "r2")).returncode == 0
    r2 = live(deployed)
    assert fab("rollback", "--panel=store").returncode == 0 and live(deployed) == r1
    assert deploy_store(apps.variant(scratch, "r3")).returncode == 0
    rolled = fab("rollback", "--panel=store")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert live(deployed) == r1 and version(page(deployed)) == "v1", f"went to {live(deployed)}, not {r1} (r2 {r2})"
    table = fab("releases", "--panel=store").stdout
    assert "rolled back" in next(line for line in table.splitlines() if line.startswith(r2))


def compiled_views(info) -> str:
    """The live store release's compiled Blade views, with their inode numbers, as its cached
    configuration places them."""
    where = "echo (require 'bootstrap/cache/config.php')['view']['compiled'];"
    listing = f'ls -i "$(php -r {shlex.quote(where)})"'
    return ssh(info, f"docker exec -w /var/www/app/current fikaso_store_panel sh -c {shlex.quote(listing)}").stdout


def test_a_release_failing_its_health_check_never_goes_live(deployed, v1, scratch):
    before = live(deployed)
    views = compiled_views(deployed)
    assert ".php" in views, views
    broken = apps.with_failing_health(apps.variant(scratch, "broken"))
    with StrictLoad(deployed, STORE) as load:
        result, start, end, _ = deploy_timed(broken)
        load.settle(end)
        print(load.check(start, end, old={"v1"}, name="a deploy that fails its health check"))
    assert result.returncode == 1
    assert "failed its health check" in result.stderr and f"{before} stays live" in result.stderr
    assert live(deployed) == before and version(page(deployed)) == "v1"
    # The broken release's install compiled its own views (view:cache clears first) without
    # touching the live release's, which it served from throughout.
    assert compiled_views(deployed) == views
    assert not lock_held(deployed)
    assert audit_tail(deployed)["result"] == "failed"


def test_an_app_without_its_health_route_fails_at_once_saying_how_to_add_one(deployed, v1, scratch):
    before = live(deployed)
    bare = apps.without_health_route(apps.variant(scratch, "noroute"))
    result = deploy_store(bare)
    assert result.returncode == 1
    assert "has no health page: /up answered 404 Not Found" in result.stderr, result.stderr
    assert "Route::get('/up', fn () => 'ok');" in result.stderr and "fikaso.panels.store.health" in result.stderr
    # It failed at the first answer, not after waiting out the 15 s a health check may take.
    waited = float(re.search(r"switch +FAILED after ([\d.]+) s", result.stdout).group(1))
    assert waited < release.HEALTH_SECONDS / 2, result.stdout
    assert live(deployed) == before and version(page(deployed)) == "v1"
    # The setting points the check at a page the app has (given in a config file read over fabric.yaml).
    setting = scratch / "health.yaml"
    setting.write_text("fikaso:\n  panels:\n    store:\n      health: /\n")
    elsewhere = fab("-f", str(setting), "deploy", "--panel=store", f"--source={bare}")
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert version(page(deployed)) == "noroute"
    assert deploy_store(v1).returncode == 0        # v1 again, for the tests after this one


def test_a_ref_ships_exactly_that_commit_and_uncommitted_changes_are_named(deployed, v1, scratch):
    app = apps.variant(scratch, "tagged")
    git = ["git", "-C", str(app), "-c", "user.name=Ana", "-c", "user.email=ana@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tagged"], ["tag", "v1.4.0"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    view = app / apps.VIEW
    view.write_text(view.read_text().replace('id="version">tagged<', 'id="version">dirty<'))   # not committed
    before = live(deployed)
    unknown = fab("deploy", "--panel=store", f"--source={app}", "--ref=v9.9.9")
    assert unknown.returncode == 1 and "'v9.9.9' is no tag, branch or commit" in unknown.stderr, unknown.stderr
    assert live(deployed) == before
    tagged = fab("deploy", "--panel=store", f"--source={app}", "--ref=v1.4.0")
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    assert version(page(deployed)) == "tagged" and "uncommitted" not in tagged.stderr
    commit = subprocess.run([*git, "rev-parse", "--short=12", "v1.4.0"], capture_output=True, text=True).stdout.strip()
    assert commit in fab("releases", "--panel=store").stdout
    dirty = fab("deploy", "--panel=store", f"--source={app}")
    assert dirty.returncode == 0, dirty.stdout + dirty.stderr
    assert "has 1 uncommitted change(s)" in dirty.stderr and apps.VIEW in dirty.stderr, dirty.stderr
    assert version(page(deployed)) == "dirty"
    assert deploy_store(v1).returncode == 0        # v1 again, for the tests after this one


def test_assets_are_built_here_shipped_and_built_again_only_when_their_inputs_change(deployed, v1, scratch):
    """fabric.yaml gives the store panel the example's asset build (npm ci && npm run build)."""
    styled = apps.variant(scratch, "styled")
    css = styled / "resources" / "css" / "panel.css"
    marker = f"/* {time.time_ns()} */"
    css.write_text(css.read_text() + marker + "\n")                   # inputs no earlier deploy had
    try:
        built_once_and_reused(deployed, styled, marker)
    finally:
        assert deploy_store(v1).returncode == 0    # v1 again, for the tests after this one


def built_once_and_reused(deployed, styled, marker: str) -> None:
    first = deploy_store(styled)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "store: building the assets (npm ci && npm run build)" in first.stdout, first.stdout
    code, body = curl(deployed, STORE, "/build/panel.css")
    assert code == 200 and marker in body
    assert '<link rel="stylesheet" href="/build/panel.css">' in page(deployed)
    assert not (styled / "public" / "build").exists()                    # the app's own folder is not written to
    again = deploy_store(styled)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "store: assets unchanged" in again.stdout and "building the assets" not in again.stdout, again.stdout
    before = live(deployed)
    package = styled / "package.json"
    package.write_text(package.read_text().replace('"node scripts/build-assets.mjs"', '"echo no vite here >&2; exit 3"'))
    broken = deploy_store(styled)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert re.search(r"The asset build of store failed \(exit \d+\); nothing was uploaded", broken.stderr), broken.stderr
    assert "no vite here" in broken.stderr and f"in {styled} to see it fail" in broken.stderr
    assert live(deployed) == before


def test_a_failing_migration_aborts_before_the_switch(deployed, v1, scratch):
    before = live(deployed)
    bad = apps.with_migration(apps.variant(scratch, "badmigration"), "2030_01_01_000000_break_things",
                              "throw new RuntimeException('the migration broke on purpose');")
    result = deploy_store(bad)
    assert result.returncode == 1
    assert "migrations" in result.stderr and "the migration broke on purpose" in result.stderr
    assert live(deployed) == before and version(page(deployed)) == "v1"
    assert not lock_held(deployed)
    record = audit_tail(deployed)
    assert record["result"] == "failed" and "migrations" in record["reason"]


def test_a_second_deploy_of_the_same_panel_fails_at_once_naming_the_holder(deployed, v1, scratch):
    slow = apps.with_migration(apps.variant(scratch, "slow"), "2030_01_02_000000_take_a_while", "sleep(8);")
    env = {**os.environ, "FABRIC_FIKASO_PANELS_STORE_SOURCE": str(slow)}
    first = subprocess.Popen([*FAB, "deploy", "--panel=store"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not lock_held(deployed) and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        second = deploy_store(v1)
        took = time.monotonic() - started
        other_panel = fab("deploy", "--panel=landing")
    finally:
        out, err = first.communicate(timeout=300)
    assert second.returncode == 1 and took < 10
    assert "Another run holds the store lock: root@" in second.stderr and "fab lock.release" in second.stderr
    assert other_panel.returncode == 0, other_panel.stderr
    assert first.returncode == 0, out + err
    assert version(page(deployed)) == "slow"
    assert deploy_store(v1).returncode == 0


def test_a_lock_left_by_another_machine_is_named_and_freed_on_request(deployed):
    holder = '{"who": "bo@ci-runner", "host": "ci-runner", "pid": 7, "action": "deploy landing"}'
    made = ssh(deployed, f"mkdir -p /srv/fikaso/state/locks/landing && printf '%s\\n' '{holder}' "
                         "> /srv/fikaso/state/locks/landing/holder")
    assert made.returncode == 0, made.stderr
    blocked = fab("deploy", "--panel=landing")
    assert blocked.returncode == 1 and "Another run holds the landing lock: bo@ci-runner" in blocked.stderr
    freed = fab("lock.release", "--panel=landing", "--yes")
    assert freed.returncode == 0, freed.stdout + freed.stderr
    assert "held by: " + holder in freed.stdout and freed.stdout.strip().endswith("the landing lock is free")
    assert ssh(deployed, "test -e /srv/fikaso/state/locks/landing").returncode != 0
    assert fab("deploy", "--panel=landing").returncode == 0


def test_killing_a_deploy_mid_upload_leaves_the_live_release_and_the_next_deploy_works(deployed, v1, scratch):
    assert deploy_store(v1).returncode == 0
    before = live(deployed)
    big = apps.variant(scratch, "big")
    (big / "public" / "big.bin").write_bytes(os.urandom(300 * 1024 * 1024))
    env = {**os.environ, "FABRIC_FIKASO_PANELS_STORE_SOURCE": str(big)}
    run = subprocess.Popen([*FAB, "deploy", "--panel=store"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if ssh(deployed, "ls -d /srv/fikaso/panels/store/releases/*.partial").returncode == 0:
            break
        time.sleep(0.1)
    assert run.poll() is None, "the deploy finished before it could be killed mid-upload"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert live(deployed) == before and version(page(deployed)) == "v1"
    assert lock_held(deployed)  # left behind by the killed run
    again = deploy_store(v1)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no longer running; taking it over" in again.stdout
    assert ssh(deployed, "ls -d /srv/fikaso/panels/store/releases/*.partial").returncode != 0
    assert not lock_held(deployed)


def container_starts(info, services):
    names = " ".join(f"fikaso_{s}" for s in services)
    result = ssh(info, f"docker inspect --format '{{{{.Name}}}} {{{{.Id}}}} {{{{.State.StartedAt}}}}' {names}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_deploying_store_leaves_the_other_sites_untouched(deployed, v1):
    before = container_starts(deployed, OTHERS)
    links = ssh(deployed, "readlink /srv/fikaso/panels/admin/current /srv/fikaso/panels/website/current "
                          "/srv/fikaso/landing/current").stdout
    assert deploy_store(v1).returncode == 0
    assert container_starts(deployed, OTHERS) == before
    assert ssh(deployed, "readlink /srv/fikaso/panels/admin/current /srv/fikaso/panels/website/current "
                         "/srv/fikaso/landing/current").stdout == links


def full_snapshot(info) -> str:
    result = ssh(info, "cd /srv/fikaso && find . -xdev \\( -type f -o -type l \\) -printf '%p %l %s %T@\\n' | sort "
                       "&& find . -xdev -type f -readable -print0 | sort -z | xargs -0 sha256sum")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_plan_prints_every_command_and_changes_nothing(deployed, v1, scratch):
    v3 = apps.variant(scratch, "v3")
    before = full_snapshot(deployed)
    result = deploy_store(v3, "--plan")
    assert result.returncode == 0, result.stderr
    for expected in ("mkdir /srv/fikaso/state/locks/store", "tar -x --no-same-owner",
                     "composer install --no-dev", "php artisan migrate --force",
                     "mv -T /srv/fikaso/panels/store/current.next /srv/fikaso/panels/store/current",
                     "rm -rf /srv/fikaso/state/locks/store"):
        assert expected in result.stdout, expected
    assert full_snapshot(deployed) == before


def test_releases_lists_the_live_one(deployed, v1):
    result = fab("releases", "--panel=store")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(live(deployed)))
    assert " * " in row and " ok" in row


def test_maintenance_mode_on_and_off(deployed, v1):
    assert fab("maintenance.on", "--panel=store").returncode == 0
    try:
        assert curl(deployed, STORE, "/")[0] == 503
        assert curl(deployed, "admin.fikaso.test", "/")[0] == 200
    finally:
        assert fab("maintenance.off", "--panel=store").returncode == 0
    assert curl(deployed, STORE, "/")[0] == 200


def test_maintenance_with_a_secret_lets_whoever_has_the_url_through(deployed, v1):
    on = fab("maintenance.on", "--panel=store", "--secret")
    assert on.returncode == 0, on.stdout + on.stderr
    token = re.search(rf"https://{re.escape(STORE)}/([A-Za-z0-9_-]+) ", on.stdout).group(1)
    try:
        assert curl(deployed, STORE, "/")[0] == 503
        # -b "": curl keeps the bypass cookie through Laravel's redirect to the home page.
        passed = subprocess.run(["curl", "-sS", "-b", "", "-L", "-o", "/dev/null", "-w", "%{http_code}",
                                 "--connect-to", f"{STORE}:80:127.0.0.1:{deployed['http_port']}",
                                 f"http://{STORE}/{token}"], capture_output=True, text=True)
        assert passed.stdout.endswith("200"), passed.stdout + passed.stderr
        assert curl(deployed, STORE, "/not-the-secret")[0] == 503
    finally:
        assert fab("maintenance.off", "--panel=store").returncode == 0
    assert curl(deployed, STORE, "/")[0] == 200


@pytest.mark.parametrize("args, env, message", [
    (["--panel=shop"], {}, "no panel named 'shop'"),
    (["--panel=store"], {"FABRIC_FIKASO_PANELS_STORE_SOURCE": "/nonexistent/app"}, "does not exist"),
    (["--panel=store"], {"FABRIC_FIKASO_PANELS_STORE_SOURCE": "/tmp"}, "is not a Laravel app"),
    ([], {}, "No panel given"),
])
def test_bad_deploy_input_is_refused_without_touching_the_server(deployed, args, env, message):
    before = server_snapshot(deployed)
    result = fab("deploy", *args, env=env)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert server_snapshot(deployed) == before
