from invoke import task

from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.release import APP_ROOT
from fikaso.stack import compose

from .common import open_remote, settings_of, user_errors
from .deploy import sites_of


def _artisan(c, panel, *args):
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    if site.name == "landing":
        raise FikasoError("The landing site is static and has no maintenance mode", "Pick a panel")
    script = compose(Layout(settings.base_dir), "exec", "-T", "-w", f"{APP_ROOT}/current", f"{site.name}_panel",
                     "php", "artisan", *args)
    print(open_remote(c, settings).run(script, label=f"php artisan {args[0]}").stdout.strip())


@task(help={"panel": "admin, store or website"})
@user_errors
def on(c, panel=None):
    """Put a panel in maintenance mode (php artisan down): visitors get a 503 page."""
    _artisan(c, panel, "down")


@task(help={"panel": "admin, store or website"})
@user_errors
def off(c, panel=None):
    """Bring a panel out of maintenance mode (php artisan up)."""
    _artisan(c, panel, "up")
