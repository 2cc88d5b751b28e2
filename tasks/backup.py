"""Fabric tasks for backups: they call stack/bin/fikaso-backup on the VPS."""
from pathlib import Path

from fikaso import facts
from fikaso import pull as fikaso_pull
from fikaso.commands import backup as commands
from fikaso.commands import cron as crontab
from fikaso.commands import maintenance
from fikaso.config import PANELS
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.plan import Action
from fikaso.remote import RemoteError
from fikaso.views import render_backups

from .common import dry, fikaso_task, open_database_runner, open_swarm_runner, settings_of

PLAN = "print the remote command, and change nothing (as -R does)"


BACKUP_FAILED = ("Nothing was kept that looks like a good backup; fix the cause and run again "
                 "(`fab logs --service=mysql` shows the server's side)")
RESTORE_FAILED = ("The lines above say where the restore stopped and how to finish it or go back (the safety "
                  "backup it names). A database it had begun to load keeps its panel in maintenance and its queue "
                  "workers stopped until a restore of it finishes; the other panels serve again")


def _run(c, label, script, plan=False, hint=BACKUP_FAILED):
    settings = settings_of(c)
    try:
        return open_database_runner(c, settings, plan).run(Action(label, script(Layout(settings.base_dir)),
                                                                 stream=True))
    except RemoteError as error:
        raise FikasoError(str(error), hint) from None


@fikaso_task(help={"database": "back up only this database (fikaso_admin, fikaso_store or fikaso_website)",
                   "plan": PLAN})
def now(c, database=None, plan=False):
    """Back up the databases and the panels' storage now, on the VPS, and check the backup restores.

    Each database is dumped in one consistent transaction, compressed with zstd, checksummed
    (SHA-256), then restored into a throwaway MySQL whose table counts and checksums go into the
    backup's manifest. Files are 0600 in a 0700 folder under <base_dir>/backups.
    """
    _run(c, "backing up", lambda layout: commands.now_script(layout, database), plan)


@fikaso_task(name="list")
def list_(c):
    """List the backups on the VPS: id, age, size, databases, verified or not; and a warning when the
    newest verified backup is older than the backup schedule promises."""
    settings = settings_of(c)
    backups, line, now = open_database_runner(c, settings).read(*freshness_facts(Layout(settings.base_dir)))
    print(render_backups(backups))
    warning = overdue(backups, line, now)
    if warning:
        print(warning)


def freshness_facts(layout: Layout) -> tuple:
    """What `overdue` needs: the backups, the schedule's crontab line, the server's clock."""
    return facts.backups(layout), facts.cron_entry(crontab.MARKER), facts.clock()


def overdue(backups: list[facts.Backup], line: str, now: facts.Clock) -> str:
    verified = [b.made for b in backups if b.verified == "ok" and b.made is not None]
    return crontab.overdue(line, verified, now.utc, now.offset)


@fikaso_task(help={"id": "the backup to check (see fab backup.list); the newest by default", "plan": PLAN})
def verify(c, id=None, plan=False):  # noqa: A002  (the user-facing flag is --id)
    """Check a backup: its checksums, then a restore into a throwaway MySQL compared with its manifest."""
    _run(c, f"verifying backup {id or '(newest)'}", lambda layout: commands.verify_script(layout, id), plan)


@fikaso_task(help={"id": "the backup to restore (see fab backup.list)",
                   "database": "restore only this database (default: every database in the backup)",
                   "yes": "do not ask for confirmation", "plan": PLAN})
def restore(c, id=None, database=None, yes=False, plan=False):  # noqa: A002
    """Restore databases from a backup: a safety backup first, the panels in maintenance meanwhile.

    The current contents of each restored database are replaced. The safety backup taken first
    is listed by `fab backup.list`, so a restore can itself be undone.
    """
    script = lambda layout: commands.restore_script(layout, id, database)  # noqa: E731
    script(Layout(settings_of(c).base_dir))  # refuse bad input before asking
    what = database or "every database in it"
    if not (plan or dry(c)) and not yes and input(f"Replace {what} with backup {id}? Type yes: ").strip() != "yes":
        raise FikasoError("Nothing was restored", "Run again and type yes, or pass --yes")
    settings = settings_of(c)
    if settings.swarm:
        _restore_on_swarm(c, settings, id, database, plan)
    else:
        _run(c, f"restoring backup {id}", script, plan, hint=RESTORE_FAILED)


def _restore_on_swarm(c, settings, backup_id, database, plan) -> None:
    """On a swarm the panels' maintenance mode is per node: every web node's tasks go down before the
    restore on the database node, and come back up after it, but those of a database it left half-loaded."""
    layout = Layout(settings.base_dir, swarm=True)
    panels = [database.removeprefix("fikaso_")] if database else list(PANELS)
    runner = open_swarm_runner(c, settings, plan)
    runner.run(Action("maintenance on every web node", maintenance.every_task_script(panels, "down"), on="web"))
    half_loaded: set[str] = set()
    try:
        runner.run(Action(f"restoring backup {backup_id}", "FIKASO_MAINTENANCE=external "
                          + commands.restore_script(layout, backup_id, database), stream=True, on="database"))
    except RemoteError as error:
        (unfinished,) = runner.read(facts.unfinished_restores(layout), on="database")
        half_loaded = {restore.database.removeprefix("fikaso_") for restore in unfinished}
        raise FikasoError(str(error), RESTORE_FAILED) from None
    finally:
        reopened = [panel for panel in panels if panel not in half_loaded]
        if reopened:
            runner.run(Action("out of maintenance on every web node", maintenance.every_task_script(reopened, "up"),
                              on="web"))


@fikaso_task(help={"cron": "when to run, as a crontab schedule (default '17 3 * * *': 03:17 every day; "
                           "names such as MON and @daily work too)",
                   "daily": "daily backups to keep (default 7)", "weekly": "weekly backups to keep (default 4)",
                   "monthly": "monthly backups to keep (default 12)", "plan": PLAN})
def schedule(c, cron="17 3 * * *", daily=7, weekly=4, monthly=12, plan=False):
    """Back up on the VPS on a schedule (one cron entry, runs never overlap), pruning old backups.

    Running it again replaces the entry: there is only ever one. Each run logs to
    <base_dir>/state/backup.log.
    """
    settings = settings_of(c)
    line = crontab.cron_line(Layout(settings.base_dir), cron, int(daily), int(weekly), int(monthly))
    runner = open_database_runner(c, settings, plan)
    (result,) = runner.run(Action("installing the cron entry", crontab.install_script(line)))
    if not runner.planning:
        print(f"scheduled: {result.stdout.strip()}")


@fikaso_task(help={"plan": PLAN})
def unschedule(c, plan=False):
    """Remove the scheduled backup from the VPS (existing backups stay)."""
    settings = settings_of(c)
    runner = open_database_runner(c, settings, plan)
    (result,) = runner.run(Action("removing the cron entry", crontab.remove_script()))
    if not runner.planning:
        print("unscheduled" if result.stdout.strip() == "removed" else "there was no schedule")


@fikaso_task(help={"id": "the backup to download (see fab backup.list); the newest by default",
                   "dest": "local folder for backups (default: backups/ in the project, git-ignored)"})
def pull(c, id=None, dest="backups"):  # noqa: A002
    """Download a backup to this machine, checking every file; an interrupted pull resumes."""
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    runner = open_database_runner(c, settings)
    if not id:
        (backups,) = runner.read(facts.backups(layout))
        if not backups:
            raise FikasoError("There is no backup on the server yet", "Make one with `fab backup.now`")
        id = backups[-1].id
    (files,) = runner.read(facts.backup_files(layout, id))
    if not files.exists:
        raise FikasoError(f"There is no complete backup {id} on the server", "Pick one from `fab backup.list`")
    if dry(c):
        print(f"would download backup {id}: {', '.join(sorted(files.sizes))} into {Path(dest) / id}")
        return
    fikaso_pull.pull(runner.hosts[0].executor, id, files.sizes, files.sums,
                     lambda name, offset: commands.fetch_script(layout, id, name, offset), Path(dest).expanduser())
