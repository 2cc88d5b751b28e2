"""One release of a site: what is sent, how it is installed, and how it goes live.

A release is uploaded into releases/<id>.partial and renamed when complete, so a killed upload
never leaves a folder that looks like a release. Files unchanged since the live release are not
sent: the server hard-links them from it (they are never written in place afterwards).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from .. import archive
from ..config import PANELS, PREVIEW_OFFSET, Site
from ..layout import APP_ROOT, RELEASE_FILE, SOURCE_HASH_FILE, Layout
from ..shell import cmd, q, wait_page_lines
from . import maintenance, php_image, swarm
from .compose import compose as compose_command, exec_in, task_container

MANIFEST_FILE = ".fikaso-manifest"
LINK_LIST_FILE = ".fikaso-link-list"
HEALTH_SECONDS = 15
SWITCH_CHECK_SECONDS = 10
# The activate script's exit code when the new release failed its health check and was switched back.
UNHEALTHY = 4


def new_release_id(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")


def manifest(root: Path) -> dict[str, str]:
    """Each file of the tree (as it would be shipped) with its content hash and mode."""
    out = {}
    for path in archive.entries(root):
        if path.is_file() and not path.is_symlink():
            name = path.relative_to(root).as_posix()
            out[name] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {archive.file_mode(path):o}"
    return out


def manifest_text(entries: Mapping[str, str]) -> str:
    return "".join(f"{value} {name}\n" for name, value in sorted(entries.items()))


def parse_manifest(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3:
            out[parts[2]] = f"{parts[0]} {parts[1]}"
    return out


@dataclass(frozen=True)
class Payload:
    archive: archive.Archive
    sent: int           # files sent in the tar
    linked: int         # files the server hard-links from the live release
    source_sha: str     # hash of the whole source tree, whatever was sent


def payload(source: Path, release_id: str, live_manifest: Mapping[str, str]) -> Payload:
    """The tar for a new release: changed files, plus the list of unchanged ones to hard-link."""
    files = manifest(source)
    unchanged = sorted(name for name, value in files.items() if live_manifest.get(name) == value)
    text = manifest_text(files)
    source_sha = hashlib.sha256(text.encode()).hexdigest()
    extra = {
        MANIFEST_FILE: text.encode(),
        RELEASE_FILE: f"{release_id}\n".encode(),
        SOURCE_HASH_FILE: f"{source_sha}\n".encode(),
    }
    if unchanged:
        extra[LINK_LIST_FILE] = b"\0".join(name.encode() for name in unchanged) + b"\0"
    tar = archive.tree(source, leave_out=frozenset(unchanged), extra=extra)
    return Payload(tar, len(files) - len(unchanged), len(unchanged), source_sha)


def upload_script(layout: Layout, site: str, release_id: str, live: str | None) -> str:
    """Unpack the payload from stdin into releases/<id>.partial, link the rest, then rename it."""
    releases = layout.releases(site)
    release = layout.release(site, release_id)
    partial = f"{release}.partial"
    lines = [
        # Left by an interrupted upload; this run holds the site's lock, so none is in progress.
        f"rm -rf {q(releases)}/*.partial",
        cmd("mkdir", "-p", partial),
        cmd("tar", "-x", "--no-same-owner", "-C", partial),
    ]
    if live:
        lines.append(f"if [ -s {q(partial + '/' + LINK_LIST_FILE)} ]; then "
                     f"(cd {q(layout.release(site, live))} && "
                     f"xargs -0 cp -l --parents -t {q(partial)} < {q(partial + '/' + LINK_LIST_FILE)}); fi")
    lines.append(cmd("rm", "-f", f"{partial}/{LINK_LIST_FILE}"))
    if site in PANELS:
        lines += [
            cmd("ln", "-sfn", "../../shared/.env", f"{partial}/.env"),
            cmd("rm", "-rf", f"{partial}/storage", f"{partial}/bootstrap/cache"),
            cmd("ln", "-sfn", "../../shared/storage", f"{partial}/storage"),
            cmd("mkdir", "-p", f"{partial}/bootstrap"),
            cmd("ln", "-sfn", f"{APP_ROOT}/shared/bootstrap-cache/{release_id}", f"{partial}/bootstrap/cache"),
        ]
    lines.append(cmd("mv", "-T", partial, release))
    return "\n".join(lines)


def send_script(layout: Layout, site: str, release_id: str) -> str:
    """The release as a tar on stdout (its links and installed dependencies included)."""
    return cmd("tar", "-C", layout.release(site, release_id), "-cf", "-", ".")


def receive_script(layout: Layout, site: str, release_id: str) -> str:
    """Unpack a release sent by send_script from another node into releases/<id>, complete or not at all."""
    release = layout.release(site, release_id)
    partial = f"{release}.partial"
    return "\n".join([cmd("rm", "-rf", partial), cmd("mkdir", "-p", partial),
                      cmd("tar", "-x", "--no-same-owner", "-C", partial), cmd("rm", "-rf", release),
                      cmd("mv", "-T", partial, release)])


def in_php(layout: Layout, panel: str, container: str | None, options: list[str], *command: str) -> str:
    """A command in the panel's PHP container: the service's, or `container` (a candidate) when given."""
    if container:
        return cmd("docker", "exec", *options, container, *command)
    return exec_in(layout, f"{panel}_panel", *command, options=tuple(options))


def artisan_script(layout: Layout, panel: str, *args: str) -> str:
    """`php artisan ARGS` in the panel's live release."""
    return exec_in(layout, f"{panel}_panel", "php", "artisan", *args, options=("-w", f"{APP_ROOT}/current"))


def restart_workers_script(layout: Layout, panel: str) -> str:
    """Each queue worker finishes the job in hand, then starts again in the live release
    (`artisan queue:restart`, read by the workers from the app's cache). If that fails, the workers are
    restarted by Docker, which also lets the job in hand finish. Prints workers=stale if both fail:
    the release is live either way, so the deploy goes on."""
    restart = compose_command(layout, "restart", f"{panel}_worker")
    return (f"if ! {{ ({artisan_script(layout, panel, 'queue:restart')}) >/dev/null 2>&1 || "
            f"({restart}) >/dev/null 2>&1; }}; then echo workers=stale; fi")


def install_script(layout: Layout, panel: str, release_id: str, uid: str, container: str | None = None,
                   migrate: bool = True) -> str:
    """Inside the panel's PHP container: shared folders, dependencies, migrations, caches.

    Migrations run here, before the switch: if one fails, the live release never changes. A
    release moving to another PHP image installs in the candidate container that runs it. Without
    `migrate` they wait for the panel to be in maintenance (migrate_in_maintenance_script).
    """
    own = in_php(layout, panel, container, ["-u", "0"], "chown", f"{uid}:{uid}", *SHARED_VOLUMES)
    run = in_php(layout, panel, container, ["-w", f"{APP_ROOT}/releases/{release_id}"], "sh", "-c",
                 install_steps(release_id, migrate=migrate))
    return f"{own}\n{run}"


def migrate_in_maintenance_script(layout: Layout, panel: str, release_id: str, container: str | None = None) -> str:
    """The release's migrations, in the PHP container it was installed in, once the panel is in maintenance."""
    return in_php(layout, panel, container, ["-w", f"{APP_ROOT}/releases/{release_id}"], "sh", "-c", MIGRATE)


SHARED_VOLUMES = (f"{APP_ROOT}/shared/storage", f"{APP_ROOT}/shared/bootstrap-cache")
MIGRATE = "php artisan migrate --force"


def compiled_views(release_id: str) -> str:
    """Where a release's Blade views are compiled: its own folder, beside its other caches.

    In the shared storage, `view:cache` (which begins with `view:clear`) would delete the live
    release's compiled views while it serves them: a visitor's page then fails with a 500.
    """
    return f"{APP_ROOT}/shared/bootstrap-cache/{release_id}/views"


def install_steps(release_id: str, migrate: bool) -> str:
    """What installs a release, in its folder: shared folders, dependencies, migrations, caches."""
    shared = f"{APP_ROOT}/shared"
    return " && ".join([
        # Read by config/view.php when config:cache bakes the configuration.
        "export " + cmd(f"VIEW_COMPILED_PATH={compiled_views(release_id)}"),
        cmd("mkdir", "-p", f"{shared}/storage/app/public", f"{shared}/storage/framework/cache/data",
            f"{shared}/storage/framework/sessions", f"{shared}/storage/framework/views",
            f"{shared}/storage/logs", compiled_views(release_id)),
        "composer install --no-dev --optimize-autoloader --no-interaction --no-progress",
        *([MIGRATE] if migrate else []),
        "php artisan config:cache", "php artisan route:cache", "php artisan view:cache",
        "php artisan storage:link",
    ])


def node_install_script(layout: Layout, panel: str, release_id: str, uid: str, image: str) -> str:
    """On a swarm node: install the release (all but migrations, which run once) in one-off containers
    of the panel's image, so that every node has its dependencies and caches before the switch."""
    folder = f"{APP_ROOT}/releases/{release_id}"
    return "\n".join([swarm.one_off(layout, panel, image, "0", APP_ROOT, "chown", f"{uid}:{uid}", *SHARED_VOLUMES),
                      swarm.one_off(layout, panel, image, uid, folder, "sh", "-c", install_steps(release_id, False))])


def migrate_script(layout: Layout, panel: str, release_id: str, uid: str, image: str) -> str:
    """On one swarm node: the release's migrations, once for the whole swarm."""
    return swarm.one_off(layout, panel, image, uid, f"{APP_ROOT}/releases/{release_id}", "sh", "-c", MIGRATE)


def switch_lines(layout: Layout, site: str, release_id: str) -> list[str]:
    """Point `current` at the release atomically: a new link renamed over the old one."""
    current = layout.current(site)
    return [
        cmd("ln", "-sfn", f"releases/{release_id}", f"{current}.next"),
        cmd("mv", "-T", f"{current}.next", current),
    ]


def switch_script(layout: Layout, site: str, release_id: str) -> str:
    return "\n".join(switch_lines(layout, site, release_id))


# What a check says when the health page answered 404: the app has no such route.
NO_HEALTH_ROUTE = "the health page answered 404 Not Found"


# The answer of a site check: any 2xx passes; when the third argument is `maintenance`, a 503
# (Laravel's maintenance page) passes too, saying so on stdout. Arguments: the Host header, the URL.
CHECK_ANSWER = r"""code=$(curl -s -L -o /dev/null -w '%{http_code}' -H "Host: $1" "$2" || true)
case $code in
  2??) ;;
  503) if [ "$3" = maintenance ]; then echo maintenance=yes; else echo "answered HTTP 503" >&2; exit 1; fi ;;
  000|'') echo "no response" >&2; exit 1 ;;
  *) echo "answered HTTP $code" >&2; exit 1 ;;
esac
"""


def check_site_script(layout: Layout, domain: str, path: str, maintenance: bool = False) -> str:
    """Ask the proxy, from inside its container, for a page as a browser asking for `domain` would;
    `maintenance`: a panel, whose maintenance page answers too (it prints maintenance=yes).

    Port 8080 routes like the public ports, minus TLS and the redirect to it (nginx/proxy.conf.j2).
    """
    return exec_in(layout, "nginx_proxy", "sh", "-c", CHECK_ANSWER, "check", domain, f"http://127.0.0.1:8080{path}",
                   "maintenance" if maintenance else "")


def live_probe(layout: Layout, site: Site) -> str:
    """The site's health page through the proxy, its answer's status lines on stderr (wait_page_lines)."""
    return exec_in(layout, "nginx_proxy", "wget", "-q", "-S", "-O", "/dev/null", "--header", f"Host: {site.domain}",
                   f"http://127.0.0.1:8080{site.health}")


def preview_probe(layout: Layout, site: Site) -> str:
    """The candidate release's health page, through the site's own nginx and PHP-FPM."""
    return exec_in(layout, f"{site.name}_nginx", "wget", "-q", "-S", "-O", "/dev/null",
                   f"http://127.0.0.1:{site.port + PREVIEW_OFFSET}{site.health}")


# A page check that passes Laravel's maintenance mode, run with `sh` in an nginx container (the official
# nginx images, alpine ones included, have curl). Arguments: the base URL, the path, then curl options
# (a Host header); stdin: the bypass secret, or an empty line. The secret opens /SECRET, whose answer
# sets Laravel's bypass cookie; the page is then asked with that cookie. The secret and the cookie reach
# curl in its config on stdin, never on a command line. Prints the final answer's status as `wget -S`
# does, for wait_page_lines.
BYPASS_PROBE = r"""IFS= read -r secret || true
base=$1 path=$2
shift 2
cookie=
if [ -n "$secret" ]; then
  cookie=$(printf 'url = "%s/%s"\n' "$base" "$secret" | curl -K - -s -o /dev/null -D - "$@" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: *\(laravel_maintenance=[^;]*\).*/\1/p' | head -n 1)
fi
if [ -n "$cookie" ]; then printf 'header = "Cookie: %s"\n' "$cookie"; fi |
  curl -K - -s -S -L -o /dev/null -w '  HTTP/1.1 %{http_code}\n' "$@" "$base$path"
"""


def _bypass_probe(layout: Layout, service: str, base: str, path: str, *options: str) -> str:
    """BYPASS_PROBE in a service's container, given the secret in $bypass (bypass_secret_line)."""
    return "printf '%s\\n' \"$bypass\" | (" + exec_in(layout, service, "sh", "-c", BYPASS_PROBE, "probe", base, path,
                                                    *options) + ")"


def live_bypass_probe(layout: Layout, site: Site) -> str:
    """live_probe, passing maintenance mode."""
    return _bypass_probe(layout, "nginx_proxy", "http://127.0.0.1:8080", site.health, "-H", f"Host: {site.domain}")


def preview_bypass_probe(layout: Layout, site: Site) -> str:
    """preview_probe, passing maintenance mode."""
    return _bypass_probe(layout, f"{site.name}_nginx", f"http://127.0.0.1:{site.port + PREVIEW_OFFSET}", site.health)


def activate_script(layout: Layout, site: Site, release_id: str, previous: str | None,
                    image: str | None = None, in_maintenance: bool = False) -> str:
    """Check the release before visitors see it, switch, check again through the proxy.

    The release is first served as `next` on the site's inside-only preview port; only when it
    answers there does `current` move. If the site then fails through the proxy, `current` moves
    back at once. Either failure exits UNHEALTHY with the previous release live.

    With `image`, the panel also moves to that PHP image: its candidate container (started by
    php_image.start_candidate_script) serves the preview, then the live site; once the site
    answers, the panel's service is recreated on the image and takes over (fikaso/php_image.py).
    On a failure the service, still on the old image, serves again and the candidate goes.

    `in_maintenance`: the panel is in maintenance mode (a deploy that migrates in it): both checks
    pass it with the bypass secret of its down file, read on the server, and visitors keep getting
    the maintenance page until the deploy's `artisan up`.
    """
    folder = layout.site(site.name)
    preview, live = preview_probe(layout, site), live_probe(layout, site)
    if in_maintenance:
        preview, live = preview_bypass_probe(layout, site), live_bypass_probe(layout, site)
    back = switch_back_lines(layout, site.name, previous)
    candidate = php_image.candidate(site.name) if image else None
    undo_image = [*php_image.route_lines(layout, site.name, None, None),
                  *php_image.remove_candidate_lines(site.name)] if image else []

    return "\n".join([
        *([maintenance.bypass_secret_line(layout, site.name)] if in_maintenance else []),
        *(php_image.route_lines(layout, site.name, None, candidate) if image else []),
        cmd("ln", "-sfn", f"releases/{release_id}", f"{folder}/next.tmp"),
        cmd("mv", "-T", f"{folder}/next.tmp", f"{folder}/next"),
        *wait_page_lines(preview, HEALTH_SECONDS),
        cmd("rm", "-f", f"{folder}/next"),
        *failed(undo_image, "failed before the switch"),
        *(php_image.route_lines(layout, site.name, candidate, None) if image else []),
        *switch_lines(layout, site.name, release_id),
        *wait_page_lines(live, SWITCH_CHECK_SECONDS),
        *failed([*back, *undo_image], "failed after the switch: switched back"),
        *(php_image.settle_lines(layout, site.name, q(image)) if image else []),
    ])


def failed(undo: list[str], why: str) -> list[str]:
    """Unless $healthy is yes: undo, say why, exit UNHEALTHY."""
    return ["if [ \"$healthy\" != yes ]; then", *(f"  {line}" for line in undo),
            f"  if [ \"$healthy\" = missing ]; then echo {q(NO_HEALTH_ROUTE)} >&2; fi",
            f"  echo {q(why)} >&2", f"  exit {UNHEALTHY}", "fi"]


def switch_back_lines(layout: Layout, site: str, previous: str | None) -> list[str]:
    return switch_lines(layout, site, previous) if previous else [cmd("rm", "-f", layout.current(site))]


def node_activate_script(layout: Layout, site: Site, release_id: str, previous: str | None) -> str:
    """On each swarm node, as activate_script on one VPS: the preview through this node's nginx of the
    site (if it runs one), the switch, the check through this node's proxy (if it runs one); a failure
    switches this node back and exits UNHEALTHY (the deploy then switches every node back).

    Every node has the release before any switches, and nginx passes PHP-FPM the release's real path:
    while nodes switch one after another, each request is served by one release, whichever nodes
    its nginx and PHP-FPM run on."""
    folder = layout.site(site.name)
    missing = (f"release {release_id} of {site.name} is not on this node: run `fab setup`, which copies every "
               "release to nodes that lack one, then try again")

    def only_here(service: str, probe: str, seconds: int) -> list[str]:
        return [f"if [ -n \"$({task_container(service)})\" ]; then",
                *(f"  {line}" for line in wait_page_lines(probe, seconds)), "else healthy=yes; fi"]
    return "\n".join([
        f"if [ ! -d {q(layout.release(site.name, release_id))} ]; then echo {q(missing)} >&2; exit 1; fi",
        cmd("ln", "-sfn", f"releases/{release_id}", f"{folder}/next.tmp"),
        cmd("mv", "-T", f"{folder}/next.tmp", f"{folder}/next"),
        *only_here(f"{site.name}_nginx", preview_probe(layout, site), HEALTH_SECONDS),
        cmd("rm", "-f", f"{folder}/next"),
        *failed([], "failed before the switch"),
        *switch_lines(layout, site.name, release_id),
        *only_here("nginx_proxy", live_probe(layout, site), SWITCH_CHECK_SECONDS),
        *failed(switch_back_lines(layout, site.name, previous), "failed after the switch: switched back"),
    ])


def prune_candidates(releases: list[str], keep: int, protect: set[str]) -> list[str]:
    """Releases beyond the newest `keep`, never one in `protect` (the live and the previous)."""
    ordered = sorted(r for r in releases if not r.endswith(".partial"))
    return [r for r in ordered[:-keep] if r not in protect] if len(ordered) > keep else []


def prune_script(layout: Layout, site: str, doomed: list[str], image: str = "") -> str:
    """Remove releases and their bootstrap caches (on a swarm node, through a one-off container of
    `image`, as this node may run no task of the panel)."""
    if not doomed:
        return ""
    lines = [cmd("rm", "-rf", *(layout.release(site, r) for r in doomed))]
    if site in PANELS and layout.swarm:
        lines.append(swarm.one_off(layout, site, image, "0", APP_ROOT, "rm", "-rf",
                                   *(f"{APP_ROOT}/shared/bootstrap-cache/{r}" for r in doomed)))
    elif site in PANELS:
        lines.append(exec_in(layout, f"{site}_panel", "rm", "-rf",
                             *(f"{APP_ROOT}/shared/bootstrap-cache/{r}" for r in doomed)))
    return "\n".join(lines)
