"""The proxy step, shared by setup and certs.issue: the proxy's config for the certificates there are."""
from __future__ import annotations

from ..commands import proxy
from ..config import Settings
from ..facts import StackFacts
from ..layout import Layout
from ..plan import Action, Outcome, changed, unchanged


def proxy_config(settings: Settings, layout: Layout, facts: StackFacts) -> Outcome:
    """HTTPS for each domain that has a certificate on the server; the config goes live only after
    `nginx -t` passed on it."""
    text = proxy.render(settings, facts.certificates)
    https = sorted(facts.certificates & {site.domain for site in settings.sites})
    summary = f"HTTPS for {', '.join(https)}" if https else "HTTP only (no certificate yet: fab certs.issue)"
    if facts.proxy_hash == proxy.sha256(text):
        return unchanged(summary)
    return changed(summary, Action("checking and installing the proxy configuration", proxy.apply_script(layout),
                                   stdin=text.encode()))
