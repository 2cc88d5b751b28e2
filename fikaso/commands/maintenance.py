"""Maintenance mode of a panel: `php artisan down` / `up` in its live release, on one VPS or in every
task on a swarm (where each node's storage holds its own flag).

A bypass secret (`maintenance.on --secret`) never appears on a command line: the script reads it from
stdin and adds it to the maintenance file Laravel wrote (storage/framework/down, JSON, whose "secret"
lets a visitor who opens /SECRET through, with a cookie, from Laravel 8 on).
"""
from __future__ import annotations

from ..layout import APP_ROOT, Layout
from ..shell import cmd
from .compose import exec_in, task_containers

ADD_SECRET = ('$f = "storage/framework/down"; $d = json_decode(file_get_contents($f), true); '
              '$d["secret"] = trim(fgets(STDIN)); file_put_contents($f, json_encode($d, JSON_PRETTY_PRINT));')
READ_SECRET = "IFS= read -r secret"   # the first line of stdin; printf (a builtin) hands it on


def switch_script(layout: Layout, panel: str, mode: str, secret: bool = False) -> str:
    """On one VPS: the panel's live release down (with the secret on stdin) or up."""
    artisan = exec_in(layout, f"{panel}_panel", "php", "artisan", mode, options=("-w", f"{APP_ROOT}/current"))
    if not secret:
        return artisan
    add = exec_in(layout, f"{panel}_panel", "php", "-r", ADD_SECRET, options=("-w", f"{APP_ROOT}/current"))
    return "\n".join([READ_SECRET, artisan, f"printf '%s\\n' \"$secret\" | ({add})"])


def every_task_script(panels: list[str], mode: str, secret: bool = False) -> str:
    """`php artisan down` (or `up`) in each of this node's tasks of the panels; a node running none of
    them has nothing to do."""
    lines = [READ_SECRET] if secret else []
    exec_ = cmd("docker", "exec", "-i", "-w", f"{APP_ROOT}/current") + ' "$c" '
    for panel in panels:
        body = [exec_ + cmd("php", "artisan", mode) + " >/dev/null"]
        if secret:
            body.append(f"printf '%s\\n' \"$secret\" | {exec_}" + cmd("php", "-r", ADD_SECRET))
        lines.append(f"for c in $({task_containers(panel + '_panel')}); do {'; '.join(body)}; done")
    return "\n".join(lines)


def bypass_note(domain: str, token: str) -> str:
    return (f"visitors get the maintenance page; open https://{domain}/{token} (http:// while the domain has no "
            "certificate) to pass, with a cookie, until maintenance.off")

