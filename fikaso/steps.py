"""Small named steps composed into tasks, each reporting what it changed and how long it took."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TextIO, TypeVar

Context = TypeVar("Context")


@dataclass(frozen=True)
class Outcome:
    changed: bool
    detail: str = ""
    failed: bool = False      # a step that failed without stopping the others (one domain of many)


def changed(detail: str = "") -> Outcome:
    return Outcome(True, detail)


def unchanged(detail: str = "") -> Outcome:
    return Outcome(False, detail)


def failed(detail: str) -> Outcome:
    return Outcome(False, detail, failed=True)


@dataclass(frozen=True)
class Step(Generic[Context]):
    name: str
    run: Callable[[Context], Outcome]


def run_steps(title: str, steps: Sequence[Step[Context]], context: Context,
              out: TextIO | None = None) -> list[Outcome]:
    """Run steps in order, one line each; the first failure stops the run and is re-raised."""
    out = out or sys.stdout
    width = max(len(step.name) for step in steps)
    outcomes = []
    started = time.monotonic()
    for number, step in enumerate(steps, 1):
        prefix = f"[{number:>2}/{len(steps)}] {step.name:<{width}}"
        lead = "\r" if out.isatty() else ""
        if lead:
            print(f"{prefix} ...", file=out, end="", flush=True)
        begun = time.monotonic()
        try:
            outcome = step.run(context)
        except BaseException:
            print(f"{lead}{prefix} FAILED after {time.monotonic() - begun:.1f} s", file=out, flush=True)
            raise
        word = "FAILED" if outcome.failed else "changed" if outcome.changed else "ok"
        detail = f"  {outcome.detail}" if outcome.detail else ""
        print(f"{lead}{prefix} {word:<7} {time.monotonic() - begun:5.1f} s{detail}", file=out, flush=True)
        outcomes.append(outcome)
    count = sum(o.changed for o in outcomes)
    summary = "nothing changed" if count == 0 else f"{count} of {len(steps)} steps changed the server"
    print(f"{title}: {summary} ({time.monotonic() - started:.1f} s)", file=out, flush=True)
    return outcomes
