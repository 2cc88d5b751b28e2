import shutil
import subprocess
from pathlib import PurePosixPath

import pytest

from fikaso.commands import maintenance
from fikaso.layout import Layout


@pytest.mark.parametrize("script", [
    maintenance.switch_script(Layout(PurePosixPath("/srv/fikaso")), "store", "down", secret=True),
    maintenance.every_task_script(["store"], "down", secret=True),
])
def test_the_bypass_secret_comes_on_stdin_and_reaches_the_maintenance_file(script, tmp_path):
    lines = script.splitlines()
    assert lines[0] == "IFS= read -r secret"
    assert "php artisan down" in script and "printf '%s\\n' \"$secret\" |" in script
    assert '$d["secret"] = trim(fgets(STDIN))' in script
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        path = tmp_path / "down.sh"
        path.write_text("#!/bin/bash\nset -euo pipefail\n" + script + "\n")
        checked = subprocess.run([shellcheck, "--severity=warning", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
