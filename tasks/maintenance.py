from .common import fikaso_task, run_artisan


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def on(c, panel=None, plan=False):
    """Put a panel in maintenance mode (php artisan down): visitors get a 503 page."""
    run_artisan(c, panel, "down", plan=plan)


@fikaso_task(help={"panel": "admin, store or website", "plan": "print the remote command, and change nothing"})
def off(c, panel=None, plan=False):
    """Bring a panel out of maintenance mode (php artisan up)."""
    run_artisan(c, panel, "up", plan=plan)
