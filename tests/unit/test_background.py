"""Queue workers and the scheduler: their scripts, run here against a stand-in `php`, and the restart
that follows a switch."""
import os
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath

from fikaso.commands import release
from fikaso.layout import Layout

from .helpers import ROOT

WORKER = ROOT / "stack/bin/fikaso-queue-worker"
SCHEDULER = ROOT / "stack/bin/fikaso-scheduler"


def eventually(what, condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def app_with_releases(tmp_path: Path, *names: str) -> Path:
    """An app folder as on the VPS: releases/<name> each with its RELEASE, current -> the first."""
    app = tmp_path / "app"
    for name in names:
        (app / "releases" / name).mkdir(parents=True)
    (app / "shared/storage/framework").mkdir(parents=True)
    (app / "current").symlink_to(f"releases/{names[0]}")
    return app


def stand_in_php(tmp_path: Path, body: str) -> dict:
    """PATH with a `php` that logs its folder and arguments to runs.log, then runs `body`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "php").write_text(f'#!/bin/bash\necho "$(basename "$(pwd -P)") $*" >> {tmp_path}/runs.log\n{body}\n')
    (folder / "php").chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


def runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_worker_starts_again_in_the_new_release_and_a_stop_lets_its_job_finish(tmp_path):
    app = app_with_releases(tmp_path, "r1", "r2")
    # queue:work: until told to restart (the file `restart`), or stopped (it then finishes its "job").
    env = stand_in_php(tmp_path, f'trap \'echo "$(basename "$(pwd -P)") finished its job" >> {tmp_path}/runs.log; '
                                 f'exit 0\' TERM\nwhile [ ! -e {tmp_path}/restart ]; do sleep 0.05; done\n'
                                 f'rm -f {tmp_path}/restart')
    worker = subprocess.Popen([str(WORKER)], env={**env, "FIKASO_APP_ROOT": str(app)})
    try:
        eventually("the worker in r1", lambda: runs(tmp_path)[:1] == ["r1 artisan queue:work --sleep=1 --tries=3 "
                                                                      "--max-time=3600"])
        (app / "current").unlink()
        (app / "current").symlink_to("releases/r2")
        (tmp_path / "restart").touch()
        eventually("the worker in r2", lambda: len(runs(tmp_path)) == 2)
        assert runs(tmp_path)[1].startswith("r2 artisan queue:work")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        assert runs(tmp_path)[2:] == ["r2 finished its job"]
    finally:
        worker.kill()


def test_each_minute_runs_once_however_many_schedulers_claim_it(tmp_path):
    app = app_with_releases(tmp_path, "r1")
    env = {**stand_in_php(tmp_path, "sleep 0.2"), "FIKASO_APP_ROOT": str(app)}
    # Two at once; a minute that turns between them would let each run once, in its own minute.
    started = time.time()
    schedulers = [subprocess.Popen([str(SCHEDULER), "once"], env=env) for _ in range(2)]
    assert [s.wait(10) for s in schedulers] == [0, 0]
    minutes = {int(t // 60) for t in (started, time.time())}
    assert len(runs(tmp_path)) == len(minutes)
    assert runs(tmp_path)[0] == "r1 artisan schedule:run --no-interaction"
    subprocess.run([str(SCHEDULER), "once"], env=env, check=True)
    assert len(runs(tmp_path)) == len(minutes | {int(time.time() // 60)})


def test_a_stopped_scheduler_exits_at_once_between_minutes(tmp_path):
    app = app_with_releases(tmp_path, "r1")
    scheduler = subprocess.Popen([str(SCHEDULER)], env={**stand_in_php(tmp_path, ""), "FIKASO_APP_ROOT": str(app)})
    eventually("the scheduler's pause", lambda: any(
        Path(f"/proc/{pid}/comm").read_text().strip() == "sleep" for pid in children(scheduler.pid)))
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(5) == 0


def children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def fake_docker(tmp_path: Path, fails: str) -> dict:
    """PATH with a `docker` that logs its arguments and fails those containing `fails`."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "docker").write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/docker.log\n'
                                   f'case "$*" in *{fails}*) exit 1;; esac\n')
    (folder / "docker").chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


def restart_workers(tmp_path: Path, fails: str) -> tuple[str, list[str]]:
    layout = Layout(PurePosixPath(tmp_path))
    os.makedirs(layout.stack, exist_ok=True)
    out = subprocess.run(["bash", "-euc", release.restart_workers_script(layout, "store")], capture_output=True,
                         text=True, env=fake_docker(tmp_path, fails), check=True).stdout
    return out, (tmp_path / "docker.log").read_text().splitlines()


def test_workers_are_told_to_restart_by_artisan(tmp_path):
    out, calls = restart_workers(tmp_path, fails="nothing")
    assert out == "" and len(calls) == 1 and "php artisan queue:restart" in calls[0]


def test_workers_are_restarted_by_docker_when_artisan_cannot_tell_them(tmp_path):
    out, calls = restart_workers(tmp_path, fails="queue:restart")
    assert out == "" and calls[1] == "compose restart store_worker"


def test_a_restart_that_fails_both_ways_is_reported_not_fatal(tmp_path):
    out, calls = restart_workers(tmp_path, fails="store")
    assert out.split() == ["workers=stale"] and len(calls) == 2


def test_setup_leaves_the_workers_of_a_half_loaded_database_stopped_and_says_why():
    from fikaso import records
    from fikaso.commands.compose import SERVICES
    from fikaso.config import load_settings
    from fikaso.facts import parse_stack
    from fikaso.plan import Values
    from fikaso.secrets import Secrets
    from fikaso.steps import setup

    from .helpers import shipped_section
    section = shipped_section()
    for panel in ("admin", "store"):
        section["panels"][panel].update(workers=2, scheduler=True)
    run = setup.SetupRun(settings=load_settings(section, root=ROOT), secrets=Secrets("r", {}, {}),
                         actor=records.Actor("ana", "laptop", 1))
    run.known.values["stack"] = parse_stack(Values.parse("unfinished=fikaso_store\t20261120T031700Z\t20261125T020000Z\t2026-11-25T02:00:05Z"))
    outcome = setup.services(run)
    start = outcome.actions[0]
    started = start.script.split("--remove-orphans ", 1)[1].split()
    assert started == [*SERVICES, "admin_worker", "admin_scheduler"]
    assert "store_scheduler, store_worker stay stopped: a restore of their database did not finish" in outcome.text()
    # Without one, every service starts, as Compose knows them.
    run.known.values["stack"] = parse_stack(Values.parse(""))
    start = setup.services(run).actions[0]
    assert start.script.endswith("--remove-orphans")
