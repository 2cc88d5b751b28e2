"""The swarm itself: forming it, labelling its nodes, its network, deploying the stack on it, and the
one-off containers that install a release on each node."""
from __future__ import annotations

import json

from ..config import PANELS, Node
from ..layout import APP_ROOT, Layout
from ..shell import cmd, q, wait_healthy_lines
from ..swarm_stack import FILE_NAME, ROLE_LABEL, STACK
from .compose import NETWORK

DEPLOYED_HASH_FILE = ".swarm-deployed-sha256"
CONVERGE_SECONDS = 300
SWARM_PORT = 2377


def address_lines(node: Node) -> list[str]:
    """Leave in $address the address other nodes reach this one at."""
    if node.address:
        return [f"address={q(node.address)}"]
    return ["address=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')"]


def init_script(node: Node) -> str:
    return "\n".join([*address_lines(node),
                      'docker swarm init --advertise-addr "$address" >/dev/null',
                      "echo \"node=$(docker info --format '{{.Swarm.NodeID}}')\""])


def join_request(token: str, manager_address: str) -> bytes:
    """What a node sends its Docker engine to join: on stdin, so the token is never on a command line."""
    return json.dumps({"ListenAddr": f"0.0.0.0:{SWARM_PORT}", "AdvertiseAddr": "ADDRESS",
                       "RemoteAddrs": [f"{manager_address}:{SWARM_PORT}"], "JoinToken": token}).encode()


def join_script(node: Node) -> str:
    """Join the swarm through the Docker API (`docker swarm join` takes the token only as an argument)."""
    return "\n".join([
        *address_lines(node),
        'status=$(sed "s/\\"ADDRESS\\"/\\"$address\\"/" | curl --silent --show-error --unix-socket /var/run/docker.sock '
        "--header 'Content-Type: application/json' --data @- --output /tmp/fikaso-join.out "
        "--write-out '%{http_code}' http://localhost/swarm/join)",
        'if [ "$status" != 200 ]; then cat /tmp/fikaso-join.out >&2; echo >&2; rm -f /tmp/fikaso-join.out; exit 1; fi',
        "rm -f /tmp/fikaso-join.out",
    ])


def label_script(changes: list[tuple[str, str, bool]]) -> str:
    """(node id, role, add?) for each label to add or remove."""
    lines = []
    for node_id, role, add in changes:
        label = ROLE_LABEL.format(role=role)
        lines.append(cmd("docker", "node", "update", "--label-add" if add else "--label-rm",
                         f"{label}=true" if add else label, node_id) + " >/dev/null")
    return "\n".join(lines)


def network_script() -> str:
    """The stack's overlay network; attachable, so that one-off containers join it too."""
    return cmd("docker", "network", "create", "--driver", "overlay", "--attachable", NETWORK) + " >/dev/null"


def services_line() -> str:
    return (f"docker service ls --filter label=com.docker.stack.namespace={STACK} "
            "--format '{{.Name}} {{.Replicas}}'")


def converged_probe() -> str:
    """Succeeds when every service of the stack runs as many tasks as it should (each healthy)."""
    return f"{services_line()} | awk '{{split($2, n, \"/\"); if (n[1] != n[2] || $2 ~ /\\(/) bad=1}} END {{exit bad}}'"


def deploy_script(layout: Layout, sha: str, seconds: int = CONVERGE_SECONDS) -> str:
    """`docker stack deploy` the Swarm form of the bundle, then wait until every service has all its
    tasks running and healthy (a task joins its service only once its health check passes)."""
    return "\n".join([
        f"cd {q(layout.stack)}",
        cmd("docker", "stack", "deploy", "--prune", "--resolve-image", "never", "--compose-file", FILE_NAME, STACK)
        + " >/dev/null",
        *wait_healthy_lines(converged_probe(), seconds),
        'if [ "$healthy" != yes ]; then',
        f"  echo 'The stack did not converge within {seconds} s; tasks that are not running:' >&2",
        f"  docker stack ps {STACK} --filter desired-state=running --format '{{{{.Name}}}} on {{{{.Node}}}}: "
        "{{.CurrentState}} {{.Error}}' | grep -v ' Running ' >&2 || true",
        "  exit 1",
        "fi",
        f"printf '%s\\n' {q(sha)} > {q(layout.stack / DEPLOYED_HASH_FILE)}",
    ])


def one_off(layout: Layout, panel: str, image: str, uid: str, workdir: str, *command: str) -> str:
    """A command in a one-off container of the panel's image on this node, with the panel's folder and
    volumes mounted as its service has them, on the stack's network (it reaches MySQL)."""
    return cmd("docker", "run", "--rm", "--network", NETWORK, "--user", f"{uid}:{uid}", "--workdir", workdir,
               "--volume", f"{layout.site(panel)}:{APP_ROOT}",
               "--volume", f"{STACK}_{panel}_storage:{APP_ROOT}/shared/storage",
               "--volume", f"{STACK}_{panel}_bootstrap_cache:{APP_ROOT}/shared/bootstrap-cache",
               "--env", "COLUMNS=120", image, *command)


def panel_services() -> list[str]:
    return [f"{STACK}_{panel}_panel" for panel in PANELS]


def scale_script(panel: str, replicas: int) -> str:
    """On a manager: run `replicas` PHP-FPM tasks for the panel; returns once they run (a task removed
    stops gracefully, finishing its requests, while nginx sends new ones to the others)."""
    return cmd("docker", "service", "scale", "--detach=false", f"{STACK}_{panel}_panel={replicas}")
