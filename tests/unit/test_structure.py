"""The layout stays readable: imports run one way between areas and between the parts of every package,
no module imports itself through a circle, and no module or package outgrows what a reader can hold.

Every import counts, including those inside functions and under TYPE_CHECKING: a lazy import still
ties two modules together. So does an import of a package: it runs the package's __init__ and what
that imports (`from oda_sft.cli import main` reaches every command through the app).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "oda_sft"
# Lowest first: an area may import only from areas before it (and from itself).
LAYERS = (
    "util",
    "errors",
    "names",
    "shapes",
    "cards",
    "presets",
    "eras",
    "datasets_catalog",
    "tiny_model",
    "data",
    "runs",
    "train",
    "eval",
    "publish",
    "cost",
    "cluster",
    "throughput",
    "cli",
    "__main__",
)
# Inside a package, lowest first, where the direction is worth stating; every other package's parts
# only need to import one another one way (test_parts_of_a_package_import_one_way).
ROOMS = {
    # files: what a path is, before reading; formats: records and their files; sources: where records
    # come from; measure: their token lengths; registry: the dataset dir, and everything that adds to it;
    # contamination: a registered file against benchmark questions, its result kept in the entry.
    "oda_sft.data": ("files", "formats", "sources", "measure", "registry", "contamination", "tokenized_cache"),
}
MAX_MODULE_LINES = 400
MAX_PACKAGE_MODULES = 12


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path, name: str) -> Iterator[str]:
    """The oda_sft modules `name` imports (a package's __init__ counts as the package)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("oda_sft"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("oda_sft"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {name: {d for d in _imports(path, name) if d in MODULES and d != name} for name, path in MODULES.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "oda_sft"


def test_imports_run_one_way_between_areas() -> None:
    unknown = sorted({_area(m) for m in MODULES} - set(LAYERS) - {"oda_sft"})
    assert unknown == [], f"new top-level areas need a place in LAYERS: {unknown}"
    upward = []
    for module, deps in _graph().items():
        for dep in deps:
            a, b = _area(module), _area(dep)
            if "oda_sft" in (a, b) or a == b:
                continue
            if LAYERS.index(b) > LAYERS.index(a):
                upward.append(f"{module} -> {dep}")
    assert upward == [], "imports that run back up: " + ", ".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def _part(package: str, module: str) -> str | None:
    """The part of `package` (a direct module or subpackage) that holds `module`; None outside it."""
    return module[len(package) + 1 :].split(".")[0] if module.startswith(package + ".") else None


def _parts_graph(package: str, graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which parts of `package` import which: a subpackage counts as one, whatever module imports."""
    parts: dict[str, set[str]] = {}
    for module, deps in graph.items():
        if (a := _part(package, module)) is None:
            continue
        parts.setdefault(a, set()).update(b for d in deps if (b := _part(package, d)) not in (None, a))
    return parts


def test_parts_of_a_package_import_one_way() -> None:
    graph = _graph()
    packages = sorted(m for m, path in MODULES.items() if path.name == "__init__.py")
    both_ways = {p: found for p in packages if (found := _cycles(_parts_graph(p, graph)))}
    assert both_ways == {}, f"parts that import each other (directly or round a circle): {both_ways}"


@pytest.mark.parametrize("package", sorted(ROOMS))
def test_imports_run_one_way_inside_packages(package: str) -> None:
    rooms = ROOMS[package]
    parts = _parts_graph(package, _graph())
    assert sorted(parts) == sorted(rooms), f"{package}'s parts need a place in ROOMS: {sorted(set(parts) ^ set(rooms))}"
    upward = sorted(f"{a} -> {b}" for a, deps in parts.items() for b in deps if rooms.index(b) > rooms.index(a))
    assert upward == [], f"{package}: imports that run back up: {upward}"


def test_a_package_import_counts() -> None:
    # cli/workload.py once ran the app through `from oda_sft.cli import main` to parse a command.
    graph = {"p": {"p.app"}, "p.app": {"p.slurm"}, "p.slurm": {"p.workload"}, "p.workload": {"p"}}
    assert _cycles(graph) == [["p", "p.app", "p.slurm", "p.workload"]]
    assert _parts_graph("p", graph) == {"app": {"slurm"}, "slurm": {"workload"}, "workload": set()}
    assert _cycles(_parts_graph("x", {"x.a.m": {"x.b.n"}, "x.b.n": {"x.a"}, "x.a": set()})) == [["a", "b"]]


def test_the_cycle_finder_sees_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_training_does_not_pull_in_fetching() -> None:
    # train/ needs a printed command, not the Hub client and the registry transaction behind it.
    graph = _graph()
    pulled = sorted(f"{m} -> {d}" for m, deps in graph.items() if _area(m) == "train" for d in deps)
    assert not [p for p in pulled if ".data.sources" in p or ".data.registry.fetch" in p], pulled


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_too_long(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines: split it by idea"


def test_no_package_holds_too_many_modules() -> None:
    sizes = {}
    for package in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists())]:
        sizes[package.relative_to(SRC).as_posix()] = len([p for p in package.glob("*.py") if p.name != "__init__.py"])
    crowded = {k: v for k, v in sizes.items() if v > MAX_PACKAGE_MODULES}
    assert crowded == {}, f"packages over {MAX_PACKAGE_MODULES} modules: {crowded}"


def test_every_package_ships_in_the_wheel() -> None:
    import tomllib

    declared = set(tomllib.loads((SRC.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {
        ".".join(p.relative_to(SRC).parts) for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists()
    }
    assert packages | {"oda_sft"} <= declared, f"add to pyproject.toml's packages: {sorted(packages - declared)}"
