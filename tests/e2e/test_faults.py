"""Faults a real VPS meets, each under the strict load check: the live site keeps serving, nothing
is lost, the user is told what happened, and the next run recovers."""
import os
import signal
import subprocess
import time

import pytest

from . import apps
from .helpers import FAB, ROOT, NearlyFull, copy_project, fab, fab_timed, ssh
from sandbox import vps

from .load import StrictLoad, figure
from .test_deploy import STORE, SWITCHED, deploy_store, live, lock_held, page, version

pytestmark = pytest.mark.e2e

# The 1 s latency bound is for a switch (test_deploy.py, test_php_image.py). Here the window also
# holds the fault and what it costs the server (a backup's verifying restore, a second whole deploy
# with its snapshot), on the same two cores as the load's clients: every request must still be
# answered, and within this bound; the figures are printed either way.
FAULT_BOUND = 2.0
# A failing backup or upload keeps both cores busy for a few seconds: more clients keep 125
# requests/s going while each answer takes longer.
BUSY_CLIENTS = 64

SITE_NGINX = ("fikaso_admin_nginx", "fikaso_store_nginx", "fikaso_website_nginx", "fikaso_landing_nginx",
              "fikaso_nginx_proxy")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fault-apps")


@pytest.fixture(scope="module")
def v1(deployed, scratch):
    source = apps.variant(scratch, "v1")
    result = deploy_store(source)
    assert result.returncode == 0, result.stdout + result.stderr
    return source


def v1_is_live(info, v1) -> None:
    """Start from v1 live: deploy it unless the test before left it so."""
    if version(page(info)) != "v1":
        result = deploy_store(v1)
        assert result.returncode == 0, result.stdout + result.stderr


def holds_on_vps(condition: str) -> bool:
    """Whether a shell condition holds on the test VPS, looked at from outside (docker exec: no
    SSH handshake for every look while the test waits for the moment to strike)."""
    return subprocess.run(vps.in_vps("sh", "-c", condition), capture_output=True).returncode == 0


def nginx_state(info) -> str:
    """Every site's live nginx config and when each nginx container started."""
    result = ssh(info, "sha256sum /srv/fikaso/stack/nginx/*/*.conf && docker inspect --format "
                       f"'{{{{.Name}}}} {{{{.State.StartedAt}}}}' {' '.join(SITE_NGINX)}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_broken_site_nginx_config_never_reaches_a_live_nginx(deployed, v1, tmp_path):
    project = copy_project(tmp_path / "project")
    template = project / "nginx" / "panel.conf.j2"
    template.write_text(template.read_text().replace("    index index.php;\n",
                                                     "    index index.php;\n    not_a_directive on;\n", 1))
    before = nginx_state(deployed)
    with StrictLoad(deployed, STORE) as load:
        result, start, end, _ = fab_timed("setup", cwd=project)
        load.settle(end)
        print(load.check(start, end, old={"v1"}, name="a setup whose nginx config is broken"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'unknown directive "not_a_directive"' in result.stderr, result.stderr
    assert "fails nginx -t, so the stack bundle was not put live" in result.stderr
    assert "Traceback" not in result.stderr
    assert nginx_state(deployed) == before
    assert ssh(deployed, "test -e /srv/fikaso/stack.incoming").returncode != 0
    again = fab("setup")
    assert again.returncode == 0, again.stdout + again.stderr
    assert nginx_state(deployed) == before


# Where to cut a deploy off: the app that makes the step last, and a check on the VPS that is true
# while the step is under way (a bracket keeps pgrep from finding its own command line).
CUTS = {
    "install": (lambda app: apps.with_migration(app, "2026_01_01_000000_wait_a_while", "sleep(8);"),
                "pgrep -f '^php [a]rtisan migrate'"),
    "switch": (lambda app: apps.with_slow_health(app, 2),
               "pgrep -f '[w]get -q -S -O /dev/null http://127.0.0.1:9082/up'"),
}


def the_next_deploy_finishes(info, load: StrictLoad, start: float, source, fault: str, cwd=ROOT) -> None:
    """The same deploy run again after `fault`, under the load that has run since `start`: no
    request failed from the fault to its end, it took over the lock the cut-off run left, and
    nothing half-done is left."""
    again, _, end, marks = fab_timed("deploy", "--panel=store", cwd=cwd, marks={"switch": SWITCHED},
                                     env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)})
    load.settle(end)
    print(load.check(start, end, switched=marks.get("switch"), new=source.name, old={"v1"}, bound=FAULT_BOUND,
                     name=f"{fault}, then the next deploy"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no longer running; taking it over" in again.stdout
    assert version(page(info)) == source.name and not lock_held(info)
    assert ssh(info, "ls -d /srv/fikaso/panels/store/releases/*.partial").returncode != 0


def cut_then_recover(info, step: str, source, condition: str, cwd=ROOT) -> None:
    """Under load: `fab deploy` of `source` killed with SIGKILL once `condition` holds on the VPS,
    then the same deploy run again; the site serves throughout, and the second run finishes."""
    before = live(info)
    env = {"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)}
    with StrictLoad(info, STORE) as load:
        start = time.monotonic()
        run = subprocess.Popen([*FAB, "deploy", "--panel=store"], cwd=cwd, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline and not holds_on_vps(condition):
            time.sleep(0.2)
        assert run.poll() is None, f"the deploy ended (exit {run.returncode}) before its {step} was under way"
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert version(page(info)) in {"v1", source.name}
        assert lock_held(info)        # left by the killed run
        the_next_deploy_finishes(info, load, start, source, f"a deploy killed during {step}", cwd=cwd)
    assert live(info) != before
    releases = fab("releases", "--panel=store")
    assert releases.returncode == 0 and live(info) in releases.stdout, releases.stdout + releases.stderr


@pytest.mark.parametrize("step", CUTS)
def test_kill_9_during_a_deploy_step_keeps_the_site_serving_and_the_next_deploy_finishes(deployed, v1, scratch,
                                                                                       step):
    v1_is_live(deployed, v1)
    make, condition = CUTS[step]
    cut_then_recover(deployed, step, make(apps.variant(scratch, f"cut-in-{step}")), condition)


def test_kill_9_during_a_move_to_another_php_image_keeps_the_site_serving(deployed, v1, scratch, tmp_path):
    v1_is_live(deployed, v1)
    project = copy_project(tmp_path / "project")
    ini = project / "dockerfiles" / "php" / "conf.d" / "zz-fikaso.ini"
    ini.write_text(ini.read_text().replace("memory_limit = 256M", "memory_limit = 320M"))
    # Cut once the candidate container on the new image exists: it is starting, or serving.
    cut_then_recover(deployed, "a PHP image move", apps.variant(scratch, "cut-in-image-move"),
                     "docker inspect fikaso_store_panel_next >/dev/null 2>&1", cwd=project)
    leftovers = ssh(deployed, "docker ps -a --format '{{.Names}}' | grep _panel_next; "
                              "ls /srv/fikaso/stack/*.candidate.yaml /srv/fikaso/panels/store/php-fpm/*.conf")
    assert leftovers.stdout == "", leftovers.stdout
    # Back to the project's own image for the tests that follow.
    assert deploy_store(v1).returncode == 0


def listing(info, folder: str) -> str:
    result = ssh(info, f"cd {folder} && find . -printf '%p %s %m\\n' | sort")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_deploy_that_fills_the_disk_says_so_and_leaves_nothing_behind(deployed, v1, scratch):
    v1_is_live(deployed, v1)
    big = apps.variant(scratch, "too-big-for-the-disk")
    (big / "public" / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    releases = "/srv/fikaso/panels/store/releases"
    with NearlyFull(releases, free_kb=2048):
        before = listing(deployed, releases)
        with StrictLoad(deployed, STORE, clients=BUSY_CLIENTS) as load:
            result, start, end, _ = fab_timed("deploy", "--panel=store",
                                              env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(big)})
            load.settle(end)
            print(load.check(start, end, old={"v1"}, bound=FAULT_BOUND, name="a deploy that fills the disk"))
        after = listing(deployed, releases)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the VPS is out of disk space (tar: " in result.stderr, result.stderr
    assert "Free space on the VPS" in result.stderr and "Traceback" not in result.stderr
    assert after == before        # no partial release, and nothing removed to make room
    assert not lock_held(deployed) and version(page(deployed)) == "v1"
    again = deploy_store(big)     # with room again
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_backup_that_fills_the_disk_says_so_and_keeps_the_older_backups(deployed, v1):
    v1_is_live(deployed, v1)
    assert fab("backup.now", "--database=fikaso_store").returncode == 0     # an older backup to keep
    folder = "/srv/fikaso/backups"
    with NearlyFull(folder, free_kb=16):
        before = listing(deployed, folder)
        with StrictLoad(deployed, STORE, clients=BUSY_CLIENTS) as load:
            result, start, end, _ = fab_timed("backup.now")
            load.settle(end)
            print(load.check(start, end, old={"v1"}, bound=FAULT_BOUND, name="a backup that fills the disk"))
        after = listing(deployed, folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the VPS is out of disk space" in result.stderr and "No space left on device" in result.stderr
    assert after == before        # no partial backup, and no older one pruned to make room
    verified = fab("backup.verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    again = fab("backup.now", "--database=fikaso_store")
    assert again.returncode == 0, again.stdout + again.stderr


class LinkCut:
    """Packets from this machine to the test VPS's SSH port dropped, as on a dead link: nothing is
    refused or reset, nothing comes back (the raw table, before Docker's NAT sees them)."""

    def __init__(self, port: int):
        self.rule = ["OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(port), "-j", "DROP"]

    def __enter__(self) -> "LinkCut":
        subprocess.run(["iptables", "-t", "raw", "-I", *self.rule], check=True)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["iptables", "-t", "raw", "-D", *self.rule], check=True)


def test_a_link_cut_mid_upload_ends_the_run_plainly_and_the_next_deploy_finishes(deployed, v1, scratch):
    v1_is_live(deployed, v1)
    before = live(deployed)
    big = apps.variant(scratch, "after-the-cut")
    (big / "public" / "big.bin").write_bytes(os.urandom(150 * 1024 * 1024))
    env = {"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(big)}
    with StrictLoad(deployed, STORE) as load:
        start = time.monotonic()
        run = subprocess.Popen([*FAB, "deploy", "--panel=store"], cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline and \
                not holds_on_vps("ls -d /srv/fikaso/panels/store/releases/*.partial"):
            time.sleep(0.2)
        assert run.poll() is None, "the deploy ended before its upload was under way"
        with LinkCut(deployed["port"]):
            cut = time.monotonic()
            out, err = run.communicate(timeout=120)     # fab keeps running until it notices
            noticed = time.monotonic() - cut
        print(figure(f"a link cut mid-upload: fab noticed after {noticed:.1f} s and stopped (exit {run.returncode})"))
        assert run.returncode == 1, out + err
        assert "The connection to fikaso-test was lost while uploading release" in err, err
        assert "run the same command again" in err and "Traceback" not in err
        assert version(page(deployed)) == "v1" and live(deployed) == before
        the_next_deploy_finishes(deployed, load, start, big, "a deploy whose link was cut mid-upload")


def wait_until(what: str, condition, seconds: float = 240) -> float:
    """Poll `condition` until it holds; returns how long that took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what} did not happen within {seconds} s"
        time.sleep(0.5)
    return time.monotonic() - started


def scheduled_since(info, since: str) -> list[str]:
    """The complete scheduled backups whose id (their UTC start time) is `since` or later."""
    result = ssh(info, "grep -l scheduled /srv/fikaso/backups/*Z/KIND 2>/dev/null || true")
    return [path.split("/")[-2] for path in result.stdout.split() if path.split("/")[-2] >= since]


def test_after_a_hard_reboot_every_service_is_healthy_cron_runs_and_a_cut_off_deploy_is_finished(deployed, v1,
                                                                                                 scratch):
    v1_is_live(deployed, v1)
    assert fab("backup.schedule", "--cron=* * * * *").returncode == 0
    try:
        slow = apps.with_migration(apps.variant(scratch, "after-the-reboot"), "2026_01_02_000000_wait_a_while",
                                   "sleep(8);")
        env = {"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(slow)}
        run = subprocess.Popen([*FAB, "deploy", "--panel=store"], cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until("the deploy's migrations", lambda: run.poll() is not None or
                   holds_on_vps("pgrep -f '^php [a]rtisan migrate'"))
        assert run.poll() is None, "the deploy ended before its migrations ran"
        # The power goes: every process on the VPS dies at once, then it boots again.
        subprocess.run(["docker", "kill", vps.CONTAINER], check=True, capture_output=True)
        booted, booted_id = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        subprocess.run(["docker", "start", vps.CONTAINER], check=True, capture_output=True)
        out, err = run.communicate(timeout=120)

        def healthy() -> bool:
            status = fab("status")
            return status.returncode == 0 and "9 of 9 services running and healthy" in status.stdout
        took = wait_until("every service healthy after the reboot", healthy)
        print(figure(f"a hard reboot: every service healthy again {took:.1f} s after the VPS started"))
        assert run.returncode == 1 and "The connection to fikaso-test was lost" in err, out + err
        assert version(page(deployed)) == "v1"
        crontab = ssh(deployed, "crontab -l")
        assert "fikaso-backup" in crontab.stdout, crontab.stdout
        wait_until("a scheduled backup after the reboot", lambda: scheduled_since(deployed, booted_id), 150)
        print(figure(f"a hard reboot: cron ran a scheduled backup {time.monotonic() - booted:.0f} s after it"))
    finally:
        assert fab("backup.unschedule").returncode == 0
    # A backup a minute would compete with the deploy for the machine's two cores.
    with StrictLoad(deployed, STORE) as load:
        the_next_deploy_finishes(deployed, load, time.monotonic(), slow, "a reboot that cut a deploy off")
