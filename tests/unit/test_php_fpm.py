"""PHP-FPM pool sizes: from fabric.yaml or the VPS's memory, written to the panel's folder, and a
running pool reloaded gracefully; setup leaves pools of the right size alone."""
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from fikaso import records
from fikaso.commands import php_fpm
from fikaso.config import load_settings
from fikaso.facts import parse_stack
from fikaso.layout import Layout
from fikaso.plan import Values
from fikaso.secrets import Secrets
from fikaso.steps import setup

from .helpers import ROOT, shipped_section

SETTINGS = load_settings(shipped_section(), root=ROOT)


@pytest.mark.parametrize("memory_mb, workers", [(1024, 2), (2048, 4), (4096, 15), (8192, 36), (65536, 40)])
def test_pools_share_what_the_rest_of_the_vps_leaves(memory_mb, workers):
    # The shipped settings run 2 queue workers and a scheduler for the store panel.
    assert php_fpm.pool_sizes(SETTINGS, memory_mb) == {"admin": workers, "store": workers, "website": workers}


def test_a_panel_with_fpm_workers_keeps_its_own_size():
    section = shipped_section()
    section["panels"]["store"]["fpm_workers"] = 24
    sizes = php_fpm.pool_sizes(load_settings(section, root=ROOT), 4096)
    assert sizes == {"admin": 15, "store": 24, "website": 15}


@pytest.mark.parametrize("workers", [1, 2, 4, 100])
def test_a_pool_keeps_php_fpm_s_order_of_spare_servers(workers):
    values = dict(line.split(" = ") for line in php_fpm.pool_text(workers).splitlines() if " = " in line)
    sizes = [int(values[key]) for key in ("pm.min_spare_servers", "pm.start_servers", "pm.max_spare_servers",
                                          "pm.max_children")]
    assert sizes == sorted(sizes) and sizes[-1] == workers and sizes[0] >= 1


def fake_docker(tmp_path: Path, running: bool) -> dict:
    """PATH with a `docker` that logs its arguments and lists the panel as running, or not."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "docker").write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/docker.log\n'
                                   f'case "$*" in *" ps "*) {"echo c0ffee" if running else "true"};; esac\n')
    (folder / "docker").chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


@pytest.mark.parametrize("running", [True, False])
def test_resizing_writes_the_pool_and_reloads_only_a_running_php_fpm(tmp_path, running):
    layout = Layout(PurePosixPath(tmp_path))
    (tmp_path / "stack").mkdir()
    (tmp_path / "panels" / "store").mkdir(parents=True)
    subprocess.run(["bash", "-euo", "pipefail", "-c", php_fpm.resize_script(layout, "store", 12)], check=True,
                   env=fake_docker(tmp_path, running))
    assert (tmp_path / "panels" / "store" / "php-fpm-pool.conf").read_text() == php_fpm.pool_text(12)
    calls = (tmp_path / "docker.log").read_text().splitlines()
    reloads = [call for call in calls if "kill -USR2 1" in call]
    assert reloads == (["compose exec -T store_panel sh -c kill -USR2 1"] if running else [])
    # What the stack fact reads back from the file.
    read = subprocess.run(["bash", "-c", php_fpm.read_command(layout, "store")], capture_output=True, text=True)
    assert read.stdout == "pool_store=12\n"


def stack_facts(pools: dict[str, int], memory_kb: int = 4096 * 1024) -> str:
    return "\n".join([f"memory_kb={memory_kb}", *(f"pool_{panel}={n}" for panel, n in pools.items())])


@pytest.mark.parametrize("pools, resized", [({"admin": 15, "store": 15, "website": 15}, []),
                                            ({"admin": 15, "store": 10}, ["store", "website"])])
def test_setup_resizes_only_the_pools_that_differ(pools, resized):
    run = setup.SetupRun(settings=SETTINGS, secrets=Secrets("r", {}, {}), actor=records.Actor("ana", "laptop", 1))
    run.known.values["stack"] = parse_stack(Values.parse(stack_facts(pools)))
    outcome = setup.php_fpm_pools(run)
    assert outcome.changed == bool(resized)
    assert [action.label for action in outcome.actions] == [f"sizing {p}'s PHP-FPM pool to 15 workers" for p in resized]
    assert "admin 15, store 15, website 15 workers (4096 MB of memory)" == outcome.text()
