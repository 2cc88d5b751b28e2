from pathlib import Path

from invoke import task

from fikaso import config as fikaso_config
from fikaso import secrets as fikaso_secrets
from fikaso import setup as fikaso_setup
from fikaso.connection import connect
from fikaso.remote import SSHRemote
from sandbox import vps

from .common import settings_of, user_errors


@task
@user_errors
def demo(c):
    """The whole stack on a local test VPS: secrets, sandbox, setup, then the four sites' URLs."""
    settings = settings_of(c)
    fikaso_config.check_sources(settings)
    fikaso_secrets.generate(settings)
    info = vps.up(settings.images)
    remote = SSHRemote(connect(info["alias"], c.config, ssh_config_files=[Path(info["ssh_config"])]))
    fikaso_setup.setup(settings, remote, fikaso_secrets.load(settings))
    port = info["http_port"]
    print("\nThe Fikaso stack runs on the test VPS. Its port 80 is 127.0.0.1:%d here:" % port)
    for site in (*settings.panels, settings.landing):
        print(f"  {site.name:<8} http://{site.domain}:{port}/   "
              f"curl -H 'Host: {site.domain}' http://127.0.0.1:{port}/")
    print("(Browsers need the domains in /etc/hosts as 127.0.0.1; `fab status` shows the services,\n"
          " `fab sandbox.down` removes the test VPS.)")
