"""What Fikaso records about each release and each run: who, from where, which commit, the result.

Setup and deploy write the same records: a release log per site (state/<site>.releases.jsonl),
and one audit log of every run (state/audit.log). `fab releases` reads them back.
"""
from __future__ import annotations

import getpass
import os
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .layout import Layout
from .shell import append_lines
from .tables import table


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

    def holder(self, action: str, site: str, since: str) -> dict:
        """What a lock records about the run holding it."""
        return {"who": self.name, "host": self.host, "pid": self.pid, "since": since, "action": f"{action} {site}"}


def holder_is_dead_here(info: dict) -> bool:
    """True when a lock's holder ran on this machine and its process is gone (a killed run)."""
    if info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


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


def release_record(release_id: str, actor: Actor, commit: str, result: str, *, migrations: int = 0,
                   image: str = "", snapshot: str = "", reason: str = "", note: str = "") -> dict:
    record = {"id": release_id, "at": now_iso(), "by": actor.name, "commit": commit, "result": result,
              "migrations": migrations, "image": image}
    for key, value in (("snapshot", snapshot), ("reason", reason), ("note", note)):
        if value:
            record[key] = value
    return record


def rollback_record(left: str, target: str, actor: Actor) -> dict:
    """The release log's note that a rollback put `target` back live and left `left`."""
    return {"event": "rollback", "from": left, "to": target, "at": now_iso(), "by": actor.name}


def audit_record(actor: Actor, action: str, site: str, result: str, seconds: float, **details) -> dict:
    return {"at": now_iso(), "who": actor.name, "action": action, "site": site, "result": result,
            "seconds": round(seconds, 1), **details}


def record_script(layout: Layout, site: str, release: dict | None, audit: dict | None) -> str:
    """Append to the site's release log and to the audit log."""
    parts = []
    if release is not None:
        parts.append(append_lines(layout.release_log(site), [release]))
    if audit is not None:
        parts.append(append_lines(layout.audit_log, [audit]))
    return "\n".join(parts)


def releases_table(state) -> str:
    """A site's releases (a facts.SiteState): id, live or not, when, by whom, commit, PHP image, result."""
    rows = []
    rolled_back = state.rolled_back()
    ids = sorted(set(state.complete_releases()) | {r["id"] for r in state.log if r.get("id")})
    for release_id in ids:
        entry = state.entry(release_id)
        on_disk = release_id in state.releases
        result = entry.get("result", "?") + (", rolled back" if release_id in rolled_back else "") + \
            ("" if on_disk else " (removed)")
        rows.append((release_id, "*" if release_id == state.live else "", entry.get("at", "?"), entry.get("by", "?"),
                     entry.get("commit", "") or "-", entry.get("image", "").rpartition(":")[2] or "-", result))
    return table(("RELEASE", "LIVE", "WHEN", "BY", "COMMIT", "PHP IMAGE", "RESULT"), rows)
