"""Deploy's pure parts asserted exactly, and its failure paths with a scripted remote."""
import io
import json
import socket
from pathlib import PurePosixPath

import pytest

from fikaso import deploy
from fikaso.config import load_settings
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import Result

from .helpers import ROOT, shipped_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_lock_is_an_atomic_mkdir_that_names_its_holder():
    assert deploy.lock_script(LAYOUT, "store", {"who": "ana@laptop"}).splitlines() == [
        "mkdir -p /srv/fikaso/state/locks",
        "if mkdir /srv/fikaso/state/locks/store 2>/dev/null; then",
        "  printf '%s\\n' '{\"who\": \"ana@laptop\"}' > /srv/fikaso/state/locks/store/holder",
        "else",
        "  echo \"held=$(cat /srv/fikaso/state/locks/store/holder 2>/dev/null)\"",
        "  exit 75",
        "fi",
    ]


def test_finish_prunes_records_and_unlocks_in_one_script():
    lines = deploy.finish_script(LAYOUT, "landing", doomed=["1"], release_record={"id": "3"},
                                 audit_record={"result": "ok"}).splitlines()
    assert lines == [
        "rm -rf /srv/fikaso/landing/releases/1",
        "printf '%s\\n' '{\"id\": \"3\"}' >> /srv/fikaso/state/landing.releases.jsonl",
        "printf '%s\\n' '{\"result\": \"ok\"}' >> /srv/fikaso/state/audit.log",
        "rm -rf /srv/fikaso/state/locks/landing",
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


def test_state_is_parsed_from_one_read():
    state = deploy.parse_state(STATE)
    assert state.stack and state.live == "2" and state.uid == "1000" and state.image == "fikaso/php:abc"
    assert state.complete_releases() == ["1", "2"]
    assert state.entry("2")["migrations"] == 2
    assert state.manifest == {"app/x.php": "abc 644"}


def test_releases_table_marks_the_live_one():
    table = deploy.releases_table(deploy.parse_state(STATE)).splitlines()
    assert table[0].split() == ["RELEASE", "LIVE", "WHEN", "BY", "COMMIT", "PHP", "IMAGE", "RESULT"]
    assert table[2].split() == ["2", "*", "2026-11-24T02:00:00Z", "bo@ci", "-", "abc", "ok"]
    assert table[1].split() == ["1", "2026-11-24T01:00:00Z", "ana@laptop", "c1", "-", "ok"]


class ScriptedRemote:
    """Answers each run with the next scripted Result and remembers the scripts."""

    def __init__(self, *results):
        self.results = list(results)
        self.scripts = []
        self.channels = 0

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        self.scripts.append(script)
        self.channels += 1
        return self.results.pop(0) if self.results else Result("", "", 0)


def make_run(remote, cls=deploy.Deploy, **kwargs):
    settings = load_settings(shipped_section(), root=ROOT)
    return cls(settings=settings, site=settings.panel("store"), remote=remote, reader=remote,
               actor=deploy.Actor("ana", "laptop", 1), action=cls.__name__.lower(), **kwargs)


def test_a_held_lock_names_its_holder_and_changes_nothing():
    holder = json.dumps({"who": "bo@ci", "host": "ci-runner", "pid": 7, "action": "deploy store", "since": "x"})
    remote = ScriptedRemote(Result(f"held={holder}\n", "", deploy.LOCKED))
    with pytest.raises(FikasoError, match="Another run holds the store lock: bo@ci .*fab lock.release"):
        deploy.deploy(make_run(remote), io.StringIO())
    assert len(remote.scripts) == 1


def test_a_lock_left_by_a_dead_process_on_this_machine_is_taken_over(mocker):
    holder = json.dumps({"who": "ana@laptop", "host": socket.gethostname(), "pid": 999999})
    mocker.patch("os.kill", side_effect=ProcessLookupError)
    remote = ScriptedRemote(Result(f"held={holder}\n", "", deploy.LOCKED), Result("", "", 0),
                            Result("stack=yes\nlive=1\nrelease=1\n", "", 0))
    run = make_run(remote)
    out = io.StringIO()
    run.step_lock(out)
    assert "no longer running; taking it over" in out.getvalue()
    assert remote.scripts[1] == "rm -rf /srv/fikaso/state/locks/store"
    assert run.locked and run.previous == "1"


def test_a_failed_step_records_the_failure_and_frees_the_lock(mocker, tmp_path):
    remote = ScriptedRemote(Result("stack=yes\nlive=1\nrelease=1\nuid=1000\n", "", 0))
    run = make_run(remote)
    mocker.patch.object(deploy.release, "payload", side_effect=OSError("disk on fire"))
    with pytest.raises(OSError):
        deploy.deploy(run, io.StringIO())
    cleanup = remote.scripts[-1]
    assert cleanup.startswith(f"rm -rf /srv/fikaso/panels/store/releases/{run.release_id}\n")
    assert '"result": "failed"' in cleanup and "disk on fire" in cleanup
    assert cleanup.endswith("rm -rf /srv/fikaso/state/locks/store")


def test_rollback_without_an_older_release_says_so():
    remote = ScriptedRemote(Result("stack=yes\nlive=1\nrelease=1\n", "", 0))
    with pytest.raises(FikasoError, match="no release older than the live one"):
        deploy.rollback(make_run(remote, deploy.Rollback), io.StringIO())
    assert remote.scripts[-1] == "rm -rf /srv/fikaso/state/locks/store"


def test_rollback_to_an_unknown_release_lists_the_known_ones():
    remote = ScriptedRemote(Result("stack=yes\nlive=2\nrelease=1\nrelease=2\n", "", 0))
    with pytest.raises(FikasoError, match="no release 9 of store.*Pick one of: 1, 2"):
        deploy.rollback(make_run(remote, deploy.Rollback, target="9"), io.StringIO())


def test_deploy_before_setup_asks_for_setup():
    remote = ScriptedRemote(Result("stack=no\n", "", 0))
    with pytest.raises(FikasoError, match="Run `fab setup` first"):
        deploy.deploy(make_run(remote), io.StringIO())
