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

from typing import Callable, Mapping

from .errors import FikasoError
from .remote import Remote


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pull(remote: Remote, backup_id: str, sizes: Mapping[str, int], sums: Mapping[str, str],
         fetch: Callable[[str, int], str], dest: Path, out=sys.stdout) -> Path:
    """Download each file of a backup (`fetch(name, offset)` is the script that prints it from
    `offset` on) into dest/<id>, then check it against `sums`."""
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
                    remote.download(fetch(name, have), sink,
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
