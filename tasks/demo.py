from pathlib import Path

from fikaso import config as fikaso_config
from fikaso import secrets as fikaso_secrets
from fikaso.connection import connect
from fikaso.remote import SSHRemote
from fikaso.runner import Runner
from sandbox import vps

from .common import fikaso_task, settings_of
from .setup import run_setup


@fikaso_task(local="generate secrets, start the local test VPS and set the stack up on it")
def demo(c):
    """The whole stack on a local test VPS: secrets, sandbox, setup, then the four sites' URLs."""
    settings = settings_of(c)
    fikaso_config.check_sources(settings)
    fikaso_secrets.generate(settings)
    info = vps.up(settings.images)
    remote = SSHRemote(connect(info["alias"], c.config, ssh_config_files=[Path(info["ssh_config"])]))
    run_setup(Runner.on(remote, name=info["alias"]), settings, fikaso_secrets.load(settings))
    port = info["http_port"]
    print("\nThe Fikaso stack runs on the test VPS. Its port 80 is 127.0.0.1:%d here:" % port)
    for site in (*settings.panels, settings.landing):
        print(f"  {site.name:<8} http://{site.domain}:{port}/   "
              f"curl -H 'Host: {site.domain}' http://127.0.0.1:{port}/")
    print("(Browsers need the domains in /etc/hosts as 127.0.0.1; `fab status` shows the services,\n"
          " `fab sandbox.down` removes the test VPS.)")
