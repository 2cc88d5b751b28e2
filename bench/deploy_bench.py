"""Benchmark: deploys of a Laravel-sized tree over a 50 ms round-trip link, beside two baselines.

The tree is the store example app plus `packages/`, PHP libraries from Debian's packages (Symfony,
Illuminate, Doctrine, Guzzle, ...: about 9,000 files, 50 MB), as an app with in-repository packages
would ship them. Each run measures, in a rotated order:

- cold: nothing of the tree is on the server (the libraries lie under a folder named after the run,
  so not one of their files is in the live release or in any earlier copy);
- change: the same tree again after a one-file change.

Contenders, all over the same delaying link and the same disk:
- `fikaso`: the whole deploy as `fab deploy --panel=store` runs it (connection, lock, upload,
  install, health-checked switch, finish), with the upload step's own time beside it;
- `rsync`: `rsync -az` of the same tree over an SSH connection that is already open and
  multiplexed (ControlMaster), the upload alone;
- `deployer`: a Deployer-style whole deploy done with plain ssh commands over one multiplexed
  connection (opened in its time): lock, copy of the previous release, rsync, shared links, composer,
  artisan caches and migrations, symlink switch, queue:restart, unlock, cleanup. It has no health
  check and no way back but a manual one.

Prints a table of medians with min and max. Needs the demo VPS (`make demo`) and apt-get (the
libraries come from Debian's packages, downloaded once into .cache/bench).

    .venv/bin/python bench/deploy_bench.py [--runs 5] [--rtt-ms 50]
"""
from __future__ import annotations

import argparse
import io
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from fabric import Config

from delay_proxy import DelayProxy  # beside this script, which Python puts first on sys.path
from fikaso import config as fikaso_config
from fikaso import records
from fikaso.archive import EXCLUDED_NAMES, EXCLUDED_PREFIXES
from fikaso.connection import connect
from fikaso.layout import APP_ROOT, Layout
from fikaso.remote import SSHRemote
from fikaso.runner import Runner
from fikaso.steps import deploy
from figures import rotated, spread  # beside this script, which Python puts first on sys.path
from sandbox import vps as sandbox

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
LIBRARIES = ("php-symfony-*", "php-illuminate-*", "php-doctrine-*", "php-guzzlehttp-*", "php-league-*",
             "php-nesbot-carbon", "php-twig*", "php-monolog", "php-nikic-*")
CONTENDERS = ("fikaso", "rsync", "deployer")
VIEW = Path("resources/views/panel.blade.php")
RSYNC_EXCLUDES = [*(f"--exclude={name}" for name in sorted(EXCLUDED_NAMES)),
                  *(f"--exclude=/{prefix}" for prefix in EXCLUDED_PREFIXES)]


def php_libraries() -> Path:
    """Debian's PHP libraries (/usr/share/php of the packages), unpacked once into the cache."""
    unpacked = CACHE / "php-libraries"
    if (unpacked / ".complete").exists():
        return unpacked
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    names = subprocess.run(["apt-cache", "pkgnames"], capture_output=True, text=True, check=True).stdout.split()
    wanted = sorted(n for n in names if any(Path(n).match(p) for p in LIBRARIES))
    print(f"downloading {len(wanted)} Debian packages of PHP libraries (once)", flush=True)
    subprocess.run(["apt-get", "download", "-q", *wanted], cwd=debs, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(unpacked, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
        shutil.copytree(Path(tmp) / "usr" / "share" / "php", unpacked)
    (unpacked / ".complete").touch()
    return unpacked


def make_tree(folder: Path, libraries: Path, run: int) -> Path:
    """The example app with the libraries under packages/run<N>: new paths in every run."""
    tree = folder / f"tree-{run}"
    shutil.copytree(ROOT / "examples" / "laravel-app", tree,
                    ignore=shutil.ignore_patterns("vendor", "storage", ".env", "node_modules"))
    shutil.copytree(libraries, tree / "packages" / f"run{run}", ignore=shutil.ignore_patterns(".complete"))
    return tree


def one_file_change(tree: Path, run: int) -> None:
    view = tree / VIEW
    view.write_text(view.read_text() + f"\n{{{{-- one-file change, run {run} --}}}}\n")


class Link:
    """ssh and rsync to the demo VPS through the delaying proxy, over one multiplexed connection."""

    def __init__(self, info: dict, proxy: DelayProxy, folder: Path, stack: str):
        self.stack = stack      # the stack folder on the VPS, where `docker compose` runs
        host_key = (sandbox.VPS_FILES / "ssh_host_ed25519_key.pub").read_text().split()
        known = folder / "known_hosts"
        known.write_text(f"[127.0.0.1]:{proxy.port} {host_key[0]} {host_key[1]}\n")
        self.config = folder / "ssh_config"
        self.config.write_text(
            f"Host fikaso-bench\n  HostName 127.0.0.1\n  Port {proxy.port}\n  User deploy\n"
            f"  IdentityFile {info['key_file']}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
            f"  StrictHostKeyChecking yes\n  ControlPath {folder}/master-%C\n")
        self.ssh = ["ssh", "-F", str(self.config)]

    def open(self) -> None:
        subprocess.run([*self.ssh, "-o", "ControlMaster=yes", "-o", "ControlPersist=yes", "-N", "-f",
                        "fikaso-bench"], check=True)

    def close(self) -> None:
        subprocess.run([*self.ssh, "-O", "exit", "fikaso-bench"], capture_output=True)

    def run(self, script: str) -> None:
        done = subprocess.run([*self.ssh, "fikaso-bench", script], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"failed on the VPS: {script}\n{done.stdout}{done.stderr}")

    def rsync(self, tree: Path, destination: str) -> None:
        subprocess.run(["rsync", "-az", "--delete", *RSYNC_EXCLUDES, "-e", shlex.join(self.ssh), f"{tree}/",
                        f"fikaso-bench:{destination}/"], check=True)


def fikaso_deploy(section: dict, link: Link, tree: Path) -> dict:
    """The whole deploy, connection included; the upload step timed on its own."""
    section["panels"]["store"]["source"] = str(tree)
    settings = fikaso_config.load_settings(section, root=ROOT)
    fabric_config = Config(runtime_ssh_path=str(link.config))
    fabric_config.load_ssh_config()
    started = time.monotonic()
    remote = SSHRemote(connect("fikaso-bench", fabric_config))
    site = settings.panel("store")
    run = deploy.SiteRun(settings=settings, site=site, actor=records.Actor.here(), action="deploy",
                         commit=records.source_commit(site.source))
    runner, timings = Runner.on(remote, out=io.StringIO()), {}
    step = runner.step

    def timed(each, context):
        begun = time.monotonic()
        try:
            return step(each, context)
        finally:
            timings[each.name] = time.monotonic() - begun
    runner.step = timed
    runner.steps("deploy store", deploy.DEPLOY_STEPS, run, deploy.deploy_cleanup)
    remote.connection.close()
    return {"total": time.monotonic() - started, "upload": timings["upload"]}


def rsync_upload(link: Link, tree: Path, destination: str) -> dict:
    """rsync alone, over the connection opened beforehand (outside its time)."""
    link.open()
    try:
        started = time.monotonic()
        link.rsync(tree, destination)
        took = time.monotonic() - started
    finally:
        link.close()
    return {"total": took, "upload": took}


def deployer_deploy(link: Link, tree: Path, host_base: str, release: str) -> dict:
    """A Deployer-style deploy into host_base (a folder the store panel's container mounts, not served)."""
    base = f"{APP_ROOT}/{Path(host_base).name}"         # the same folder, as the container sees it
    path = f"{host_base}/releases/{release}"
    php = f"cd {shlex.quote(link.stack)} && docker compose exec -T -w {base}/releases/{release} store_panel"
    started = time.monotonic()
    link.open()
    try:
        link.run(f"mkdir -p {host_base}/releases {host_base}/.dep && mkdir {host_base}/.dep/lock")
        link.run(f"if [ -L {host_base}/current ]; then cp -a {host_base}/current/. {path}/; "
                 f"else mkdir -p {path}; fi")
        began = time.monotonic()
        link.rsync(tree, path)
        upload = time.monotonic() - began
        link.run(f"cd {path} && rm -rf storage .env && ln -sfn {APP_ROOT}/shared/.env .env && "
                 f"ln -sfn {APP_ROOT}/shared/storage storage && mkdir -p bootstrap/cache")
        link.run(f"{php} composer install --no-dev --optimize-autoloader --no-interaction --no-progress")
        for command in ("storage:link", "config:cache", "route:cache", "view:cache", "migrate --force"):
            link.run(f"{php} php artisan {command}")
        link.run(f"cd {host_base} && ln -sfn releases/{release} current.tmp && mv -T current.tmp current")
        link.run(f"{php} php artisan queue:restart")
        link.run(f"rm -rf {host_base}/.dep/lock && cd {host_base}/releases && "
                 f"ls | sort | head -n -5 | xargs -r rm -rf")
    finally:
        link.close()
    return {"total": time.monotonic() - started, "upload": upload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=50)
    args = parser.parse_args()
    info = sandbox.info()
    libraries = php_libraries()
    section = yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"]
    section["panels"]["store"].pop("assets", None)     # no contender builds assets
    settings = fikaso_config.load_settings(section, root=ROOT)
    site_folder = str(Layout(settings.base_dir).site("store"))
    proxy = DelayProxy(info["port"], rtt=args.rtt_ms / 1000).start()
    figures = {(who, phase): {"total": [], "upload": []} for who in CONTENDERS for phase in ("cold", "change")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        link = Link(info, proxy, folder, str(Layout(settings.base_dir).stack))
        probe = make_tree(folder, libraries, 0)
        files = sum(1 for p in probe.rglob("*") if p.is_file() and not p.is_symlink())
        size = sum(p.stat().st_size for p in probe.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(probe)
        print(f"link: {args.rtt_ms:.0f} ms round trip through a userspace delay proxy (own process); "
              f"tree: {files} files, {size / 1e6:.1f} MB; {args.runs} runs, order rotated", flush=True)
        for run in range(1, args.runs + 1):
            order = rotated(CONTENDERS, run)
            tree = make_tree(folder, libraries, run)
            targets = {"rsync": f"{site_folder}/bench-rsync-{run}", "deployer": f"{site_folder}/bench-deployer-{run}"}
            for phase in ("cold", "change"):
                if phase == "change":
                    one_file_change(tree, run)
                for who in order:
                    if who == "fikaso":
                        result = fikaso_deploy(section, link, tree)
                    elif who == "rsync":
                        result = rsync_upload(link, tree, targets["rsync"])
                    else:
                        result = deployer_deploy(link, tree, targets["deployer"], f"{run}{phase}")
                    for key in ("total", "upload"):
                        figures[(who, phase)][key].append(result[key])
                    print(f"run {run} {phase:<6} {who:<8} total {result['total']:6.2f} s, "
                          f"upload {result['upload']:6.2f} s", flush=True)
            link.open()
            link.run(f"rm -rf {' '.join(targets.values())}")
            link.close()
            shutil.rmtree(tree)
    proxy.stop()
    print(f"\nmedian (min-max) of {args.runs} runs, seconds")
    print(f"{'':<20} {'cold total':>20} {'cold upload':>20} {'change total':>20} {'change upload':>20}")
    for who in CONTENDERS:
        cells = [spread(figures[(who, phase)][key], 2) for phase in ("cold", "change") for key in ("total", "upload")]
        if who == "rsync":
            cells[0] = cells[2] = "-"
        print(f"{who:<20} " + " ".join(f"{cell:>20}" for cell in cells))


if __name__ == "__main__":
    main()
