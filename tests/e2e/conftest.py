"""One test VPS and one deployed stack, shared by every end-to-end test of a run.

The suite owns its test VPS (fikaso-test), apart from the demo's (fikaso-sandbox), and starts it
blank, so that nothing a user did on the demo VPS, or an earlier run left, decides the outcome.
FIKASO_TEST_VPS=reuse keeps the running one instead (faster while working on a single test).
"""
import json
import os
import ssl
import time

import pytest

# Every `fab` the tests run, and the sandbox module they import, act on the suite's VPS.
os.environ["FIKASO_SANDBOX"] = "test"
os.environ["FABRIC_FIKASO_HOST"] = "fikaso-test"
os.environ["FABRIC_FIKASO_CERTIFICATES_CA_BUNDLE"] = ".sandbox-test/acme/ca.pem"

from .helpers import SAMPLED, ProcessSampler, fab, http_only  # noqa: E402
from .load import FIGURES  # noqa: E402


def report(request, line: str) -> None:
    """Show a slow phase's duration in the test run's output, even when the test passes."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(line, flush=True)


@pytest.fixture(scope="session")
def sandbox(request):
    started = time.monotonic()
    fresh = [] if os.environ.get("FIKASO_TEST_VPS") == "reuse" else ["--fresh"]
    up = fab("sandbox.up", *fresh, timeout=1800)
    assert up.returncode == 0, up.stdout + up.stderr
    for line in up.stdout.splitlines():
        if line.startswith("phase:"):
            report(request, line)
    info = fab("sandbox.info")
    assert info.returncode == 0, info.stderr
    report(request, f"phase: sandbox ready in {time.monotonic() - started:.1f} s")
    return json.loads(info.stdout)


@pytest.fixture(scope="session")
def deployed(request, sandbox):
    generated = fab("secrets.generate")
    assert generated.returncode == 0, generated.stderr
    started = time.monotonic()
    with ProcessSampler() as seen:     # test_secrets.py looks for secrets in what a first setup ran
        result = fab("-H", sandbox["alias"], "setup", timeout=1800)
    SAMPLED["setup"] = seen
    assert result.returncode == 0, result.stdout + result.stderr
    for line in result.stdout.splitlines():
        report(request, f"  {line}")
    report(request, f"phase: fab setup on the sandbox took {time.monotonic() - started:.1f} s")
    return sandbox


@pytest.fixture
def https(deployed):
    """Certificates from the sandbox's ACME server for every domain, so that load can go over HTTPS
    too; the server goes back to HTTP only afterwards, as setup leaves it."""
    started = fab("sandbox.acme")
    assert started.returncode == 0, started.stdout + started.stderr
    details = json.loads(started.stdout[started.stdout.index("{"):])
    issued = fab("certs.issue")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    yield {**deployed, **details, "tls": ssl.create_default_context(cafile=details["root"])}
    http_only(deployed)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured by this run")
        for line in FIGURES:
            terminalreporter.write_line(line)
