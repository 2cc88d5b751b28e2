"""The reverse proxy's configuration: rendered for the domains that have a certificate, checked
with `nginx -t` in a one-off container beside the live proxy, and only then put live.

A config that fails the check never replaces the live one, so a bad certificate or template
leaves the proxy serving as before.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

from .. import bundle
from ..config import Settings
from ..layout import Layout
from ..shell import q
from .compose import compose, reload_nginx


def render(settings: Settings, tls_domains: Iterable[str]) -> str:
    return bundle.render_proxy(bundle.context(settings), tls_domains)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apply_script(layout: Layout) -> str:
    """Check the config arriving on stdin, then make it the live one and reload a running proxy."""
    live = layout.proxy_config
    candidate = layout.stack / "nginx" / "proxy.next"
    check = compose(layout, "run", "--rm", "--no-deps", "-T", "proxy_check")
    running = compose(layout, "ps", "--status", "running", "--quiet", "nginx_proxy")
    reload = reload_nginx(layout, "nginx_proxy")
    return "\n".join([
        f"rm -rf {q(candidate)} && mkdir -p {q(candidate)} {q(live.parent)}",
        f"cat > {q(candidate / live.name)}",
        f"if ! check=$({check} 2>&1); then",
        '  printf \'%s\\n\' "$check" >&2',
        "  echo 'The new proxy configuration fails nginx -t; the live one is unchanged.' >&2",
        "  exit 1",
        "fi",
        # A rename within the mounted folder: the proxy never reads a half-written file.
        f"cp {q(candidate / live.name)} {q(live.parent / '.proxy.conf.new')}",
        f"mv -f {q(live.parent / '.proxy.conf.new')} {q(live)}",
        f"if [ -n \"$({running} 2>/dev/null)\" ]; then {reload}; fi",
    ])
