"""The import direction: tasks -> steps -> commands and facts -> the base, with the executor (the
runner and the SSH code beneath it) used only by tasks. Nothing imports upwards or sideways."""
import ast
from pathlib import Path

from .helpers import ROOT

# The base, in order: each may import the ones before it.
BASE = ("fikaso.errors", "fikaso.config", "fikaso.layout", "fikaso.shell", "fikaso.archive", "fikaso.source", "fikaso.assets",
        "fikaso.bundle",
        "fikaso.swarm_stack",
        "fikaso.secrets", "fikaso.tables", "fikaso.plan")
# Commands that others build on, in order.
COMMAND_BASE = ("fikaso.commands.alert", "fikaso.commands.compose", "fikaso.commands.swarm", "fikaso.commands.lock", "fikaso.commands.backup",
                "fikaso.commands.php_image", "fikaso.commands.maintenance")
EXECUTOR = {"fikaso.remote", "fikaso.connection", "fikaso.runner", "fikaso.pull"}


def layer(module: str) -> int:
    """Lower layers never import higher ones; the executor sits apart, beside the base."""
    if module in BASE:
        return BASE.index(module) / len(BASE)
    if module in COMMAND_BASE:
        return 1 + COMMAND_BASE.index(module) / len(COMMAND_BASE)
    if module.startswith("fikaso.commands."):
        return 2
    if module in ("fikaso.facts",):
        return 3
    if module == "fikaso.probes":            # doctor's facts, built on the others
        return 3.5
    if module in ("fikaso.records", "fikaso.views"):
        return 4
    if module == "fikaso.doctor":            # doctor's judgement of what probes read
        return 4.5
    if module == "fikaso.steps.shared":       # what setup and certs.issue share
        return 5
    if module.startswith("fikaso.steps."):
        return 6
    if module.startswith("tasks."):
        return 8
    raise AssertionError(f"{module} has no layer: add it to tests/unit/test_layers.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The fikaso and tasks modules a file imports (relative imports resolved)."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("fikaso", "tasks")}


def files():
    for folder in ("fikaso", "tasks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != "__init__.py":
                yield path


def test_every_import_goes_down_a_layer():
    wrong = []
    for path in files():
        importer = module_name(path)
        for module in imports(path):
            if module in ("fikaso", "fikaso.commands", "fikaso.steps", "tasks"):
                continue
            if module in EXECUTOR:
                if importer in EXECUTOR or importer.startswith("tasks."):
                    continue
                wrong.append(f"{importer} imports the executor {module}")
            elif importer in EXECUTOR:
                if layer(module) >= 1:
                    wrong.append(f"the executor {importer} imports {module}")
            elif layer(module) >= layer(importer) and not (importer.startswith("tasks.") and module.startswith("tasks.")):
                wrong.append(f"{importer} imports {module}, which is not below it")
    assert wrong == []


def test_commands_and_steps_never_reach_the_network():
    for path in files():
        name = module_name(path)
        if name.startswith(("fikaso.commands.", "fikaso.steps.")) or name == "fikaso.facts":
            assert not {"fabric", "paramiko", "invoke"} & {m.split(".")[0] for m in _all_imports(path)}, name


def _all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_every_python_file_compiles():
    """Modules that no unit test imports (the sandbox's, the benchmarks) still fail here, not in an e2e run."""
    broken = []
    for folder in ("fikaso", "tasks", "sandbox", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            try:
                compile(path.read_text(), str(path), "exec")
            except SyntaxError as error:
                broken.append(f"{path.relative_to(ROOT)}:{error.lineno}: {error.msg}")
    assert broken == []
