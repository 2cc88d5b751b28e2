"""Deterministic tar archives of local trees: same files, same bytes, same hash.

A release or the bundle travels as one tar stream over one SSH channel; its SHA-256 tells whether
the server already has exactly this content.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

# Never shipped: local state, secrets and dependencies that the server installs itself.
EXCLUDED_NAMES = frozenset({".git", ".env", "node_modules", "vendor", ".sandbox", "__pycache__",
                            ".phpunit.result.cache", ".DS_Store"})
EXCLUDED_PREFIXES = ("storage/", "bootstrap/cache/", "public/storage")


@dataclass(frozen=True)
class Archive:
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _info(name: str, *, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _walk(root: Path, excluded_prefixes: tuple[str, ...], excluded_names: frozenset[str]) -> Iterable[Path]:
    # os.walk lists symlinked folders without entering them: they travel as links.
    for dirpath, dirnames, filenames in os.walk(root):
        here, entered = Path(dirpath), []
        for name in dirnames + filenames:
            path = here / name
            if name in excluded_names or _excluded(path.relative_to(root).as_posix(), excluded_prefixes):
                continue
            yield path
            if name in dirnames:
                entered.append(name)
        dirnames[:] = entered


def _excluded(rel: str, prefixes: tuple[str, ...]) -> bool:
    return any(rel == p.rstrip("/") or rel.startswith(p) for p in prefixes)


def entries(root: Path, *, excluded_prefixes: tuple[str, ...] = EXCLUDED_PREFIXES,
            excluded_names: frozenset[str] = EXCLUDED_NAMES) -> list[Path]:
    """What a tree of `root` holds, in the archive's order."""
    return sorted(_walk(root, excluded_prefixes, excluded_names), key=lambda p: p.relative_to(root).as_posix())


def file_mode(path: Path) -> int:
    return 0o755 if os.access(path, os.X_OK) else 0o644


def tree(root: Path, *, excluded_prefixes: tuple[str, ...] = EXCLUDED_PREFIXES,
         excluded_names: frozenset[str] = EXCLUDED_NAMES, leave_out: frozenset[str] = frozenset(),
         extra: Mapping[str, bytes] | None = None) -> Archive:
    """A tar of `root` in a fixed order with normalised owners, times and modes.

    Files named in `leave_out` are not sent (the server has them); `extra` adds generated files.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in entries(root, excluded_prefixes=excluded_prefixes, excluded_names=excluded_names):
            name = path.relative_to(root).as_posix()
            if path.is_symlink():
                tar.addfile(_info(name, kind=tarfile.SYMTYPE, mode=0o777, link=os.readlink(path)))
            elif path.is_dir():
                tar.addfile(_info(name, kind=tarfile.DIRTYPE, mode=0o755))
            elif name not in leave_out:
                data = path.read_bytes()
                tar.addfile(_info(name, kind=tarfile.REGTYPE, mode=file_mode(path), size=len(data)),
                            io.BytesIO(data))
        for name, data in sorted((extra or {}).items()):
            tar.addfile(_info(name, kind=tarfile.REGTYPE, mode=0o644, size=len(data)), io.BytesIO(data))
    return Archive(buffer.getvalue())


def files(contents: Mapping[str, tuple[bytes, int]]) -> Archive:
    """A tar of in-memory files (secrets), each with its own mode."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(contents.items()):
            tar.addfile(_info(name, kind=tarfile.REGTYPE, mode=mode, size=len(data)), io.BytesIO(data))
    return Archive(buffer.getvalue())
