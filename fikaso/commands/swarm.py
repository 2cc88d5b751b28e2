"""The swarm itself: forming it, labelling its nodes, its network, deploying the stack on it, and the
one-off containers that install a release on each node."""
from __future__ import annotations

import json

from ..config import PANELS, Node
from ..layout import APP_ROOT, Layout
from ..shell import cmd, q, wait_healthy_lines
from ..swarm_stack import ACME, FILE_NAME, ROLE_LABEL, STACK
from .compose import NETWORK, NGINX_SERVICES, SERVICES, task_container

DEPLOYED_HASH_FILE = ".swarm-deployed-sha256"
CONVERGE_SECONDS = 300
SWARM_PORT = 2377


SWARM_SERVICES = (*SERVICES, ACME)   # the stack's services on a swarm: one more, see swarm_stack.py


def address_lines(node: Node) -> list[str]:
    """Leave in $address the address other nodes reach this one at."""
    return [f"address={q(node.address)}"] if node.address else default_address_lines()


def default_address_lines() -> list[str]:
    """Leave in $address the address of this node's default route ("" if it has none)."""
    return ["address=$({ ip -4 route get 1.1.1.1 2>/dev/null || true; } | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')"]


def init_script(node: Node) -> str:
    return "\n".join([*address_lines(node), 'docker swarm init --advertise-addr "$address" >/dev/null'])


def join_request(token: str, manager_address: str) -> bytes:
    """What a node sends its Docker engine to join: on stdin, so the token is never on a command line."""
    host = f"[{manager_address}]" if ":" in manager_address else manager_address
    return json.dumps({"ListenAddr": f"0.0.0.0:{SWARM_PORT}", "AdvertiseAddr": "ADDRESS",
                       "RemoteAddrs": [f"{host}:{SWARM_PORT}"], "JoinToken": token}).encode()


def join_script(node: Node) -> str:
    """Join the swarm through the Docker API (`docker swarm join` takes the token only as an argument)."""
    return "\n".join([
        *address_lines(node),
        "answer=$(mktemp)",
        'status=$(sed "s/\\"ADDRESS\\"/\\"$address\\"/" | curl --silent --show-error --unix-socket /var/run/docker.sock '
        "--header 'Content-Type: application/json' --data @- --output \"$answer\" "
        "--write-out '%{http_code}' http://localhost/swarm/join)",
        'if [ "$status" != 200 ]; then cat "$answer" >&2; echo >&2; rm -f "$answer"; exit 1; fi',
        'rm -f "$answer"',
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
    """Succeeds when every service of the stack runs as many tasks as it should (each healthy) and no
    rolling update is under way."""
    counts = f"{services_line()} | awk '{{split($2, n, \"/\"); if (n[1] != n[2] || $2 ~ /\\(/) bad=1}} END {{exit bad}}'"
    return f"{counts} && [ -z \"$({update_states()} | grep -v -x -e '' -e completed)\" ]"


def update_states() -> str:
    """Each of the stack's services' rolling update state, one per line ("" if it never had one)."""
    return (f"docker service inspect --format '{{{{if .UpdateStatus}}}}{{{{.UpdateStatus.State}}}}{{{{end}}}}' "
            f"$(docker service ls --quiet --filter label=com.docker.stack.namespace={STACK})")


def deploy_script(layout: Layout, sha: str, seconds: int = CONVERGE_SECONDS) -> str:
    """`docker stack deploy` the Swarm form of the bundle, then wait until every service has all its
    tasks running and healthy (a task joins its service only once its health check passes)."""
    return "\n".join([
        f"cd {q(layout.stack)}",
        cmd("docker", "stack", "deploy", "--prune", "--resolve-image", "never", "--compose-file", FILE_NAME, STACK)
        + " >/dev/null",
        *wait_healthy_lines(converged_probe(), seconds),
        'if [ "$healthy" != yes ]; then',
        f"  if {update_states()} | grep -q -e rollback -e paused; then",
        "    echo 'Swarm rolled back an update of the stack: a new task did not become healthy.' >&2",
        "  fi",
        f"  echo 'The stack did not converge within {seconds} s; tasks that are not running:' >&2",
        f"  docker stack ps {STACK} --filter desired-state=running --format '{{{{.Name}}}} on {{{{.Node}}}}: "
        "{{.CurrentState}} {{.Error}}' | grep -v ' Running ' >&2 || true",
        "  exit 1",
        "fi",
        f"printf '%s\\n' {q(sha)} > {q(layout.stack / DEPLOYED_HASH_FILE)}",
    ])


def reload_nginx_here_script() -> str:
    """Reload (after `nginx -t`) each nginx task running on this node: the config folders are mounted,
    and nginx reads a changed config only then."""
    return "\n".join(f"c=$({task_container(service)}); if [ -n \"$c\" ]; then docker exec \"$c\" sh -c "
                     "'nginx -t -q && nginx -s reload'; fi" for service in NGINX_SERVICES)


def wait_converged_lines(seconds: int = CONVERGE_SECONDS) -> list[str]:
    """Once the stack exists: wait until every task runs where the labels now place it."""
    return [f"if [ -n \"$(docker service ls --quiet --filter label=com.docker.stack.namespace={STACK})\" ]; then",
            *(f"  {line}" for line in wait_healthy_lines(converged_probe(), seconds)),
            f"  if [ \"$healthy\" != yes ]; then echo 'The stack did not settle within {seconds} s' >&2; exit 1; fi",
            "fi"]


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
