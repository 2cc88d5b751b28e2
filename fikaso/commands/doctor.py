"""What `fab doctor` reads on a server: scripts that only look (no file, container or crontab changes).

Each prints key=value lines (fikaso/plan.py's wire format); fikaso/probes.py pairs them with parsers.
"""
from __future__ import annotations

from ..layout import Layout
from ..shell import q

# Every crontab line Fikaso installs ends with a marker that starts so (cron.MARKER, certbot.MARKER).
CRON_MARKER_PREFIX = "# fikaso-"


def clock_lines() -> list[str]:
    """The server's clock to the millisecond, and whether NTP keeps it in sync (systemd's view, when
    it has one: "yes", "no", or nothing)."""
    return ['echo "now=$(date -u +%s.%N)"',
            'echo "ntp=$(timedatectl show --property=NTPSynchronized --value 2>/dev/null || true)"']


def disk_lines(layout: Layout) -> list[str]:
    """Size and free bytes of the filesystems that fill up: the base folder's (or its nearest existing
    parent's) and the Docker engine's (images, volumes, the database)."""
    df = "df -P -B1 -- \"$1\" 2>/dev/null | awk -v key=\"$2\" -v at=\"$1\" 'NR==2 {print key \"=\" $2 \" \" $4 \" \" at}'"
    return [
        f"disk() {{ {df}; }}",
        f"at={q(layout.base)}; while [ ! -e \"$at\" ]; do at=$(dirname \"$at\"); done; disk \"$at\" disk_base",
        "root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || true)",
        'if [ -n "$root" ]; then disk "$root" disk_docker; fi',
    ]


def memory_lines() -> list[str]:
    """Total and available memory, in KiB, as the kernel counts them."""
    return ["awk '/^MemTotal:/ {print \"mem_total=\" $2} /^MemAvailable:/ {print \"mem_available=\" $2}' /proc/meminfo"]


def crontab_lines() -> list[str]:
    """The deploy user's crontab lines that Fikaso installed, and whether a cron daemon runs."""
    return [f"crontab -l 2>/dev/null | grep -F {q(CRON_MARKER_PREFIX)} | sed 's/^/line=/' || true",
            "if pgrep -x cron >/dev/null || pgrep -x crond >/dev/null; then echo daemon=yes; else echo daemon=no; fi"]
