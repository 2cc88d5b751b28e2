import io

import pytest

from fikaso.steps import Step, changed, run_steps, unchanged


def test_each_step_prints_one_line_with_its_outcome_and_a_summary():
    out = io.StringIO()
    run_steps("setup", [Step("folders", lambda ctx: changed("/srv/fikaso")),
                        Step("mysql", lambda ctx: unchanged("healthy"))], None, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ 1/2] folders changed") and lines[0].endswith("s  /srv/fikaso")
    assert lines[1].startswith("[ 2/2] mysql   ok") and lines[1].endswith("s  healthy")
    assert lines[2].startswith("setup: 1 of 2 steps changed the server")


def test_a_second_run_that_changes_nothing_says_so():
    out = io.StringIO()
    run_steps("setup", [Step("a", lambda ctx: unchanged())], None, out=out)
    assert "setup: nothing changed" in out.getvalue()


def test_a_failing_step_is_marked_and_stops_the_run():
    out = io.StringIO()
    ran = []

    def boom(ctx):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        run_steps("setup", [Step("a", boom), Step("b", lambda ctx: ran.append(1) or changed())], None, out=out)
    assert "a FAILED after" in out.getvalue()
    assert ran == []
