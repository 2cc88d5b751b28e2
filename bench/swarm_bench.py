"""Benchmark: what a deploy costs as the swarm grows from 1 to 2 to 3 nodes, in one run.

Starts three blank node VPSs (`fab sandbox.up --nodes=3 --fresh`), forms a swarm of node1 alone
and sets it up, then times `fab deploy --panel=store` of a one-file change RUNS times; then node2
joins (`fab setup` with two nodes listed) and the same is timed, then node3. Each figure is the
wall time of the whole `fab` command, as a user waits for it, SSH handshakes included.

The sizes cannot be measured in rotated order: a swarm grows by joining and shrinks only by
draining and removing nodes, which is not what a user's deploy meets. So the order is fixed
(1, 2, 3) and each size gets RUNS runs, reported as median, min and max.

    .venv/bin/python bench/swarm_bench.py [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FAB = [str(ROOT / ".venv" / "bin" / "fab")]
EXAMPLE = ROOT / "examples" / "laravel-app"


def fab(*args: str, env: dict | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run([*FAB, *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(f"fab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


def config_for(nodes: list[dict], folder: Path) -> Path:
    path = folder / f"swarm-{len(nodes)}.yaml"
    path.write_text(yaml.safe_dump({"fikaso": {"nodes": [{"host": n["alias"], "roles": n["roles"]}
                                                         for n in nodes]}}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    up = subprocess.run([*FAB, "sandbox.up", "--nodes=3", "--fresh"], cwd=ROOT, capture_output=True, text=True,
                        check=True)
    nodes = json.loads(up.stdout[up.stdout.index("{"):])["nodes"]
    fab("secrets.generate")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app = folder / "app"
        shutil.copytree(EXAMPLE, app)
        view = app / "resources" / "views" / "panel.blade.php"
        original = view.read_text()
        for size in (1, 2, 3):
            config = config_for(nodes[:size], folder)
            setup = fab("-f", str(config), "setup")
            times = []
            for run in range(args.runs):
                view.write_text(original + f"\n{{{{-- bench {size}.{run} --}}}}\n")
                times.append(fab("-f", str(config), "deploy", "--panel=store",
                                 env={"FABRIC_FIKASO_PANELS_STORE_SOURCE": str(app)}))
            rows.append((size, setup, statistics.median(times), min(times), max(times)))
            print(f"{size} node(s): setup {setup:.1f} s; deploy median {rows[-1][2]:.1f} s "
                  f"(min {rows[-1][3]:.1f}, max {rows[-1][4]:.1f}, {args.runs} runs)", flush=True)
    print("\n| nodes | fab setup (node joining) | fab deploy --panel=store, median | min | max |")
    print("|---|---|---|---|---|")
    for size, setup, median, low, high in rows:
        print(f"| {size} | {setup:.1f} s | {median:.1f} s | {low:.1f} s | {high:.1f} s |")


if __name__ == "__main__":
    main()
