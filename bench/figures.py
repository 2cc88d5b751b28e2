"""What every benchmark prints the same way: medians with their range, and a rotated order."""
from __future__ import annotations

import statistics
from typing import Sequence, TypeVar

T = TypeVar("T")


def spread(values: list[float], digits: int = 1) -> str:
    """median (min-max)"""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def rotated(items: Sequence[T], run: int) -> list[T]:
    """The order of one run: each run starts one further along, so that no contender is always first."""
    shift = run % len(items)
    return [*items[shift:], *items[:shift]]
