from datetime import datetime, timezone
from pathlib import PurePosixPath
from types import SimpleNamespace

import pytest

from fikaso import facts
from fikaso.commands import backup
from fikaso.config import load_settings
from fikaso.plan import Values
from fikaso.remote import Result
from fikaso.runner import Runner
from fikaso.views import render_backups
from fikaso.errors import FikasoError
from fikaso.layout import Layout

from .helpers import ROOT, FactServer, swarm_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_backup_calls_the_script_shipped_in_the_bundle():
    assert backup.now_script(LAYOUT) == "/srv/fikaso/stack/bin/fikaso-backup now"
    assert backup.now_script(LAYOUT, "fikaso_store") == "/srv/fikaso/stack/bin/fikaso-backup now fikaso_store"
    assert backup.verify_script(LAYOUT, None) == "/srv/fikaso/stack/bin/fikaso-backup verify"
    assert backup.verify_script(LAYOUT, "20261124T034444Z") == (
        "/srv/fikaso/stack/bin/fikaso-backup verify 20261124T034444Z")


def test_unknown_database_is_refused_before_anything_runs():
    with pytest.raises(FikasoError, match="no database named 'shop'.*fikaso_admin, fikaso_store, fikaso_website"):
        backup.now_script(LAYOUT, "shop")


def test_list_shows_age_size_databases_and_verification():
    text = ("backup=20261124T034444Z\t10445\tfikaso_admin,fikaso_store\tok\tsnapshot of store release 20261124034440\n"
            "backup=20261120T000000Z\t5\tfikaso_store\tFAILED\n")
    listed = facts.backups(LAYOUT).parse(Values.parse(text))
    table = render_backups(listed, now=datetime(2026, 11, 24, 5, 44, 44, tzinfo=timezone.utc)).splitlines()
    assert table[0].split() == ["BACKUP", "AGE", "SIZE", "KIND", "DATABASES", "VERIFIED"]
    assert table[1].split() == ["20261120T000000Z", "4d", "5", "B", "manual", "fikaso_store", "FAILED"]
    assert table[2].split() == ["20261124T034444Z", "2h", "10.2", "KiB", "snapshot", "of", "store", "release",
                                "20261124034440", "fikaso_admin,fikaso_store", "ok"]


def test_an_empty_list_says_how_to_make_a_backup():
    assert "fab backup.now" in render_backups([])


def test_restore_names_the_backup_and_optionally_one_database():
    assert backup.restore_script(LAYOUT, "20261124T034444Z") == (
        "/srv/fikaso/stack/bin/fikaso-backup restore 20261124T034444Z")
    assert backup.restore_script(LAYOUT, "1", "fikaso_admin").endswith("restore 1 fikaso_admin")
    with pytest.raises(FikasoError, match="No backup given"):
        backup.restore_script(LAYOUT, "")


def test_pull_reads_sizes_and_checksums_in_one_listing():
    files = facts.backup_files(LAYOUT, "1").parse(
        Values.parse("exists=yes\nfile=10 a.sql.zst\nfile=5 manifest\nsum=abc  a.sql.zst\n"))
    assert files.exists and files.sizes == {"a.sql.zst": 10, "manifest": 5} and files.sums == {"a.sql.zst": "abc"}
    assert backup.fetch_script(LAYOUT, "1", "a.sql.zst", 4) == "tail -c +5 /srv/fikaso/backups/1/a.sql.zst"


class FailingRestore(FactServer):
    """A database node whose restore stops half-way through fikaso_store, as the pending file then says."""

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        result = super().run(script, label=label, stdin=stdin, check=check, echo=echo)
        if "fikaso-backup restore" in script:
            return Result("", "fikaso-backup: the restore of fikaso_store from 20261201T031700Z failed half-way", 1)
        return result


def test_a_swarm_restore_that_fails_half_way_keeps_that_panel_in_maintenance_on_every_web_node(monkeypatch):
    from tasks import backup as task
    nodes = [{"host": "node1", "roles": ["manager", "database", "web", "edge"]}, {"host": "node2", "roles": ["web"]}]
    settings = load_settings(swarm_section(nodes), root=ROOT)
    database = FailingRestore({"unfinished_restores": "unfinished=fikaso_store\t20261201T031700Z\t"
                                                      "20261205T101500Z\t2026-12-05T10:15:02Z"})
    web = FactServer({})
    monkeypatch.setattr(task, "open_swarm_runner", lambda c, s, plan: Runner.group(
        [("node1", database, frozenset(nodes[0]["roles"])), ("node2", web, frozenset(nodes[1]["roles"]))]))
    with pytest.raises(FikasoError) as failed:
        task._restore_on_swarm(SimpleNamespace(), settings, "20261201T031700Z", None, False)
    assert "failed half-way" in str(failed.value) and "keeps its panel in maintenance" in failed.value.fix
    for node in (database, web):
        down, up = [a for a in node.actions if "artisan" in a]
        assert all(f"{panel}_panel" in down for panel in ("admin", "store", "website"))
        assert "admin_panel" in up and "website_panel" in up and "store_panel" not in up
