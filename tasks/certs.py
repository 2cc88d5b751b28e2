from invoke import task

from fikaso import certs as fikaso_certs
from fikaso.config import ACME_SERVERS
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import RemoteError

from .common import open_remote, settings_of, target_host, user_errors


def _domains(settings, domain):
    known = [site.domain for site in settings.sites]
    if domain is None:
        return known
    if domain.lower() not in known:
        raise FikasoError(f"{domain!r} is not one of the configured domains",
                          f"Use one of: {', '.join(known)} (set in fabric.yaml under fikaso.panels and "
                          "fikaso.landing)")
    return [domain.lower()]


@task(help={"domain": "only this domain (default: every panel's and the landing site's domain)",
            "staging": "use Let's Encrypt's staging server (untrusted test certificates, generous limits)"})
@user_errors
def issue(c, domain=None, staging=False):
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
    server = ACME_SERVERS["letsencrypt-staging"] if staging else settings.certificates.acme_server
    fikaso_certs.issue(settings, open_remote(c, settings), domains, server, seed=target_host(c, settings))


@task
@user_errors
def status(c):
    """Show each domain's certificate on the VPS: issuer, expiry, days left; and the renewal schedule."""
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    domains = [site.domain for site in settings.sites]
    result = open_remote(c, settings).run(fikaso_certs.status_script(layout, domains),
                                          label="reading the certificates")
    found, renewal = fikaso_certs.parse_status(result.stdout)
    print(fikaso_certs.render_status(found, renewal, fikaso_certs.now_utc()))


@task
@user_errors
def renew(c):
    """Renew every certificate now, even those not due, and reload the proxy with them.

    Requests keep being served: the proxy reloads gracefully, after `nginx -t` passes. The
    scheduled renewal does the same for certificates that are due.
    """
    settings = settings_of(c)
    remote = open_remote(c, settings)
    try:
        remote.run(fikaso_certs.renew_script(Layout(settings.base_dir), force=True),
                   label="renewing the certificates", echo=print)
    except RemoteError as error:
        raise FikasoError(str(error), "The proxy still serves the certificates it had. Fix the cause shown "
                          "above and run `fab certs.renew` again") from None
