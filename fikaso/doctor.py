"""`fab doctor`'s judgement: from what was read (fikaso/probes.py) to findings, each with its fix.

Pure: no server and no network, so every rule is a unit test. A finding is "ok", a "warning"
(worth a look, not wrong yet) or a "problem" (something a visitor or a restore will notice, or
soon); any problem makes `fab doctor` exit 1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from .commands import cron
from .commands.compose import SERVICES
from .facts import Backup, CertificateFacts, Clock, Cluster, StackFacts, UnfinishedRestore
from .probes import Crontab, HostFacts, PortAnswer
from .tables import table

OK, WARNING, PROBLEM = "ok", "warning", "problem"

GIB = 1024 ** 3
MIB = 1024 ** 2
# Free disk below either bound of a pair: (bytes, share of the filesystem).
DISK_PROBLEM = (2 * GIB, 0.05)      # a deploy, a backup or MySQL may fail to write
DISK_WARNING = (5 * GIB, 0.10)
MEMORY_PROBLEM = (256 * MIB, 0.05)  # the kernel is about to kill processes (MySQL first, often)
MEMORY_WARNING = (512 * MIB, 0.10)
DOCKER_MINIMUM = (20, 10)           # the oldest engine the stack is tested on
COMPOSE_MINIMUM = (2, 0)            # Compose v2 (`docker compose`); v1 (`docker-compose`) reads the file otherwise
CLOCK_PROBLEM = 30.0                # seconds off: TLS, cron and backup ages go wrong
CLOCK_WARNING = 2.0
CERT_PROBLEM_DAYS = 14              # certbot renews at 30 days left: by 14 renewal has failed for two weeks
CERT_WARNING_DAYS = 29


@dataclass(frozen=True)
class Finding:
    check: str        # what was checked: disk, memory, docker, dns, ...
    where: str        # the VPS, the domain or the address it is about
    level: str        # OK, WARNING or PROBLEM
    detail: str       # what was seen
    fix: str = ""     # what to do (problems and warnings)


def ok(check: str, where: str, detail: str) -> Finding:
    return Finding(check, where, OK, detail)


def _size(count: int) -> str:
    return f"{count / GIB:.1f} GiB" if count >= GIB else f"{count / MIB:.0f} MiB"


def _below(free: int, share: float, bound: tuple[int, float]) -> bool:
    return free < bound[0] or share < bound[1]


def _version(text: str) -> tuple[int, ...] | None:
    found = re.match(r"v?(\d+)\.(\d+)", text.strip())
    return tuple(int(part) for part in found.groups()) if found else None


# ---- the server itself --------------------------------------------------------------------------

def check_disks(where: str, host: HostFacts) -> list[Finding]:
    if not host.disks:
        return [Finding("disk", where, WARNING, "could not read the free space (df gave nothing)",
                        "Run `df -h` on the VPS to see it")]
    out = []
    for disk in host.disks:
        detail = f"{_size(disk.free)} free of {_size(disk.size)} ({disk.share_free:.0%}) at {disk.path}"
        fix = (f"Free space on the filesystem of {disk.path}: `fab backup.list` shows backups you may remove "
               "(after `fab backup.pull` if you want to keep them), `docker image prune` (on the VPS) removes unused "
               "images, a lower fikaso.keep_releases keeps fewer releases; or grow the disk")
        if _below(disk.free, disk.share_free, DISK_PROBLEM):
            out.append(Finding("disk", where, PROBLEM, detail + ": deploys and backups may fail to write", fix))
        elif _below(disk.free, disk.share_free, DISK_WARNING):
            out.append(Finding("disk", where, WARNING, detail, fix))
        else:
            out.append(ok("disk", where, detail))
    return out


def check_memory(where: str, host: HostFacts) -> list[Finding]:
    if not host.memory_total:
        return [Finding("memory", where, WARNING, "could not read /proc/meminfo", "Run `free -m` on the VPS to see it")]
    share = host.memory_available / host.memory_total
    detail = f"{_size(host.memory_available)} available of {_size(host.memory_total)} ({share:.0%})"
    fix = ("Find what uses it (`docker stats --no-stream` and `top` on the VPS); fewer queue workers or PHP-FPM "
           "replicas, or a VPS with more memory, give room")
    if _below(host.memory_available, share, MEMORY_PROBLEM):
        return [Finding("memory", where, PROBLEM, detail + ": the kernel may kill MySQL or PHP-FPM", fix)]
    if _below(host.memory_available, share, MEMORY_WARNING):
        return [Finding("memory", where, WARNING, detail, fix)]
    return [ok("memory", where, detail)]


def check_docker(where: str, host: HostFacts) -> list[Finding]:
    return [
        _tool("docker", where, host.docker, DOCKER_MINIMUM,
              missing=("the deploy user cannot reach a Docker engine",
                       "Install Docker Engine on the VPS (docs.docker.com/engine/install), start it, and add the "
                       "deploy user to the docker group (`sudo usermod -aG docker USER`, then log in again)"),
              old=(f"Docker {host.docker} is older than {'.'.join(map(str, DOCKER_MINIMUM))}",
                   "Upgrade Docker Engine on the VPS (docs.docker.com/engine/install)"),
              good=f"Docker {host.docker}"),
        _tool("compose", where, host.compose, COMPOSE_MINIMUM,
              missing=("`docker compose` (Compose v2) is not installed",
                       "Install the Compose plugin on the VPS (the docker-compose-plugin package from Docker's "
                       "repository); the old docker-compose v1 does not read the stack's file"),
              old=(f"Compose {host.compose} is not Compose v2",
                   "Install the Compose plugin (docker-compose-plugin) on the VPS"),
              good=f"Compose {host.compose}"),
    ]


def _tool(check: str, where: str, reported: str, minimum: tuple[int, ...], *, missing: tuple[str, str],
          old: tuple[str, str], good: str) -> Finding:
    """One tool's version: none reported, older than `minimum`, or fine ((problem, fix) pairs)."""
    version = _version(reported)
    if version is None:
        return Finding(check, where, PROBLEM, *missing)
    if version < minimum:
        return Finding(check, where, PROBLEM, *old)
    return ok(check, where, good)


def clock_offset(server_now: float, asked: float, answered: float) -> tuple[float, float]:
    """The server's clock minus this machine's, and how far that figure may be off: the server read its
    clock at some moment between `asked` and `answered` (this machine's times around the round trip)."""
    middle = (asked + answered) / 2
    return server_now - middle, (answered - asked) / 2


def check_clock(where: str, host: HostFacts, offset: float, uncertainty: float) -> list[Finding]:
    out = []
    off = abs(offset) - uncertainty    # at least this far off
    way = "ahead of" if offset > 0 else "behind"
    detail = f"{abs(offset):.1f} s {way} this machine's"
    fix = ("Keep the VPS's clock in sync with NTP: `sudo timedatectl set-ntp true` (systemd-timesyncd), or install "
           "chrony; then check that this machine's clock is right too")
    if host.now <= 0:
        out.append(Finding("clock", where, WARNING, "could not read the server's clock", "Run `date -u` on the VPS"))
    elif off > CLOCK_PROBLEM:
        out.append(Finding("clock", where, PROBLEM, detail + ": certificates, cron and backup ages go wrong", fix))
    elif off > CLOCK_WARNING:
        out.append(Finding("clock", where, WARNING, detail, fix))
    else:
        out.append(ok("clock", where, f"in step with this machine's (within {max(uncertainty, 0.1):.1f} s)"))
    if host.ntp == "no":
        out.append(Finding("ntp", where, WARNING, "systemd says the clock is not synchronised with NTP",
                           "Run `sudo timedatectl set-ntp true` on the VPS, and `timedatectl timesync-status` to see "
                           "whether it reaches a time server"))
    return out


def check_host(where: str, host: HostFacts, offset: float, uncertainty: float) -> list[Finding]:
    return [*check_disks(where, host), *check_memory(where, host), *check_docker(where, host),
            *check_clock(where, host, offset, uncertainty)]


# ---- the stack ----------------------------------------------------------------------------------

def check_services(where: str, stack: StackFacts, background: Mapping[str, int] | None = None) -> list[Finding]:
    if not stack.services:
        return [Finding("services", where, PROBLEM, "the stack is not running (no service found)",
                        "Run `fab setup`")]
    wrong = []
    for name in SERVICES:
        service = stack.services.get(name)
        if service is None:
            wrong.append(f"{name} (absent)")
        elif not service.healthy:
            wrong.append(f"{name} ({service.state}{', ' + service.health if service.health else ''})")
    for name, wanted in (background or {}).items():
        running = stack.services[name].running if name in stack.services else 0
        if running < wanted:
            wrong.append(f"{name} ({running} of {wanted} running)")
    if wrong:
        return [Finding("services", where, PROBLEM, "not running or not healthy: " + ", ".join(wrong),
                        "`fab logs --service=NAME` shows why; `fab setup` starts what is missing again")]
    return [ok("services", where, f"{len(SERVICES)} services running and healthy")]


def check_cluster(where: str, cluster: Cluster) -> list[Finding]:
    out = []
    down = sorted(node["host"] for node in cluster.nodes.values() if node["state"] != "ready")
    if not cluster.nodes:
        return [Finding("swarm", where, PROBLEM, "this node is not a manager of a swarm", "Run `fab setup`")]
    if down:
        out.append(Finding("swarm", where, PROBLEM, f"nodes not ready: {', '.join(down)}",
                           "Bring those VPSs back (their Docker engine must run); `fab status` shows the swarm"))
    else:
        out.append(ok("swarm", where, f"{len(cluster.nodes)} nodes ready"))
    short = []
    for name, replicas in sorted(cluster.services.items()):
        running, _, desired = replicas.partition("/")
        if running.isdigit() and desired.split(" ")[0].isdigit() and int(running) < int(desired.split(" ")[0]):
            short.append(f"{name.removeprefix('fikaso_')} ({replicas})")
    if not cluster.services:
        out.append(Finding("services", where, PROBLEM, "the stack is not deployed on the swarm", "Run `fab setup`"))
    elif short:
        out.append(Finding("services", where, PROBLEM, "fewer tasks running than wanted: " + ", ".join(short),
                           "`fab status` shows where each runs and `fab logs --service=NAME` why one stopped; "
                           "`fab setup` deploys the stack again"))
    else:
        out.append(ok("services", where, f"{len(cluster.services)} services with every task running"))
    return out


# ---- seen from this machine -------------------------------------------------------------------

def check_dns(dns: Mapping[str, tuple[set[str], str]], expected: set[str]) -> list[Finding]:
    """Each domain must resolve, and only to the VPS's (or the edge nodes') public addresses."""
    out = []
    want = ", ".join(sorted(expected)) or "?"
    for domain, (addresses, why) in dns.items():
        fix = (f"Point {domain}'s DNS records at {want} (an A record per IPv4 address, AAAA per IPv6) at your DNS "
               "provider, and remove any other; if the VPS is reached at another address than Fikaso's SSH uses, "
               "set fikaso.public.addresses")
        if not addresses:
            out.append(Finding("dns", domain, PROBLEM, f"does not resolve ({why})", fix))
        elif not addresses <= expected:
            elsewhere = ", ".join(sorted(addresses - expected))
            out.append(Finding("dns", domain, PROBLEM, f"resolves to {elsewhere}, not to the VPS ({want})", fix))
        else:
            out.append(ok("dns", domain, f"resolves to {', '.join(sorted(addresses))}"))
    return out


def check_ports(answers: Sequence[PortAnswer]) -> list[Finding]:
    out = []
    for answer in answers:
        where = f"{answer.address}:{answer.port}"
        kind = answer.kind
        if answer.ok:
            out.append(ok(f"port {kind}", where, f"answers: {answer.answer}"))
        else:
            out.append(Finding(f"port {kind}", where, PROBLEM, f"does not answer ({answer.error})",
                               "Check that the proxy runs (`fab status`: nginx_proxy) and that the VPS's firewall and "
                               "the provider's (security group, cloud firewall) let ports 80 and 443 in; if they are "
                               "forwarded from other ports, set fikaso.public.http_port / https_port"))
    return out


# ---- certificates, cron, backups ----------------------------------------------------------------

def check_certificates(where: str, found: CertificateFacts, now: datetime) -> list[Finding]:
    out = []
    for domain, cert in found.certificates.items():
        if cert is None:
            out.append(Finding("certificate", domain, PROBLEM, "no certificate: served over HTTP only",
                               f"Run `fab certs.issue --domain={domain}` once its DNS points at the VPS"))
            continue
        days = cert.days_left(now)
        detail = f"{days} days left (expires {cert.expires:%Y-%m-%d}, {cert.issuer})"
        fix = ("Renewal has been failing: read state/certs.log on the VPS (" + where + "), fix the cause and run "
               "`fab certs.renew`")
        if days < 0:
            out.append(Finding("certificate", domain, PROBLEM, f"EXPIRED {-days} days ago ({cert.expires:%Y-%m-%d}): "
                               "browsers refuse the site", fix))
        elif days < CERT_PROBLEM_DAYS:
            out.append(Finding("certificate", domain, PROBLEM, detail, fix))
        elif days < CERT_WARNING_DAYS:
            out.append(Finding("certificate", domain, WARNING, detail + "; certbot renews at 30", fix))
        else:
            out.append(ok("certificate", domain, detail))
    return out


def check_cron(where: str, crontab: Crontab, certificates: bool, backups: bool = True) -> list[Finding]:
    """The cron daemon, and the entries Fikaso installs: the backup schedule (where backups are made) and
    the renewal of certificates (where there are certificates)."""
    out = []
    if not crontab.daemon:
        out.append(Finding("cron", where, PROBLEM, "no cron daemon runs: scheduled backups and renewals never start",
                           "Start it on the VPS: `sudo systemctl enable --now cron`"))
    if backups:
        if crontab.backup:
            out.append(ok("cron backup", where, f"scheduled: {cron.schedule_of(crontab.backup)}"))
        else:
            out.append(Finding("cron backup", where, PROBLEM, "no scheduled backup",
                               "Run `fab backup.schedule` (daily at 03:17 by default; --cron= for another time)"))
    if certificates:
        if crontab.renewal:
            out.append(ok("cron renewal", where, f"scheduled: {cron.schedule_of(crontab.renewal)}"))
        else:
            out.append(Finding("cron renewal", where, PROBLEM, "no renewal of the certificates is scheduled: they "
                               "expire within 90 days", "Run `fab certs.issue`: it schedules the renewal again"))
    return out


def check_backups(where: str, backups: Sequence[Backup], schedule: str, clock: Clock) -> list[Finding]:
    verified = [b.made for b in backups if b.verified == "ok" and b.made is not None]
    if not verified:
        return [Finding("backup", where, PROBLEM, "no verified backup on the server",
                        "Run `fab backup.now` (and `fab backup.schedule` for the next ones)")]
    newest = max(verified)
    hours = (clock.utc - newest).total_seconds() / 3600
    detail = f"newest verified backup {newest:%Y-%m-%d %H:%M} UTC ({hours:.0f} h ago)"
    due = cron.missed(schedule, verified, clock.utc, clock.offset)
    if due is not None:
        return [Finding("backup", where, PROBLEM, f"{detail}, but the schedule ({cron.schedule_of(schedule)}) ran at "
                        f"{due:%Y-%m-%d %H:%M} UTC and left none",
                        "Read state/backup.log and state/alerts.log on the VPS, fix the cause, then `fab backup.now`")]
    return [ok("backup", where, detail)]


def check_restores(where: str, unfinished: Sequence[UnfinishedRestore]) -> list[Finding]:
    """A restore that stopped half-way leaves its database half-loaded and its panel in maintenance."""
    return [Finding("restore", where, PROBLEM, restore.problem, restore.ways_out) for restore in unfinished]


# ---- the verdict --------------------------------------------------------------------------------

def problems(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == PROBLEM]


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when anything is a problem; warnings alone pass."""
    return 1 if problems(findings) else 0


def render(findings: Sequence[Finding]) -> str:
    """One row per finding, then each problem's and warning's fix, numbered as in the table."""
    rows, fixes = [], []
    for finding in findings:
        mark = ""
        if finding.level != OK:
            fixes.append(finding)
            mark = f" [{len(fixes)}]"
        rows.append((finding.check, finding.where, finding.level.upper() if finding.level != OK else OK,
                     finding.detail + mark))
    out = [table(("CHECK", "WHERE", "STATE", "DETAIL"), rows)]
    if fixes:
        out.append("")
        for number, finding in enumerate(fixes, 1):
            out.append(f"[{number}] {finding.level}: {finding.check} {finding.where}: {finding.detail}")
            out.append(f"    fix: {finding.fix}")
    count = len(problems(findings))
    warnings = sum(1 for f in findings if f.level == WARNING)
    out.append("")
    fine = len(findings) - count - warnings
    out.append(f"{count} problem{'' if count == 1 else 's'}, {warnings} warning{'' if warnings == 1 else 's'}, "
               f"{fine} check{'' if fine == 1 else 's'} ok")
    return "\n".join(out)
