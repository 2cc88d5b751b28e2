"""How e2e tests act as a user would: the `fab` command line, the OpenSSH client, and curl."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `fab` runs at a lower priority: for users it runs on another machine than the VPS, and here it
# would otherwise take CPU from the stack and from the load check's clients on the same two cores.
FAB = ["nice", "-n", "10", sys.executable, "-m", "fabric"]


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
    from sandbox import vps
    (copy / vps.STATE_DIR.name).symlink_to(vps.STATE_DIR)
    return copy


def ssh(info: dict, command: str, timeout: int = 300, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command on the sandbox VPS with the OpenSSH client, as the deploy user (`input` on its stdin)."""
    return subprocess.run(["ssh", "-F", info["ssh_config"], info["alias"], command], capture_output=True,
                          text=True, timeout=timeout, input=input,
                          stdin=subprocess.DEVNULL if input is None else None)


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


# What samplers saw during the session's shared steps (the first setup), for test_secrets.py.
SAMPLED: dict[str, "ProcessSampler"] = {}


class ProcessSampler:
    """Every process's argv and environment on the test VPS, read from /proc over and over while a
    command runs: `with ProcessSampler() as seen: ...`, then seen.lines holds one line per distinct
    process seen ("argv: ... | env: ... | cgroup: ...", the cgroup naming its container).

    It runs as root in the VPS container (in Perl, which every Debian has, so that one sample of
    every process takes a few milliseconds), so it sees the processes of the deploy user, of root
    and of every container on the VPS's engine.
    """
    SCRIPT = r"""
        $| = 1; my (%seen, $samples); my $end = time + 900;
        sub slurp { open(my $h, '<', shift) or return ''; local $/; my $d = <$h>; return $d // '' }
        while (! -e '/tmp/stop-sampling' && time < $end) {
            $samples++;
            opendir(my $dir, '/proc'); my @pids = grep { /^\d+$/ && $_ != $$ } readdir($dir); closedir $dir;
            for my $pid (@pids) {
                my ($argv, $env, $cgroup) = map { slurp("/proc/$pid/$_") } qw(cmdline environ cgroup);
                tr/\0\n/  / for $argv, $env, $cgroup;
                my $line = "argv: $argv | env: $env | cgroup: $cgroup";
                print "$line\n" unless $seen{$line}++;
            }
        }
        print STDERR "samples=$samples\n";
    """

    def __enter__(self) -> "ProcessSampler":
        from sandbox import vps
        self.vps = vps
        subprocess.run(self.vps.in_vps("rm", "-f", "/tmp/stop-sampling"), check=True)
        self.process = subprocess.Popen(["docker", "exec", "-i", vps.CONTAINER, "perl", "-"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.process.stdin.write(self.SCRIPT)
        self.process.stdin.close()
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(self.vps.in_vps("touch", "/tmp/stop-sampling"), check=True)
        out = self.process.stdout.read()
        errors = self.process.stderr.read()
        self.process.wait(timeout=120)
        self.lines = out.splitlines()
        self.text = out
        self.samples = int(errors.rsplit("samples=", 1)[-1].split()[0]) if "samples=" in errors else 0


def local_secrets() -> dict[str, str]:
    """Every secret of the project: the database passwords and each panel's APP_KEY, by where it is kept."""
    found = {}
    for path in sorted((ROOT / "secrets").iterdir()):
        if path.name.endswith("password"):
            found[path.name] = path.read_text().strip()
        elif path.suffix == ".env":
            key = next(line for line in path.read_text().splitlines() if line.startswith("APP_KEY="))
            found[f"{path.name} APP_KEY"] = key.split("=", 1)[1].removeprefix("base64:")
    return found


class NearlyFull:
    """`path` on the test VPS moved, for the `with` block, onto a small filesystem of its own that
    has only `free_kb` left: a disk that fills up, without filling the machine's.

    The filesystem is a tmpfs (what is on it is copied in, and what was underneath comes back
    afterwards). Containers that mount `path` keep seeing what they saw: only new writes through
    `path` on the VPS meet the full disk, which is where Fikaso writes releases and backups.
    """

    def __init__(self, path: str, free_kb: int):
        from sandbox import vps
        self.vps, self.path, self.free_kb = vps, path, free_kb
        self.mount = "/run/nearly-full"

    def _root(self, script: str) -> str:
        result = subprocess.run(self.vps.in_vps("sh", "-ec", script), capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def __enter__(self) -> "NearlyFull":
        m = self.mount
        self._root(f"mkdir -p {m} && mount -t tmpfs -o size=64m tmpfs {m} && mkdir {m}/data && "
                   f"cp -a {self.path}/. {m}/data/ && chown --reference={self.path} {m}/data && "
                   f"chmod --reference={self.path} {m}/data && mount --bind {m}/data {self.path} && "
                   f"{{ dd if=/dev/zero of={m}/filler bs=1M 2>/dev/null || true; }} && "
                   f"truncate -s -{self.free_kb}K {m}/filler")
        return self

    def free(self) -> int:
        """Bytes still free there."""
        return int(self._root(f"df -B1 --output=avail {self.path} | tail -n 1"))

    def __exit__(self, *exc) -> None:
        self._root(f"umount {self.path} && umount {self.mount} && rmdir {self.mount}")
