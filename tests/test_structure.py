"""The house's boundaries: no import cycles (imports inside functions count too), readers and
the viewer never import the writer, commands hold no training logic of their own."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("llmb_mlflow", "dash_app")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The project modules ``path`` imports, wherever in it the import is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    return {name: {m for m in imports_of(path) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, done, stack = [], set(), []

    def visit(node):
        if node in stack:
            found.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        stack.append(node)
        for target in sorted(edges[node]):
            visit(target)
        stack.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)
    return found


def test_no_import_cycles_anywhere():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in edges[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_readers_and_the_viewer_never_import_the_writer():
    edges = graph()
    for name in edges:
        if name in ("llmb_mlflow.reader", "llmb_mlflow.registry") or name.startswith("dash_app"):
            assert "llmb_mlflow.mlflow_tracker" not in reachable(edges, name), name


def test_commands_leave_training_to_the_library():
    for command in ("cli.py", "cli_models.py"):
        source = (ROOT / "llmb_mlflow" / command).read_text()
        for work in ("run_training", "signal.signal", "DataParallel", "load_corpus", "checkpoint.run_config"):
            assert work not in source, f"{command} does {work} itself"
