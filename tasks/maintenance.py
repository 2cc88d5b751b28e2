from fikaso.commands import maintenance
from fikaso.plan import Action

from .common import fikaso_task, laravel_panel, open_swarm_runner, run_artisan, settings_of


def _switch(c, panel, mode: str, plan: bool) -> None:
    settings = settings_of(c)
    if not settings.swarm:
        run_artisan(c, panel, mode, plan=plan)
        return
    # On a swarm each web node's storage holds its own flag: artisan runs in every task of the panel.
    name = laravel_panel(settings, panel).name
    open_swarm_runner(c, settings, plan).run(
        Action(f"php artisan {mode} in every {name} task on every web node",
               maintenance.every_task_script([name], mode), on="web"))


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def on(c, panel=None, plan=False):
    """Put a panel in maintenance mode (php artisan down): visitors get a 503 page.

    On a swarm, every task of the panel on every web node goes down."""
    _switch(c, panel, "down", plan)


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def off(c, panel=None, plan=False):
    """Bring a panel out of maintenance mode (php artisan up); on a swarm, on every web node."""
    _switch(c, panel, "up", plan)
