"""Benchmark: backup and restore of a generated database of at least 1 GB, on the sandbox VPS.

Prints, side by side in one run, the time of `mysqldump > /dev/null` inside the mysql container
(the dump alone: no compression, and no copy of its output out of the container), plain
`docker compose exec mysql mysqldump | gzip -6` and `| zstd -3 -T0` on the VPS (the pipelines a
user would write), Fikaso's dump (the same consistent-dump options, zstd -3 -T0, through a named
pipe instead of docker's exec stream) and its whole backup (dump, checksums, and the restore into
a throwaway server that records the manifest), then restores, each --runs times in rotated order
(median, min, max): the naive `zstd -dc | mysql` through one client (`docker compose exec -T mysql
mysql`, after dropping and creating the database, as the restore does), and `fab backup.restore`,
whose own report splits its time into preparing (splitting the dump), the safety backup, loading,
and the check of the safety backup (which runs after the panels are back). Needs a running sandbox
with the stack set up (`make demo`; FIKASO_SANDBOX=test for the suite's).

    .venv/bin/python bench/backup_bench.py [--rows 7000000] [--runs 3]
"""
from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox import vps as sandbox

ROOT = Path(__file__).resolve().parent.parent
STACK = "/srv/fikaso/stack"
OPTS = "--defaults-extra-file=<(printf '[client]\\nuser=root\\npassword=%s\\n' \"$(cat /run/secrets/mysql_root_password)\")"
DUMP_OPTIONS = "--single-transaction --quick --routines --events --triggers --hex-blob --no-tablespaces"


def vps(command: str) -> str:
    info = sandbox.info()
    result = subprocess.run(["ssh", "-F", info["ssh_config"], info["alias"], command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {command}\n{result.stderr}")
    return result.stdout + result.stderr


def in_mysql(script: str) -> str:
    """A command line run in the stack folder, so that it can stand anywhere in a pipeline."""
    return f"docker compose exec -T mysql bash -c {shlex.quote(script)}"


def timed(label: str, command: str) -> float:
    started = time.monotonic()
    vps(f"cd {STACK} && {command}")
    seconds = time.monotonic() - started
    print(f"  {label:<44} {seconds:7.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=7_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each restore, in rotated order (default 3)")
    args = parser.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]), flush=True)
    print(f"generating fikaso_store.bench_rows: {args.rows} rows of mixed text and numbers", flush=True)
    fill = (f"mysql {OPTS} fikaso_store -e \"DROP TABLE IF EXISTS bench_rows; "
            "CREATE TABLE bench_rows (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(80), body TEXT, "
            "amount DECIMAL(12,2), created DATETIME) ENGINE=InnoDB; "
            f"INSERT INTO bench_rows (title, body, amount, created) SELECT CONCAT('item ', seq, ' ', MD5(seq)), "
            "CONCAT(REPEAT(SUBSTRING(MD5(seq * 7), 1, 12), 8), ' ', SHA1(seq)), seq % 100000 / 7, "
            f"'2026-01-01' + INTERVAL (seq % 100000) MINUTE FROM seq_1_to_{args.rows}\"")
    timed("generate", in_mysql(fill))
    size = int(vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} -N -e \"SELECT SUM(data_length + index_length) FROM "
                               "information_schema.TABLES WHERE TABLE_SCHEMA = 'fikaso_store'\"")).split()[0])
    print(f"database fikaso_store: {size / 1e9:.2f} GB on disk")
    dump = f"mysqldump {OPTS} {DUMP_OPTIONS} --databases fikaso_store"
    results = {}
    print("backup (same server, same data, one after another):")
    results["mysqldump > /dev/null"] = timed("mysqldump > /dev/null, in the container", in_mysql(dump + " > /dev/null"))
    results["mysqldump | gzip -6"] = timed("mysqldump | gzip -6", in_mysql(dump) + " | gzip -6 > /tmp/bench.sql.gz")
    results["mysqldump | zstd -3 -T0"] = timed("mysqldump | zstd -3 -T0",
                                               in_mysql(dump) + " | zstd -q -3 -T0 > /tmp/bench.sql.zst")
    started = time.monotonic()
    output = vps(f"{STACK}/bin/fikaso-backup now fikaso_store")
    whole = time.monotonic() - started
    dumped = float(re.search(r"dumped fikaso_store in ([\d.]+) s", output).group(1))
    backup_id = re.search(r"backup (\S+) ok", output).group(1)
    print(f"  {'fikaso backup: dump phase':<44} {dumped:7.1f} s")
    print(f"  {'fikaso backup: whole, with verifying restore':<44} {whole:7.1f} s")
    sizes = vps(f"stat -c '%s %n' /tmp/bench.sql.gz /tmp/bench.sql.zst /srv/fikaso/backups/{backup_id}/fikaso_store.sql.zst")
    print("compressed sizes:\n" + "".join(f"  {line}\n" for line in sizes.splitlines()))
    restores(backup_id, args.runs)
    gzip_s, zstd_s = results["mysqldump | gzip -6"], results["mysqldump | zstd -3 -T0"]
    floor = results["mysqldump > /dev/null"]
    print(f"fikaso dump vs mysqldump | gzip: {gzip_s / dumped:.1f}x faster; "
          f"vs mysqldump | zstd: {dumped / zstd_s:.2f}x its time; "
          f"mysqldump alone, in the container: {gzip_s / floor:.1f}x faster than with gzip")
    print(f"throughput (on-disk size / time): gzip {size / gzip_s / 1e6:.0f} MB/s, zstd {size / zstd_s / 1e6:.0f} MB/s")
    vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} fikaso_store -e 'DROP TABLE bench_rows'") + " && rm -f /tmp/bench.sql.gz /tmp/bench.sql.zst")


def naive_restore(backup_id: str) -> float:
    recreate = in_mysql(f"mysql {OPTS} -e 'DROP DATABASE IF EXISTS fikaso_store; CREATE DATABASE fikaso_store "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'")
    return timed("zstd -dc | mysql (one client)", f"{recreate} && zstd -q -dc /srv/fikaso/backups/{backup_id}/"
                 f"fikaso_store.sql.zst | " + in_mysql(f"mysql {OPTS}"))


def fikaso_restore(backup_id: str) -> dict[str, float]:
    info = sandbox.info()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "fabric", "-H", info["alias"], "backup.restore", f"--id={backup_id}",
                             "--database=fikaso_store", "--yes"], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"fab backup.restore failed:\n{output}")
    parts = re.search(r"preparing ([\d.]+) s, safety backup ([\d.]+) s, loading ([\d.]+) s, "
                      r"check of the safety backup ([\d.]+) s", output)
    prepare, safety, load, check = (float(x) for x in parts.groups())
    # Each run's safety backup would fill the disk over many runs: removed once measured.
    safety_id = re.search(r"safety backup (\S+) taken", output).group(1)
    vps(f"rm -rf /srv/fikaso/backups/{safety_id}")
    figures = {"whole": wall, "safety backup": safety, "restore proper": wall - safety - check,
               "  of which preparing": prepare, "  of which loading": load, "check of the safety backup": check}
    print(f"  {'fab backup.restore':<44} {wall:7.1f} s  (safety backup {safety:.1f} s, preparing {prepare:.1f} s, "
          f"loading {load:.1f} s, check of the safety backup {check:.1f} s)", flush=True)
    return figures


def checksum() -> str:
    return vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} -N -e 'CHECKSUM TABLE fikaso_store.bench_rows'")).split()[1]


def restores(backup_id: str, runs: int) -> None:
    """Each restore `runs` times, the order rotated from run to run."""
    print(f"restore of backup {backup_id} (fikaso_store), {runs} runs, order rotated:")
    naive: list[float] = []
    fikaso: list[dict[str, float]] = []
    sums = set()
    for run in range(runs):
        order = ("naive", "fikaso") if run % 2 == 0 else ("fikaso", "naive")
        for which in order:
            if which == "naive":
                naive.append(naive_restore(backup_id))
            else:
                fikaso.append(fikaso_restore(backup_id))
            if run == runs - 1:
                sums.add(checksum())
    if len(sums) != 1:
        raise SystemExit(f"the two restores left different data: CHECKSUM TABLE gave {sums}")

    def line(label: str, values: list[float]) -> str:
        return (f"  {label:<44} median {statistics.median(values):7.1f} s   min {min(values):7.1f}   "
                f"max {max(values):7.1f}")
    print("restore figures (the same data came back from both: CHECKSUM TABLE matched):")
    print(line("zstd -dc | mysql (one client)", naive))
    for key in fikaso[0]:
        print(line(f"fab backup.restore: {key}", [f[key] for f in fikaso]))
    proper = statistics.median(f["restore proper"] for f in fikaso)
    whole = statistics.median(f["whole"] for f in fikaso)
    print(f"speed-up over one client (its median time / ours): restore proper {statistics.median(naive) / proper:.2f}x; "
          f"whole fab backup.restore, safety backup and its check included: {statistics.median(naive) / whole:.2f}x")


if __name__ == "__main__":
    main()
