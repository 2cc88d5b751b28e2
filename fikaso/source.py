"""What a deploy ships: a panel's source folder as it is, or exactly the tree of a git ref.

With a ref (a tag, branch or commit), the tree comes from `git archive`: only committed files,
nothing uncommitted or ignored, and the commit it resolved to is recorded with the release. Without
one, the folder is shipped as it is, and uncommitted changes in it are named in a warning.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from .errors import FikasoError


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, check=False)


def uncommitted(folder: Path) -> list[str]:
    """`git status --short` of the folder's files ([] when clean, or not in a git repository)."""
    result = _git(folder, "status", "--porcelain", "--", ".")
    if result.returncode != 0:
        return []
    return [line for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]


def export(folder: Path, ref: str, name: str, into: Path) -> str:
    """Write the tree of `ref` (of the repository `folder` belongs to, at `folder`'s place in it) into
    the empty folder `into`; return the full commit id it resolved to."""
    if ref.startswith("-") or not ref.strip():
        raise FikasoError(f"--ref={ref!r} is not a git ref", "Give a tag, branch or commit, such as --ref=v1.4.0")
    prefix = _git(folder, "rev-parse", "--show-prefix", "--show-toplevel")
    if prefix.returncode != 0:
        raise FikasoError(f"The {name} source {folder} is not in a git repository, so --ref has nothing to pick from",
                          "Deploy the folder as it is (leave out --ref), or point the source at a git checkout")
    commit = _git(folder, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise FikasoError(f"{ref!r} is no tag, branch or commit of the {name} repository ({folder})",
                          f"List them with `git -C {folder} tag` or `git -C {folder} branch -a`; fetch it first "
                          "(`git fetch --tags`) if it was made elsewhere")
    commit_id = commit.stdout.decode().strip()
    place, top = (prefix.stdout.decode().split("\n") + ["", ""])[:2]
    place = place.strip().rstrip("/")
    tree = f"{commit_id}:{place}" if place else commit_id
    # From the top: in a subfolder, git archive would keep only what lies below it, by its path.
    archived = _git(Path(top.strip()), "archive", "--format=tar", tree)
    if archived.returncode != 0:
        raise FikasoError(f"git archive of {ref} in {folder} failed: {archived.stderr.decode(errors='replace').strip()}",
                          f"Check that {place or 'the folder'} exists at {ref}")
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
        tar.extractall(into, filter="data")
    return commit_id
