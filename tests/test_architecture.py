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


def imports(name: str, path: Path, known, tree: ast.AST | None = None) -> list[tuple[str, str]]:
    """``(module, name)`` of every import in the file (or in ``tree``, its parsed source): ``name``
    is the imported name of a ``from module import name`` that is not itself a module, else ``""``."""
    found = []
    for node in ast.walk(tree or ast.parse(path.read_text(), str(path))):
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


class _DropTypeChecking(ast.NodeTransformer):
    """Imports under ``if TYPE_CHECKING:`` exist only for annotations: they never run."""

    def visit_If(self, node: ast.If):
        test = node.test
        name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
        if name == "TYPE_CHECKING":
            return node.orelse or None
        return self.generic_visit(node)


def import_cycles(root: Path, packages) -> list[list[str]]:
    """The import cycles (strongly connected components of size > 1) among the run-time imports."""
    import networkx as nx

    known = modules(root, packages)
    G = nx.DiGraph()
    for name, path in known.items():
        G.add_node(name)
        tree = _DropTypeChecking().visit(ast.parse(path.read_text(), str(path)))
        for module, _ in imports(name, path, known, tree):
            if module in known and module != name and not (known[module].name == "__init__.py" and name.startswith(module + ".")):
                G.add_edge(name, module)
    return sorted(sorted(c) for c in nx.strongly_connected_components(G) if len(c) > 1)


def test_no_import_cycles():
    assert import_cycles(ROOT, ["limitproc", "proofs_check"]) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nfrom .c import h\nif TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "c.py").write_text("from . import a\n")
    assert import_cycles(tmp_path, ["pkg"]) == [["pkg.a", "pkg.b", "pkg.c"]]
