import shlex
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from fikaso.commands import php_image, release
from fikaso.config import Site, load_settings
from fikaso.layout import Layout

from .helpers import ROOT, shipped_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))
STORE = Site("store", "store.fikaso.test", 8082, Path("/src"), health="/up")
CANDIDATE = "fikaso_store_panel_next"


@pytest.fixture
def settings():
    return load_settings(shipped_section(), root=ROOT)


def test_an_image_is_built_from_the_context_on_stdin_only_when_the_server_lacks_it(settings):
    assert php_image.build_script(settings, "fikaso/php:abc", "1000").splitlines() == [
        "if docker image inspect fikaso/php:abc >/dev/null 2>&1; then",
        "  cat >/dev/null",
        "  echo image=present",
        "else",
        f"  docker build --tag fikaso/php:abc --build-arg PHP_BASE_IMAGE={settings.images['php_base']} "
        f"--build-arg COMPOSER_IMAGE={settings.images['composer']} --build-arg APP_UID=1000 -",
        "  echo image=built",
        "fi",
    ]


def test_the_tag_changes_with_the_build_folder_the_base_images_and_the_uid(settings, tmp_path, monkeypatch):
    first = php_image.tag(settings, "1000")
    assert first.startswith(settings.images["php"] + ":") and first == php_image.tag(settings, "1000")
    assert php_image.tag(settings, "1001") != first
    folder = tmp_path / "php"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM php\n")
    monkeypatch.setattr(php_image, "BUILD_FOLDER", folder)
    changed = php_image.tag(settings, "1000")
    (folder / "Dockerfile").write_text("FROM php\nRUN true\n")
    assert len({first, changed, php_image.tag(settings, "1000")}) == 3


def test_compose_reads_every_panels_pin_after_compose_yaml():
    assert php_image.compose_files() == \
        "compose.yaml:php-image.admin.yaml:php-image.store.yaml:php-image.website.yaml"


def test_a_missing_or_older_pin_takes_the_image_the_panel_runs_and_a_current_pin_stays(tmp_path):
    layout = Layout(PurePosixPath(tmp_path))
    stack = Path(layout.stack)
    stack.mkdir(parents=True)
    fake = tmp_path / "bin"
    fake.mkdir()
    # The server's Docker: admin's and website's containers run fikaso/php:old, store runs none.
    (fake / "docker").write_text('#!/bin/bash\ncase "$*" in *fikaso_store_panel*) echo;; *) echo fikaso/php:old;; esac\n')
    (fake / "docker").chmod(0o755)
    older = "services:\n  website_panel:\n    image: fikaso/php:old\n"
    (stack / "php-image.website.yaml").write_text(older)
    current = php_image.pin_text("admin", "fikaso/php:kept")
    (stack / "php-image.admin.yaml").write_text(current)
    subprocess.run(["bash", "-euc", php_image.missing_pins_script(layout, "fikaso/php:new")], check=True,
                   env={"PATH": f"{fake}:/usr/bin:/bin"})
    pins = {panel: yaml.safe_load((stack / php_image.pin_name(panel)).read_text())["services"]
            for panel in ("admin", "store", "website")}
    assert pins["admin"] == {f"admin_{kind}": {"image": "fikaso/php:kept"} for kind in ("panel", "worker", "scheduler")}
    assert pins["store"] == {f"store_{kind}": {"image": "fikaso/php:new"} for kind in ("panel", "worker", "scheduler")}
    assert pins["website"] == {f"website_{kind}": {"image": "fikaso/php:old"}
                               for kind in ("panel", "worker", "scheduler")}


def test_the_candidate_runs_the_panels_service_on_the_new_image_and_must_become_healthy():
    lines = php_image.start_candidate_script(LAYOUT, "store", "fikaso/php:new").splitlines()
    assert lines[0] == "if ! docker image inspect fikaso/php:new >/dev/null 2>&1; then"
    missing = php_image.missing_image_message("store", "fikaso/php:new")
    assert missing.startswith("The PHP image fikaso/php:new is not on the server any more")
    assert "`fab releases --panel=store`" in missing and "deploy the project as it was at that release's commit" \
        in missing
    assert lines[1] == f"  echo {shlex.quote(missing)} >&2; exit 1"
    assert (f"if docker inspect {CANDIDATE} >/dev/null 2>&1; then docker stop --time 40 {CANDIDATE} >/dev/null; "
            f"docker rm -f {CANDIDATE} >/dev/null; fi") in lines
    assert ("cd /srv/fikaso/stack && COMPOSE_FILE=compose.yaml:php-image.store.candidate.yaml docker compose run "
            f"--detach --no-deps --name {CANDIDATE} store_panel >/dev/null") in lines
    assert f"docker update --restart unless-stopped {CANDIDATE} >/dev/null" in lines
    assert f"  if [ \"$(docker inspect --format '{{{{.State.Health.Status}}}}' {CANDIDATE} 2>/dev/null)\" = healthy ]" \
           " >/dev/null 2>&1; then healthy=yes; break; fi" in lines


def test_a_route_change_reloads_nginx_and_waits_until_new_connections_take_it():
    lines = php_image.route_lines(LAYOUT, "store", CANDIDATE, None)
    assert lines[0] == "mkdir -p /srv/fikaso/panels/store/php-fpm"
    assert "set $php_fpm_live fikaso_store_panel_next:9000;\nset $php_fpm_next store_panel:9000;\n" in lines[1]
    assert lines[3] == ("cd /srv/fikaso/stack && docker compose exec -T store_nginx sh -c 'nginx -t -q && nginx -s reload' "
                        "2>/dev/null")
    assert ("wget -q -O - http://127.0.0.1:9082/fikaso/php-fpm 2>/dev/null)\" = "
            "'fikaso_store_panel_next:9000 store_panel:9000' ]") in "\n".join(lines)
    back = php_image.route_lines(LAYOUT, "store", None, None)
    assert back[0] == "rm -f /srv/fikaso/panels/store/php-fpm/route.conf"


def test_activation_on_a_new_image_previews_and_serves_on_the_candidate_then_settles_on_the_service():
    lines = release.activate_script(LAYOUT, STORE, "2", "1", image="fikaso/php:new").splitlines()
    text = "\n".join(lines)
    preview_route = text.index("set $php_fpm_live store_panel:9000;\nset $php_fpm_next fikaso_store_panel_next:9000;")
    preview = text.index("http://127.0.0.1:9082/up")
    live_route = text.index("set $php_fpm_live fikaso_store_panel_next:9000;\nset $php_fpm_next store_panel:9000;")
    switch = text.index("mv -T /srv/fikaso/panels/store/current.next /srv/fikaso/panels/store/current")
    pin = text.index("> /srv/fikaso/stack/php-image.store.yaml.tmp")
    recreate = text.index("docker compose up --detach --no-deps --wait --wait-timeout 120 store_panel")
    assert preview_route < preview < live_route < switch < pin < recreate
    assert lines[-1] == "rm -f /srv/fikaso/stack/php-image.store.candidate.yaml"
    # On either failure: back to the service on the old image, and the candidate goes.
    assert text.count("rm -f /srv/fikaso/panels/store/php-fpm/route.conf") == 3
    assert text.count(f"docker stop --time 40 {CANDIDATE}") == 3


def test_an_interrupted_move_is_finished_when_the_live_site_was_on_the_candidate():
    lines = php_image.recover_script(LAYOUT, "store").splitlines()
    assert lines[:2] == ["if [ -f /srv/fikaso/panels/store/php-fpm/route.conf ]; then", "  echo recovered=yes"]
    assert lines[2] == (f"  if grep -q 'php_fpm_live {CANDIDATE}:' /srv/fikaso/panels/store/php-fpm/route.conf "
                        f"2>/dev/null && docker inspect {CANDIDATE} >/dev/null 2>&1; then")
    assert lines[3] == f"    image=$(docker inspect --format '{{{{.Config.Image}}}}' {CANDIDATE})"
    otherwise = lines.index("  else")
    assert "docker compose up --detach --no-deps" in "\n".join(lines[:otherwise])
    assert "docker compose up" not in "\n".join(lines[otherwise:])
    assert lines[-2:] == ["  fi", "fi"]
