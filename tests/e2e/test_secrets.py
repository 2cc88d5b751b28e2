"""No secret on the VPS's process list or in a process's environment, whatever Fikaso runs, and
every file that holds one readable by its owner only."""
import os
import stat

import pytest

from . import apps
from .helpers import ROOT, SAMPLED, ProcessSampler, fab, http_only, local_secrets, ssh
from .load import figure
from .test_deploy import deploy_store

pytestmark = pytest.mark.e2e


def the_mysql_image_exporting_its_root_password(line: str, name: str, secret: str, mysql: str) -> bool:
    """The one exception, not Fikaso's doing: the MySQL image's entrypoint reads the root password
    from MYSQL_ROOT_PASSWORD_FILE and exports it into the environment of the processes it starts
    (readable only by root and MySQL's own uid). README.md, "Secrets", says so. `mysql` is the id
    of the MySQL container."""
    argv, _, rest = line.partition(" | env: ")
    env, _, cgroup = rest.partition(" | cgroup: ")
    # A process caught as it starts may show the variable with a space for its "=".
    exported = env.count(f"MYSQL_ROOT_PASSWORD={secret}") + env.count(f"MYSQL_ROOT_PASSWORD {secret}")
    return (name == "mysql_root_password" and bool(mysql) and mysql in cgroup and secret not in argv
            and env.count(secret) == exported == 1)


def assert_no_secret(deployed, seen: ProcessSampler, *outputs: str, operation: str, proof: str) -> None:
    assert proof in seen.text, f"the sampler never saw {proof!r} while {operation} ran ({seen.samples} samples)"
    secrets = local_secrets()

    def redacted(text: str) -> str:
        for name, secret in secrets.items():
            text = text.replace(secret, f"<{name}>")
        return text
    excused = 0
    mysql = ssh(deployed, "docker inspect --format '{{.Id}}' fikaso_mysql").stdout.strip()
    for name, secret in secrets.items():
        for line in seen.lines:
            if secret not in line:
                continue
            if the_mysql_image_exporting_its_root_password(line, name, secret, mysql):
                excused += 1
                continue
            # pytest.fail, not assert: the failure message must not print the secret itself.
            pytest.fail(f"{name} showed in a process's argv or environment during {operation}: {redacted(line)[:1500]}")
        if any(secret in output for output in outputs):
            pytest.fail(f"{name} showed in the output of {operation}")
    print(figure(f"{operation}: {seen.samples} samples of every process's argv and environment on the VPS, no "
                 f"secret in them{f' (but the MySQL image exporting its root password, {excused}x)' if excused else ''}"))


def test_no_secret_in_argv_or_environment_during_setup(deployed):
    # The first setup of the run, sampled by the `deployed` fixture: databases, users, migrations.
    assert_no_secret(deployed, SAMPLED["setup"], operation="the first setup", proof="migrate")


def test_no_secret_in_argv_or_environment_during_a_deploy_with_migrations(deployed, tmp_path):
    source = apps.with_migration(apps.variant(tmp_path, "secret-check"), "2026_02_01_000000_a_secret_check",
                                 "// nothing to change: a pending migration is what brings the snapshot")
    with ProcessSampler() as seen:
        result = deploy_store(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_secret(deployed, seen, result.stdout, result.stderr, operation="a deploy with a snapshot and migrations",
                     proof="mysqldump")


def test_no_secret_in_argv_or_environment_or_the_mysql_log_during_a_backup(deployed):
    with ProcessSampler() as seen:
        result = fab("backup.now")
    assert result.returncode == 0, result.stdout + result.stderr
    logs = ssh(deployed, "cd /srv/fikaso/stack && docker compose logs --no-color mysql 2>&1").stdout
    assert_no_secret(deployed, seen, result.stdout, result.stderr, logs, operation="a backup", proof="mysqldump")


def test_no_secret_in_argv_or_environment_during_a_restore(deployed):
    taken = fab("backup.now", "--database=fikaso_website")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    newest = sorted(line.split()[0] for line in fab("backup.list").stdout.splitlines()[1:] if line[:1].isdigit())[-1]
    with ProcessSampler() as seen:
        result = fab("backup.restore", f"--id={newest}", "--database=fikaso_website", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_secret(deployed, seen, result.stdout, result.stderr, operation="a restore", proof="fikaso-backup")


def test_no_secret_in_argv_or_environment_while_issuing_certificates(deployed):
    http_only(deployed)
    assert fab("sandbox.acme").returncode == 0
    try:
        with ProcessSampler() as seen:
            result = fab("certs.issue")
        assert result.returncode == 0, result.stdout + result.stderr
        assert_no_secret(deployed, seen, result.stdout, result.stderr, operation="certs.issue", proof="certbot")
        keys = ssh(deployed, "find /srv/fikaso/certificates -name 'privkey*.pem' -exec stat -L -c '%a %n' {} +")
        assert keys.returncode == 0 and keys.stdout.count("privkey") >= 4, keys.stdout + keys.stderr
        assert all(line.startswith("600 ") for line in keys.stdout.splitlines()), keys.stdout
        # The proxy's copies: each key with its chain, root's, readable by nginx's group only.
        copies = ssh(deployed, "stat -c '%a %U %n' /srv/fikaso/proxy-certificates /srv/fikaso/proxy-certificates/*")
        lines = copies.stdout.splitlines()
        assert lines[0].startswith("750 deploy ") and len(lines) == 5, copies.stdout + copies.stderr
        assert all(line.startswith("640 root ") and line.endswith(".pem") for line in lines[1:]), copies.stdout
    finally:
        http_only(deployed)


def test_every_file_holding_a_secret_is_its_owners_alone(deployed, tmp_path):
    # On the VPS: the secrets folder is the deploy user's alone (the password files in it are read
    # by MySQL's own user inside its container); each panel's .env; every backup.
    assert fab("backup.now", "--database=fikaso_store").returncode == 0
    modes = ssh(deployed, "stat -c '%a %n' /srv/fikaso/secrets /srv/fikaso/certificates "
                          "/srv/fikaso/panels/*/shared/.env /srv/fikaso/backups /srv/fikaso/backups/* "
                          "/srv/fikaso/backups/*/*")
    assert modes.returncode == 0, modes.stderr
    lines = modes.stdout.splitlines()
    expected = {"/srv/fikaso/secrets": "700", "/srv/fikaso/certificates": "700", "/srv/fikaso/backups": "700"}
    for line in lines:
        mode, path = line.split(" ", 1)
        if path in expected:
            assert mode == expected[path], line
        elif path.endswith("/.env"):
            assert mode == "600", line
        else:                                    # a backup folder, or a file in one
            assert mode in ("700", "600"), line
    assert sum(path.endswith("/.env") for path in modes.stdout.split()) == 3
    # Here: the local secrets, and a pulled backup.
    folder = ROOT / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    newest = sorted(line.split()[0] for line in fab("backup.list").stdout.splitlines()[1:] if line[:1].isdigit())[-1]
    pulled = fab("backup.pull", f"--id={newest}", f"--dest={tmp_path}")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    for root, folders, files in os.walk(tmp_path / newest):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, name
