"""Locks on the server: a site's deploy lock (an atomic mkdir naming its holder), the flock that
keeps the server-side work of runs on one site apart, and the flock that keeps certificate runs
apart.

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


WORK_SECONDS = 600   # how long a script waits for the server-side work of an earlier run on its site


def site_lock_dir(layout: Layout, site: str):
    return layout.state / "locks" / site


def one_at_a_time(layout: Layout, site: str, script: str) -> str:
    """`script`, run only when no script of another run on `site` still runs on the server.

    The site lock says which run may change the site; this says when its scripts may run. A run
    killed on the client (kill -9, a cut link) leaves the script it was in running on the server,
    and the next run must not start its own work beside it (two migrations, two candidates of one
    name). The flock is held by an open file, which every process the script starts inherits, so it
    ends with the last of them, however they end.
    """
    work = layout.state / "locks" / f"{site}.work"
    waiting = f"waiting for what an earlier run left running on the server for {site} to end"
    gave_up = (f"An earlier run's work for {site} is still running on the server after {WORK_SECONDS} s "
               f"(it holds {work}; see `fuser -v {work}` on the server). Wait for it, or stop it, and run again.")
    return "\n".join([
        cmd("mkdir", "-p", layout.state / "locks"),
        f"exec 8>>{q(work)}",
        "if ! flock -n 8; then",
        f"  echo {q(waiting)} >&2",
        f"  flock -w {WORK_SECONDS} 8 || {{ echo {q(gave_up)} >&2; exit 1; }}",
        "fi",
        script,
    ])


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
