from fikaso.commands.swarm import scale_script
from fikaso.config import PANELS
from fikaso.errors import FikasoError
from fikaso.plan import Action

from .common import fikaso_task, open_primary_runner, settings_of, sites_of


@fikaso_task(help={"panel": "admin, store or website", "replicas": "how many PHP-FPM containers the panel runs",
                   "plan": "print the remote command, and change nothing (as -R does)"})
def scale(c, panel=None, replicas=None, plan=False):
    """On a swarm: run N PHP-FPM replicas of a panel, spread over the web nodes, with no failed request.

    Set panels.<panel>.replicas in fabric.yaml too: the next `fab setup` that redeploys the stack
    goes back to the configured number.
    """
    settings = settings_of(c)
    if not settings.swarm:
        raise FikasoError("fab scale works on a swarm (fikaso.nodes); one VPS runs one PHP-FPM container per panel",
                          "To give a panel more capacity on one VPS, raise its PHP-FPM workers; to run replicas, "
                          "move to several VPSs (README, \"More than one VPS\")")
    (site,) = sites_of(settings, panel, allow_all=False)
    if site.name not in PANELS:
        raise FikasoError(f"The {site.name} site is static: its nginx runs on every web node already",
                          "Pick a panel: admin, store or website")
    try:
        count = int(replicas)
    except (TypeError, ValueError):
        raise FikasoError(f"--replicas must be a whole number, not {replicas!r}", "Pass one such as --replicas=3") \
            from None
    if not 1 <= count <= 50:
        raise FikasoError(f"--replicas={count} is out of range", "Give 1 to 50")
    runner = open_primary_runner(c, settings, plan)
    runner.run(Action(f"scaling {site.name} to {count} PHP-FPM replicas", scale_script(site.name, count), stream=True))
    if not runner.planning:
        print(f"{site.name} runs {count} PHP-FPM replica(s)")
        if settings.replicas[site.name] != count:
            print(f"note: fabric.yaml says {settings.replicas[site.name]}; set panels.{site.name}.replicas: {count} "
                  "so that the next `fab setup` keeps it")
