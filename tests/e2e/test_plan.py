"""`--plan` and Invoke's `-R`/`--dry` print what a task would do and leave the server exactly as it
was: every file under the base folder (contents included), the crontab, the containers, the images."""
import pytest

from .helpers import fab, ssh

# The proxy's copies of the certificates are not the deploy user's to read: their size and time stand in.
STATE = ("cd /srv/fikaso && find . -xdev -printf '%p %y %m %l %s %T@\\n' | sort"
         " && find . -xdev -type f -readable -print0 | sort -z | xargs -0 sha256sum"
         " && echo crontab: && (crontab -l 2>/dev/null || true)"
         " && echo containers: && docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Status}}'"
         " | sed 's/Up .*/Up/' | sort"
         " && echo images: && docker image ls -q --no-trunc | sort"
         " && echo volumes: && docker volume ls -q | sort")

PLANS = [
    ("setup", "--plan"), ("-R", "setup"),
    ("deploy", "--panel=store", "--plan"), ("-R", "deploy", "--panel=all"),
    ("rollback", "--panel=store", "--plan"), ("-R", "rollback", "--panel=store"),
    ("-R", "backup.now"), ("backup.verify", "--plan"),
    ("backup.restore", "--id=20260101T000000Z", "--plan"), ("-R", "backup.restore", "--id=20260101T000000Z"),
    ("-R", "backup.schedule", "--cron=@daily"), ("backup.unschedule", "--plan"),
    ("-R", "certs.issue"), ("certs.renew", "--plan"),
    ("-R", "db.bootstrap"), ("db.migrate", "--panel=store", "--plan"),
    ("maintenance.on", "--panel=store", "--plan"), ("-R", "maintenance.off", "--panel=store"),
    ("-R", "lock.release", "--panel=store", "--yes"),
    ("-R", "sandbox.down"), ("-R", "secrets.generate"),
]


def server_state(info) -> str:
    result = ssh(info, STATE)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def two_releases(deployed):
    """A store with a release to roll back to, whatever ran before."""
    result = fab("deploy", "--panel=store")
    assert result.returncode == 0, result.stdout + result.stderr
    return deployed


@pytest.mark.parametrize("args", PLANS, ids=[" ".join(args) for args in PLANS])
def test_a_plan_or_dry_run_changes_nothing_on_the_server(two_releases, args):
    before = server_state(two_releases)
    result = fab(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip(), "a plan prints what would run"
    assert server_state(two_releases) == before


def test_the_plan_of_a_deploy_prints_its_scripts(two_releases):
    result = fab("-R", "deploy", "--panel=store")
    assert result.returncode == 0, result.stderr
    for expected in ("# taking the lock", "mkdir /srv/fikaso/state/locks/store", "tar -x --no-same-owner",
                     "composer install --no-dev", "# switching and checking through the proxy",
                     "rm -rf /srv/fikaso/state/locks/store", "deploy store: 4 of 7 steps would change the server"):
        assert expected in result.stdout, expected
