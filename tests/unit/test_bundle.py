"""The bundle a user uploads: rendered nginx configs, the compose file, the PHP image's build files."""
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from fikaso import bundle, setup
from fikaso.config import load_settings

from .helpers import ROOT, shipped_section


@pytest.fixture(scope="module")
def rendered():
    return bundle.render_nginx(setup.bundle_context(load_settings(shipped_section(), root=ROOT)))


def test_each_site_gets_its_own_config(rendered):
    assert sorted(rendered) == ["nginx/admin/admin.conf", "nginx/landing/landing.conf",
                                "nginx/proxy/proxy.conf", "nginx/store/store.conf",
                                "nginx/website/website.conf"]
    assert "server_name store.fikaso.test;" in rendered["nginx/store/store.conf"]
    assert "listen 8082 default_server;" in rendered["nginx/store/store.conf"]
    assert "set $php_fpm store_panel:9000;" in rendered["nginx/store/store.conf"]


def test_only_the_front_controller_reaches_php_fpm_with_the_real_release_path(rendered):
    conf, preview = rendered["nginx/admin/admin.conf"].split("# A candidate release")
    assert conf.count("fastcgi_pass") == 1 and preview.count("fastcgi_pass") == 1
    assert "listen 127.0.0.1:9081;" in preview and "root /var/www/app/next/public;" in preview
    assert "location = /index.php {\n        fastcgi_pass $php_fpm;" in conf
    assert "fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;" in conf
    assert "location ~ \\.php$ {\n        return 404;" in conf


def test_proxy_routes_each_domain_and_closes_unknown_hosts(rendered):
    conf = rendered["nginx/proxy/proxy.conf"]
    assert "listen 80 default_server;\n    server_name _;\n    return 444;" in conf
    for domain, upstream in (("admin.fikaso.test", "admin_nginx:8081"), ("store.fikaso.test", "store_nginx:8082"),
                             ("www.fikaso.test", "website_nginx:8083"), ("fikaso.test", "landing_nginx:8084")):
        block = conf.split(f"server_name {domain};", 1)[1].split("\n}", 1)[0]
        assert f"http://{upstream};" in block


def test_rendering_is_deterministic(rendered):
    again = bundle.render_nginx(setup.bundle_context(load_settings(shipped_section(), root=ROOT)))
    assert again == rendered


def test_a_missing_setting_fails_rendering_instead_of_writing_an_empty_value():
    with pytest.raises(jinja2.UndefinedError):
        bundle.render_nginx({"panels": [{"name": "admin", "port": 8081}], "landing": {"domain": "x", "port": 1}})


def test_bundle_tree_holds_what_compose_refers_to(tmp_path):
    dest = tmp_path / "stack"
    bundle.build_bundle({"panels": [], "landing": {"domain": "fikaso.test", "port": 8084}}, dest,
                        {"FIKASO_BASE": "/srv/fikaso"})
    assert (dest / ".env").read_text() == "FIKASO_BASE=/srv/fikaso\n"
    for path in ("compose.yaml", "dockerfiles/php/Dockerfile", "init-db/01-databases.sh",
                 "nginx/landing/landing.conf", "nginx/proxy/proxy.conf"):
        assert (dest / path).is_file(), path


def test_compose_settings_must_be_single_lines():
    with pytest.raises(ValueError):
        bundle.env_file({"FIKASO_BASE": "/srv\nX=1"})


def _write_for_gixy(rendered, tmp_path: Path) -> list[Path]:
    mains = []
    for name, text in rendered.items():
        conf = tmp_path / name
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
        main = conf.parent / "main.conf"
        main.write_text(f"events {{}}\nhttp {{\n    include {conf};\n}}\n")
        mains.append(main)
    return mains


def test_gixy_finds_nothing_in_any_config(rendered, tmp_path):
    gixy = shutil.which("gixy") or str(Path(ROOT / ".venv" / "bin" / "gixy"))
    if not Path(gixy).exists():
        pytest.skip("gixy-ng is not installed (make test installs it)")
    for main in _write_for_gixy(rendered, tmp_path):
        result = subprocess.run([gixy, "-f", "text", str(main)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No issues found." in result.stdout, result.stdout


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (make test installs it)")
    for dockerfile in (ROOT / "dockerfiles/php/Dockerfile", *sorted((ROOT / "sandbox").glob("*/Dockerfile")),
                       *sorted((ROOT / "sandbox/standins").glob("*/Dockerfile"))):
        result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
        assert result.returncode == 0, f"{dockerfile}: {result.stdout}{result.stderr}"


def test_no_env_file_or_secret_can_enter_the_php_image():
    rules = [line for line in (ROOT / "dockerfiles/php/.dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules[0] == "*"  # everything is left out unless named
    assert "**/.env" in rules and not any(rule.startswith("!") and "env" in rule for rule in rules)


def test_compose_file_passes_docker_compose_config():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"],
                                                        capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed (make test installs it)")
    result = subprocess.run(["docker", "compose", "--project-directory", str(ROOT), "--env-file",
                             str(ROOT / "stack/example.env"), "-f", str(ROOT / "stack/compose.yaml"),
                             "config", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_backup_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make test installs it)")
    scripts = [ROOT / "stack/bin/fikaso-backup", ROOT / "init-db/01-databases.sh", ROOT / "scripts/install-host.sh",
               ROOT / "sandbox/vps/entrypoint.sh", ROOT / "sandbox/standins/mysql/docker-entrypoint.sh",
               ROOT / "dockerfiles/php/install-extensions.sh"]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
