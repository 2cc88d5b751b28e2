"""Run a local command (docker, ssh-keygen, mmdebstrap) and turn failures into user errors."""
from __future__ import annotations

import subprocess
from typing import Sequence

from fikaso.errors import FikasoError


def run(argv: Sequence[str], *, what: str, fix: str, stdin=None, capture: bool = True,
        timeout: float | None = None) -> str:
    try:
        result = subprocess.run(list(argv), stdin=stdin, capture_output=capture, text=capture,
                                timeout=timeout, check=False)
    except FileNotFoundError:
        raise FikasoError(f"{what} failed: {argv[0]} is not installed", fix) from None
    except subprocess.TimeoutExpired:
        raise FikasoError(f"{what} did not finish within {timeout:.0f} s", fix) from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout or "").strip().splitlines()[-5:] if capture else []
        raise FikasoError(f"{what} failed (exit {result.returncode}){': ' + ' / '.join(tail) if tail else ''}",
                          fix)
    return result.stdout if capture else ""


def succeeds(argv: Sequence[str]) -> bool:
    return subprocess.run(list(argv), capture_output=True, check=False).returncode == 0
