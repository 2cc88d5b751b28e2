"""The sandbox: a local container that behaves like a fresh VPS (sshd + its own Docker engine).

Its host key is made here before it starts and written to its state folder's known_hosts, so clients check
it strictly from the first connection. The stack's images, which cannot be pulled here, are
offered to its engine as stand-ins under their production names.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Mapping


from fikaso.commands.compose import NETWORK
from fikaso.config import PROJECT_ROOT
from fikaso.errors import FikasoError

from . import images
from .local import run, succeeds

# Two test VPSs can live side by side: the demo's (the default) and the one the end-to-end suite
# owns, so that whatever a user does on the demo VPS never decides whether `make test` passes.
INSTANCES = {"demo": ("fikaso-sandbox", ".sandbox"), "test": ("fikaso-test", ".sandbox-test")}
INSTANCE = os.environ.get("FIKASO_SANDBOX", "demo")
if INSTANCE not in INSTANCES:
    raise FikasoError(f"FIKASO_SANDBOX is {INSTANCE!r}, which names no test VPS",
                      f"Set it to one of {', '.join(INSTANCES)}, or unset it for the demo's")
CONTAINER, _STATE_NAME = INSTANCES[INSTANCE]
VOLUME = f"{CONTAINER}-docker"
ALIAS = CONTAINER
STATE_DIR = PROJECT_ROOT / _STATE_NAME
VPS_FILES = STATE_DIR / "vps"
READY_SECONDS = 90
DOCKER_FIX = "Run `make host` (it installs and starts Docker), then `fab sandbox.up` again"


def keygen_argv(path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Box:
    """One test VPS container: its name, the folder of its host key (mounted at /sandbox), and the
    network it joins (None: Docker's default bridge)."""

    name: str
    files: Path
    hostname: str = "fikaso-vps"
    network: str | None = None

    @property
    def volume(self) -> str:
        return f"{self.name}-docker"

    def run_argv(self, ports: Mapping[int, int]) -> list[str]:
        """`docker run` for a VPS container that can run its own Docker engine without --privileged.

        `ports` maps the VPS's ports 22, 80 and 443 to ports of this machine, fixed when the container
        is made: a VPS keeps its address when it reboots (`docker restart`), so must this one."""
        return [
            "docker", "run", "--detach", "--name", self.name, "--hostname", self.hostname,
            *(["--network", self.network] if self.network else []),
            "--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "--security-opt", "systempaths=unconfined",
            "--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--device-cgroup-rule", "a *:* rwm",
            "--tmpfs", "/run", "--tmpfs", "/tmp",
            "--volume", f"{self.volume}:/var/lib/docker",
            "--volume", f"{self.files}:/sandbox:ro",
            *(f"--publish=127.0.0.1:{outside}:{inside}" for inside, outside in ports.items()),
            images.VPS_IMAGE,
        ]

    def inspect(self, fmt: str) -> str:
        result = subprocess.run(["docker", "inspect", "--format", fmt, self.name], capture_output=True, text=True,
                                check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def is_running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def is_current(self) -> bool:
        """Running, from this checkout's files and the current VPS image."""
        mounted = self.inspect('{{range .Mounts}}{{if eq .Destination "/sandbox"}}{{.Source}}{{end}}{{end}}')
        return self.is_running() and mounted == str(self.files) and self.inspect("{{.Image}}") == _current_vps_image()

    def published(self, port: int) -> int:
        out = run(["docker", "port", self.name, f"{port}/tcp"], what=f"Reading {self.name}'s port {port}",
                  fix=DOCKER_FIX)
        return int(out.strip().splitlines()[0].rsplit(":", 1)[1])

    def host_key(self, client_key: Path) -> None:
        self.files.mkdir(mode=0o755, parents=True, exist_ok=True)
        host_key = self.files / "ssh_host_ed25519_key"
        if not host_key.exists():
            run(keygen_argv(host_key, "fikaso-sandbox-host"), what="Creating the sandbox host key",
                fix="Check that ssh-keygen (openssh-client) is installed")
        os.chmod(host_key, 0o644)  # read by root inside the VPS container, which installs it 0600 there
        (self.files / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())

    def start(self, fresh: bool) -> None:
        """Start a blank VPS unless a current one runs (a stopped one, one started from another
        checkout or from an older VPS image is replaced, as a fresh machine would be)."""
        if fresh or not self.is_current():
            self.remove()
            run(self.run_argv({port: free_port() for port in (22, 80, 443)}),
                what=f"Starting the test VPS {self.name}", fix=DOCKER_FIX)

    def wait_ready(self) -> None:
        port = self.published(22)
        self.wait("SSH server", lambda: _ssh_answers(port))
        self.wait("Docker engine", lambda: succeeds(["docker", "exec", self.name, "docker", "info"]))

    def wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not ready():
            if not self.is_running():
                logs = subprocess.run(["docker", "logs", "--tail", "20", self.name], capture_output=True, text=True)
                raise FikasoError(f"The test VPS {self.name} stopped while waiting for {what}: "
                                  f"{(logs.stderr + logs.stdout).strip()[-500:]}", DOCKER_FIX)
            if time.monotonic() > deadline:
                raise FikasoError(f"The {what} of the test VPS {self.name} was not ready within {READY_SECONDS} s",
                                  f"See `docker logs {self.name}`; `fab sandbox.up --fresh` starts afresh")
            time.sleep(0.3)

    def offer_images(self, names: list[str], log) -> None:
        """Load into the VPS's engine the stand-ins it lacks or has in an older build, in one stream."""
        wanted = {}
        for name in names:
            wanted[name] = run(["docker", "image", "inspect", "--format", "{{.Id}}", name],
                               what=f"Reading image {name}", fix=DOCKER_FIX).strip()
        inner = subprocess.run(["docker", "exec", self.name, "docker", "image", "inspect", "--format",
                                "{{.Id}}", *names], capture_output=True, text=True, check=False).stdout.split()
        missing = [name for name in names if wanted[name] not in inner]
        if not missing:
            return
        started = time.monotonic()
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        try:
            run(["docker", "exec", "-i", self.name, "docker", "load", "--quiet"], stdin=save.stdout,
                what=f"Loading the stand-in images into {self.name}", fix=DOCKER_FIX)
        finally:
            save.stdout.close()
            save.wait()
        log(f"phase: {len(missing)} stand-in image(s) offered to {self.name} in {time.monotonic() - started:.1f} s")

    def known_hosts_line(self) -> str:
        host_pub = (self.files / "ssh_host_ed25519_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.published(22)} {host_pub[0]} {host_pub[1]}\n"

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "--force", "--volumes", self.name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", "--force", self.volume], capture_output=True, check=False)


BOX = Box(CONTAINER, VPS_FILES)


def ssh_config_text(port: int, key: Path, known_hosts: Path, alias: str = ALIAS) -> str:
    return "\n".join([
        f"Host {alias}",
        "  HostName 127.0.0.1",
        f"  Port {port}",
        "  User deploy",
        f"  IdentityFile {key}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {known_hosts}",
        "  StrictHostKeyChecking yes",
        # A dead link is given up after 5 s x 3 unanswered, not 15 s x 3 (fikaso/connection.py).
        "  ServerAliveInterval 5",
        "",
    ])


def _current_vps_image() -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", images.VPS_IMAGE],
               what="Reading the VPS image", fix=DOCKER_FIX).strip()


def client_key() -> Path:
    """The key every test VPS of this checkout lets in (made once, kept by `sandbox.down`)."""
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    key = STATE_DIR / "id_ed25519"
    if not key.exists():
        run(keygen_argv(key, "fikaso-sandbox-client"), what="Creating the sandbox SSH key",
            fix="Check that ssh-keygen (openssh-client) is installed")
    return key


def _ssh_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _write_client_files(info: dict) -> None:
    Path(info["known_hosts"]).write_text(BOX.known_hosts_line())
    Path(info["ssh_config"]).write_text(ssh_config_text(info["port"], Path(info["key_file"]),
                                                        Path(info["known_hosts"])))
    (STATE_DIR / "info.json").write_text(json.dumps(info, indent=2) + "\n")


def info() -> dict:
    """Where the running sandbox answers: SSH host, port, user, key, known_hosts, HTTP(S) ports."""
    if not BOX.is_running():
        raise FikasoError("No sandbox is running", "Start one with `fab sandbox.up`")
    return {
        "alias": ALIAS,
        "host": "127.0.0.1",
        "port": BOX.published(22),
        "user": "deploy",
        "key_file": str(STATE_DIR / "id_ed25519"),
        "known_hosts": str(STATE_DIR / "known_hosts"),
        "ssh_config": str(STATE_DIR / "ssh_config"),
        "http_port": BOX.published(80),
        "https_port": BOX.published(443),
    }


def up(image_names: Mapping[str, str], log=print, fresh: bool = False) -> dict:
    """Start the sandbox (or find it running), offer it the stand-ins, and return its info.

    fresh: start from a blank VPS even when one is running, as a new machine would.
    """
    standins = ready_images(image_names, log)
    BOX.host_key(client_key())
    BOX.start(fresh)
    started = time.monotonic()
    BOX.wait_ready()
    log(f"phase: sandbox sshd and dockerd ready in {time.monotonic() - started:.1f} s")
    BOX.offer_images(standins, log)
    details = info()
    _write_client_files(details)
    return details


def ready_images(image_names: Mapping[str, str], log) -> list[str]:
    """Build (once per machine) the VPS image and the stand-ins; the stand-ins' names."""
    if not succeeds(["docker", "info"]):
        raise FikasoError("The local Docker engine does not answer", DOCKER_FIX)
    started = time.monotonic()
    standins = images.ensure_all(image_names, log)
    log(f"phase: images ready in {time.monotonic() - started:.1f} s")
    return standins


def down(log=print) -> None:
    """Remove the sandbox container, its Docker data and its host files; keep the client key."""
    BOX.remove()
    for name in ("known_hosts", "ssh_config", "info.json"):
        (STATE_DIR / name).unlink(missing_ok=True)
    log("sandbox removed")


# ---- the test ACME server ------------------------------------------------------------------

ACME_CONTAINER = "fikaso_acme"
ACME_DIRECTORY = "https://pebble:14000/dir"
ACME_DIR = STATE_DIR / "acme"
ACME_FIX = "Run `fab sandbox.up` and `fab setup` first: the ACME server joins the stack's network"


def in_vps(*argv: str) -> list[str]:
    return ["docker", "exec", CONTAINER, *argv]


def acme_up(log=print) -> dict:
    """Start pebble inside the sandbox VPS, on the stack's network (or find it running).

    Every domain resolves, for pebble, to the VPS's address on that network, so its challenges
    reach the proxy's published port 80 as Let's Encrypt's would reach a real VPS. Writes the CA
    of pebble's API (for fikaso.certificates.ca_bundle) and the root that signs the certificates
    it issues (for clients) to .sandbox/acme/.
    """
    info()  # a clear error when no sandbox runs
    gateway = run(in_vps("docker", "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}",
                         NETWORK), what="Finding the stack's network in the sandbox", fix=ACME_FIX).strip()
    return start_acme(BOX, NETWORK, gateway, ACME_DIR, log)


def start_acme(box: Box, network: str, answer: str, out_dir: Path, log=print) -> dict:
    """pebble in `box`'s Docker engine on `network` (started unless it runs), every domain resolving
    to `answer`; its API's CA and its root written to `out_dir`."""
    inside = lambda *argv: ["docker", "exec", box.name, *argv]  # noqa: E731
    running = subprocess.run(inside("docker", "inspect", "--format", "{{.State.Running}}", ACME_CONTAINER),
                             capture_output=True, text=True, check=False).stdout.strip()
    if running != "true":
        subprocess.run(inside("docker", "rm", "--force", ACME_CONTAINER), capture_output=True, check=False)
        run(inside("docker", "run", "--detach", "--name", ACME_CONTAINER, "--network", network,
                   "--network-alias", "pebble", "--env", f"ANSWER_IPV4={answer}", images.ACME_IMAGE),
            what="Starting the test ACME server (pebble)", fix=ACME_FIX)
    api = inside("docker", "exec", ACME_CONTAINER, "curl", "--silent", "--fail", "--cacert", "/pebble/ca.pem")
    box.wait("ACME server", lambda: succeeds([*api, "https://localhost:14000/dir"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"ca_bundle": out_dir / "ca.pem", "root": out_dir / "root.pem"}
    files["ca_bundle"].write_text(run(inside("docker", "exec", ACME_CONTAINER, "cat", "/pebble/ca.pem"),
                                      what="Reading the ACME API's CA", fix=ACME_FIX))
    # pebble makes new roots at every start: read the current one.
    files["root"].write_text(run([*api, "https://localhost:15000/roots/0"], what="Reading pebble's root",
                                 fix=ACME_FIX))
    log(f"ACME server {ACME_DIRECTORY} answers; every domain resolves to {answer}")
    return {"directory": ACME_DIRECTORY, **{key: str(path) for key, path in files.items()}}


def acme_point(domain: str, address: str | None, box: Box = BOX) -> None:
    """Make `domain` resolve, for pebble, to `address` (None: back to the default)."""
    path, body = ("/add-a", {"host": f"{domain}.", "addresses": [address]}) if address else \
        ("/clear-a", {"host": f"{domain}."})
    run(["docker", "exec", box.name, "docker", "exec", ACME_CONTAINER, "curl", "--silent", "--fail",
         "--data", json.dumps(body), f"http://localhost:8055{path}"],
        what=f"Pointing {domain} at {address or 'the VPS'}", fix=ACME_FIX)
