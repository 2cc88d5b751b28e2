"""Benchmark: backup and restore of a generated database of at least 1 GB, on the sandbox VPS.

Prints, side by side in one run, the time of `mysqldump > /dev/null` inside the mysql container
(the dump alone: no compression, and no copy of its output out of the container), plain
`docker compose exec mysql mysqldump | gzip -6` and `| zstd -3 -T0` on the VPS (the pipelines a
user would write), Fikaso's dump (the same consistent-dump options, zstd -3 -T0, through a named
pipe instead of docker's exec stream) and its whole backup (dump, checksums, and the restore into
a throwaway server that records the manifest), then restore times. Needs a running sandbox with
the stack set up (`make demo`).

    .venv/bin/python bench/backup_bench.py [--rows 7000000]
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import time

from sandbox import vps as sandbox

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
    args = parser.parse_args()
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
    print("restore:")
    timed("gzip -dc bench.sql.gz | mysql", "gzip -dc /tmp/bench.sql.gz | " + in_mysql(f"mysql {OPTS}"))
    timed("fikaso backup.restore (with its safety backup)", f"{STACK}/bin/fikaso-backup restore {backup_id} fikaso_store")
    gzip_s, zstd_s = results["mysqldump | gzip -6"], results["mysqldump | zstd -3 -T0"]
    floor = results["mysqldump > /dev/null"]
    print(f"fikaso dump vs mysqldump | gzip: {gzip_s / dumped:.1f}x faster; "
          f"vs mysqldump | zstd: {dumped / zstd_s:.2f}x its time; "
          f"mysqldump alone, in the container: {gzip_s / floor:.1f}x faster than with gzip")
    print(f"throughput (on-disk size / time): gzip {size / gzip_s / 1e6:.0f} MB/s, zstd {size / zstd_s / 1e6:.0f} MB/s")
    vps(f"cd {STACK} && " + in_mysql(f"mysql {OPTS} fikaso_store -e 'DROP TABLE bench_rows'") + " && rm -f /tmp/bench.sql.gz /tmp/bench.sql.zst")


if __name__ == "__main__":
    main()
