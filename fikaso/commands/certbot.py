"""Certificates: issued by certbot through the proxy, renewed by cron, reported by `certs.status`.

Each domain gets its own certificate, so a domain that fails (its DNS points elsewhere, the ACME
server refuses it) never holds back the others. The proxy serves HTTPS for a domain once its
certificate exists, through a config that goes live only after `nginx -t` passes (proxy.py).
"""
from __future__ import annotations

import hashlib
import re

from ..config import Settings
from ..errors import telling_lines
from ..layout import Layout
from ..shell import cmd, q
from . import alert
from .compose import NETWORK, compose
from .lock import certs_lock_file, flock_lines

CA_BUNDLE = "fikaso-acme-ca.pem"     # in certificates/, where certbot's container sees it
MARKER = "# fikaso-certs renewal"


# ---- pure builders of remote scripts -------------------------------------------------------

def _lock(layout: Layout) -> str:
    """One certbot run at a time on the server: cron's renewal and any `fab certs.*`."""
    return flock_lines(certs_lock_file(layout), "another certificate run")


def ca_bundle_script(layout: Layout, present: bool) -> str:
    """Put the CA bundle arriving on stdin where certbot reads it, or remove a stale one."""
    path = layout.certificates / CA_BUNDLE
    return f"cat > {q(path)}" if present else f"rm -f {q(path)}"


def _certbot(layout: Layout, settings: Settings, *argv: str) -> str:
    """certbot in a one-off container: the stack's certbot service, or on a swarm (no Compose project)
    the same container made by hand, on the stack's network, as the deploy user."""
    ca = ["-e", f"REQUESTS_CA_BUNDLE=/etc/letsencrypt/{CA_BUNDLE}"] if settings.certificates.ca_bundle else []
    if not layout.swarm:
        return compose(layout, "run", "--rm", "--no-deps", "-T", *ca, *argv)
    return " ".join([cmd("docker", "run", "--rm", "--network", NETWORK), '--user "$(id -u):$(id -g)"',
                     cmd("--volume", f"{layout.certificates}:/etc/letsencrypt",
                         "--volume", f"{layout.acme_webroot}:/var/www/acme", *ca, settings.images["certbot"], *argv[1:])])


def issue_script(layout: Layout, settings: Settings, domain: str, server: str) -> str:
    certificates = settings.certificates
    renewal = layout.certificates / "renewal" / f"{domain}.conf"
    contact = ["--email", certificates.email] if certificates.email else ["--register-unsafely-without-email"]
    # --reuse-key (kept for renewals): nginx reads a certificate and its key in two opens of the same
    # file at each handshake; with the key kept, a renewal published between them still matches.
    certbot = ["certbot", "certonly", "--reuse-key", "--webroot", "--webroot-path", "/var/www/acme", "--cert-name", domain,
               "--domain", domain, "--server", server, "--non-interactive", "--agree-tos", *contact,
               "--work-dir", "/tmp/certbot", "--logs-dir", "/etc/letsencrypt/logs"]
    return "\n".join([
        _lock(layout),
        # A certificate from another ACME server (staging, say) is replaced now, not at its expiry.
        f"if [ -f {q(renewal)} ] && ! grep -qxF {q('server = ' + server)} {q(renewal)}; "
        "then again=--force-renewal; else again=--keep-until-expiring; fi",
        _certbot(layout, settings, *certbot) + ' "$again"',
    ])


# ---- a swarm's edge nodes: a copy of the primary's live certificates --------------------------

def digest_command() -> str:
    """Run in the certificates folder: a checksum of every live certificate and key, the same on two
    nodes that serve the same ones."""
    return "cat live/*/fullchain.pem live/*/privkey.pem 2>/dev/null | sha256sum | cut -c1-64"


def send_script(layout: Layout) -> str:
    """The live certificates and keys as a tar on stdout, links followed: an edge node needs the files
    nginx reads, not certbot's history or account."""
    return cmd("tar", "-C", layout.certificates, "-c", "-h", "live")


def receive_script(layout: Layout) -> str:
    """Unpack them in place of this node's copy of live/ (publish_script then makes them the proxy's)."""
    folder = layout.certificates
    return "\n".join([
        f"cd {q(folder)}",
        "rm -rf live.new live.old && mkdir live.new && tar -x -C live.new",
        "if [ -d live ]; then mv live live.old; fi",
        "mv live.new/live live && rm -rf live.new live.old",
    ])


def publish_script(layout: Layout) -> str:
    """Make certbot's live certificates the proxy's (checked first; no reload: see stack/bin/fikaso-certs)."""
    return cmd(layout.stack / "bin" / "fikaso-certs", "publish")


def renew_script(layout: Layout, force: bool) -> str:
    return cmd(layout.stack / "bin" / "fikaso-certs", "renew", *(["--force"] if force else []))


def renewal_line(layout: Layout, seed: str) -> str:
    """Twice a day at a minute and hours picked from `seed` (the host), so servers spread out;
    certbot adds a random wait of its own when not on a terminal."""
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    minute, hour = number % 60, (number // 60) % 12
    failed = "the certificate renewal failed: renew before they expire (fab certs.status shows the days left)"
    job = alert.cron_job(layout, renew_script(layout, False), layout.state / "certs.log", failed)
    return f"{minute} {hour},{hour + 12} * * * {job} {MARKER}"


_PROBLEM = re.compile(r"^\s*(Type|Detail):\s*(.+)$")


def failure_reason(text: str, exit_code: int) -> tuple[str, str]:
    """certbot's reason for a failure, from its output, as (kind, text): the ACME problem type and
    detail if given."""
    fields = dict(m.groups() for m in map(_PROBLEM.match, text.splitlines()) if m)
    if "Detail" in fields:
        return fields.get("Type", "").strip(), fields["Detail"].strip()
    lines = [line for line in telling_lines(text, 40) if "Saving debug log" not in line and
             "Ask for help" not in line and "--debug" not in line]
    errors = [line for line in lines if re.search(r"error|fail|refus|denied|invalid", line, re.I)]
    return "", (errors or lines or [f"certbot exited {exit_code}"])[-1].strip()


def advice(kind: str, domain: str, layout: Layout) -> str:
    if kind in ("connection", "dns", "unauthorized", "incorrectResponse", "tls"):
        return (f"Point {domain}'s DNS A/AAAA records at this VPS and let port 80 reach it (firewall, cloud "
                f"security group), then run `fab certs.issue --domain={domain}`")
    if kind == "rateLimited":
        return ("The ACME server limits how many certificates a domain gets; wait until the time it names, and "
                "use fikaso.certificates.acme_server: letsencrypt-staging while testing")
    return (f"Look at {layout.certificates}/logs/letsencrypt.log on the server, fix the cause, and run "
            f"`fab certs.issue --domain={domain}`")
