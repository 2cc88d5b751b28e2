"""The one runner: executes the actions steps return, on one host or a group, or prints them.

In a plan (`--plan`, or Invoke's `-R`/`--dry`), facts are still read from the server, since
every decision depends on them, but each action is printed instead of run: the plan is exactly
the run, action for action.

On a group of hosts (the VPSs of a swarm) an action runs on each host in parallel, or only on
the hosts with the role it names, or the host it names (`Action.on`). Steps decide from the first
host's facts (`read`), from the first with a role's (`Step.on`), or from every host's (`Step.each`).
"""
from __future__ import annotations

import io
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence, TextIO

from .errors import DiskFull, disk_full
from .plan import Action, Fact, Outcome, Step, facts_script, parse_facts, split_output
from .remote import PrintRemote, Remote, RemoteError, Result


@dataclass
class Host:
    """One server: `reader` reads facts, `executor` runs actions (the same, unless planning)."""

    name: str
    reader: Remote
    executor: Remote
    roles: frozenset[str] = frozenset()     # empty: the only host, which has every role


class _Labelled(PrintRemote):
    """A plan's printer for one host of a group: each script says which host it is for."""

    def __init__(self, name: str, out: TextIO):
        super().__init__(out=out)
        self.name = name

    def run(self, script, *, label, **kwargs):
        return super().run(script, label=f"{label}  [on {self.name}]", **kwargs)


@dataclass
class Runner:
    hosts: Sequence[Host]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    planning: bool = False
    _in_steps: bool = False
    _line_open: bool = False      # a step's "name ..." printed on a terminal, its end not yet
    _print_lock: threading.Lock = field(default_factory=threading.Lock)
    _guard: Callable[[Action], Action] | None = None

    @classmethod
    def on(cls, remote: Remote, name: str = "", plan: bool = False, out: TextIO | None = None) -> "Runner":
        """A runner for one host: the usual case."""
        out = out or sys.stdout
        executor = PrintRemote(out=out) if plan else remote
        return cls([Host(name, remote, executor)], out=out, planning=plan)

    @classmethod
    def group(cls, remotes: Sequence[tuple[str, Remote, frozenset[str]]], plan: bool = False,
              out: TextIO | None = None) -> "Runner":
        """A runner for several hosts, each (name, remote, roles); the first is the primary."""
        out = out or sys.stdout
        return cls([Host(name, remote, _Labelled(name, out) if plan else remote, roles)
                    for name, remote, roles in remotes], out=out, planning=plan)

    def hosts_for(self, role: str | None) -> list[Host]:
        if role is None or len(self.hosts) == 1:
            return list(self.hosts)
        found = [host for host in self.hosts if role in host.roles or role == host.name]
        if not found:
            raise ValueError(f"no host has the role or name {role}")
        return found

    # ---- facts ------------------------------------------------------------------------------

    def read(self, *facts: Fact, on: str | None = None) -> tuple:
        """The facts, as the first host (or the first with the role or name `on`) has them (one round trip)."""
        return self._read(facts, self.hosts_for(on)[:1])[0]

    def read_all(self, *facts: Fact) -> list[tuple]:
        """The facts of every host, read in parallel, one round trip each."""
        return self._read(facts, self.hosts)

    def _read(self, facts: Sequence[Fact], hosts: Sequence[Host]) -> list[tuple]:
        script = facts_script(facts)

        def one(host: Host) -> tuple:
            result = host.reader.run(script, label="reading the server's state")
            return parse_facts(facts, result.stdout)
        return self._each(one, hosts)

    # ---- actions ----------------------------------------------------------------------------

    def run(self, action: Action) -> list[Result]:
        """Run one action on every host (in parallel); its `reads` come back in `Result.facts`."""
        if self._guard is not None:
            action = self._guard(action)
        if action.stdin_from is not None:
            action = replace(action, stdin=self._relayed(action), stdin_from=None)
        indent = "    " if self._in_steps else ""
        echo = (lambda line: print(f"{indent}{line}", file=self.out, flush=True)) if action.stream else None

        hosts = self.hosts_for(action.on)
        progress = self._progress(action.label, len(hosts))

        def one(host: Host) -> Result:
            begun = time.monotonic()
            result = host.executor.run(action.full_script, label=action.label, stdin=action.stdin,
                                       check=False, echo=echo)
            progress(host.name, time.monotonic() - begun, result.exit_code == 0)
            if action.reads and self.planning:   # the plan shows the action; its reads happen for real
                facts = host.reader.run(facts_script(action.reads), label="reading the server's state").stdout
            else:
                facts = result.stdout
            own, _ = split_output(result.stdout)
            done = Result(own, result.stderr, result.exit_code, parse_facts(action.reads, facts))
            if action.check and not done.ok:
                if disk_full(result.stderr + result.stdout):   # whatever else failed, this is the cause
                    raise DiskFull(action.label, result.stderr + result.stdout)
                raise (action.failure(done) if action.failure else None) or RemoteError(action.label, done)
            return done
        return self._each(one, hosts)

    def _progress(self, label: str, count: int) -> Callable[[str, float, bool], None]:
        """Within steps, an action on several hosts says when each host is done with it (a step's
        own line comes only once every host is)."""
        if count < 2 or not self._in_steps or self.planning:
            return lambda *_: None
        finished = []

        def report(host: str, seconds: float, ok: bool) -> None:
            with self._print_lock:
                finished.append(host)
                if self._line_open:      # the step's "..." on a terminal: progress goes below it
                    print(file=self.out)
                    self._line_open = False
                print(f"    {host}: {label} {'done' if ok else 'FAILED'} in {seconds:.1f} s "
                      f"({len(finished)}/{count})", file=self.out, flush=True)
        return report

    def _relayed(self, action: Action) -> bytes:
        """The output of `stdin_from`'s script on its host, through this machine (hosts do not reach
        each other over SSH)."""
        where, script = action.stdin_from
        source = self.hosts_for(where)[0]
        sink = io.BytesIO()
        source.executor.download(script, sink, label=f"{action.label} (reading it on {source.name})")
        return sink.getvalue()

    @staticmethod
    def _each(work, hosts: Sequence[Host]) -> list:
        if len(hosts) == 1:
            return [work(hosts[0])]
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            return list(pool.map(work, hosts))

    # ---- steps ------------------------------------------------------------------------------

    def step(self, step: Step, context: Any) -> Outcome:
        """Read the step's facts, let it decide, run what it returned; the final Outcome."""
        facts = step.facts(context)
        if facts and step.each:
            every = list(zip(self.hosts, self.read_all(*facts)))
            for number, fact in enumerate(facts):
                context.known.values[fact.name] = {host.name: values[number] for host, values in every}
        elif facts:
            for fact, value in zip(facts, self.read(*facts, on=step.on)):
                context.known.values[fact.name] = value
        outcome = step.decide(context)
        results = []
        for action in outcome.actions:
            (result, *_) = self.run(action)     # the judge sees the first host's result
            for fact, value in zip(action.reads, result.facts):
                context.known.values[fact.name] = value
            results.append(result)
        if outcome.judge is not None:
            outcome = outcome.judge(results)
        return outcome

    def _clean_up(self, actions: Sequence[Action]) -> None:
        for action in actions:
            try:
                self.run(action)
            except Exception as error:  # the first failure is the one to report
                print(f"warning: {action.label} failed too: {str(error).splitlines()[0]}", file=self.out)

    def steps(self, title: str, steps: Sequence[Step], context: Any,
              cleanup: Callable[[Any, list[str], BaseException], Sequence[Action]] | None = None,
              retry: Callable[[Any, BaseException], tuple[str, Sequence[Action]] | None] | None = None,
              guard: Callable[[Action], Action] | None = None) -> list[Outcome]:
        """Run steps in order, one line each; the first failure stops the run and is re-raised.

        On a failure, `cleanup` (given the names of the steps that finished and the error) returns
        the actions that put the server back in order (free a lock, record the failure); they run
        before the error goes up. `retry` may instead answer a failure with a note and the actions
        that clear its cause (a lock left by a killed run): the step then runs once more. `guard`
        rewrites every action before it runs or is printed (a deploy waits for an earlier run's
        server-side work), so that the plan stays exactly the run.
        """
        self._in_steps, self._guard = True, guard
        try:
            return self._steps(title, steps, context, cleanup, retry)
        finally:
            self._guard = None
            self._in_steps = False

    def _steps(self, title, steps, context, cleanup, retry) -> list[Outcome]:
        out = self.out
        width = max(len(step.name) for step in steps)
        outcomes = []
        started = time.monotonic()
        if self.planning:
            print(f"# plan of {title}: facts are read from the server, nothing below runs\n", file=out)
        for number, step in enumerate(steps, 1):
            prefix = f"[{number:>2}/{len(steps)}] {step.name:<{width}}"
            lead = "\r" if out.isatty() and not self.planning else ""
            if lead:
                print(f"{prefix} ...", file=out, end="", flush=True)
                self._line_open = True
            begun = time.monotonic()
            try:
                try:
                    outcome = self.step(step, context)
                except Exception as error:
                    cure = retry(context, error) if retry is not None else None
                    if cure is None:
                        raise
                    note, actions = cure
                    print(f"{chr(10) if lead else ''}note: {note}", file=out, flush=True)
                    for action in actions:
                        self.run(action)
                    outcome = self.step(step, context)
            except BaseException as error:
                self._line_open = False
                print(f"{lead}{prefix} FAILED after {time.monotonic() - begun:.1f} s", file=out, flush=True)
                if cleanup is not None:
                    self._clean_up(cleanup(context, [s.name for s in steps[:number - 1]], error))
                raise
            self._line_open = False
            word = "FAILED" if outcome.failed else "changed" if outcome.changed else "ok"
            detail = outcome.text()
            print(f"{lead}{prefix} {word:<7} {time.monotonic() - begun:5.1f} s{'  ' + detail if detail else ''}",
                  file=out, flush=True)
            outcomes.append(outcome)
        count = sum(o.changed for o in outcomes)
        summary = "nothing changed" if count == 0 else f"{count} of {len(steps)} steps changed the server"
        if self.planning:
            summary = "nothing would change" if count == 0 else f"{count} of {len(steps)} steps would change the server"
        print(f"{title}: {summary} ({time.monotonic() - started:.1f} s)", file=out, flush=True)
        return outcomes
