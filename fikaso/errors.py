"""The one error type users see: a paragraph that names the problem and the fix."""
import re


class FikasoError(Exception):
    """An error whose message is written for the user: what went wrong, and what to do."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(f"{self.problem}. {self.fix}.")


# Stack frames and structured log records bury the line that says what went wrong.
_NOISE = re.compile(r'^\s*(#\d+ |\{"|\[stacktrace\]|"\}|$)')


def telling_lines(text: str, count: int = 12) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if not _NOISE.match(line)][-count:]


# What a full disk looks like in a failed command's output: the system's message, and tar's own
# for a write the disk cut short.
DISK_FULL_SIGNS = ("No space left on device", "Disk quota exceeded", "Wrote only ")


def disk_full(output: str) -> bool:
    return any(sign in output for sign in DISK_FULL_SIGNS)


class DiskFull(FikasoError):
    """A remote action ran out of disk space: said plainly, whatever the action was."""

    def __init__(self, label: str, output: str):
        line = next((line.strip() for line in output.splitlines() if disk_full(line)), DISK_FULL_SIGNS[0])
        super().__init__(
            f"{label} failed: the VPS is out of disk space ({line}). What this run had written was removed "
            "and nothing else was deleted to make room: older releases and backups are as they were, and the "
            "live site still serves",
            "Free space on the VPS (`df -h` there shows what is left; `fab backup.list` shows the backups you "
            "might remove, and `docker image prune` removes unused images), then run the task again")


class ConnectionLost(FikasoError):
    """The SSH link died under a running action (a cut cable, a VPS that rebooted or vanished)."""

    def __init__(self, host: str, label: str, cause: BaseException):
        super().__init__(
            f"The connection to {host} was lost while {label} ({cause or type(cause).__name__}), so this run "
            "stopped there. What the server was doing in that moment may still finish on its own; nothing "
            "after it ran. Every step is written so that its half-done work is never live",
            f"Once `ssh {host} true` works again, run the same command again: it picks up from what the server "
            "has (a deploy takes over the lock this run left, and removes its unfinished upload)")
