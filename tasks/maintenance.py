from secrets import token_urlsafe

from fikaso.commands import maintenance
from fikaso.layout import Layout
from fikaso.plan import Action

from .common import fikaso_task, laravel_panel, open_runner, open_swarm_runner, settings_of


def _switch(c, panel, mode: str, plan: bool, secret: bool = False) -> None:
    settings = settings_of(c)
    site = laravel_panel(settings, panel)
    token = token_urlsafe(18) if secret else ""
    stdin = f"{token}\n".encode() if secret else None
    if settings.swarm:
        # Each web node's storage holds its own flag: artisan runs in every task of the panel.
        runner = open_swarm_runner(c, settings, plan)
        runner.run(Action(f"php artisan {mode} in every {site.name} task on every web node",
                          maintenance.every_task_script([site.name], mode, secret), stdin=stdin, on="web"))
    else:
        runner = open_runner(c, settings, plan)
        runner.run(Action(f"php artisan {mode}", maintenance.switch_script(Layout(settings.base_dir), site.name, mode,
                                                                          secret), stdin=stdin, stream=True))
    if not runner.planning:
        print(f"{site.name}: " + (maintenance.bypass_note(site.domain, token) if secret else
                                  "visitors get the maintenance page" if mode == "down" else "serving visitors again"))


@fikaso_task(help={"panel": "admin, store or website",
                   "secret": "also make a bypass URL: whoever opens it passes through, with a cookie",
                   "plan": "print the remote command, and change nothing"})
def on(c, panel=None, secret=False, plan=False):
    """Put a panel in maintenance mode (php artisan down): visitors get a 503 page.

    With --secret, prints a URL that lets you (and whoever you give it) through while it lasts. On a
    swarm, every task of the panel on every web node goes down."""
    _switch(c, panel, "down", plan, secret)


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def off(c, panel=None, plan=False):
    """Bring a panel out of maintenance mode (php artisan up); on a swarm, on every web node."""
    _switch(c, panel, "up", plan)
