"""`fab certs.issue` as steps: a certificate per domain through the running proxy, then HTTPS for
the domains that have one, then renewal by cron.

Each domain gets its own certificate, so a domain that fails (its DNS points elsewhere, the ACME
server refuses it) never holds back the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..commands import certbot, cron
from ..config import Settings
from ..errors import FikasoError
from ..facts import cluster, cron_entry, stack
from ..layout import Layout
from ..plan import Action, Known, Outcome, Step, changed, failed, unchanged
from ..swarm_stack import ACME, STACK
from .shared import StackRun, edge_certificates, edge_proxies, make_bundle, proxy_config


@dataclass
class IssueRun(StackRun):
    settings: Settings
    domains: list[str]
    server: str
    seed: str                      # the host's name, for the renewal schedule's minute
    known: Known = field(default_factory=Known)
    where: str | None = None       # the host certbot runs on (None: the only one)

    @property
    def served(self) -> set[str]:
        """The domains with a certificate, where certbot keeps them."""
        return self.facts.certificates


@dataclass
class SwarmIssueRun(IssueRun):
    """On a swarm: certbot runs on the primary, and every edge node gets a copy of its certificates."""

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.base_dir, swarm=True)

    @property
    def served(self) -> set[str]:
        return self.known["stack"][self.settings.primary.host].certificates


def check_stack(run: IssueRun) -> Outcome:
    facts = run.facts
    if facts.bundle_hash != make_bundle(run.settings, facts.uid).sha256:
        raise FikasoError("The stack on the server is not the one `fab setup` would put there now (an older "
                          "Fikaso or other settings set it up), so it may lack certbot or the proxy's certificates",
                          "Run `fab setup`, then `fab certs.issue` again")
    proxy_service = facts.services.get("nginx_proxy")
    if proxy_service is None or not proxy_service.healthy:
        raise FikasoError("The proxy (nginx_proxy) is not running on the server, so it cannot answer the ACME "
                          "server's challenges", "Run `fab setup` (it starts it), then `fab certs.issue` again")
    return check_stack_ca(run)


def check_stack_ca(run: IssueRun) -> Outcome:
    ca = run.settings.certificates.ca_bundle
    place = Action("placing the ACME server's CA bundle", certbot.ca_bundle_script(run.layout, ca is not None),
                   stdin=ca.read_bytes() if ca is not None else None, on=run.where)
    return unchanged(f"proxy healthy; ACME server {run.server}", place)


def certificate(domain: str) -> Step:
    def decide(run: IssueRun) -> Outcome:
        get = Action(f"getting a certificate for {domain}",
                     certbot.issue_script(run.layout, run.settings, domain, run.server), check=False, on=run.where)

        def judge(results) -> Outcome:
            result = results[0]
            if not result.ok:
                kind, detail = certbot.failure_reason(result.stdout + "\n" + result.stderr, result.exit_code)
                return failed(f"{kind + ': ' if kind else ''}{detail}"[:300], info=(domain, kind, detail))
            if "not yet due for renewal" in result.stdout + result.stderr:
                return unchanged("valid and not due for renewal")
            return changed("issued")
        return changed("", get, judge=judge)
    return Step(f"certificate {domain}", decide)


def proxy_step(run: IssueRun) -> Outcome:
    return proxy_config(run.settings, run.layout, run.facts)


def renewal(run: IssueRun) -> Outcome:
    line = certbot.renewal_line(run.layout, run.seed)
    if run.known["cron"] == line:
        return unchanged("twice a day, by cron")
    return changed("twice a day, by cron", Action("scheduling renewal", cron.install_script(line, certbot.MARKER),
                                                  on=run.where))


def check_swarm(run: SwarmIssueRun) -> Outcome:
    if f"{STACK}_{ACME}" not in run.known["cluster"].services:
        raise FikasoError("The stack on the swarm has no acme service (an older Fikaso set it up), so no edge "
                          "node's proxy could answer the ACME server's challenges",
                          "Run `fab setup`, then `fab certs.issue` again")
    return check_stack_ca(run)


def issue_steps(run: IssueRun) -> list[Step]:
    read_stack = lambda run: (stack(run.layout),)  # noqa: E731  (read again after the certificates)
    renew = Step("renewal", renewal, reads=(cron_entry(certbot.MARKER),), on=run.where)
    if isinstance(run, SwarmIssueRun):
        return [Step("stack", check_swarm, reads=lambda run: (cluster(run.layout),), on=run.where),
                *(certificate(d) for d in run.domains),
                Step("certificates", lambda run: edge_certificates(run.settings, run.layout, run.known["stack"]),
                     reads=read_stack, each=True),
                Step("proxy", lambda run: edge_proxies(run.settings, run.layout, run.known["stack"])), renew]
    return [Step("stack", check_stack, reads=read_stack), *(certificate(d) for d in run.domains),
            Step("proxy", proxy_step, reads=read_stack), renew]


def failures_error(run: IssueRun, outcomes: list[Outcome]) -> FikasoError | None:
    """One error naming every domain that got no certificate, or None when all did."""
    failures = [o.info for o in outcomes if o.failed and o.info]
    if not failures:
        return None
    served = sorted(run.served & {site.domain for site in run.settings.sites})
    parts = [f"{domain} ({kind + ': ' if kind else ''}{detail})" for domain, kind, detail in failures]
    first_domain, first_kind, _ = failures[0]
    return FikasoError(
        f"No certificate for {'; '.join(parts)}. The proxy serves as before"
        + (f", with HTTPS for {', '.join(served)}" if served else ""),
        certbot.advice(first_kind, first_domain, run.layout))
