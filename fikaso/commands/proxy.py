"""The reverse proxy's configuration: rendered for the domains that have a certificate, checked
with `nginx -t` in a one-off container beside the live proxy, and only then put live.

A config that fails the check never replaces the live one, so a bad certificate or template
leaves the proxy serving as before.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from .. import bundle
from ..config import Settings
from ..layout import Layout
from ..shell import cmd, q, wait_healthy_lines
from .compose import compose, exec_in, reload_nginx, task_container


RELOAD_SECONDS = 10


def render(settings: Settings, tls_domains: Iterable[str]) -> str:
    """The config, carrying an id made from the rest of it (see apply_script)."""
    context = bundle.context(settings)
    draft = bundle.render_proxy(context, tls_domains)
    return bundle.render_proxy(context, tls_domains, config_id=sha256(draft)[:16])


def config_id(text: str) -> str:
    found = re.search(r'return 200 "ok ([0-9a-f]+)\\n"', text)
    return found.group(1) if found else ""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apply_script(layout: Layout, new_id: str) -> str:
    """Check the config arriving on stdin, then make it the live one and reload a running proxy.

    `nginx -s reload` returns before the new workers take over: the old ones keep accepting
    connections for a moment. The script returns only once the proxy answers with `new_id`, so
    that what the task reports done is what the next visitor gets.
    """
    live = layout.proxy_config
    candidate = layout.stack / "nginx" / "proxy.next"
    if layout.swarm:   # no Compose project on a swarm node: the same check as a one-off container
        image = f"\"$(sed -n 's/^FIKASO_NGINX_IMAGE=//p' {q(layout.stack / '.env')})\""
        check = cmd("docker", "run", "--rm", "--network", "none", "--volume", f"{candidate}:/etc/nginx/conf.d:ro",
                    "--volume", f"{layout.proxy_certificates}:/etc/nginx/certificates:ro",
                    "--volume", f"{layout.acme_webroot}:/var/www/acme:ro") + f" {image} nginx -t -q"
        running = task_container("nginx_proxy")
    else:
        check = compose(layout, "run", "--rm", "--no-deps", "-T", "proxy_check")
        running = compose(layout, "ps", "--status", "running", "--quiet", "nginx_proxy")
    reload = reload_nginx(layout, "nginx_proxy")
    probe = exec_in(layout, "nginx_proxy", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/proxy-health")
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
        f"if [ -n \"$({running} 2>/dev/null)\" ]; then",
        f"  {reload}",
        *(f"  {line}" for line in wait_healthy_lines(f"[ \"$({probe} 2>/dev/null)\" = {q('ok ' + new_id)} ]",
                                                      RELOAD_SECONDS)),
        "  if [ \"$healthy\" != yes ]; then echo 'The proxy did not take up its new configuration after a reload "
        "(see fab logs --service=nginx_proxy).' >&2; exit 1; fi",
        "fi",
    ])
