from datetime import datetime, timezone

from fikaso import facts
from fikaso.commands import certbot
from fikaso.config import ACME_SERVERS, check_ca_bundle
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.plan import Action
from fikaso.remote import RemoteError
from fikaso.steps import certs as steps
from fikaso.views import render_certificates

from .common import fikaso_task, open_primary_runner, open_runner, open_swarm_runner, settings_of, target_host


def _domains(settings, domain):
    known = [site.domain for site in settings.sites]
    if domain is None:
        return known
    if domain.lower() not in known:
        raise FikasoError(f"{domain!r} is not one of the configured domains",
                          f"Use one of: {', '.join(known)} (set in fabric.yaml under fikaso.panels and "
                          "fikaso.landing)")
    return [domain.lower()]


def open_certbot_runner(c, settings, plan: bool = False):
    """Where certbot keeps the certificates: the VPS, or on a swarm its primary."""
    return open_primary_runner(c, settings, plan) if settings.swarm else open_runner(c, settings, plan)


@fikaso_task(help={"domain": "only this domain (default: every panel's and the landing site's domain)",
                   "staging": "use Let's Encrypt's staging server (untrusted test certificates, generous limits)",
                   "plan": "print the remote commands, and change nothing (as -R does)"})
def issue(c, domain=None, staging=False, plan=False):
    """Get a certificate for each domain and serve it over HTTPS, then schedule renewal.

    certbot runs on the VPS, in the stack's certbot container, and answers the ACME server's
    HTTP challenges through the running proxy, so each domain's DNS must already point at the
    VPS. The proxy then serves HTTPS for every domain with a certificate (TLS 1.2/1.3, HSTS, HTTP
    redirected with 308); its new config goes live only after `nginx -t` passes. A domain that
    fails leaves the others, and the running proxy, as they were. Renewal runs twice a day by
    cron. The ACME server is fikaso.certificates.acme_server (Let's Encrypt by default).
    """
    settings = settings_of(c)
    domains = _domains(settings, domain)
    check_ca_bundle(settings.certificates)
    server = ACME_SERVERS["letsencrypt-staging"] if staging else settings.certificates.acme_server
    if settings.swarm:
        primary = settings.primary.host
        run = steps.SwarmIssueRun(settings=settings, domains=domains, server=server, seed=primary, where=primary)
        runner = open_swarm_runner(c, settings, plan)
    else:
        run = steps.IssueRun(settings=settings, domains=domains, server=server, seed=target_host(c, settings))
        runner = open_runner(c, settings, plan)
    outcomes = runner.steps("certs.issue", steps.issue_steps(run), run)
    error = steps.failures_error(run, outcomes)
    if error is not None:
        raise error


@fikaso_task
def status(c):
    """Show each domain's certificate on the VPS: issuer, expiry, days left; and the renewal schedule."""
    settings = settings_of(c)
    domains = [site.domain for site in settings.sites]
    (found,) = open_certbot_runner(c, settings).read(facts.certificates(Layout(settings.base_dir), domains))
    print(render_certificates(found, datetime.now(timezone.utc)))


@fikaso_task(help={"plan": "print the remote command, and change nothing (as -R does)"})
def renew(c, plan=False):
    """Renew every certificate now, even those not due, and reload the proxy with them.

    Requests keep being served: the proxy reloads gracefully, after `nginx -t` passes. The
    scheduled renewal does the same for certificates that are due.
    """
    settings = settings_of(c)
    try:
        open_certbot_runner(c, settings, plan).run(Action("renewing the certificates",
                                                          certbot.renew_script(Layout(settings.base_dir), force=True),
                                                          stream=True))
    except RemoteError as error:
        raise FikasoError(str(error), "The proxy still serves the certificates it had. Fix the cause shown "
                          "above and run `fab certs.renew` again") from None
