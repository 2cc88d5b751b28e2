"""The `fikaso` section of fabric.yaml: read, validated and turned into Settings.

Validation runs before anything touches a server, so a typo never leaves a half-done VPS.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Mapping

from .errors import FikasoError

PANELS = ("admin", "store", "website")
PANEL_PORTS = {"admin": 8081, "store": 8082, "website": 8083}
LANDING_PORT = 8084
PREVIEW_OFFSET = 1000  # a site's nginx serves its `next` release on its port + this, inside only
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")
_HOST = re.compile(r"^[A-Za-z0-9._@:\[\]-]+$")
IMAGE_KEYS = ("mysql", "php_base", "php", "nginx", "composer", "certbot")
ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDRESS = re.compile(r"^[0-9a-fA-F.:]+$")
# What a VPS does in a swarm: managers run the swarm (the first is where Fikaso's records and the
# cluster-wide lock live), the database node holds MySQL and its volume, web nodes run the panels'
# PHP-FPM and nginx, edge nodes the proxy with ports 80 and 443.
ROLES = ("manager", "database", "web", "edge")
DEFAULT_REPLICAS = 2
MAX_WORKERS = 20
MAX_FPM_WORKERS = 100


@dataclass(frozen=True)
class Assets:
    """A panel's front-end build: run here, before the upload; its output ships in the release."""

    build: str                          # a shell command, run in a copy of the source
    inputs: tuple[str, ...] = ("package.json", "package-lock.json", "resources")
    output: str = "public/build"


@dataclass(frozen=True)
class Site:
    """A panel or the landing site: what the proxy routes a domain to."""

    name: str
    domain: str
    port: int
    source: Path
    health: str = "/"        # the page a deploy asks before and after the switch
    assets: Assets | None = None
    workers: int = 0         # a panel's queue workers (`artisan queue:work`)
    scheduler: bool = False  # a panel's scheduler (`artisan schedule:run` each minute)
    fpm_workers: int | None = None   # PHP-FPM's pm.max_children; None: sized from the VPS's memory


@dataclass(frozen=True)
class Certificates:
    """Where certificates come from: an ACME directory, an optional contact, an optional CA bundle."""

    acme_server: str = ACME_SERVERS["letsencrypt"]
    email: str = ""
    ca_bundle: Path | None = None      # local PEM file the ACME server's own HTTPS is signed by


@dataclass(frozen=True)
class Alerts:
    """Who hears of a failed scheduled backup or certificate renewal (and, if asked, of each deploy).

    The webhook's URL is a secret (it carries its own token): it lives in secrets/alert_webhook_url."""

    email: str = ""                    # through the server's sendmail, if it has one
    deploys: bool = False              # also a notice for every deploy and rollback
    ca_bundle: Path | None = None      # local PEM file the webhook's HTTPS is signed by, if private


@dataclass(frozen=True)
class Node:
    """One VPS of a swarm: how to reach it, what it does, and the address other nodes reach it at
    ("" lets Fikaso use the address of its default route)."""

    host: str
    roles: frozenset[str]
    address: str = ""


@dataclass(frozen=True)
class Settings:
    host: str | None
    base_dir: PurePosixPath
    secrets_dir: Path
    panels: tuple[Site, ...]
    landing: Site
    images: Mapping[str, str]
    keep_releases: int
    snapshot_before_migrations: bool = True
    restore_snapshot_on_failed_migrations: bool = False
    certificates: Certificates = Certificates()
    alerts: Alerts = Alerts()
    # Extra ssh_config files, read after ~/.ssh/config and /etc/ssh/ssh_config; missing ones are skipped.
    ssh_config: tuple[Path, ...] = ()
    # Several VPSs run the stack as a Docker Swarm when this is not empty (`host` is then unused).
    nodes: tuple[Node, ...] = ()
    # PHP-FPM replicas per panel on a swarm.
    replicas: Mapping[str, int] = field(default_factory=dict)

    @property
    def swarm(self) -> bool:
        return bool(self.nodes)

    def with_role(self, role: str) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if role in node.roles)

    @property
    def primary(self) -> Node:
        """The first manager: the swarm is formed there, and the cluster-wide lock and the release
        logs live there."""
        return self.with_role("manager")[0]

    @property
    def sites(self) -> tuple[Site, ...]:
        return (*self.panels, self.landing)

    def panel(self, name: str) -> Site:
        for site in self.panels:
            if site.name == name:
                return site
        raise FikasoError(
            f"There is no panel named {name!r}",
            f"Use one of: {', '.join(PANELS)}",
        )


def _invalid(key: str, problem: str, fix: str) -> FikasoError:
    return FikasoError(f"fabric.yaml: fikaso.{key} {problem}", fix)


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(key, f"must be a mapping, not {type(value).__name__}",
                       "Indent its keys under it, as in the fabric.yaml that ships with Fikaso")
    return value


def _text(section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{where}.{key}" if where else key, "is missing or empty",
                       f"Set {key}: to a non-empty string")
    return value.strip()


# Laravel 11 and later answer /up (bootstrap/app.php: ->withRouting(health: '/up')).
DEFAULT_HEALTH = "/up"
_HEALTH = re.compile(r"^/[A-Za-z0-9/._~-]*$")


def _site(name: str, port: int, raw: Any, where: str, root: Path) -> Site:
    section = _mapping(raw, where)
    domain = _text(section, "domain", where).lower()
    if not _DOMAIN.match(domain):
        raise _invalid(f"{where}.domain", f"is not a valid domain name: {domain!r}",
                       "Use a fully qualified name such as store.example.com")
    source = Path(_text(section, "source", where)).expanduser()
    if not source.is_absolute():
        source = root / source
    health = section.get("health", DEFAULT_HEALTH if name in PANELS else "/")
    if not isinstance(health, str) or not _HEALTH.match(health):
        raise _invalid(f"{where}.health", f"is not a path on the site: {health!r}",
                       f"Give the path of a page that answers 2xx when the app works, such as {DEFAULT_HEALTH} "
                       "(letters, digits and / . _ ~ - only)")
    assets = _assets(section.get("assets"), f"{where}.assets") if name in PANELS and section.get("assets") else None
    workers, scheduler, fpm_workers = 0, False, None
    if name in PANELS:
        workers = section.get("workers", 0)
        if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= MAX_WORKERS:
            raise _invalid(f"{where}.workers", f"must be a whole number from 0 to {MAX_WORKERS}, not {workers!r}",
                           "Give the number of queue workers the panel runs, such as 2, or 0 for none")
        scheduler = _flag(section, "scheduler", False, where)
        fpm_workers = section.get("fpm_workers")
        if fpm_workers is not None and (not isinstance(fpm_workers, int) or isinstance(fpm_workers, bool)
                                        or not 1 <= fpm_workers <= MAX_FPM_WORKERS):
            raise _invalid(f"{where}.fpm_workers", f"must be a whole number from 1 to {MAX_FPM_WORKERS}, not "
                           f"{fpm_workers!r}", "Give the most requests the panel's PHP-FPM serves at once, such as "
                           "16, or leave the key out to size it from the VPS's memory")
    return Site(name=name, domain=domain, port=port, source=source, health=health, assets=assets,
                workers=workers, scheduler=scheduler, fpm_workers=fpm_workers)


def _relative(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or value.startswith("/") or ".." in value.split("/"):
        raise _invalid(key, f"must be a path inside the app, not {value!r}", "Give a relative path such as resources")
    return value.strip().rstrip("/")


def _assets(raw: Any, where: str) -> Assets:
    section = _mapping(raw, where)
    build = section.get("build")
    if not isinstance(build, str) or not build.strip():
        raise _invalid(f"{where}.build", "is missing", "Give the command that builds the assets, such as "
                       "npm ci && npm run build")
    inputs = section.get("inputs", list(Assets.inputs))
    if not isinstance(inputs, list) or not inputs:
        raise _invalid(f"{where}.inputs", f"must be a list of paths, not {inputs!r}",
                       "List the files and folders the build reads, such as [package.json, package-lock.json, resources]")
    return Assets(build=build.strip(), inputs=tuple(_relative(i, f"{where}.inputs") for i in inputs),
                  output=_relative(section.get("output", Assets.output), f"{where}.output"))


def load_settings(raw: Any, root: Path = PROJECT_ROOT) -> Settings:
    """Validate the raw `fikaso` config section; raise FikasoError naming the first problem."""
    if raw is None:
        raise FikasoError("fabric.yaml has no fikaso: section",
                          "Run Fabric from the project folder, or copy the fikaso: section from the README")
    section = _mapping(raw, "")
    host = section.get("host")
    if host is not None and (not isinstance(host, str) or not _HOST.match(host)):
        raise _invalid("host", f"is not a host name: {host!r}",
                       "Set it to a host or ssh_config alias such as deploy@203.0.113.10, or leave it out and pass -H")
    base_dir = PurePosixPath(_text(section, "base_dir", ""))
    if not base_dir.is_absolute() or ".." in base_dir.parts or not re.match(r"^[A-Za-z0-9/._-]+$", str(base_dir)):
        raise _invalid("base_dir", f"must be an absolute path of plain characters, not {str(base_dir)!r}",
                       "Use a path such as /srv/fikaso")
    panels_raw = _mapping(section.get("panels"), "panels")
    unknown = sorted(set(panels_raw) - set(PANELS))
    if unknown:
        raise _invalid("panels", f"names unknown panel(s): {', '.join(unknown)}",
                       f"The panels are {', '.join(PANELS)}; fix the spelling or remove the extra entries")
    missing = [name for name in PANELS if name not in panels_raw]
    if missing:
        raise _invalid("panels", f"lacks panel(s): {', '.join(missing)}",
                       "Give each panel a domain: and a source: entry")
    panels = tuple(_site(name, PANEL_PORTS[name], panels_raw[name], f"panels.{name}", root) for name in PANELS)
    landing = _site("landing", LANDING_PORT, section.get("landing"), "landing", root)
    domains = [site.domain for site in (*panels, landing)]
    if len(set(domains)) != len(domains):
        raise _invalid("panels", "gives the same domain to two sites",
                       "Give every panel and the landing site its own domain")
    images_raw = _mapping(section.get("images"), "images")
    images = {}
    for key in IMAGE_KEYS:
        image = _text(images_raw, key, "images")
        if not _IMAGE.match(image):
            raise _invalid(f"images.{key}", f"is not an image reference: {image!r}",
                           "Use a name such as mysql:8.4")
        images[key] = image
    keep = section.get("keep_releases", 5)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 2 <= keep <= 50:
        raise _invalid("keep_releases", f"must be a whole number from 2 to 50, not {keep!r}",
                       "Keep at least 2 so that a rollback always has a release to go back to")
    snapshot = _flag(section, "snapshot_before_migrations", True)
    restore = _flag(section, "restore_snapshot_on_failed_migrations", False)
    if restore and not snapshot:
        raise _invalid("restore_snapshot_on_failed_migrations", "needs snapshot_before_migrations: true",
                       "Turn snapshots on, or this setting off: there is nothing to restore without a snapshot")
    nodes = _nodes(section.get("nodes"))
    background = [site.name for site in panels if site.workers or site.scheduler]
    if nodes and background:
        raise _invalid(f"panels.{background[0]}", "asks for queue workers or a scheduler, which Fikaso does not yet "
                       "run on a swarm",
                       "Set workers: 0 and scheduler: false for a swarm (queue workers and the scheduler run on one "
                       "VPS, without nodes:, for now)")
    sized = [site.name for site in panels if site.fpm_workers is not None]
    if nodes and sized:
        raise _invalid(f"panels.{sized[0]}.fpm_workers", "is for one VPS: on a swarm each PHP-FPM replica keeps the "
                       "image's pool of 10 workers", "Remove fpm_workers and scale the panel with replicas: instead")
    replicas = {name: _replicas(panels_raw[name].get("replicas", section.get("replicas", DEFAULT_REPLICAS)),
                                f"panels.{name}.replicas" if "replicas" in panels_raw[name] else "replicas")
                for name in PANELS}
    secrets_dir = Path(str(section.get("secrets_dir", "secrets"))).expanduser()
    if not secrets_dir.is_absolute():
        secrets_dir = root / secrets_dir
    return Settings(host=host, base_dir=base_dir, secrets_dir=secrets_dir, panels=panels,
                    landing=landing, images=images, keep_releases=keep, snapshot_before_migrations=snapshot,
                    restore_snapshot_on_failed_migrations=restore,
                    certificates=_certificates(section.get("certificates", {}), root),
                    alerts=_alerts(section.get("alerts", {}), root),
                    ssh_config=_ssh_config_files(section.get("ssh_config"), root),
                    nodes=nodes, replicas=MappingProxyType(replicas))


def _replicas(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 50:
        raise _invalid(key, f"must be a whole number from 1 to 50, not {value!r}",
                       "Give the number of PHP-FPM containers each panel runs on a swarm, such as 2")
    return value


def _nodes(raw: Any) -> tuple[Node, ...]:
    """fikaso.nodes: the VPSs of a swarm, each with its host and roles."""
    if raw is None or raw == []:
        return ()
    example = ("Write one entry per VPS, such as\n  nodes:\n    - host: deploy@203.0.113.10\n"
               "      roles: [manager, database, web, edge]")
    if not isinstance(raw, (list, tuple)):
        raise _invalid("nodes", f"must be a list of VPSs, not {type(raw).__name__}", example)
    nodes = []
    for number, entry in enumerate(raw, 1):
        where = f"nodes[{number}]"
        entry = _mapping(entry, where)
        host = _text(entry, "host", where)
        if not _HOST.match(host):
            raise _invalid(f"{where}.host", f"is not a host name: {host!r}",
                           "Use a host or ssh_config alias such as deploy@203.0.113.10")
        roles = entry.get("roles")
        if isinstance(roles, str) or not isinstance(roles, (list, tuple)) or not roles:
            raise _invalid(f"{where}.roles", f"must be a list of roles, not {roles!r}",
                           f"Give one or more of {', '.join(ROLES)}, such as roles: [web, edge]")
        unknown = [str(role) for role in roles if role not in ROLES]
        if unknown:
            raise _invalid(f"{where}.roles", f"names unknown role(s): {', '.join(unknown)}",
                           f"The roles are {', '.join(ROLES)}")
        address = str(entry.get("address") or "").strip()
        if address and not _ADDRESS.match(address):
            raise _invalid(f"{where}.address", f"is not an IP address: {address!r}",
                           "Give the address the other VPSs reach this one at (its private network's, if it has "
                           "one), or leave it out to use the address of its default route")
        nodes.append(Node(host=host, roles=frozenset(roles), address=address))
    hosts = [node.host for node in nodes]
    if len(set(hosts)) != len(hosts):
        raise _invalid("nodes", "names the same host twice", "List each VPS once, with all of its roles")
    for role, count in (("manager", "at least one"), ("database", "exactly one"), ("web", "at least one"),
                        ("edge", "at least one")):
        having = [node for node in nodes if role in node.roles]
        if not having or (role == "database" and len(having) > 1):
            raise _invalid("nodes", f"must give the {role} role to {count} VPS, not {len(having)}",
                           f"Add {role} to the roles of {'one VPS' if role == 'database' else 'a VPS'}: "
                           + ("MySQL and its volume live on one node" if role == "database" else
                              "the swarm needs it"))
    return tuple(nodes)


def _ssh_config_files(raw: Any, root: Path) -> tuple[Path, ...]:
    """fikaso.ssh_config: a list of ssh_config files, relative to the project folder unless absolute."""
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)) \
            or not all(isinstance(item, str) and item.strip() for item in raw):
        raise _invalid("ssh_config", f"must be a list of file names, not {raw!r}",
                       "Write one path per line under it, each starting with '- ', such as - .sandbox/ssh_config; "
                       "relative paths start at the project folder")
    files = (Path(item.strip()).expanduser() for item in raw)
    return tuple(path if path.is_absolute() else root / path for path in files)


def _flag(section: Mapping[str, Any], key: str, default: bool, where: str = "") -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise _invalid(f"{where}.{key}" if where else key, f"must be true or false, not {value!r}", "Write true or false")
    return value


def _certificates(raw: Any, root: Path) -> Certificates:
    section = _mapping(raw or {}, "certificates")
    server = str(section.get("acme_server") or "letsencrypt").strip()
    server = ACME_SERVERS.get(server, server)
    if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$", server):
        raise _invalid("certificates.acme_server", f"is neither letsencrypt, letsencrypt-staging nor an "
                       f"https:// ACME directory URL: {server!r}",
                       "Write letsencrypt (the default), letsencrypt-staging, or your ACME server's directory URL")
    email = _email(section, "certificates.email", "should get expiry notices")
    return Certificates(acme_server=server, email=email, ca_bundle=_local_file(section, "ca_bundle", root))


def _alerts(raw: Any, root: Path) -> Alerts:
    section = _mapping(raw or {}, "alerts")
    email = _email(section, "alerts.email", "should hear of failed backups and renewals")
    return Alerts(email=email, deploys=_flag(section, "deploys", False), ca_bundle=_local_file(section, "ca_bundle", root))


def _email(section: Mapping[str, Any], key: str, purpose: str) -> str:
    email = str(section.get(key.rsplit(".", 1)[-1]) or "").strip()
    if email and not _EMAIL.match(email):
        raise _invalid(key, f"is not an email address: {email!r}", f"Give the address that {purpose}, or leave it out")
    return email


def _local_file(section: Mapping[str, Any], key: str, root: Path) -> Path | None:
    """A file on this machine, relative to the project folder unless absolute; None when not set."""
    value = section.get(key)
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else root / path


def check_ca_bundle(certificates: Certificates) -> None:
    """The CA bundle must be a readable PEM file: checked when it is about to be used."""
    check_pem(certificates.ca_bundle, "certificates.ca_bundle", "your ACME server's HTTPS")


def check_pem(path: Path | None, key: str, signs: str) -> None:
    if path is not None and (not path.is_file() or b"-----BEGIN CERTIFICATE-----" not in path.read_bytes()):
        raise FikasoError(f"fikaso.{key} {path} is not a PEM file of CA certificates",
                          f"Point it at the PEM file of the CA that signs {signs}, or remove the setting to use "
                          "the system's CAs")


def with_source(settings: Settings, name: str, source: Path) -> Settings:
    """The settings with one site's source folder replaced (a deploy's --source)."""
    if name == "landing":
        return replace(settings, landing=replace(settings.landing, source=source))
    return replace(settings, panels=tuple(replace(p, source=source) if p.name == name else p for p in settings.panels))


def check_sources(settings: Settings, names: tuple[str, ...] | None = None) -> None:
    """Each panel source must be a Laravel app and the landing source a folder with index.html."""
    for site in settings.panels:
        if names is not None and site.name not in names:
            continue
        if not site.source.is_dir():
            raise FikasoError(f"The source folder of panel {site.name} does not exist: {site.source}",
                              f"Set fikaso.panels.{site.name}.source in fabric.yaml to your app's folder")
        if not (site.source / "artisan").is_file() or not (site.source / "composer.json").is_file():
            raise FikasoError(f"The source of panel {site.name} ({site.source}) is not a Laravel app: "
                              "it has no artisan or composer.json",
                              f"Point fikaso.panels.{site.name}.source at the app's root folder")
    if names is None or "landing" in names:
        if not (settings.landing.source / "index.html").is_file():
            raise FikasoError(f"The landing source {settings.landing.source} has no index.html",
                              "Set fikaso.landing.source to the folder of the static site")
