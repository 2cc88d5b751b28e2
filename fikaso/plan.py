"""What a task would do, as data: facts to read, actions to run, steps that decide between them.

Nothing here touches the network. Facts pair a script that reads server state with its parser;
actions are scripts (with optional data on stdin) that change it; a step looks at facts and
returns the actions it needs. One runner (fikaso/runner.py) executes actions on one host or a
group, or prints them, so every task's plan is exactly its run.

The wire format of every fact is the same: lines of `key=value`, one value per line (a key may
repeat; a value is plain text, JSON or base64, never a line break). Several facts read in one
round trip are framed by a header line each (`FACT_HEADER name`).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
Context = TypeVar("Context")

FACT_HEADER = "::fikaso-fact"


class Values:
    """The key=value lines one fact printed."""

    def __init__(self, pairs: Sequence[tuple[str, str]] = ()):
        self.pairs = list(pairs)

    @classmethod
    def parse(cls, text: str) -> "Values":
        pairs = []
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key and " " not in key:
                pairs.append((key, value))
        return cls(pairs)

    def all(self, key: str) -> list[str]:
        return [value for k, value in self.pairs if k == key]

    def one(self, key: str, default: str = "") -> str:
        found = self.all(key)
        return found[-1] if found else default

    def flag(self, key: str) -> bool:
        return self.one(key) == "yes"

    def with_prefix(self, prefix: str) -> dict[str, str]:
        return {k[len(prefix):]: value for k, value in self.pairs if k.startswith(prefix)}


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A script that prints key=value lines about the server, and the parser of those lines.

    Fact scripts only read; they must not fail on a server that lacks what they look for.
    """

    name: str
    script: str
    parse: Callable[[Values], T]


def facts_script(facts: Sequence[Fact]) -> str:
    """One script reading every fact, each output behind its header line."""
    return "\n".join(f"echo {shlex.quote(FACT_HEADER + ' ' + fact.name)}\n{fact.script}" for fact in facts)


def split_output(text: str) -> tuple[str, dict[str, str]]:
    """The output before the first header (an action's own), and each fact's output by name."""
    own, sections, current = [], {}, None
    for line in text.splitlines():
        if line.startswith(FACT_HEADER + " "):
            current = line[len(FACT_HEADER) + 1:]
            sections[current] = []
        elif current is None:
            own.append(line)
        else:
            sections[current].append(line)
    return "\n".join(own), {name: "\n".join(lines) for name, lines in sections.items()}


def parse_facts(facts: Sequence[Fact], text: str) -> tuple:
    _, sections = split_output(text)
    return tuple(fact.parse(Values.parse(sections.get(fact.name, ""))) for fact in facts)


@dataclass(frozen=True)
class Action:
    """One remote script: one SSH channel, one round trip.

    `stdin` is data streamed into it (never printed); `reads` are facts read at the end of the same
    script, so a change and what it left cost one round trip; `failure` turns a non-zero exit into
    the error users see.
    """

    label: str
    script: str
    stdin: bytes | None = None
    check: bool = True
    stream: bool = False            # show the script's output lines as they come (-v)
    reads: tuple[Fact, ...] = ()
    failure: Callable[[Any], Exception] | None = None   # given the Result
    on: str | None = None           # on a group of hosts: only those with this role, or this one (None: all)
    # stdin taken from another host: the output of a script run there (role or host name, script)
    stdin_from: tuple[str, str] | None = None

    @property
    def full_script(self) -> str:
        return self.script + ("\n" + facts_script(self.reads) if self.reads else "")


@dataclass(frozen=True)
class Outcome:
    changed: bool
    detail: str | Callable[[], str] = ""
    failed: bool = False        # a step that failed without stopping the others (one domain of many)
    actions: tuple[Action, ...] = ()
    judge: Callable[[list], "Outcome"] | None = None   # the outcome, once the actions' Results are in
    info: Any = None            # what a step tells its task (a failure's reason, say)

    def text(self) -> str:
        return self.detail() if callable(self.detail) else self.detail


def changed(detail: str | Callable[[], str] = "", *actions: Action, **kwargs) -> Outcome:
    return Outcome(True, detail, actions=actions, **kwargs)


def unchanged(detail: str | Callable[[], str] = "", *actions: Action, **kwargs) -> Outcome:
    """Nothing to change; `actions` may still run checks or reads that change nothing."""
    return Outcome(False, detail, actions=actions, **kwargs)


def failed(detail: str, **kwargs) -> Outcome:
    return Outcome(False, detail, failed=True, **kwargs)


@dataclass(frozen=True)
class Step(Generic[Context]):
    """A named unit of a task. `decide` is pure: from the context and the facts in `reads` (read just
    before, in one round trip) it returns an Outcome carrying the actions to run."""

    name: str
    decide: Callable[..., Outcome]
    reads: Callable[[Context], tuple[Fact, ...]] | tuple[Fact, ...] = ()
    each: bool = False      # read the facts on every host: the context gets {host name: value} for each
    on: str | None = None   # read the facts on the first host with this role or name (None: the first host)

    def facts(self, context: Context) -> tuple[Fact, ...]:
        return self.reads(context) if callable(self.reads) else self.reads


@dataclass
class Known:
    """The facts read so far in a run, by name; only the runner adds to it."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)
