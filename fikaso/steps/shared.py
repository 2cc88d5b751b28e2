"""What setup and certs.issue share: the stack bundle both compare with the server's, and the proxy steps
(one VPS, and every edge node of a swarm with its copy of the certificates)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .. import archive, bundle, records, swarm_stack
from ..commands import certbot, lock, php_image, proxy, release
from ..commands.compose import NETWORK
from ..config import PANELS, Settings
from ..errors import FikasoError
from ..facts import StackFacts
from ..layout import Layout
from ..plan import Action, Known, Outcome, changed, unchanged
from ..secrets import Secrets, database_name


@dataclass
class SetupRequest:
    """What a `fab setup` is given, on one VPS or a swarm; its facts arrive in `known`."""

    settings: Settings
    secrets: Secrets
    actor: records.Actor
    release_id: str = field(default_factory=release.new_release_id)
    known: Known = field(default_factory=Known)
    _bundle: archive.Archive | None = None


class StackRun:
    """What a run deciding from the stack fact (setup, certs.issue) offers its steps."""

    settings: Settings
    known: Known

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.base_dir)

    @property
    def facts(self) -> StackFacts:
        return self.known["stack"]


def proxy_config(settings: Settings, layout: Layout, facts: StackFacts) -> Outcome:
    """HTTPS for each domain that has a certificate on the server; the config goes live only after
    `nginx -t` passed on it."""
    text = proxy.render(settings, facts.certificates)
    https = sorted(facts.certificates & {site.domain for site in settings.sites})
    summary = f"HTTPS for {', '.join(https)}" if https else "HTTP only (no certificate yet: fab certs.issue)"
    stale = facts.certificates and facts.published_hash != facts.certificates_hash
    actions = [publish(layout)] if stale else []
    if facts.proxy_hash != proxy.sha256(text):
        actions.append(Action("checking and installing the proxy configuration",
                              proxy.apply_script(layout, proxy.config_id(text)), stdin=text.encode()))
    return changed(summary, *actions) if actions else unchanged(summary)


def publish(layout: Layout, on: str | None = None) -> Action:
    """certbot's live certificates, checked, made the proxy's copies (before a config names them)."""
    def refused(result) -> Exception:
        return FikasoError(
            f"The certificates{' on ' + on if on else ''} fail nginx -t, so the proxy keeps serving the ones it has: "
            f"{(result.stderr or result.stdout).strip()[-400:]}",
            f"Look at {layout.certificates}/live/ there (a key that does not match its certificate, or a file made "
            "unreadable), re-issue the domain with `fab certs.issue --domain=DOMAIN` if need be, then run `fab setup`")
    return Action(f"publishing the certificates to the proxy{' on ' + on if on else ''}",
                  certbot.publish_script(layout), on=on, failure=refused)


def check_base_folder(facts: StackFacts, layout: Layout, where: str = "the server") -> None:
    """The deploy user must be able to create or write the base folder; else say how to make it."""
    if facts.base_state == "readonly" or (facts.base_state == "missing" and not facts.sudo and
                                          not facts.parent_writable):
        raise FikasoError(
            f"User {facts.user} cannot create or write {layout.base} on {where}",
            f"Create it once as root: sudo install -d -o {facts.user} -g {facts.user} {layout.base}, "
            "or set fikaso.base_dir in fabric.yaml to a folder the user owns")


def site_checks(settings: Settings, layout: Layout, fix: str, done: str, on: str | None = None) -> Outcome:
    """Ask the proxy (on a swarm: every edge node's) for each site's health page; `fix` says where to
    look when one does not answer ({name} is the site's), `done` what it means when all do. A panel in
    maintenance answers with its 503 page, and the outcome says so."""
    actions = []
    for site in settings.sites:
        path = site.health

        def silent(result, site=site, path=path) -> Exception:
            return FikasoError(
                f"{site.domain} does not answer through the proxy ({path}){' on an edge node' if on else ''}: "
                f"{(result.stderr or result.stdout).strip()[-300:] or 'no response'}", fix.format(name=site.name))
        actions.append(Action(f"checking {site.domain}{' on every edge node' if on else ''}",
                              release.check_site_script(layout, site.domain, path, maintenance=site.name in PANELS),
                              failure=silent, on=on))

    def judge(results) -> Outcome:
        down = [site.name for site, result in zip(settings.sites, results) if "maintenance=yes" in result.stdout]
        return unchanged(done + (f" ({', '.join(down)} in maintenance: its 503 page)" if down else ""))
    return unchanged("", *actions, judge=judge)


def compose_env(settings: Settings, uid: str, default_image: str) -> dict[str, str]:
    """The bundle's .env: Compose's settings, and the values stack/bin's scripts share with Fikaso,
    so that each is written once, here."""
    layout = Layout(settings.base_dir)
    return {
        "FIKASO_BASE": str(settings.base_dir),
        "FIKASO_MYSQL_IMAGE": settings.images["mysql"],
        "FIKASO_NGINX_IMAGE": settings.images["nginx"],
        "FIKASO_CERTBOT_IMAGE": settings.images["certbot"],
        "FIKASO_PHP_IMAGE": default_image,
        "FIKASO_APP_UID": uid,
        "FIKASO_NETWORK": NETWORK,
        "FIKASO_PANELS": " ".join(PANELS),
        "FIKASO_DATABASES": " ".join(database_name(panel) for panel in PANELS),
        "FIKASO_APP_ROOT": release.APP_ROOT,
        "FIKASO_LOCKED_EXIT": str(lock.LOCKED),
        "FIKASO_BACKUP_LOCK": str(lock.backup_lock_file(layout)),
        "FIKASO_CERTS_LOCK": str(lock.certs_lock_file(layout)),
        "FIKASO_CERTS_LOCK_WAIT": str(lock.FLOCK_SECONDS),
        "FIKASO_CA_BUNDLE": certbot.CA_BUNDLE,
        "COMPOSE_FILE": php_image.compose_files(),
        "FIKASO_SWARM": "yes" if settings.swarm else "no",
        "FIKASO_ALERT_EMAIL": settings.alerts.email,
        **background_env(settings),
    }


def background_env(settings: Settings) -> dict[str, str]:
    """How many queue workers and schedulers each panel runs (the replicas of its services in compose.yaml)."""
    env = {}
    for site in settings.panels:
        env[f"FIKASO_{site.name.upper()}_WORKERS"] = str(site.workers)
        env[f"FIKASO_{site.name.upper()}_SCHEDULER"] = "1" if site.scheduler else "0"
    return env


def make_bundle(settings: Settings, uid: str, secrets_version: str = "") -> archive.Archive:
    """The stack bundle; on a swarm its stack file names the secrets' version (the hash of their files)."""
    image = php_image.tag(settings, uid)
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "stack"
        env = compose_env(settings, uid, image)
        bundle.build_bundle(bundle.context(settings), dest, env)
        if settings.swarm:
            form = swarm_stack.render({**env, "FIKASO_SECRETS_VERSION": secrets_version},
                                      Layout(settings.base_dir).stack, settings.replicas)
            (dest / swarm_stack.FILE_NAME).write_text(form)
        # The bundle is built here from known files: ship all of it, its compose .env included.
        return archive.tree(dest, excluded_prefixes=(), excluded_names=frozenset())


def edge_certificates(settings: Settings, layout: Layout, facts: Mapping[str, StackFacts]) -> Outcome:
    """Every edge node gets a copy of the live certificates certbot keeps on the primary, before its
    proxy's config names them (`fab setup` and `fab certs.issue`; cron's renewals send theirs through
    Swarm, see stack/bin/fikaso-certs)."""
    primary = settings.primary
    want = facts[primary.host].certificates_hash
    actions, copied = [], 0
    for node in settings.with_role("edge"):
        if node != primary and facts[node.host].certificates_hash != want:
            actions.append(Action(f"copying the certificates to {node.host}", certbot.receive_script(layout),
                                  on=node.host, stdin_from=(primary.host, certbot.send_script(layout))))
            copied += 1
        if facts[primary.host].certificates and facts[node.host].published_hash != want:
            actions.append(publish(layout, on=node.host))
    domains = len(facts[primary.host].certificates)
    return changed(f"{domains} certificate(s) copied to {copied} edge node(s)", *actions) if actions else \
        unchanged(f"{domains} certificate(s) on every edge node")


def edge_proxies(settings: Settings, layout: Layout, facts: Mapping[str, StackFacts]) -> Outcome:
    """The proxy's config on every edge node (HTTPS for the primary's certificates), checked with
    nginx -t there before it goes live."""
    certificates = facts[settings.primary.host].certificates
    text = proxy.render(settings, certificates)
    edges = [n for n in settings.with_role("edge") if facts[n.host].proxy_hash != proxy.sha256(text)]
    actions = [Action(f"checking and installing the proxy configuration on {node.host}",
                      proxy.apply_script(layout, proxy.config_id(text)), stdin=text.encode(), on=node.host)
               for node in edges]
    https = sorted(certificates & {site.domain for site in settings.sites})
    summary = f"HTTPS for {', '.join(https)}" if https else "HTTP only"
    return changed(f"{summary}, on {len(actions)} edge node(s)", *actions) if actions else \
        unchanged(f"{summary}, on every edge node")
