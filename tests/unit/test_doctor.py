"""fab doctor: its setting, what it reads and how it reads it, and each judgement with its fix."""
import base64
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

import pytest

from fikaso import doctor, facts, probes
from fikaso.commands import certbot, cron
from fikaso.config import Public, load_settings
from fikaso.errors import FikasoError
from fikaso.facts import Backup, Certificate, CertificateFacts, Clock, Cluster, Service, StackFacts
from fikaso.commands.compose import SERVICES
from fikaso.layout import Layout
from fikaso.plan import Values, facts_script, parse_facts
from sandbox.vps import free_port

from .helpers import ROOT, http_server, shipped_section, swarm_section

LAYOUT = Layout(PurePosixPath("/srv/fikaso"))
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
GIB = 1024 ** 3


# ---- the setting --------------------------------------------------------------------------------

def test_public_defaults_to_the_ssh_address_and_ports_80_and_443():
    settings = load_settings(shipped_section(), root=ROOT)
    assert settings.public == Public((), 80, 443)


def test_public_addresses_and_ports_are_read_for_the_vps_and_for_each_node():
    section = shipped_section()
    section["public"] = {"addresses": ["203.0.113.10", "2001:db8::10"], "http_port": 8080, "https_port": 8443}
    assert load_settings(section, root=ROOT).public == Public(("203.0.113.10", "2001:db8::10"), 8080, 8443)
    nodes = [{"host": "a", "roles": ["manager", "database", "web", "edge"], "public": {"https_port": 4443}},
             {"host": "b", "roles": ["web", "edge"]}]
    first, second = load_settings(swarm_section(nodes), root=ROOT).nodes
    assert first.public == Public((), 80, 4443) and second.public == Public()


@pytest.mark.parametrize("public, says", [
    ({"addresses": ["store.example.com"]}, "fikaso.public.addresses must be a list of IP addresses"),
    ({"http_port": 0}, "fikaso.public.http_port must be a port number"),
    ({"https_port": "443"}, "fikaso.public.https_port must be a port number"),
    ({"address": ["203.0.113.10"]}, "fikaso.public.address is not a setting"),
    ("203.0.113.10", "fikaso.public must be a mapping"),
])
def test_bad_public_settings_are_named(public, says):
    section = shipped_section()
    section["public"] = public
    with pytest.raises(FikasoError, match=says.replace(".", r"\.")):
        load_settings(section, root=ROOT)


# ---- what is read on the server -----------------------------------------------------------------

def test_the_host_script_reads_this_machine_as_it_would_a_vps():
    """The host fact's script run here (the same bash settings as over SSH): every value parses."""
    fact = probes.host(Layout(PurePosixPath("/nonexistent/fikaso")))
    before = time.time()
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + facts_script([fact])], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (host,) = parse_facts([fact], done.stdout)
    assert before - 1 <= host.now <= time.time() + 1
    assert host.disks and host.disks[0].path == "/" and 0 < host.disks[0].free <= host.disks[0].size
    assert 0 < host.memory_available <= host.memory_total


def test_the_scripts_only_read():
    """No write, no restart: what could change a server is absent from every script doctor sends."""
    script = facts_script(probes.server_facts(LAYOUT, ["store.fikaso.test"]))
    for change in ("rm ", "mkdir", "crontab -\n", "| crontab", "docker run", "docker compose up", "restart",
                   "mv ", "tee ", "chmod", "kill"):
        assert change not in script, change
    assert all(">" not in line.replace("2>/dev/null", "").replace(">/dev/null", "").replace("2>&1", "")
               for line in script.splitlines() if "awk" not in line), script


def test_host_values_are_parsed_and_one_filesystem_is_shown_once():
    values = Values.parse("now=1796126400.250\nntp=no\ndocker=20.10.24+dfsg1\ncompose=2.29.1\n"
                          f"disk_base={100 * GIB} {40 * GIB} /srv/fikaso\n"
                          f"disk_docker={100 * GIB} {40 * GIB} /var/lib/docker\n"
                          "mem_total=2048000\nmem_available=1024000\n")
    host = probes._host(values)
    assert host.now == 1796126400.25 and host.ntp == "no" and host.docker.startswith("20.10")
    assert host.disks == (probes.Disk("/srv/fikaso", 100 * GIB, 40 * GIB),)
    assert host.memory_total == 2048000 * 1024


def test_crontab_tells_the_backup_schedule_from_the_renewal():
    line_backup = f"17 3 * * * /srv/fikaso/stack/bin/fikaso-backup scheduled {cron.MARKER}"
    line_renewal = f"5 4,16 * * * /srv/fikaso/stack/bin/fikaso-certs renew {certbot.MARKER}"
    found = probes.crontab().parse(Values.parse(f"line={line_backup}\nline={line_renewal}\ndaemon=yes"))
    assert found == probes.Crontab(line_backup, line_renewal, True)
    assert probes.crontab().parse(Values.parse("daemon=no")) == probes.Crontab()


# ---- seen from this machine ---------------------------------------------------------------------

def test_a_name_resolves_through_the_system_resolver_and_a_missing_one_says_why():
    addresses, why = probes.resolve("localhost")
    assert "127.0.0.1" in addresses and why == ""
    addresses, why = probes.resolve("no-such-name.invalid")
    assert addresses == set() and why


@pytest.fixture
def web_server():
    with http_server() as port:
        yield port


def test_a_port_answers_with_http_or_is_named_with_why_not(web_server):
    assert probes.http_answer("127.0.0.1", web_server, "store.fikaso.test") == \
        probes.PortAnswer("http", "127.0.0.1", web_server, answer="HTTP 200")
    port = free_port()
    answer = probes.http_answer("127.0.0.1", port, "store.fikaso.test")
    assert not answer.ok and answer.error == "Connection refused"
    assert not probes.tls_answer("127.0.0.1", port, "store.fikaso.test").ok


def test_tls_on_a_port_that_speaks_plain_http_is_no_answer(web_server):
    assert not probes.tls_answer("127.0.0.1", web_server, "store.fikaso.test").ok
    assert probes.tls_answer("127.0.0.1", web_server, None).ok    # no certificate yet: an open port is all


# ---- judgements ---------------------------------------------------------------------------------

def host(**changes) -> probes.HostFacts:
    base = dict(docker="27.3.1", compose="2.29.7", disks=(probes.Disk("/srv/fikaso", 80 * GIB, 40 * GIB),),
                memory_total=4 * GIB, memory_available=2 * GIB, now=1000.0, ntp="yes")
    return probes.HostFacts(**{**base, **changes})


def only(findings, check):
    (finding,) = [f for f in findings if f.check == check]
    return finding


def test_a_healthy_host_is_ok_everywhere():
    findings = doctor.check_host("vps", host(), 0.3, 0.2)
    assert {f.check for f in findings} == {"disk", "memory", "docker", "compose", "clock"}
    assert all(f.level == doctor.OK for f in findings) and doctor.exit_code(findings) == 0


@pytest.mark.parametrize("free, level", [(40 * GIB, "ok"), (int(4.5 * GIB), "warning"), (GIB, "problem"),
                                         (int(3.9 * GIB), "problem")])   # 3.9 of 80 GiB is under 5 %
def test_disk_headroom(free, level):
    finding = only(doctor.check_disks("vps", host(disks=(probes.Disk("/srv/fikaso", 80 * GIB, free),))), "disk")
    assert finding.level == level
    if level != "ok":
        assert "fab backup.list" in finding.fix and "docker image prune" in finding.fix


@pytest.mark.parametrize("available, level", [(2 * GIB, "ok"), (300 * 1024 ** 2, "warning"),
                                              (100 * 1024 ** 2, "problem")])
def test_memory_headroom(available, level):
    finding = only(doctor.check_memory("vps", host(memory_available=available)), "memory")
    assert finding.level == level
    assert level == "ok" or "docker stats" in finding.fix


@pytest.mark.parametrize("docker, compose, wrong, says", [
    ("", "2.29.7", "docker", "usermod -aG docker"),
    ("19.03.12", "2.29.7", "docker", "Upgrade Docker Engine"),
    ("27.3.1", "", "compose", "docker-compose-plugin"),
    ("27.3.1", "1.29.2", "compose", "docker-compose-plugin"),
])
def test_docker_and_compose_versions(docker, compose, wrong, says):
    findings = doctor.check_docker("vps", host(docker=docker, compose=compose))
    finding = only(findings, wrong)
    assert finding.level == doctor.PROBLEM and says in finding.fix
    assert all(f.level == doctor.OK for f in findings if f.check != wrong)
    assert doctor.check_docker("vps", host(compose="v5.6.1"))[1].level == doctor.OK


def test_the_clock_is_judged_beyond_what_the_round_trip_leaves_uncertain():
    assert doctor.clock_offset(1000.0, 990.0, 992.0) == (9.0, 1.0)
    assert only(doctor.check_clock("vps", host(), 1.5, 1.0), "clock").level == doctor.OK
    assert only(doctor.check_clock("vps", host(), 9.0, 1.0), "clock").level == doctor.WARNING
    late = only(doctor.check_clock("vps", host(), -95.0, 0.5), "clock")
    assert late.level == doctor.PROBLEM and "95.0 s behind" in late.detail and "timedatectl set-ntp true" in late.fix
    assert only(doctor.check_clock("vps", host(ntp="no"), 0.1, 0.1), "ntp").level == doctor.WARNING
    assert [f.check for f in doctor.check_clock("vps", host(ntp=""), 0.1, 0.1)] == ["clock"]


def stack(**unhealthy) -> StackFacts:
    services = {name: Service(name, "running", "healthy", running=1) for name in SERVICES}
    services.update({name: Service(name, state, health) for name, (state, health) in unhealthy.items()})
    return StackFacts(services=services)


def test_services_not_running_or_unhealthy_are_named():
    assert doctor.check_services("vps", stack())[0].level == doctor.OK
    finding = doctor.check_services("vps", stack(store_panel=("running", "unhealthy"), mysql=("exited", "")))[0]
    assert finding.level == doctor.PROBLEM and "mysql (exited)" in finding.detail
    assert "store_panel (running, unhealthy)" in finding.detail and "fab logs --service=NAME" in finding.fix
    assert doctor.check_services("vps", StackFacts())[0].fix == "Run `fab setup`"
    workers = doctor.check_services("vps", stack(), {"store_worker": 2})[0]
    assert workers.level == doctor.PROBLEM and "store_worker (0 of 2 running)" in workers.detail


def test_swarm_nodes_down_and_services_short_of_tasks_are_named():
    nodes = {"a": {"host": "node1", "state": "ready"}, "b": {"host": "node2", "state": "down"}}
    findings = doctor.check_cluster("node1", Cluster(nodes=nodes, services={"fikaso_store_panel": "1/2",
                                                                            "fikaso_mysql": "1/1"}))
    assert only(findings, "swarm").detail == "nodes not ready: node2"
    assert only(findings, "services").detail == "fewer tasks running than wanted: store_panel (1/2)"
    healthy = doctor.check_cluster("node1", Cluster(nodes={"a": nodes["a"]}, services={"fikaso_mysql": "1/1"}))
    assert doctor.exit_code(healthy) == 0


def test_dns_must_give_the_vps_addresses_and_only_them():
    findings = doctor.check_dns({"a.example.com": ({"203.0.113.10"}, ""),
                                 "b.example.com": ({"203.0.113.10", "198.51.100.7"}, ""),
                                 "c.example.com": (set(), "Name or service not known")}, {"203.0.113.10"})
    a, b, c = findings
    assert a.level == doctor.OK
    assert b.level == doctor.PROBLEM and b.detail == "resolves to 198.51.100.7, not to the VPS (203.0.113.10)"
    assert c.level == doctor.PROBLEM and c.detail == "does not resolve (Name or service not known)"
    assert "Point c.example.com's DNS records at 203.0.113.10" in c.fix


def test_a_port_that_does_not_answer_is_a_problem_with_the_firewall_to_check():
    findings = doctor.check_ports([probes.PortAnswer("http", "203.0.113.10", 80, answer="HTTP 308"),
                                   probes.PortAnswer("https", "203.0.113.10", 443, error="no answer within 5 s")])
    assert [(f.check, f.where, f.level) for f in findings] == [("port http", "203.0.113.10:80", "ok"),
                                                                ("port https", "203.0.113.10:443", "problem")]
    assert "security group" in findings[1].fix and "fikaso.public.http_port" in findings[1].fix


def certificate(days: float) -> Certificate:
    return Certificate("store.fikaso.test", "Pebble Intermediate CA", NOW + timedelta(days=days), 1)


@pytest.mark.parametrize("days, level", [(80.5, "ok"), (20.5, "warning"), (5.5, "problem"), (-2.5, "problem")])
def test_certificate_days_left(days, level):
    (finding,) = doctor.check_certificates("vps", CertificateFacts({"store.fikaso.test": certificate(days)}, "x"), NOW)
    assert finding.level == level and (level == "ok" or "fab certs.renew" in finding.fix)
    assert days > 0 or finding.detail.startswith("EXPIRED")


def test_a_domain_without_a_certificate_is_told_to_get_one():
    (finding,) = doctor.check_certificates("vps", CertificateFacts({"fikaso.test": None}, ""), NOW)
    assert finding.level == doctor.PROBLEM and finding.fix.startswith("Run `fab certs.issue --domain=fikaso.test`")


def test_cron_entries_and_the_daemon():
    backup = f"17 3 * * * job {cron.MARKER}"
    renewal = f"5 4,16 * * * job {certbot.MARKER}"
    assert doctor.exit_code(doctor.check_cron("vps", probes.Crontab(backup, renewal, True), certificates=True)) == 0
    missing = doctor.check_cron("vps", probes.Crontab("", "", False), certificates=True)
    assert [(f.check, f.level) for f in missing] == [("cron", "problem"), ("cron backup", "problem"),
                                                     ("cron renewal", "problem")]
    assert "fab backup.schedule" in missing[1].fix and "fab certs.issue" in missing[2].fix
    # No certificate yet: no renewal to expect. A swarm's web node keeps no backups.
    assert doctor.check_cron("vps", probes.Crontab(backup, "", True), certificates=False)[0].level == doctor.OK
    assert doctor.check_cron("node2", probes.Crontab("", "", True), certificates=False, backups=False) == []


def test_the_newest_verified_backup_must_be_as_fresh_as_the_schedule_promises():
    clock = Clock(NOW, timedelta(0))
    fresh = [Backup("20261201T031800Z", 10, "fikaso_store", "ok")]
    stale = [Backup("20261130T031800Z", 10, "fikaso_store", "ok"), Backup("20261201T031800Z", 10, "fikaso_store", "no")]
    line = f"17 3 * * * job {cron.MARKER}"
    assert doctor.check_backups("vps", fresh, line, clock)[0].level == doctor.OK
    (late,) = doctor.check_backups("vps", stale, line, clock)
    assert late.level == doctor.PROBLEM and "ran at 2026-12-01 03:17 UTC and left none" in late.detail
    assert "state/backup.log" in late.fix
    (none,) = doctor.check_backups("vps", [], line, clock)
    assert none.detail == "no verified backup on the server" and "fab backup.now" in none.fix


def test_a_restore_that_did_not_finish_is_a_problem_naming_both_ways_out(tmp_path):
    """The pending file as fikaso-backup writes it, read by the fact's own script; none when it is absent."""
    layout = Layout(PurePosixPath(str(tmp_path)))
    fact = facts.unfinished_restores(layout)

    def read() -> list:
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + facts_script([fact])], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return parse_facts([fact], done.stdout)[0]
    assert read() == [] and doctor.check_restores("vps", []) == []
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "restore.pending").write_text(
        "fikaso_store\t20261130T031700Z\t20261201T101500Z\t2026-12-01T10:15:02Z\n")
    (problem,) = doctor.check_restores("vps", read())
    assert problem.level == doctor.PROBLEM and problem.check == "restore"
    assert "fikaso_store from backup 20261130T031700Z" in problem.detail and "maintenance" in problem.detail
    assert "fab backup.restore --id=20261130T031700Z --database=fikaso_store` again" in problem.fix
    assert "fab backup.restore --id=20261201T101500Z --database=fikaso_store`" in problem.fix


def test_problems_make_the_exit_code_and_the_table_lists_each_fix():
    findings = [doctor.ok("disk", "vps", "40.0 GiB free"),
                doctor.Finding("ntp", "vps", doctor.WARNING, "not synchronised", "set-ntp"),
                doctor.Finding("dns", "store.fikaso.test", doctor.PROBLEM, "resolves elsewhere", "point it")]
    assert doctor.exit_code(findings[:2]) == 0 and doctor.exit_code(findings) == 1
    text = doctor.render(findings)
    lines = text.splitlines()
    assert lines[0].split() == ["CHECK", "WHERE", "STATE", "DETAIL"]
    assert lines[1].split() == ["disk", "vps", "ok", "40.0", "GiB", "free"]
    assert lines[2].split()[:3] == ["ntp", "vps", "WARNING"] and lines[2].endswith("[1]")
    assert lines[3].split()[:3] == ["dns", "store.fikaso.test", "PROBLEM"] and lines[3].endswith("[2]")
    assert "[2] problem: dns store.fikaso.test: resolves elsewhere\n    fix: point it" in text
    assert lines[-1] == "1 problem, 1 warning, 1 check ok"


def test_a_certificate_read_from_the_server_is_judged(tmp_path):
    """The certificates fact (shared with certs.status) feeds the judgement as it is."""
    pem = self_signed(10)
    now = datetime.now(timezone.utc)
    from fikaso import facts
    fact = facts.certificates(LAYOUT, ["store.fikaso.test"])
    (finding,) = doctor.check_certificates("vps", fact.parse(Values.parse(f"cert0={pem}")), now)
    assert finding.level == doctor.PROBLEM and finding.detail.startswith("10 days left")


# ---- the task, on stand-in servers --------------------------------------------------------------

def self_signed(days: int) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=days, hours=1))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def healthy_vps(domains) -> dict[str, str]:
    """What a well-kept VPS answers to each of doctor's facts."""
    import json
    now = datetime.now(timezone.utc)
    # Made this second, so that the daily schedule (03:17) cannot have run since, whatever the hour.
    made = now.strftime("%Y%m%dT%H%M%SZ")
    pem = self_signed(80)
    return {
        "doctor_host": f"now={time.time()}\nntp=yes\ndocker=27.3.1\ncompose=2.29.7\n"
                       f"disk_base={80 * GIB} {40 * GIB} /srv/fikaso\nmem_total=4000000\nmem_available=2000000",
        "stack": "\n".join("ps=" + json.dumps({"Service": s, "State": "running", "Health": "healthy"})
                           for s in (*SERVICES, "store_worker", "store_worker", "store_scheduler")),
        "doctor_crontab": f"line=17 3 * * * job {cron.MARKER}\nline=5 4,16 * * * job {certbot.MARKER}\ndaemon=yes",
        "certificates": "\n".join(f"cert{i}={pem}" for i in range(len(domains))) + "\nrenewal=5 4,16 * * * job",
        "backups": f"backup={made}\t100\tfikaso_admin,fikaso_store,fikaso_website\tok\tscheduled",
        "clock": f"utc={int(now.timestamp())}\noffset=+0000",
    }


def test_the_task_reads_one_vps_in_one_round_trip_changes_nothing_and_probes_its_ports(monkeypatch, web_server):
    from types import SimpleNamespace

    from tasks import doctor as task
    from .helpers import FactServer
    section = shipped_section()
    closed = free_port()
    section["public"] = {"http_port": web_server, "https_port": closed}
    settings = load_settings(section, root=ROOT)
    domains = [site.domain for site in settings.sites]
    server = FactServer(healthy_vps(domains))
    monkeypatch.setattr(task, "open_remote", lambda c, s: server)
    monkeypatch.setattr(task, "_peer", lambda remote: "127.0.0.1")
    monkeypatch.setattr(probes, "resolve", lambda name: ({"198.51.100.7" if name == "fikaso.test" else "127.0.0.1"}, ""))
    findings = task._one_vps(SimpleNamespace(), settings)
    assert server.channels == 1 and server.actions == []
    wrong = [(f.check, f.where) for f in doctor.problems(findings)]
    assert wrong == [("dns", "fikaso.test"), ("port https", f"127.0.0.1:{closed}")]
    assert [f.where for f in findings if f.check == "certificate"] == domains
    assert {f.check for f in findings} >= {"disk", "memory", "docker", "compose", "clock", "services", "dns",
                                           "port http", "port https", "certificate", "cron backup",
                                           "cron renewal", "backup"}


def test_on_a_swarm_every_node_is_checked_and_one_out_of_reach_is_a_problem(monkeypatch):
    from types import SimpleNamespace

    from tasks import doctor as task
    from .helpers import FactServer
    nodes = [{"host": "node1", "roles": ["manager", "database", "web", "edge"]},
             {"host": "node2", "roles": ["web", "edge"], "public": {"addresses": ["127.0.0.2"]}},
             {"host": "node3", "roles": ["web", "edge"]}]
    settings = load_settings(swarm_section(nodes), root=ROOT)
    domains = [site.domain for site in settings.sites]
    answers = healthy_vps(domains)
    answers["cluster"] = ("node=a node1 ready active 10.0.0.1 {}\nnode=b node2 ready active 10.0.0.2 {}\n"
                          "node=c node3 down active 10.0.0.3 {}\nservice=fikaso_mysql 1/1")
    servers = {"node1": FactServer(answers), "node2": FactServer({**answers, "doctor_crontab": "daemon=yes"})}

    def remote(c, s, host):
        if host not in servers:
            raise FikasoError(f"Cannot connect to {host}", "Check it")
        return servers[host]
    monkeypatch.setattr(task, "node_remote", remote)
    monkeypatch.setattr(task, "_peer", lambda remote: "127.0.0.1")
    monkeypatch.setattr(probes, "resolve", lambda name: ({"127.0.0.1", "127.0.0.2"}, ""))
    asked = []
    monkeypatch.setattr(probes, "http_answer", lambda a, p, d: asked.append((a, p)) or probes.PortAnswer("http", a, p, "HTTP 200"))
    monkeypatch.setattr(probes, "tls_answer", lambda a, p, d: probes.PortAnswer("https", a, p, "TLSv1.3"))
    findings = task._swarm(SimpleNamespace(), settings)
    assert all(server.actions == [] for server in servers.values())
    assert servers["node1"].channels == 2     # its own facts, then the primary's and the database node's at once
    wrong = [(f.check, f.where) for f in doctor.problems(findings)]
    assert wrong == [("ssh", "node3"), ("swarm", "node1")], wrong
    assert sorted(asked) == [("127.0.0.1", 80), ("127.0.0.2", 80)]
    # node1 keeps the backups and the certificates; node2 has neither, and is not asked for their cron entries.
    assert {(f.check, f.where) for f in findings if f.check.startswith("cron")} == {("cron backup", "node1"),
                                                                                     ("cron renewal", "node1")}
    assert {f.where for f in findings if f.check == "disk"} == {"node1", "node2"}


def test_this_machines_side_missing_secrets_and_a_missing_source_are_problems_with_their_fix(tmp_path):
    from tasks import doctor as task
    section = shipped_section()
    section["secrets_dir"] = str(tmp_path / "secrets")
    section["panels"]["admin"]["source"] = str(tmp_path / "no-app")
    secrets, sources = task._here(load_settings(section, root=ROOT))
    assert (secrets.check, secrets.where, secrets.level) == ("secrets", "this machine", doctor.PROBLEM)
    assert "fab secrets.generate" in secrets.fix, secrets
    assert sources.level == doctor.PROBLEM and "fikaso.panels.admin.source" in sources.fix


def test_a_vps_out_of_reach_is_a_problem_and_what_visitors_reach_is_still_checked(monkeypatch):
    from types import SimpleNamespace

    from tasks import doctor as task

    def refuse(c, s):
        raise FikasoError("The host key of deploy@203.0.113.10:22 has CHANGED", "Investigate")
    section = shipped_section()
    section["public"] = {"addresses": ["203.0.113.10"]}
    monkeypatch.setattr(task, "open_remote", refuse)
    monkeypatch.setattr(probes, "resolve", lambda name: ({"203.0.113.10"}, ""))
    monkeypatch.setattr(probes, "http_answer", lambda a, p, d: probes.PortAnswer("http", a, p, "HTTP 308"))
    monkeypatch.setattr(probes, "tls_answer", lambda a, p, d: probes.PortAnswer("https", a, p, error="timed out"))
    findings = task._one_vps(SimpleNamespace(), load_settings(section, root=ROOT))
    assert [(f.check, f.level) for f in findings][:1] == [("ssh", doctor.PROBLEM)]
    assert findings[0].fix == "Investigate"
    assert [f.check for f in doctor.problems(findings)] == ["ssh", "port https"]
    assert len([f for f in findings if f.check == "dns"]) == 4
