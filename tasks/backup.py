from pathlib import Path

from invoke import task

from fikaso import backup as fikaso_backup
from fikaso import pull as fikaso_pull
from fikaso import schedule as fikaso_schedule
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import RemoteError

from .common import open_remote, settings_of, user_errors


def _run(c, script, label):
    settings = settings_of(c)
    remote = open_remote(c, settings)
    try:
        return remote.run(script(Layout(settings.base_dir)), label=label, echo=print)
    except RemoteError as error:
        raise FikasoError(str(error), "Nothing was kept that looks like a good backup; fix the cause and "
                          "run again (`fab logs --service=mysql` shows the server's side)") from None


@task(help={"database": "back up only this database (fikaso_admin, fikaso_store or fikaso_website)"})
@user_errors
def now(c, database=None):
    """Back up the databases and the panels' storage now, on the VPS, and check the backup restores.

    Each database is dumped in one consistent transaction, compressed with zstd, checksummed
    (SHA-256), then restored into a throwaway MySQL whose table counts and checksums go into the
    backup's manifest. Files are 0600 in a 0700 folder under <base_dir>/backups.
    """
    _run(c, lambda layout: fikaso_backup.now_script(layout, database), "backing up")


@task(name="list")
@user_errors
def list_(c):
    """List the backups on the VPS: id, age, size, databases, verified or not."""
    settings = settings_of(c)
    result = open_remote(c, settings).run(fikaso_backup.list_script(Layout(settings.base_dir)),
                                          label="listing the backups")
    print(fikaso_backup.render_list(result.stdout))


@task(help={"id": "the backup to check (see fab backup.list); the newest by default"})
@user_errors
def verify(c, id=None):  # noqa: A002  (the user-facing flag is --id)
    """Check a backup: its checksums, then a restore into a throwaway MySQL compared with its manifest."""
    _run(c, lambda layout: fikaso_backup.verify_script(layout, id), f"verifying backup {id or '(newest)'}")


@task(help={"id": "the backup to restore (see fab backup.list)",
            "database": "restore only this database (default: every database in the backup)",
            "yes": "do not ask for confirmation"})
@user_errors
def restore(c, id=None, database=None, yes=False):  # noqa: A002
    """Restore databases from a backup: a safety backup first, the panels in maintenance meanwhile.

    The current contents of each restored database are replaced. The safety backup taken first
    is listed by `fab backup.list`, so a restore can itself be undone.
    """
    script = lambda layout: fikaso_backup.restore_script(layout, id, database)  # noqa: E731
    script(Layout(settings_of(c).base_dir))  # refuse bad input before asking
    what = database or "every database in it"
    if not yes and input(f"Replace {what} with backup {id}? Type yes: ").strip() != "yes":
        raise FikasoError("Nothing was restored", "Run again and type yes, or pass --yes")
    _run(c, script, f"restoring backup {id}")


@task(help={"cron": "when to run, as a crontab schedule (default '17 3 * * *': 03:17 every day)",
            "daily": "daily backups to keep (default 7)", "weekly": "weekly backups to keep (default 4)",
            "monthly": "monthly backups to keep (default 12)"})
@user_errors
def schedule(c, cron="17 3 * * *", daily=7, weekly=4, monthly=12):
    """Back up on the VPS on a schedule (one cron entry, runs never overlap), pruning old backups.

    Running it again replaces the entry: there is only ever one. Each run logs to
    <base_dir>/state/backup.log.
    """
    settings = settings_of(c)
    line = fikaso_schedule.cron_line(Layout(settings.base_dir), cron, int(daily), int(weekly), int(monthly))
    result = open_remote(c, settings).run(fikaso_schedule.install_script(line), label="installing the cron entry")
    print(f"scheduled: {result.stdout.strip()}")


@task
@user_errors
def unschedule(c):
    """Remove the scheduled backup from the VPS (existing backups stay)."""
    settings = settings_of(c)
    result = open_remote(c, settings).run(fikaso_schedule.remove_script(), label="removing the cron entry")
    print("unscheduled" if result.stdout.strip() == "removed" else "there was no schedule")


@task(help={"id": "the backup to download (see fab backup.list); the newest by default",
            "dest": "local folder for backups (default: backups/ in the project, git-ignored)"})
@user_errors
def pull(c, id=None, dest="backups"):  # noqa: A002
    """Download a backup to this machine, checking every file; an interrupted pull resumes."""
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    remote = open_remote(c, settings)
    if not id:
        ids = [line.split("\t")[0] for line in remote.run(fikaso_backup.list_script(layout),
                                                           label="listing the backups").stdout.splitlines()]
        if not ids:
            raise FikasoError("There is no backup on the server yet", "Make one with `fab backup.now`")
        id = sorted(ids)[-1]
    fikaso_pull.pull(remote, layout, id, Path(dest).expanduser())
