"""`fab backup.pull`: copy a backup from the VPS to this machine, resuming where a cut one stopped.

Each file is fetched from the byte where the local copy ends, then every file is checked against
the backup's SHA256SUMS; a file that does not match is fetched again from the start, once.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from .errors import FikasoError
from .layout import Layout
from .remote import Remote, q


def files_script(layout: Layout, backup_id: str) -> str:
    folder = layout.base / "backups" / backup_id
    return (f"cd {q(folder)} 2>/dev/null && [ -f manifest ] || {{ echo 'no such backup' >&2; exit 3; }}\n"
            "for f in *; do printf '%s %s\\n' \"$(stat -c %s \"$f\")\" \"$f\"; done\n"
            "sed 's/^/sum /' SHA256SUMS")


def fetch_script(layout: Layout, backup_id: str, name: str, offset: int) -> str:
    return f"tail -c +{offset + 1} {q(layout.base / 'backups' / backup_id / name)}"


def parse_files(text: str) -> tuple[dict[str, int], dict[str, str]]:
    sizes, sums = {}, {}
    for line in text.splitlines():
        if line.startswith("sum "):
            digest, name = line[4:].split(maxsplit=1)
            sums[name] = digest
        elif line.strip():
            size, name = line.split(" ", 1)
            sizes[name] = int(size)
    return sizes, sums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pull(remote: Remote, layout: Layout, backup_id: str, dest: Path, out=sys.stdout) -> Path:
    listing = remote.run(files_script(layout, backup_id), label="reading the backup", check=False)
    if listing.exit_code == 3:
        raise FikasoError(f"There is no complete backup {backup_id} on the server",
                          "Pick one from `fab backup.list`")
    if not listing.ok:
        raise FikasoError(f"Could not read backup {backup_id}: {listing.stderr.strip()}", "Check `fab backup.list`")
    sizes, sums = parse_files(listing.stdout)
    folder = dest / backup_id
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()
    for name, size in sorted(sizes.items()):
        path = folder / name
        for attempt in (1, 2):
            have = path.stat().st_size if path.exists() else 0
            if have > size or name not in sums:  # unchecked files (VERIFIED) may have changed: refetch
                path.unlink(missing_ok=True)
                have = 0
            if have < size:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "ab") as sink:
                    remote.download(fetch_script(layout, backup_id, name, have), sink,
                                    label=f"downloading {name}")
                print(f"  {name}: {size} bytes ({'resumed at ' + str(have) if have else 'fetched'})", file=out)
            if name not in sums or _sha256(path) == sums[name]:
                break
            path.unlink()  # corrupt or from another backup: start over, once
        else:
            raise FikasoError(f"{name} of backup {backup_id} does not match its checksum after a fresh download",
                              "Run `fab backup.verify` on the server: the copy there may be damaged")
    print(f"pulled backup {backup_id} to {folder} in {time.monotonic() - started:.1f} s; checksums match", file=out)
    return folder
