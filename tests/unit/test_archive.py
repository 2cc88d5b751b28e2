import io
import os
import tarfile

from fikaso import archive


def names(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def make_app(root):
    (root / "app").mkdir(parents=True)
    (root / "app" / "x.php").write_text("<?php")
    (root / "artisan").write_text("#!/usr/bin/env php")
    os.chmod(root / "artisan", 0o755)
    (root / ".env").write_text("DB_PASSWORD=secret")
    (root / "vendor").mkdir()
    (root / "vendor" / "autoload.php").write_text("")
    (root / "storage" / "logs").mkdir(parents=True)
    (root / "storage" / "logs" / "laravel.log").write_text("log")
    (root / ".git").mkdir()
    (root / "public").mkdir()
    os.symlink("../app", root / "public" / "link")


def test_same_tree_same_bytes_whatever_the_mtimes(tmp_path):
    make_app(tmp_path)
    first = archive.tree(tmp_path)
    os.utime(tmp_path / "artisan", (1, 1))
    assert archive.tree(tmp_path).sha256 == first.sha256


def test_secrets_dependencies_and_runtime_state_stay_behind(tmp_path):
    make_app(tmp_path)
    members = names(archive.tree(tmp_path).data)
    assert set(members) == {"app", "app/x.php", "artisan", "public", "public/link"}
    assert members["artisan"].mode == 0o755 and members["app/x.php"].mode == 0o644
    assert members["public/link"].issym() and members["public/link"].linkname == "../app"
    assert members["artisan"].uid == 0 and members["artisan"].mtime == 0


def test_a_changed_file_changes_the_hash(tmp_path):
    make_app(tmp_path)
    before = archive.tree(tmp_path).sha256
    (tmp_path / "app" / "x.php").write_text("<?php // v2")
    assert archive.tree(tmp_path).sha256 != before


def test_in_memory_files_keep_their_modes():
    members = names(archive.files({"a": (b"1", 0o600), "b/c": (b"2", 0o644)}).data)
    assert members["a"].mode == 0o600 and members["b/c"].mode == 0o644
