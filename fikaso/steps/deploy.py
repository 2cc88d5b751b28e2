"""`fab deploy` and `fab rollback` as steps: each decides from the facts read under the site's lock.

A deploy holds the site's lock (an atomic mkdir on the server, naming its holder) from the first
round trip to the last; other sites are never blocked. Nothing touches the live release until the
new one is installed and migrated, and the switch is checked through the proxy and undone at once
if the site does not answer.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

from .. import records
from ..commands import backup, maintenance, php_image, release
from ..commands.lock import LOCKED, lock_script, one_at_a_time, unlock_script
from ..config import PANELS, Settings, Site
from ..errors import FikasoError, telling_lines
from ..facts import SiteState, in_maintenance, migrations_run, site as site_fact, unfinished_restores
from ..facts import backups as backups_fact
from ..layout import Layout
from ..plan import Action, Known, Outcome, Step, changed, unchanged
from ..secrets import database_name
from ..shell import cmd, q


class Locked(FikasoError):
    def __init__(self, site: str, holder: str):
        try:
            info = json.loads(holder)
            who = f"{info.get('who', '?')} (pid {info.get('pid', '?')}, {info.get('action', '?')}, " \
                  f"since {info.get('since', '?')})"
        except ValueError:
            info, who = {}, holder or "an unknown holder"
        self.info = info
        super().__init__(f"Another run holds the {site} lock: {who}",
                         f"Wait for it to finish; if it is no longer running, free the lock with "
                         f"`fab lock.release --panel={site}`")


class NotSetUp(FikasoError):
    def __init__(self, layout: Layout):
        super().__init__(f"The stack is not set up under {layout.base} on this server", "Run `fab setup` first")


class Unhealthy(FikasoError):
    pass


class MigrationsFailed(FikasoError):
    """Migrations failed part-way: MySQL cannot roll back the schema changes they made."""


class StillInMaintenance(FikasoError):
    """The release is live and checked, but `artisan up` failed: visitors still get the maintenance page."""


@dataclass
class SiteRun:
    """One deploy or rollback of one site: what it was asked, and the facts it has read."""

    settings: Settings
    site: Site
    actor: records.Actor
    action: str                    # "deploy" or "rollback"
    release_id: str = field(default_factory=release.new_release_id)   # the new release (deploy)
    commit: str = ""
    target: str = ""               # the release to go back to (rollback; "" = the one before)
    with_database: bool = False
    verbose: bool = False
    # On a swarm: the first manager, where the lock and the release log live (None on one VPS).
    primary: str | None = None
    started: float = field(default_factory=time.monotonic)
    known: Known = field(default_factory=Known)

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.base_dir, swarm=self.settings.swarm)

    @property
    def swarm(self) -> bool:
        return self.settings.swarm

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def panel(self) -> bool:
        return self.site.name in PANELS

    @property
    def state(self) -> SiteState:
        return self.known["site"]

    def audit(self, result: str, **details) -> dict:
        return records.audit_record(self.actor, self.action, self.name, result, time.monotonic() - self.started,
                                    **details)


# ---- what the facts say -----------------------------------------------------------------------

def new_image(run: SiteRun) -> str:
    """The PHP image the site moves to in this run ("" when it stays on the one it runs)."""
    if not run.panel:
        return ""
    if run.action == "deploy":
        image = php_image.tag(run.settings, run.state.uid)
    else:
        image = run.state.entry(rollback_target(run)).get("image", "")
    return image if image and image != run.state.image else ""


def pending_migrations(run: SiteRun) -> list[str]:
    """The release's migrations its database has not run (none before the snapshot step read them)."""
    ran = run.known.get("migrations")
    if ran is None:
        return []
    return sorted(p.stem for p in (run.site.source / "database" / "migrations").glob("*.php") if p.stem not in ran)


def snapshot_id(run: SiteRun) -> str:
    """The pre-deploy backup's id, named after the release (backup ids are UTC times)."""
    return f"{run.release_id[:8]}T{run.release_id[8:14]}Z"


def takes_snapshot(run: SiteRun) -> bool:
    return run.panel and bool(pending_migrations(run)) and run.settings.snapshot_before_migrations


def migrates_in_maintenance(run: SiteRun) -> bool:
    """A deploy of a panel with migrate_in_maintenance: down, migrate, switch, up (one VPS only)."""
    return run.panel and run.action == "deploy" and run.site.migrate_in_maintenance and not run.swarm


def was_in_maintenance(run: SiteRun) -> bool:
    """A person put the panel in maintenance before this deploy (read with the migrations): it stays so
    after it. One that a failed deploy left ends with this deploy."""
    return bool(run.known.get("maintenance"))


def snapshot_time(snapshot: str) -> str:
    return f"{snapshot[:4]}-{snapshot[4:6]}-{snapshot[6:8]} {snapshot[9:11]}:{snapshot[11:13]}:{snapshot[13:15]} UTC"


def way_out_of_maintenance(run: SiteRun, changed_schema: str) -> str:
    """After a deploy that failed with the panel in maintenance: how to put the database back, and
    open the panel again. `changed_schema` says what the migrations may have done."""
    database = database_name(run.name)
    off = f"`fab maintenance.off --panel={run.name}`"
    if takes_snapshot(run):
        snapshot = snapshot_id(run)
        restore = (f"`fab backup.restore --id={snapshot} --database={database}` puts it back as it was just before "
                   f"this deploy (it discards every change to {database} since {snapshot_time(snapshot)}; a safety "
                   "backup of the current state is taken first)")
    else:
        restore = (f"no snapshot was taken before this deploy (snapshot_before_migrations is off or nothing was "
                   f"pending): restore {database} from a backup (`fab backup.list`, then `fab backup.restore "
                   f"--id=ID --database={database}`)")
    return (f"{changed_schema}, {restore}. Then {off} opens {run.name} to visitors again (a restore also does, "
            f"when it finishes); `fab db.status --panel={run.name}` shows which migrations ran. Or fix the release "
            "and deploy again: it goes live and ends the maintenance")


def rollback_target(run: SiteRun) -> str:
    state = run.state
    complete = state.complete_releases()
    if run.target:
        if run.target not in complete:
            raise FikasoError(f"There is no release {run.target} of {run.name} on the server",
                              f"Pick one of: {', '.join(complete) or 'none'} (`fab releases --panel={run.name}` "
                              "lists them)")
        target = run.target
    else:
        target = previous_live(state)
        if not target:
            raise FikasoError(f"{run.name} has no release older than the live one ({state.live or 'none'}) to go "
                              "back to: none is kept that was live before it, did not fail and was not rolled "
                              "back from",
                              f"Pick one with --release (`fab releases --panel={run.name}` lists them), or deploy a "
                              "fixed release")
    if target == state.live:
        raise FikasoError(f"Release {target} is already live", "Name another with --release")
    return target


def previous_live(state: SiteState) -> str:
    """The release that was live before the live one went live ("undo my last deploy"), skipping
    releases that failed, were rolled back from, or are no longer kept."""
    usable = set(state.complete_releases()) - state.rolled_back() - {state.live}
    usable = {r for r in usable if state.entry(r).get("result", "ok") == "ok"}
    order = state.went_live()
    if state.live in order:
        before = order[:len(order) - 1 - order[::-1].index(state.live)]
        for release_id in reversed(before):
            if release_id in usable:
                return release_id
    # The log (its last 200 lines are read) no longer tells: the newest older release it does not name.
    older = sorted(r for r in usable if r < state.live and r not in order)
    return older[-1] if older else ""


def rollback_snapshot(run: SiteRun) -> str:
    """The snapshot recorded with the release a rollback leaves (for --with-database)."""
    snapshot = run.state.entry(run.state.live).get("snapshot", "")
    if run.with_database and not snapshot:
        raise FikasoError(f"Release {run.state.live} of {run.name} recorded no pre-deploy database snapshot "
                          "(it ran no migrations, or snapshots were off)",
                          f"Roll back without --with-database, or restore a backup with "
                          f"`fab backup.restore --id=ID --database={database_name(run.name)}`")
    return snapshot if run.with_database else ""


# ---- the steps both share -------------------------------------------------------------------

def _locked(run: SiteRun):
    def failure(result) -> Exception:
        held = next((line[5:] for line in result.stdout.splitlines() if line.startswith("held=")), "")
        return Locked(run.name, held) if result.exit_code == LOCKED else None
    return failure


def lock(run: SiteRun) -> Outcome:
    """One round trip: take the lock, finish a move to another PHP image that a killed run left,
    and read everything the run decides from."""
    script = lock_script(run.layout, run.name, run.actor.holder(run.action, run.name, records.now_iso()))
    if run.panel and not run.swarm:   # a swarm moves images with rolling updates, never a candidate
        script += "\n" + php_image.recover_script(run.layout, run.name)
    take = Action("taking the lock", script, reads=(site_fact(run.layout, run.name),), failure=_locked(run),
                  on=run.primary)

    def judge(results) -> Outcome:
        if not run.state.stack:
            raise NotSetUp(run.layout)
        notes = []
        if "recovered=yes" in results[0].stdout.split():
            notes.append("finished an interrupted move to another PHP image first")
        if run.action == "deploy":
            detail = f"held by {run.actor.name}; live release {run.state.live or 'none'}"
        else:
            target, left = rollback_target(run), run.state.live
            rollback_snapshot(run)
            detail = f"live {left}, going back to {target}"
            migrated = run.state.entry(left).get("migrations", 0)
            if migrated and not run.with_database:
                notes.append(f"warning: release {left} ran {migrated} migration(s); release {target} may not "
                             "expect the schema they left. Check the database before relying on it")
        return unchanged("; ".join([detail, *notes]))
    return unchanged("", take, judge=judge)


def image(run: SiteRun) -> Outcome:
    """Start a candidate PHP container on the image the release runs, when the panel runs another."""
    if not run.panel:
        return unchanged("static site: no PHP")
    target = new_image(run)
    if not target:
        return unchanged(run.state.image or "as it is")
    if run.swarm:
        return _image_on_every_node(run, target)
    script = php_image.start_candidate_script(run.layout, run.name, target)
    stdin = None
    if run.action == "deploy":   # built here from dockerfiles/php unless the server has it
        script = php_image.build_script(run.settings, target, run.state.uid) + "\n" + script
        stdin = php_image.build_context().data
    start = Action(f"{'building ' + target + ' and ' if stdin else ''}starting a candidate PHP container on it",
                   script, stdin=stdin)

    def judge(results) -> Outcome:
        how = "built" if "image=built" in results[0].stdout.split() else "on the server"
        if stdin:   # as the deploy said before: built, or found on the server
            return changed(f"{target} {how}; a candidate container runs it until the switch")
        return changed(f"{target}: a candidate container runs it until the switch")
    return changed("", start, judge=judge)


def switch(run: SiteRun) -> Outcome:
    """Make the release live behind the health checks; on failure the live one stays live."""
    target = run.release_id if run.action == "deploy" else rollback_target(run)
    previous = run.state.live
    moving_to = new_image(run)

    maintained = migrates_in_maintenance(run)

    def failure(result) -> Exception | None:
        if result.exit_code != release.UNHEALTHY:
            return None
        live = f"{previous} stays live" if previous else "no release is live"
        way_out = ""
        if maintained:
            live += f", and {run.name} stays in maintenance: visitors get the 503 maintenance page"
            way_out = ". " + way_out_of_maintenance(run, f"The database now has release {target}'s migrations, "
                                                    f"which {previous or 'the old release'} may not work with: if it "
                                                    "does not")
        path = run.site.health
        if release.NO_HEALTH_ROUTE in result.stderr:
            panel = run.name in PANELS
            route = (f"Give the app the route (Laravel 11+: ->withRouting(health: '{path}') in bootstrap/app.php; "
                     f"older Laravel: Route::get('{path}', fn () => 'ok'); in routes/web.php), or set "
                     if panel else f"Add the page {path} to the site, or set ")
            return Unhealthy(
                f"Release {target} of {run.name} has no health page: {path} answered 404 Not Found, so Fikaso "
                f"cannot tell whether it works; {live}",
                f"{route}fikaso.{'panels.' + run.name if panel else 'landing'}.health in fabric.yaml to a path it "
                f"answers with 2xx, then deploy again{way_out}")
        why = f"See `fab logs --service={run.name}_panel` and `fab releases --panel={run.name}` for why{way_out}"
        return Unhealthy(
            f"Release {target} of {run.name} failed its health check ({path} did not "
            f"answer 2xx: {result.stderr.strip() or 'no answer'}); {live}", why)
    if run.swarm:
        actions = [Action("switching every node, each checked through its own nginx and proxy",
                          release.node_activate_script(run.layout, run.site, target, previous or None),
                          failure=failure)]
        if moving_to:
            actions.append(Action(f"moving the {run.name} replicas to {moving_to}, one at a time",
                                  php_image.service_update_script(run.name, moving_to), stream=True, on=run.primary))
        return changed(f"{run.site.domain} answers from {target} on every node"
                       f"{'; replicas on ' + moving_to if moving_to else ''}", *actions)
    activate = Action("switching and checking through the proxy" + (", passing maintenance" if maintained else ""),
                      release.activate_script(run.layout, run.site, target, previous or None,
                                              image=moving_to or None, in_maintenance=maintained), failure=failure)
    detail = f"{run.site.domain} answers from {target}{' on ' + moving_to if moving_to else ''}"
    if not run.site.workers:
        return changed(detail, activate)
    restart = Action("telling the queue workers to restart in it",
                     release.restart_workers_script(run.layout, run.name))

    def judge(results) -> Outcome:
        if "workers=stale" not in results[-1].stdout.split():
            return changed(f"{detail}; queue workers restart in it")
        return changed(f"{detail}; warning: its queue workers could not be restarted and still run the code of "
                       f"{previous or 'before'}. On the VPS: {release.artisan_script(run.layout, run.name, 'queue:restart')}")
    return changed(detail, activate, restart, judge=judge)


def _image_on_every_node(run: SiteRun, target: str) -> Outcome:
    """On a swarm: the image on every node (built where missing, for a deploy); the replicas move to it
    after the switch."""
    if run.action == "deploy":
        action = Action(f"building {target} on every node that lacks it",
                        php_image.build_script(run.settings, target, run.state.uid),
                        stdin=php_image.build_context().data)
    else:
        action = Action(f"checking that every node has {target}", php_image.present_script(run.name, target))
    return changed(f"{target} on every node; the replicas move to it after the switch", action)


def _release_image(run: SiteRun) -> str:
    """The PHP image the release installs in and runs on."""
    return new_image(run) or run.state.image or php_image.tag(run.settings, run.state.uid)


# ---- deploy -----------------------------------------------------------------------------------

def upload(run: SiteRun) -> Outcome:
    payload = release.payload(run.site.source, run.release_id, run.state.manifest)
    size = len(payload.archive.data)
    send = Action(f"uploading release {run.release_id} ({payload.sent} files){' to every node' if run.swarm else ''}",
                  release.upload_script(run.layout, run.name, run.release_id, run.state.live or None),
                  stdin=payload.archive.data)
    return changed(f"{run.release_id}: {payload.sent} files sent, {payload.linked} unchanged linked, "
                   f"{size // 1024} KiB", send)


def _migrations_fact(run: SiteRun):
    if not run.panel:
        return ()
    return (migrations_run(run.layout, database_name(run.name)), unfinished_restores(run.layout))


def refuse_a_half_loaded_database(run: SiteRun) -> None:
    """A restore that stopped while it loaded the panel's database left it half-loaded, and the panel in
    maintenance: migrations must not run on it, and a health check would meet the maintenance page."""
    for restore in run.known.get("unfinished_restores", ()):
        if restore.database == database_name(run.name):
            raise FikasoError(f"The live release of {run.name} stays as it is: {restore.problem}",
                              f"{restore.ways_out}, then {run.action} again")


def snapshot(run: SiteRun) -> Outcome:
    """Back up the panel's database when this release brings migrations it has not run."""
    if not run.panel:
        return unchanged("static site: no database")
    refuse_a_half_loaded_database(run)
    pending = pending_migrations(run)
    if not pending:
        return unchanged("no pending migrations")
    if not run.settings.snapshot_before_migrations:
        return unchanged(f"{len(pending)} pending migration(s); snapshots are off")
    database = database_name(run.name)
    backup_id = snapshot_id(run)
    take = Action(f"backing up {database} before {len(pending)} migration(s)",
                  backup.now_script(run.layout, database, backup_id,
                                    kind=f"snapshot of {run.name} release {run.release_id}"),
                  on="database" if run.swarm else None)
    return changed(f"{database} backed up as {backup_id} before {len(pending)} pending migration(s)", take)


def install(run: SiteRun) -> Outcome:
    if not run.panel:
        return unchanged("static site: nothing to install")
    if run.swarm:
        image = _release_image(run)
        return changed(f"{len(pending_migrations(run))} migration(s) run", Action(
            "composer install and caches on every node",
            release.node_install_script(run.layout, run.name, run.release_id, run.state.uid, image),
            stream=run.verbose), Action(
            "migrations, once", release.migrate_script(run.layout, run.name, run.release_id, run.state.uid, image),
            stream=run.verbose, failure=lambda result: migrations_failed(run, result), on=run.primary))
    container = php_image.candidate(run.name) if new_image(run) else None
    if migrates_in_maintenance(run):
        return changed(f"{len(pending_migrations(run))} migration(s) wait for maintenance", Action(
            "composer install and caches in the PHP container",
            release.install_script(run.layout, run.name, run.release_id, run.state.uid, container, migrate=False),
            stream=run.verbose))
    work = Action("composer install, migrations and caches in the PHP container",
                  release.install_script(run.layout, run.name, run.release_id, run.state.uid, container),
                  stream=run.verbose, failure=lambda result: migrations_failed(run, result))
    return changed(f"{len(pending_migrations(run))} migration(s) run", work)


# ---- migrations in maintenance (panels.<name>.migrate_in_maintenance) -------------------------

def down(run: SiteRun) -> Outcome:
    """The live release into maintenance: visitors get Laravel's 503 page until `up`. The deploy's
    checks pass it with a bypass secret that stays on the server."""
    take = Action("php artisan down in the live release",
                  maintenance.deploy_down_script(run.layout, run.name, mark=not was_in_maintenance(run)))
    if was_in_maintenance(run):
        return changed(f"{run.name} was in maintenance already, and stays so after this deploy", take)
    return changed(f"{run.site.domain} answers 503 (maintenance) until the new release is live and checked", take)


def migrate(run: SiteRun) -> Outcome:
    """The release's migrations, with the panel in maintenance (nothing serves visitors meanwhile)."""
    container = php_image.candidate(run.name) if new_image(run) else None
    work = Action("migrations in the PHP container, in maintenance",
                  release.migrate_in_maintenance_script(run.layout, run.name, run.release_id, container),
                  stream=run.verbose, failure=lambda result: migrations_failed_in_maintenance(run, result))
    return changed(f"{len(pending_migrations(run))} migration(s) run", work)


def up(run: SiteRun) -> Outcome:
    """The new release, live and checked, out of maintenance; unless the panel was in it before the deploy."""
    if was_in_maintenance(run):
        return unchanged(f"{run.name} stays in maintenance as it was before this deploy: `fab maintenance.off "
                         f"--panel={run.name}` ends it")

    def failure(result) -> Exception:
        tail = "".join(f"\n    {line}" for line in telling_lines(result.stderr + "\n" + result.stdout, 4))
        return StillInMaintenance(f"Release {run.release_id} of {run.name} is live and answered its health check, "
                                  f"but `php artisan up` failed, so visitors still get the maintenance page{tail}",
                                  f"Run `fab maintenance.off --panel={run.name}`; if that fails too, see "
                                  f"`fab logs --service={run.name}_panel`")
    return changed(f"{run.site.domain} serves visitors again", Action(
        "php artisan up in the new release", maintenance.switch_script(run.layout, run.name, "up"), failure=failure))


# What `artisan migrate` prints once it runs a migration: "Migrating: <name>" up to Laravel 8, the
# "Running migrations." heading from Laravel 9 on.
MIGRATIONS_BEGAN = ("Migrating:", "Running migrations")


def migrations_began(output: str) -> bool:
    return any(marker in output for marker in MIGRATIONS_BEGAN)


def migrations_failed(run: SiteRun, result) -> MigrationsFailed | None:
    """The error for an install whose migrations began and failed: what state the database may be in,
    and the exact way back."""
    output, tail = _said(result)
    if not migrations_began(output):
        return None        # composer or a cache failed: the database was not touched
    database = database_name(run.name)
    problem = _half_migrated(run, tail, f"The live release {run.state.live or '(none)'} still serves")
    if not takes_snapshot(run):
        return MigrationsFailed(problem, "No snapshot was taken before this deploy (snapshot_before_migrations is "
                                f"off or nothing was pending). Restore {database} from a backup (`fab backup.list`), "
                                "or fix the migration so that it runs over what is there, then deploy again")
    snapshot = snapshot_id(run)
    when = snapshot_time(snapshot)
    if run.settings.restore_snapshot_on_failed_migrations:
        return MigrationsFailed(problem + f". It was put back from the snapshot {snapshot} taken just before "
                                f"(restore_snapshot_on_failed_migrations), with {run.name} in maintenance meanwhile",
                                "Fix the migration, then deploy again")
    return MigrationsFailed(problem, f"To put it back as it was just before this deploy, run `fab backup.restore "
                            f"--id={snapshot} --database={database}`: that discards every change to {database} "
                            f"since {when}, including what visitors wrote since (a safety backup of the current "
                            "state is taken first). Or fix the migration so that it runs over what is there, and "
                            "deploy again")


def _half_migrated(run: SiteRun, tail: str, serving: str) -> str:
    """What a migration that failed part-way leaves, and what serves meanwhile."""
    return (f"Release {run.release_id}'s migrations failed part-way{tail}\n{database_name(run.name)} may now be "
            f"half-migrated: MySQL cannot roll back the schema changes a failed migration made. {serving}")


def _said(result) -> tuple[str, str]:
    """What a failed step printed, and its telling lines indented for an error message."""
    output = result.stdout + "\n" + result.stderr
    return output, "".join(f"\n    {line}" for line in telling_lines(output, 6))


def migrations_failed_in_maintenance(run: SiteRun, result) -> MigrationsFailed:
    """A deploy's migrations failed with the panel in maintenance (the step ran them alone, so any
    failure is theirs): the previous release is live, in maintenance still, until someone decides the
    database is fit for it."""
    output, tail = _said(result)
    database = database_name(run.name)
    live = run.state.live or "(none)"
    if not migrations_began(output):
        return MigrationsFailed(f"Release {run.release_id}'s migrations failed before any of them ran{tail}\n"
                                f"{database} is as it was. Release {live} is live, and {run.name} stays in "
                                "maintenance: visitors get the 503 maintenance page",
                                f"Run `fab maintenance.off --panel={run.name}` to open it again, then fix the cause "
                                "above and deploy again")
    problem = _half_migrated(run, tail, f"Release {live} is live, and {run.name} stays in maintenance: visitors "
                                        "get the 503 maintenance page")
    if takes_snapshot(run) and run.settings.restore_snapshot_on_failed_migrations:
        return MigrationsFailed(problem + f". {database} was put back from the snapshot {snapshot_id(run)} taken "
                                "before this deploy (restore_snapshot_on_failed_migrations), and the restore "
                                f"opened {run.name} to visitors again when it finished",
                                "Fix the migration, then deploy again")
    return MigrationsFailed(problem, way_out_of_maintenance(run, "If the migrations changed the database"))


def deploy_record(run: SiteRun, result: str, migrations: int, reason: str = "",
                  done: Sequence[str] = ("image", "snapshot")) -> dict:
    """The release log's record of this deploy; a failed one records only what its finished steps did."""
    image = (new_image(run) if "image" in done else "") or run.state.image
    snapshot = snapshot_id(run) if "snapshot" in done and takes_snapshot(run) else ""
    return records.release_record(run.release_id, run.actor, run.commit, result, migrations=migrations,
                                  image=image, snapshot=snapshot, reason=reason)


def finish(run: SiteRun) -> Outcome:
    """Prune, record, and free the lock: the last round trip of a deploy."""
    keep = run.settings.keep_releases
    doomed = release.prune_candidates(run.state.complete_releases() + [run.release_id], keep,
                                      {run.release_id, run.state.live})
    prune = release.prune_script(run.layout, run.name, doomed, image=_release_image(run) if run.panel and run.swarm
                                 else "")
    record = "\n".join([
        records.record_script(run.layout, run.name, deploy_record(run, "ok", len(pending_migrations(run))),
                              run.audit("ok", release=run.release_id, commit=run.commit)),
        unlock_script(run.layout, run.name)])
    if run.swarm:   # releases on every node; the records and the lock on the primary
        return changed(f"kept {keep} releases, pruned {len(doomed)}",
                       *([Action("pruning old releases on every node", prune)] if prune else []),
                       Action("recording and freeing the lock", record, on=run.primary))
    return changed(f"kept {keep} releases, pruned {len(doomed)}",
                   Action("pruning old releases, recording and freeing the lock",
                          "\n".join(part for part in [prune, record] if part)))


def serialized(run: SiteRun):
    """The runner's guard for a deploy or rollback: each script waits until no earlier run's
    server-side work on this site is still running (a run killed on the client leaves it)."""
    return lambda action: replace(action, script=one_at_a_time(run.layout, run.name, action.script))


def stale_lock(run: SiteRun, error: BaseException) -> tuple[str, list[Action]] | None:
    """A lock left by a killed run of this machine is freed, and the lock step tried again."""
    if not isinstance(error, Locked) or not records.holder_is_dead_here(error.info):
        return None
    return (f"the {run.name} lock was left by pid {error.info.get('pid')} on this machine, which is no longer "
            "running; taking it over", [Action("freeing a stale lock", unlock_script(run.layout, run.name),
                                               on=run.primary)])


# The snapshot step reads on the database node, which holds the record of unfinished restores.
DEPLOY_STEPS = (Step("lock", lock), Step("upload", upload), Step("image", image),
                Step("snapshot", snapshot, reads=_migrations_fact, on="database"), Step("install", install),
                Step("switch", switch), Step("finish", finish))


def _migrations_and_maintenance_facts(run: SiteRun):
    """The migrations that ran, and whether the panel is in maintenance already: one round trip."""
    return (*_migrations_fact(run), in_maintenance(run.layout, run.name))


# A panel with migrate_in_maintenance: installed as usual while the old release serves, then down,
# migrations, the switch (its checks pass maintenance), up. The queue workers get queue:restart in the
# switch, before `up`: paused by maintenance, they start again on the new release before any job runs.
MAINTENANCE_DEPLOY_STEPS = (Step("lock", lock), Step("upload", upload), Step("image", image),
                            Step("snapshot", snapshot, reads=_migrations_and_maintenance_facts, on="database"),
                            Step("install", install), Step("down", down), Step("migrate", migrate),
                            Step("switch", switch), Step("up", up), Step("finish", finish))


def deploy_steps(run: SiteRun) -> tuple[Step, ...]:
    """The steps of this deploy: the panel's migrate_in_maintenance setting decides."""
    return MAINTENANCE_DEPLOY_STEPS if migrates_in_maintenance(run) else DEPLOY_STEPS


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def deploy_cleanup(run: SiteRun, done: Sequence[str], error: BaseException) -> list[Action]:
    """After a failure: the live release is as it was; remove what the run left, record why, unlock."""
    if isinstance(error, Locked):           # the lock is someone else's
        return []
    unlock = unlock_script(run.layout, run.name)
    if isinstance(error, NotSetUp):
        return [Action("freeing the lock", unlock, on=run.primary)]
    if isinstance(error, StillInMaintenance):   # the release is live and checked: recorded as deployed
        return list(finish(run).actions)
    reason = _reason(error)
    if "site" not in run.known.values:      # the lock script itself failed, after or before taking it
        audit = run.audit("failed", release=run.release_id, commit=run.commit, reason=reason)
        return [Action("recording the failure and freeing the lock",
                       "\n".join([records.record_script(run.layout, run.name, None, audit), unlock]), on=run.primary)]
    actions, lines = [], []
    if isinstance(error, MigrationsFailed) and takes_snapshot(run) and \
            run.settings.restore_snapshot_on_failed_migrations:
        database = database_name(run.name)
        actions.append(Action(f"restoring {database} from the snapshot {snapshot_id(run)}",
                              backup.restore_script(run.layout, snapshot_id(run), database), stream=True,
                              on="database" if run.swarm else None))
    if migrates_in_maintenance(run) and "install" in done and "down" not in done and not was_in_maintenance(run):
        # `artisan down` failed: nothing migrated, so the live release can serve visitors again.
        lines.append(f"({maintenance.switch_script(run.layout, run.name, 'up')}) >/dev/null 2>&1 || true")
    if "switch" not in done:
        # The failed release never stayed live (activation switched back), so it can go.
        if "image" in done and new_image(run) and not run.swarm:
            lines += php_image.remove_candidate_lines(run.name)
        release = run.layout.release(run.name, run.release_id)
        if run.swarm and "install" in done:
            # The switch ran: not removed, as a node that could not switch back may still serve it, and nginx
            # on one node sends its real path to PHP-FPM on another. It is pruned with the old releases.
            actions.append(Action("switching every node back",
                                  "\n".join(_switched_back(run, run.release_id, run.state.live))))
        else:   # one VPS: activation switched back; a swarm that failed before its switch: no node served it
            remove = cmd("rm", "-rf", release, f"{release}.partial")
            if run.swarm:
                actions.append(Action("removing the release from every node", remove))
            else:
                lines.append(remove)
    migrated = len(pending_migrations(run)) if ("migrate" if migrates_in_maintenance(run) else "install") in done else 0
    lines += [records.record_script(run.layout, run.name, deploy_record(run, "failed", migrated, reason, done),
                                    run.audit("failed", release=run.release_id, commit=run.commit, reason=reason)),
              unlock]
    return [*actions, Action("recording the failure and freeing the lock", "\n".join(lines), on=run.primary)]


def _switched_back(run: SiteRun, failed_release: str, previous: str) -> list[str]:
    """On a swarm node that went live with a release that then failed (on another node, or in the
    replicas' move to a new image): back to the previous one. Nothing where it never switched."""
    current = run.layout.current(run.name)
    back = release.switch_back_lines(run.layout, run.name, previous or None)
    return [f"if [ \"$(readlink {q(current)})\" = {q('releases/' + failed_release)} ]; then",
            *(f"  {line}" for line in back), "fi"]


# ---- rollback ---------------------------------------------------------------------------------

def database(run: SiteRun) -> Outcome:
    snapshot_of_left = rollback_snapshot(run)
    if not snapshot_of_left:
        if run.panel:
            refuse_a_half_loaded_database(run)
        return unchanged("code only")
    name = database_name(run.name)
    kept = [b for b in run.known["backups"] if b.holds(name)]
    if snapshot_of_left not in {b.id for b in kept}:
        older = [b.id for b in kept if b.id < snapshot_of_left]
        raise FikasoError(
            f"The snapshot {snapshot_of_left} that release {run.state.live} recorded is not on the server any more "
            "(deleted by hand, or by an older Fikaso's retention)",
            (f"The newest older backup of {name} is {older[-1]}: `fab backup.restore --id={older[-1]} "
             f"--database={name}` restores it (changes since then are lost), then roll back without "
             "--with-database" if older else f"No older backup holds {name}; roll back without --with-database"))
    restore = Action(f"restoring {name} from the snapshot {snapshot_of_left}",
                     backup.restore_script(run.layout, snapshot_of_left, name), on="database" if run.swarm else None)
    return changed(f"{name} restored from {snapshot_of_left} (a safety backup was taken first)", restore)


def rollback_finish(run: SiteRun) -> Outcome:
    target, left = rollback_target(run), run.state.live
    audit = run.audit("ok", release=target, left=left, database=rollback_snapshot(run) or None)
    event = records.rollback_record(left, target, run.actor)
    script = "\n".join([records.record_script(run.layout, run.name, event, audit), unlock_script(run.layout, run.name)])
    return unchanged("", Action("recording and freeing the lock", script, on=run.primary))


def _backups_fact(run: SiteRun):
    """The backups, for --with-database (whose restore may finish an unfinished one); without it, the
    unfinished restores, which refuse a code-only rollback."""
    if run.with_database:
        return (backups_fact(run.layout),)
    return (unfinished_restores(run.layout),) if run.panel else ()


# Snapshots are on the database node (the only host on one VPS).
ROLLBACK_STEPS = (Step("lock", lock), Step("image", image),
                  Step("database", database, reads=_backups_fact, on="database"), Step("switch", switch),
                  Step("finish", rollback_finish))


def rollback_cleanup(run: SiteRun, done: Sequence[str], error: BaseException) -> list[Action]:
    if isinstance(error, Locked):
        return []
    moved = "image" in done and "switch" not in done and new_image(run)
    if run.swarm:
        tried = "database" in done and "switch" not in done    # the switch ran and failed
        back = _switched_back(run, rollback_target(run), run.state.live) if tried else []
        return [*([Action("switching every node back", "\n".join(back))] if back else []),
                Action("freeing the lock", unlock_script(run.layout, run.name), on=run.primary)]
    lines = php_image.remove_candidate_lines(run.name) if moved else []
    return [Action("freeing the lock", "\n".join([*lines, unlock_script(run.layout, run.name)]))]
