"""Benchmark: backup and restore of a generated database of at least 1 GB, on the sandbox VPS.

Backups, each --runs times in rotated order, every one timed by the same clock (bash's EPOCHREALTIME
on the VPS, around the command) and writing to the same filesystem (a folder beside Fikaso's
backups), all with the same mysqldump options:
  - `mysqldump > /dev/null` inside the mysql container: the dump alone, no compression, no copy out
    of the container (the floor);
  - `docker compose exec -T mysql mysqldump | zstd -1 -T0`: the pipeline a user would write, at
    Fikaso's own level;
  - the same `| gzip -6` (gzip's default level), for reference;
  - `fikaso-backup now` with FIKASO_VERIFY=later: Fikaso's dump (a client container writing into a
    named pipe, zstd -1 -T0 on the VPS), plus the panels' storage and the checksums. The check every
    backup gets when made (a restore into a throwaway server) is timed apart, once.
After the last run the three dumps are decompressed and compared: they must be identical but for
the two comment lines that name the client's host and the time the dump ended.

Restores, each --runs times in rotated order (median, min, max): the naive `zstd -dc | mysql`
through one client (`docker compose exec -T mysql mysql`, after dropping and creating the database,
as the restore does), and `fab backup.restore`, whose own report splits its time into preparing
(splitting the dump, while the panels still serve), the safety backup, loading, and the check of
the safety backup (which runs after the panels are back). Both are timed around their whole command
here, SSH connection included.

The store panel's queue workers and scheduler are stopped while the benchmark runs, so that the
database holds the same rows from dump to dump. Needs a running sandbox with the stack set up
(`make demo`; FIKASO_SANDBOX=test for the suite's).

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

from figures import rotated, spread  # beside this script, which Python puts first on sys.path
from sandbox import vps as sandbox

ROOT = Path(__file__).resolve().parent.parent
STACK = "/srv/fikaso/stack"
BACKUPS = "/srv/fikaso/backups"
SCRATCH = f"{BACKUPS}/.bench"  # the baselines' output, on the disk of Fikaso's backups
OPTS = "--defaults-extra-file=<(printf '[client]\\nuser=root\\npassword=%s\\n' \"$(cat /run/secrets/mysql_root_password)\")"
DUMP_OPTIONS = "--single-transaction --quick --routines --events --triggers --hex-blob --no-tablespaces"
BACKGROUND = ("store_worker", "store_scheduler")  # what writes into fikaso_store by itself
# The lines of a dump that differ from client to client and from minute to minute.
VARYING = r"^-- (Host: |Dump completed on )"
ZSTD, GZIP = "mysqldump | zstd -1 -T0", "mysqldump | gzip -6 (reference)"
FIKASO = "fikaso-backup now (dump, storage, checksums)"


def vps(command: str) -> str:
    info = sandbox.info()
    result = subprocess.run(["ssh", "-F", info["ssh_config"], info["alias"], command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {command}\n{result.stderr}")
    return result.stdout + result.stderr


def in_mysql(script: str) -> str:
    """A command line run in the stack folder, so that it can stand anywhere in a pipeline."""
    return f"docker compose exec -T mysql bash -c {shlex.quote(script)}"


def timed_on_vps(command: str) -> tuple[float, str]:
    """COMMAND's seconds by the VPS's clock (no SSH handshake in it), and its output."""
    script = (f"set -o pipefail; cd {STACK} || exit 1; began=$EPOCHREALTIME; {command} || exit $?; "
              'echo "@took $began $EPOCHREALTIME"')
    output = vps("bash -c " + shlex.quote(script))
    began, ended = re.findall(r"^@took (\S+) (\S+)$", output, re.M)[-1]
    return float(ended) - float(began), output


def timed(label: str, command: str) -> float:
    started = time.monotonic()
    vps(f"cd {STACK} && {command}")
    seconds = time.monotonic() - started
    print(f"  {label:<44} {seconds:7.1f} s", flush=True)
    return seconds


def generate(rows: int) -> int:
    """fikaso_store.bench_rows with ROWS rows; the database's size on disk, in bytes."""
    print(f"generating fikaso_store.bench_rows: {rows} rows of mixed text and numbers", flush=True)
    fill = (f"mysql {OPTS} fikaso_store -e \"DROP TABLE IF EXISTS bench_rows; "
            "CREATE TABLE bench_rows (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(80), body TEXT, "
            "amount DECIMAL(12,2), created DATETIME) ENGINE=InnoDB; "
            f"INSERT INTO bench_rows (title, body, amount, created) SELECT CONCAT('item ', seq, ' ', MD5(seq)), "
            "CONCAT(REPEAT(SUBSTRING(MD5(seq * 7), 1, 12), 8), ' ', SHA1(seq)), seq % 100000 / 7, "
            f"'2026-01-01' + INTERVAL (seq % 100000) MINUTE FROM seq_1_to_{rows}\"")
    timed("generate", in_mysql(fill))
    size = int(vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} -N -e \"SELECT SUM(data_length + index_length) FROM "
                                                "information_schema.TABLES WHERE TABLE_SCHEMA = 'fikaso_store'\"")).split()[0])
    print(f"database fikaso_store: {size / 1e9:.2f} GB on disk", flush=True)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=7_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each backup and restore, in rotated order (default 3)")
    args = parser.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]), flush=True)
    running = vps(f"cd {STACK} && docker compose ps --status running --services").split()
    stopped = [service for service in BACKGROUND if service in running]
    if stopped:
        print(f"stopping {' '.join(stopped)} while the benchmark runs", flush=True)
        vps(f"cd {STACK} && docker compose stop {' '.join(stopped)}")
    try:
        size = generate(args.rows)
        backup_id = backups(size, args.runs)
        restores(backup_id, args.runs)
        vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} fikaso_store -e 'DROP TABLE bench_rows'"))
    finally:
        vps(f"rm -rf {SCRATCH}")
        if stopped:
            vps(f"cd {STACK} && docker compose start {' '.join(stopped)}")


def backups(size: int, runs: int) -> str:
    """Each backup `runs` times in rotated order; the id of the last Fikaso backup (kept for the restores)."""
    dump = f"mysqldump {OPTS} {DUMP_OPTIONS} --databases fikaso_store"
    pipelines = {
        "mysqldump > /dev/null, in the container": in_mysql(dump + " > /dev/null"),
        ZSTD: in_mysql(dump) + f" | zstd -q -1 -T0 > {SCRATCH}/dump.sql.zst",
        GZIP: in_mysql(dump) + f" | gzip -6 > {SCRATCH}/dump.sql.gz",
        FIKASO: f"FIKASO_VERIFY=later {STACK}/bin/fikaso-backup now fikaso_store",
    }
    seconds: dict[str, list[float]] = {label: [] for label in pipelines}
    dump_phase: list[float] = []
    backup_id = ""
    vps(f"mkdir -p {SCRATCH}")
    print(f"backup of fikaso_store, {runs} runs, order rotated (seconds by the VPS's clock):", flush=True)
    for run in range(runs):
        for label in rotated(list(pipelines), run):
            took, output = timed_on_vps(pipelines[label])
            seconds[label].append(took)
            print(f"  run {run + 1}  {label:<46} {took:7.1f} s", flush=True)
            if label == FIKASO:
                dump_phase.append(float(re.search(r"dumped fikaso_store in ([\d.]+) s", output).group(1)))
                if backup_id:  # only the newest is kept: a backup per run would fill the disk
                    vps(f"rm -rf {BACKUPS}/{backup_id}")
                backup_id = re.search(r"backup (\S+) ok", output).group(1)
    check, _ = timed_on_vps(f"{STACK}/bin/fikaso-backup verify {backup_id}")
    files = {ZSTD: f"{SCRATCH}/dump.sql.zst", GZIP: f"{SCRATCH}/dump.sql.gz",
             FIKASO: f"{BACKUPS}/{backup_id}/fikaso_store.sql.zst"}
    paths = " ".join(files.values())
    # One line per file, in order: its size, then the sha256 of its dump, decompressed, without VARYING.
    found = vps(f"stat -c %s {paths}; for f in {paths}; do case $f in *.gz) gzip -dc $f ;; *) zstd -q -dc $f ;; "
                f"esac | grep -v -E {shlex.quote(VARYING)} | sha256sum | cut -d' ' -f1; done").split()
    sizes = dict(zip(files, map(int, found[:len(files)])))
    digests = dict(zip(files, found[len(files):]))
    print(f"\nbackup figures: median (min-max) of {runs} runs, seconds; compressed size")
    for label in pipelines:
        line = f"  {label:<46} {spread(seconds[label]):>22}"
        print(line + (f"   {sizes[label] / 1e6:8.1f} MB" if label in sizes else ""))
    print(f"  {'  of which the dump, by its own timer':<46} {spread(dump_phase):>22}")
    print(f"  {'fikaso-backup verify (the check when made)':<46} {check:>10.1f}")
    zstd_s, gzip_s, ours = (statistics.median(seconds[label]) for label in (ZSTD, GZIP, FIKASO))
    print(f"fikaso-backup now vs mysqldump | zstd -1: {ours / zstd_s:.2f}x its time; vs | gzip -6: {gzip_s / ours:.1f}x "
          f"faster; throughput (on-disk size / time): fikaso {size / ours / 1e6:.0f} MB/s, zstd -1 {size / zstd_s / 1e6:.0f}"
          f" MB/s, gzip -6 {size / gzip_s / 1e6:.0f} MB/s")
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the dumps differ (sha256 of each, decompressed, without the lines {VARYING}): {digests}")
    print(f"the three dumps, decompressed, are identical but for the lines {VARYING} (sha256 {digests[FIKASO][:16]}...)")
    return backup_id


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
    down = float(re.search(r"the panels were in maintenance for ([\d.]+) s", output).group(1))
    # Each run's safety backup would fill the disk over many runs: removed once measured.
    safety_id = re.search(r"safety backup (\S+) taken", output).group(1)
    vps(f"rm -rf /srv/fikaso/backups/{safety_id}")
    figures = {"whole": wall, "until the panels serve": wall - check, "panels in maintenance": down,
               "safety backup": safety, "restore proper": wall - safety - check, "  of which preparing": prepare,
               "  of which loading": load, "check of the safety backup (panels serving)": check}
    print(f"  {'fab backup.restore':<44} {wall:7.1f} s  (safety backup {safety:.1f} s, preparing {prepare:.1f} s, "
          f"loading {load:.1f} s, check of the safety backup {check:.1f} s; in maintenance {down:.1f} s)", flush=True)
    return figures


def checksum() -> str:
    return vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} -N -e 'CHECKSUM TABLE fikaso_store.bench_rows'")).split()[1]


def restores(backup_id: str, runs: int) -> None:
    """Each restore `runs` times, the order rotated from run to run."""
    print(f"\nrestore of backup {backup_id} (fikaso_store), {runs} runs, order rotated:", flush=True)
    naive: list[float] = []
    fikaso: list[dict[str, float]] = []
    sums = set()
    for run in range(runs):
        for which in rotated(("naive", "fikaso"), run):
            if which == "naive":
                naive.append(naive_restore(backup_id))
            else:
                fikaso.append(fikaso_restore(backup_id))
            if run == runs - 1:
                sums.add(checksum())
    if len(sums) != 1:
        raise SystemExit(f"the two restores left different data: CHECKSUM TABLE gave {sums}")
    print(f"\nrestore figures: median (min-max) of {runs} runs, seconds (the same data came back from both: "
          "CHECKSUM TABLE matched)")
    print(f"  {'zstd -dc | mysql (one client)':<58} {spread(naive):>22}")
    for key in fikaso[0]:
        print(f"  {'fab backup.restore: ' + key:<58} {spread([f[key] for f in fikaso]):>22}")
    baseline = statistics.median(naive)
    proper = statistics.median(f["restore proper"] for f in fikaso)
    serving = statistics.median(f["until the panels serve"] for f in fikaso)
    down = statistics.median(f["panels in maintenance"] for f in fikaso)
    print(f"speed-up over one client (its median time / ours): restore proper {baseline / proper:.2f}x; "
          f"until the panels serve, safety backup included: {baseline / serving:.2f}x; "
          f"time in maintenance: {baseline / down:.2f}x")


if __name__ == "__main__":
    main()
