"""The asset build runs in a copy, once per set of inputs."""
from pathlib import Path

import pytest

from fikaso import assets
from fikaso.config import Assets, Site
from fikaso.errors import FikasoError

SPEC = Assets(build="mkdir -p out && cat in/*.txt > out/all.txt", inputs=("in",), output="out")


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "app"
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "a.txt").write_text("a\n")
    (folder / "node_modules").mkdir()
    return folder


def shipped(app: Path, cache: Path, spec: Assets = SPEC) -> str:
    site = Site("store", "store.example.com", 8082, app, assets=spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assets, "CACHE", cache)
        with assets.shipped_tree(site, log=lambda line: None) as tree:
            assert tree != app and not (tree / "node_modules").exists()
            return (tree / "out" / "all.txt").read_text()


def test_the_output_ships_and_the_app_folder_is_not_written_to(app, tmp_path):
    assert shipped(app, tmp_path / "cache") == "a\n"
    assert not (app / "out").exists()


def test_unchanged_inputs_reuse_the_last_build_and_a_changed_one_builds_again(app, tmp_path):
    cache = tmp_path / "cache"
    key = assets.inputs_hash(app, SPEC)
    shipped(app, cache)
    shipped(app, cache)
    assert [p.name for p in (cache / "store").iterdir()] == [key]      # built once
    (app / "in" / "a.txt").write_text("changed\n")
    assert shipped(app, cache) == "changed\n" and assets.inputs_hash(app, SPEC) != key


def test_a_failing_build_says_so_with_its_output(app, tmp_path):
    failing = Assets(build="echo cannot find module vite >&2; exit 3", inputs=("in",), output="out")
    with pytest.raises(FikasoError, match=r"(?s)failed \(exit 3\); nothing was uploaded.*cannot find module vite"):
        shipped(app, tmp_path / "cache", failing)
