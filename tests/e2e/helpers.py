"""How e2e tests act as a user would: the `fab` command line, the OpenSSH client, and curl."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAB = [sys.executable, "-m", "fabric"]


def fab(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `fab ARGS` in the project folder as a user would; print how long it took."""
    started = time.monotonic()
    result = subprocess.run([*FAB, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    print(f"fab {' '.join(args)} took {time.monotonic() - started:.1f} s (exit {result.returncode})")
    return result


def copy_project(copy: Path) -> Path:
    """The project's code, settings and secrets in a scratch folder, reaching the same sandbox."""
    copy.mkdir()
    for name in ("fabfile.py", "fabric.yaml"):
        shutil.copy(ROOT / name, copy / name)
    for name in ("tasks", "fikaso", "sandbox", "examples", "nginx", "stack", "dockerfiles", "init-db"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "secrets", copy / "secrets")
    (copy / ".sandbox").symlink_to(ROOT / ".sandbox")
    return copy


def ssh(info: dict, command: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command on the sandbox VPS with the OpenSSH client, as the deploy user."""
    return subprocess.run(["ssh", "-F", info["ssh_config"], info["alias"], command], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def curl(info: dict, host: str, path: str = "/") -> tuple[int, str]:
    """GET a page through the VPS's port 80 with `host` as the Host header."""
    result = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", f"Host: {host}",
                             f"http://127.0.0.1:{info['http_port']}{path}"],
                            capture_output=True, text=True, timeout=60)
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


def server_snapshot(info: dict) -> str:
    """Everything a failed command could have touched: the base folder's files and the containers."""
    result = ssh(info, "find /srv/fikaso -xdev -printf '%p %s %m %l\\n' 2>/dev/null | sort | sha256sum; "
                       "docker ps -a --no-trunc --format '{{.ID}} {{.Status}}' | sed 's/Up .*/Up/' | sort")
    assert result.returncode == 0, result.stderr
    return result.stdout
