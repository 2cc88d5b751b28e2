"""The Compose stack on the VPS: its services, and the compose commands every step uses."""
from __future__ import annotations

from ..config import PANELS
from ..errors import FikasoError
from ..layout import Layout
from ..shell import cmd, q

SITES = (*PANELS, "landing")
SERVICES = ("mysql", *(f"{p}_panel" for p in PANELS), *(f"{p}_nginx" for p in PANELS),
            "landing_nginx", "nginx_proxy")
NGINX_SERVICES = tuple(name for name in SERVICES if name.endswith("_nginx") or name == "nginx_proxy")
WAIT_SECONDS = 300
NETWORK = "fikaso_network"   # the stack's bridge network (FIKASO_NETWORK in the bundle's .env)


def compose(layout: Layout, *args: object) -> str:
    """A `docker compose` command run in the uploaded stack folder (it holds compose.yaml and .env)."""
    return f"cd {q(layout.stack)} && " + cmd("docker", "compose", *args)


def start_script(layout: Layout, *services: str) -> str:
    """Start (or recreate where their settings changed) services, and wait until they are healthy."""
    return compose(layout, "up", "--detach", "--wait", "--wait-timeout", WAIT_SECONDS, "--remove-orphans",
                   *services)


def reload_nginx(layout: Layout, service: str) -> str:
    """The one nginx reload: graceful, and only after the configuration passes `nginx -t`."""
    return compose(layout, "exec", "-T", service, "sh", "-c", "nginx -t -q && nginx -s reload")


def reload_every_nginx_script(layout: Layout) -> str:
    return "\n".join(reload_nginx(layout, name) for name in NGINX_SERVICES)


def logs_script(layout: Layout, service: str, tail: int, follow: bool) -> str:
    if service not in SERVICES:
        raise FikasoError(f"There is no service named {service!r}",
                          f"Use one of: {', '.join(SERVICES)}")
    if tail < 0:
        raise FikasoError(f"--tail must be 0 or more, not {tail}", "Pass a number of lines such as --tail=200")
    args = ["logs", "--no-color", "--timestamps", "--tail", tail]
    if follow:
        args.append("--follow")
    return compose(layout, *args, service)
