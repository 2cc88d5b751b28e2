"""Images built here from Debian packages: the test VPS and stand-ins for the stack's images.

No container registry is reachable from our test machines, so the images the stack names are
stand-ins under the production names (sandbox/README.md). Each is built once per machine: an
image whose label holds the hash of what it is built from is reused as it is.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from fikaso import archive
from fikaso.errors import FikasoError

from .local import run, succeeds

SANDBOX_DIR = Path(__file__).resolve().parent  # the build contexts live beside this module
LABEL = "org.fikaso.built-from"
VPS_IMAGE = "fikaso-sandbox-vps:latest"
ACME_IMAGE = "fikaso-sandbox-acme:latest"
COMPOSE_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins",
                       "/usr/lib/docker/cli-plugins", str(Path.home() / ".docker" / "cli-plugins"))
REBUILD_FIX = "Run `make host` to check Docker, then try again; `docker images` shows what exists"


@dataclass(frozen=True)
class ImageSpec:
    name: str            # the tag the image gets
    context: Path        # its build folder under sandbox/
    rootfs: str          # which sandbox/rootfs/<rootfs>.packages it is built on


def standin_specs(images: Mapping[str, str]) -> list[ImageSpec]:
    """Stand-ins under the names set in fabric.yaml's fikaso.images."""
    standins = SANDBOX_DIR / "standins"
    return [ImageSpec(images[key], standins / folder, "standins")
            for key, folder in (("mysql", "mysql"), ("php_base", "php"), ("composer", "composer"),
                                ("nginx", "nginx"), ("certbot", "certbot"))]


def packages(rootfs: str) -> list[str]:
    text = (SANDBOX_DIR / "rootfs" / f"{rootfs}.packages").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def rootfs_tag(rootfs: str) -> str:
    digest = hashlib.sha256("\n".join(packages(rootfs)).encode()).hexdigest()[:12]
    return f"fikaso/rootfs-{rootfs}:{digest}"


def mmdebstrap_argv(rootfs: str, target: Path) -> list[str]:
    return ["mmdebstrap", "--quiet", "--variant=apt", f"--include={','.join(packages(rootfs))}",
            "bookworm", str(target)]


def build_argv(spec: ImageSpec, context: Path, built_from: str) -> list[str]:
    return ["docker", "build", "--quiet", "--build-arg", f"BASE={rootfs_tag(spec.rootfs)}",
            "--label", f"{LABEL}={built_from}", "--tag", spec.name, str(context)]


def compose_plugin() -> Path:
    for folder in COMPOSE_PLUGIN_DIRS:
        candidate = Path(folder) / "docker-compose"
        if candidate.is_file():
            return candidate
    raise FikasoError("The Docker Compose v2 plugin was not found on this machine",
                      "Run `make host`, which installs it")


def _label(name: str) -> str | None:
    fmt = "{{ index .Config.Labels \"" + LABEL + "\" }}"
    result = subprocess.run(["docker", "image", "inspect", "--format", fmt, name], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_rootfs(rootfs: str, log=print) -> None:
    tag = rootfs_tag(rootfs)
    if succeeds(["docker", "image", "inspect", tag]):
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "rootfs.tar"
        run(mmdebstrap_argv(rootfs, target), what=f"Building the {rootfs} root file system with mmdebstrap",
            fix="Check that the Debian package registry is reachable (apt-get update)")
        run(["docker", "import", str(target), tag], what=f"Importing {tag}", fix=REBUILD_FIX)
    log(f"phase: root file system {rootfs} built in {time.monotonic() - started:.1f} s")


def ensure_image(spec: ImageSpec, extra_files: Mapping[str, Path] | None = None, log=print) -> bool:
    """Build `spec` unless an image built from the same files exists. Returns True if it built."""
    ensure_rootfs(spec.rootfs, log)
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(spec.context, context)
        for name, path in (extra_files or {}).items():
            shutil.copy2(path, context / name)
        built_from = hashlib.sha256(
            (archive.tree(context, excluded_prefixes=()).sha256 + rootfs_tag(spec.rootfs)).encode()
        ).hexdigest()[:16]
        if _label(spec.name) == built_from:
            return False
        started = time.monotonic()
        run(build_argv(spec, context, built_from), what=f"Building image {spec.name}", fix=REBUILD_FIX)
    log(f"phase: image {spec.name} built in {time.monotonic() - started:.1f} s")
    return True


def ensure_all(images: Mapping[str, str], log=print) -> list[str]:
    """The VPS image, every stand-in and the test ACME server; returns the names to offer to the VPS."""
    ensure_image(ImageSpec(VPS_IMAGE, SANDBOX_DIR / "vps", "vps"), {"docker-compose": compose_plugin()}, log)
    specs = [*standin_specs(images), ImageSpec(ACME_IMAGE, SANDBOX_DIR / "acme", "standins")]
    for spec in specs:
        ensure_image(spec, log=log)
    return [spec.name for spec in specs]
