"""Each panel's PHP-FPM pool is sized by setup, from fabric.yaml or the VPS's memory, and a running
pool takes a new size with a graceful reload: no request fails."""
import time

import pytest
import yaml

from fikaso.commands import php_fpm
from fikaso.config import load_settings

from .helpers import ROOT, copy_project, fab, fab_timed, ssh
from .load import StrictLoad
from .test_deploy import STORE, page, version

pytestmark = pytest.mark.e2e


def pool_children(info, panel: str) -> int:
    """PHP-FPM's workers in the panel's container (the brackets keep grep from counting itself)."""
    result = ssh(info, f"docker exec fikaso_{panel}_panel sh -c "
                       "\"grep -l '[p]ool www' /proc/[0-9]*/cmdline 2>/dev/null | wc -l\"")
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def children_become(info, panel: str, count: int, seconds: float = 30) -> int:
    """Wait until the panel runs `count` FPM workers (a reload replaces them); the last count seen."""
    deadline, seen = time.monotonic() + seconds, -1
    while time.monotonic() < deadline:
        seen = pool_children(info, panel)
        if seen == count:
            break
        time.sleep(0.5)
    return seen


def pool_file(info, panel: str) -> str:
    return ssh(info, f"cat /srv/fikaso/panels/{panel}/php-fpm-pool.conf").stdout


def test_setup_sizes_pools_from_memory_and_resizes_a_running_one_gracefully(deployed, tmp_path):
    memory_mb = int(ssh(deployed, "awk '/^MemTotal:/ {print $2}' /proc/meminfo").stdout) // 1024
    sized = php_fpm.sized_workers(memory_mb, 3, background=3)    # store: 2 queue workers and a scheduler
    assert sized == php_fpm.pool_sizes(load_settings(yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"],
                                                     root=ROOT), memory_mb)["store"]
    for panel in ("admin", "store", "website"):
        assert f"pm.max_children = {sized}\n" in pool_file(deployed, panel)
    # The image's pool config includes the file: PHP-FPM's own reading of its config says so.
    shown = ssh(deployed, "docker exec fikaso_store_panel php-fpm -tt 2>&1 | grep -c 'pm.max_children = %d$'" % sized)
    assert int(shown.stdout or 0) >= 1, shown.stdout + shown.stderr

    project = copy_project(tmp_path / "project")
    settings = yaml.safe_load((project / "fabric.yaml").read_text())
    settings["fikaso"]["panels"]["store"]["fpm_workers"] = 2
    (project / "fabric.yaml").write_text(yaml.safe_dump(settings))
    live = version(page(deployed))
    admin_before = pool_children(deployed, "admin")
    try:
        # A reload starts PHP-FPM's workers, and OPcache, afresh: answers slow down while the cache
        # warms. As for the busy faults of test_faults.py, more clients keep the strict check's rate,
        # and every request must still be answered, within 2 s.
        with StrictLoad(deployed, STORE, clients=64) as load:
            result, start, end, _ = fab_timed("setup", cwd=project)
            load.settle(end)
            print(load.check(start, end, old={live}, bound=2.0, name="a setup that resizes store's PHP-FPM pool"))
        assert result.returncode == 0, result.stdout + result.stderr
        pools = next(line for line in result.stdout.splitlines() if "] php-fpm pools" in line)
        assert "changed" in pools and f"admin {sized}, store 2, website {sized} workers" in pools, pools
        assert "pm.max_children = 2\n" in pool_file(deployed, "store")
        # pm.max_children 2 holds its spare servers at 2: the running master read the file again.
        assert children_become(deployed, "store", 2) == 2
        assert pool_children(deployed, "admin") == admin_before
        again = fab("setup", cwd=project)
        assert again.returncode == 0 and "setup: nothing changed" in again.stdout, again.stdout + again.stderr
    finally:
        back = fab("setup")
        assert back.returncode == 0, back.stdout + back.stderr
    assert f"pm.max_children = {sized}\n" in pool_file(deployed, "store")
    assert children_become(deployed, "store", 3) == 3    # pm.start_servers again
