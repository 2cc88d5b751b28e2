from fikaso import config as fikaso_config
from fikaso import records
from fikaso.errors import FikasoError
from fikaso.remote import RemoteError
from fikaso.steps import setup as steps

from .common import fikaso_task, load_secrets, open_runner, settings_of


def run_setup(runner, settings, secrets) -> None:
    run = steps.SetupRun(settings=settings, secrets=secrets, actor=records.Actor.here())
    try:
        runner.steps("setup", steps.setup_steps(settings), run)
    except RemoteError as error:
        raise FikasoError(str(error), "Fix the cause shown above and run `fab setup` again: "
                          "finished steps are skipped") from None


@fikaso_task(help={"plan": "print every remote command setup would run, and change nothing (as -R does)"})
def setup(c, plan=False):
    """Set up the whole stack on the VPS: folders, secrets, images, MySQL, the four sites, the proxy.

    Safe to run again: each step first checks the server and changes only what is missing.
    Prints one line per step with its duration.
    """
    settings = settings_of(c)
    fikaso_config.check_sources(settings)
    secrets = load_secrets(settings)
    run_setup(open_runner(c, settings, plan), settings, secrets)
