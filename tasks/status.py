from invoke import task

from fikaso import status as fikaso_status
from fikaso.layout import Layout

from .common import open_remote, settings_of, user_errors


@task
@user_errors
def status(c):
    """Show each service's state and health, each site's live release, and the disk used on the VPS."""
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    remote = open_remote(c, settings)
    result = remote.run(fikaso_status.status_script(layout), label="reading the server's state")
    print(fikaso_status.render_status(result.stdout, layout))


@task(help={"service": "one of the stack's services, e.g. store_panel, store_nginx, mysql, nginx_proxy",
            "follow": "keep streaming new lines until Ctrl-C",
            "tail": "how many past lines to show (default 200)"})
@user_errors
def logs(c, service, follow=False, tail=200):
    """Print a service's logs from the VPS (add --follow to keep streaming)."""
    settings = settings_of(c)
    layout = Layout(settings.base_dir)
    script = fikaso_status.logs_script(layout, service, int(tail), follow)
    remote = open_remote(c, settings)
    try:
        remote.run(script, label=f"reading the logs of {service}", echo=print)
    except KeyboardInterrupt:
        pass
