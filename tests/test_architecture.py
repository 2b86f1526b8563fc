"""The package's architecture stays as DESIGN.md draws it: imports form a DAG, and the type checker is clean.

The complexity limit (ruff C901 ≤ 12, settings in pyproject.toml) is enforced by tests/test_style.py.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "freqscope"


def _imported_modules(path: Path) -> set[str]:
    """freqscope modules that ``path`` imports anywhere (module level or inside a function)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y  /  from . import y
                if node.module:
                    names.add(node.module.split(".")[0])
                else:
                    names.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.split(".")[0] == "freqscope":
                parts = node.module.split(".")
                if len(parts) > 1:
                    names.add(parts[1])
                else:
                    names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "freqscope" and len(parts) > 1:
                    names.add(parts[1])
    return names


def import_graph() -> dict[str, set[str]]:
    """Module name -> the freqscope modules it imports (``__init__`` as ``freqscope``)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = {m for m in _imported_modules(path) if m in modules and m != path.stem}
        graph[path.stem] = deps
    # `from . import __version__` is the package itself; the package's __init__ sits on top.
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None if the graph is a DAG."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_detects_cycles():
    """The checker itself can fail: a three-module cycle is found, a DAG passes."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imported_modules_sees_function_local_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from .a import x\nimport freqscope.b\n\n\ndef f():\n    from .c import y\n    from freqscope import d\n"
    )
    assert _imported_modules(src) == {"a", "b", "c", "d"}


def test_import_graph_is_a_dag():
    graph = import_graph()
    assert "video" in graph and "io" in graph["video"]  # the parser sees the package's real imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_bottom_layer_imports_nothing_from_freqscope():
    graph = import_graph()
    for name in ("io", "hub"):
        assert graph[name] == set(), f"{name}.py imports {graph[name]}"


def test_mypy_clean():
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy is not installed (it is a test extra)")
    r = subprocess.run([mypy, "--no-error-summary"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
