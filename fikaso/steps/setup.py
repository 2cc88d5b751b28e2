"""`fab setup` as steps: bring a fresh VPS to the whole running stack; on a second run, change nothing.

Every step decides from facts whether it has work to do: the stack fact read first, in one round
trip, and the database logins read just before the databases step.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import archive, assets, records
from ..commands import database, php_fpm, php_image, release, server
from ..commands.compose import SERVICES, background, reload_every_nginx_script, start_script
from ..config import PANELS, Settings, Site
from ..errors import FikasoError
from ..facts import database_logins, stack
from ..plan import Action, Outcome, Step, changed, unchanged
from ..secrets import database_name
from .shared import SetupRequest, StackRun, check_base_folder, make_bundle, proxy_config, site_checks

@dataclass
class SetupRun(SetupRequest, StackRun):

    def bundle(self) -> archive.Archive:
        """The stack bundle for this server (made once; it depends on the settings and the app uid)."""
        if self._bundle is None:
            self._bundle = make_bundle(self.settings, self.facts.uid)
        return self._bundle

    @property
    def bundle_changed(self) -> bool:
        return self.facts.bundle_hash != self.bundle().sha256


# ---- the steps --------------------------------------------------------------------------------

def docker(run: SetupRun) -> Outcome:
    facts = run.facts
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


def folders(run: SetupRun) -> Outcome:
    facts = run.facts
    check_base_folder(facts, run.layout)
    if not facts.folders_missing:
        return unchanged(str(run.layout.base))
    return changed(str(run.layout.base), Action("creating the folders", server.folders_script(run.layout, facts)))


def secrets(run: SetupRun) -> Outcome:
    payload = server.secrets_archive(run.secrets)
    if run.facts.secrets_hash == payload.sha256:
        return unchanged()
    return changed("passwords and .env files uploaded",
                   Action("uploading the secrets",
                          server.secrets_script(run.layout, payload.sha256),
                          stdin=payload.data))


def stack_bundle(run: SetupRun) -> Outcome:
    made = run.bundle()
    if not run.bundle_changed:
        return unchanged(made.sha256[:12])
    script = "\n".join([server.bundle_script(run.layout, made.sha256, run.settings.images["nginx"]),
                        php_image.missing_pins_script(run.layout, php_image.tag(run.settings, run.facts.uid))])
    return changed(f"{made.sha256[:12]}, {len(made.data) // 1024} KiB",
                   Action("uploading the stack bundle", script, stdin=made.data))


def php(run: SetupRun) -> Outcome:
    tag = php_image.tag(run.settings, run.facts.uid)
    others = [p for p in PANELS if (s := run.facts.services.get(f"{p}_panel")) and s.image and s.image != tag]
    later = f" ({', '.join(others)}: with the next deploy)" if others else ""
    if tag in run.facts.images:
        return unchanged(tag + later)
    return changed(tag + later, Action(f"building the PHP image {tag}",
                                       php_image.build_script(run.settings, tag, run.facts.uid),
                                       stdin=php_image.build_context().data))


def mysql(run: SetupRun) -> Outcome:
    service = run.facts.services.get("mysql")
    if service is not None and service.healthy and not run.bundle_changed:
        return unchanged("healthy")
    return changed("healthy", Action("starting MySQL", start_script(run.layout, "mysql")))


def databases(run: SetupRun) -> Outcome:
    names = ", ".join(database_name(p) for p in PANELS)
    if run.known["database_logins"]:
        return unchanged(names)
    def still_failing(result) -> Exception:
        return FikasoError(
            "The panel database users still cannot log in after the bootstrap; the MySQL root password on the "
            "server may differ from secrets/mysql_root_password",
            "Compare them; `fab logs --service=mysql` shows the server's view")
    return changed("databases and users ensured",
                   Action("creating the databases and users", database.bootstrap_script(run.layout)),
                   Action("checking the databases", database.logins_check(run.layout), failure=still_failing))


def install_site(site: Site):
    def decide(run: SetupRun) -> Outcome:
        live = run.facts.live.get(site.name)
        if live:
            return unchanged(f"live release {live} (ship changes with a deploy)")
        layout, release_id = run.layout, run.release_id
        with assets.shipped_tree(site) as tree:
            sending = release.payload(tree, release_id, {})
        actions = [Action(f"uploading {site.name} release {release_id}",
                          release.upload_script(layout, site.name, release_id, None), stdin=sending.archive.data)]
        image = ""
        if site.name in PANELS:
            actions += [Action(f"starting {site.name}'s PHP-FPM", start_script(layout, f"{site.name}_panel")),
                        Action(f"installing {site.name} (composer, migrations, caches)",
                               release.install_script(layout, site.name, release_id, run.facts.uid))]
            # What the panel's pin names: the image it ran before, or the one built now.
            service = run.facts.services.get(f"{site.name}_panel")
            image = service.image if service and service.image else php_image.tag(run.settings, run.facts.uid)
        record = records.release_record(release_id, run.actor, records.source_commit(site.source), "ok",
                                        image=image, note="installed by setup")
        actions.append(Action(f"switching {site.name}",
                              release.switch_script(layout, site.name, release_id) + "\n" +
                              records.record_script(layout, site.name, record, None)))
        return changed(f"release {release_id}", *actions)
    return Step(f"install {site.name}", decide)


def php_fpm_pools(run: SetupRun) -> Outcome:
    """Each panel's PHP-FPM pool size, from fabric.yaml or the VPS's memory; running pools reload
    gracefully."""
    wanted = php_fpm.pool_sizes(run.settings, run.facts.memory_mb)
    detail = ", ".join(f"{panel} {workers}" for panel, workers in wanted.items()) + " workers"
    if any(site.fpm_workers is None for site in run.settings.panels):
        detail += f" ({run.facts.memory_mb} MB of memory)"
    stale = [panel for panel, workers in wanted.items() if run.facts.pools.get(panel) != workers]
    if not stale:
        return unchanged(detail)
    return changed(detail, *(Action(f"sizing {panel}'s PHP-FPM pool to {wanted[panel]} workers",
                                    php_fpm.resize_script(run.layout, panel, wanted[panel])) for panel in stale))


def proxy_step(run: SetupRun) -> Outcome:
    return proxy_config(run.settings, run.layout, run.facts)


def services(run: SetupRun) -> Outcome:
    wanted = background(run.settings)
    # A restore that stopped while it loaded a panel's database left that panel's queue workers and
    # scheduler stopped: they must not write into it until a restore of it finishes.
    held = sorted(name for name in wanted if database_name(name.rsplit("_", 1)[0]) in run.facts.half_loaded)
    wanted = {name: count for name, count in wanted.items() if name not in held}
    short = [name for name, count in wanted.items()
             if name not in run.facts.services or run.facts.services[name].running != count]
    counted = f"{len(SERVICES)} services healthy" + (f", {sum(wanted.values())} queue workers and schedulers running"
                                                     if wanted else "")
    if held:
        counted += f"; {', '.join(held)} stay stopped: a restore of their database did not finish (see `fab doctor`)"
    if run.facts.all_healthy() and not run.bundle_changed and not short:
        return unchanged(counted)
    start = start_script(run.layout, *SERVICES, *wanted) if held else start_script(run.layout)
    actions = [Action("starting every service", start)]
    if run.bundle_changed:
        # Config folders are mounted, so running nginx see new files; they read them on reload.
        actions.append(Action("reloading nginx with the new configuration", reload_every_nginx_script(run.layout)))
    return changed(counted, *actions)


def check_sites(run: SetupRun) -> Outcome:
    return site_checks(run.settings, run.layout, "Look at `fab logs --service={name}_nginx` and `fab status`",
                       f"{len(run.settings.sites)} sites answer through the proxy")


def setup_steps(settings: Settings) -> list[Step]:
    return [
        Step("docker", docker, reads=lambda run: (stack(run.layout),)),
        Step("folders", folders),
        Step("secrets", secrets),
        Step("bundle", stack_bundle),
        Step("php image", php),
        Step("mysql", mysql),
        Step("databases", databases, reads=lambda run: (database_logins(run.layout),)),
        *(install_site(site) for site in settings.sites),
        Step("php-fpm pools", php_fpm_pools),
        Step("proxy", proxy_step),
        Step("services", services),
        Step("sites", check_sites),
    ]
