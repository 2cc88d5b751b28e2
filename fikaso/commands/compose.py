"""The Compose stack on the VPS: its services, and the compose commands every step uses."""
from __future__ import annotations

from ..config import PANELS, Settings
from ..errors import FikasoError
from ..layout import Layout
from ..shell import cmd, q
from ..swarm_stack import ACME

SITES = (*PANELS, "landing")
SERVICES = ("mysql", *(f"{p}_panel" for p in PANELS), *(f"{p}_nginx" for p in PANELS),
            "landing_nginx", "nginx_proxy")
# Each panel's queue workers and scheduler: as many as fabric.yaml asks, none by default; one VPS only.
BACKGROUND_SERVICES = tuple(f"{p}_{kind}" for p in PANELS for kind in ("worker", "scheduler"))
NGINX_SERVICES = tuple(name for name in SERVICES if name.endswith("_nginx") or name == "nginx_proxy")
WAIT_SECONDS = 300
NETWORK = "fikaso_network"   # the stack's network (FIKASO_NETWORK in the bundle's .env)
STACK = "fikaso"              # Compose's project name, and the Swarm stack's name


def background(settings: Settings) -> dict[str, int]:
    """The queue workers and schedulers fabric.yaml asks for: service -> containers, those asked only."""
    wanted = {}
    for site in settings.panels:
        if site.workers:
            wanted[f"{site.name}_worker"] = site.workers
        if site.scheduler:
            wanted[f"{site.name}_scheduler"] = 1
    return wanted


def compose(layout: Layout, *args: object) -> str:
    """A `docker compose` command run in the uploaded stack folder (it holds compose.yaml and .env)."""
    return f"cd {q(layout.stack)} && " + cmd("docker", "compose", *args)


def task_containers(service: str) -> str:
    """On a swarm node: a command printing the ids of this node's running tasks of a service."""
    return f"docker ps --quiet --filter label=com.docker.swarm.service.name={STACK}_{service} --filter status=running"


def task_container(service: str) -> str:
    """On a swarm node: a command printing the id of one of this node's running tasks of a service."""
    return f"{task_containers(service)} | head -n 1"


def exec_in(layout: Layout, service: str, *command: object, options: tuple = ()) -> str:
    """A command run in a service's container: Compose's, or on a swarm this node's task of it."""
    if not layout.swarm:
        return compose(layout, "exec", "-T", *options, service, *command)
    return f"docker exec -i {cmd(*options) + ' ' if options else ''}\"$({task_container(service)})\" " + cmd(*command)


def start_script(layout: Layout, *services: str) -> str:
    """Start (or recreate where their settings changed) services, and wait until they are healthy."""
    return compose(layout, "up", "--detach", "--wait", "--wait-timeout", WAIT_SECONDS, "--remove-orphans",
                   *services)


def reload_nginx(layout: Layout, service: str) -> str:
    """The one nginx reload: graceful, and only after the configuration passes `nginx -t`."""
    return exec_in(layout, service, "sh", "-c", "nginx -t -q && nginx -s reload")


def reload_every_nginx_script(layout: Layout) -> str:
    return "\n".join(reload_nginx(layout, name) for name in NGINX_SERVICES)


def logs_script(layout: Layout, service: str, tail: int, follow: bool) -> str:
    """A service's logs: Compose's, or on a swarm (on a manager) every task's, each line naming its task."""
    known = (*SERVICES, ACME) if layout.swarm else (*SERVICES, *BACKGROUND_SERVICES)
    if service not in known:
        raise FikasoError(f"There is no service named {service!r}", f"Use one of: {', '.join(known)}")
    if tail < 0:
        raise FikasoError(f"--tail must be 0 or more, not {tail}", "Pass a number of lines such as --tail=200")
    args = ["--timestamps", "--tail", tail, *(["--follow"] if follow else [])]
    if layout.swarm:
        return cmd("docker", "service", "logs", "--no-trunc", *args, f"{STACK}_{service}")
    return compose(layout, "logs", "--no-color", *args, service)
