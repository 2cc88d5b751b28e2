"""`fab doctor` on the test VPS: a healthy stack passes; a removed cron entry, a domain pointing
elsewhere and a port that does not answer are each named with their fix; the server is unchanged.

DNS is what this machine's resolver says, as for a user. The test controls it the way a user would,
with a hosts file: `fab doctor` runs in a mount namespace of its own (unshare, as root) where the
test's file is mounted over /etc/hosts, so nothing of this machine's own resolution changes.
"""
import subprocess

import pytest
import yaml

from sandbox import vps

from .helpers import FAB, ROOT, http_only, server_snapshot, ssh
from .helpers import fab as run_fab

pytestmark = pytest.mark.e2e

DOMAINS = ("admin.fikaso.test", "store.fikaso.test", "www.fikaso.test", "fikaso.test")
ELSEWHERE = "192.0.2.7"     # TEST-NET-1: documentation only; doctor resolves names, it never connects there


@pytest.fixture(scope="module")
def healthy(deployed, tmp_path_factory):
    """What a well-kept VPS has: a certificate for every domain with its renewal scheduled, a backup
    schedule and a fresh verified backup. Put back to setup's state (HTTP only, no schedule) after."""
    started = run_fab("sandbox.acme")
    assert started.returncode == 0, started.stdout + started.stderr
    issued = run_fab("certs.issue")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert run_fab("backup.schedule").returncode == 0
    before = set(ssh(deployed, "ls /srv/fikaso/backups 2>/dev/null").stdout.split())
    made = run_fab("backup.now")
    assert made.returncode == 0, made.stdout + made.stderr
    ours = set(ssh(deployed, "ls /srv/fikaso/backups").stdout.split()) - before
    folder = tmp_path_factory.mktemp("doctor")
    yield {**deployed, "folder": folder}
    assert run_fab("backup.unschedule").returncode == 0
    for backup in ours:
        ssh(deployed, f"rm -rf /srv/fikaso/backups/{backup}")
    http_only(deployed)


def run_doctor(folder, hosts: dict[str, str], config: dict | str) -> subprocess.CompletedProcess:
    """`fab -f CONFIG doctor` with `hosts` (domain -> address) as this machine's name resolution. `config`
    is read over fabric.yaml: a file, or settings written to one."""
    hosts_file = folder / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"{address} {domain}\n" for domain, address in hosts.items()))
    if not isinstance(config, str):
        (folder / "doctor.yaml").write_text(yaml.safe_dump({"fikaso": config}))
        config = str(folder / "doctor.yaml")
    argv = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts_file),
            *FAB, "-f", config, "doctor"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    print(result.stdout, result.stderr)
    return result


def doctor(info, hosts: dict[str, str], public: dict | None = None) -> subprocess.CompletedProcess:
    """doctor on the test VPS, whose ports 80 and 443 are mapped to other ports of this machine."""
    return run_doctor(info["folder"], hosts, {"public": public or {"http_port": info["http_port"],
                                                                   "https_port": info["https_port"]}})


def state(info) -> str:
    """The server as doctor could change it: files and containers, and the deploy user's crontab."""
    return server_snapshot(info) + ssh(info, "crontab -l").stdout


def rows(output: str) -> dict[tuple[str, str], str]:
    """(check, where) -> state, from the table doctor prints (columns found by the header's words)."""
    lines = output.splitlines()
    header = lines[0]
    starts = [header.index(word) for word in ("CHECK", "WHERE", "STATE", "DETAIL")]
    found = {}
    for line in lines[1:]:
        if not line.strip():
            break
        check, where, level = (line[a:b].strip() for a, b in zip(starts, starts[1:]))
        found[(check, where)] = level
    return found


def pointing_at_the_vps() -> dict[str, str]:
    return {domain: "127.0.0.1" for domain in DOMAINS}


def test_a_healthy_stack_passes_every_check_and_changes_nothing(healthy):
    before = state(healthy)
    result = doctor(healthy, pointing_at_the_vps())
    assert result.returncode == 0, result.stdout + result.stderr
    table = rows(result.stdout)
    for check in ("disk", "memory", "docker", "compose", "clock", "services", "cron backup", "cron renewal",
                  "backup"):
        assert table.get((check, "fikaso-test")) in ("ok", "WARNING"), (check, result.stdout)
    for domain in DOMAINS:
        assert table[("dns", domain)] == "ok" and table[("certificate", domain)] == "ok", result.stdout
    assert table[("port http", f"127.0.0.1:{healthy['http_port']}")] == "ok", result.stdout
    assert table[("port https", f"127.0.0.1:{healthy['https_port']}")] == "ok", result.stdout
    assert "0 problems" in result.stdout
    assert state(healthy) == before


def test_a_missing_cron_entry_a_domain_elsewhere_and_a_dead_port_are_each_named_with_their_fix(healthy):
    crontab = ssh(healthy, "crontab -l").stdout
    assert "# fikaso-certs renewal" in crontab
    closed = vps.free_port()          # nothing listens there
    try:
        assert ssh(healthy, "crontab -l | grep -vF '# fikaso-certs renewal' | crontab -").returncode == 0
        broken = state(healthy)
        result = doctor(healthy, {**pointing_at_the_vps(), "store.fikaso.test": ELSEWHERE},
                        public={"http_port": healthy["http_port"], "https_port": closed})
        after = state(healthy)
    finally:
        restored = ssh(healthy, "crontab -", timeout=60, input=crontab)
    assert restored.returncode == 0, restored.stderr
    assert after == broken                      # doctor itself changed nothing
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fab doctor found 3 problems" in result.stderr, result.stderr
    table = rows(result.stdout)
    assert table[("cron renewal", "fikaso-test")] == "PROBLEM"
    assert table[("dns", "store.fikaso.test")] == "PROBLEM" and table[("dns", "admin.fikaso.test")] == "ok"
    assert table[("port https", f"127.0.0.1:{closed}")] == "PROBLEM"
    assert table[("port http", f"127.0.0.1:{healthy['http_port']}")] == "ok"
    out = result.stdout
    assert "no renewal of the certificates is scheduled" in out and "fix: Run `fab certs.issue`" in out
    assert f"store.fikaso.test: resolves to {ELSEWHERE}, not to the VPS (127.0.0.1)" in out
    assert "fix: Point store.fikaso.test's DNS records at 127.0.0.1" in out
    assert f"127.0.0.1:{closed}: does not answer (Connection refused)" in out
    assert "let ports 80 and 443 in" in out
    assert ssh(healthy, "crontab -l").stdout == crontab      # the test put it back


def test_doctor_explains_itself():
    result = run_fab("--help", "doctor")
    assert result.returncode == 0
    for words in ("change nothing", "fikaso.public", "warnings alone exit 0", "every node is checked"):
        assert words in result.stdout, result.stdout
