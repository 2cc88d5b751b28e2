import sys

from fikaso import config as fikaso_config
from fikaso import records
from fikaso import secrets as fikaso_secrets
from fikaso.errors import FikasoError
from fikaso.remote import RemoteError
from fikaso.steps import setup as steps
from fikaso.steps import swarm_setup

from .common import fikaso_task, load_secrets, open_runner, open_swarm_runner, settings_of


def run_setup(runner, settings, secrets) -> None:
    if settings.swarm:
        run = swarm_setup.SwarmSetupRun(settings=settings, secrets=secrets, actor=records.Actor.here())
        steps_ = swarm_setup.swarm_setup_steps(settings)
    else:
        run = steps.SetupRun(settings=settings, secrets=secrets, actor=records.Actor.here())
        steps_ = steps.setup_steps(settings)
    try:
        runner.steps("setup", steps_, run)
    except RemoteError as error:
        raise FikasoError(str(error), "Fix the cause shown above and run `fab setup` again: "
                          "finished steps are skipped") from None


@fikaso_task(help={"plan": "print every remote command setup would run, and change nothing (as -R does)"})
def setup(c, plan=False):
    """Set up the whole stack on the VPS: folders, secrets, images, MySQL, the four sites, the proxy.

    With fikaso.nodes set, on every VPS listed there as one Docker Swarm (README, "More than one VPS").

    Safe to run again: each step first checks the server and changes only what is missing.
    Prints one line per step with its duration.
    """
    settings = settings_of(c)
    fikaso_config.check_sources(settings)
    secrets = load_secrets(settings)
    for warning in fikaso_secrets.idle_worker_warnings(settings, secrets):
        print(warning, file=sys.stderr)
    runner = open_swarm_runner(c, settings, plan) if settings.swarm else open_runner(c, settings, plan)
    run_setup(runner, settings, secrets)
