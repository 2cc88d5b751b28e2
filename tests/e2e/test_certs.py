"""Certificates from a real ACME server (pebble, in the sandbox) and the proxy's TLS, end to end."""
import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509

from sandbox import vps

from .helpers import fab, fab_timed, http_only, ssh
from .load import StrictLoad

DOMAINS = ("admin.fikaso.test", "store.fikaso.test", "www.fikaso.test", "fikaso.test")
PAGES = {"admin.fikaso.test": "Hello from the admin database", "store.fikaso.test": "Hello from the store database",
         "www.fikaso.test": "Hello from the website database", "fikaso.test": "<title>"}


# Findings about pebble's certificates, not about the proxy (README.md, "Certificates and TLS"):
# pebble issues them for 5 years and with no CRL or OCSP address; Let's Encrypt's are valid for
# at most 90 days and name a CRL.
BECAUSE_OF_THE_TEST_CA = {"cert_validityPeriod", "cert_revocation"}


@pytest.fixture(scope="module")
def acme(deployed):
    """The ACME server running, and a first `certs.issue` in which store.fikaso.test pointed elsewhere."""
    http_only(deployed)
    started = fab("sandbox.acme")
    assert started.returncode == 0, started.stdout + started.stderr
    details = json.loads(started.stdout[started.stdout.index("{"):])
    vps.acme_point("store.fikaso.test", "127.0.0.1")  # nothing listens there: its challenge cannot be answered
    first = fab("certs.issue")
    # What visitors of the other domains get right after the failure, before anything is re-issued.
    after_failure = {domain: curl_https({**deployed, **details}, domain) for domain in DOMAINS
                     if domain != "store.fikaso.test"}
    vps.acme_point("store.fikaso.test", None)
    again = fab("certs.issue", "--domain=store.fikaso.test")
    yield {**deployed, **details, "first_issue": first, "after_failure": after_failure, "store_issue": again}
    http_only(deployed)  # for the other tests of the run


def tls_context(acme) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=acme["root"])


def served_certificate(acme, domain) -> x509.Certificate:
    with socket.create_connection(("127.0.0.1", acme["https_port"]), timeout=10) as sock:
        with tls_context(acme).wrap_socket(sock, server_hostname=domain) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def curl_https(acme, domain, *extra):
    port = acme["https_port"]
    return subprocess.run(["curl", "-sS", "--cacert", acme["root"], "--resolve", f"{domain}:{port}:127.0.0.1",
                           "-D", "-", *extra, f"https://{domain}:{port}/"], capture_output=True, text=True,
                          timeout=60)


def test_a_domain_that_fails_is_named_and_does_not_hold_back_the_others(acme):
    first = acme["first_issue"]
    assert first.returncode == 1
    message = first.stderr
    assert "No certificate for store.fikaso.test (connection:" in message, message
    assert "Point store.fikaso.test's DNS A/AAAA records at this VPS" in message, message
    assert "The proxy serves as before, with HTTPS for admin.fikaso.test, fikaso.test, www.fikaso.test" in message
    assert "certificate store.fikaso.test FAILED" in first.stdout, first.stdout
    for domain, result in acme["after_failure"].items():
        assert result.returncode == 0, f"{domain}: {result.stderr}"
        head, _, body = result.stdout.partition("\n\n")
        assert head.startswith("HTTP/2 200") and PAGES[domain] in body, f"{domain}: {head}"


def test_every_domain_serves_its_own_certificate_and_page_over_https(acme):
    again = acme["store_issue"]
    assert again.returncode == 0, again.stdout + again.stderr
    for domain in DOMAINS:
        result = curl_https(acme, domain)
        assert result.returncode == 0, result.stderr
        head, _, body = result.stdout.partition("\n\n")  # text mode has turned \r\n into \n
        assert head.startswith("HTTP/2 200"), head
        assert "strict-transport-security: max-age=63072000" in head.lower()
        assert PAGES[domain] in body
        names = served_certificate(acme, domain).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [domain]


def test_http_redirects_to_https_with_308_except_the_challenge_path(acme):
    for domain in DOMAINS:
        redirect = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                                   "-H", f"Host: {domain}", f"http://127.0.0.1:{acme['http_port']}/login?x=1"],
                                  capture_output=True, text=True, timeout=30)
        assert redirect.stdout == f"308 https://{domain}/login?x=1", redirect.stdout
    challenge = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: fikaso.test",
                                f"http://127.0.0.1:{acme['http_port']}/.well-known/acme-challenge/none"],
                               capture_output=True, text=True, timeout=30)
    assert challenge.stdout == "404"


def test_status_shows_each_certificate_and_the_renewal_schedule(acme):
    result = fab("certs.status")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.split()}
    for domain in DOMAINS:
        assert "Pebble Intermediate CA" in rows[domain], result.stdout
    assert "renewal: by cron at" in result.stdout
    cron = ssh(acme, "crontab -l")
    assert cron.stdout.count("# fikaso-certs renewal") == 1 and "fikaso-certs renew >>" in cron.stdout


def test_a_second_issue_changes_nothing(acme):
    again = fab("certs.issue")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "certs.issue: nothing changed" in again.stdout, again.stdout


def test_testssl_finds_nothing_of_medium_severity_or_worse(acme, tmp_path):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.skip("testssl.sh is not installed (make test installs it)")
    report = tmp_path / "testssl.json"
    started = time.monotonic()
    subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", acme["root"],
                    "--ip", "127.0.0.1", "--severity", "MEDIUM", "--jsonfile", str(report),
                    f"https://store.fikaso.test:{acme['https_port']}"],
                   capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(f"testssl.sh took {time.monotonic() - started:.1f} s")
    findings = [f for f in json.loads(report.read_text())
                if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL") and f["id"] not in BECAUSE_OF_THE_TEST_CA]
    assert findings == [], json.dumps(findings, indent=1)


def test_forced_renewal_replaces_certificates_without_failing_a_request(acme):
    before = served_certificate(acme, "store.fikaso.test").serial_number
    with StrictLoad(acme, "store.fikaso.test", "/up", tls=tls_context(acme)) as load:
        renewed, start, end, _ = fab_timed("certs.renew")
        load.settle(end)
        print(load.check(start, end, name="a forced renewal of every certificate"))
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert "the proxy serves the new certificates (read at each handshake: no reload)" in renewed.stdout
    assert served_certificate(acme, "store.fikaso.test").serial_number != before


def test_a_certificate_that_fails_nginx_t_never_reaches_the_proxy(acme):
    key = "/srv/fikaso/certificates/live/fikaso.test/privkey.pem"
    conf = "/srv/fikaso/stack/nginx/proxy/proxy.conf"
    # fikaso.test's key made unreadable, and the live config edited by hand so that setup rewrites it.
    broken = ssh(acme, f"cp -P {key} /tmp/privkey.link && ln -sfn /dev/null {key} && echo '# by hand' >> {conf}")
    assert broken.returncode == 0, broken.stderr
    try:
        live = ssh(acme, f"sha256sum {conf}").stdout
        result = fab("setup")
        assert result.returncode == 1
        assert "The certificates fail nginx -t" in result.stderr and "keeps serving the ones it has" in result.stderr, \
            result.stderr
        assert ssh(acme, f"sha256sum {conf}").stdout == live
        assert curl_https(acme, "fikaso.test").returncode == 0  # still served, with the key it has loaded
    finally:
        ssh(acme, f"mv -f /tmp/privkey.link {key}")
    assert fab("setup").returncode == 0
    assert "# by hand" not in ssh(acme, f"cat {conf}").stdout
