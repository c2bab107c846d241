"""The boundary between the exact core and the approximate paths, read from the source with ``ast``.

Every ``import`` counts, at module level or inside a function; relative imports are resolved. An
edge goes to the module named (``from P import n`` goes to ``P.n`` when that is a module, else to
``P``); a package's ``__init__`` is an edge only when it is named, as in ``from .. import x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXACT_CORE = ["problem", "exact", "process", "saddles", "bias", "probability", "errors"]
APPROXIMATE = "limitproc.flow"


def modules(root: Path, packages) -> dict[str, Path]:
    """Dotted name -> file of every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known) -> list[tuple[str, str]]:
    """``(module, name)`` of every import in the file: ``name`` is the imported name of a
    ``from module import name`` that is not itself a module, else ``""``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub, "") if sub in known else (source, alias.name))
    return found


def import_graph(root: Path, packages) -> tuple[dict[str, set[str]], dict[str, list[tuple[str, str]]]]:
    """The edges between the modules of ``packages``, and every module's raw imports."""
    known = modules(root, packages)
    raw = {name: imports(name, path, known) for name, path in known.items()}
    return {name: {module for module, _ in found if module in known} for name, found in raw.items()}, raw


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module ``start`` imports directly or transitively -> the module that imports it."""
    via, todo = {}, [start]
    while todo:
        current = todo.pop()
        for target in graph[current]:
            if target not in via and target != start:
                via[target] = current
                todo.append(target)
    return via


def chain(via: dict[str, str], start: str, end: str) -> str:
    path = [end]
    while path[-1] != start:
        path.append(via[path[-1]])
    return " -> ".join(reversed(path))


def is_approximate(module: str, approximate: str = APPROXIMATE) -> bool:
    return module == approximate or module.startswith(approximate + ".")


def core_violations(root: Path, packages, core, approximate: str = APPROXIMATE) -> list[str]:
    graph, _ = import_graph(root, packages)
    found = []
    for module in core:
        if module not in graph:
            continue  # not written yet (e.g. saddles)
        via = reachable(graph, module)
        found += [chain(via, module, target) for target in sorted(via) if is_approximate(target, approximate)]
    return found


def private_violations(root: Path, packages, approximate: str = APPROXIMATE) -> list[str]:
    _, raw = import_graph(root, packages)
    found = []
    for importer, names in raw.items():
        if is_approximate(importer, approximate):
            continue
        for module, name in names:
            inner = module[len(approximate) :].split(".")
            if is_approximate(module, approximate) and (name.startswith("_") or any(part.startswith("_") for part in inner)):
                found.append(f"{importer} imports {module}{'.' + name if name else ''}")
    return found


def test_the_exact_core_never_reaches_the_approximate_paths():
    core = [f"limitproc.{name}" for name in EXACT_CORE]
    graph, _ = import_graph(ROOT, ["limitproc"])
    assert "limitproc.process" in graph and any(is_approximate(m) for m in graph)  # the rule reads real modules
    assert core_violations(ROOT, ["limitproc"], core) == []


def test_nothing_outside_the_approximate_paths_imports_their_private_names():
    assert private_violations(ROOT, ["limitproc", "proofs_check"]) == []


@pytest.fixture
def toy(tmp_path):
    """A package whose core reaches ``flow`` through a function-level relative import, two hops away."""
    files = {
        "pkg/__init__.py": "",
        "pkg/core.py": "import json\nfrom . import helper\n",
        "pkg/helper.py": "def f():\n    from .sub.deep import g\n    return g\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "from ..flow.run import _private\n",
        "pkg/clean.py": "import os\nfrom .helper import f\n",
        "pkg/flow/__init__.py": "",
        "pkg/flow/run.py": "from . import _x\n_private = 1\n",
        "pkg/flow/_x.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_rules_catch_a_violation(toy):
    assert core_violations(toy, ["pkg"], ["pkg.core", "pkg.clean", "pkg.missing"], "pkg.flow") == [
        "pkg.core -> pkg.helper -> pkg.sub.deep -> pkg.flow.run -> pkg.flow._x",
        "pkg.core -> pkg.helper -> pkg.sub.deep -> pkg.flow.run",
        "pkg.clean -> pkg.helper -> pkg.sub.deep -> pkg.flow.run -> pkg.flow._x",
        "pkg.clean -> pkg.helper -> pkg.sub.deep -> pkg.flow.run",
    ]
    # flow's own ``from . import _x`` is allowed; sub.deep's private name is not
    assert private_violations(toy, ["pkg"], "pkg.flow") == ["pkg.sub.deep imports pkg.flow.run._private"]
