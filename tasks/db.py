from fikaso.commands import database
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.plan import Action

from .common import fikaso_task, open_database_runner, run_artisan, settings_of


@fikaso_task(help={"plan": "print the remote commands, and change nothing"})
def bootstrap(c, plan=False):
    """Make sure the three databases (utf8mb4) and each panel's own user exist, with current passwords.

    Idempotent: safe on a server that already has them. Passwords travel only inside the mysql
    container, from its mounted secrets (on a swarm: on the database node).
    """
    settings = settings_of(c)
    layout = Layout(settings.base_dir, swarm=settings.swarm)
    runner = open_database_runner(c, settings, plan)

    def still_failing(result) -> Exception:
        return FikasoError("A panel user still cannot log in to its database",
                           "Check that secrets/ matches what `fab setup` uploaded, then run `fab setup`")
    runner.run(Action("creating the databases and users", database.bootstrap_script(layout), stream=True))
    runner.run(Action("checking the logins", database.logins_check(layout), failure=still_failing))
    if not runner.planning:
        print("databases: each panel user logs in to its own database")


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def migrate(c, panel=None, plan=False):
    """Run the live release's pending migrations of a panel (deploys do this before switching)."""
    run_artisan(c, panel, "migrate", "--force", plan=plan)


@fikaso_task(help={"panel": "admin, store or website"})
def status(c, panel=None):
    """Show which migrations of a panel's live release have run."""
    run_artisan(c, panel, "migrate:status")
