"""The Swarm form of stack/compose.yaml, for `docker stack deploy` on several VPSs.

Derived from the same file, so that the two never drift: `docker stack deploy` reads the older v3
format, which reads no .env, knows no start order and ignores `container_name` and `restart`, and
each service gains a `deploy:` section saying where it runs and how it is updated:

- MySQL: one task, on the node labelled fikaso.database (its volume lives there), stopped before
  its replacement starts (two servers must never share a data folder);
- each panel's PHP-FPM: `replicas` tasks spread over the web nodes;
- each site's nginx: one task on every web node (`global`);
- the proxy: one task on every edge node, with ports 80 and 443 published on the node itself
  (host mode), stopped before its replacement starts (they could not both hold the ports);
- every update is health-checked, one task at a time, the new task started first where it can be,
  and undone by Swarm if the new one fails (`failure_action: rollback`);
- one service more, `acme`: certbot runs on the node labelled fikaso.certificates (the primary) and
  writes its challenges there; this nginx serves them to every edge node's proxy, so that a challenge
  is answered whichever node the ACME server reaches.

Services are reached by DNS round robin (`endpoint_mode: dnsrr`), not a virtual IP: the nginx
configs already resolve names per request (resolver 127.0.0.11), so each request goes to a task that
is running now. The nginx services keep short TCP keepalive times, so that a request waiting on a
node that died is retried on another within seconds. Relative paths become absolute: the bundle sits at the same path on every node.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Mapping

import yaml

from .config import PROJECT_ROOT

STACK = "fikaso"              # the stack's name: its services are fikaso_<service>
ACME = "acme"                 # the service that serves the primary's certificate challenges
COMPOSE_FILE = PROJECT_ROOT / "stack" / "compose.yaml"
FILE_NAME = "swarm.yaml"
BACKGROUND_SUFFIXES = ("_worker", "_scheduler")
DROPPED_KEYS = ("container_name", "depends_on", "restart", "ports")
ROLE_LABEL = "fikaso.{role}"
# A node that dies answers nothing, so a connection to it only ends when TCP notices. nginx sets
# SO_KEEPALIVE on its upstream connections (proxy/fastcgi_socket_keepalive); with these, a request
# in flight on a dead node is given up after about 2 + 3 x 1 s, and nginx sends it to another node.
KEEPALIVE = {"net.ipv4.tcp_keepalive_time": 2, "net.ipv4.tcp_keepalive_intvl": 1, "net.ipv4.tcp_keepalive_probes": 3}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[?-])([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Put the values of ${VAR}, ${VAR:?message} and ${VAR:-default} in, as Compose would from .env."""
    def value(match: re.Match) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind and kind.endswith("-"):
            return rest
        raise ValueError(f"{name} is not set: {rest or 'the stack needs it'}")
    return _VARIABLE.sub(value, text)


def constraint(role: str) -> str:
    return f"node.labels.{ROLE_LABEL.format(role=role)} == true"


def _update(order: str) -> dict:
    return {"parallelism": 1, "order": order, "failure_action": "rollback", "monitor": "15s", "delay": "2s"}


def _deploy(service: str, replicas: Mapping[str, int]) -> dict:
    restart = {"condition": "any", "delay": "5s"}
    if service == "mysql":
        return {"replicas": 1, "endpoint_mode": "dnsrr", "placement": {"constraints": [constraint("database")]},
                "update_config": _update("stop-first"), "rollback_config": {"parallelism": 1, "order": "stop-first"},
                "restart_policy": restart}
    if service.endswith("_panel"):
        return {"replicas": replicas[service[:-len("_panel")]], "endpoint_mode": "dnsrr",
                "placement": {"constraints": [constraint("web")], "preferences": [{"spread": "node.id"}]},
                "update_config": _update("start-first"), "rollback_config": {"parallelism": 1, "order": "start-first"},
                "restart_policy": restart}
    if service == "nginx_proxy":
        return {"mode": "global", "endpoint_mode": "dnsrr", "placement": {"constraints": [constraint("edge")]},
                "update_config": _update("stop-first"), "rollback_config": {"parallelism": 1, "order": "stop-first"},
                "restart_policy": restart}
    return {"mode": "global", "endpoint_mode": "dnsrr", "placement": {"constraints": [constraint("web")]},
            "update_config": _update("start-first"), "rollback_config": {"parallelism": 1, "order": "start-first"},
            "restart_policy": restart}


def _absolute(volume: str, stack_dir: PurePosixPath) -> str:
    source, sep, rest = volume.partition(":")
    if source.startswith("./"):
        return f"{stack_dir / source[2:]}{sep}{rest}"
    return volume


def swarm_form(compose_text: str, env: Mapping[str, str], stack_dir: PurePosixPath,
               replicas: Mapping[str, int]) -> dict[str, Any]:
    """The v3 stack file for `docker stack deploy`, from the compose file's text and the bundle's .env."""
    source = yaml.safe_load(interpolate(compose_text, env))
    services = {}
    for name, spec in source["services"].items():
        if spec.get("profiles"):      # one-off tools, run with `docker run` on a swarm
            continue
        if name.endswith(BACKGROUND_SUFFIXES):    # queue workers and schedulers run on one VPS only, for now
            continue
        service = {key: value for key, value in spec.items() if key not in DROPPED_KEYS}
        if "volumes" in service:
            service["volumes"] = [_absolute(v, stack_dir) for v in service["volumes"]]
        if name == "nginx_proxy":
            service["ports"] = [{"target": port, "published": port, "protocol": "tcp", "mode": "host"}
                                for port in (80, 443)]
        if name.endswith("_nginx") or name == "nginx_proxy":
            service["sysctls"] = KEEPALIVE
        service["deploy"] = _deploy(name, replicas)
        services[name] = service
    # The nginx image's own config serves /usr/share/nginx/html on port 80.
    services[ACME] = {"image": env["FIKASO_NGINX_IMAGE"], "networks": ["fikaso"],
                      "volumes": [f"{env['FIKASO_BASE']}/acme:/usr/share/nginx/html:ro"],
                      "logging": source["services"]["nginx_proxy"]["logging"],
                      "deploy": {"replicas": 1, "endpoint_mode": "dnsrr",
                                 "placement": {"constraints": [constraint("certificates")]},
                                 "restart_policy": {"condition": "any", "delay": "5s"}}}
    network = next(iter(source["networks"].values()))["name"]
    return {
        "version": "3.8",
        "services": services,
        # Made by setup as an attachable overlay network, so that one-off containers (installs,
        # certbot) can join it too.
        "networks": {"fikaso": {"external": True, "name": network}},
        "volumes": source["volumes"],
        # Swarm secrets cannot change: a new version of the files is a new secret (FIKASO_SECRETS_VERSION).
        "secrets": {name: {**spec, "name": f"{STACK}_{name}_{env.get('FIKASO_SECRETS_VERSION', 'v1')}"}
                    for name, spec in source["secrets"].items()},
    }


class _Plain(yaml.SafeDumper):
    """Writes shared parts out in full (no &anchors), so that the file reads like compose.yaml."""

    def ignore_aliases(self, data) -> bool:
        return True


def render(env: Mapping[str, str], stack_dir: PurePosixPath, replicas: Mapping[str, int]) -> str:
    header = ("# Written by Fikaso (fikaso/swarm_stack.py) from compose.yaml beside it, for\n"
              f"# `docker stack deploy --compose-file {FILE_NAME} {STACK}`; edit compose.yaml, not this file.\n")
    return header + yaml.dump(swarm_form(COMPOSE_FILE.read_text(), env, stack_dir, replicas), Dumper=_Plain, sort_keys=False)
