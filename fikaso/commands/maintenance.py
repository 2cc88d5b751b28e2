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


# Laravel's maintenance flag, as every container of the panel mounts its shared storage.
DOWN_FILE = f"{APP_ROOT}/shared/storage/framework/down"
# A deploy's own bypass secret, made on the server where the down file has none: a secret that
# `maintenance.on --secret` gave stays, so its bypass URL keeps working through the deploy. The
# file also notes a maintenance the deploy began itself (MARK, "fikaso_deploy": true), so that the
# next deploy knows one that a failed deploy left from one a person asked for (`artisan up` deletes
# the file, mark and all). Laravel reads only its own keys from the file.
MARK = "fikaso_deploy"
_ENSURE_SECRET = (f'$f = "{DOWN_FILE}"; $d = json_decode(file_get_contents($f), true); $n = $d; '
                  'if (empty($d["secret"])) { $d["secret"] = bin2hex(random_bytes(16)); } %s'
                  'if ($d !== $n) { file_put_contents($f, json_encode($d, JSON_PRETTY_PRINT)); }')
ENSURE_SECRET = _ENSURE_SECRET % ""
ENSURE_SECRET_AND_MARK = _ENSURE_SECRET % f'$d["{MARK}"] = true; '
# The bypass secret on stdout ("" when the panel is not in maintenance), for a check to read into a variable.
PRINT_SECRET = (f'$d = json_decode((string) @file_get_contents("{DOWN_FILE}"), true); '
                'echo is_array($d) && is_string($d["secret"] ?? null) ? $d["secret"] : "";')


def deploy_down_script(layout: Layout, panel: str, mark: bool) -> str:
    """For a deploy that migrates in maintenance: the live release down, with a bypass secret that
    never leaves the server (the deploy's checks read it from the down file, see bypass_secret_line).
    A panel already in maintenance stays so, its secret too; `mark`: the deploy ends this maintenance."""
    return "\n".join([
        switch_script(layout, panel, "down"),
        exec_in(layout, f"{panel}_panel", "php", "-r", ENSURE_SECRET_AND_MARK if mark else ENSURE_SECRET)])


def bypass_secret_line(layout: Layout, panel: str) -> str:
    """Sets $bypass to the panel's maintenance bypass secret ("" when it is not in maintenance)."""
    return f"bypass=$({exec_in(layout, f'{panel}_panel', 'php', '-r', PRINT_SECRET)} 2>/dev/null) || bypass=''"


def is_down_script(layout: Layout, panel: str) -> str:
    """Prints down=yes when the panel is in maintenance mode (nothing when it is not, or not running),
    and deploy=yes when a deploy began that maintenance (MARK)."""
    check = (f'if (is_file("{DOWN_FILE}")) {{ echo "down=yes\\n"; '
             f'$d = json_decode((string) file_get_contents("{DOWN_FILE}"), true); '
             f'if (!empty($d["{MARK}"])) {{ echo "deploy=yes\\n"; }} }}')
    return f"{exec_in(layout, f'{panel}_panel', 'php', '-r', check)} 2>/dev/null || true"


def bypass_note(domain: str, token: str) -> str:
    return (f"visitors get the maintenance page; open https://{domain}/{token} (http:// while the domain has no "
            "certificate) to pass, with a cookie, until maintenance.off")

