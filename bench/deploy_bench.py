"""Benchmark: deploy of the store example app after a one-file change, over a 50 ms RTT link.

Prints, side by side in one run: Fikaso's deploy (wall time, upload time, SSH channels opened,
bytes sent) and `rsync -az` of the same tree over the same link (full copy, then the same
one-file change). Needs a running sandbox with the stack set up (`make demo`).

    .venv/bin/python bench/deploy_bench.py [--rtt-ms 50]
"""
from __future__ import annotations

import argparse
import re
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from fabric import Config

from delay_proxy import DelayProxy  # beside this script, which Python puts first on sys.path
from fikaso import config as fikaso_config
from fikaso import records
from fikaso.connection import connect
from fikaso.remote import SSHRemote
from fikaso.runner import Runner
from fikaso.steps import deploy
from sandbox import vps as sandbox

ROOT = Path(__file__).resolve().parent.parent


def bench_ssh_config(info: dict, port: int, folder: Path) -> Path:
    host_key = (sandbox.VPS_FILES / "ssh_host_ed25519_key.pub").read_text().split()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    config = folder / "ssh_config"
    config.write_text(f"Host fikaso-bench\n  HostName 127.0.0.1\n  Port {port}\n  User deploy\n"
                      f"  IdentityFile {info['key_file']}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n")
    return config


def fikaso_deploy(settings, ssh_config: Path, proxy: DelayProxy) -> dict:
    fabric_config = Config(runtime_ssh_path=str(ssh_config))
    fabric_config.load_ssh_config()
    proxy.reset()
    started = time.monotonic()
    remote = SSHRemote(connect("fikaso-bench", fabric_config))
    site = settings.panel("store")
    run = deploy.SiteRun(settings=settings, site=site, actor=records.Actor.here(), action="deploy",
                         commit=records.source_commit(site.source))
    out = io.StringIO()
    Runner.on(remote, out=out).steps("deploy store", deploy.DEPLOY_STEPS, run, deploy.deploy_cleanup)
    wall = time.monotonic() - started
    upload = next(float(line.split()[4]) for line in out.getvalue().splitlines() if "] upload" in line)
    remote.connection.close()
    return {"wall": wall, "upload": upload, "channels": remote.channels, "sent": proxy.sent,
            "files": int(re.search(r"(\d+) files sent", out.getvalue()).group(1))}


def rsync(source: Path, ssh_config: Path, proxy: DelayProxy) -> dict:
    proxy.reset()
    started = time.monotonic()
    subprocess.run(["rsync", "-az", "--delete", "-e", f"ssh -F {ssh_config}", f"{source}/",
                    "fikaso-bench:/tmp/rsync-bench/"], check=True)
    return {"wall": time.monotonic() - started, "upload": time.monotonic() - started, "channels": 1,
            "sent": proxy.sent, "files": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt-ms", type=float, default=50)
    args = parser.parse_args()
    info = sandbox.info()
    proxy = DelayProxy(info["port"], rtt=args.rtt_ms / 1000).start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ssh_config = bench_ssh_config(info, proxy.port, folder)
        source = folder / "store"
        shutil.copytree(ROOT / "examples" / "laravel-app", source,
                        ignore=shutil.ignore_patterns("vendor", "storage", ".env"))
        section = yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"]
        section["panels"]["store"]["source"] = str(source)
        settings = fikaso_config.load_settings(section)
        print(f"link: {args.rtt_ms:.0f} ms round trip through a userspace delay proxy; "
              f"tree: {sum(1 for p in source.rglob('*') if p.is_file())} files")
        fikaso_deploy(settings, ssh_config, proxy)          # the live release to compare against
        rsync(source, ssh_config, proxy)                    # rsync's full copy, likewise
        view = source / "resources" / "views" / "panel.blade.php"
        view.write_text(view.read_text() + "\n{{-- one-file change --}}\n")
        ours = fikaso_deploy(settings, ssh_config, proxy)
        theirs = rsync(source, ssh_config, proxy)
    print(f"{'after a one-file change':<26} {'wall s':>8} {'upload s':>9} {'channels':>9} {'bytes sent':>11}")
    print(f"{'fikaso deploy (all steps)':<26} {ours['wall']:>8.2f} {ours['upload']:>9.2f} {ours['channels']:>9} "
          f"{ours['sent']:>11}")
    print(f"{'rsync -az (upload only)':<26} {theirs['wall']:>8.2f} {theirs['upload']:>9.2f} {'1 conn':>9} "
          f"{theirs['sent']:>11}")
    print(f"upload vs rsync: {ours['upload'] / theirs['upload']:.2f}x; files sent: {ours['files']}")


if __name__ == "__main__":
    main()
