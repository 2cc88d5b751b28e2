"""Production code does not depend on the sandbox: only its tasks, the tests and the benchmarks do."""
import ast

from .helpers import ROOT

MAY_IMPORT_SANDBOX = {"tasks/sandbox.py", "tasks/demo.py"}


def imported(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_sandbox_tasks_import_the_sandbox_package():
    files = [*sorted((ROOT / "fikaso").glob("*.py")), *sorted((ROOT / "tasks").glob("*.py")), ROOT / "fabfile.py"]
    offenders = [str(path.relative_to(ROOT)) for path in files
                 if str(path.relative_to(ROOT)) not in MAY_IMPORT_SANDBOX and "sandbox" in imported(path)]
    assert offenders == []
