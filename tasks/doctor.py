"""`fab doctor`: one read-only check of the VPS (or every node of a swarm) and what visitors reach."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from fikaso import doctor as judge
from fikaso import facts, probes
from fikaso import secrets as fikaso_secrets
from fikaso.commands.compose import background
from fikaso.config import Public, Settings, check_sources
from fikaso.doctor import PROBLEM, Finding
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import SSHRemote
from fikaso.runner import Runner

from .common import fikaso_task, node_remote, open_remote, settings_of, target_host


def _peer(remote: SSHRemote) -> str:
    """The address this machine reached the VPS at over SSH: where its domains should point by default."""
    return remote.connection.client.get_transport().getpeername()[0]


def _addresses(public: Public, remote: SSHRemote) -> list[str]:
    return list(public.addresses) or [_peer(remote)]


def _ports(addresses: list[str], public: Public, domains: list[str], with_certificate: list[str]) -> list:
    answers = []
    for address in addresses:
        answers.append(probes.http_answer(address, public.http_port, domains[0]))
        answers.append(probes.tls_answer(address, public.https_port, with_certificate[0] if with_certificate else None))
    return answers


def _with_certificate(found) -> list[str]:
    return [domain for domain, cert in found.certificates.items() if cert is not None]


@fikaso_task
def doctor(c):
    """Check the VPS and how visitors reach it, and list each problem with its fix; change nothing.

    On the VPS (one SSH round trip, reading only): free disk (the base folder's and Docker's
    filesystems) and memory; the Docker engine's and Compose v2's versions; the clock against this
    machine's (and NTP, where systemd says); the stack's services; each domain's certificate and its
    days left; the cron daemon and Fikaso's cron entries (backup schedule, certificate renewal); the
    newest verified backup's age against the schedule.

    From this machine, as a visitor's would: each domain's DNS (the system's resolver) must give
    the VPS's public addresses only, and the proxy must answer on ports 80 and 443 there. The
    addresses default to the one SSH reaches the VPS at; set fikaso.public (addresses, http_port,
    https_port) when visitors come another way (README, "fab doctor").

    On a swarm (fikaso.nodes) every node is checked, each edge node's ports too, and the swarm's
    nodes and services as its first manager sees them.

    Prints one line per check (ok, WARNING or PROBLEM), then each warning's and problem's fix. Exits
    1 when there is a problem; warnings alone exit 0.
    """
    settings = settings_of(c)
    findings = [*_here(settings), *(_swarm(c, settings) if settings.swarm else _one_vps(c, settings))]
    print(judge.render(findings))
    count = len(judge.problems(findings))
    if count:
        raise FikasoError(f"fab doctor found {count} problem{'' if count == 1 else 's'}",
                          "Apply the fix under each numbered line above, then run `fab doctor` again")


HERE = "this machine"


def _here(settings: Settings) -> list[Finding]:
    """The configuration's side (fabric.yaml itself is valid, or nothing would run): the secrets and each
    site's source, read as setup and deploy read them."""
    out = []
    for check, read, detail in (("secrets", lambda: fikaso_secrets.load(settings), f"complete in {settings.secrets_dir}"),
                                ("sources", lambda: check_sources(settings), "every site's source folder is in place")):
        try:
            read()
        except FikasoError as error:
            out.append(Finding(check, HERE, PROBLEM, error.problem, error.fix))
        else:
            out.append(judge.ok(check, HERE, detail))
    return out


def _unreachable(host: str, error: Exception) -> Finding:
    if isinstance(error, FikasoError):
        return Finding("ssh", host, PROBLEM, error.problem, error.fix)
    return Finding("ssh", host, PROBLEM, f"cannot connect ({str(error).splitlines()[0] if str(error) else error!r})",
                   f"Check that the VPS runs and that `ssh {host} true` works from here")


def _one_vps(c, settings: Settings) -> list[Finding]:
    layout = Layout(settings.base_dir)
    domains = [site.domain for site in settings.sites]
    name = target_host(c, settings)
    try:
        remote = open_remote(c, settings)
    except (FikasoError, OSError) as error:
        # Nothing can be read there; what visitors reach can still be asked when its addresses are set.
        addresses = list(settings.public.addresses)
        return [_unreachable(name, error),
                *(judge.check_dns({d: probes.resolve(d) for d in domains}, set(addresses)) if addresses else []),
                *judge.check_ports(_ports(addresses, settings.public, domains, []))]
    runner = Runner.on(remote, name=name)
    asked = time.time()
    host, stack, crontab, certificates, backups, clock = runner.read(*probes.server_facts(layout, domains))
    answered = time.time()
    addresses = _addresses(settings.public, remote)
    dns = {domain: probes.resolve(domain) for domain in domains}
    ports = _ports(addresses, settings.public, domains, _with_certificate(certificates))
    offset, uncertainty = judge.clock_offset(host.now, asked, answered)
    return [
        *judge.check_host(name, host, offset, uncertainty),
        *judge.check_services(name, stack, background(settings)),
        *judge.check_dns(dns, set(addresses)),
        *judge.check_ports(ports),
        *judge.check_certificates(name, certificates, datetime.now(timezone.utc)),
        *judge.check_cron(name, crontab, certificates=bool(_with_certificate(certificates))),
        *judge.check_backups(name, backups, crontab.backup, clock),
        *judge.check_restores(name, stack.unfinished),
    ]


def _swarm(c, settings: Settings) -> list[Finding]:
    """Every node's own checks, the cluster as the primary sees it, certificates and renewal on the primary,
    backups and their schedule on the database node, and each edge node's ports."""
    layout = Layout(settings.base_dir, swarm=True)
    domains = [site.domain for site in settings.sites]
    primary, (database,) = settings.primary, settings.with_role("database")
    findings: list[Finding] = []
    reached = []
    for node in [primary, *(n for n in settings.nodes if n != primary)]:
        try:
            reached.append((node, node_remote(c, settings, node.host)))
        except (FikasoError, OSError) as error:
            findings.append(_unreachable(node.host, error))
    if not reached:
        return findings
    runner = Runner.group([(node.host, remote, node.roles) for node, remote in reached])
    asked = time.time()
    every = runner.read_all(probes.host(layout), probes.crontab())
    answered = time.time()
    names = {node.host for node, _ in reached}
    # The primary's facts and the database node's, in one round trip when one node is both.
    wanted = {primary.host: [facts.cluster(layout), facts.certificates(layout, domains)]}
    wanted.setdefault(database.host, []).extend([facts.backups(layout), facts.unfinished_restores(layout),
                                                 facts.clock()])
    read = {}
    for where, asking in wanted.items():
        if where in names:
            read.update(zip((fact.name for fact in asking), runner.read(*asking, on=where)))
    cluster, certificates = read.get("cluster"), read.get("certificates")
    backups, clock = read.get("backups"), read.get("clock")

    with_certificate = _with_certificate(certificates) if certificates else []
    expected: set[str] = set(settings.public.addresses)
    ports = []
    for (node, remote), (host, crontab) in zip(reached, every):
        offset, uncertainty = judge.clock_offset(host.now, asked, answered)
        findings += judge.check_host(node.host, host, offset, uncertainty)
        findings += judge.check_cron(node.host, crontab, certificates=node == primary and bool(with_certificate),
                                     backups=node == database)
        if "edge" in node.roles:
            addresses = _addresses(node.public, remote)
            if not settings.public.addresses:
                expected |= set(addresses)
            ports += _ports(addresses, node.public, domains, with_certificate)
    if cluster is not None:
        findings += judge.check_cluster(primary.host, cluster)
        findings += judge.check_certificates(primary.host, certificates, datetime.now(timezone.utc))
    if backups is not None:
        crontabs = {node.host: crontab for (node, _), (_, crontab) in zip(reached, every)}
        findings += judge.check_backups(database.host, backups, crontabs[database.host].backup, clock)
        findings += judge.check_restores(database.host, read["unfinished_restores"])
    findings += judge.check_dns({domain: probes.resolve(domain) for domain in domains}, expected)
    findings += judge.check_ports(ports)
    return findings
