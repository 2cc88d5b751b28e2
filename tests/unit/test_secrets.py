import stat

import pytest

from fikaso import secrets
from fikaso.config import load_settings
from fikaso.errors import FikasoError

from .helpers import ROOT, shipped_section


@pytest.fixture
def settings(tmp_path):
    section = shipped_section()
    section["secrets_dir"] = str(tmp_path / "secrets")
    return load_settings(section, root=ROOT)


def test_generate_creates_private_files_once(settings):
    written = secrets.generate(settings)
    assert len(written) == 7
    folder = settings.secrets_dir
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    before = {p: p.read_text() for p in written}
    assert secrets.generate(settings) == []
    assert {p: p.read_text() for p in written} == before


def test_loaded_secrets_are_consistent(settings):
    secrets.generate(settings)
    loaded = secrets.load(settings)
    assert set(loaded.db_passwords) == {"admin", "store", "website"}
    assert len(set(loaded.db_passwords.values()) | {loaded.mysql_root_password}) == 4
    assert f"DB_PASSWORD={loaded.db_passwords['store']}".encode() in loaded.env_files["store"]
    assert b"DB_DATABASE=fikaso_store" in loaded.env_files["store"]


def test_missing_secret_names_the_file_and_the_fix(settings):
    secrets.generate(settings)
    (settings.secrets_dir / "store_db_password").unlink()
    with pytest.raises(FikasoError) as error:
        secrets.load(settings)
    assert "store_db_password is missing" in str(error.value)
    assert "fab secrets.generate" in str(error.value)


def test_env_that_disagrees_with_the_password_file(settings):
    secrets.generate(settings)
    (settings.secrets_dir / "admin_db_password").write_text("x" * 20)
    with pytest.raises(FikasoError, match="admin.env does not set DB_PASSWORD"):
        secrets.load(settings)


def test_unusable_password(settings):
    secrets.generate(settings)
    (settings.secrets_dir / "mysql_root_password").write_text("short'")
    with pytest.raises(FikasoError, match="not a usable password"):
        secrets.load(settings)


@pytest.mark.parametrize("line", [
    'DB_HOST="mysql"',
    "DB_HOST='mysql'",
    "export DB_HOST=mysql",
    "DB_HOST=mysql # the compose service",
    "DB_HOST = mysql",
])
def test_env_lines_are_read_as_dotenv_reads_them(settings, line):
    secrets.generate(settings)
    env_path = settings.secrets_dir / "store.env"
    env_path.write_text(env_path.read_text().replace("DB_HOST=mysql", line))
    assert secrets.env_values(env_path.read_text())["DB_HOST"] == "mysql"
    secrets.load(settings)


def test_env_values_keep_what_is_inside_quotes():
    values = secrets.env_values("A='x # y'\nB=\"p'q\"\nexport C=\"s p\" # note\nD=${HOME}\n")
    assert values == {"A": "x # y", "B": "p'q", "C": "s p", "D": "${HOME}"}


def test_a_commented_out_setting_does_not_count(settings):
    secrets.generate(settings)
    env_path = settings.secrets_dir / "store.env"
    env_path.write_text(env_path.read_text().replace("DB_HOST=mysql", "# DB_HOST=mysql"))
    with pytest.raises(FikasoError, match="store.env does not set DB_HOST to mysql"):
        secrets.load(settings)


def test_an_alert_webhook_goes_to_the_server_only_if_written_and_only_over_https(settings):
    secrets.generate(settings)
    assert "alert_webhook_url" not in secrets.load(settings).files()
    url_file = settings.secrets_dir / "alert_webhook_url"
    url_file.write_text("https://hooks.example.com/services/T0/B0/token\n")
    assert secrets.load(settings).files()["alert_webhook_url"] == b"https://hooks.example.com/services/T0/B0/token\n"
    for bad in ("http://hooks.example.com/x", "https://hooks.example.com/a b", 'https://h.example.com/"x'):
        url_file.write_text(bad + "\n")
        with pytest.raises(FikasoError, match="does not hold an https:// URL"):
            secrets.load(settings)


def test_the_secrets_upload_drops_a_webhook_that_was_deleted_here():
    from pathlib import PurePosixPath

    from fikaso.commands import server
    from fikaso.layout import Layout
    script = server.secrets_script(Layout(PurePosixPath("/srv/fikaso")), "abc").splitlines()
    assert script[0] == "rm -f /srv/fikaso/secrets/alert_webhook_url /srv/fikaso/secrets/alert_ca.pem"
    assert script[1].startswith("tar -x")


def test_a_panel_with_workers_gets_a_database_queue_and_a_sync_one_is_warned_of(settings):
    secrets.generate(settings)
    assert "QUEUE_CONNECTION=database" in (settings.secrets_dir / "store.env").read_text()
    assert "QUEUE_CONNECTION=sync" in (settings.secrets_dir / "admin.env").read_text()
    assert secrets.idle_worker_warnings(settings, secrets.load(settings)) == []
    env = settings.secrets_dir / "store.env"
    env.write_text(env.read_text().replace("QUEUE_CONNECTION=database", "QUEUE_CONNECTION=sync"))
    (warning,) = secrets.idle_worker_warnings(settings, secrets.load(settings))
    assert "store runs 2 queue worker(s)" in warning and "Set QUEUE_CONNECTION=database" in warning
