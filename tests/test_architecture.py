"""The house plan of lib/ (docs/overview.md), checked by reading the source with ast.

No import circle between lib modules, no private name imported across modules, no module
over the size a newcomer reads in one sitting, a few top modules and documented packages.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
MAX_LINES = 450
ENTRY_SCRIPTS = ["train.py", "test.py", "rate.py", "options.py", "demo.py", "make_galaxies.py", "morphology.py",
                 "get_paper_weights.py", "mock_observation.py", *(f"SDSS_cutouts/{n}" for n in
                                                                    os.listdir(ROOT / "SDSS_cutouts") if n.endswith(".py"))]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def lib_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIB.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """``[(imported lib module, [imported names])]`` of a file, resolving ``from pkg import submodule``."""
    tree = ast.parse(path.read_text(), str(path))
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "lib"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "lib":
                continue
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:  # `from lib.rating import plots` imports the module lib.rating.plots
                    out.append((sub, []))
                else:
                    plain.append(alias.name)
            if plain:
                out.append((base, plain))
    return out


def import_graph() -> dict[str, set[str]]:
    modules = lib_modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m, _ in imports_of(path, modules) if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_lib():
    assert find_cycle(import_graph()) is None


def test_no_private_name_crosses_a_module_boundary():
    modules = lib_modules()
    offenders = []
    for path in [*modules.values(), *(ROOT / s for s in ENTRY_SCRIPTS if (ROOT / s).is_file())]:
        for target, names in imports_of(path, modules):
            offenders += [f"{path.relative_to(ROOT)}: {target}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert offenders == []


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in LIB.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_top_modules_and_documented_packages():
    top = sorted(p.stem for p in LIB.glob("*.py") if p.name != "__init__.py")
    assert {"networks", "loss", "model", "data", "visualizer", "evaluate"} <= set(top)  # the original's six
    assert len(top) <= 12, top
    packages = [p for p in LIB.iterdir() if (p / "__init__.py").is_file()]
    assert len(packages) >= 4
    for pkg in packages:
        doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) >= 5, f"{pkg.name}/__init__.py needs a docstring with its data flow"
    # every module and package is on the map in lib/__init__.py
    lib_doc = ast.get_docstring(ast.parse((LIB / "__init__.py").read_text()))
    missing = [n for n in top if f"{n}.py" not in lib_doc] + [p.name for p in packages if f"{p.name}/" not in lib_doc]
    assert missing == []


@pytest.mark.parametrize("old, new, name", [("lib.imaging", "lib.galaxies.imaging", "observe"),
                                            ("lib.rating_plots", "lib.rating.plots", "figure_ranking"),
                                            ("lib.packed", "lib.data", "PackedImages"),
                                            ("lib.score_run", "lib.evaluate", "score_files")])
def test_old_module_paths_still_import_with_a_deprecation_warning(old, new, name):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        mod = importlib.import_module(old)
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)
