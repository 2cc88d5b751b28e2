from invoke import task

from .common import run_artisan, user_errors


@task(help={"panel": "admin, store or website"})
@user_errors
def on(c, panel=None):
    """Put a panel in maintenance mode (php artisan down): visitors get a 503 page."""
    run_artisan(c, panel, "down")


@task(help={"panel": "admin, store or website"})
@user_errors
def off(c, panel=None):
    """Bring a panel out of maintenance mode (php artisan up)."""
    run_artisan(c, panel, "up")
