"""What users read: the tables of `fab status`, `fab certs.status` and `fab backup.list`."""
from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Mapping

from .commands.compose import SERVICES, SITES
from .commands.swarm import SWARM_SERVICES
from .config import ROLES
from .facts import Backup, CertificateFacts, Cluster, StackFacts
from .layout import Layout
from .swarm_stack import ROLE_LABEL
from .tables import table


def render_status(facts: StackFacts, layout: Layout, background: Mapping[str, int] = MappingProxyType({})) -> str:
    """`background`: the queue workers and schedulers asked for (service -> containers)."""
    disk = facts.disk or "?"
    services = []
    for name in SERVICES:
        service = facts.services.get(name)
        services.append((name, service.state if service else "absent", (service.health or "-") if service else "-"))
    rows = [table(("SERVICE", "STATE", "HEALTH"), services), ""]
    if background:
        rows += [table(("BACKGROUND", "RUNNING"),
                       [(name, f"{facts.services[name].running if name in facts.services else 0} of {wanted} running")
                        for name, wanted in background.items()]), ""]
    rows.append(table(("SITE", "LIVE RELEASE"), [(site, facts.live.get(site, "none")) for site in SITES]))
    rows.append("")
    rows.append(f"disk used by {layout.base}: {disk}")
    healthy = sum(1 for name in SERVICES if name in facts.services and facts.services[name].healthy)
    rows.append(f"{healthy} of {len(SERVICES)} services running and healthy")
    rows += [f"{database}: a restore did not finish, so it holds part of a backup and its panel stays in maintenance "
             "(`fab doctor` says how to finish or go back)" for database in sorted(facts.half_loaded)]
    return "\n".join(rows)


def render_swarm_status(cluster: Cluster, tasks: list[tuple[str, str, str]], live: dict[str, str]) -> str:
    """The swarm as its first manager sees it: each node and whether it is up, each service's tasks and
    where they run, each site's live release; a lost database node said first and plainly."""
    def roles(node: dict) -> list[str]:
        return [role for role in ROLES if node["labels"].get(ROLE_LABEL.format(role=role)) == "true"]
    nodes = sorted(cluster.nodes.values(), key=lambda n: n["host"])
    rows = []
    for node in nodes:
        if node["state"] != "ready":
            if "database" in roles(node):
                rows.append(f"THE DATABASE NODE {node['host']} IS {node['state'].upper()}: MySQL and its volume live "
                            "there, so the panels cannot reach their databases until it is back. Bring that VPS back; "
                            "its data is on its disk.")
    rows += [table(("NODE", "ROLES", "STATE", "ADDRESS"),
                   [(n["host"], ", ".join(roles(n)) or "-",
                     n["state"] if n["state"] == "ready" else n["state"].upper(), n["address"]) for n in nodes]), ""]
    where: dict[str, list[str]] = {}
    for service, node, state in tasks:
        where.setdefault(service, []).append(f"{node} ({state.split(' ')[0].lower()})")
    rows.append(table(("SERVICE", "TASKS", "RUNNING ON"),
                      [(name, cluster.services.get(f"fikaso_{name}", "absent"), ", ".join(sorted(where.get(name, [])))
                        or "-") for name in SWARM_SERVICES]))
    rows.append("")
    rows.append(table(("SITE", "LIVE RELEASE"), [(site, live.get(site, "none")) for site in SITES]))
    down = [n["host"] for n in nodes if n["state"] != "ready"]
    rows.append("")
    rows.append(f"{len(nodes) - len(down)} of {len(nodes)} nodes up" + (f"; down: {', '.join(down)}" if down else ""))
    return "\n".join(rows)


def render_certificates(found: CertificateFacts, now: datetime) -> str:
    certificates, renewal = found.certificates, found.renewal
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


def _age(backup_id: str, now: datetime) -> str:
    try:
        made = datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "?"
    seconds = int((now - made).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def render_backups(backups: list[Backup], now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    rows = [(b.id, _age(b.id, now), _size(b.size), b.kind, b.databases, b.verified) for b in backups]
    out = table(("BACKUP", "AGE", "SIZE", "KIND", "DATABASES", "VERIFIED"), rows,
                align=("left", "right", "right", "left", "left", "left"))
    return out if rows else out + "\n(no backups yet: `fab backup.now` makes one)"
