"""The Swarm form of stack/compose.yaml: what `docker stack deploy` gets on several VPSs."""
from pathlib import PurePosixPath

import pytest
import yaml

from fikaso import swarm_stack
from fikaso.commands.swarm import SWARM_SERVICES
from fikaso.config import load_settings
from fikaso.steps.shared import compose_env

from .helpers import ROOT, shipped_section

STACK_DIR = PurePosixPath("/srv/fikaso/stack")


@pytest.fixture(scope="module")
def form():
    settings = load_settings(shipped_section(), root=ROOT)
    env = compose_env(settings, "1000", "fikaso/php:0123456789ab")
    return yaml.safe_load(swarm_stack.render(env, STACK_DIR, {"admin": 2, "store": 3, "website": 2}))


def test_every_long_running_service_and_no_one_off_tool(form):
    assert set(form["services"]) == set(SWARM_SERVICES)


def test_nothing_swarm_ignores_or_refuses_is_left(form):
    for name, service in form["services"].items():
        assert not {"container_name", "depends_on", "restart", "profiles"} & set(service), name
        assert "${" not in yaml.safe_dump(service), name


def test_mysql_is_pinned_to_the_database_node_and_never_doubled(form):
    deploy = form["services"]["mysql"]["deploy"]
    assert deploy["placement"]["constraints"] == ["node.labels.fikaso.database == true"]
    assert deploy["replicas"] == 1 and deploy["update_config"]["order"] == "stop-first"


def test_panels_run_their_replicas_on_web_nodes_with_health_gated_start_first_updates(form):
    store = form["services"]["store_panel"]
    assert store["deploy"]["replicas"] == 3 and form["services"]["admin_panel"]["deploy"]["replicas"] == 2
    assert store["deploy"]["placement"]["constraints"] == ["node.labels.fikaso.web == true"]
    assert store["deploy"]["update_config"]["order"] == "start-first"
    assert store["deploy"]["update_config"]["failure_action"] == "rollback"
    assert store["deploy"]["endpoint_mode"] == "dnsrr"
    assert store["image"] == "fikaso/php:0123456789ab" and "healthcheck" in store


def test_the_proxy_holds_ports_80_and_443_on_every_edge_node(form):
    proxy = form["services"]["nginx_proxy"]
    assert proxy["deploy"]["mode"] == "global"
    assert proxy["deploy"]["placement"]["constraints"] == ["node.labels.fikaso.edge == true"]
    assert {(p["published"], p["mode"]) for p in proxy["ports"]} == {(80, "host"), (443, "host")}
    assert proxy["deploy"]["update_config"]["order"] == "stop-first"   # the ports cannot be held twice


def test_the_challenges_certbot_writes_on_the_primary_are_served_from_there(form):
    acme = form["services"]["acme"]
    assert acme["deploy"]["replicas"] == 1 and "ports" not in acme
    assert acme["deploy"]["placement"]["constraints"] == ["node.labels.fikaso.certificates == true"]
    assert acme["volumes"] == ["/srv/fikaso/acme:/usr/share/nginx/html:ro"]


def test_site_nginx_runs_on_every_web_node_and_publishes_nothing(form):
    for site in ("admin", "store", "website", "landing"):
        nginx = form["services"][f"{site}_nginx"]
        assert nginx["deploy"]["mode"] == "global" and "ports" not in nginx


def test_paths_are_absolute_and_the_network_is_the_attachable_one_setup_makes(form):
    assert f"{STACK_DIR}/nginx/store:/etc/nginx/conf.d:ro" in form["services"]["store_nginx"]["volumes"]
    assert form["networks"] == {"fikaso": {"external": True, "name": "fikaso_network"}}


def test_an_unset_required_variable_is_named():
    with pytest.raises(ValueError, match="FIKASO_BASE is not set"):
        swarm_stack.interpolate("${FIKASO_BASE:?set FIKASO_BASE}", {})
    assert swarm_stack.interpolate("${A:-x} ${B}", {"B": "b"}) == "x b"


def test_mysql_names_caching_sha2_password_in_both_forms_and_a_server_without_the_option_starts(form):
    compose = yaml.safe_load((ROOT / "stack/compose.yaml").read_text())
    for command in (compose["services"]["mysql"]["command"], form["services"]["mysql"]["command"]):
        # loose-: MariaDB (the offline tests' stand-in) warns about an option it lacks instead of refusing it
        assert "--loose-authentication-policy=caching_sha2_password,," in command
