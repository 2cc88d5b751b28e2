"""How a restore splits a dump for its parallel loaders (stack/bin/fikaso-backup split).

The fixture is a real dump (MariaDB 10.11's mysqldump, with the options a backup uses and small
INSERTs, so that a table spans many of them) of a database with every kind of object: tables with
and without rows, a view on a view, a trigger, a procedure whose body holds lines that look like a
dump's own structure, a function, an event, and rows whose values look like structure too. MySQL's
mysqldump writes each INSERT on one line instead of one line per row: the tests make that form
from the same dump.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import ROOT

DUMP = Path(__file__).parent / "data" / "mariadb-dump.sql"
LEFT_OUT = re.compile(rb"^(LOCK TABLES `.*` WRITE;|UNLOCK TABLES;|/\*!40000 ALTER TABLE `.*` (DIS|EN)ABLE KEYS \*/;)$")

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs zstd (scripts/install-host.sh installs it)")


def mysql_form(text: bytes) -> bytes:
    """The same dump as MySQL writes it: each INSERT statement on one line."""
    out, statement = [], None
    for line in text.split(b"\n"):
        if statement is not None:
            statement += line
            if line.endswith(b";"):
                out.append(statement)
                statement = None
        elif line.startswith(b"INSERT INTO `") and not line.endswith(b";"):
            statement = line
        else:
            out.append(line)
    return b"\n".join(out)


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    """The backup script in a bundle of its own (it reads the bundle's .env as on a VPS)."""
    stack = tmp_path_factory.mktemp("bundle") / "stack"
    (stack / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "stack/bin/fikaso-backup", stack / "bin")
    (stack / ".env").write_text("FIKASO_PANELS=admin store website\nFIKASO_DATABASES=fikaso_admin fikaso_store "
                                "fikaso_website\nFIKASO_APP_ROOT=/var/www/app\nFIKASO_NETWORK=fikaso\n"
                                "FIKASO_BACKUP_LOCK=/nonexistent/backup.lock\nFIKASO_LOCKED_EXIT=75\n")
    return stack / "bin" / "fikaso-backup"


class Split:
    def __init__(self, folder: Path):
        self.folder = folder
        self.dump = (folder / "dump.sql").read_bytes()

    def text(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def chunks(self) -> list[tuple[int, str, int]]:
        rows = [line.split("\t") for line in (self.folder / "chunks").read_text().splitlines()]
        return [(int(length), table, int(offset)) for length, table, offset in rows]

    def chunk(self, offset: int, length: int) -> bytes:
        return self.dump[offset:offset + length]

    def loaders(self) -> list[list[tuple[int, int]]]:
        return [[tuple(map(int, line.split())) for line in path.read_text().splitlines()]
                for path in sorted(self.folder.glob("loader.*"), key=lambda p: int(p.suffix[1:]))]


def split(script, tmp_path, text: bytes, chunk_bytes: int, loaders: int = 3) -> subprocess.CompletedProcess:
    (tmp_path / "dump.sql").write_bytes(text)
    subprocess.run(["zstd", "-q", "-f", str(tmp_path / "dump.sql"), "-o", str(tmp_path / "dump.sql.zst")], check=True)
    return subprocess.run([str(script), "split", str(tmp_path / "dump.sql.zst"), str(tmp_path / "split"), str(loaders)],
                          capture_output=True, env={"PATH": "/usr/bin:/bin", "FIKASO_RESTORE_CHUNK_BYTES": str(chunk_bytes)})


@pytest.fixture(params=["mariadb", "mysql"])
def form(request) -> bytes:
    text = DUMP.read_bytes()
    return text if request.param == "mariadb" else mysql_form(text)


@pytest.mark.parametrize("chunk_bytes", [1, 4000, 10 ** 9])
def test_every_line_of_the_dump_is_loaded_exactly_once_except_table_locks(script, tmp_path, form, chunk_bytes):
    done = split(script, tmp_path, form, chunk_bytes)
    assert done.returncode == 0, done.stderr
    parts = Split(tmp_path / "split")
    loaded = parts.text("schema.sql") + parts.text("post.sql")
    loaded += b"".join(parts.chunk(offset, length) for loader in parts.loaders() for offset, length in loader)
    expected = [line for line in form.split(b"\n") if not LEFT_OUT.match(line)]
    assert sorted(loaded.split(b"\n")) == sorted(expected)
    # Every INSERT of rows; one more line starts so, in the procedure's body.
    assert int(parts.text("statements")) == len(re.findall(rb"^INSERT INTO `", form, re.M)) - 1 == 22


def test_chunks_hold_whole_insert_statements_of_one_table_each(script, tmp_path, form):
    assert split(script, tmp_path, form, 4000).returncode == 0
    parts = Split(tmp_path / "split")
    for length, table, offset in parts.chunks():
        body = parts.chunk(offset, length)
        statements = re.split(rb"(?<=;)\n(?=INSERT INTO )", body.rstrip(b"\n"))
        assert all(s.startswith(b"INSERT INTO `" + table.encode() + b"` ") and s.endswith(b");") for s in statements)
    tables = [table for _, table, _ in parts.chunks()]
    assert set(tables) == {"audit_trail", "many", "order", "vault"}  # empty_one has no rows
    assert tables.count("many") > 3  # one big table is shared out, not loaded by one client


def test_schema_comes_first_and_triggers_events_routines_and_views_after_the_rows(script, tmp_path, form):
    assert split(script, tmp_path, form, 4000).returncode == 0
    parts = Split(tmp_path / "split")
    schema, post, session = parts.text("schema.sql"), parts.text("post.sql"), parts.text("session.sql")
    for table in (b"audit_trail", b"empty_one", b"many", b"order", b"vault"):
        assert b"CREATE TABLE `" + table + b"`" in schema
    assert b"TRIGGER" not in schema and b"PROCEDURE" not in schema and b"FUNCTION" not in schema
    # The schema holds placeholders for views (so that they can be referred to); the views come after.
    assert b"EVENT" not in schema and b"VIEW `vault_labels` AS select" not in schema
    for created in (b"TRIGGER vault_audit", b"EVENT `vault_sweep`", b"FUNCTION `vault_total`",
                    b"PROCEDURE `vault_add`", b"VIEW `vault_labels` AS select", b"VIEW `view_of_view` AS select"):
        assert created in post
    assert b"CREATE TABLE" not in post and not re.search(rb"^INSERT INTO `\w+` VALUES", post, re.M)
    # The procedure's body and the rows that look like structure stayed where they belong.
    assert b"-- Dumping data for table `vault`' AS note;\nINSERT INTO `vault` (label) VALUES (l);" in post
    # Views on views: in the dump's order, after placeholders the schema made.
    assert post.index(b"VIEW `vault_labels` AS select") < post.index(b"VIEW `view_of_view` AS select")
    assert b"CREATE VIEW `view_of_view` AS SELECT\n NULL AS `label`" in schema
    # Every loader's session gets the dump's own settings.
    for setting in (b"SET NAMES utf8mb4", b"SET TIME_ZONE='+00:00'", b"NO_AUTO_VALUE_ON_ZERO", b"FOREIGN_KEY_CHECKS=0"):
        assert setting in session
    assert b"CREATE" not in session and b"INSERT" not in session


def test_chunks_go_to_loaders_largest_first_each_to_the_least_loaded(script, tmp_path):
    folder = tmp_path / "split"
    folder.mkdir()
    (folder / "chunks").write_text("".join(f"{size}\tt\t{offset}\n" for offset, size in
                                           enumerate([3, 7, 2, 5, 6, 4])))
    body = f'source <(sed -n "/^schedule_chunks()/,/^}}/p" {script}); schedule_chunks {folder} 2'
    subprocess.run(["bash", "-c", body], check=True)
    loads = Split.loaders(type("S", (), {"folder": folder})())
    # 7 -> 1, 6 -> 2, 5 -> 2 (6 < 7), 4 -> 1 (7 < 11), 3 -> 1 (11 = 11: the first), 2 -> 2
    assert [[size for _, size in loader] for loader in loads] == [[7, 4, 3], [6, 5, 2]]


def test_loaders_get_even_shares_of_one_big_table(script, tmp_path):
    assert split(script, tmp_path, DUMP.read_bytes(), 1000, loaders=4).returncode == 0
    parts = Split(tmp_path / "split")
    loads = [sum(size for _, size in loader) for loader in parts.loaders()]
    largest = max(length for length, _, _ in parts.chunks())
    # Longest first: no loader ends more than one chunk after another.
    assert len(loads) == 4 and max(loads) - min(loads) <= largest


def test_a_dump_it_cannot_place_wholly_is_refused_so_that_the_restore_loads_it_through_one_client(script, tmp_path):
    # Without its comments (mysqldump --skip-comments) a dump has no sections to go by.
    bare = b"\n".join(line for line in DUMP.read_bytes().split(b"\n") if not line.startswith(b"-- "))
    done = split(script, tmp_path, bare, 4000)
    assert done.returncode == 3 and b"outside the rows of a table" in done.stderr


@pytest.mark.parametrize("cores, override, expected", [("1", "", "2"), ("2", "", "2"), ("6", "", "6"), ("32", "", "8"),
                                                        ("32", "3", "3"), ("2", "12", "12")])
def test_loaders_are_the_servers_cores_from_2_to_8_unless_set(script, tmp_path, cores, override, expected):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nproc").write_text(f"#!/bin/sh\necho {cores}\n")
    (fake / "nproc").chmod(0o755)
    body = f'die() {{ echo "$*" >&2; exit 1; }}; source <(sed -n "/^loaders()/,/^}}/p" {script}); loaders'
    done = subprocess.run(["bash", "-c", body], capture_output=True, text=True,
                          env={"PATH": f"{fake}:/usr/bin:/bin", "FIKASO_RESTORE_LOADERS": override})
    assert done.stdout.strip() == expected, done.stderr


def test_a_loader_count_that_is_no_whole_number_is_refused(script):
    body = f'die() {{ echo "$*" >&2; exit 1; }}; source <(sed -n "/^loaders()/,/^}}/p" {script}); loaders'
    done = subprocess.run(["bash", "-c", body], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                                     "FIKASO_RESTORE_LOADERS": "two"})
    assert done.returncode == 1 and "FIKASO_RESTORE_LOADERS must be a whole number" in done.stderr


def test_a_loader_count_that_is_no_whole_number_stops_the_split_even_where_failures_do_not_end_the_script(
        script, tmp_path):
    # A restore calls split_dump as `split_dump ... || status=$?`, where bash's -e is off.
    body = (f'set -e; die() {{ echo "$*" >&2; exit 1; }}; '
            f'source <(sed -n "/^loaders()/,/^}}/p; /^split_dump()/,/^}}/p" {script}); '
            f'split_dump {tmp_path}/dump.sql.zst {tmp_path}/split || echo "status=$?"')
    done = subprocess.run(["bash", "-c", body], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "FIKASO_RESTORE_LOADERS": "two"})
    assert done.stdout.strip() == "status=1" and "FIKASO_RESTORE_LOADERS must be a whole number" in done.stderr
    assert not (tmp_path / "split").exists()


def test_offsets_beyond_2_gib_are_kept_exact(script, tmp_path):
    # What grep finds in a dump of 5 GB (the rows themselves are not needed to place them).
    found = ("0:-- Current Database: `shop`\n100:-- Table structure for table `t`\n"
             "200:-- Dumping data for table `t`\n3000000000:INSERT INTO `t` \n3500000123:INSERT INTO `t` \n"
             "4000000000:UNLOCK TABLES;\n")
    body = (f'eval "$(sed -n "/^SPLIT=\'/,/^}}\'$/p" {script})"; '
            f'awk -v dir={tmp_path} -v limit=33554432 -v size=5000000000 "$SPLIT"')
    done = subprocess.run(["bash", "-c", body], input=found, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "chunks").read_text() == "500000123\tt\t3000000000\n499999877\tt\t3500000123\n"
    assert (tmp_path / "post.ranges").read_text() == "200 2999999800\n4000000015 999999985\n"
