"""Queue workers and the scheduler (fabric.yaml gives the store panel 2 workers and the scheduler)."""
import re
import time

import pytest

from . import apps
from .helpers import fab, ssh
from .test_deploy import deploy_store, live
from .test_restore import as_root

pytestmark = pytest.mark.e2e

ARTISAN = "cd /srv/fikaso/stack && docker compose exec -T -w /var/www/app/current store_panel php artisan"


def wait_until(what: str, condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.5)


def runs(info, kind: str) -> list[tuple[str, str]]:
    """(label, release) of each run the example app recorded."""
    result = as_root(info, f"SELECT label, `release` FROM panel_runs WHERE kind = '{kind}' ORDER BY id;")
    assert result.returncode == 0, result.stderr
    return [tuple(line.split("\t")) for line in result.stdout.splitlines()]


def ran(info, label: str) -> str:
    """The release that ran the job `label`, or "" while it has not."""
    return dict(runs(info, "job")).get(label, "")


def dispatch(info, label: str, seconds: int = 0) -> None:
    result = ssh(info, f"{ARTISAN} panel:dispatch {label} --seconds={seconds}")
    assert result.returncode == 0, result.stdout + result.stderr


def worker_starts(info) -> list[str]:
    """Each worker container's id and start time: they stay up across deploys."""
    result = ssh(info, "docker ps --filter label=com.docker.compose.service=store_worker "
                       "--format '{{.ID}}' | xargs -r docker inspect --format '{{.Id}} {{.State.StartedAt}}' | sort")
    return result.stdout.split("\n")


def test_status_shows_the_workers_and_the_scheduler_running(deployed):
    result = fab("status")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^store_worker +2 of 2 running$", result.stdout, re.M), result.stdout
    assert re.search(r"^store_scheduler +1 of 1 running$", result.stdout, re.M), result.stdout
    assert "admin_worker" not in result.stdout


def test_setup_brings_back_a_worker_that_was_stopped(deployed):
    stopped = ssh(deployed, "docker stop $(docker ps -q --filter label=com.docker.compose.service=store_worker "
                            "| head -n 1)")
    assert stopped.returncode == 0, stopped.stderr
    assert re.search(r"^store_worker +1 of 2 running$", fab("status").stdout, re.M)
    result = fab("setup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^store_worker +2 of 2 running$", fab("status").stdout, re.M)


def test_a_job_in_hand_finishes_on_its_release_and_the_workers_take_later_jobs_in_the_new_one(deployed, tmp_path):
    token = str(int(time.time()))
    before = live(deployed)
    dispatch(deployed, f"quick-{token}")
    wait_until("a queued job run by a worker", lambda: ran(deployed, f"quick-{token}"))
    assert ran(deployed, f"quick-{token}") == before
    workers = worker_starts(deployed)
    assert len([line for line in workers if line]) == 2

    # A job that is still working while the deploy switches.
    dispatch(deployed, f"long-{token}", seconds=20)
    claimed = "SELECT COUNT(*) FROM jobs WHERE reserved_at IS NOT NULL;"
    wait_until("a worker taking the long job", lambda: as_root(deployed, claimed).stdout.strip() == "1", 30)
    deployed_now = deploy_store(apps.variant(tmp_path, f"workers-{token}"))
    assert deployed_now.returncode == 0, deployed_now.stdout + deployed_now.stderr
    assert "queue workers restart in it" in deployed_now.stdout, deployed_now.stdout
    after = live(deployed)
    assert after != before

    dispatch(deployed, f"later-{token}")
    wait_until("the long job", lambda: ran(deployed, f"long-{token}"), 60)
    wait_until("a job queued after the deploy", lambda: ran(deployed, f"later-{token}"), 60)
    assert ran(deployed, f"long-{token}") == before, "the job in hand did not finish on its own release"
    assert ran(deployed, f"later-{token}") == after, "a worker still runs the previous release"
    assert worker_starts(deployed) == workers, "the worker containers restarted: their scripts should have"


def test_the_scheduler_runs_each_minute_once_even_when_two_claim_it(deployed):
    current = live(deployed)
    wait_until("a scheduled command in the live release",
               lambda: any(release == current for _, release in runs(deployed, "tick")), 75)
    # A second scheduler, twice at once, beside the running one: each minute is claimed once.
    twice = ("cd /srv/fikaso/stack && for n in 1 2; do docker compose exec -T store_scheduler "
             "/opt/fikaso/bin/fikaso-scheduler once & done; wait")
    assert ssh(deployed, twice).returncode == 0
    ticks = runs(deployed, "tick")
    minutes = [label for label, _ in ticks]
    assert len(minutes) == len(set(minutes)), f"a minute ran twice: {minutes}"
