"""`fab status` and `fab logs`: what runs on the VPS, read in one round trip."""
from __future__ import annotations

from .errors import FikasoError
from .layout import Layout
from .remote import q
from .stack import SERVICES, SITES, Facts, compose, facts_script, parse_facts
from .tables import table


def status_script(layout: Layout) -> str:
    return facts_script(layout) + f"\necho \"disk=$(du -sh {q(layout.base)} 2>/dev/null | cut -f1)\""


def render_status(text: str, layout: Layout) -> str:
    facts: Facts = parse_facts(text)
    disk = next((line[5:] for line in text.splitlines() if line.startswith("disk=")), "") or "?"
    services = []
    for name in SERVICES:
        service = facts.services.get(name)
        services.append((name, service.state if service else "absent", (service.health or "-") if service else "-"))
    rows = [table(("SERVICE", "STATE", "HEALTH"), services), ""]
    rows.append(table(("SITE", "LIVE RELEASE"), [(site, facts.live.get(site, "none")) for site in SITES]))
    rows.append("")
    rows.append(f"disk used by {layout.base}: {disk}")
    healthy = sum(1 for name in SERVICES if name in facts.services and facts.services[name].healthy)
    rows.append(f"{healthy} of {len(SERVICES)} services running and healthy")
    return "\n".join(rows)


def logs_script(layout: Layout, service: str, tail: int, follow: bool) -> str:
    if service not in SERVICES:
        raise FikasoError(f"There is no service named {service!r}",
                          f"Use one of: {', '.join(SERVICES)}")
    if tail < 0:
        raise FikasoError(f"--tail must be 0 or more, not {tail}", "Pass a number of lines such as --tail=200")
    args = ["logs", "--no-color", "--timestamps", "--tail", tail]
    if follow:
        args.append("--follow")
    return compose(layout, *args, service)
