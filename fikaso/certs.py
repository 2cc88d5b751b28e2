"""Certificates: issued by certbot through the proxy, renewed by cron, reported by `certs.status`.

Each domain gets its own certificate, so a domain that fails (its DNS points elsewhere, the ACME
server refuses it) never holds back the others. The proxy serves HTTPS for a domain once its
certificate exists, through a config that goes live only after `nginx -t` passes (proxy.py).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography import x509

from . import proxy, schedule, setup
from .config import Settings, check_ca_bundle
from .errors import FikasoError
from .layout import Layout
from .remote import Remote, Result, cmd, q, telling_lines
from .stack import Facts, compose, facts_script, parse_facts
from .steps import Outcome, Step, changed, failed, run_steps, unchanged
from .tables import table

CA_BUNDLE = "fikaso-acme-ca.pem"     # in certificates/, where certbot's container sees it
MARKER = "# fikaso-certs renewal"
LOCK_SECONDS = 900


# ---- pure builders of remote scripts -------------------------------------------------------

def _lock(layout: Layout) -> str:
    """One certbot run at a time on the server: cron's renewal and any `fab certs.*`."""
    lock = layout.state / "certs.lock"
    return (f"exec 9>{q(lock)}\n"
            f"flock -w {LOCK_SECONDS} 9 || {{ echo 'another certificate run still holds {lock}' >&2; exit 75; }}")


def ca_bundle_script(layout: Layout, present: bool) -> str:
    """Put the CA bundle arriving on stdin where certbot reads it, or remove a stale one."""
    path = layout.certificates / CA_BUNDLE
    return f"cat > {q(path)}" if present else f"rm -f {q(path)}"


def issue_script(layout: Layout, settings: Settings, domain: str, server: str) -> str:
    certificates = settings.certificates
    renewal = layout.certificates / "renewal" / f"{domain}.conf"
    run = ["run", "--rm", "--no-deps", "-T"]
    if certificates.ca_bundle is not None:
        run += ["-e", f"REQUESTS_CA_BUNDLE=/etc/letsencrypt/{CA_BUNDLE}"]
    contact = ["--email", certificates.email] if certificates.email else ["--register-unsafely-without-email"]
    certbot = ["certbot", "certonly", "--webroot", "--webroot-path", "/var/www/acme", "--cert-name", domain,
               "--domain", domain, "--server", server, "--non-interactive", "--agree-tos", *contact,
               "--work-dir", "/tmp/certbot", "--logs-dir", "/etc/letsencrypt/logs"]
    return "\n".join([
        _lock(layout),
        # A certificate from another ACME server (staging, say) is replaced now, not at its expiry.
        f"if [ -f {q(renewal)} ] && ! grep -qxF {q('server = ' + server)} {q(renewal)}; "
        "then again=--force-renewal; else again=--keep-until-expiring; fi",
        compose(layout, *run, *certbot) + ' "$again"',
    ])


def renew_script(layout: Layout, force: bool) -> str:
    return cmd(layout.stack / "bin" / "fikaso-certs", "renew", *(["--force"] if force else []))


def renewal_line(layout: Layout, seed: str) -> str:
    """Twice a day at a minute and hours picked from `seed` (the host), so servers spread out;
    certbot adds a random wait of its own when not on a terminal."""
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    minute, hour = number % 60, (number // 60) % 12
    log = layout.state / "certs.log"
    return f"{minute} {hour},{hour + 12} * * * {renew_script(layout, False)} >> {q(log)} 2>&1 {MARKER}"


def status_script(layout: Layout, domains: list[str]) -> str:
    lines = []
    for domain in domains:
        lines.append(f"echo {q('domain=' + domain)}")
        lines.append(f"cat {q(layout.certificates / 'live' / domain / 'cert.pem')} 2>/dev/null || true")
    lines.append(f"crontab -l 2>/dev/null | grep -F {q(MARKER)} | sed 's/^/renewal=/' || true")
    return "\n".join(lines)


# ---- reading what the server said ------------------------------------------------------------

@dataclass(frozen=True)
class Certificate:
    domain: str
    issuer: str
    expires: datetime
    serial: int

    def days_left(self, now: datetime) -> int:
        return (self.expires - now).days


def parse_status(text: str) -> tuple[dict[str, Certificate | None], str]:
    """Each domain's certificate (None if it has none) and the renewal cron line ("" if none)."""
    found: dict[str, Certificate | None] = {}
    pem: dict[str, list[str]] = {}
    renewal, domain = "", None
    for line in text.splitlines():
        if line.startswith("domain="):
            domain = line[len("domain="):]
            pem[domain] = []
        elif line.startswith("renewal="):
            renewal = line[len("renewal="):]
        elif domain is not None:
            pem[domain].append(line)
    for name, lines in pem.items():
        found[name] = None
        if lines:
            cert = x509.load_pem_x509_certificate("\n".join(lines).encode())
            names = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME) or \
                cert.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
            found[name] = Certificate(name, str(names[0].value) if names else cert.issuer.rfc4514_string(),
                                      cert.not_valid_after_utc, cert.serial_number)
    return found, renewal


def render_status(certificates: dict[str, Certificate | None], renewal: str, now: datetime) -> str:
    rows = []
    for domain, cert in certificates.items():
        if cert is None:
            rows.append((domain, "-", "-", "no certificate: HTTP only (fab certs.issue)"))
        else:
            days = cert.days_left(now)
            rows.append((domain, cert.issuer, cert.expires.strftime("%Y-%m-%d %H:%M"),
                         f"{days}" + ("  EXPIRED" if days < 0 else "  renew soon" if days < 14 else "")))
    out = [table(("DOMAIN", "ISSUER", "EXPIRES (UTC)", "DAYS LEFT"), rows)]
    if renewal:
        minute, hours = renewal.split()[:2]
        times = " and ".join(f"{int(hour):02d}:{int(minute):02d}" for hour in hours.split(","))
        out.append(f"renewal: by cron at {times} server time, reloading the proxy when a certificate "
                   "changes (log: state/certs.log)")
    else:
        out.append("renewal: not scheduled (fab certs.issue schedules it)")
    return "\n".join(out)


_PROBLEM = re.compile(r"^\s*(Type|Detail):\s*(.+)$")


def failure_reason(result: Result) -> tuple[str, str]:
    """certbot's reason for a failure, as (kind, text): the ACME problem type and detail if given."""
    text = result.stdout + "\n" + result.stderr
    fields = dict(m.groups() for m in map(_PROBLEM.match, text.splitlines()) if m)
    if "Detail" in fields:
        return fields.get("Type", "").strip(), fields["Detail"].strip()
    lines = [line for line in telling_lines(text, 40) if "Saving debug log" not in line and
             "Ask for help" not in line and "--debug" not in line]
    errors = [line for line in lines if re.search(r"error|fail|refus|denied|invalid", line, re.I)]
    return "", (errors or lines or [f"certbot exited {result.exit_code}"])[-1].strip()


def advice(kind: str, domain: str, layout: Layout) -> str:
    if kind in ("connection", "dns", "unauthorized", "incorrectResponse", "tls"):
        return (f"Point {domain}'s DNS A/AAAA records at this VPS and let port 80 reach it (firewall, cloud "
                f"security group), then run `fab certs.issue --domain={domain}`")
    if kind == "rateLimited":
        return ("The ACME server limits how many certificates a domain gets; wait until the time it names, and "
                "use fikaso.certificates.acme_server: letsencrypt-staging while testing")
    return (f"Look at {layout.certificates}/logs/letsencrypt.log on the server, fix the cause, and run "
            f"`fab certs.issue --domain={domain}`")


# ---- the run --------------------------------------------------------------------------------

@dataclass
class IssueRun:
    settings: Settings
    remote: Remote
    domains: list[str]
    server: str
    seed: str                      # the host's name, for the renewal schedule's minute
    layout: Layout = field(init=False)
    facts: Facts = field(default_factory=Facts)
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        self.layout = Layout(self.settings.base_dir)

    def refresh_facts(self) -> Facts:
        self.facts = parse_facts(self.remote.run(facts_script(self.layout), label="reading the server's state").stdout)
        return self.facts


def step_stack(run: IssueRun) -> Outcome:
    facts = run.refresh_facts()
    if facts.bundle_hash != setup.make_bundle(run.settings, facts).sha256:
        raise FikasoError("The stack on the server is not the one `fab setup` would put there now (an older "
                          "Fikaso or other settings set it up), so it may lack certbot or the proxy's certificates",
                          "Run `fab setup`, then `fab certs.issue` again")
    proxy_service = facts.services.get("nginx_proxy")
    if proxy_service is None or not proxy_service.healthy:
        raise FikasoError("The proxy (nginx_proxy) is not running on the server, so it cannot answer the ACME "
                          "server's challenges", "Run `fab setup` (it starts it), then `fab certs.issue` again")
    ca = run.settings.certificates.ca_bundle
    stdin = [ca.read_bytes()] if ca is not None else None
    run.remote.run(ca_bundle_script(run.layout, ca is not None), label="placing the ACME server's CA bundle",
                   stdin=stdin)
    return unchanged(f"proxy healthy; ACME server {run.server}")


def _issue(run: IssueRun, domain: str) -> Outcome:
    result = run.remote.run(issue_script(run.layout, run.settings, domain, run.server),
                            label=f"getting a certificate for {domain}", check=False)
    if not result.ok:
        run.failures[domain] = failure_reason(result)
        kind, detail = run.failures[domain]
        return failed(f"{kind + ': ' if kind else ''}{detail}"[:300])
    if "not yet due for renewal" in result.stdout + result.stderr:
        return unchanged("valid and not due for renewal")
    return changed("issued")


def domain_step(domain: str) -> Step[IssueRun]:
    return Step(f"certificate {domain}", lambda run: _issue(run, domain))


def step_proxy(run: IssueRun) -> Outcome:
    facts = run.refresh_facts()
    text = proxy.render(run.settings, facts.certificates)
    https = sorted(facts.certificates & {site.domain for site in run.settings.sites})
    if facts.proxy_hash == proxy.sha256(text):
        return unchanged(f"HTTPS for {len(https)} domain(s)")
    run.remote.run(proxy.apply_script(run.layout), label="checking and installing the proxy configuration",
                   stdin=[text.encode()])
    return changed(f"HTTPS for {', '.join(https)}")


def step_renewal(run: IssueRun) -> Outcome:
    line = renewal_line(run.layout, run.seed)
    current = run.remote.run(f"crontab -l 2>/dev/null | grep -F {q(MARKER)} || true",
                             label="reading the renewal schedule").stdout.strip()
    if current == line:
        return unchanged("twice a day, by cron")
    run.remote.run(schedule.install_script(line, MARKER), label="scheduling renewal")
    return changed("twice a day, by cron")


def issue(settings: Settings, remote: Remote, domains: list[str], server: str, seed: str,
          out=None) -> list[Outcome]:
    check_ca_bundle(settings.certificates)
    run = IssueRun(settings=settings, remote=remote, domains=domains, server=server, seed=seed)
    steps = [Step("stack", step_stack), *(domain_step(d) for d in domains), Step("proxy", step_proxy),
             Step("renewal", step_renewal)]
    outcomes = run_steps("certs.issue", steps, run, out=out)
    if run.failures:
        served = sorted(run.facts.certificates & {site.domain for site in settings.sites})
        parts = [f"{domain} ({kind + ': ' if kind else ''}{detail})" for domain, (kind, detail) in run.failures.items()]
        first_domain, (first_kind, _) = next(iter(run.failures.items()))
        raise FikasoError(
            f"No certificate for {'; '.join(parts)}. The proxy serves as before"
            + (f", with HTTPS for {', '.join(served)}" if served else ""),
            advice(first_kind, first_domain, run.layout))
    return outcomes


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
