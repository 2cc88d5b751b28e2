"""Writing bash: quoting, command lines, and the few idioms every remote script shares."""
from __future__ import annotations

import json
import shlex


def q(value: object) -> str:
    return shlex.quote(str(value))


def cmd(*argv: object) -> str:
    """A shell command line with every part quoted."""
    return " ".join(q(part) for part in argv)


def wait_healthy_lines(probe: str, seconds: int) -> list[str]:
    """Run `probe` until it succeeds, for at most `seconds`; leaves healthy=yes or healthy=no."""
    return [
        "healthy=no",
        f"deadline=$((SECONDS + {seconds}))",
        "while [ \"$SECONDS\" -lt \"$deadline\" ]; do",
        f"  if {probe} >/dev/null 2>&1; then healthy=yes; break; fi",
        "  sleep 0.5",
        "done",
    ]


def wait_page_lines(probe: str, seconds: int) -> list[str]:
    """Run `probe` (a `wget -S` of a page) until the page answers 2xx, for at most `seconds`: leaves
    healthy=yes; or healthy=missing at once if it answers 404 (an app without that route does not grow
    one while we wait); else healthy=no. Redirects are followed; a 5xx or no answer is asked again."""
    return [
        "healthy=no",
        f"deadline=$((SECONDS + {seconds}))",
        "while [ \"$SECONDS\" -lt \"$deadline\" ]; do",
        # wget exits non-zero on a 4xx or 5xx: under `set -e -o pipefail` that must not end the script.
        f"  code=$({probe} 2>&1 | awk '/^  HTTP\\//{{code = $2}} END {{print code}}') || true",
        "  case \"$code\" in 2??) healthy=yes; break ;; 404) healthy=missing; break ;; esac",
        "  sleep 0.5",
        "done",
    ]


def write_lines(path, text: str) -> list[str]:
    """Replace a file whole: a reader never sees half of it."""
    return [f"printf '%s' {q(text)} > {q(str(path) + '.tmp')}", cmd("mv", "-f", f"{path}.tmp", path)]


def append_lines(path, records: list[dict]) -> str:
    """Append JSON records to a log file, one line each."""
    return "\n".join(f"printf '%s\\n' {q(json.dumps(r, sort_keys=True))} >> {q(path)}" for r in records)
