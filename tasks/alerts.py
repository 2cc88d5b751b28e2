from fikaso import records
from fikaso.commands import alert
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.plan import Action
from fikaso.runner import Runner

from .common import fikaso_task, open_primary_runner, open_runner, settings_of


def runner_of(c, settings, plan: bool = False) -> Runner:
    """Where alerts are sent from: the VPS, or a swarm's primary (every node can send them)."""
    return open_primary_runner(c, settings, plan) if settings.swarm else open_runner(c, settings, plan)


def notice(settings, summary: str, details: str, check: bool = False) -> Action:
    """An alert sent from the server, a swarm's primary (`check`: a failure to deliver it is an error)."""
    def undelivered(result) -> Exception:
        return FikasoError(f"The alert reached no one: {(result.stderr or result.stdout).strip()[-300:]}",
                           "Check secrets/alert_webhook_url (an https:// URL) and fikaso.alerts.email (the server "
                           "needs sendmail for it), run `fab setup` to upload them, then try again; the server's "
                           "state/alerts.log says what failed")
    return Action(f"sending an alert: {summary}", alert.send_script(Layout(settings.base_dir), summary),
                  stdin=details.encode(), check=check, failure=undelivered if check else None,
                  on=settings.primary.host if settings.swarm else None)


@fikaso_task(help={"plan": "print the remote command, and change nothing"})
def test(c, plan=False):
    """Send a test alert, the way a failed scheduled backup or certificate renewal is told.

    It goes from the VPS to the webhook in secrets/alert_webhook_url (a JSON POST with Slack-style
    "text") and to fikaso.alerts.email through the VPS's sendmail, whichever are set up. Run `fab
    setup` after changing either: it uploads them.
    """
    settings = settings_of(c)
    runner = runner_of(c, settings, plan)
    actor = records.Actor.here()
    runner.run(notice(settings, "a test alert from fab alerts.test", f"sent by {actor.name}", check=True))
    if not runner.planning:
        print("the test alert was delivered")
