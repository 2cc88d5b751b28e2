from invoke import task

from fikaso import config as fikaso_config
from fikaso import setup as fikaso_setup

from .common import load_secrets, open_remote, settings_of, user_errors


@task
@user_errors
def setup(c):
    """Set up the whole stack on the VPS: folders, secrets, images, MySQL, the four sites, the proxy.

    Safe to run again: each step first checks the server and changes only what is missing.
    Prints one line per step with its duration.
    """
    settings = settings_of(c)
    fikaso_config.check_sources(settings)
    secrets = load_secrets(settings)
    fikaso_setup.setup(settings, open_remote(c, settings), secrets)
