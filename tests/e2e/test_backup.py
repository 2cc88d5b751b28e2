"""Backups made on the test VPS: private, checked and listed (test_secrets.py samples the
process list while one runs)."""
import re

import pytest

from .helpers import fab, ssh

pytestmark = pytest.mark.e2e


def backups(info) -> list[str]:
    return ssh(info, "ls /srv/fikaso/backups 2>/dev/null").stdout.split()


def test_a_backup_is_private_checked_and_listed(deployed):
    result = fab("backup.now")
    assert result.returncode == 0, result.stdout + result.stderr
    newest = sorted(backups(deployed))[-1]
    listing = fab("backup.list")
    row = next(line for line in listing.stdout.splitlines() if line.startswith(newest))
    assert row.split()[-2:] == ["fikaso_admin,fikaso_store,fikaso_website", "ok"]
    modes = ssh(deployed, f"stat -c '%a %n' /srv/fikaso/backups /srv/fikaso/backups/{newest} "
                          f"/srv/fikaso/backups/{newest}/*").stdout.split("\n")
    assert modes[0].startswith("700 ") and modes[1].startswith("700 ")
    assert all(line.startswith("600 ") for line in modes[2:] if line)
    manifest = ssh(deployed, f"cat /srv/fikaso/backups/{newest}/manifest").stdout
    assert "table fikaso_store.panel_notes 1 " in manifest


def test_verify_catches_a_flipped_byte_and_names_the_file(deployed):
    assert fab("backup.now", "--database=fikaso_store").returncode == 0
    newest = sorted(backups(deployed))[-1]
    assert fab("backup.verify", f"--id={newest}").returncode == 0
    path = f"/srv/fikaso/backups/{newest}/fikaso_store.sql.zst"
    flip = (f"byte=$(od -An -tu1 -j 40 -N 1 {path} | tr -d ' '); "
            f"printf \"$(printf '\\\\%03o' $(( (byte + 1) % 256 )))\" | "
            f"dd of={path} bs=1 seek=40 count=1 conv=notrunc status=none")
    assert ssh(deployed, flip).returncode == 0
    result = fab("backup.verify", f"--id={newest}")
    assert result.returncode == 1
    assert "fikaso_store.sql.zst" in result.stderr and "damaged" in result.stderr
    listing = fab("backup.list").stdout.splitlines()[1:]
    row = next(line for line in listing if line.startswith(newest))
    assert row.split()[-1] == "FAILED"
    assert all(re.match(r"^\d{8}T\d{6}Z ", line) for line in listing), listing  # one line per backup


def test_an_interrupted_pull_resumes_and_a_damaged_copy_is_fetched_again(deployed, tmp_path):
    assert fab("backup.now", "--database=fikaso_store").returncode == 0
    newest = sorted(backups(deployed))[-1]
    first = fab("backup.pull", f"--id={newest}", f"--dest={tmp_path}")
    assert first.returncode == 0, first.stderr
    folder = tmp_path / newest
    dump = folder / "fikaso_store.sql.zst"
    whole = dump.read_bytes()
    dump.write_bytes(whole[: len(whole) // 2])  # as if the connection dropped half-way
    storage = folder / "storage-store.tar.zst"
    good = storage.read_bytes()
    storage.write_bytes(bytes([good[0] ^ 0xFF]) + good[1:])  # same size, wrong content
    again = fab("backup.pull", f"--id={newest}", f"--dest={tmp_path}")
    assert again.returncode == 0, again.stderr
    assert f"fikaso_store.sql.zst: {len(whole)} bytes (resumed at {len(whole) // 2})" in again.stdout
    assert "checksums match" in again.stdout
    assert dump.read_bytes() == whole
    assert storage.read_bytes() == good
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
