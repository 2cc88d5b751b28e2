"""`fab deploy`, `fab rollback`, `fab releases`: ship one site, undo it, and list what shipped.

A deploy holds the site's lock (an atomic mkdir on the server, naming its holder) from the first
round trip to the last; other sites are never blocked. Nothing touches the live release until the
new one is installed and migrated, and the switch is checked through the proxy and undone at once
if the site does not answer.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import backup, php_image, release
from .config import PANELS, Settings, Site
from .errors import FikasoError
from .layout import Layout
from .remote import Remote, RemoteError, cmd, q
from .secrets import database_name
from .steps import Outcome, Step, changed, run_steps, unchanged
from .tables import table

LOCKED = 75  # exit code of the lock script when someone else holds the lock


# ---- who is deploying, and with what --------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    user: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> "Actor":
        return cls(getpass.getuser(), socket.gethostname(), os.getpid())

    @property
    def name(self) -> str:
        return f"{self.user}@{self.host}"


def source_commit(source: Path) -> str:
    """The source's git commit ('+dirty' when it has uncommitted changes), or '' outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, check=False)
    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return ""
    dirty = git("status", "--porcelain", "--", ".").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- pure builders of remote scripts -------------------------------------------------------

def lock_dir(layout: Layout, site: str):
    return layout.state / "locks" / site


def lock_script(layout: Layout, site: str, holder: dict) -> str:
    """Take the site's lock, or print its holder and exit LOCKED."""
    folder = lock_dir(layout, site)
    return "\n".join([
        cmd("mkdir", "-p", layout.state / "locks"),
        f"if mkdir {q(folder)} 2>/dev/null; then",
        f"  printf '%s\\n' {q(json.dumps(holder, sort_keys=True))} > {q(folder / 'holder')}",
        "else",
        f"  echo \"held=$(cat {q(folder / 'holder')} 2>/dev/null)\"",
        f"  exit {LOCKED}",
        "fi",
    ])


def unlock_script(layout: Layout, site: str) -> str:
    return cmd("rm", "-rf", lock_dir(layout, site))


def release_log(layout: Layout, site: str):
    return layout.state / f"{site}.releases.jsonl"


def state_script(layout: Layout, site: str) -> str:
    """Everything a deploy or rollback decides from, read in the same round trip as the lock."""
    current = layout.current(site)
    return "\n".join([
        f"if [ -f {q(layout.stack / 'compose.yaml')} ]; then echo stack=yes; else echo stack=no; fi",
        f"echo \"live=$(basename \"$(readlink {q(current)} 2>/dev/null)\" 2>/dev/null || true)\"",
        f"ls -1 {q(layout.releases(site))} 2>/dev/null | sed 's/^/release=/' || true",
        *([f"echo \"image=$({php_image.live_image(site)} || true)\"",
           f"if [ -f {q(php_image.route_file(layout, site))} ]; then echo interrupted=yes; fi"]
          if site in PANELS else []),
        "echo \"uid=$(id -u)\"",
        f"if [ -f {q(release_log(layout, site))} ]; then tail -n 200 {q(release_log(layout, site))} "
        "| sed 's/^/log=/'; fi",
        f"if [ -f {q(str(current) + '/' + release.MANIFEST_FILE)} ]; then "
        f"sed 's/^/manifest=/' {q(str(current) + '/' + release.MANIFEST_FILE)}; fi",
    ])


def append_lines(path, records: list[dict]) -> str:
    return "\n".join(f"printf '%s\\n' {q(json.dumps(r, sort_keys=True))} >> {q(path)}" for r in records)


def finish_script(layout: Layout, site: str, *, doomed: list[str], release_record: dict | None,
                  audit_record: dict) -> str:
    """Prune, record, and free the lock: the last round trip of a deploy, whatever its result."""
    parts = [release.prune_script(layout, site, doomed)]
    if release_record is not None:
        parts.append(append_lines(release_log(layout, site), [release_record]))
    parts.append(append_lines(layout.state / "audit.log", [audit_record]))
    parts.append(unlock_script(layout, site))
    return "\n".join(p for p in parts if p)


# ---- reading the state ----------------------------------------------------------------------

@dataclass
class SiteState:
    stack: bool = False
    live: str = ""
    releases: list[str] = field(default_factory=list)
    image: str = ""
    uid: str = ""
    log: list[dict] = field(default_factory=list)
    manifest: dict[str, str] = field(default_factory=dict)
    holder: str = ""
    interrupted: bool = False   # a move to another PHP image was cut off (php_image.recover_script)

    def entry(self, release_id: str) -> dict:
        """The newest log record of a release (empty if it has none)."""
        for record in reversed(self.log):
            if record.get("id") == release_id:
                return record
        return {}

    def complete_releases(self) -> list[str]:
        return sorted(r for r in self.releases if not r.endswith(".partial"))


def parse_state(text: str) -> SiteState:
    state = SiteState()
    manifest_lines = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "stack":
            state.stack = value == "yes"
        elif key == "live":
            state.live = value
        elif key == "release" and value:
            state.releases.append(value)
        elif key == "image":
            state.image = value
        elif key == "interrupted":
            state.interrupted = value == "yes"
        elif key == "uid":
            state.uid = value
        elif key == "held":
            state.holder = value
        elif key == "log":
            try:
                state.log.append(json.loads(value))
            except ValueError:
                pass
        elif key == "manifest":
            manifest_lines.append(value)
    state.manifest = release.parse_manifest(manifest_lines)
    return state


# ---- a run ----------------------------------------------------------------------------------

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


def _holder_is_dead_here(info: dict) -> bool:
    """True when the holder ran on this machine and its process is gone (a killed run)."""
    if info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


@dataclass
class Run:
    settings: Settings
    site: Site
    remote: Remote          # runs what changes the server (or prints it, for --plan)
    reader: Remote          # reads state; the same as remote unless planning
    actor: Actor
    action: str
    plan: bool = False
    verbose: bool = False
    layout: Layout = field(init=False)
    state: SiteState = field(default_factory=SiteState)
    locked: bool = False
    candidate: str = ""     # the image of the panel's candidate PHP container, while one runs
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        self.layout = Layout(self.settings.base_dir)

    def holder(self) -> dict:
        return {"who": self.actor.name, "host": self.actor.host, "pid": self.actor.pid,
                "since": now_iso(), "action": f"{self.action} {self.site.name}"}

    def audit(self, result: str, **details) -> dict:
        return {"at": now_iso(), "who": self.actor.name, "action": self.action, "site": self.site.name,
                "result": result, "seconds": round(time.monotonic() - self.started, 1), **details}

    def lock_and_read(self, out) -> None:
        """One round trip: take the lock and read the state (planning only reads)."""
        if self.plan:
            self.state = parse_state(self.reader.run(state_script(self.layout, self.site.name),
                                                     label="reading the server's state").stdout)
            self.remote.run(lock_script(self.layout, self.site.name, self.holder()), label="taking the lock")
        else:
            for attempt in (1, 2):
                script = lock_script(self.layout, self.site.name, self.holder()) + "\n" + \
                    state_script(self.layout, self.site.name)
                result = self.remote.run(script, label="taking the lock", check=False)
                self.state = parse_state(result.stdout)
                if result.exit_code == 0:
                    break
                if result.exit_code != LOCKED:
                    raise RemoteError("taking the lock", result)
                locked = Locked(self.site.name, self.state.holder)
                if attempt == 2 or not _holder_is_dead_here(locked.info):
                    raise locked
                print(f"note: the {self.site.name} lock was left by pid {locked.info.get('pid')} on this "
                      "machine, which is no longer running; taking it over", file=out)
                self.remote.run(unlock_script(self.layout, self.site.name), label="freeing a stale lock")
            self.locked = True
        if self.state.interrupted:
            print(f"note: an earlier run was cut off while moving {self.site.name} to another PHP image; "
                  "finishing that first", file=out)
            result = self.remote.run(php_image.recover_script(self.layout, self.site.name),
                                     label="finishing an interrupted move to another PHP image")
            self.state.image = parse_state(result.stdout).image
        if not self.state.stack:
            self.unlock()
            raise FikasoError(f"The stack is not set up under {self.layout.base} on this server",
                              "Run `fab setup` first")

    def start_candidate(self, image: str, stdin=None) -> str:
        """Start the panel's candidate PHP container on `image` (building it first when given its context)."""
        script = php_image.start_candidate_script(self.layout, self.site.name, image)
        if stdin is not None:
            script = php_image.build_script(self.settings, image, self.state.uid) + "\n" + script
        result = self.remote.run(script, label=f"{'building ' + image + ' and ' if stdin else ''}starting a "
                                 f"candidate PHP container on it", stdin=stdin)
        self.candidate = image
        return "built" if "image=built" in result.stdout else "on the server"

    def activate(self, release_id: str, previous: str) -> Outcome:
        """Make `release_id` live behind the health checks; on failure `previous` stays live."""
        result = self.remote.run(release.activate_script(self.layout, self.site, release_id, previous or None,
                                                         image=self.candidate or None),
                                 label="switching and checking through the proxy", check=False)
        if result.exit_code == release.UNHEALTHY:
            live = f"{previous} stays live" if previous else "no release is live"
            raise FikasoError(
                f"Release {release_id} of {self.site.name} failed its health check "
                f"({release.health_path(self.site.name)} did not answer 2xx: {result.stderr.strip() or 'no answer'}); "
                f"{live}",
                f"See `fab logs --service={self.site.name}_panel` and `fab releases --panel={self.site.name}` for why")
        if not result.ok:
            raise RemoteError("switching", result)
        on = f" on {self.candidate}" if self.candidate else ""
        self.candidate = ""
        return changed(f"{self.site.domain} answers from {release_id}{on}")

    def cleanup_lines(self) -> list[str]:
        """What a failed run removes besides the lock: its candidate PHP container."""
        return php_image.remove_candidate_lines(self.site.name) if self.candidate else []

    def unlock(self) -> None:
        if self.locked:
            self.remote.run("\n".join([*self.cleanup_lines(), unlock_script(self.layout, self.site.name)]),
                            label="freeing the lock")
            self.locked = False


# ---- deploy ---------------------------------------------------------------------------------

@dataclass
class Deploy(Run):
    release_id: str = field(default_factory=release.new_release_id)
    payload: release.Payload | None = None
    commit: str = ""
    migrations: int = 0
    previous: str = ""
    snapshot: str = ""
    image: str = ""

    def step_lock(self, out) -> Outcome:
        self.lock_and_read(out)
        self.previous = self.state.live
        return unchanged(f"held by {self.actor.name}; live release {self.previous or 'none'}")

    def step_upload(self, _) -> Outcome:
        self.commit = source_commit(self.site.source)
        self.payload = release.payload(self.site.source, self.release_id, self.state.manifest)
        self.remote.run(release.upload_script(self.layout, self.site.name, self.release_id, self.previous or None),
                        label=f"uploading release {self.release_id} ({self.payload.sent} files, "
                              f"{len(self.payload.archive.data)} bytes on stdin)",
                        stdin=self.payload.archive.chunks())
        return changed(f"{self.release_id}: {self.payload.sent} files sent, {self.payload.linked} unchanged "
                       f"linked, {len(self.payload.archive.data) // 1024} KiB")

    def step_image(self, _) -> Outcome:
        """Move the panel to the PHP image built from dockerfiles/php when it is not the one it runs."""
        if self.site.name not in PANELS:
            return unchanged("static site: no PHP")
        self.image = php_image.tag(self.settings, self.state.uid)
        if self.image == self.state.image:
            return unchanged(self.image)
        how = self.start_candidate(self.image, stdin=php_image.build_context().chunks())
        return changed(f"{self.image} {how}; a candidate container runs it until the switch")

    def step_snapshot(self, _) -> Outcome:
        """Back up the panel's database when this release brings migrations it has not run."""
        if self.site.name not in PANELS:
            return unchanged("static site: no database")
        database = database_name(self.site.name)
        ran = set(self.reader.run(backup.migrations_script(self.layout, database),
                                  label="reading which migrations have run").stdout.split())
        pending = sorted(p.stem for p in (self.site.source / "database" / "migrations").glob("*.php")
                         if p.stem not in ran)
        if not pending:
            return unchanged("no pending migrations")
        if not self.settings.snapshot_before_migrations:
            return unchanged(f"{len(pending)} pending migration(s); snapshots are off")
        result = self.remote.run(backup.now_script(self.layout, database),
                                 label=f"backing up {database} before {len(pending)} migration(s)")
        self.snapshot = "planned" if self.plan else backup.created_id(result.stdout)
        return changed(f"{database} backed up as {self.snapshot} before {len(pending)} pending migration(s)")

    def step_install(self, _) -> Outcome:
        if self.site.name not in PANELS:
            return unchanged("static site: nothing to install")
        container = php_image.candidate(self.site.name) if self.candidate else None
        result = self.remote.run(release.install_script(self.layout, self.site.name, self.release_id,
                                                         self.state.uid, container),
                                 label="composer install, migrations and caches in the PHP container",
                                 echo=(lambda line: print(f"    {line}", flush=True)) if self.verbose else None)
        self.migrations = sum(1 for line in result.stdout.splitlines() if line.startswith("Migrated:"))
        return changed(f"{self.migrations} migration(s) run")

    def step_activate(self, _) -> Outcome:
        return self.activate(self.release_id, self.previous)

    def step_finish(self, _) -> Outcome:
        protect = {self.release_id, self.previous}
        doomed = release.prune_candidates(self.state.complete_releases() + [self.release_id],
                                          self.settings.keep_releases, protect)
        self.remote.run(finish_script(self.layout, self.site.name, doomed=doomed,
                                      release_record=self.record("ok"),
                                      audit_record=self.audit("ok", release=self.release_id, commit=self.commit)),
                        label="pruning old releases, recording and freeing the lock")
        self.locked = False
        return changed(f"kept {self.settings.keep_releases} releases, pruned {len(doomed)}")

    def record(self, result: str, reason: str = "") -> dict:
        record = {"id": self.release_id, "at": now_iso(), "by": self.actor.name, "commit": self.commit,
                  "result": result, "migrations": self.migrations, "image": self.image or self.state.image}
        if self.snapshot:
            record["snapshot"] = self.snapshot
        if reason:
            record["reason"] = reason
        return record

    def fail(self, reason: str) -> None:
        """Record a failed deploy and free the lock; the live release is as it was."""
        if not self.locked:
            return
        # The failed release never stayed live (activation switched back), so it can go.
        script = "\n".join([
            *self.cleanup_lines(),
            cmd("rm", "-rf", self.layout.release(self.site.name, self.release_id)),
            finish_script(self.layout, self.site.name, doomed=[], release_record=self.record("failed", reason),
                          audit_record=self.audit("failed", release=self.release_id, commit=self.commit,
                                                  reason=reason)),
        ])
        try:
            self.remote.run(script, label="recording the failure and freeing the lock")
        finally:
            self.locked = False


def _run(run: Run, steps: list[Step], out) -> list[Outcome]:
    try:
        return run_steps(f"{run.action} {run.site.name}", steps, out, out=out)
    except BaseException as error:
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        if isinstance(run, Deploy):
            run.fail(reason)
        else:
            run.unlock()
        if isinstance(error, RemoteError):
            raise FikasoError(str(error),
                              f"Nothing went live; fix the cause shown above and run the {run.action} again") from None
        raise


def deploy(run: Deploy, out) -> None:
    steps = [Step("lock", run.step_lock), Step("upload", run.step_upload), Step("image", run.step_image),
             Step("snapshot", run.step_snapshot), Step("install", run.step_install),
             Step("switch", run.step_activate), Step("finish", run.step_finish)]
    _run(run, steps, out)
    if not run.plan:
        print(f"deployed {run.site.name} {run.release_id} in {time.monotonic() - run.started:.1f} s", file=out)


# ---- rollback -------------------------------------------------------------------------------

@dataclass
class Rollback(Run):
    target: str = ""
    left: str = ""
    with_database: bool = False
    snapshot: str = ""

    def step_lock(self, out) -> Outcome:
        self.lock_and_read(out)
        self.left = self.state.live
        complete = self.state.complete_releases()
        if self.target:
            if self.target not in complete:
                raise FikasoError(f"There is no release {self.target} of {self.site.name} on the server",
                                  f"Pick one of: {', '.join(complete) or 'none'} (`fab releases "
                                  f"--panel={self.site.name}` lists them)")
        else:
            older = [r for r in complete if r < self.left and self.state.entry(r).get("result", "ok") == "ok"]
            if not older:
                raise FikasoError(f"{self.site.name} has no release older than the live one ({self.left or 'none'})",
                                  "There is nothing to roll back to; deploy a fixed release instead")
            self.target = older[-1]
        if self.target == self.left:
            raise FikasoError(f"Release {self.target} is already live", "Name another with --release")
        migrated = self.state.entry(self.left).get("migrations", 0)
        if self.with_database:
            self.snapshot = self.state.entry(self.left).get("snapshot", "")
            if not self.snapshot:
                raise FikasoError(f"Release {self.left} of {self.site.name} recorded no pre-deploy database snapshot "
                                  "(it ran no migrations, or snapshots were off)",
                                  f"Roll back without --with-database, or restore a backup with "
                                  f"`fab backup.restore --id=ID --database={database_name(self.site.name)}`")
        elif migrated:
            print(f"warning: release {self.left} ran {migrated} migration(s); release {self.target} may not expect "
                  "the schema they left. Check the database before relying on it.", file=out)
        return unchanged(f"live {self.left}, going back to {self.target}")

    def step_image(self, _) -> Outcome:
        """Back to the PHP image the target release ran, when the panel runs another one now."""
        image = self.state.entry(self.target).get("image", "")
        if self.site.name not in PANELS or not image or image == self.state.image:
            return unchanged(image or "as it is")
        self.start_candidate(image)
        return changed(f"{image}: a candidate container runs it until the switch")

    def step_database(self, _) -> Outcome:
        if not self.with_database:
            return unchanged("code only")
        database = database_name(self.site.name)
        self.remote.run(backup.restore_script(self.layout, self.snapshot, database),
                        label=f"restoring {database} from the snapshot {self.snapshot}")
        return changed(f"{database} restored from {self.snapshot} (a safety backup was taken first)")

    def step_activate(self, _) -> Outcome:
        return self.activate(self.target, self.left)

    def step_finish(self, _) -> Outcome:
        self.remote.run(finish_script(self.layout, self.site.name, doomed=[], release_record=None,
                                      audit_record=self.audit("ok", release=self.target, left=self.left,
                                                              database=self.snapshot or None)),
                        label="recording and freeing the lock")
        self.locked = False
        return unchanged()


def rollback(run: Rollback, out) -> None:
    steps = [Step("lock", run.step_lock), Step("image", run.step_image), Step("database", run.step_database),
             Step("switch", run.step_activate),
             Step("finish", run.step_finish)]
    _run(run, steps, out)
    if not run.plan:
        print(f"rolled back {run.site.name} to {run.target} in {time.monotonic() - run.started:.1f} s", file=out)


# ---- releases table -------------------------------------------------------------------------

def releases_table(state: SiteState) -> str:
    rows = []
    ids = sorted(set(state.complete_releases()) | {r.get("id", "") for r in state.log if r.get("id")})
    for release_id in ids:
        entry = state.entry(release_id)
        on_disk = release_id in state.releases
        result = entry.get("result", "?") + ("" if on_disk else " (removed)")
        rows.append((release_id, "*" if release_id == state.live else "", entry.get("at", "?"), entry.get("by", "?"),
                     entry.get("commit", "") or "-", entry.get("image", "").rpartition(":")[2] or "-", result))
    return table(("RELEASE", "LIVE", "WHEN", "BY", "COMMIT", "PHP IMAGE", "RESULT"), rows)
