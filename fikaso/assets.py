"""A panel's front-end assets, built on this machine before the upload and shipped in the release.

The build runs in a scratch copy of the tree that ships (so the app's own folder is left as it is),
with the panel's build command. Its output is kept in a local cache named by a hash of the build's
inputs (the files and folders the setting lists, and the command): a deploy whose inputs have not
changed reuses it instead of building again.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from . import archive
from .config import PROJECT_ROOT, Assets, Site
from .errors import FikasoError, telling_lines

CACHE = PROJECT_ROOT / ".cache" / "assets"
KEEP = 5          # builds kept per panel


def inputs_hash(tree: Path, spec: Assets) -> str:
    """What the build depends on: each input file's path, mode and content, and the command."""
    digest = hashlib.sha256(f"{spec.build}\0{spec.output}\0".encode())
    for name in spec.inputs:
        path = tree / name
        files = [path] if path.is_file() else [p for p in archive.entries(path) if p.is_file()] if path.is_dir() else []
        for file in sorted(files):
            digest.update(f"{file.relative_to(tree).as_posix()}\0{archive.file_mode(file):o}\0".encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def copy_tree(source: Path, into: Path) -> None:
    """The tree that ships (archive.entries: no .git, vendor, node_modules, storage, .env) into `into`."""
    for path in archive.entries(source):
        target = into / path.relative_to(source)
        if path.is_symlink():
            target.symlink_to(path.readlink())
        elif path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def build(tree: Path, spec: Assets, panel: str, origin: Path, log: Callable[[str], None] = print) -> str:
    """Put the built assets into `tree`'s output folder, from the cache or by building; return the hash.
    (`origin`: the app's own folder, named in errors.)"""
    key = inputs_hash(tree, spec)
    kept = CACHE / panel / key
    if not kept.is_dir():
        log(f"{panel}: building the assets ({spec.build})")
        with tempfile.TemporaryDirectory(prefix=f"fikaso-assets-{panel}-") as scratch:
            work = Path(scratch) / "app"
            work.mkdir()
            copy_tree(tree, work)
            ran = subprocess.run(["sh", "-c", spec.build], cwd=work, capture_output=True, text=True, check=False)
            if ran.returncode != 0:
                said = "\n".join(telling_lines(ran.stdout + "\n" + ran.stderr, 12))
                raise FikasoError(f"The asset build of {panel} failed (exit {ran.returncode}); nothing was uploaded:\n"
                                  f"{said}", f"Run `{spec.build}` in {origin} to see it fail, fix it, and deploy again")
            output = work / spec.output
            if not output.is_dir():
                raise FikasoError(f"The asset build of {panel} made no {spec.output} folder; nothing was uploaded",
                                  f"Set fikaso.panels.{panel}.assets.output to the folder `{spec.build}` writes")
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.with_name(key + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(output, partial, symlinks=True)
            partial.rename(kept)
            for old in sorted(kept.parent.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP]:
                shutil.rmtree(old, ignore_errors=True)
    else:
        log(f"{panel}: assets unchanged ({key[:12]}), the last build reused")
    target = tree / spec.output
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(kept, target, symlinks=True)
    return key


@contextmanager
def shipped_tree(site: Site, log: Callable[[str], None] = print) -> Iterator[Path]:
    """The tree a release of `site` is made from: its source as it is, or, when it has assets, a
    scratch copy with them built in (the app's own folder is never written to)."""
    if site.assets is None:
        yield site.source
        return
    with tempfile.TemporaryDirectory(prefix=f"fikaso-{site.name}-") as scratch:
        copy_tree(site.source, Path(scratch))
        build(Path(scratch), site.assets, site.name, site.source, log)
        yield Path(scratch)

