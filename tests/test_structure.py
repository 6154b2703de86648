"""The house's boundaries: no import cycles (imports inside functions count too); each part of the
house imports only the parts MAY_IMPORT names (training knows nothing of MLflow, the readers and the viewer
never reach the writer, nothing reaches the command line); commands hold no training logic."""

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("llmb_mlflow", "dash_app")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules=()) -> set[str]:
    """The project modules ``path`` imports, wherever in it the import is. ``from package import
    module`` imports the module; the package counts only for a name that is no module of
    ``modules``."""
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
            named = {f"{base}.{alias.name}" for alias in node.names}
            found |= named if named <= set(modules) else named | {base}
    return found


def graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    return {name: {m for m in imports_of(path, modules) if m in modules and m != name}
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


# What each part of the house may import besides itself. The top-level rooms ``errors``,
# ``numbers``, ``paths``, ``processes``, ``run_layout`` and ``version`` are BASE: everyone may
# import them.
BASE = {"errors", "numbers", "paths", "processes", "run_layout", "version"}
MAY_IMPORT = {
    "base": set(),
    "formats": set(),
    "training": {"formats"},
    "store": set(),
    "library": {"formats", "training", "store"},
    "serving": {"training", "store"},
    "pyfunc_code": {"serving"},
    "tracking": {"formats", "training", "store", "library", "serving"},
    "export": {"formats", "training", "store", "library"},
    "launch": {"training", "store", "library"},
    "session": {"training", "store", "library", "tracking", "launch"},
    "recorder": {"training", "tracking", "session"},
    "public": {"recorder"},  # the package itself: ``llmb_mlflow.record``
    "cli": {"formats", "training", "store", "library", "tracking", "export", "launch", "session", "dash_app"},
    "__main__": {"cli"},
    "dash_app": {"formats", "training", "store", "library", "export", "launch"},
}


def part(module: str) -> str:
    """The part of the house a module belongs to: its subpackage, or itself at the top level."""
    parts = module.split(".")
    if module == "llmb_mlflow":
        return "public"
    if parts[0] == "dash_app":
        return "dash_app"
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    return parts[1]


def test_every_part_of_the_house_is_known():
    assert {part(name) for name in graph()} == set(MAY_IMPORT) | {"base"}


def test_each_part_imports_only_the_parts_below_it():
    wrong = sorted(f"{name} imports {target}" for name, targets in graph().items() for target in targets
                   if part(target) not in {part(name), "base"} | MAY_IMPORT[part(name)])
    assert wrong == []


def test_the_rules_find_a_wrong_import():
    assert part("llmb_mlflow.tracking.mlflow_tracker") not in MAY_IMPORT[part("llmb_mlflow.library.reader")]
    assert part("llmb_mlflow.cli.main") not in MAY_IMPORT[part("dash_app.data")]


def test_readers_and_the_viewer_never_reach_the_writer():
    edges = graph()
    for name in edges:
        if part(name) in ("library", "export", "launch", "dash_app"):
            assert not any(part(m) == "tracking" for m in reachable(edges, name)), name


def test_training_and_formats_know_nothing_of_mlflow():
    for package in ("training", "formats"):
        for path in (ROOT / "llmb_mlflow" / package).rglob("*.py"):
            assert not any(m == "mlflow" or m.startswith("mlflow.") for m in imports_of(path)), path


def test_commands_leave_training_to_the_library():
    for command in ("main.py", "models.py"):
        source = (ROOT / "llmb_mlflow" / "cli" / command).read_text()
        for work in ("run_training", "signal.signal", "DataParallel", "load_corpus", "checkpoint.run_config"):
            assert work not in source, f"cli/{command} does {work} itself"


def test_figures_are_pure_and_panels_own_their_callbacks():
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("dash_app.figures."):
            assert all(t.startswith(("dash_app.figures", "llmb_mlflow")) for t in targets), name
            assert "register" not in (ROOT / "dash_app" / "figures" / f"{name.rsplit('.', 1)[1]}.py").read_text()
    for path in (ROOT / "dash_app" / "panels").glob("*.py"):
        if path.name != "__init__.py":
            assert "\ndef register(app" in path.read_text(), f"{path.name} registers no callbacks: a figure?"


def test_every_method_viewer_data_hands_on_is_its_parts_own():
    from dash_app.data import ViewerData, _Of

    parts = {"runs": "dash_app.data.runs", "permissions": "dash_app.data.permissions", "reads": "dash_app.data.reads",
             "changes": "dash_app.data.changes", "launches": "dash_app.data.launches", "uploads": "dash_app.data.uploads"}
    handed = {name: value for name, value in vars(ViewerData).items() if isinstance(value, _Of)}
    assert len(handed) > 30
    for name, method in handed.items():
        classes = [c for c in vars(importlib.import_module(parts[method.part])).values() if isinstance(c, type)]
        assert any(callable(getattr(c, name, None)) for c in classes), f"ViewerData.{name}: no {method.part} part has it"
