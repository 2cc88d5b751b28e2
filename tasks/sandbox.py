import json



from sandbox import nodes as sandbox_nodes
from sandbox import vps

from .common import fikaso_task, settings_of


@fikaso_task(local="start the local test VPS (building its images if needed)",
             help={"fresh": "remove the running test VPS and everything on it first, and start a blank one",
                   "nodes": "start this many test VPSs (2 to 5) on a network of their own, for a swarm"})
def up(c, fresh=False, nodes=1):
    """Start the local test VPS (sshd + Docker engine), or check the running one; prints its info.

    Builds its image and the stand-in images once per machine; `fab -H fikaso-sandbox TASK` then
    reaches it with its host key pinned. With --nodes=3, starts fikaso-sandbox-node1..3 instead
    (beside the one-VPS sandbox) and writes .sandbox/swarm.yaml, a configuration naming them:
    `fab -f .sandbox/swarm.yaml setup` puts the stack on them as a swarm. With FIKASO_SANDBOX=test in
    the environment, every sandbox task acts on the end-to-end suite's own test VPSs (fikaso-test...)
    instead.
    """
    nodes = int(nodes)
    if nodes == 1:
        print(json.dumps(vps.up(settings_of(c).images, fresh=fresh), indent=2))
    else:
        print(json.dumps(sandbox_nodes.up(settings_of(c).images, nodes, fresh=fresh), indent=2))


@fikaso_task(local="remove the local test VPSs and everything on them")
def down(c):
    """Remove the local test VPS, and the node VPSs of `sandbox.up --nodes`, with everything on them."""
    vps.down()
    sandbox_nodes.down()


@fikaso_task(help={"nodes": "describe the node VPSs of `sandbox.up --nodes` instead"})
def info(c, nodes=False):
    """Print the running test VPS's SSH host, port, user, key, known_hosts and HTTP(S) ports as JSON."""
    print(json.dumps(sandbox_nodes.info() if nodes else vps.info(), indent=2))


@fikaso_task(local="start the test ACME server inside the local test VPS",
             help={"nodes": "start it inside node1 of `sandbox.up --nodes`, for the swarm, instead"})
def acme(c, nodes=False):
    """Start the test ACME server (pebble) inside the test VPS, for `fab certs.issue` there.

    Run it after `fab setup`. fabric.yaml's certificates section already points at it; the root
    that signs its certificates is written to .sandbox/acme/root.pem (for curl --cacert). With
    --nodes, it runs in node1 on the swarm's network, every domain resolving to node1, and its
    files go to .sandbox/nodes/acme/ (which .sandbox/swarm.yaml names).
    """
    print(json.dumps(sandbox_nodes.acme_up() if nodes else vps.acme_up(), indent=2))
