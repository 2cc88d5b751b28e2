import json
from pathlib import PurePosixPath

from fikaso.layout import Layout
from fikaso import facts
from fikaso.commands.compose import SERVICES, logs_script
from fikaso.plan import Values
from fikaso.views import render_status
from fikaso.errors import FikasoError

import pytest

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def parse_facts(text: str) -> facts.StackFacts:
    return facts.parse_stack(Values.parse(text))

FACTS_OUTPUT = """user=deploy
uid=1000
home=/home/deploy
docker=20.10.24
compose=5.6.1
base=writable
sudo=no
folders_missing=no
bundle=abc
secrets=def
live_admin=20261124030000
live_store=
live_website=20261124030001
live_landing=20261124030002
image=fikaso/php:0123456789ab
certificate=store.fikaso.test
certificate=fikaso.test
proxy=0f0f
ps={"Service":"mysql","State":"running","Health":"healthy"}
ps={"Service":"store_panel","State":"exited","Health":""}
disk=1.2G
"""


def test_facts_are_parsed_into_what_steps_decide_on():
    facts = parse_facts(FACTS_OUTPUT)
    assert facts.uid == "1000" and facts.docker == "20.10.24" and facts.compose == "5.6.1"
    assert facts.base_state == "writable" and not facts.sudo and not facts.folders_missing
    assert facts.bundle_hash == "abc" and facts.secrets_hash == "def"
    assert facts.live == {"admin": "20261124030000", "website": "20261124030001", "landing": "20261124030002"}
    assert "fikaso/php:0123456789ab" in facts.images
    assert facts.services["mysql"].healthy and not facts.services["store_panel"].healthy
    assert not facts.all_healthy()
    assert facts.certificates == {"store.fikaso.test", "fikaso.test"} and facts.proxy_hash == "0f0f"


def test_old_compose_json_array_is_understood_too():
    facts = parse_facts('ps=[{"Service":"mysql","State":"running","Health":"healthy"}]')
    assert facts.services["mysql"].healthy


def test_status_counts_each_panels_running_queue_workers_and_scheduler_against_the_setting():
    rows = [{"Service": "store_worker", "State": "running"}, {"Service": "store_worker", "State": "restarting"},
            {"Service": "store_scheduler", "State": "running"}]
    text = render_status(parse_facts("".join(f"ps={json.dumps(row)}\n" for row in rows)), LAYOUT,
                         {"store_worker": 2, "store_scheduler": 1, "admin_worker": 3})
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in text.splitlines() if line.strip()}
    assert lines["store_worker"] == "1 of 2 running"
    assert lines["store_scheduler"] == "1 of 1 running"
    assert lines["admin_worker"] == "0 of 3 running"
    assert "store_worker" not in render_status(parse_facts(""), LAYOUT)


def test_status_names_a_database_a_restore_left_half_loaded():
    text = render_status(parse_facts("unfinished=fikaso_store\t20261120T031700Z\t20261125T020000Z\t2026-11-25T02:00:05Z\n"), LAYOUT)
    assert "fikaso_store: a restore did not finish" in text and "`fab doctor`" in text
    assert "a restore did not finish" not in render_status(parse_facts(""), LAYOUT)


def test_facts_script_reads_everything_in_one_script():
    script = facts.stack(LAYOUT).script
    for needle in ("id -un", "docker version", "docker compose version --short",
                   "/srv/fikaso/stack/.bundle-sha256", "/srv/fikaso/panels/store/current",
                   "/srv/fikaso/landing/current", "ps --all --format json",
                   "/srv/fikaso/certificates/live/*/fullchain.pem", "sha256sum /srv/fikaso/stack/nginx/proxy/proxy.conf"):
        assert needle in script


def test_status_table_shows_every_service_and_release():
    text = render_status(parse_facts(FACTS_OUTPUT), LAYOUT)
    for service in SERVICES:
        assert service in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["SERVICE"] == ["STATE", "HEALTH"] and rows["SITE"] == ["LIVE", "RELEASE"]
    assert rows["mysql"] == ["running", "healthy"]
    assert rows["store_panel"] == ["exited", "-"]
    assert rows["admin_nginx"] == ["absent", "-"]
    assert rows["store"] == ["none"]
    assert rows["admin"] == ["20261124030000"]
    assert "disk used by /srv/fikaso: 1.2G" in text
    assert "1 of 9 services running and healthy" in text


def test_logs_of_a_known_service():
    assert logs_script(LAYOUT, "store_panel", 50, True) == (
        "cd /srv/fikaso/stack && docker compose logs --no-color --timestamps --tail 50 --follow store_panel")


def test_logs_of_an_unknown_service_lists_the_known_ones():
    with pytest.raises(FikasoError, match="no service named 'store'.*store_panel"):
        logs_script(LAYOUT, "store", 50, False)
