"""The package's architecture stays as docs/architecture.md draws it: layers, an import DAG, a clean type checker.

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


def _node(parts: list[str]) -> str | None:
    """The graph node of a module path inside freqscope (``["cli", "common", "x"]`` → ``cli.common``)."""
    if not parts:
        return None
    return f"cli.{parts[1]}" if parts[0] == "cli" and len(parts) > 1 else parts[0]


def _imported_modules(path: Path, sub: str = "") -> set[str]:
    """freqscope modules that ``path`` imports anywhere (module level or inside a function). ``sub``: the
    subpackage ``path`` sits in (``cli``), whose own modules are ``cli.x`` and its ``__init__`` ``cli``."""
    here = [sub] if sub else []
    names: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's own package, then up one per extra dot
                base = here[: len(here) - (node.level - 1)] if node.level - 1 <= len(here) else []
            elif node.module and node.module.split(".")[0] == "freqscope":
                base = []
            else:
                continue
            mod = [p for p in (node.module or "").split(".") if p]
            if not node.level:
                mod = mod[1:]  # drop "freqscope"
            if mod:
                names.add(_node(base + mod))
            else:  # from . import x: x is a module, or a name of the package itself
                names.update(_node(base + [a.name]) for a in node.names)
                names.add(_node(base))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "freqscope":
                    names.add(_node(parts[1:]))
    names.discard(None)
    return names  # type: ignore[return-value]


def import_graph() -> dict[str, set[str]]:
    """Module name -> the freqscope modules it imports (``__init__`` as ``freqscope``; the cli/ package's
    modules as ``cli.x``, its ``__init__`` as ``cli``)."""
    files = {p.stem: (p, "") for p in PACKAGE.glob("*.py")}
    for p in (PACKAGE / "cli").glob("*.py"):
        files["cli" if p.stem == "__init__" else f"cli.{p.stem}"] = (p, "cli")
    graph = {}
    for name, (path, sub) in files.items():
        graph[name] = {m for m in _imported_modules(path, sub) if m in files and m != name}
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


#: The layers (docs/architecture.md), each module in one; a module imports only from its own layer or below.
LAYERS: list[tuple[str, set[str]]] = [
    ("bottom", {"io", "hub", "devices", "inputs", "plotting", "video", "noise_schedule", "bands", "spectra", "periodic",
                "noise", "results"}),
    ("analysis core", {"encode", "roundtrip", "snr", "rows", "analysis", "aggregate", "report", "dataset",
                       "dataset_job", "snr_job", "compare_job", "compare_report", "compare", "compare_sets",
                       "compare_pairs"}),
    ("diffusers adapters", {"scheduler_adapter", "pipeline_adapter"}),
    ("FreeInit half", {"filters", "priors", "reference", "samplers", "freeinit", "gap", "motion", "consistency"}),
    ("FreeInit job and report", {"freeinit_job", "freeinit_report"}),
    ("top", {"cli", "cli.common", "cli.bands", "cli.snr", "cli.freeinit", "cli.compare", "cli.__main__", "__init__",
             "__main__"}),
]


def layer_violations(graph: dict[str, set[str]], layers: list[tuple[str, set[str]]]) -> list[str]:
    """Each import that points up a layer, and each module in no layer (or in two)."""
    level: dict[str, int] = {}
    problems = []
    for i, (_, mods) in enumerate(layers):
        for m in mods:
            if m in level:
                problems.append(f"{m} is in two layers")
            level[m] = i
    for m, deps in sorted(graph.items()):
        if m not in level:
            problems.append(f"{m} is in no layer: add it to LAYERS (and to docs/architecture.md)")
            continue
        for d in sorted(deps):
            if d in level and level[d] > level[m]:
                problems.append(f"{m} ({layers[level[m]][0]}) imports {d} ({layers[level[d]][0]})")
    return problems


def test_layer_checker_can_fail():
    layers = [("low", {"a"}), ("high", {"b"})]
    assert layer_violations({"a": {"b"}, "b": set()}, layers) == ["a (low) imports b (high)"]
    assert layer_violations({"a": set(), "b": {"a"}, "c": set()}, layers) == [
        "c is in no layer: add it to LAYERS (and to docs/architecture.md)"
    ]


def test_imports_point_down_the_layers():
    """In particular the analysis core imports nothing from the FreeInit half, directly or through a module."""
    graph = import_graph()
    assert layer_violations(graph, LAYERS) == []
    core = set().union(*(mods for name, mods in LAYERS[:2]))
    freeinit = set().union(*(mods for name, mods in LAYERS[2:5]))

    def reach(m: str, seen: set[str]) -> set[str]:
        for d in graph.get(m, ()):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen

    for m in sorted(core):
        assert not reach(m, set()) & freeinit, f"{m} reaches the FreeInit half: {reach(m, set()) & freeinit}"


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


def test_cli_modules_stay_small_and_sample_takes_few_parameters():
    """Issue 15's limits: no CLI module over 350 lines; ``sample()`` with at most 12 parameters, none of a prior."""
    import inspect

    from freqscope.freeinit import sample

    for path in (PACKAGE / "cli").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 350, f"{path.name} is over 350 lines"
    params = inspect.signature(sample).parameters
    assert len(params) <= 12, list(params)
    assert not {"mid_step", "ratio", "pyoco_alpha", "offset_strength"} & set(params)
