"""Locks on the server: a site's deploy lock (an atomic mkdir naming its holder), and the flock
that keeps certificate runs apart.

The values shared with stack/bin's scripts (lock files, wait, the exit code of a busy lock) are
defined here and reach those scripts through the bundle's .env (fikaso/bundle.py).
"""
from __future__ import annotations

import json

from ..layout import Layout
from ..shell import cmd, q

LOCKED = 75          # exit code of a lock that someone else holds (EX_TEMPFAIL), here and in stack/bin
LOCKED_KEY = "held"  # the key=value line a held site lock prints, naming its holder
FLOCK_SECONDS = 900  # how long a certificate run waits for another to finish


def site_lock_dir(layout: Layout, site: str):
    return layout.state / "locks" / site


def lock_script(layout: Layout, site: str, holder: dict) -> str:
    """Take the site's lock, or print its holder and exit LOCKED."""
    folder = site_lock_dir(layout, site)
    return "\n".join([
        cmd("mkdir", "-p", layout.state / "locks"),
        f"if mkdir {q(folder)} 2>/dev/null; then",
        f"  printf '%s\\n' {q(json.dumps(holder, sort_keys=True))} > {q(folder / 'holder')}",
        "else",
        f"  echo \"{LOCKED_KEY}=$(cat {q(folder / 'holder')} 2>/dev/null)\"",
        f"  exit {LOCKED}",
        "fi",
    ])


def unlock_script(layout: Layout, site: str) -> str:
    return cmd("rm", "-rf", site_lock_dir(layout, site))


def holder_script(layout: Layout, site: str) -> str:
    """Print the lock's holder (held=...), or nothing when it is free."""
    folder = site_lock_dir(layout, site)
    return f"if [ -d {q(folder)} ]; then echo \"{LOCKED_KEY}=$(cat {q(folder / 'holder')} 2>/dev/null)\"; fi"


def certs_lock_file(layout: Layout):
    return layout.state / "certs.lock"


def backup_lock_file(layout: Layout):
    """One backup or restore at a time (stack/bin/fikaso-backup takes it)."""
    return layout.state / "backup.lock"


def flock_lines(path, who: str, seconds: int = FLOCK_SECONDS) -> str:
    """Hold an flock on `path` for the rest of the script, waiting at most `seconds` for `who` holding it."""
    return (f"exec 9>{q(path)}\n"
            f"flock -w {seconds} 9 || {{ echo {q(f'{who} still holds {path}')} >&2; exit {LOCKED}; }}")
