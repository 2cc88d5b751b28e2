from invoke import task

from fikaso import setup as fikaso_setup
from fikaso.errors import FikasoError
from fikaso.layout import Layout

from .common import open_remote, run_artisan, settings_of, user_errors


@task
@user_errors
def bootstrap(c):
    """Make sure the three databases (utf8mb4) and each panel's own user exist, with current passwords.

    Idempotent: safe on a server that already has them. Passwords travel only inside the mysql
    container, from its mounted secrets.
    """
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    remote = open_remote(c, settings)
    remote.run(fikaso_setup.databases_bootstrap_script(layout), label="creating the databases and users",
               echo=print)
    if not remote.run(fikaso_setup.databases_check_script(layout), label="checking the logins", check=False).ok:
        raise FikasoError("A panel user still cannot log in to its database",
                          "Check that secrets/ matches what `fab setup` uploaded, then run `fab setup`")
    print("databases: each panel user logs in to its own database")


@task(help={"panel": "admin, store or website"})
@user_errors
def migrate(c, panel=None):
    """Run the live release's pending migrations of a panel (deploys do this before switching)."""
    run_artisan(c, panel, "migrate", "--force")


@task(help={"panel": "admin, store or website"})
@user_errors
def status(c, panel=None):
    """Show which migrations of a panel's live release have run."""
    run_artisan(c, panel, "migrate:status")
