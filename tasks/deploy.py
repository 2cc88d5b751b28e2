import sys

from invoke import task

from fikaso import config as fikaso_config
from fikaso import deploy as fikaso_deploy
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import PrintRemote

from .common import open_remote, settings_of, sites_of, user_errors

@task(help={"panel": "admin, store, website, landing, or all",
            "plan": "print every remote command the deploy would run, and change nothing",
            "verbose": "stream the output of composer and artisan as they run"})
@user_errors
def deploy(c, panel=None, plan=False, verbose=False):
    """Ship a panel: upload, install, migrate, switch with a health check, and switch back if it fails.

    When dockerfiles/php changed, the panel also moves to the rebuilt PHP image without a gap in
    service. Holds the panel's lock for the whole run; other panels are not affected. Prints one
    line per step with its duration, then "deployed PANEL RELEASE in N s".
    """
    settings = settings_of(c)
    sites = sites_of(settings, panel, allow_all=True)
    fikaso_config.check_sources(settings, tuple(site.name for site in sites))
    remote = open_remote(c, settings)
    for site in sites:
        run = fikaso_deploy.Deploy(settings=settings, site=site, remote=PrintRemote() if plan else remote,
                                   reader=remote, actor=fikaso_deploy.Actor.here(), action="deploy", plan=plan,
                                   verbose=verbose)
        fikaso_deploy.deploy(run, sys.stdout)


@task(help={"panel": "admin, store, website or landing",
            "release": "the release id to go back to (default: the one before the live one)",
            "with-database": "also restore the database snapshot taken before the live release's migrations",
            "yes": "do not ask for confirmation (with --with-database)",
            "plan": "print the remote commands, and change nothing"})
@user_errors
def rollback(c, panel=None, release=None, with_database=False, yes=False, plan=False):
    """Put the previous (or a named) release of a panel back live, on the PHP image it ran, with the same health check.

    With --with-database, the panel's database goes back to the snapshot taken just before the
    live release ran its migrations (a safety backup of its current state is taken first).
    """
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    if with_database and not plan and not yes and input(
            f"Replace the {site.name} database with its pre-deploy snapshot? Changes since that deploy are "
            "lost (a safety backup is taken first). Type yes: ").strip() != "yes":
        raise FikasoError("Nothing was rolled back", "Run again and type yes, or pass --yes")
    remote = open_remote(c, settings)
    run = fikaso_deploy.Rollback(settings=settings, site=site, remote=PrintRemote() if plan else remote,
                                 reader=remote, actor=fikaso_deploy.Actor.here(), action="rollback", plan=plan,
                                 target=release or "", with_database=with_database)
    fikaso_deploy.rollback(run, sys.stdout)


@task(help={"panel": "admin, store, website or landing"})
@user_errors
def releases(c, panel=None):
    """List a panel's releases: id, live or not, when, by whom, commit, PHP image, result."""
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    layout = Layout(settings.base_dir)
    result = open_remote(c, settings).run(fikaso_deploy.state_script(layout, site.name),
                                          label="reading the releases")
    print(fikaso_deploy.releases_table(fikaso_deploy.parse_state(result.stdout)))
