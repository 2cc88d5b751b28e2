"""Alerts from the VPS to a real HTTPS webhook: an nginx inside the test VPS that keeps every request
body it gets (client_body_in_file_only), with a certificate of its own CA."""
import contextlib
import datetime
import json
import shutil
import time
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox import vps

from .helpers import ROOT, fab, server_snapshot, ssh

RECEIVER = "fikaso_hooks"
URL = "https://localhost:9443/hook"
RECEIVER_CONF = """
server {
    listen 9443 ssl;
    ssl_certificate /hooks/tls/cert.pem;
    ssl_certificate_key /hooks/tls/key.pem;
    location / {
        client_body_in_file_only on;
        client_body_temp_path /hooks/bodies;
        proxy_pass http://127.0.0.1:9080;
    }
}
server {
    listen 127.0.0.1:9080;
    location / { return 200 "ok\\n"; }
}
"""


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def in_vps(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    command = vps.in_vps(*argv)
    if stdin is not None:        # docker exec passes stdin on only with -i
        command.insert(2, "-i")
    return subprocess.run(command, input=stdin, capture_output=True, check=False)


def received() -> list[dict]:
    """Every JSON body the webhook got so far."""
    out = in_vps("docker", "exec", RECEIVER, "sh", "-c", "cat /hooks/bodies/* 2>/dev/null; true").stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def webhook(deployed, tmp_path_factory):
    """The receiver running; a copy of the secrets naming it; the env that points fab at both."""
    folder = tmp_path_factory.mktemp("alerts")
    cert, key = self_signed()
    (folder / "ca.pem").write_bytes(cert)
    in_vps("docker", "rm", "--force", RECEIVER)
    for path, data in (("tls/cert.pem", cert), ("tls/key.pem", key), ("conf/hooks.conf", RECEIVER_CONF.encode())):
        made = in_vps("sh", "-c", f"mkdir -p /root/hooks/$(dirname {path}) && cat > /root/hooks/{path}", stdin=data)
        assert made.returncode == 0, made.stderr
    started = in_vps("docker", "run", "--detach", "--name", RECEIVER, "--publish", "127.0.0.1:9443:9443",
                     "--volume", "/root/hooks/tls:/hooks/tls:ro", "--volume", "/root/hooks/conf:/etc/nginx/conf.d:ro",
                     "nginx:1.27-alpine", "sh", "-c",
                     "mkdir -p /hooks/bodies && chmod 777 /hooks/bodies && exec nginx -g 'daemon off;'")
    assert started.returncode == 0, started.stderr
    secrets = folder / "secrets"
    shutil.copytree(ROOT / "secrets", secrets)
    (secrets / "alert_webhook_url").write_text(URL + "\n")
    env = {"FABRIC_FIKASO_SECRETS_DIR": str(secrets), "FABRIC_FIKASO_ALERTS_CA_BUNDLE": str(folder / "ca.pem")}
    setup = fab("setup", env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    yield {**deployed, "env": env, "secrets": secrets}
    in_vps("docker", "rm", "--force", RECEIVER)
    # The alert files off the VPS again, for the tests after these.
    assert fab("setup").returncode == 0


def test_a_test_alert_reaches_the_webhook_as_slack_style_json(webhook):
    sent = fab("alerts.test", env=webhook["env"])
    assert sent.returncode == 0 and "the test alert was delivered" in sent.stdout, sent.stdout + sent.stderr
    texts = [body["text"] for body in received()]
    assert any("a test alert from fab alerts.test" in text for text in texts), texts
    # The URL (the webhook's token) is on the server only in its secret file, never in a log.
    logs = ssh(webhook, "cat /srv/fikaso/state/*.log 2>/dev/null; crontab -l 2>/dev/null").stdout
    assert URL not in logs


@contextlib.contextmanager
def a_failing_backup_schedule(info):
    """A backup schedule whose backups cannot start (a file where the backups folder should be);
    both put back afterwards."""
    scheduled = fab("backup.schedule", "--cron=0 0 1 1 *", env=info["env"])
    assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
    assert ssh(info, "mkdir -p /srv/fikaso/backups && mv /srv/fikaso/backups /srv/fikaso/backups.away && "
                     "touch /srv/fikaso/backups").returncode == 0
    try:
        yield
    finally:
        ssh(info, "rm -f /srv/fikaso/backups && mv /srv/fikaso/backups.away /srv/fikaso/backups")
        fab("backup.unschedule", env=info["env"])


def test_a_failed_scheduled_backup_is_told_with_the_log_lines_that_say_why(webhook):
    with a_failing_backup_schedule(webhook):
        # The command exactly as cron runs it, from the crontab line (cron would wait for New Year).
        ran = ssh(webhook, "crontab -l | grep -F '# fikaso-backup schedule' | cut -d' ' -f6- | sh")
        assert ran.returncode == 0, ran.stderr   # the alert was delivered, so the line as a whole succeeds
    alerts = [body for body in received() if "the scheduled backup failed" in body["summary"]]
    assert alerts and "File exists" in alerts[-1]["text"], received()


def test_deploy_notices_are_sent_when_asked_for(webhook):
    env = {**webhook["env"], "FABRIC_FIKASO_ALERTS_DEPLOYS": "true"}
    deployed = fab("deploy", "--panel=landing", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert any(body["summary"].startswith("deploy of landing: ") and body["summary"].endswith(" is live")
               for body in received()), received()


def test_a_webhook_url_that_is_not_https_is_refused_before_anything_changes(webhook):
    (webhook["secrets"] / "alert_webhook_url").write_text("http://localhost:9080/hook\n")
    try:
        before = server_snapshot(webhook)
        refused = fab("setup", env=webhook["env"])
        assert refused.returncode == 1
        assert "does not hold an https:// URL" in refused.stderr, refused.stderr
        assert server_snapshot(webhook) == before
    finally:
        (webhook["secrets"] / "alert_webhook_url").write_text(URL + "\n")


# ---- email, through the VPS's own MTA (exim4 on the test VPS, local delivery only) ------------------

MAILBOX = "/var/mail/deploy"
# What cron gives a job: no login shell, PATH without /usr/sbin (where every MTA puts sendmail).
AS_CRON = "env -i HOME=/home/deploy LOGNAME=deploy SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c"


def mailbox(info: dict) -> str:
    return ssh(info, f"cat {MAILBOX} 2>/dev/null || true").stdout


def wait_for_mail(info: dict, phrase: str, seconds: float = 60) -> str:
    """The mailbox once a mail holding `phrase` is in it (exim delivers in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        text = mailbox(info)
        if phrase in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


@pytest.fixture(scope="module")
def email(deployed):
    """The stack set up to send alerts to deploy@localhost only (no webhook); the mailbox empty."""
    env = {"FABRIC_FIKASO_ALERTS_EMAIL": "deploy@localhost"}
    assert ssh(deployed, f"sudo -n rm -f {MAILBOX}").returncode == 0
    setup = fab("setup", env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    yield {**deployed, "env": env}
    ssh(deployed, f"sudo -n rm -f {MAILBOX}")
    assert fab("setup").returncode == 0


def test_a_failed_scheduled_backup_run_as_cron_runs_it_is_mailed_with_why(email):
    with a_failing_backup_schedule(email):
        # The crontab's command, in the environment cron gives it (cron would wait for New Year).
        ran = ssh(email, "line=$(crontab -l | grep -F '# fikaso-backup schedule' | cut -d' ' -f6-) && "
                         f"{AS_CRON} \"$line\" </dev/null")
        assert ran.returncode == 0, ran.stderr   # the alert was delivered, so the line as a whole succeeds
    mail = wait_for_mail(email, "the scheduled backup failed")
    assert "Subject: [fikaso] " in mail and "the scheduled backup failed" in mail, mail
    assert "To: deploy@localhost" in mail and "File exists" in mail, mail   # the log lines that say why
    log = ssh(email, "grep -F 'email to deploy@localhost' /srv/fikaso/state/alerts.log").stdout
    assert "sent: the scheduled backup failed" in log, log


def test_a_test_alert_is_mailed(email):
    sent = fab("alerts.test", env=email["env"])
    assert sent.returncode == 0 and "the test alert was delivered" in sent.stdout, sent.stdout + sent.stderr
    mail = wait_for_mail(email, "a test alert from fab alerts.test")
    assert "a test alert from fab alerts.test" in mail, mail
