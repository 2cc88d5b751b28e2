"""Bad input ends with one clear paragraph, exit code 1, and no change on the VPS."""
import subprocess

import pytest

from sandbox import vps

from .helpers import copy_project, fab, server_snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def project_copy(tmp_path):
    """The project's code and settings in a scratch folder, to break its fabric.yaml safely."""
    return copy_project(tmp_path / "project")


def assert_refused(result, *phrases):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    for phrase in phrases:
        assert phrase in message, message


def edit_settings(old: str, new: str):
    def edit(project):
        path = project / "fabric.yaml"
        path.write_text(path.read_text().replace(old, new, 1))
    return edit


def remove_secret(project):
    (project / "secrets" / "store_db_password").unlink()


@pytest.mark.parametrize("breakage, phrases", [
    (edit_settings("  base_dir: /srv/fikaso", "  base_dir: /srv/fikaso\n   oops: ["),
     ("fabric.yaml is not valid YAML", "Fix the syntax")),
    (edit_settings("    store:\n", "    shop:\n"), ("unknown panel(s): shop", "admin, store, website")),
    (remove_secret, ("store_db_password is missing", "fab secrets.generate")),
], ids=["malformed fabric.yaml", "unknown panel", "missing secret"])
def test_bad_local_input_is_refused_before_the_server_is_touched(deployed, project_copy, breakage, phrases):
    before = server_snapshot(deployed)
    breakage(project_copy)
    assert_refused(fab("setup", cwd=project_copy), *phrases)
    assert server_snapshot(deployed) == before


def test_source_that_is_not_a_laravel_app(deployed, tmp_path):
    before = server_snapshot(deployed)
    result = fab("setup", env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(tmp_path)})
    assert_refused(result, "is not a Laravel app", "fikaso.panels.store.source")
    assert server_snapshot(deployed) == before


def test_unreachable_host():
    result = fab("-H", "deploy@127.0.0.1:1", "status")
    assert_refused(result, "Cannot reach deploy@127.0.0.1:1", "ssh -p 1 deploy@127.0.0.1 true")


def test_unknown_host_key_is_refused_and_its_fingerprint_shown(deployed, tmp_path):
    before = server_snapshot(deployed)
    key = subprocess.run(["ssh-keygen", "-lf", str(vps.VPS_FILES / "ssh_host_ed25519_key.pub")],
                         capture_output=True, text=True)
    result = fab("-H", f"deploy@127.0.0.1:{deployed['port']}", "status", env={"HOME": str(tmp_path)})
    assert_refused(result, "is not known", "fab host.trust")
    assert key.returncode == 0 and key.stdout.split()[1] in result.stderr
    assert server_snapshot(deployed) == before


def test_changed_host_key_is_refused(deployed, tmp_path):
    before = server_snapshot(deployed)
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{deployed['port']} {other_key.with_suffix('.pub').read_text()}")
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(f"Host impostor\n  HostName 127.0.0.1\n  Port {deployed['port']}\n  User deploy\n"
                          f"  IdentityFile {deployed['key_file']}\n  UserKnownHostsFile {known_hosts}\n")
    result = fab("-S", str(ssh_config), "-H", "impostor", "status")
    assert_refused(result, "has CHANGED", "ssh-keygen -R")
    assert server_snapshot(deployed) == before


def test_first_contact_records_the_host_key_only_when_the_fingerprint_matches(deployed, tmp_path):
    home = {"HOME": str(tmp_path)}
    target = f"deploy@127.0.0.1:{deployed['port']}"
    real = subprocess.run(["ssh-keygen", "-lf", str(vps.VPS_FILES / "ssh_host_ed25519_key.pub")],
                          capture_output=True, text=True, check=True).stdout.split()[1]
    wrong = fab("-H", target, "host.trust", "--expect=SHA256:not-this-one", env=home)
    assert_refused(wrong, "is not the one you expected")
    assert not (tmp_path / ".ssh" / "known_hosts").exists()
    right = fab("-H", target, "host.trust", f"--expect={real}", env=home)
    assert right.returncode == 0, right.stderr
    assert real in right.stdout
    status = fab("-i", deployed["key_file"], "-H", target, "status", env=home)
    assert status.returncode == 0, status.stderr
    assert "9 of 9 services running and healthy" in status.stdout
