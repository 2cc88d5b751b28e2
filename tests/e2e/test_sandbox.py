"""The sandbox behaves like a fresh VPS: key-only SSH as a docker user, Docker with Compose v2."""
import subprocess

import pytest

from .helpers import ssh

pytestmark = pytest.mark.e2e


def test_deploy_user_reaches_docker_and_compose_over_ssh(sandbox):
    result = ssh(sandbox, "id -un; docker compose version --short; docker info --format '{{.ServerVersion}}'")
    assert result.returncode == 0, result.stderr
    user, compose, engine = result.stdout.split()
    assert user == "deploy" and compose and engine


def test_stand_in_images_are_offered_under_production_names(sandbox):
    result = ssh(sandbox, "docker image ls --format '{{.Repository}}:{{.Tag}}'")
    images = set(result.stdout.split())
    assert {"mysql:8.4", "php:8.2-fpm", "nginx:1.27-alpine", "composer:2"} <= images


def test_openssh_refuses_the_sandbox_under_another_host_key(sandbox, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sandbox['port']} {other.with_suffix('.pub').read_text()}")
    result = subprocess.run(["ssh", "-F", sandbox["ssh_config"], "-o", f"UserKnownHostsFile={known}",
                             sandbox["alias"], "true"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr


def test_password_login_is_refused(sandbox):
    result = subprocess.run(["ssh", "-F", sandbox["ssh_config"], "-o", "PubkeyAuthentication=no",
                             "-o", "BatchMode=yes", sandbox["alias"], "true"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Permission denied" in result.stderr
