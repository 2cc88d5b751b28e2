"""Each panel's PHP-FPM pool size: pm.max_children, sized from the VPS's memory unless fabric.yaml
sets panels.<name>.fpm_workers.

The PHP image's pool config includes <panel folder>/php-fpm-pool.conf (dockerfiles/php/php-fpm.d),
so the size changes without a new image or container: setup writes the file and sends the FPM master
USR2, a graceful reload that lets requests in flight finish (process_control_timeout).
"""
from __future__ import annotations

from ..config import MAX_FPM_WORKERS, Settings
from ..layout import Layout
from ..shell import q, write_lines
from .compose import background, compose, exec_in

# A file, not a folder: the image includes it by a glob in the panel's folder, which always exists,
# so that a VPS without the file runs the image's pool rather than failing to start PHP-FPM.
POOL_FILE = "php-fpm-pool.conf"
# What the rest of the VPS keeps: the OS and Docker, MySQL (its 128 MB buffer pool, connections and
# caches) and five nginx, in MB; then each queue worker and scheduler, and each FPM worker at its
# usual peak. php.ini's memory_limit (256M) caps a single request; most Laravel requests stay far below.
RESERVED_MB = 1024
BACKGROUND_MB = 64
WORKER_MB = 64
MIN_WORKERS = 2
# Beyond this, more workers on a small VPS only queue for the same cores and MySQL connections
# (the three panels at 40 each stay under MySQL's default max_connections of 151).
MAX_SIZED_WORKERS = 40


def sized_workers(memory_mb: int, panels: int, background: int) -> int:
    """pm.max_children for each of `panels` panels on a VPS with `memory_mb` of memory, running
    `background` queue workers and schedulers."""
    spare = memory_mb - RESERVED_MB - background * BACKGROUND_MB
    return max(MIN_WORKERS, min(MAX_SIZED_WORKERS, spare // WORKER_MB // max(panels, 1)))


def pool_sizes(settings: Settings, memory_mb: int) -> dict[str, int]:
    """Each panel's pm.max_children: its fpm_workers setting, or its share of the VPS's memory."""
    sized = sized_workers(memory_mb, len(settings.panels), sum(background(settings).values()))
    return {site.name: site.fpm_workers or sized for site in settings.panels}


def pool_text(workers: int) -> str:
    if not 1 <= workers <= MAX_FPM_WORKERS:
        raise ValueError(f"pm.max_children {workers} is out of range")
    return "\n".join([
        "; Written by `fab setup`: fikaso.panels.<name>.fpm_workers, or sized from the VPS's memory.",
        "[www]",
        f"pm.max_children = {workers}",
        f"pm.start_servers = {min(3, workers)}",
        f"pm.min_spare_servers = {min(2, workers)}",
        f"pm.max_spare_servers = {min(5, workers)}",
        "",
    ])


def pool_file(layout: Layout, panel: str):
    return layout.site(panel) / POOL_FILE


def read_command(layout: Layout, panel: str) -> str:
    """Prints pool_<panel>=N, the pool size the file on the server gives (empty without one)."""
    return (f"echo \"pool_{panel}=$(sed -n 's/^pm.max_children = //p' {q(pool_file(layout, panel))} "
            "2>/dev/null || true)\"")


def resize_script(layout: Layout, panel: str, workers: int) -> str:
    """Write the pool file; if the panel's PHP-FPM runs, reload it gracefully (USR2 re-executes the
    master, which reads its config again and lets in-flight requests finish). One that does not run
    reads the file when it starts."""
    path = pool_file(layout, panel)
    service = f"{panel}_panel"
    running = compose(layout, "ps", "--quiet", "--status", "running", service)
    return "\n".join([
        *write_lines(path, pool_text(workers)),
        f"if [ -n \"$({running})\" ]; then {exec_in(layout, service, 'sh', '-c', 'kill -USR2 1')}; fi",
    ])
