"""The one error type users see: a paragraph that names the problem and the fix."""


class FikasoError(Exception):
    """An error whose message is written for the user: what went wrong, and what to do."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(f"{self.problem}. {self.fix}.")
