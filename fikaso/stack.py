"""The Compose stack on the VPS: service names, compose command lines, and the state read back.

Remote state is read once per task by one script (`facts_script`) whose key=value output
`parse_facts` turns into Facts; steps decide from Facts what must change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .config import PANELS
from .layout import BUNDLE_HASH_FILE, SECRETS_HASH_FILE, Layout
from .remote import cmd, q

SITES = (*PANELS, "landing")
SERVICES = ("mysql", *(f"{p}_panel" for p in PANELS), *(f"{p}_nginx" for p in PANELS),
            "landing_nginx", "nginx_proxy")


def compose(layout: Layout, *args: object) -> str:
    """A `docker compose` command run in the uploaded stack folder (it holds compose.yaml and .env)."""
    return f"cd {q(layout.stack)} && " + cmd("docker", "compose", *args)


@dataclass(frozen=True)
class Service:
    name: str
    state: str
    health: str
    image: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "")


@dataclass
class Facts:
    user: str = ""
    uid: str = ""
    home: str = ""
    docker: str = ""
    compose: str = ""
    base_state: str = ""          # "missing", "writable" or "readonly"
    sudo: bool = False
    folders_missing: bool = True
    bundle_hash: str = ""
    secrets_hash: str = ""
    live: dict[str, str] = field(default_factory=dict)      # site -> live release id
    services: dict[str, Service] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    certificates: set[str] = field(default_factory=set)     # domains with a certificate on the server
    proxy_hash: str = ""          # sha256 of the live proxy config

    def all_healthy(self) -> bool:
        return all(name in self.services and self.services[name].healthy for name in SERVICES)


def facts_script(layout: Layout) -> str:
    base = q(layout.base)
    folders = " ".join(q(p) for p in layout.folders())
    lines = [
        'echo "user=$(id -un)"', 'echo "uid=$(id -u)"', 'echo "home=$HOME"',
        "echo \"docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)\"",
        'echo "compose=$(docker compose version --short 2>/dev/null || true)"',
        f"if [ ! -e {base} ]; then echo base=missing; elif [ -w {base} ]; then echo base=writable; "
        "else echo base=readonly; fi",
        'if sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi',
        f"missing=no; for d in {folders}; do [ -d \"$d\" ] || missing=yes; done; echo \"folders_missing=$missing\"",
        f"echo \"bundle=$(cat {q(layout.stack / BUNDLE_HASH_FILE)} 2>/dev/null || true)\"",
        f"echo \"secrets=$(cat {q(layout.secrets / SECRETS_HASH_FILE)} 2>/dev/null || true)\"",
        f"for f in {q(layout.certificates)}/live/*/fullchain.pem; do "
        '[ -s "$f" ] && echo "certificate=$(basename "$(dirname "$f")")"; done',
        f"if [ -f {q(layout.proxy_config)} ]; then echo \"proxy=$(sha256sum {q(layout.proxy_config)} | cut -c1-64)\"; fi",
    ]
    for site in SITES:
        lines.append(f"echo \"live_{site}=$(basename \"$(readlink {q(layout.current(site))} 2>/dev/null)\" "
                     "2>/dev/null || true)\"")
    lines += [
        "docker image ls --format 'image={{.Repository}}:{{.Tag}}' 2>/dev/null || true",
        f"if [ -f {q(layout.stack / 'compose.yaml')} ]; then "
        + compose(layout, "ps", "--all", "--format", "json") + " 2>/dev/null | sed 's/^/ps=/' || true; fi",
    ]
    return "\n".join(lines)


def _services(values: list[str]) -> dict[str, Service]:
    rows = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        parsed = json.loads(value)
        rows.extend(parsed if isinstance(parsed, list) else [parsed])
    return {row["Service"]: Service(row["Service"], row.get("State", ""), row.get("Health", ""), row.get("Image", ""))
            for row in rows}


def parse_facts(text: str) -> Facts:
    facts = Facts()
    ps_lines = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "ps":
            ps_lines.append(value)
        elif key == "image":
            facts.images.add(value)
        elif key.startswith("live_"):
            if value:
                facts.live[key[5:]] = value
        elif key in ("user", "uid", "home", "docker", "compose"):
            setattr(facts, key, value)
        elif key == "base":
            facts.base_state = value
        elif key == "sudo":
            facts.sudo = value == "yes"
        elif key == "folders_missing":
            facts.folders_missing = value == "yes"
        elif key == "bundle":
            facts.bundle_hash = value
        elif key == "secrets":
            facts.secrets_hash = value
        elif key == "certificate":
            facts.certificates.add(value)
        elif key == "proxy":
            facts.proxy_hash = value
    facts.services = _services(ps_lines)
    return facts
