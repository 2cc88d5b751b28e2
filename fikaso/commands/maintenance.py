"""Maintenance mode of the panels on a swarm, where each node's storage holds its own flag."""
from __future__ import annotations

from ..layout import APP_ROOT
from ..shell import cmd
from .compose import task_containers


def every_task_script(panels: list[str], mode: str) -> str:
    """`php artisan down` (or `up`) in each of this node's tasks of the panels; a node running none of
    them has nothing to do."""
    lines = []
    for panel in panels:
        lines.append(f"for c in $({task_containers(panel + '_panel')}); do "
                     + cmd("docker", "exec", "-w", f"{APP_ROOT}/current") + ' "$c" '
                     + cmd("php", "artisan", mode) + " >/dev/null; done")
    return "\n".join(lines)
