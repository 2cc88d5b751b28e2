from fikaso.commands.lock import unlock_script
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.facts import lock_holder
from fikaso.plan import Action

from .common import fikaso_task, open_primary_runner, open_runner, settings_of, sites_of


@fikaso_task(name="release", help={"panel": "admin, store, website or landing",
                                   "yes": "do not ask for confirmation",
                                   "plan": "print the remote command, and change nothing"})
def release_(c, panel=None, yes=False, plan=False):
    """Free a panel's deploy lock left behind by a run that was killed (shows the holder first)."""
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    layout = Layout(settings.base_dir)
    # On a swarm the deploy locks are the primary's (one for the whole swarm).
    runner = open_primary_runner(c, settings, plan) if settings.swarm else open_runner(c, settings, plan)
    (lock,) = runner.read(lock_holder(layout, site.name))
    held, holder = lock
    if not held:
        print(f"the {site.name} lock is free")
        return
    print(f"the {site.name} lock is held by: {holder or 'an unknown holder'}")
    if not runner.planning and not yes and input(
            "Free it? Only do so if that run is no longer running. Type yes: ").strip() != "yes":
        raise FikasoError("The lock was left in place", "Run again and type yes, or pass --yes")
    runner.run(Action("freeing the lock", unlock_script(layout, site.name)))
    if not runner.planning:
        print(f"the {site.name} lock is free")
