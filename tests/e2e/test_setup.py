"""`fab setup` on the sandbox VPS, checked the way a user would check it."""
import re
import shlex

import pytest

from .helpers import curl, fab, ssh

pytestmark = pytest.mark.e2e

PANELS = {"admin": "admin.fikaso.test", "store": "store.fikaso.test", "website": "www.fikaso.test"}


def live_release(info, site):
    folder = f"/srv/fikaso/panels/{site}" if site in PANELS else f"/srv/fikaso/{site}"
    result = ssh(info, f"basename \"$(readlink {folder}/current)\"")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("panel", sorted(PANELS))
def test_each_domain_serves_its_panel_with_a_row_from_its_own_database(deployed, panel):
    code, body = curl(deployed, PANELS[panel], "/")
    assert code == 200, body
    assert f"Hello from the {panel} database" in body
    assert f"fikaso_{panel}" in body
    assert live_release(deployed, panel) in body
    others = [other for other in PANELS if other != panel]
    assert not any(f"Hello from the {other} database" in body for other in others)


@pytest.mark.parametrize("panel", sorted(PANELS))
def test_each_panel_health_route_answers_through_the_proxy(deployed, panel):
    assert curl(deployed, PANELS[panel], "/up")[0] == 200


def test_landing_page_is_served_for_the_bare_domain(deployed):
    code, body = curl(deployed, "fikaso.test", "/")
    assert code == 200
    assert "<title>" in body and "Fikaso" in body
    assert "store.fikaso.test" in body


def test_unknown_host_gets_no_site(deployed):
    code, _ = curl(deployed, "evil.example.com", "/")
    assert code != 200


def test_every_service_runs_and_is_healthy(deployed):
    result = ssh(deployed, "cd /srv/fikaso/stack && docker compose ps --all "
                           "--format '{{.Service}} {{.State}} {{.Health}}'")
    assert result.returncode == 0, result.stderr
    rows = [line.split(" ", 1) for line in result.stdout.strip().splitlines()]
    served = {service: state for service, state in rows if not service.endswith(("_worker", "_scheduler"))}
    assert sorted(served) == sorted(["mysql", "admin_panel", "store_panel", "website_panel", "admin_nginx",
                                     "store_nginx", "website_nginx", "landing_nginx", "nginx_proxy"])
    assert all(state == "running healthy" for state in served.values()), rows
    # fabric.yaml gives the store panel 2 queue workers and the scheduler, which have no health check.
    background = sorted((service, state.strip()) for service, state in rows if service not in served)
    assert background == [("store_scheduler", "running"), ("store_worker", "running"), ("store_worker", "running")]


def test_a_second_setup_changes_nothing_and_says_so(deployed):
    result = fab("-H", deployed["alias"], "setup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "setup: nothing changed" in result.stdout
    steps = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(steps) == 15 and all(" ok " in line for line in steps), result.stdout


def as_store_user(info, sql, database=""):
    """Run SQL in the mysql container as the store panel's database user."""
    login = ("mysql --defaults-extra-file=<(printf '[client]\\nuser=fikaso_store\\npassword=%s\\n' "
             "\"$(cat /run/secrets/store_db_password)\") -h 127.0.0.1 -N -e " + shlex.quote(sql) + " " + database)
    return ssh(info, "cd /srv/fikaso/stack && docker compose exec -T mysql bash -c " + shlex.quote(login))


def test_a_panel_user_cannot_read_another_panels_database(deployed):
    own = as_store_user(deployed, "SELECT COUNT(*) FROM panel_notes", "fikaso_store")
    assert own.returncode == 0 and own.stdout.strip() == "1", own.stdout + own.stderr
    other = as_store_user(deployed, "SELECT COUNT(*) FROM fikaso_admin.panel_notes")
    assert other.returncode != 0
    assert re.search(r"denied", other.stderr, re.I), other.stderr


def test_status_shows_services_and_live_releases(deployed):
    result = fab("-H", deployed["alias"], "status")
    assert result.returncode == 0, result.stderr
    assert "9 of 9 services running and healthy" in result.stdout
    assert ["store", live_release(deployed, "store")] in [line.split() for line in result.stdout.splitlines()]


def test_logs_of_a_service(deployed):
    result = fab("-H", deployed["alias"], "logs", "--service=nginx_proxy", "--tail=5")
    assert result.returncode == 0, result.stderr
    result = fab("-H", deployed["alias"], "logs", "--service=nope")
    assert result.returncode == 1 and "no service named 'nope'" in result.stderr


def test_generated_configs_pass_nginx_t_in_their_containers(deployed):
    for service in ("admin_nginx", "store_nginx", "website_nginx", "landing_nginx", "nginx_proxy"):
        result = ssh(deployed, f"cd /srv/fikaso/stack && docker compose exec -T {service} nginx -t")
        assert result.returncode == 0, service + result.stderr


def test_compose_file_passes_compose_config_on_the_server(deployed):
    assert ssh(deployed, "cd /srv/fikaso/stack && docker compose config --quiet").returncode == 0


def test_env_files_are_private_on_the_server(deployed):
    result = ssh(deployed, "stat -c '%a %n' /srv/fikaso/secrets /srv/fikaso/panels/*/shared/.env")
    modes = dict(line.split(" ", 1)[::-1] for line in result.stdout.strip().splitlines())
    assert modes["/srv/fikaso/secrets"] == "700"
    assert all(modes[f"/srv/fikaso/panels/{p}/shared/.env"] == "600" for p in PANELS)
