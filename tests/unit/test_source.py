"""A deploy's --ref ships exactly a commit's tree, from a real (local) git repository."""
import subprocess
from pathlib import Path

import pytest

from fikaso import source
from fikaso.errors import FikasoError


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A repository whose app sits in app/, tagged v1, then changed and left dirty."""
    root = tmp_path / "repo"
    app = root / "app"
    (app / "routes").mkdir(parents=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("app/.env\n")
    (app / "artisan").write_text("v1\n")
    (app / "routes" / "web.php").write_text("<?php // v1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
    git(root, "tag", "v1")
    (app / "artisan").write_text("v2\n")
    git(root, "commit", "-qam", "v2")
    (app / "artisan").write_text("uncommitted\n")
    (app / "new.txt").write_text("untracked\n")
    (app / ".env").write_text("SECRET=ignored\n")
    return app


def test_a_ref_ships_that_commit_and_nothing_uncommitted_or_ignored(repo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    commit = source.export(repo, "v1", "store", out)
    assert commit == git(repo, "rev-parse", "v1^{commit}")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["artisan", "routes", "routes/web.php"]
    assert (out / "artisan").read_text() == "v1\n"


def test_uncommitted_changes_are_named(repo):
    changes = source.uncommitted(repo)
    assert any(line.endswith("artisan") and line.startswith(" M") for line in changes)
    assert any(line.endswith("new.txt") for line in changes) and not any(".env" in line for line in changes)


@pytest.mark.parametrize("ref, phrase", [("v9", "no tag, branch or commit"), ("--output=/tmp/x", "not a git ref")])
def test_an_unknown_ref_is_named_with_how_to_list_them(repo, tmp_path, ref, phrase):
    with pytest.raises(FikasoError, match=phrase):
        source.export(repo, ref, "store", tmp_path)


def test_a_folder_outside_git_says_so(tmp_path):
    with pytest.raises(FikasoError, match="not in a git repository"):
        source.export(tmp_path, "v1", "store", tmp_path)
