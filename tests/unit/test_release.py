"""Release scripts asserted exactly, and the incremental payload's behaviour."""
import http.server
import io
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from fikaso.commands import release
from fikaso.config import Site
from fikaso.layout import Layout
from sandbox.vps import free_port

from .helpers import http_server

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))
REL = "/srv/fikaso/panels/store/releases/20261124030000"


def test_first_upload_lands_in_a_partial_folder_then_is_renamed():
    assert release.upload_script(LAYOUT, "store", "20261124030000", None).splitlines() == [
        "rm -rf /srv/fikaso/panels/store/releases/*.partial",
        f"mkdir -p {REL}.partial",
        f"tar -x --no-same-owner -C {REL}.partial",
        f"rm -f {REL}.partial/.fikaso-link-list",
        f"ln -sfn ../../shared/.env {REL}.partial/.env",
        f"rm -rf {REL}.partial/storage {REL}.partial/bootstrap/cache",
        f"ln -sfn ../../shared/storage {REL}.partial/storage",
        f"mkdir -p {REL}.partial/bootstrap",
        f"ln -sfn /var/www/app/shared/bootstrap-cache/20261124030000 {REL}.partial/bootstrap/cache",
        f"mv -T {REL}.partial {REL}",
    ]


def test_next_upload_hard_links_unchanged_files_from_the_live_release():
    lines = release.upload_script(LAYOUT, "store", "20261124030000", "20261124020000").splitlines()
    assert lines[3] == (
        f"if [ -s {REL}.partial/.fikaso-link-list ]; then "
        "(cd /srv/fikaso/panels/store/releases/20261124020000 && "
        f"xargs -0 cp -l --parents -t {REL}.partial < {REL}.partial/.fikaso-link-list); fi")


def test_landing_release_has_no_laravel_links():
    script = release.upload_script(LAYOUT, "landing", "1", None)
    assert "/srv/fikaso/landing/releases/1.partial" in script
    assert ".env" not in script and "storage" not in script


def test_install_runs_composer_migrations_and_caches_in_the_panel_container():
    own, run = release.install_script(LAYOUT, "store", "7", "1000").splitlines()
    assert own == ("cd /srv/fikaso/stack && docker compose exec -T -u 0 store_panel chown 1000:1000 "
                   "/var/www/app/shared/storage /var/www/app/shared/bootstrap-cache")
    assert run.startswith("cd /srv/fikaso/stack && docker compose exec -T -w /var/www/app/releases/7 "
                          "store_panel sh -c ")
    order = ["mkdir -p", "composer install --no-dev --optimize-autoloader", "php artisan migrate --force",
             "php artisan config:cache", "php artisan route:cache", "php artisan view:cache",
             "php artisan storage:link"]
    positions = [run.index(part) for part in order]
    assert positions == sorted(positions)


def test_switch_is_an_atomic_rename_of_a_relative_link():
    assert release.switch_script(LAYOUT, "admin", "9").splitlines() == [
        "ln -sfn releases/9 /srv/fikaso/panels/admin/current.next",
        "mv -T /srv/fikaso/panels/admin/current.next /srv/fikaso/panels/admin/current",
    ]


def test_site_check_asks_the_proxy_with_the_domain_as_host():
    assert release.check_site_script(LAYOUT, "store.fikaso.test", "/up").startswith(
        "cd /srv/fikaso/stack && docker compose exec -T nginx_proxy sh -c ")
    assert release.check_site_script(LAYOUT, "store.fikaso.test", "/up", maintenance=True).endswith(
        " check store.fikaso.test http://127.0.0.1:8080/up maintenance")


@pytest.fixture(scope="module")
def answering():
    """A local server answering /<status> with that status."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(int(self.path.strip("/")))
            self.end_headers()

        def log_message(self, *args):
            pass
    with http_server(Handler) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("status, maintenance, passes, said", [
    (200, "", True, ""), (204, "", True, ""),
    (503, "maintenance", True, "maintenance=yes"), (503, "", False, "answered HTTP 503"),
    (500, "maintenance", False, "answered HTTP 500"), (502, "maintenance", False, "answered HTTP 502")])
def test_a_site_check_passes_a_2xx_and_a_panels_maintenance_page_only(answering, status, maintenance, passes, said):
    done = subprocess.run(["sh", "-c", release.CHECK_ANSWER, "check", "store.fikaso.test", f"{answering}/{status}",
                           maintenance], capture_output=True, text=True, timeout=30)
    assert (done.returncode == 0) == passes and said in done.stdout + done.stderr


def test_a_site_check_that_reaches_nothing_says_no_response():
    done = subprocess.run(["sh", "-c", release.CHECK_ANSWER, "check", "store.fikaso.test",
                           f"http://127.0.0.1:{free_port()}/up", ""], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stderr.strip() == "no response"


STORE = Site("store", "store.fikaso.test", 8082, Path("/src"), health="/up")


def test_activate_checks_the_release_on_the_preview_port_before_switching():
    lines = release.activate_script(LAYOUT, STORE, "2", "1").splitlines()
    assert lines[:2] == ["ln -sfn releases/2 /srv/fikaso/panels/store/next.tmp",
                         "mv -T /srv/fikaso/panels/store/next.tmp /srv/fikaso/panels/store/next"]
    preview = [i for i, line in enumerate(lines) if "store_nginx wget -q -S -O /dev/null http://127.0.0.1:9082/up" in line]
    switch = lines.index(release.switch_lines(LAYOUT, "store", "2")[1])
    assert preview and preview[0] < switch
    failed = lines.index("  echo 'failed before the switch' >&2")
    assert lines[failed - 2:failed + 3] == ["if [ \"$healthy\" != yes ]; then", MISSING,
                                            "  echo 'failed before the switch' >&2", "  exit 4", "fi"]
    assert failed < switch


def test_activate_switches_back_when_the_site_fails_through_the_proxy():
    lines = release.activate_script(LAYOUT, STORE, "2", "1").splitlines()
    switch = lines.index(release.switch_lines(LAYOUT, "store", "2")[1])
    after = lines[switch:]
    assert any("nginx_proxy wget -q -S -O /dev/null --header 'Host: store.fikaso.test' http://127.0.0.1:8080/up" in line
               for line in after)
    assert after[-7:] == ["if [ \"$healthy\" != yes ]; then",
                          *(f"  {line}" for line in release.switch_lines(LAYOUT, "store", "1")), MISSING,
                          "  echo 'failed after the switch: switched back' >&2", "  exit 4", "fi"]


def test_activate_of_a_first_release_removes_the_link_on_failure():
    landing = Site("landing", "fikaso.test", 8084, Path("/src"))
    lines = release.activate_script(LAYOUT, landing, "2", None).splitlines()
    assert lines[-5] == "  rm -f /srv/fikaso/landing/current"
    assert any("landing_nginx wget -q -S -O /dev/null http://127.0.0.1:9084/ " in line for line in lines)


MISSING = f"  if [ \"$healthy\" = missing ]; then echo '{release.NO_HEALTH_ROUTE}' >&2; fi"


def test_prune_keeps_the_newest_and_never_the_live_or_previous():
    releases = ["1", "2", "3", "4", "5", "6", "7.partial"]
    assert release.prune_candidates(releases, 3, {"6", "2"}) == ["1", "3"]
    assert release.prune_candidates(["1", "2"], 3, set()) == []


def test_prune_removes_release_folders_and_their_bootstrap_caches():
    assert release.prune_script(LAYOUT, "store", ["1", "3"]).splitlines() == [
        "rm -rf /srv/fikaso/panels/store/releases/1 /srv/fikaso/panels/store/releases/3",
        "cd /srv/fikaso/stack && docker compose exec -T store_panel rm -rf "
        "/var/www/app/shared/bootstrap-cache/1 /var/www/app/shared/bootstrap-cache/3",
    ]
    assert release.prune_script(LAYOUT, "store", []) == ""


def _names(payload):
    with tarfile.open(fileobj=io.BytesIO(payload.archive.data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_payload_sends_only_changed_files_and_lists_the_rest(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.php").write_text("a")
    (tmp_path / "b.php").write_text("b")
    first = release.payload(tmp_path, "1", {})
    assert (first.sent, first.linked) == (2, 0)
    live = release.parse_manifest(_names(first)[".fikaso-manifest"].decode().splitlines())
    (tmp_path / "b.php").write_text("b2")
    second = release.payload(tmp_path, "2", live)
    names = _names(second)
    assert (second.sent, second.linked) == (1, 1)
    assert names["b.php"] == b"b2" and "app/a.php" not in names and "app" in names
    assert names[".fikaso-link-list"] == b"app/a.php\0"
    assert names["RELEASE"] == b"2\n"
    assert second.source_sha != first.source_sha
