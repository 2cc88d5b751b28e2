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


def fab_timed(*args: str, env: dict | None = None, marks: dict[str, str] | None = None, cwd: Path = ROOT,
              timeout: int = 900) -> tuple[subprocess.CompletedProcess, float, float, dict[str, float]]:
    """Run `fab ARGS`, noting (time.monotonic) when it started, when it ended, and when each line
    matching a regex in `marks` appeared on its output (the moment a step reported done)."""
    import re
    import threading
    seen: dict[str, float] = {}
    started = time.monotonic()
    process = subprocess.Popen([*FAB, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
    reader.start()
    lines = []
    for line in process.stdout:
        lines.append(line)
        for name, pattern in (marks or {}).items():
            if name not in seen and re.search(pattern, line):
                seen[name] = time.monotonic()
    process.wait(timeout=timeout)
    ended = time.monotonic()
    reader.join(timeout=10)
    print(f"fab {' '.join(args)} took {ended - started:.1f} s (exit {process.returncode})")
    return (subprocess.CompletedProcess(process.args, process.returncode, "".join(lines), "".join(errors)),
            started, ended, seen)


def http_only(info) -> None:
    """No certificate and no renewal entry on the server, and the proxy back to HTTP only."""
    ssh(info, "rm -rf /srv/fikaso/certificates/* && { crontab -l | grep -v fikaso-certs | crontab - || true; }")
    assert fab("setup").returncode == 0
