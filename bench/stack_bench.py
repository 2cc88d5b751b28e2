"""Benchmark: what the stack delivers to visitors, through the proxy, with wrk.

For each configuration of the store panel, wrk loads, one after another:
- the Laravel page `/` (a view with a row read from the panel's database), and
- a static file of the release (`/app.css`, served by the panel's nginx),
each over HTTP and over HTTPS (TLS from the proxy, with the domain sent as SNI; with a certificate
issued, the proxy answers HTTP with a redirect to HTTPS, so the HTTP rows measure that), and reports
requests per second, p50 and p99 latency, and any answer that was not 2xx/3xx.

Configurations, each deployed with `fab deploy --panel=store` before it is measured:
- `tuned`: the project as it is (OPcache on, no timestamp checks, the FPM pool Fikaso sizes);
- `untuned`: the same app on a PHP image with OPcache off and PHP's default FPM pool
  (pm.max_children 5), as a plain php:8.2-fpm image runs;
- `persistent`: tuned, and the app's PDO connections persistent (DB_PERSISTENT=true).

Runs rotate the configurations' order; the table gives the median (min-max) of the runs. wrk runs
on the same machine as the test VPS, so client and server share its cores: compare the rows with
each other, not with figures from other machines. Needs the demo VPS (`make demo`), wrk (`make
host` installs it) and root (wrk sees the domains through a private /etc/hosts, by `unshare`).
Afterwards the store panel runs the project's own image and app again, with HTTPS on.

    .venv/bin/python bench/stack_bench.py [--runs 3] [--seconds 15] [--connections 32]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import ssl
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from figures import rotated, spread  # beside this script, which Python puts first on sys.path
from sandbox import vps as sandbox

ROOT = Path(__file__).resolve().parent.parent
FAB = [sys.executable, "-m", "fabric"]
CONFIGURATIONS = ("tuned", "untuned", "persistent")
TARGETS = (("page", "/"), ("static", "/app.css"))
SCHEMES = ("http", "https")


def domain() -> str:
    return yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"]["panels"]["store"]["domain"]


def fab(*args: str, cwd: Path = ROOT, env: dict | None = None) -> str:
    result = subprocess.run([*FAB, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        sys.exit(f"fab {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def https_ready(info: dict, name: str) -> bool:
    """Whether the proxy completes a TLS handshake for the domain (a certificate is issued)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", info["https_port"]), 5) as raw:
            with context.wrap_socket(raw, server_hostname=name):
                return True
    except OSError:
        return False


def untuned_project(folder: Path) -> Path:
    """A copy of the project whose PHP image has OPcache off and PHP's default FPM pool."""
    project = folder / "untuned"
    project.mkdir()
    for name in ("fabfile.py", "fabric.yaml"):
        shutil.copy(ROOT / name, project / name)
    for name in ("tasks", "fikaso", "sandbox", "examples", "nginx", "stack", "dockerfiles", "init-db", "secrets"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    # The demo VPS's keys, and the asset build cache (the same assets: not built again).
    (project / sandbox.STATE_DIR.name).symlink_to(sandbox.STATE_DIR)
    (ROOT / ".cache").mkdir(exist_ok=True)
    (project / ".cache").symlink_to(ROOT / ".cache")
    ini = project / "dockerfiles" / "php" / "conf.d" / "zz-fikaso.ini"
    ini.write_text(re.sub(r"(?m)^opcache\.enable = 1$", "opcache.enable = 0", ini.read_text()))
    (project / "dockerfiles" / "php" / "php-fpm.d" / "zz-fikaso.conf").write_text(
        "[global]\nprocess_control_timeout = 30s\n[www]\nlisten = 9000\nclear_env = no\n")
    return project


def persistent_app(folder: Path) -> Path:
    """The store example app with persistent PDO connections by default."""
    app = folder / "persistent-app"
    shutil.copytree(ROOT / "examples" / "laravel-app", app, symlinks=True,
                    ignore=shutil.ignore_patterns("vendor", "node_modules"))
    config = app / "config" / "database.php"
    config.write_text(config.read_text().replace("env('DB_PERSISTENT', false)", "env('DB_PERSISTENT', true)"))
    assert "env('DB_PERSISTENT', true)" in config.read_text(), "the example app no longer reads DB_PERSISTENT"
    return app


def wrk(info: dict, name: str, scheme: str, path: str, seconds: int, connections: int, hosts: Path) -> dict:
    port = info["http_port"] if scheme == "http" else info["https_port"]
    url = f"{scheme}://{name}:{port}{path}"
    # The domain resolves to 127.0.0.1 for wrk alone: a private mount of /etc/hosts.
    script = f"mount --bind {hosts} /etc/hosts && exec wrk -t2 -c{connections} -d{seconds}s --latency {url}"
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"wrk {url} failed:\n{result.stdout}{result.stderr}")
    out = result.stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency("50"),
            "p99": latency("99"), "bad": (int(bad.group(1)) if bad else 0) +
            (sum(int(n) for n in errors.groups()) if errors else 0)}


def deploy(configuration: str, projects: dict) -> None:
    cwd, source = projects[configuration]
    env = {"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(source)} if source else {}
    fab("deploy", "--panel=store", cwd=cwd, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run `make host` (or apt-get install wrk), then run this again.")
    info, name = sandbox.info(), domain()
    if not https_ready(info, name):
        print("issuing certificates from the test VPS's ACME server (fab sandbox.acme, fab certs.issue)", flush=True)
        fab("sandbox.acme")
        fab("certs.issue")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hosts = folder / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {name}\n")
        projects = {"tuned": (ROOT, None), "untuned": (untuned_project(folder), None),
                    "persistent": (ROOT, persistent_app(folder))}
        print(f"wrk: 2 threads, {args.connections} connections, {args.seconds} s per figure; "
              f"{args.runs} runs, order rotated; {os.cpu_count()} cores shared by client and server", flush=True)
        try:
            for run in range(1, args.runs + 1):
                for configuration in rotated(CONFIGURATIONS, run):
                    deploy(configuration, projects)
                    for target, path in TARGETS:
                        for scheme in SCHEMES:
                            result = wrk(info, name, scheme, path, args.seconds, args.connections, hosts)
                            figures.setdefault((configuration, target, scheme), []).append(result)
                            print(f"run {run} {configuration:<10} {target:<6} {scheme:<5} {result['rps']:8.0f} req/s  "
                                  f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
                                  f"not 2xx/3xx {result['bad']}", flush=True)
        finally:
            deploy("tuned", projects)
    print(f"\nmedian (min-max) of {args.runs} runs")
    print(f"{'configuration':<12} {'target':<7} {'scheme':<6} {'req/s':>20} {'p50 ms':>22} {'p99 ms':>22} {'not 2xx':>8}")
    for (configuration, target, scheme), results in figures.items():
        print(f"{configuration:<12} {target:<7} {scheme:<6} {spread([r['rps'] for r in results], 0):>20} "
              f"{spread([r['p50'] for r in results], 2):>22} {spread([r['p99'] for r in results], 2):>22} "
              f"{sum(r['bad'] for r in results):>8}")


if __name__ == "__main__":
    main()
