"""Several test VPSs on a network of their own, for the stack on a Docker Swarm.

`fab sandbox.up --nodes=3` starts <vps>-node1..3 beside the one-VPS sandbox, each a VPS like it
(sshd and its own Docker engine, the stand-ins loaded), on the bridge network <vps>-nodes, where
they reach each other as a provider's private network would let them. It writes their ssh_config
entries and a Fikaso configuration naming them (swarm.yaml in the sandbox's folder, for
`fab -f .sandbox/swarm.yaml setup`): node1 is the manager and database node, every node is a web
and an edge node.
"""
from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

import yaml

from fikaso.commands.compose import NETWORK as STACK_NETWORK
from fikaso.config import PANELS
from fikaso.errors import FikasoError

from .local import run, succeeds
from .vps import CONTAINER, DOCKER_FIX, STATE_DIR, Box, client_key, ready_images, ssh_config_text, start_acme
from .vps import acme_point as acme_point_in

NODES_DIR = STATE_DIR / "nodes"
NETWORK = f"{CONTAINER}-nodes"
SWARM_CONFIG = STATE_DIR / "swarm.yaml"
ACME_DIR = NODES_DIR / "acme"
MAX_NODES = 5


def box(number: int) -> Box:
    return Box(f"{CONTAINER}-node{number}", NODES_DIR / f"node{number}" / "vps", hostname=f"node{number}",
               network=NETWORK)


def existing() -> list[int]:
    """The numbers of this checkout's node containers, running or not."""
    out = subprocess.run(["docker", "ps", "--all", "--format", "{{.Names}}", "--filter", f"name=^{CONTAINER}-node"],
                         capture_output=True, text=True, check=False).stdout.split()
    prefix = f"{CONTAINER}-node"
    return sorted(int(name[len(prefix):]) for name in out if name[len(prefix):].isdigit())


def roles(number: int) -> list[str]:
    return ["manager", "database", "web", "edge"] if number == 1 else ["web", "edge"]


def config_text(count: int, ports: list[dict] | None = None) -> str:
    """`ports`: each node's published ports (info()'s nodes): visitors reach its proxy there, which is
    what `fab doctor` checks (a node's public setting)."""
    nodes = [{"host": box(n).name, "roles": roles(n)} for n in range(1, count + 1)]
    for node, published in zip(nodes, ports or []):
        node["public"] = {"http_port": published["http_port"], "https_port": published["https_port"]}
    certificates = {"ca_bundle": str((ACME_DIR / "ca.pem").relative_to(STATE_DIR.parent))}
    return ("# Written by `fab sandbox.up --nodes=N`: the test VPSs as a swarm. Use it with\n"
            f"# `fab -f {SWARM_CONFIG.relative_to(STATE_DIR.parent)} TASK`; it is read over fabric.yaml.\n"
            "# The certificates come from the nodes' own test ACME server (`fab sandbox.acme --nodes`).\n"
            "# Queue workers and schedulers run on one VPS only, so fabric.yaml's are turned off here.\n"
            + yaml.safe_dump({"fikaso": {"nodes": nodes, "certificates": certificates, "panels": {
                panel: {"workers": 0, "scheduler": False} for panel in PANELS}}}, sort_keys=False))


def acme_up(log=print) -> dict:
    """pebble inside node1, on the stack's overlay network (made by `fab setup`): every domain resolves
    to node1, unless acme_point says otherwise."""
    first = info()["nodes"][0]
    return {**start_acme(box(1), STACK_NETWORK, first["address"], ACME_DIR, log), "nodes": info()["nodes"]}


def acme_point(domain: str, number: int | None) -> None:
    """Make `domain` resolve, for the nodes' pebble, to node `number` (None: back to node1)."""
    acme_point_in(domain, info()["nodes"][number - 1]["address"] if number else None, box(1))


def up(image_names: Mapping[str, str], count: int, log=print, fresh: bool = False) -> dict:
    """Start (or find running) `count` node VPSs; remove this checkout's nodes beyond `count`."""
    if not 2 <= count <= MAX_NODES:
        raise FikasoError(f"--nodes={count} is out of range", f"Give 2 to {MAX_NODES} (1 is `fab sandbox.up`)")
    standins = ready_images(image_names, log)
    key = client_key()
    for number in existing():
        if number > count:
            box(number).remove()
    if not succeeds(["docker", "network", "inspect", NETWORK]):
        run(["docker", "network", "create", NETWORK], what="Creating the test VPSs' network", fix=DOCKER_FIX)
    boxes = [box(n) for n in range(1, count + 1)]
    started = time.monotonic()

    def start(node: Box) -> None:
        node.host_key(key)
        node.start(fresh)
        node.wait_ready()
        node.offer_images(standins, log)
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(start, boxes))
    log(f"phase: {count} node VPSs ready in {time.monotonic() - started:.1f} s")
    details = info(count)
    known_hosts, ssh_config = Path(details["known_hosts"]), Path(details["ssh_config"])
    known_hosts.write_text("".join(node.known_hosts_line() for node in boxes))
    ssh_config.write_text("\n".join(ssh_config_text(node["port"], key, known_hosts, alias=node["alias"])
                                    for node in details["nodes"]))
    SWARM_CONFIG.write_text(config_text(count, details["nodes"]))
    return details


def info(count: int | None = None) -> dict:
    """Each running node's SSH alias and port, HTTP(S) ports and address on the nodes' network."""
    numbers = range(1, count + 1) if count else existing()
    nodes = []
    for number in numbers:
        node = box(number)
        if not node.is_running():
            raise FikasoError(f"The test VPS {node.name} is not running", "Start the nodes with `fab sandbox.up --nodes=N`")
        nodes.append({"alias": node.name, "port": node.published(22), "http_port": node.published(80),
                      "https_port": node.published(443), "roles": roles(number),
                      "address": node.inspect(f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}')})
    if not nodes:
        raise FikasoError("No node VPSs are running", "Start them with `fab sandbox.up --nodes=3`")
    return {"nodes": nodes, "config": str(SWARM_CONFIG), "ssh_config": str(NODES_DIR / "ssh_config"),
            "known_hosts": str(NODES_DIR / "known_hosts"), "key_file": str(STATE_DIR / "id_ed25519")}


def down(log=print) -> None:
    for number in existing():
        box(number).remove()
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True, check=False)
    for name in ("ssh_config", "known_hosts"):
        (NODES_DIR / name).unlink(missing_ok=True)
    SWARM_CONFIG.unlink(missing_ok=True)
    log("node VPSs removed")

