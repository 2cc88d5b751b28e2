from pathlib import PurePosixPath

import pytest

from fikaso.commands import cron as schedule
from fikaso.errors import FikasoError
from fikaso.layout import Layout

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))


def test_cron_line_runs_the_bundled_script_with_retention_and_a_log():
    assert schedule.cron_line(LAYOUT, "17 3 * * *", 7, 4, 12) == (
        "17 3 * * * /srv/fikaso/stack/bin/fikaso-backup scheduled --daily 7 --weekly 4 --monthly 12 "
        ">> /srv/fikaso/state/backup.log 2>&1 # fikaso-backup schedule")


@pytest.mark.parametrize("expression", ["17 3 * *", "every day", "17 3 * * * rm -rf /", "@reboot"])
def test_a_bad_schedule_is_refused(expression):
    with pytest.raises(FikasoError, match="not a cron schedule"):
        schedule.cron_line(LAYOUT, expression, 7, 4, 12)


def test_retention_must_keep_something():
    with pytest.raises(FikasoError, match="keeps no backup"):
        schedule.cron_line(LAYOUT, "@daily", 0, 0, 0)


def test_install_replaces_only_its_own_entry():
    script = schedule.install_script("@daily job # fikaso-backup schedule")
    assert script.splitlines()[0] == (
        "{ crontab -l 2>/dev/null | grep -vF '# fikaso-backup schedule' || true; "
        "printf '%s\\n' '@daily job # fikaso-backup schedule'; } | crontab -")
