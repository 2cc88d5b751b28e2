"""What every task does the same way: settings, the target host, the runner, and errors users can act on."""
from __future__ import annotations

import functools
from typing import Any, Callable

from invoke import task
from invoke.exceptions import Exit

from fikaso import config as fikaso_config
from fikaso import facts
from fikaso import secrets as fikaso_secrets
from fikaso.commands import swarm
from fikaso.commands.release import artisan_script
from fikaso.connection import connect
from fikaso.errors import FikasoError
from fikaso.layout import APP_ROOT, Layout
from fikaso.plan import Action
from fikaso.remote import RemoteError, SSHRemote
from fikaso.runner import Runner


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    return value


def settings_of(c) -> fikaso_config.Settings:
    return fikaso_config.load_settings(_plain(c.config.get("fikaso")))


def target_host(c, settings: fikaso_config.Settings) -> str:
    host = getattr(c, "original_host", None) or settings.host
    if not host:
        raise FikasoError("No target host is set",
                          "Pass one with `fab -H HOST TASK`, or set fikaso.host in fabric.yaml")
    return host


def target(c, settings: fikaso_config.Settings) -> dict:
    """Where to connect: `-H`, or else fikaso.host, and the project's ssh_config files (fikaso.ssh_config).

    Fabric has split `-H user@host:port` into c and filled in what was not typed from ~/.ssh/config
    and its own defaults, before the project's files were read. So a bare alias goes on as the host
    alone, for its ssh_config entry to supply user and port; a user or port typed with it (one that
    differs from that fill-in) is passed on and wins.
    """
    found = {"host": target_host(c, settings), "ssh_config_files": settings.ssh_config}
    if getattr(c, "original_host", None) is None:
        return found  # fikaso.host, which Connection parses itself
    if c.user != c.ssh_config.get("user", c.config.user):
        found["user"] = c.user
    if c.port != int(c.ssh_config.get("port", c.config.port)):
        found["port"] = c.port
    return found


def open_remote(c, settings: fikaso_config.Settings) -> SSHRemote:
    return SSHRemote(connect(config=c.config, **target(c, settings)))


def dry(c) -> bool:
    """Invoke's -R/--dry: print what would run, change nothing."""
    return bool(c.config.run.dry)


def open_runner(c, settings: fikaso_config.Settings, plan: bool = False) -> Runner:
    """The runner for the target host; with --plan or -R it prints actions instead of running them."""
    if settings.swarm:
        raise FikasoError("This task does not run on a swarm (fikaso.nodes is set)",
                          "Run it against one VPS, a configuration without nodes; README, \"More than one VPS\", "
                          "lists what runs on a swarm")
    return Runner.on(open_remote(c, settings), name=target_host(c, settings), plan=plan or dry(c))


def node_remote(c, settings: fikaso_config.Settings, host: str) -> SSHRemote:
    """One node of fikaso.nodes, found through the project's ssh_config files like fikaso.host."""
    return SSHRemote(connect(host, config=c.config, ssh_config_files=settings.ssh_config))


def open_primary_runner(c, settings: fikaso_config.Settings, plan: bool = False) -> Runner:
    """On a swarm: a runner for its first manager alone, which knows the state of every node."""
    return Runner.on(node_remote(c, settings, settings.primary.host), name=settings.primary.host,
                     plan=plan or dry(c))


def open_database_runner(c, settings: fikaso_config.Settings, plan: bool = False) -> Runner:
    """The runner for the server that holds the database: the VPS, or on a swarm its database node."""
    if not settings.swarm:
        return open_runner(c, settings, plan)
    (node,) = settings.with_role("database")
    return Runner.on(node_remote(c, settings, node.host), name=node.host, plan=plan or dry(c))


def open_swarm_runner(c, settings: fikaso_config.Settings, plan: bool = False) -> Runner:
    """The runner for every node of fikaso.nodes, the primary (first manager) first."""
    ordered = [settings.primary, *(node for node in settings.nodes if node != settings.primary)]
    remotes = [(node.host, node_remote(c, settings, node.host), node.roles) for node in ordered]
    return Runner.group(remotes, plan=plan or dry(c))


def fikaso_task(*args, local: str = "", **kwargs):
    """Invoke's @task, plus what every Fikaso task does with errors: a FikasoError becomes one
    paragraph on stderr and exit code 1, a failed remote script says to fix its cause and run the
    task again, and Ctrl-C says what stays live; never a traceback.

    `local` says what a task changes on this machine rather than on a server; under -R/--dry it
    only prints that.
    """
    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def wrapper(*a, **kw):
            if local and dry(a[0]):
                print(f"dry run: would {local}; nothing was changed")
                return None
            try:
                return body(*a, **kw)
            except FikasoError as error:
                raise Exit(f"Error: {error}", code=1) from None
            except RemoteError as error:
                raise Exit(f"Error: {error}\nFix the cause shown above and run the task again.", code=1) from None
            except KeyboardInterrupt:
                raise Exit("Interrupted. Whatever had gone live stays live; a deploy's lock was freed if the "
                           "connection allowed it (else the next deploy from here takes it over).",
                           code=130) from None
        return task(**kwargs)(wrapper)
    if len(args) == 1 and callable(args[0]) and not kwargs and not local:
        return decorate(args[0])
    return decorate


def load_secrets(settings: fikaso_config.Settings) -> fikaso_secrets.Secrets:
    return fikaso_secrets.load(settings)


SITES = (*fikaso_config.PANELS, "landing")


def sites_of(settings, panel: str | None, allow_all: bool) -> list:
    if not panel:
        raise FikasoError("No panel given", f"Pass --panel=NAME with one of: {', '.join(SITES)}"
                          + (", all" if allow_all else ""))
    if allow_all and panel == "all":
        return [*settings.panels, settings.landing]
    if panel == "landing":
        return [settings.landing]
    if panel not in fikaso_config.PANELS:
        raise FikasoError(f"There is no panel named {panel!r}",
                          f"Use one of: {', '.join(SITES)}" + (", all" if allow_all else ""))
    return [settings.panel(panel)]


def laravel_panel(settings, panel: str | None):
    """The panel named, which must be one with a Laravel app (not the static landing site)."""
    (site,) = sites_of(settings, panel, allow_all=False)
    if site.name not in fikaso_config.PANELS:
        raise FikasoError(f"The {site.name} site is static and has no Laravel app", "Pick a panel: admin, store or website")
    return site


def artisan(settings, panel: str | None, *args: str) -> Action:
    """`php artisan ARGS` in the live release of a panel, its output streamed."""
    site = laravel_panel(settings, panel)
    return Action(f"php artisan {' '.join(args)}", artisan_script(Layout(settings.base_dir), site.name, *args),
                  stream=True)


def run_artisan(c, panel: str | None, *args: str, plan: bool = False) -> None:
    settings = settings_of(c)
    if not settings.swarm:
        open_runner(c, settings, plan).run(artisan(settings, panel, *args))
        return
    # The primary may run no task of the panel: a one-off container of the panel's image there, on the
    # stack's network, with the panel's folder and that node's volumes, as a deploy's migrations run.
    site = laravel_panel(settings, panel)
    layout = Layout(settings.base_dir, swarm=True)
    runner = open_primary_runner(c, settings, plan)
    (state,) = runner.read(facts.site(layout, site.name))
    if not state.live or not state.image:
        raise FikasoError(f"The {site.name} panel has no live release on the swarm",
                          f"Run `fab setup`, or `fab deploy --panel={site.name}`, first")
    runner.run(Action(f"php artisan {' '.join(args)}",
                      swarm.one_off(layout, site.name, state.image, state.uid, f"{APP_ROOT}/current", "php", "artisan",
                                    *args), stream=True))
