"""Certificates: the exact certbot and renewal commands, and what is read back from the server."""
import base64
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fikaso import facts
from fikaso.commands import certbot as certs
from fikaso.commands import proxy
from fikaso.plan import Values
from fikaso.views import render_certificates
from fikaso.config import load_settings
from fikaso.layout import Layout

from .helpers import ROOT, shipped_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))
SETTINGS = load_settings(shipped_section(), root=ROOT)


def test_issue_runs_certbot_in_the_stack_for_one_domain_under_the_lock():
    script = certs.issue_script(LAYOUT, SETTINGS, "store.fikaso.test", "https://pebble:14000/dir")
    assert script.splitlines() == [
        "exec 9>/srv/fikaso/state/certs.lock",
        "flock -w 900 9 || { echo 'another certificate run still holds /srv/fikaso/state/certs.lock' >&2; exit 75; }",
        "if [ -f /srv/fikaso/certificates/renewal/store.fikaso.test.conf ] && ! grep -qxF "
        "'server = https://pebble:14000/dir' /srv/fikaso/certificates/renewal/store.fikaso.test.conf; "
        "then again=--force-renewal; else again=--keep-until-expiring; fi",
        "cd /srv/fikaso/stack && docker compose run --rm --no-deps -T "
        "-e REQUESTS_CA_BUNDLE=/etc/letsencrypt/fikaso-acme-ca.pem certbot certonly --reuse-key --webroot "
        "--webroot-path /var/www/acme --cert-name store.fikaso.test --domain store.fikaso.test "
        "--server https://pebble:14000/dir --non-interactive --agree-tos --register-unsafely-without-email "
        "--work-dir /tmp/certbot --logs-dir /etc/letsencrypt/logs \"$again\"",
    ]


def test_issue_without_a_ca_bundle_uses_the_system_cas_and_gives_the_contact():
    section = shipped_section()
    section["certificates"] = {"email": "ops@example.com"}
    script = certs.issue_script(LAYOUT, load_settings(section, root=ROOT), "fikaso.test",
                                "https://acme-v02.api.letsencrypt.org/directory")
    assert "REQUESTS_CA_BUNDLE" not in script
    assert "--email ops@example.com" in script and "--register-unsafely" not in script


def test_renewal_runs_twice_a_day_twelve_hours_apart_at_a_host_specific_minute():
    line = certs.renewal_line(LAYOUT, "vps.example.com")
    minute, hours, *rest = line.split()
    first, second = map(int, hours.split(","))
    assert 0 <= int(minute) < 60 and second == first + 12 and rest[:3] == ["*", "*", "*"]
    assert "* /srv/fikaso/stack/bin/fikaso-certs renew >> /srv/fikaso/state/certs.log 2>&1 || " in line
    assert "| /srv/fikaso/stack/bin/fikaso-alert 'the certificate renewal failed" in line   # a failure is told
    assert line.endswith(" # fikaso-certs renewal")
    assert certs.renewal_line(LAYOUT, "vps.example.com") == line
    assert certs.renewal_line(LAYOUT, "other.example.com") != line


def test_forced_renewal_command():
    assert certs.renew_script(LAYOUT, force=True) == "/srv/fikaso/stack/bin/fikaso-certs renew --force"


def _pem(issuer: str, days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "store.fikaso.test")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(42)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days, hours=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def test_status_shows_issuer_expiry_and_days_left_and_domains_without_one():
    fact = facts.certificates(LAYOUT, ["store.fikaso.test", "fikaso.test"])
    text = ("cert0=" + _b64(_pem("Pebble Intermediate CA 1a2b", 89)) + "\n"
            "renewal=17 3,15 * * * /srv/fikaso/stack/bin/fikaso-certs renew >> x 2>&1 # fikaso-certs renewal\n")
    found = fact.parse(Values.parse(text))
    assert found.certificates["fikaso.test"] is None and found.certificates["store.fikaso.test"].serial == 42
    assert "base64 -w0 /srv/fikaso/certificates/live/store.fikaso.test/cert.pem" in fact.script
    table = render_certificates(found, datetime.now(timezone.utc)).splitlines()
    assert table[1].split()[:5] == ["store.fikaso.test", "Pebble", "Intermediate", "CA", "1a2b"]
    assert table[1].endswith("  89")
    assert "no certificate: HTTP only (fab certs.issue)" in table[2]
    assert table[3].startswith("renewal: by cron at 03:17 and 15:17 server time")


def test_a_certificate_close_to_expiry_is_flagged():
    found = facts.certificates(LAYOUT, ["store.fikaso.test"]).parse(Values.parse("cert0=" + _b64(_pem("R11", 5))))
    assert "5  renew soon" in render_certificates(found, datetime.now(timezone.utc))


def test_failure_reason_is_the_acme_problem_certbot_reports():
    output = """Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:
  Domain: store.fikaso.test
  Type:   connection
  Detail: 127.0.0.1: Fetching http://store.fikaso.test/.well-known/acme-challenge/x: Connection refused

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot.
Some challenges have failed.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /etc/letsencrypt/logs/letsencrypt.log or re-run Certbot with -v for more details.
"""
    kind, detail = certs.failure_reason(output, 1)
    assert kind == "connection"
    assert detail == "127.0.0.1: Fetching http://store.fikaso.test/.well-known/acme-challenge/x: Connection refused"
    assert "DNS A/AAAA records" in certs.advice(kind, "store.fikaso.test", LAYOUT)


def test_failure_without_an_acme_problem_keeps_the_telling_line():
    output = ("Saving debug log to /etc/letsencrypt/logs/letsencrypt.log\n"
              "An unexpected error occurred:\nrequests.exceptions.SSLError: certificate verify failed\n"
              "Ask for help or search for solutions at https://community.letsencrypt.org.\n")
    assert certs.failure_reason(output, 1) == ("", "requests.exceptions.SSLError: certificate verify failed")


def test_proxy_config_is_checked_in_a_one_off_container_before_it_replaces_the_live_one():
    lines = proxy.apply_script(LAYOUT, "0123abcd").splitlines()
    assert lines[:10] == [
        "rm -rf /srv/fikaso/stack/nginx/proxy.next && mkdir -p /srv/fikaso/stack/nginx/proxy.next "
        "/srv/fikaso/stack/nginx/proxy",
        "cat > /srv/fikaso/stack/nginx/proxy.next/proxy.conf",
        "if ! check=$(cd /srv/fikaso/stack && docker compose run --rm --no-deps -T proxy_check 2>&1); then",
        "  printf '%s\\n' \"$check\" >&2",
        "  echo 'The new proxy configuration fails nginx -t; the live one is unchanged.' >&2",
        "  exit 1",
        "fi",
        "cp /srv/fikaso/stack/nginx/proxy.next/proxy.conf /srv/fikaso/stack/nginx/proxy/.proxy.conf.new",
        "mv -f /srv/fikaso/stack/nginx/proxy/.proxy.conf.new /srv/fikaso/stack/nginx/proxy/proxy.conf",
        "if [ -n \"$(cd /srv/fikaso/stack && docker compose ps --status running --quiet nginx_proxy 2>/dev/null)\" ]; then",
    ]
    # A running proxy is reloaded, and the script waits until it answers with the new config's id.
    assert lines[10] == "  cd /srv/fikaso/stack && docker compose exec -T nginx_proxy sh -c 'nginx -t -q && nginx -s reload'"
    waits = "\n".join(lines[11:])
    assert "wget -q -O - http://127.0.0.1:8080/proxy-health 2>/dev/null)\" = 'ok 0123abcd' ]" in waits
    assert "did not take up its new configuration" in waits


def test_the_proxy_config_carries_an_id_that_changes_with_it():
    http_only = proxy.render(SETTINGS, set())
    with_tls = proxy.render(SETTINGS, {"store.fikaso.test"})
    assert proxy.config_id(http_only) and proxy.config_id(with_tls)
    assert proxy.config_id(http_only) != proxy.config_id(with_tls)
    assert proxy.render(SETTINGS, set()) == http_only
