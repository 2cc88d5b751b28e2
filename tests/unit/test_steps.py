import io

import pytest

from fikaso.plan import Action, Fact, Known, Step, changed, unchanged
from fikaso.runner import Runner

from .helpers import FactServer


class Context:
    def __init__(self):
        self.known = Known()


def runner(out, server=None):
    return Runner.on(server or FactServer({}), out=out)


def test_each_step_prints_one_line_with_its_outcome_and_a_summary():
    out = io.StringIO()
    runner(out).steps("setup", [Step("folders", lambda ctx: changed("/srv/fikaso")),
                                Step("mysql", lambda ctx: unchanged("healthy"))], Context())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ 1/2] folders changed") and lines[0].endswith("s  /srv/fikaso")
    assert lines[1].startswith("[ 2/2] mysql   ok") and lines[1].endswith("s  healthy")
    assert lines[2].startswith("setup: 1 of 2 steps changed the server")


def test_a_second_run_that_changes_nothing_says_so():
    out = io.StringIO()
    runner(out).steps("setup", [Step("a", lambda ctx: unchanged())], Context())
    assert "setup: nothing changed" in out.getvalue()


def test_a_failing_step_is_marked_stops_the_run_and_cleans_up():
    out = io.StringIO()
    ran, server = [], FactServer({})

    def boom(ctx):
        raise RuntimeError("no")

    def cleanup(ctx, done, error):
        return [Action("undo", f"echo undo after {','.join(done)}: {error}")]

    with pytest.raises(RuntimeError):
        runner(out, server).steps("setup", [Step("ok", lambda ctx: unchanged()), Step("a", boom),
                                            Step("b", lambda ctx: ran.append(1) or changed())], Context(), cleanup)
    assert out.getvalue().splitlines()[1].split()[2:4] == ["a", "FAILED"]
    assert ran == [] and server.actions == ["echo undo after ok: no"]


def test_a_step_decides_from_the_facts_it_reads_in_one_round_trip():
    server = FactServer({"one": "x=1", "two": "y=2"})
    facts = (Fact("one", "echo x=1", lambda v: v.one("x")), Fact("two", "echo y=2", lambda v: v.one("y")))
    seen = []
    runner(io.StringIO(), server).steps("t", [Step("s", lambda ctx: seen.append(
        (ctx.known["one"], ctx.known["two"])) or unchanged(), reads=facts)], Context())
    assert seen == [("1", "2")] and server.channels == 1


def test_a_plan_prints_actions_but_reads_facts_for_real():
    server, out = FactServer({"one": "x=1"}), io.StringIO()
    fact = Fact("one", "echo x=1", lambda v: v.one("x"))
    step = Step("s", lambda ctx: changed(ctx.known["one"], Action("change it", "touch /x")), reads=(fact,))
    Runner.on(server, plan=True, out=out).steps("t", [step], Context())
    assert server.actions == [] and "# change it\ntouch /x" in out.getvalue()
    assert "t: 1 of 1 steps would change the server" in out.getvalue()


def test_a_group_runs_each_action_on_every_host():
    from fikaso.runner import Host
    first, second = FactServer({}), FactServer({})
    group = Runner([Host("a", first, first), Host("b", second, second)], out=io.StringIO())
    group.run(Action("same everywhere", "true"))
    assert first.actions == second.actions == ["true"]


def test_an_action_for_a_role_or_a_host_runs_only_there():
    first, second = FactServer({}), FactServer({})
    group = Runner.group([("a", first, frozenset({"manager", "web"})), ("b", second, frozenset({"web"}))],
                         out=io.StringIO())
    group.run(Action("on managers", "echo m", on="manager"))
    group.run(Action("on b", "echo b", on="b"))
    group.run(Action("on web nodes", "echo w", on="web"))
    assert first.actions == ["echo m", "echo w"] and second.actions == ["echo b", "echo w"]


def test_a_step_can_read_its_facts_on_every_host():
    group = Runner.group([("a", FactServer({"one": "x=1"}), frozenset()), ("b", FactServer({"one": "x=2"}),
                                                                            frozenset())], out=io.StringIO())
    fact = Fact("one", "echo x", lambda v: v.one("x"))
    context = Context()
    group.steps("t", [Step("s", lambda ctx: unchanged(str(ctx.known["one"])), reads=(fact,), each=True)], context)
    assert context.known["one"] == {"a": "1", "b": "2"}


def test_an_action_on_several_hosts_says_when_each_host_is_done():
    out = io.StringIO()
    group = Runner.group([("n1", FactServer({}), ("web",)), ("n2", FactServer({}), ("web",))], out=out)
    step = Step("install", lambda ctx: changed("on 2 nodes", Action("installing", "echo i")))
    group.steps("deploy", [step], Context())
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("    ")]
    assert sorted(line.split(":")[0].strip() for line in progress) == ["n1", "n2"]
    assert progress[-1].endswith("(2/2)") and "installing done in" in progress[0]
    assert lines.index(progress[-1]) < next(i for i, line in enumerate(lines) if "install " in line and "changed" in line)
