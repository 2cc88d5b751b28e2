"""The bundle a user uploads: rendered nginx configs, the compose file, the PHP image's build files."""
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from fikaso import bundle
from fikaso.config import load_settings

from .helpers import ROOT, shipped_section


DOMAINS = ("admin.fikaso.test", "store.fikaso.test", "www.fikaso.test", "fikaso.test")


def every_config():
    context = bundle.context(load_settings(shipped_section(), root=ROOT))
    return {**bundle.render_nginx(context), "nginx/proxy/proxy.conf": bundle.render_proxy(context, []),
            "nginx/proxy-tls/proxy.conf": bundle.render_proxy(context, DOMAINS)}


@pytest.fixture(scope="module")
def rendered():
    return every_config()


def server_block(conf: str, listen: str, domain: str) -> str:
    """The server block that listens on `listen` for `domain`."""
    for block in conf.split("\nserver {")[1:]:
        block = block.split("\n}", 1)[0]
        if f"listen {listen}" in block and f"server_name {domain};" in block:
            return block
    raise AssertionError(f"no server block for {domain} on {listen}")


def test_each_site_gets_its_own_config():
    context = bundle.context(load_settings(shipped_section(), root=ROOT))
    rendered = bundle.render_nginx(context)
    assert sorted(rendered) == ["nginx/admin/admin.conf", "nginx/landing/landing.conf",
                                "nginx/store/store.conf", "nginx/website/website.conf"]
    assert "server_name store.fikaso.test;" in rendered["nginx/store/store.conf"]
    assert "listen 8082 default_server;" in rendered["nginx/store/store.conf"]
    conf = rendered["nginx/store/store.conf"]
    # Both servers go to the panel's service unless a move to another PHP image routes them elsewhere.
    assert conf.count("set $php_fpm_live store_panel:9000;\n    set $php_fpm_next store_panel:9000;\n"
                      "    include /var/www/app/php-fpm/*.conf;") == 2
    assert 'location = /fikaso/php-fpm {\n        default_type text/plain;\n        return 200 "$php_fpm_live ' \
           '$php_fpm_next";' in conf.split("# A candidate release")[1]


def test_only_the_front_controller_reaches_php_fpm_with_the_real_release_path(rendered):
    conf, preview = rendered["nginx/admin/admin.conf"].split("# A candidate release")
    assert conf.count("fastcgi_pass") == 1 and preview.count("fastcgi_pass") == 1
    assert "listen 127.0.0.1:9081;" in preview and "root /var/www/app/next/public;" in preview
    assert "location = /index.php {\n" in conf and "gzip off;\n        fastcgi_pass $php_fpm_live;" in conf  # BREACH
    assert "fastcgi_pass $php_fpm_next;" in preview
    assert "fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;" in conf
    assert "location ~ \\.php$ {\n        return 404;" in conf


UPSTREAMS = dict(zip(DOMAINS, ("admin_nginx:8081", "store_nginx:8082", "website_nginx:8083", "landing_nginx:8084")))


def test_proxy_routes_each_domain_and_closes_unknown_hosts(rendered):
    conf = rendered["nginx/proxy/proxy.conf"]
    assert "listen 80 default_server;\n    server_name _;\n    return 444;" in conf
    for domain, upstream in UPSTREAMS.items():
        assert f"http://{upstream};" in server_block(conf, "80", domain)
    assert "listen 443" not in conf and "\nssl_" not in conf  # no certificate yet: nothing to serve HTTPS with
    for domain in UPSTREAMS:  # Fikaso's own checks reach every site on 8080 inside the container
        assert "listen 127.0.0.1:8080;" in server_block(conf, "80", domain)


def test_proxy_with_certificates_serves_https_and_redirects_http_except_challenges(rendered):
    conf = rendered["nginx/proxy-tls/proxy.conf"]
    for domain, upstream in UPSTREAMS.items():
        http = server_block(conf, "80", domain)
        assert "location ^~ /.well-known/acme-challenge/ {\n        root /var/www/acme;" in http
        assert f"return 308 https://{domain}$request_uri;" in http and "proxy_pass" not in http
        https = server_block(conf, "443 ssl http2", domain)
        assert "listen 127.0.0.1:8080;" in https and "8080" not in http
        # Read at each handshake, from the proxy's copy: a renewal needs no reload.
        assert "ssl_certificate /etc/nginx/certificates/$fikaso_certificate.pem;" in https
        assert "ssl_certificate_key /etc/nginx/certificates/$fikaso_certificate.pem;" in https
        assert f"\n    {domain} {domain};\n" in conf.split("map $ssl_server_name $fikaso_certificate {")[1].split("}")[0]
        assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in https
        assert f"http://{upstream};" in https
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf and "DHE-RSA" not in conf.replace("ECDHE-RSA", "")
    assert "ssl_stapling" not in conf and "ssl_prefer_server_ciphers on;" in conf
    assert "listen 443 ssl http2 default_server;\n    server_name _;\n    ssl_reject_handshake on;" in conf


def test_only_domains_with_a_certificate_get_https():
    context = bundle.context(load_settings(shipped_section(), root=ROOT))
    conf = bundle.render_proxy(context, ["store.fikaso.test", "not-ours.example.com"])
    assert "return 308" in server_block(conf, "80", "store.fikaso.test")
    assert "proxy_pass" in server_block(conf, "80", "admin.fikaso.test")
    assert "not-ours" not in conf and conf.count("ssl_certificate ") == 1


def test_on_a_swarm_every_proxy_gets_challenges_from_the_acme_service():
    context = {**bundle.context(load_settings(shipped_section(), root=ROOT)), "swarm": True}
    block = server_block(bundle.render_proxy(context, ["store.fikaso.test"]), "80", "store.fikaso.test")
    assert "proxy_pass $acme_upstream;" in block and "/var/www/acme" not in block
    one_vps = server_block(bundle.render_proxy({**context, "swarm": False}, []), "80", "store.fikaso.test")
    assert "root /var/www/acme;" in one_vps and "acme_upstream" not in one_vps


def test_rendering_is_deterministic(rendered):
    assert every_config() == rendered


def test_a_missing_setting_fails_rendering_instead_of_writing_an_empty_value():
    with pytest.raises(jinja2.UndefinedError):
        bundle.render_nginx({"panels": [{"name": "admin", "port": 8081}], "landing": {"domain": "x", "port": 1}})


def test_bundle_tree_holds_what_compose_refers_to(tmp_path):
    dest = tmp_path / "stack"
    bundle.build_bundle({"panels": [], "landing": {"domain": "fikaso.test", "port": 8084}}, dest,
                        {"FIKASO_BASE": "/srv/fikaso"})
    assert (dest / ".env").read_text() == "FIKASO_BASE=/srv/fikaso\n"
    for path in ("compose.yaml", "init-db/01-databases.sh",
                 "nginx/landing/landing.conf"):
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
    shellcheck = shutil.which("shellcheck") or str(ROOT / ".venv" / "bin" / "shellcheck")
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed (make test installs it)")
    scripts = [ROOT / "stack/bin/fikaso-backup", ROOT / "stack/bin/fikaso-certs", ROOT / "init-db/01-databases.sh", ROOT / "scripts/install-host.sh",
               ROOT / "sandbox/vps/entrypoint.sh", ROOT / "sandbox/standins/mysql/docker-entrypoint.sh",
               ROOT / "dockerfiles/php/install-extensions.sh"]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_values_the_stack_scripts_share_come_from_the_bundle_env_only():
    from fikaso.steps.shared import compose_env
    env = compose_env(load_settings(shipped_section(), root=ROOT), "1000", "fikaso/php:abc")
    scripts = {path: path.read_text() for path in (ROOT / "stack/bin").iterdir()}
    wanted = {key for text in scripts.values() for key in re.findall(r"setting (FIKASO_[A-Z_]+)", text)}
    wanted |= set(re.findall(r"\$\{(FIKASO_[A-Z_]+)", (ROOT / "stack/compose.yaml").read_text()))
    assert wanted <= set(env), wanted - set(env)
    example = {line.split("=")[0] for line in (ROOT / "stack/example.env").read_text().splitlines() if "=" in line}
    assert set(re.findall(r"\$\{(FIKASO_[A-Z_]+)", (ROOT / "stack/compose.yaml").read_text())) <= example
    for path, text in scripts.items():  # no copy of a shared value is left in a script
        for copy in ("fikaso_admin", "fikaso_network", "/var/www/app", "backup.lock", "certs.lock", " 900 ",
                     "exit 75", "fikaso-acme-ca.pem"):
            assert copy not in text, f"{path.name} repeats {copy!r}; read it with `setting` from the .env"
