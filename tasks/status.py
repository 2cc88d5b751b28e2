from fikaso import facts
from fikaso.commands.compose import background, logs_script
from fikaso.layout import Layout
from fikaso.plan import Action
from fikaso.views import render_status, render_swarm_status

from .backup import freshness_facts, overdue
from .common import fikaso_task, open_primary_runner, open_runner, settings_of


@fikaso_task
def status(c):
    """Show each service's state and health, each site's live release, and the disk used on the VPS;
    warn when the newest verified backup is older than the backup schedule promises.

    On a swarm: each node and whether it is up, each service's tasks and the nodes they run on, asked
    of the first manager only (so that it answers while another node is down).
    """
    settings = settings_of(c)
    if settings.swarm:
        layout = Layout(settings.base_dir, swarm=True)
        cluster, tasks, stack = open_primary_runner(c, settings).read(facts.cluster(layout), facts.swarm_tasks(),
                                                                       facts.stack(layout))
        print(render_swarm_status(cluster, tasks, stack.live))
        return
    layout = Layout(settings.base_dir)
    stack, *freshness = open_runner(c, settings).read(facts.stack(layout, disk=True), *freshness_facts(layout))
    print(render_status(stack, layout, background(settings)))
    warning = overdue(*freshness)
    if warning:
        print(warning)


@fikaso_task(help={"service": "one of the stack's services, e.g. store_panel, store_nginx, mysql, nginx_proxy",
                   "follow": "keep streaming new lines until Ctrl-C",
                   "tail": "how many past lines to show (default 200)"})
def logs(c, service, follow=False, tail=200):
    """Print a service's logs from the VPS (add --follow to keep streaming); on a swarm, every task's."""
    settings = settings_of(c)
    script = logs_script(Layout(settings.base_dir, swarm=settings.swarm), service, int(tail), follow)
    # On a swarm a manager has every task's logs, from whichever node.
    runner = open_primary_runner(c, settings) if settings.swarm else open_runner(c, settings)
    try:
        runner.run(Action(f"reading the logs of {service}", script, stream=True))
    except KeyboardInterrupt:
        pass

