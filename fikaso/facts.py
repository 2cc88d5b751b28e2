"""Facts: what tasks decide from, each a script that reads the server and the parser of its lines.

Every fact speaks the one wire format of fikaso/plan.py (key=value lines), and a task reads all
the facts it needs before deciding, in as few round trips as it can.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography import x509

from .config import PANELS
from .layout import BUNDLE_HASH_FILE, SECRETS_HASH_FILE, Layout
from .plan import Fact, Values
from .shell import q
from .commands import backup as backup_commands
from .commands import certbot, cron, database, maintenance, php_fpm, php_image, release
from .commands.compose import NETWORK, SERVICES, SITES, compose
from .commands.swarm import DEPLOYED_HASH_FILE, default_address_lines, services_line
from .commands import lock


# ---- the stack: what setup, status and certs decide from -------------------------------------

@dataclass(frozen=True)
class Service:
    name: str
    state: str
    health: str
    image: str = ""
    running: int = 0     # its running containers (a service with replicas has several)

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "")


@dataclass
class StackFacts:
    user: str = ""
    uid: str = ""
    home: str = ""
    docker: str = ""
    compose: str = ""
    base_state: str = ""          # "missing", "writable" or "readonly"
    parent_writable: bool = False
    sudo: bool = False
    folders_missing: bool = True
    bundle_hash: str = ""
    secrets_hash: str = ""
    live: dict[str, str] = field(default_factory=dict)      # site -> live release id
    releases: dict[str, set[str]] = field(default_factory=dict)   # site -> its complete releases
    services: dict[str, Service] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    certificates: set[str] = field(default_factory=set)     # domains with a certificate on the server
    proxy_hash: str = ""          # sha256 of the live proxy config
    certificates_hash: str = ""   # sha256 of every live certificate and key (a swarm's nodes compare it)
    published_hash: str = ""      # the certificates_hash the proxy's copies were last made from
    disk: str = ""                # du -sh of the base folder (status only)
    memory_mb: int = 0            # the VPS's memory (MemTotal), which PHP-FPM pools are sized from
    pools: dict[str, int] = field(default_factory=dict)    # panel -> pm.max_children its pool file gives
    unfinished: list[UnfinishedRestore] = field(default_factory=list)   # restores that stopped while they loaded

    @property
    def half_loaded(self) -> set[str]:
        """The databases those restores left holding part of a backup."""
        return {restore.database for restore in self.unfinished}

    def all_healthy(self) -> bool:
        return all(name in self.services and self.services[name].healthy for name in SERVICES)


# The engine's version ("" when the user cannot reach it) and Compose v2's ("" without the plugin).
DOCKER_VERSION_LINES = (
    "echo \"docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)\"",
    'echo "compose=$(docker compose version --short 2>/dev/null || true)"',
)


def _stack_script(layout: Layout, disk: bool) -> str:
    base = q(layout.base)
    folders = " ".join(q(p) for p in layout.folders())
    lines = [
        'echo "user=$(id -un)"', 'echo "uid=$(id -u)"', 'echo "home=$HOME"',
        *DOCKER_VERSION_LINES,
        f"if [ ! -e {base} ]; then echo base=missing; elif [ -w {base} ]; then echo base=writable; "
        "else echo base=readonly; fi",
        f"if [ -w {q(layout.base.parent)} ]; then echo parent_writable=yes; fi",
        'if sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi',
        f"missing=no; for d in {folders}; do [ -d \"$d\" ] || missing=yes; done; echo \"folders_missing=$missing\"",
        f"echo \"bundle=$(cat {q(layout.stack / BUNDLE_HASH_FILE)} 2>/dev/null || true)\"",
        f"echo \"secrets=$(cat {q(layout.secrets / SECRETS_HASH_FILE)} 2>/dev/null || true)\"",
        f"for f in {q(layout.certificates)}/live/*/fullchain.pem; do "
        '[ -s "$f" ] && echo "certificate=$(basename "$(dirname "$f")")"; done',
        f"echo \"certificates_hash=$(cd {q(layout.certificates)} 2>/dev/null && {certbot.digest_command()})\"",
        f"echo \"published_hash=$(cat {q(layout.published_stamp)} 2>/dev/null || true)\"",
        f"if [ -f {q(layout.proxy_config)} ]; then echo \"proxy=$(sha256sum {q(layout.proxy_config)} | cut -c1-64)\"; fi",
        "awk '/^MemTotal:/ {print \"memory_kb=\" $2}' /proc/meminfo",
        *(php_fpm.read_command(layout, panel) for panel in PANELS),
        _unfinished_lines(layout),
    ]
    for site in SITES:
        lines.append(f"for r in {q(layout.releases(site))}/*; do [ -d \"$r\" ] && "
                     f"echo \"release_{site}=$(basename \"$r\")\"; done 2>/dev/null || true")
        lines.append(f"echo \"live_{site}=$(basename \"$(readlink {q(layout.current(site))} 2>/dev/null)\" "
                     "2>/dev/null || true)\"")
    lines += [
        "docker image ls --format 'image={{.Repository}}:{{.Tag}}' 2>/dev/null || true",
        f"if [ -f {q(layout.stack / 'compose.yaml')} ]; then "
        + compose(layout, "ps", "--all", "--format", "json") + " 2>/dev/null | sed 's/^/ps=/' || true; fi",
    ]
    if disk:
        lines.append(f"echo \"disk=$(du -sh {q(layout.base)} 2>/dev/null | cut -f1)\"")
    return "\n".join(lines)


def _services(values: list[str]) -> dict[str, Service]:
    rows = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        parsed = json.loads(value)
        rows.extend(parsed if isinstance(parsed, list) else [parsed])
    running: dict[str, int] = {}
    for row in rows:
        running[row["Service"]] = running.get(row["Service"], 0) + (row.get("State") == "running")
    return {row["Service"]: Service(row["Service"], row.get("State", ""), row.get("Health", ""), row.get("Image", ""),
                                    running[row["Service"]])
            for row in rows}


def parse_stack(values: Values) -> StackFacts:
    facts = StackFacts()
    for key in ("user", "uid", "home", "docker", "compose", "disk"):
        setattr(facts, key, values.one(key))
    facts.base_state = values.one("base")
    facts.parent_writable = values.flag("parent_writable")
    facts.sudo = values.flag("sudo")
    facts.folders_missing = values.one("folders_missing", "yes") == "yes"
    facts.bundle_hash = values.one("bundle")
    facts.secrets_hash = values.one("secrets")
    facts.certificates = set(values.all("certificate"))
    facts.proxy_hash = values.one("proxy")
    facts.certificates_hash = values.one("certificates_hash")
    facts.published_hash = values.one("published_hash")
    facts.images = set(values.all("image"))
    facts.live = {site: value for site, value in values.with_prefix("live_").items() if value}
    for site in SITES:
        facts.releases[site] = {r for r in values.all(f"release_{site}") if r and not r.endswith(".partial")}
    facts.services = _services(values.all("ps"))
    facts.memory_mb = int(values.one("memory_kb") or 0) // 1024
    facts.pools = {panel: int(value) for panel in PANELS if (value := values.one(f"pool_{panel}")).isdigit()}
    facts.unfinished = _unfinished(values)
    return facts


def stack(layout: Layout, disk: bool = False) -> Fact[StackFacts]:
    """The server and the stack on it: user, Docker, folders, hashes of what setup uploaded, live
    releases, images, services, certificates (and the disk used, for `fab status`)."""
    return Fact("stack", _stack_script(layout, disk), parse_stack)


def database_logins(layout: Layout) -> Fact[bool]:
    """Whether every panel user logs in to its own database with its current password."""
    check = database.logins_check(layout)
    return Fact("database_logins", f"if {check} 2>/dev/null; then echo logins=yes; else echo logins=no; fi",
                lambda values: values.flag("logins"))


# ---- one site's releases: what deploy and rollback decide from --------------------------------

@dataclass
class SiteState:
    stack: bool = False
    live: str = ""
    releases: list[str] = field(default_factory=list)
    image: str = ""
    uid: str = ""
    log: list[dict] = field(default_factory=list)
    manifest: dict[str, str] = field(default_factory=dict)

    def entry(self, release_id: str) -> dict:
        """The newest log record of a release (empty if it has none)."""
        for record in reversed(self.log):
            if record.get("id") == release_id:
                return record
        return {}

    def complete_releases(self) -> list[str]:
        return sorted(r for r in self.releases if not r.endswith(".partial"))

    def went_live(self) -> list[str]:
        """The releases in the order they went live: by a deploy or setup, or back by a rollback."""
        order = []
        for record in self.log:
            if record.get("event") == "rollback":
                order.append(record.get("to", ""))
            elif record.get("id") and record.get("result", "ok") == "ok":
                order.append(record["id"])
        return order

    def rolled_back(self) -> set[str]:
        """The releases a rollback went back from."""
        return {record.get("from", "") for record in self.log if record.get("event") == "rollback"}


def _site_script(layout: Layout, site: str) -> str:
    current = layout.current(site)
    manifest = f"{current}/{release.MANIFEST_FILE}"
    return "\n".join([
        f"if [ -f {q(layout.stack / 'compose.yaml')} ]; then echo stack=yes; else echo stack=no; fi",
        f"echo \"live=$(basename \"$(readlink {q(current)} 2>/dev/null)\" 2>/dev/null || true)\"",
        f"ls -1 {q(layout.releases(site))} 2>/dev/null | sed 's/^/release=/' || true",
        *([f"echo \"image=$({php_image.live_image(site, layout.swarm)} || true)\""] if site in PANELS else []),
        "echo \"uid=$(id -u)\"",
        f"if [ -f {q(layout.release_log(site))} ]; then tail -n 200 {q(layout.release_log(site))} "
        "| sed 's/^/log=/'; fi",
        f"if [ -f {q(manifest)} ]; then sed 's/^/manifest=/' {q(manifest)}; fi",
    ])


def parse_site(values: Values) -> SiteState:
    state = SiteState(stack=values.flag("stack"), live=values.one("live"), image=values.one("image"),
                      uid=values.one("uid"))
    state.releases = [r for r in values.all("release") if r]
    for line in values.all("log"):
        try:
            state.log.append(json.loads(line))
        except ValueError:
            pass
    state.manifest = release.parse_manifest(values.all("manifest"))
    return state


def site(layout: Layout, name: str) -> Fact[SiteState]:
    """A site's releases, the live one and its file manifest, its release log, its PHP image."""
    return Fact("site", _site_script(layout, name), parse_site)


def migrations_run(layout: Layout, database: str) -> Fact[set[str]]:
    """The Laravel migrations that have run in a panel's database."""
    return Fact("migrations", f"{backup_commands.migrations_script(layout, database)} | sed 's/^/ran=/'",
                lambda values: set(values.all("ran")))


def in_maintenance(layout: Layout, panel: str) -> Fact[bool]:
    """Whether a panel is in a maintenance mode that a person asked for (`maintenance.on`, `artisan
    down`), not one a failed deploy left: a deploy that migrates in maintenance leaves the first as it is."""
    return Fact("maintenance", maintenance.is_down_script(layout, panel),
                lambda values: values.flag("down") and not values.flag("deploy"))


def lock_holder(layout: Layout, name: str) -> Fact[tuple[bool, str]]:
    """Whether the site's deploy lock is held, and what its holder recorded."""
    return Fact("lock", lock.holder_script(layout, name),
                lambda values: (bool(values.all(lock.LOCKED_KEY)), values.one(lock.LOCKED_KEY)))


# ---- certificates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Certificate:
    domain: str
    issuer: str
    expires: object     # datetime
    serial: int

    def days_left(self, now) -> int:
        return (self.expires - now).days


def _certificate(domain: str, pem: bytes) -> Certificate:
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME) or \
        cert.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return Certificate(domain, str(names[0].value) if names else cert.issuer.rfc4514_string(),
                       cert.not_valid_after_utc, cert.serial_number)


@dataclass(frozen=True)
class CertificateFacts:
    certificates: dict            # domain -> Certificate, or None when it has none
    renewal: str                  # the renewal cron line, "" when not scheduled


def certificates(layout: Layout, domains: list[str]) -> Fact[CertificateFacts]:
    lines = []
    for index, domain in enumerate(domains):
        path = layout.certificates / "live" / domain / "cert.pem"
        lines.append(f"if [ -s {q(path)} ]; then echo \"cert{index}=$(base64 -w0 {q(path)})\"; fi")
    lines.append(cron.entry_script(certbot.MARKER, "renewal"))

    def parse(values: Values) -> CertificateFacts:
        found = {}
        for index, domain in enumerate(domains):
            pem = values.one(f"cert{index}")
            found[domain] = _certificate(domain, base64.b64decode(pem)) if pem else None
        return CertificateFacts(found, values.one("renewal"))
    return Fact("certificates", "\n".join(lines), parse)


def cron_entry(marker: str) -> Fact[str]:
    """The deploy user's crontab line that carries `marker` ("" when there is none)."""
    return Fact("cron", cron.entry_script(marker, "line"), lambda values: values.one("line"))


@dataclass(frozen=True)
class Clock:
    utc: datetime          # the server's clock
    offset: timedelta      # its local time's offset from UTC, in which cron reads schedules


def clock() -> Fact[Clock]:
    def parse(values: Values) -> Clock:
        offset = values.one("offset", "+0000")
        sign = -1 if offset.startswith("-") else 1
        minutes = int(offset[-4:-2]) * 60 + int(offset[-2:]) if offset[-4:].isdigit() else 0
        return Clock(datetime.fromtimestamp(int(values.one("utc", "0") or 0), timezone.utc),
                     timedelta(minutes=sign * minutes))
    return Fact("clock", 'echo "utc=$(date -u +%s)"; echo "offset=$(date +%z)"', parse)


# ---- backups ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backup:
    id: str
    size: int
    databases: str
    verified: str
    kind: str = "manual"     # manual, scheduled, "snapshot of <site> release <id>", "safety before restoring <id>"

    def holds(self, database: str) -> bool:
        return database in self.databases.split(",")

    @property
    def made(self) -> datetime | None:
        """When it was made (its id), or None for an id of another form."""
        try:
            return datetime.strptime(self.id, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None


def backups(layout: Layout) -> Fact[list[Backup]]:
    """The complete backups on the server, oldest first."""
    def parse(values: Values) -> list[Backup]:
        out = []
        for line in values.all("backup"):
            parts = line.split("\t")
            if len(parts) in (4, 5) and parts[1].isdigit():
                out.append(Backup(parts[0], int(parts[1]), *parts[2:]))
        return sorted(out, key=lambda b: b.id)
    return Fact("backups", f"{backup_commands.list_script(layout)} | sed 's/^/backup=/'", parse)


@dataclass(frozen=True)
class UnfinishedRestore:
    """A restore that stopped while it loaded: its database holds part of `backup`, and its panel stays
    in maintenance until a restore of it finishes; `safety` holds the database as it was before."""
    database: str
    backup: str
    safety: str
    since: str

    @property
    def problem(self) -> str:
        return (f"the restore of {self.database} from backup {self.backup} (begun {self.since}) did not finish: "
                f"{self.database} holds part of it and its panel stays in maintenance")

    @property
    def ways_out(self) -> str:
        return (f"Run `fab backup.restore --id={self.backup} --database={self.database}` again, or go back to how it "
                f"was with `fab backup.restore --id={self.safety} --database={self.database}`")


def _unfinished_lines(layout: Layout) -> str:
    return f"{backup_commands.unfinished_restores_script(layout)} | sed 's/^/unfinished=/'"


def _unfinished(values: Values) -> list[UnfinishedRestore]:
    lines = (line.split("\t") for line in values.all("unfinished"))
    return [UnfinishedRestore(*parts) for parts in lines if len(parts) == 4]


def unfinished_restores(layout: Layout) -> Fact[list[UnfinishedRestore]]:
    """Restores that stopped while they loaded (the stack fact holds them too)."""
    return Fact("unfinished_restores", _unfinished_lines(layout), _unfinished)


@dataclass(frozen=True)
class BackupFiles:
    exists: bool
    sizes: dict
    sums: dict


def backup_files(layout: Layout, backup_id: str) -> Fact[BackupFiles]:
    """A backup's files with their sizes, and its SHA256SUMS."""
    folder = layout.base / "backups" / backup_id
    script = (f"(if cd {q(folder)} 2>/dev/null && [ -f manifest ]; then\n"
              "  echo exists=yes\n"
              "  for f in *; do printf 'file=%s %s\\n' \"$(stat -c %s \"$f\")\" \"$f\"; done\n"
              "  sed 's/^/sum=/' SHA256SUMS\n"
              "fi)")

    def parse(values: Values) -> BackupFiles:
        sizes, sums = {}, {}
        for line in values.all("file"):
            size, _, name = line.partition(" ")
            sizes[name] = int(size)
        for line in values.all("sum"):
            digest, name = line.split(maxsplit=1)
            sums[name] = digest
        return BackupFiles(values.flag("exists"), sizes, sums)
    return Fact("backup_files", script, parse)


# ---- a swarm: each node's own view, and the cluster as its first manager sees it ------------------

@dataclass(frozen=True)
class SwarmNode:
    state: str = ""           # "inactive", "active", "pending", "error", "locked"
    node_id: str = ""
    manager: bool = False
    address: str = ""         # the address of its default route
    curl: bool = False


def swarm_node() -> Fact[SwarmNode]:
    """This node's swarm membership, the address of its default route, and whether it has curl."""
    lines = [
        "echo \"state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)\"",
        "echo \"node=$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null || true)\"",
        "echo \"manager=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null || true)\"",
        *default_address_lines(),
        'echo "address=$address"',
        "if command -v curl >/dev/null; then echo curl=yes; fi",
    ]
    return Fact("swarm_node", "\n".join(lines),
                lambda v: SwarmNode(v.one("state"), v.one("node"), v.one("manager") == "true", v.one("address"),
                                    v.flag("curl")))


@dataclass
class Cluster:
    """The swarm as a manager sees it (empty on a node that is not one)."""

    nodes: dict[str, dict] = field(default_factory=dict)   # node id -> hostname, state, availability, labels
    network: str = ""                                      # the stack network's driver ("" if missing)
    worker_token: str = ""
    manager_token: str = ""
    services: dict[str, str] = field(default_factory=dict)  # service -> "running/desired"
    deployed: str = ""                                     # hash of the stack file last deployed


def cluster(layout: Layout) -> Fact[Cluster]:
    lines = [
        "if [ \"$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)\" = true ]; then",
        "  docker node ls --quiet | xargs docker node inspect --format "
        "'node={{.ID}} {{.Description.Hostname}} {{.Status.State}} {{.Spec.Availability}} {{.Status.Addr}} "
        "{{json .Spec.Labels}}' 2>/dev/null || true",
        "  echo \"worker_token=$(docker swarm join-token --quiet worker)\"",
        "  echo \"manager_token=$(docker swarm join-token --quiet manager)\"",
        f"  echo \"network=$(docker network inspect --format '{{{{.Driver}}}}' {NETWORK} 2>/dev/null || true)\"",
        f"  {services_line()} | sed 's/^/service=/'",
        "fi",
        f"echo \"deployed=$(cat {q(layout.stack / DEPLOYED_HASH_FILE)} 2>/dev/null || true)\"",
    ]

    def parse(values: Values) -> Cluster:
        nodes = {}
        for line in values.all("node"):
            node_id, host, state, availability, address, labels = line.split(" ", 5)
            nodes[node_id] = {"host": host, "state": state, "availability": availability, "address": address,
                              "labels": json.loads(labels) or {}}
        services = dict(line.split(" ", 1) for line in values.all("service") if " " in line)
        return Cluster(nodes, values.one("network"), values.one("worker_token"), values.one("manager_token"),
                       services, values.one("deployed"))
    return Fact("cluster", "\n".join(lines), parse)


def swarm_tasks() -> Fact[list[tuple[str, str, str]]]:
    """On a manager: every task of the stack that should be running: (service, node, current state)."""
    script = ("docker stack ps fikaso --filter desired-state=running "
              "--format 'task={{.Name}} {{.Node}} {{.CurrentState}}' 2>/dev/null || true")

    def parse(values: Values) -> list[tuple[str, str, str]]:
        out = []
        for line in values.all("task"):
            name, node, state = (line.split(" ", 2) + ["", ""])[:3]
            out.append((name.split(".")[0].removeprefix("fikaso_"), node, state))
        return out
    return Fact("swarm_tasks", script, parse)
