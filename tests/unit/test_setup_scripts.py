"""The remote scripts setup runs, asserted exactly: these are what reaches the server."""
from pathlib import PurePosixPath

from fikaso import setup
from fikaso.layout import Layout
from fikaso.stack import Facts

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_folders_are_created_with_a_private_secrets_folder():
    facts = Facts(uid="1000", base_state="writable")
    script = setup.layout_script(LAYOUT, facts)
    assert script.splitlines() == [
        "mkdir -p /srv/fikaso /srv/fikaso/stack /srv/fikaso/secrets /srv/fikaso/state "
        "/srv/fikaso/panels/admin /srv/fikaso/panels/admin/releases /srv/fikaso/panels/admin/shared "
        "/srv/fikaso/panels/admin/shared/storage /srv/fikaso/panels/admin/shared/bootstrap-cache "
        "/srv/fikaso/panels/store /srv/fikaso/panels/store/releases /srv/fikaso/panels/store/shared "
        "/srv/fikaso/panels/store/shared/storage /srv/fikaso/panels/store/shared/bootstrap-cache "
        "/srv/fikaso/panels/website /srv/fikaso/panels/website/releases /srv/fikaso/panels/website/shared "
        "/srv/fikaso/panels/website/shared/storage /srv/fikaso/panels/website/shared/bootstrap-cache "
        "/srv/fikaso/landing /srv/fikaso/landing/releases",
        "chmod 700 /srv/fikaso/secrets",
    ]


def test_missing_base_uses_sudo_only_when_plain_mkdir_fails():
    facts = Facts(uid="1000", base_state="missing", sudo=True)
    first = setup.layout_script(LAYOUT, facts).splitlines()[0]
    assert first == "mkdir -p /srv/fikaso 2>/dev/null || sudo -n install -d -o 1000 -g 1000 /srv/fikaso"


def test_extract_records_the_hash_after_unpacking():
    assert setup.extract_script(LAYOUT.stack, LAYOUT.stack / ".bundle-sha256", "abc") == (
        "tar -x -p --no-same-owner -C /srv/fikaso/stack\n"
        "printf '%s\\n' abc > /srv/fikaso/stack/.bundle-sha256")


def test_release_upload_lands_in_a_partial_folder_then_is_renamed():
    script = setup.upload_release_script(LAYOUT, "store", "20261124030000", "f00")
    rel = "/srv/fikaso/panels/store/releases/20261124030000"
    assert script.splitlines() == [
        f"rm -rf {rel}.partial",
        f"mkdir -p {rel}.partial",
        f"tar -x --no-same-owner -C {rel}.partial",
        f"printf '%s\\n' 20261124030000 > {rel}.partial/RELEASE",
        f"printf '%s\\n' f00 > {rel}.partial/SOURCE_SHA256",
        f"ln -sfn ../../shared/.env {rel}.partial/.env",
        f"rm -rf {rel}.partial/storage {rel}.partial/bootstrap/cache",
        f"ln -sfn ../../shared/storage {rel}.partial/storage",
        f"mkdir -p {rel}.partial/bootstrap",
        f"ln -sfn /var/www/app/shared/bootstrap-cache/20261124030000 {rel}.partial/bootstrap/cache",
        f"mv -T {rel}.partial {rel}",
    ]


def test_landing_release_has_no_laravel_links():
    script = setup.upload_release_script(LAYOUT, "landing", "1", "f00")
    assert "/srv/fikaso/landing/releases/1.partial" in script
    assert ".env" not in script and "storage" not in script


def test_prepare_runs_composer_migrations_and_caches_in_the_panel_container():
    script = setup.prepare_release_script(LAYOUT, "store", "7", "1000")
    own, run = script.splitlines()
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
    assert setup.switch_script(LAYOUT, "admin", "9").splitlines() == [
        "ln -sfn releases/9 /srv/fikaso/panels/admin/current.next",
        "mv -T /srv/fikaso/panels/admin/current.next /srv/fikaso/panels/admin/current",
    ]


def test_services_start_waits_for_health():
    assert setup.start_script(LAYOUT, "mysql") == (
        "cd /srv/fikaso/stack && docker compose up --detach --wait --wait-timeout 300 --remove-orphans mysql")


def test_database_check_keeps_passwords_off_argv():
    script = setup.databases_check_script(LAYOUT)
    assert script.startswith("cd /srv/fikaso/stack && docker compose exec -T mysql bash -c ")
    assert "$(cat /run/secrets/store_db_password)" in script
    assert "--defaults-extra-file=<(printf" in script
    assert "-p" not in script.replace("printf", "").split()


def test_site_check_asks_the_proxy_with_the_domain_as_host():
    assert setup.check_site_script(LAYOUT, "store.fikaso.test", "/up") == (
        "cd /srv/fikaso/stack && docker compose exec -T nginx_proxy wget -q -O - "
        "--header 'Host: store.fikaso.test' http://127.0.0.1/up")
