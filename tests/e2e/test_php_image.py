"""A deploy that changes dockerfiles/php moves the panel to a new PHP image; a rollback moves it back."""
import json

import pytest

from . import apps
from .helpers import copy_project, fab, fab_timed, ssh
from .load import StrictLoad, fetch_https
from .test_deploy import STORE, SWITCHED, live, version

pytestmark = pytest.mark.e2e


def php_setting(info, container: str, name: str) -> str:
    result = ssh(info, f"docker exec {container} php -r 'echo ini_get(\"{name}\");'")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def image_of(info, container: str) -> str:
    return ssh(info, f"docker inspect --format '{{{{.Config.Image}}}}' {container}").stdout.strip()


def leftovers(info) -> str:
    """A candidate container, its pin or a route file that a finished move would have removed."""
    return ssh(info, "docker ps -a --format '{{.Names}}' | grep _panel_next; "
                     "ls /srv/fikaso/stack/*.candidate.yaml /srv/fikaso/panels/store/php-fpm/*.conf 2>/dev/null").stdout


def secure_page(info) -> str:
    code, body = fetch_https(info, STORE)
    assert code == 200, body
    return body


def test_a_changed_php_image_ships_with_a_deploy_and_goes_back_with_a_rollback(https, tmp_path):
    deployed = https
    project = copy_project(tmp_path / "project")
    ini = project / "dockerfiles" / "php" / "conf.d" / "zz-fikaso.ini"
    ini.write_text(ini.read_text().replace("memory_limit = 256M", "memory_limit = 384M"))
    source = apps.variant(tmp_path, "image2")
    # Start from the project's own image whatever an earlier run left: a deploy from the
    # unchanged project moves store to it (or only ships code when it runs it already).
    start = fab("deploy", "--panel=store")
    assert start.returncode == 0, start.stdout + start.stderr
    before, release_before = image_of(deployed, "fikaso_store_panel"), live(deployed)
    version_before = version(secure_page(deployed))
    assert before in start.stdout, start.stdout
    admin_before = ssh(deployed, "docker inspect --format '{{.Id}} {{.State.StartedAt}}' fikaso_admin_panel").stdout

    with StrictLoad(https, STORE, tls=https["tls"]) as load:
        shipped, start, end, marks = fab_timed("deploy", "--panel=store", cwd=project, marks={"switch": SWITCHED},
                                               env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)})
        assert shipped.returncode == 0, shipped.stdout + shipped.stderr
        load.settle(end)
        print(load.check(start, end, switched=marks["switch"], new="image2", name="a move to a new PHP image"))
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert any(line.split()[2:4] == ["image", "changed"] for line in shipped.stdout.splitlines()
               if line.startswith("[")), shipped.stdout
    new = image_of(deployed, "fikaso_store_panel")
    assert new != before and new in shipped.stdout
    assert php_setting(deployed, "fikaso_store_panel", "memory_limit") == "384M"
    assert version(secure_page(deployed)) == "image2"
    # Other panels keep their image and their container.
    assert php_setting(deployed, "fikaso_admin_panel", "memory_limit") == "256M"
    assert ssh(deployed, "docker inspect --format '{{.Id}} {{.State.StartedAt}}' fikaso_admin_panel").stdout == \
        admin_before
    assert leftovers(deployed) == ""
    record = json.loads(ssh(deployed, "tail -n 1 /srv/fikaso/state/store.releases.jsonl").stdout)
    assert record["image"] == new

    with StrictLoad(https, STORE, tls=https["tls"]) as load:
        back, start, end, marks = fab_timed("rollback", "--panel=store", f"--release={release_before}",
                                            marks={"switch": SWITCHED})
        assert back.returncode == 0, back.stdout + back.stderr
        load.settle(end)
        print(load.check(start, end, switched=marks["switch"], new=version_before, name="a rollback to the old image"))
    assert image_of(deployed, "fikaso_store_panel") == before
    assert php_setting(deployed, "fikaso_store_panel", "memory_limit") == "256M"
    assert version(secure_page(deployed)) != "image2"
    assert leftovers(deployed) == ""
    # The pins say what runs, so a setup from the unchanged project changes nothing.
    again = fab("setup")
    assert again.returncode == 0 and "setup: nothing changed" in again.stdout, again.stdout + again.stderr
