"""The remote scripts setup runs, asserted exactly: these are what reaches the server."""
from pathlib import PurePosixPath

from fikaso.commands import compose, database, server
from fikaso.facts import StackFacts as Facts
from fikaso.layout import Layout

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_folders_are_created_with_a_private_secrets_folder():
    facts = Facts(uid="1000", base_state="writable")
    script = server.folders_script(LAYOUT, facts)
    assert script.splitlines() == [
        "mkdir -p /srv/fikaso /srv/fikaso/stack /srv/fikaso/secrets /srv/fikaso/state /srv/fikaso/certificates "
        "/srv/fikaso/proxy-certificates /srv/fikaso/acme "
        "/srv/fikaso/panels/admin /srv/fikaso/panels/admin/releases /srv/fikaso/panels/admin/shared "
        "/srv/fikaso/panels/admin/shared/storage /srv/fikaso/panels/admin/shared/bootstrap-cache "
        "/srv/fikaso/panels/store /srv/fikaso/panels/store/releases /srv/fikaso/panels/store/shared "
        "/srv/fikaso/panels/store/shared/storage /srv/fikaso/panels/store/shared/bootstrap-cache "
        "/srv/fikaso/panels/website /srv/fikaso/panels/website/releases /srv/fikaso/panels/website/shared "
        "/srv/fikaso/panels/website/shared/storage /srv/fikaso/panels/website/shared/bootstrap-cache "
        "/srv/fikaso/landing /srv/fikaso/landing/releases",
        "chmod 700 /srv/fikaso/secrets /srv/fikaso/certificates",
    ]


def test_missing_base_uses_sudo_only_when_plain_mkdir_fails():
    facts = Facts(uid="1000", base_state="missing", sudo=True)
    first = server.folders_script(LAYOUT, facts).splitlines()[0]
    assert first == "mkdir -p /srv/fikaso 2>/dev/null || sudo -n install -d -o 1000 -g 1000 /srv/fikaso"


def test_extract_records_the_hash_after_unpacking():
    assert server.extract_script(LAYOUT.stack, LAYOUT.stack / ".bundle-sha256", "abc") == (
        "tar -x -p --no-same-owner -C /srv/fikaso/stack\n"
        "printf '%s\\n' abc > /srv/fikaso/stack/.bundle-sha256")


def test_services_start_waits_for_health():
    assert compose.start_script(LAYOUT, "mysql") == (
        "cd /srv/fikaso/stack && docker compose up --detach --wait --wait-timeout 300 --remove-orphans mysql")


def test_database_check_keeps_passwords_off_argv():
    script = database.logins_check(LAYOUT)
    assert script.startswith("cd /srv/fikaso/stack && docker compose exec -T mysql bash -c ")
    assert "$(cat /run/secrets/store_db_password)" in script
    assert "--defaults-extra-file=<(printf" in script
    assert "-p" not in script.replace("printf", "").split()




def test_nginx_reload_checks_each_config_first():
    lines = compose.reload_every_nginx_script(LAYOUT).splitlines()
    assert len(lines) == 5
    assert lines[-1] == ("cd /srv/fikaso/stack && docker compose exec -T nginx_proxy sh -c "
                         "'nginx -t -q && nginx -s reload'")
