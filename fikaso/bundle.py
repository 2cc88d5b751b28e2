"""The bundle uploaded to <base>/stack: compose file, rendered nginx configs, image build files.

Pure: the same settings give byte-identical files, so the bundle's hash tells whether the server
already has it. The proxy's config is not in it: it depends on which domains have certificates
on the server, and goes live only after a check (fikaso/proxy.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable, Mapping

import jinja2

from .config import PROJECT_ROOT, Settings

NGINX_TEMPLATES = PROJECT_ROOT / "nginx"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(NGINX_TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def context(settings: Settings) -> dict:
    """What the nginx templates are rendered from."""
    return {
        "panels": [{"name": s.name, "domain": s.domain, "port": s.port} for s in settings.panels],
        "landing": {"domain": settings.landing.domain, "port": settings.landing.port},
        "swarm": settings.swarm,
    }


def render_nginx(context: Mapping) -> dict[str, str]:
    """Each site's nginx config, keyed by its path in the bundle (nginx/<site>/<site>.conf)."""
    env = _environment()
    out = {}
    for panel in context["panels"]:
        out[f"nginx/{panel['name']}/{panel['name']}.conf"] = env.get_template("panel.conf.j2").render(panel=panel)
    out["nginx/landing/landing.conf"] = env.get_template("landing.conf.j2").render(landing=context["landing"])
    return out


def render_proxy(context: Mapping, tls_domains: Iterable[str], config_id: str = "") -> str:
    """The proxy's config: HTTPS (and a redirect to it) for the domains in `tls_domains`; its
    health page answers `config_id` (fikaso/commands/proxy.py)."""
    sites = [*context["panels"], {"name": "landing", **context["landing"]}]
    tls = sorted(set(tls_domains) & {site["domain"] for site in sites})
    return _environment().get_template("proxy.conf.j2").render(sites=sites, tls_sites=tls, config_id=config_id,
                                                              swarm=context.get("swarm", False))


def env_file(values: Mapping[str, str]) -> str:
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"compose setting {key} must be one line")
    return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def build_bundle(context: Mapping, dest: Path, env: Mapping[str, str]) -> None:
    """Write the bundle tree into `dest`."""
    dest.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "stack" / "compose.yaml", dest / "compose.yaml")
    shutil.copytree(PROJECT_ROOT / "stack" / "bin", dest / "bin")
    (dest / ".env").write_text(env_file(env))
    shutil.copytree(PROJECT_ROOT / "init-db", dest / "init-db")
    for name, text in render_nginx(context).items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
