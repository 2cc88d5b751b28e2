"""The one error type users see: a paragraph that names the problem and the fix."""
import re


class FikasoError(Exception):
    """An error whose message is written for the user: what went wrong, and what to do."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(f"{self.problem}. {self.fix}.")


# Stack frames and structured log records bury the line that says what went wrong.
_NOISE = re.compile(r'^\s*(#\d+ |\{"|\[stacktrace\]|"\}|$)')


def telling_lines(text: str, count: int = 12) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if not _NOISE.match(line)][-count:]
