"""One sandbox VPS and one deployed stack, shared by every end-to-end test of a run."""
import json
import time

import pytest

from .helpers import fab


@pytest.fixture(scope="session")
def sandbox():
    started = time.monotonic()
    up = fab("sandbox.up", timeout=1800)
    print(up.stdout)
    assert up.returncode == 0, up.stdout + up.stderr
    info = fab("sandbox.info")
    assert info.returncode == 0, info.stderr
    print(f"phase: sandbox ready in {time.monotonic() - started:.1f} s")
    return json.loads(info.stdout)


@pytest.fixture(scope="session")
def deployed(sandbox):
    generated = fab("secrets.generate")
    assert generated.returncode == 0, generated.stderr
    result = fab("-H", sandbox["alias"], "setup", timeout=1800)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    return sandbox
