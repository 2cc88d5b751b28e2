"""`fab setup`: bring a fresh VPS to the whole running stack; on a second run, change nothing.

Every step decides from the facts read at the start (one round trip) whether it has work to do.
The remote scripts are built by the pure `*_script` functions below and run by the executor.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import archive, bundle, php_image, proxy, release
from .config import PANELS, Settings
from .errors import FikasoError
from .layout import BUNDLE_HASH_FILE, SECRETS_HASH_FILE, Layout
from .remote import Remote, RemoteError, cmd, q
from .secrets import Secrets, database_name
from .stack import SERVICES, Facts, compose, facts_script, parse_facts
from .deploy import Actor, append_lines, now_iso, release_log, source_commit
from .steps import Outcome, Step, changed, run_steps, unchanged

WAIT_SECONDS = 300
BOOTSTRAP_SCRIPT = "/docker-entrypoint-initdb.d/01-databases.sh"


# ---- pure builders of remote scripts -------------------------------------------------------

def layout_script(layout: Layout, facts: Facts) -> str:
    lines = []
    if facts.base_state == "missing":
        parent_make = cmd("mkdir", "-p", layout.base)
        sudo_make = cmd("sudo", "-n", "install", "-d", "-o", facts.uid, "-g", facts.uid, layout.base)
        lines.append(f"{parent_make} 2>/dev/null || {sudo_make}" if facts.sudo else parent_make)
    lines.append(cmd("mkdir", "-p", *layout.folders()))
    # Private keys live under certificates/: only the deploy user (and root) may look in.
    lines.append(cmd("chmod", "700", layout.secrets, layout.certificates))
    return "\n".join(lines)


def secrets_archive(secrets: Secrets) -> archive.Archive:
    # The password files are read inside the mysql container by its own user, so they are 0644
    # inside the 0700 secrets folder; the .env files are read by the app's own uid: 0600.
    entries = {f"secrets/{name}": (data, 0o644) for name, data in secrets.files().items()}
    for panel, env in secrets.env_files.items():
        entries[f"panels/{panel}/shared/.env"] = (env, 0o600)
    return archive.files(entries)


def extract_script(target, hash_file, sha: str) -> str:
    """Unpack the tar arriving on stdin into `target`, then record its hash."""
    return "\n".join([
        cmd("tar", "-x", "-p", "--no-same-owner", "-C", target),
        f"printf '%s\\n' {q(sha)} > {q(hash_file)}",
    ])


def start_script(layout: Layout, *services: str) -> str:
    return compose(layout, "up", "--detach", "--wait", "--wait-timeout", WAIT_SECONDS, "--remove-orphans",
                   *services)


def databases_check_script(layout: Layout) -> str:
    """Exits 0 only if every panel user logs in to its own database with its current password."""
    checks = []
    for panel in PANELS:
        db = database_name(panel)
        option_file = (f"<(printf '[client]\\nuser={db}\\npassword=%s\\n' "
                       f"\"$(cat /run/secrets/{panel}_db_password)\")")
        checks.append(f"mysql --defaults-extra-file={option_file} -h 127.0.0.1 -e 'SELECT 1' {db} >/dev/null")
    return compose(layout, "exec", "-T", "mysql", "bash", "-c", " && ".join(checks))


def databases_bootstrap_script(layout: Layout) -> str:
    return compose(layout, "exec", "-T", "mysql", "bash", BOOTSTRAP_SCRIPT)


# ---- the run --------------------------------------------------------------------------------

@dataclass
class SetupRun:
    settings: Settings
    remote: Remote
    secrets: Secrets
    layout: Layout = field(init=False)
    facts: Facts = field(default_factory=Facts)
    bundle: archive.Archive | None = None
    release_id: str = field(default_factory=release.new_release_id)

    def __post_init__(self):
        self.layout = Layout(self.settings.base_dir)

    def refresh_facts(self) -> Facts:
        result = self.remote.run(facts_script(self.layout), label="reading the server's state")
        self.facts = parse_facts(result.stdout)
        return self.facts


def compose_env(settings: Settings, facts: Facts, default_image: str) -> dict[str, str]:
    return {
        "FIKASO_BASE": str(settings.base_dir),
        "FIKASO_MYSQL_IMAGE": settings.images["mysql"],
        "FIKASO_NGINX_IMAGE": settings.images["nginx"],
        "FIKASO_CERTBOT_IMAGE": settings.images["certbot"],
        "FIKASO_PHP_IMAGE": default_image,
        "FIKASO_APP_UID": facts.uid,
        "COMPOSE_FILE": php_image.compose_files(),
    }


def make_bundle(settings: Settings, facts: Facts) -> archive.Archive:
    image = php_image.tag(settings, facts.uid)
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "stack"
        bundle.build_bundle(bundle.context(settings), dest, compose_env(settings, facts, image))
        # The bundle is built here from known files: ship all of it, its compose .env included.
        return archive.tree(dest, excluded_prefixes=(), excluded_names=frozenset())


def step_docker(run: SetupRun) -> Outcome:
    facts = run.refresh_facts()
    if not facts.docker:
        raise FikasoError(
            f"User {facts.user} on the server cannot use the Docker engine (docker version found no server)",
            "Install Docker (apt-get install docker.io on Debian/Ubuntu), start it, and add the user to the "
            f"docker group: sudo usermod -aG docker {facts.user}, then log in again")
    if not facts.compose:
        raise FikasoError("Docker Compose v2 (`docker compose`) is not installed on the server",
                          "Install the compose plugin (apt-get install docker-compose-plugin from Docker's "
                          "repository, or the docker-compose binary as a CLI plugin)")
    return unchanged(f"docker {facts.docker}, compose {facts.compose}")


def step_layout(run: SetupRun) -> Outcome:
    facts = run.facts
    if facts.base_state == "readonly" or (facts.base_state == "missing" and not facts.sudo and
                                          not _parent_writable(run)):
        raise FikasoError(
            f"User {facts.user} cannot create or write {run.layout.base} on the server",
            f"Create it once as root: sudo install -d -o {facts.user} -g {facts.user} {run.layout.base}, "
            "or set fikaso.base_dir in fabric.yaml to a folder the user owns")
    if not facts.folders_missing:
        return unchanged(str(run.layout.base))
    run.remote.run(layout_script(run.layout, facts), label="creating the folders")
    return changed(str(run.layout.base))


def _parent_writable(run: SetupRun) -> bool:
    parent = run.layout.base.parent
    return run.remote.run(f"[ -w {q(parent)} ]", label="checking the base folder's parent", check=False).ok


def step_secrets(run: SetupRun) -> Outcome:
    payload = secrets_archive(run.secrets)
    if run.facts.secrets_hash == payload.sha256:
        return unchanged()
    run.remote.run(extract_script(run.layout.base, run.layout.secrets / SECRETS_HASH_FILE, payload.sha256),
                   label="uploading the secrets", stdin=payload.chunks())
    return changed("passwords and .env files uploaded")


def step_bundle(run: SetupRun) -> Outcome:
    run.bundle = make_bundle(run.settings, run.facts)
    if run.facts.bundle_hash == run.bundle.sha256:
        return unchanged(run.bundle.sha256[:12])
    script = "\n".join([extract_script(run.layout.stack, run.layout.stack / BUNDLE_HASH_FILE, run.bundle.sha256),
                         php_image.missing_pins_script(run.layout, php_image.tag(run.settings, run.facts.uid))])
    run.remote.run(script, label="uploading the stack bundle", stdin=run.bundle.chunks())
    return changed(f"{run.bundle.sha256[:12]}, {len(run.bundle.data) // 1024} KiB")


def step_php_image(run: SetupRun) -> Outcome:
    tag = php_image.tag(run.settings, run.facts.uid)
    others = [p for p in PANELS if (s := run.facts.services.get(f"{p}_panel")) and s.image and s.image != tag]
    later = f" ({', '.join(others)}: with the next deploy)" if others else ""
    if tag in run.facts.images:
        return unchanged(tag + later)
    run.remote.run(php_image.build_script(run.settings, tag, run.facts.uid), label=f"building the PHP image {tag}",
                   stdin=php_image.build_context().chunks())
    return changed(tag + later)


def step_mysql(run: SetupRun) -> Outcome:
    service = run.facts.services.get("mysql")
    if service is not None and service.healthy and run.facts.bundle_hash == run.bundle.sha256:
        return unchanged("healthy")
    run.remote.run(start_script(run.layout, "mysql"), label="starting MySQL")
    return changed("healthy")


def step_databases(run: SetupRun) -> Outcome:
    if run.remote.run(databases_check_script(run.layout), label="checking the databases", check=False).ok:
        return unchanged(", ".join(database_name(p) for p in PANELS))
    run.remote.run(databases_bootstrap_script(run.layout), label="creating the databases and users")
    if not run.remote.run(databases_check_script(run.layout), label="checking the databases", check=False).ok:
        raise FikasoError(
            "The panel database users still cannot log in after the bootstrap; the MySQL root password on the "
            "server may differ from secrets/mysql_root_password",
            "Compare them; `fab logs --service=mysql` shows the server's view")
    return changed("databases and users ensured")


def _install_site(run: SetupRun, site) -> Outcome:
    live = run.facts.live.get(site.name)
    if live:
        return unchanged(f"live release {live} (ship changes with a deploy)")
    sending = release.payload(site.source, run.release_id, {})
    run.remote.run(release.upload_script(run.layout, site.name, run.release_id, None),
                   label=f"uploading {site.name} release {run.release_id}", stdin=sending.archive.chunks())
    if site.name in PANELS:
        run.remote.run(start_script(run.layout, f"{site.name}_panel"), label=f"starting {site.name}'s PHP-FPM")
        run.remote.run(release.install_script(run.layout, site.name, run.release_id, run.facts.uid),
                       label=f"installing {site.name} (composer, migrations, caches)")
    image = ""
    if site.name in PANELS:  # what the panel's pin names: the image it ran before, or the one built now
        service = run.facts.services.get(f"{site.name}_panel")
        image = service.image if service and service.image else php_image.tag(run.settings, run.facts.uid)
    record = {"id": run.release_id, "at": now_iso(), "by": Actor.here().name, "commit": source_commit(site.source),
              "result": "ok", "migrations": 0, "image": image, "note": "installed by setup"}
    run.remote.run(release.switch_script(run.layout, site.name, run.release_id) + "\n" +
                   append_lines(release_log(run.layout, site.name), [record]), label=f"switching {site.name}")
    return changed(f"release {run.release_id}")


def site_step(site) -> Step[SetupRun]:
    return Step(f"install {site.name}", lambda run: _install_site(run, site))


def reload_nginx_script(layout: Layout) -> str:
    """Reload every nginx gracefully, each only after its new configuration passes `nginx -t`."""
    services = [name for name in SERVICES if name.endswith("_nginx") or name == "nginx_proxy"]
    return "\n".join(compose(layout, "exec", "-T", name, "sh", "-c", "nginx -t -q && nginx -s reload")
                     for name in services)


def step_proxy(run: SetupRun) -> Outcome:
    """The proxy's config, with HTTPS for each domain that has a certificate on the server."""
    text = proxy.render(run.settings, run.facts.certificates)
    https = sorted(run.facts.certificates & {site.domain for site in run.settings.sites})
    summary = f"HTTPS for {', '.join(https)}" if https else "HTTP only (no certificate yet: fab certs.issue)"
    if run.facts.proxy_hash == proxy.sha256(text):
        return unchanged(summary)
    run.remote.run(proxy.apply_script(run.layout), label="checking and installing the proxy configuration",
                   stdin=[text.encode()])
    return changed(summary)


def step_services(run: SetupRun) -> Outcome:
    bundle_changed = run.facts.bundle_hash != run.bundle.sha256
    if run.facts.all_healthy() and not bundle_changed:
        return unchanged(f"{len(SERVICES)} services healthy")
    run.remote.run(start_script(run.layout), label="starting every service")
    if bundle_changed:
        # Config folders are mounted, so running nginx see new files; they read them on reload.
        run.remote.run(reload_nginx_script(run.layout), label="reloading nginx with the new configuration")
    return changed(f"{len(SERVICES)} services healthy")


def step_check_sites(run: SetupRun) -> Outcome:
    for site in run.settings.sites:
        path = release.health_path(site.name)
        result = run.remote.run(release.check_site_script(run.layout, site.domain, path),
                                label=f"checking {site.domain}", check=False)
        if not result.ok:
            raise FikasoError(
                f"{site.domain} does not answer through the proxy ({path}): "
                f"{(result.stderr or result.stdout).strip()[-300:] or 'no response'}",
                f"Look at `fab logs --service={site.name}_nginx` and `fab status`")
    return unchanged("4 sites answer through the proxy")


def setup_steps(settings: Settings) -> list[Step[SetupRun]]:
    return [
        Step("docker", step_docker),
        Step("folders", step_layout),
        Step("secrets", step_secrets),
        Step("bundle", step_bundle),
        Step("php image", step_php_image),
        Step("mysql", step_mysql),
        Step("databases", step_databases),
        *(site_step(site) for site in settings.sites),
        Step("proxy", step_proxy),
        Step("services", step_services),
        Step("sites", step_check_sites),
    ]


def setup(settings: Settings, remote: Remote, secrets: Secrets, out=None) -> list[Outcome]:
    run = SetupRun(settings=settings, remote=remote, secrets=secrets)
    try:
        return run_steps("setup", setup_steps(settings), run, out=out)
    except RemoteError as error:
        raise FikasoError(str(error), "Fix the cause shown above and run `fab setup` again: "
                          "finished steps are skipped") from None
