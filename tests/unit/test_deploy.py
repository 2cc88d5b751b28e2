"""Deploy's pure parts asserted exactly, its failure paths with a scripted server, and its plan
checked against its run."""
import io
import json
import socket
import subprocess
from pathlib import PurePosixPath

import pytest

from fikaso import facts, records
from fikaso.commands import lock
from fikaso.config import load_settings
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.plan import FACT_HEADER, Values
from fikaso.remote import Result
from fikaso.runner import Runner
from fikaso.steps import deploy
from tasks.deploy import run_site

from .helpers import ROOT, ScriptedRemote, shipped_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_lock_is_an_atomic_mkdir_that_names_its_holder():
    assert lock.lock_script(LAYOUT, "store", {"who": "ana@laptop"}).splitlines() == [
        "mkdir -p /srv/fikaso/state/locks",
        "if mkdir /srv/fikaso/state/locks/store 2>/dev/null; then",
        "  printf '%s\\n' '{\"who\": \"ana@laptop\"}' > /srv/fikaso/state/locks/store/holder",
        "else",
        "  echo \"held=$(cat /srv/fikaso/state/locks/store/holder 2>/dev/null)\"",
        "  exit 75",
        "fi",
    ]


def test_records_go_to_the_release_log_and_the_audit_log():
    lines = records.record_script(LAYOUT, "landing", {"id": "3"}, {"result": "ok"}).splitlines()
    assert lines == [
        "printf '%s\\n' '{\"id\": \"3\"}' >> /srv/fikaso/state/landing.releases.jsonl",
        "printf '%s\\n' '{\"result\": \"ok\"}' >> /srv/fikaso/state/audit.log",
    ]


STATE = """stack=yes
live=2
release=1
release=2
release=3.partial
image=fikaso/php:abc
uid=1000
log={"id": "1", "result": "ok", "at": "2026-11-24T01:00:00Z", "by": "ana@laptop", "commit": "c1"}
log={"id": "2", "result": "ok", "migrations": 2, "at": "2026-11-24T02:00:00Z", "by": "bo@ci", "commit": "",\
 "image": "fikaso/php:abc"}
manifest=abc 644 app/x.php
"""


def parse_state(text: str) -> facts.SiteState:
    return facts.parse_site(Values.parse(text))


def test_state_is_parsed_from_one_read():
    state = parse_state(STATE)
    assert state.stack and state.live == "2" and state.uid == "1000" and state.image == "fikaso/php:abc"
    assert state.complete_releases() == ["1", "2"]
    assert state.entry("2")["migrations"] == 2
    assert state.manifest == {"app/x.php": "abc 644"}


def test_releases_table_marks_the_live_one():
    table = records.releases_table(parse_state(STATE)).splitlines()
    assert table[0].split() == ["RELEASE", "LIVE", "WHEN", "BY", "COMMIT", "PHP", "IMAGE", "RESULT"]
    assert table[2].split() == ["2", "*", "2026-11-24T02:00:00Z", "bo@ci", "-", "abc", "ok"]
    assert table[1].split() == ["1", "2026-11-24T01:00:00Z", "ana@laptop", "c1", "-", "ok"]


def state_answer(text: str, code: int = 0) -> Result:
    return Result(f"{FACT_HEADER} site\n{text}", "", code)


def make_run(action="deploy", **kwargs):
    settings = load_settings(shipped_section(), root=ROOT)
    return deploy.SiteRun(settings=settings, site=settings.panel("store"), actor=records.Actor("ana", "laptop", 1),
                          action=action, **kwargs)


GUARD_END = "\nfi\n"


def body(script: str) -> str:
    """A deploy script without the guard every one of them starts with (commands/lock.py)."""
    assert script.startswith("mkdir -p /srv/fikaso/state/locks\nexec 8>>/srv/fikaso/state/locks/"), script[:200]
    return script.split(GUARD_END, 1)[1]


def run_deploy(remote, run, out=None):
    steps, cleanup = ((deploy.DEPLOY_STEPS, deploy.deploy_cleanup) if run.action == "deploy"
                      else (deploy.ROLLBACK_STEPS, deploy.rollback_cleanup))
    run_site(Runner.on(remote, out=out or io.StringIO()), run, steps, cleanup)


def test_finish_prunes_records_and_unlocks_in_one_script():
    run = make_run(release_id="7")
    run.known.values["site"] = parse_state("stack=yes\nlive=6\n" + "".join(f"release={r}\n" for r in "123456"))
    outcome = deploy.finish(run)
    (action,) = outcome.actions
    lines = action.script.splitlines()
    assert lines[0] == "rm -rf /srv/fikaso/panels/store/releases/1 /srv/fikaso/panels/store/releases/2"
    assert lines[1].startswith("cd /srv/fikaso/stack && docker compose exec -T store_panel rm -rf ")
    assert lines[2].startswith("printf '%s\\n' '{\"at\": ") and '"id": "7"' in lines[2]
    assert lines[2].endswith(">> /srv/fikaso/state/store.releases.jsonl")
    assert lines[3].endswith(">> /srv/fikaso/state/audit.log") and '"result": "ok"' in lines[3]
    assert lines[4:] == ["rm -rf /srv/fikaso/state/locks/store"]


def test_a_held_lock_names_its_holder_and_changes_nothing():
    holder = json.dumps({"who": "bo@ci", "host": "ci-runner", "pid": 7, "action": "deploy store", "since": "x"})
    remote = ScriptedRemote(Result(f"held={holder}\n", "", lock.LOCKED))
    with pytest.raises(FikasoError, match="Another run holds the store lock: bo@ci .*fab lock.release"):
        run_deploy(remote, make_run())
    assert len(remote.scripts) == 1


def test_a_lock_left_by_a_dead_process_on_this_machine_is_taken_over(mocker):
    holder = json.dumps({"who": "ana@laptop", "host": socket.gethostname(), "pid": 999999})
    mocker.patch("os.kill", side_effect=ProcessLookupError)
    remote = ScriptedRemote(Result(f"held={holder}\n", "", lock.LOCKED), Result("", "", 0),
                            state_answer("stack=yes\nlive=1\nrelease=1\n"))
    run = make_run()
    out = io.StringIO()
    mocker.patch.object(deploy.release, "payload", side_effect=OSError("stop after the lock"))
    with pytest.raises(OSError):
        run_deploy(remote, run, out)
    assert "no longer running; taking it over" in out.getvalue()
    assert body(remote.scripts[1]) == "rm -rf /srv/fikaso/state/locks/store"
    assert body(remote.scripts[2]).startswith("mkdir -p /srv/fikaso/state/locks\nif mkdir /srv/fikaso/state/locks/store ")
    assert "lock     ok" in out.getvalue() and "live release 1" in out.getvalue()
    assert "lock     FAILED" not in out.getvalue()


def test_a_failed_step_records_the_failure_and_frees_the_lock(mocker):
    remote = ScriptedRemote(state_answer("stack=yes\nlive=1\nrelease=1\nuid=1000\n"))
    run = make_run()
    mocker.patch.object(deploy.release, "payload", side_effect=OSError("disk on fire"))
    with pytest.raises(OSError):
        run_deploy(remote, run)
    cleanup = body(remote.scripts[-1])
    release = f"/srv/fikaso/panels/store/releases/{run.release_id}"
    assert cleanup.startswith(f"rm -rf {release} {release}.partial\n")
    assert '"result": "failed"' in cleanup and "disk on fire" in cleanup
    assert cleanup.endswith("rm -rf /srv/fikaso/state/locks/store")


def test_rollback_without_an_older_release_says_so():
    remote = ScriptedRemote(state_answer("stack=yes\nlive=1\nrelease=1\n"))
    with pytest.raises(FikasoError, match="no release older than the live one"):
        run_deploy(remote, make_run("rollback"))
    assert body(remote.scripts[-1]) == "rm -rf /srv/fikaso/state/locks/store"


def test_rollback_to_an_unknown_release_lists_the_known_ones():
    remote = ScriptedRemote(state_answer("stack=yes\nlive=2\nrelease=1\nrelease=2\n"))
    with pytest.raises(FikasoError, match="no release 9 of store.*Pick one of: 1, 2"):
        run_deploy(remote, make_run("rollback", target="9"))


def test_deploy_before_setup_asks_for_setup():
    remote = ScriptedRemote(state_answer("stack=no\n"))
    with pytest.raises(FikasoError, match="Run `fab setup` first"):
        run_deploy(remote, make_run())
    assert body(remote.scripts[-1]) == "rm -rf /srv/fikaso/state/locks/store"


def test_a_lock_script_that_fails_after_taking_the_lock_frees_it_and_records_why():
    remote = ScriptedRemote(Result("recovered=yes\n", "nginx did not take the new route", 1))
    with pytest.raises(FikasoError, match="taking the lock failed"):
        run_deploy(remote, make_run())
    cleanup = body(remote.scripts[-1])
    assert '"result": "failed"' in cleanup and cleanup.endswith("rm -rf /srv/fikaso/state/locks/store")


def history(*events: str) -> facts.SiteState:
    """A release log from events: "deploy R", "failed R", "rollback L R" (from L back to R)."""
    lines, releases = [], set()
    for event in events:
        kind, *ids = event.split()
        if kind == "rollback":
            lines.append(json.dumps({"event": "rollback", "from": ids[0], "to": ids[1]}))
        else:
            lines.append(json.dumps({"id": ids[0], "result": "ok" if kind == "deploy" else "failed"}))
            releases.add(ids[0])
    live = [e.split()[-1] for e in events if not e.startswith("failed")][-1]
    return parse_state(f"stack=yes\nlive={live}\n" + "".join(f"release={r}\n" for r in sorted(releases)) +
                       "".join(f"log={line}\n" for line in lines))


@pytest.mark.parametrize("events, target", [
    (("deploy 1", "deploy 2", "deploy 3"), "2"),
    (("deploy 1", "deploy 2", "rollback 2 1", "deploy 3"), "1"),          # never back to one rolled back from
    (("deploy 1", "deploy 2", "deploy 3", "rollback 3 2"), "1"),
    (("deploy 1", "deploy 2", "failed 3", "deploy 4"), "2"),               # a failed release never went live
    (("deploy 1", "deploy 2", "rollback 2 1", "deploy 3", "rollback 3 1", "deploy 4"), "1"),
])
def test_rollback_goes_to_the_release_live_before_the_current_one(events, target):
    assert deploy.previous_live(history(*events)) == target


def test_rollback_with_nothing_live_before_says_what_to_do():
    state = history("deploy 1", "deploy 2", "rollback 2 1")
    assert deploy.previous_live(state) == ""
    remote = ScriptedRemote(state_answer("\n".join(f"{k}={v}" for k, v in [("stack", "yes"), ("live", "1")]) + "\n"
                                         "release=1\nrelease=2\n" + "".join(
                                             f"log={json.dumps(r)}\n" for r in state.log)))
    with pytest.raises(FikasoError, match="no release older than the live one.*--release"):
        run_deploy(remote, make_run("rollback"))


def test_releases_table_shows_which_releases_were_rolled_back():
    table = records.releases_table(history("deploy 1", "deploy 2", "rollback 2 1")).splitlines()
    assert table[2].split()[-3:] == ["ok,", "rolled", "back"]


def test_rollback_with_a_snapshot_gone_names_the_newest_older_backup():
    log = [{"id": "1", "result": "ok"}, {"id": "2", "result": "ok", "snapshot": "20261124T020000Z"}]
    state = "stack=yes\nlive=2\nrelease=1\nrelease=2\n" + "".join(f"log={json.dumps(r)}\n" for r in log)
    listing = (f"{FACT_HEADER} backups\nbackup=20261123T000000Z\t10\tfikaso_store\tok\tscheduled\n"
               "backup=20261123T100000Z\t10\tfikaso_admin\tok\tmanual\n")
    remote = ScriptedRemote(state_answer(state), Result(listing, "", 0))
    with pytest.raises(FikasoError, match="snapshot 20261124T020000Z .* not on the server any more.*"
                                          "newest older backup of fikaso_store is 20261123T000000Z"):
        run_deploy(remote, make_run("rollback", with_database=True))
    assert body(remote.scripts[-1]) == "rm -rf /srv/fikaso/state/locks/store"


def test_a_code_only_rollback_onto_a_half_loaded_database_is_refused_and_frees_the_lock():
    state = "stack=yes\nlive=2\nrelease=1\nrelease=2\n"
    unfinished = (f"{FACT_HEADER} unfinished_restores\n"
                  "unfinished=fikaso_store\t20261120T031700Z\t20261125T020000Z\t2026-11-25T02:00:05Z\n")
    remote = ScriptedRemote(state_answer(state), Result(unfinished, "", 0))
    with pytest.raises(FikasoError, match="restore of fikaso_store from backup 20261120T031700Z .* did not finish.*"
                                          "--id=20261125T020000Z --database=fikaso_store`, then rollback again"):
        run_deploy(remote, make_run("rollback"))
    assert body(remote.scripts[-1]) == "rm -rf /srv/fikaso/state/locks/store"
    assert not any("releases/1 " in script or "current.next" in script for script in remote.scripts)


def test_a_script_waits_until_the_work_an_earlier_run_left_on_the_server_has_ended(tmp_path):
    layout = Layout(PurePosixPath(tmp_path))
    marker = tmp_path / "order"
    # The earlier run's script, still running on the server after its client died...
    earlier = subprocess.Popen(["bash", "-c", lock.one_at_a_time(layout, "store", f"touch {tmp_path}/started; "
                                                                             f"sleep 1; echo earlier >> {marker}")])
    while not (tmp_path / "started").exists():
        assert earlier.poll() is None
    # ...and the next run's first script.
    later = subprocess.run(["bash", "-c", lock.one_at_a_time(layout, "store", f"echo later >> {marker}")],
                           capture_output=True, text=True, timeout=30)
    earlier.wait()
    assert later.returncode == 0 and "waiting for what an earlier run left running on the server" in later.stderr
    assert marker.read_text() == "earlier\nlater\n"


@pytest.mark.parametrize("answer, warned", [("", False), ("workers=stale\n", True)])
def test_a_switch_tells_the_queue_workers_and_warns_when_they_keep_the_old_code(answer, warned):
    run = make_run(release_id="7")
    assert run.site.workers, "the shipped store panel runs queue workers"
    image = deploy.php_image.tag(run.settings, "1000")
    run.known.values["site"] = parse_state(f"stack=yes\nlive=6\nrelease=6\nuid=1000\nimage={image}\n")
    outcome = deploy.switch(run)
    activate, restart = outcome.actions
    assert "queue:restart" in restart.script and "queue:restart" not in activate.script
    judged = outcome.judge([Result("", "", 0), Result(answer, "", 0)])
    assert ("still run the code of 6" in judged.detail) is warned
    assert ("queue workers restart in it" in judged.detail) is not warned
