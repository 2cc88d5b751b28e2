from invoke import task

from fikaso import deploy as fikaso_deploy
from fikaso.errors import FikasoError
from fikaso.layout import Layout
from fikaso.remote import q

from .common import open_remote, settings_of, sites_of, user_errors


@task(name="release", help={"panel": "admin, store, website or landing",
                            "yes": "do not ask for confirmation"})
@user_errors
def release_(c, panel=None, yes=False):
    """Free a panel's deploy lock left behind by a run that was killed (shows the holder first)."""
    settings = settings_of(c)
    (site,) = sites_of(settings, panel, allow_all=False)
    layout = Layout(settings.base_dir)
    remote = open_remote(c, settings)
    folder = fikaso_deploy.lock_dir(layout, site.name)
    holder = remote.run(f"cat {q(folder / 'holder')} 2>/dev/null || true", label="reading the lock").stdout.strip()
    if not holder and not remote.run(f"[ -d {q(folder)} ]", label="reading the lock", check=False).ok:
        print(f"the {site.name} lock is free")
        return
    print(f"the {site.name} lock is held by: {holder or 'an unknown holder'}")
    if not yes and input("Free it? Only do so if that run is no longer running. Type yes: ").strip() != "yes":
        raise FikasoError("The lock was left in place", "Run again and type yes, or pass --yes")
    remote.run(fikaso_deploy.unlock_script(layout, site.name), label="freeing the lock")
    print(f"the {site.name} lock is free")
