"""The PHP image a panel runs: its tag, its build on the server, and moving a panel to another one.

An image's tag is the hash of what it is built from (dockerfiles/php, the base images, the app
uid), so it is built only when one of these changed. Each release records the image it ran, and
each panel's PHP container runs the image of its live release: `stack/php-image.<panel>.yaml`, a
Compose file read after compose.yaml (COMPOSE_FILE in stack/.env), pins it. Setup writes a pin
only where there is none; deploys and rollbacks rewrite their panel's.

Moving a panel to another image never leaves visitors without a PHP-FPM to answer them:
1. a candidate container (the panel's service, run under another name) starts on the new image
   and installs the release;
2. the panel's nginx sends the preview, then the live site, to the candidate (a one-line file
   in the panel's folder and a graceful reload), and `current` switches;
3. the service is recreated on the new image, nginx is pointed back at it, and the candidate
   stops gracefully, finishing its requests.
"""
from __future__ import annotations

import hashlib

from .. import archive
from ..config import PANEL_PORTS, PANELS, PREVIEW_OFFSET, PROJECT_ROOT, Settings
from ..layout import Layout
from ..shell import cmd, q, wait_healthy_lines, write_lines
from .compose import compose, exec_in, reload_nginx

BUILD_FOLDER = PROJECT_ROOT / "dockerfiles" / "php"
FPM_PORT = 9000
STOP_SECONDS = 40  # as stop_grace_period in compose.yaml: longer than FPM's process_control_timeout
ROUTE_FOLDER = "php-fpm"  # in the panel's folder; its *.conf are included by the panel's nginx
ROUTE_PATH = "/fikaso/php-fpm"  # answered by the panel's inside-only preview server


def build_hash(settings: Settings, uid: str) -> str:
    """What the PHP image depends on: its build folder, the base images and the app uid."""
    folder = archive.tree(BUILD_FOLDER, excluded_prefixes=())
    parts = [folder.sha256, settings.images["php_base"], settings.images["composer"], uid]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def tag(settings: Settings, uid: str) -> str:
    return f"{settings.images['php']}:{build_hash(settings, uid)[:12]}"


def build_context() -> archive.Archive:
    """The build folder as a tar: `docker build -` reads it on stdin (its .dockerignore applies)."""
    return archive.tree(BUILD_FOLDER, excluded_prefixes=())


def build_script(settings: Settings, image: str, uid: str) -> str:
    """Build `image` from the build context on stdin, unless the server has it already."""
    build = cmd("docker", "build", "--tag", image,
                "--build-arg", f"PHP_BASE_IMAGE={settings.images['php_base']}",
                "--build-arg", f"COMPOSER_IMAGE={settings.images['composer']}",
                "--build-arg", f"APP_UID={uid}", "-")
    return "\n".join([
        f"if docker image inspect {q(image)} >/dev/null 2>&1; then",
        "  cat >/dev/null",
        "  echo image=present",
        "else",
        f"  {build}",
        "  echo image=built",
        "fi",
    ])


def compose_files() -> str:
    """COMPOSE_FILE for stack/.env: compose.yaml, then each panel's pin."""
    return ":".join(["compose.yaml", *(pin_name(p) for p in PANELS)])


def pin_name(panel: str) -> str:
    return f"php-image.{panel}.yaml"


def panel_services(panel: str) -> tuple[str, ...]:
    """The services that run the panel's PHP image: PHP-FPM, queue workers, scheduler."""
    return (f"{panel}_panel", f"{panel}_worker", f"{panel}_scheduler")


def pin_text(panel: str, image: str) -> str:
    services = "".join(f"  {service}:\n    image: {image}\n" for service in panel_services(panel))
    return (f"# Written by Fikaso (fikaso/php_image.py): the PHP image that {panel}'s services run.\n"
            f"services:\n{services}")


def pin_lines(layout: Layout, panel: str, image_word: str) -> list[str]:
    """Pin the panel to an image given as a shell word: a quoted name, or "$variable"."""
    path = layout.stack / pin_name(panel)
    words = " ".join([image_word] * len(panel_services(panel)))    # one for each %s
    return [f"printf {q(pin_text(panel, '%s'))} {words} > {q(str(path) + '.tmp')}",
            cmd("mv", "-f", f"{path}.tmp", path)]


def missing_pins_script(layout: Layout, image: str) -> str:
    """Pin each panel that has no pin to the image its container runs, or to `image` if none runs.

    Pins that exist stay: a panel moves to another image with a deploy or a rollback. A pin written
    before panels had queue workers names only the PHP-FPM service; it is written again, for the
    image that service runs.
    """
    lines = []
    for panel in PANELS:
        pin = q(layout.stack / pin_name(panel))
        lines += [f"if [ ! -f {pin} ] || ! grep -q {q(f'  {panel}_worker:')} {pin}; then",
                  f"  image=$({live_image(panel)} || echo {q(image)})",
                  *(f"  {line}" for line in pin_lines(layout, panel, '"$image"')), "fi"]
    return "\n".join(lines)


def candidate(panel: str) -> str:
    """The container name of a panel's candidate PHP-FPM."""
    return f"fikaso_{panel}_panel_next"


def live_image(panel: str, swarm: bool = False) -> str:
    """A command printing the image the panel's PHP container runs (on a swarm: its service's, read on a
    manager); it fails if there is none.

    (docker inspect prints an empty line for a container that does not exist.)"""
    if swarm:
        return (f"docker service inspect --format '{{{{.Spec.TaskTemplate.ContainerSpec.Image}}}}' "
                f"fikaso_{panel}_panel 2>/dev/null | sed 's/@sha256:.*//' | grep .")
    return f"docker inspect --format '{{{{.Config.Image}}}}' fikaso_{panel}_panel 2>/dev/null | grep ."


def present_script(panel: str, image: str) -> str:
    """Fail, saying what to do, unless this server has the image."""
    return "\n".join([f"if ! docker image inspect {q(image)} >/dev/null 2>&1; then",
                      f"  echo {q(missing_image_message(panel, image))} >&2; exit 1",
                      "fi"])


def service_update_script(panel: str, image: str) -> str:
    """On a swarm manager: move the panel's replicas to `image`, one at a time, each new one started and
    healthy before an old one stops (the service's update_config); Swarm rolls back if one fails."""
    return cmd("docker", "service", "update", "--detach=false", "--image", image, f"fikaso_{panel}_panel")


def remove_candidate_lines(panel: str) -> list[str]:
    """Stop the candidate gracefully (its requests finish) and remove it; nothing if there is none."""
    name = candidate(panel)
    return [f"if docker inspect {q(name)} >/dev/null 2>&1; then "
            f"docker stop --time {STOP_SECONDS} {q(name)} >/dev/null; docker rm -f {q(name)} >/dev/null; fi"]


def wait_lines(probe: str, seconds: int, failure: str) -> list[str]:
    """Wait until `probe` succeeds, for at most `seconds`; then exit 1 saying `failure`."""
    return [*wait_healthy_lines(probe, seconds),
            f"if [ \"$healthy\" != yes ]; then echo {q(failure)} >&2; exit 1; fi"]


def missing_image_message(panel: str, image: str) -> str:
    return (f"The PHP image {image} is not on the server any more (removed with `docker image prune -a`?). "
            f"Roll back to a release whose image is there (`fab releases --panel={panel}` shows each release's "
            f"image and commit), or deploy the project as it was at that release's commit, which builds the image again.")


def start_candidate_script(layout: Layout, panel: str, image: str, seconds: int = 120) -> str:
    """Start the panel's service on `image` as the candidate container, and wait until it is healthy.

    A candidate left by an interrupted run is replaced. The candidate's own Compose files (compose.yaml and
    a pin to `image`) are given in the environment, which Compose reads before stack/.env.
    """
    name = candidate(panel)
    pin = layout.stack / f"php-image.{panel}.candidate.yaml"
    health = f"[ \"$(docker inspect --format '{{{{.State.Health.Status}}}}' {q(name)} 2>/dev/null)\" = healthy ]"
    return "\n".join([
        present_script(panel, image),
        *remove_candidate_lines(panel),
        *write_lines(pin, pin_text(panel, image)),
        f"cd {q(layout.stack)} && COMPOSE_FILE={q('compose.yaml:' + pin.name)} "
        + cmd("docker", "compose", "run", "--detach", "--no-deps", "--name", name, f"{panel}_panel") + " >/dev/null",
        # `compose run` ignores the service's restart policy; the live site may be on the candidate
        # when the host reboots.
        cmd("docker", "update", "--restart", "unless-stopped", name) + " >/dev/null",
        *wait_lines(health, seconds, f"the candidate PHP container {name} on {image} did not become healthy "
                                     f"(docker logs {name})"),
    ])


def route_text(live: str, preview: str) -> str:
    return (f"set $php_fpm_live {live}:{FPM_PORT};\n"
            f"set $php_fpm_next {preview}:{FPM_PORT};\n")


def route_lines(layout: Layout, panel: str, live: str | None, preview: str | None, seconds: int = 30) -> list[str]:
    """Send the panel's live site and preview to these PHP containers (None: the panel's service).

    nginx reloads gracefully; the lines return once new connections are served with the new route
    and the workers of the old configuration have finished their requests and exited. Until they
    have, one of them may still take a connection and send it along the old route, to a container
    that the caller is about to stop.
    """
    service = f"{panel}_panel"
    path = route_file(layout, panel)
    live, preview = live or service, preview or service
    write = [cmd("rm", "-f", path)] if (live, preview) == (service, service) else \
        [cmd("mkdir", "-p", path.parent), *write_lines(path, route_text(live, preview))]
    nginx = f"{panel}_nginx"
    expected = f"{live}:{FPM_PORT} {preview}:{FPM_PORT}"
    port = PANEL_PORTS[panel] + PREVIEW_OFFSET
    probe = (f"[ \"$({compose(layout, 'exec', '-T', nginx, 'wget', '-q', '-O', '-', f'http://127.0.0.1:{port}{ROUTE_PATH}')}"
             f" 2>/dev/null)\" = {q(expected)} ]")
    return [
        *write,
        reload_nginx(layout, nginx) + " 2>/dev/null",
        *wait_lines(probe, seconds, f"{nginx} did not take the new PHP-FPM route ({expected})"),
        # nginx renames a worker of an old configuration "nginx: worker process is shutting down".
        *wait_lines(exec_in(layout, nginx, "sh", "-c", "! grep -qs '[s]hutting down' /proc/[0-9]*/cmdline"),
                    seconds, f"{nginx}'s workers of the old route did not finish within {seconds} s"),
    ]


def route_file(layout: Layout, panel: str):
    return layout.site(panel) / ROUTE_FOLDER / "route.conf"


def settle_lines(layout: Layout, panel: str, image_word: str, seconds: int = 120) -> list[str]:
    """With the candidate serving: recreate the panel's service on the image (a shell word), route back
    to it, stop the candidate."""
    return [
        *pin_lines(layout, panel, image_word),
        compose(layout, "up", "--detach", "--no-deps", "--wait", "--wait-timeout", seconds, *panel_services(panel)),
        *route_lines(layout, panel, None, None),
        *remove_candidate_lines(panel),
        cmd("rm", "-f", layout.stack / f"php-image.{panel}.candidate.yaml"),
    ]


def recover_script(layout: Layout, panel: str) -> str:
    """Finish what an interrupted move to another image left, if anything (its route file tells).

    If the live site is on the candidate, complete the move to its image; otherwise route back to
    the service and remove the candidate. Prints recovered=yes when there was something to finish.
    """
    name = candidate(panel)

    def indent(lines: list[str], depth: int = 1) -> list[str]:
        return [f"{'  ' * depth}{line}" for line in lines]

    return "\n".join([
        f"if [ -f {q(route_file(layout, panel))} ]; then",
        "  echo recovered=yes",
        f"  if grep -q {q('php_fpm_live ' + name + ':')} {q(route_file(layout, panel))} 2>/dev/null && "
        f"docker inspect {q(name)} >/dev/null 2>&1; then",
        f"    image=$(docker inspect --format '{{{{.Config.Image}}}}' {q(name)})",
        *indent(settle_lines(layout, panel, '"$image"'), 2),
        "  else",
        *indent(route_lines(layout, panel, None, None), 2),
        *indent(remove_candidate_lines(panel), 2),
        "  fi",
        "fi",
    ])
