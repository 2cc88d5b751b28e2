import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from fikaso import assets
from fikaso import config as fikaso_config
from fikaso import records
from fikaso import source as shipped
from fikaso.errors import FikasoError
from fikaso.facts import site as site_fact
from fikaso.layout import Layout
from fikaso.remote import RemoteError
from fikaso.runner import Runner
from fikaso.steps import deploy as steps

from . import alerts
from .common import fikaso_task, open_runner, open_swarm_runner, settings_of, sites_of


def runner_for(c, settings, plan) -> Runner:
    """One VPS's runner, or on a swarm the runner of every node."""
    return open_swarm_runner(c, settings, plan) if settings.swarm else open_runner(c, settings, plan)


def primary(settings) -> str | None:
    return settings.primary.host if settings.swarm else None


def run_site(runner: Runner, run: steps.SiteRun, plan, cleanup) -> None:
    """Run a deploy's or rollback's steps; a lock left by a killed run from this machine is taken over.
    With fikaso.alerts.deploys, the end of each run, good or bad, is told through the alerts."""
    try:
        try:
            runner.steps(f"{run.action} {run.name}", plan, run, cleanup, retry=steps.stale_lock,
                         guard=steps.serialized(run))
        except RemoteError as error:
            raise FikasoError(str(error), f"Nothing went live; fix the cause shown above and run the {run.action} "
                              "again") from None
    except FikasoError as error:
        tell(runner, run, f"{run.action} of {run.name} FAILED", f"{error.problem}.\n{error.fix}.")
        raise
    done = run.release_id if run.action == "deploy" else steps.rollback_target(run)
    tell(runner, run, f"{run.action} of {run.name}: {done} is live",
         f"by {run.actor.name}{', commit ' + run.commit if run.commit else ''}")


def tell(runner: Runner, run: steps.SiteRun, summary: str, details: str) -> None:
    if not run.settings.alerts.deploys:
        return
    try:
        (result,) = runner.run(alerts.notice(run.settings, summary, details))[:1]
    except Exception as error:  # the deploy's own outcome is what matters
        print(f"warning: the deploy notice was not sent: {error}", file=sys.stderr)
        return
    if not result.ok:
        print("warning: the deploy notice reached no one (see state/alerts.log on the server)", file=sys.stderr)


@contextmanager
def shipping(settings, site, ref: str | None) -> Iterator[tuple]:
    """The site as a deploy ships it, and the commit to record: its source folder as it is (naming
    uncommitted changes) or exactly a ref's tree, with its assets built in (fikaso/assets.py)."""
    with tempfile.TemporaryDirectory(prefix=f"fikaso-{site.name}-") as scratch:
        if ref is not None:
            commit = shipped.export(site.source, ref, site.name, Path(scratch))
            try:
                fikaso_config.check_sources(fikaso_config.with_source(settings, site.name, Path(scratch)), (site.name,))
            except FikasoError as error:
                raise FikasoError(f"At {ref}, {error.problem}", error.fix) from None
            print(f"{site.name}: shipping {ref} ({commit[:12]}) of {site.source}")
            site, commit = replace(site, source=Path(scratch)), commit[:12]
        else:
            commit = records.source_commit(site.source)
            changes = shipped.uncommitted(site.source)
            if changes:
                print(f"warning: {site.name}'s source {site.source} has {len(changes)} uncommitted change(s), "
                      f"shipped as they are ({', '.join(line.strip() for line in changes[:5])}"
                      f"{', ...' if len(changes) > 5 else ''}); `--ref=HEAD` ships the last commit instead",
                      file=sys.stderr)
        with assets.shipped_tree(site) as tree:
            yield replace(site, source=tree), commit


@fikaso_task(help={"panel": "admin, store, website, landing, or all",
                   "ref": "ship exactly this tag, branch or commit of the panel's git repository",
                   "source": "ship this folder instead of the configured source, for this run",
                   "plan": "print every remote command the deploy would run, and change nothing (as -R does)",
                   "verbose": "stream the output of composer and artisan as they run"})
def deploy(c, panel=None, ref=None, source=None, plan=False, verbose=False):
    """Ship a panel: upload, install, migrate, switch with a health check, and switch back if it fails.

    Ships the panel's source folder as it is (uncommitted changes are named in a warning), or with
    --ref=v1.4.0 exactly that commit's tree: nothing uncommitted or git-ignored, and the commit is
    recorded with the release. When dockerfiles/php changed, the panel also moves to the rebuilt PHP
    image without a gap in service. A panel with migrate_in_maintenance runs its migrations in
    maintenance mode instead (visitors get the 503 page until the new release is live and checked).
    Holds the panel's lock for the whole run; other panels are not affected. Prints one line per step
    with its duration, then "deployed PANEL RELEASE in N s".
    """
    settings = settings_of(c)
    sites = sites_of(settings, panel, allow_all=True)
    if source is not None:
        if len(sites) > 1:
            raise FikasoError("--source names one folder, and --panel=all deploys several sites",
                              "Deploy one panel with --source, or set each one's source in fabric.yaml")
        settings = fikaso_config.with_source(settings, sites[0].name, Path(source).expanduser().resolve())
        sites = sites_of(settings, sites[0].name, allow_all=False)
    fikaso_config.check_sources(settings, tuple(site.name for site in sites))
    runner = runner_for(c, settings, plan)
    for site in sites:
        with shipping(settings, site, ref) as (shipped_site, commit):
            run = steps.SiteRun(settings=settings, site=shipped_site, actor=records.Actor.here(), action="deploy",
                                commit=commit, verbose=verbose, primary=primary(settings))
            run_site(runner, run, steps.deploy_steps(run), steps.deploy_cleanup)
        if not runner.planning:
            print(f"deployed {site.name} {run.release_id} in {time.monotonic() - run.started:.1f} s")


@fikaso_task(help={"panel": "admin, store, website or landing",
                   "release": "the release id to go back to (default: the one before the live one)",
                   "with-database": "also restore the database snapshot taken before the live release's migrations",
                   "yes": "do not ask for confirmation (with --with-database)",
                   "plan": "print the remote commands, and change nothing (as -R does)"})
def rollback(c, panel=None, release=None, with_database=False, yes=False, plan=False):
    """Put the previous (or a named) release of a panel back live, on the PHP image it ran, with the same health check.

    With --with-database, the panel's database goes back to the snapshot taken just before the
    live release ran its migrations (a safety backup of its current state is taken first).
    """
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    runner = runner_for(c, settings, plan)
    if with_database and not runner.planning and not yes and input(
            f"Replace the {site.name} database with its pre-deploy snapshot? Changes since that deploy are "
            "lost (a safety backup is taken first). Type yes: ").strip() != "yes":
        raise FikasoError("Nothing was rolled back", "Run again and type yes, or pass --yes")
    run = steps.SiteRun(settings=settings, site=site, actor=records.Actor.here(), action="rollback",
                        target=release or "", with_database=with_database, primary=primary(settings))
    run_site(runner, run, steps.ROLLBACK_STEPS, steps.rollback_cleanup)
    if not runner.planning:
        print(f"rolled back {site.name} to {steps.rollback_target(run)} in {time.monotonic() - run.started:.1f} s")


@fikaso_task(help={"panel": "admin, store, website or landing"})
def releases(c, panel=None):
    """List a panel's releases: id, live or not, when, by whom, commit, PHP image, result."""
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    (state,) = runner_for(c, settings, False).read(site_fact(Layout(settings.base_dir, swarm=settings.swarm), site.name))
    print(records.releases_table(state))
