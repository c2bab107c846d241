"""examples/tour.ipynb runs in a fresh kernel and shows spec §10 example 2 exactly."""

import base64
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
import sympy
from nbclient import NotebookClient
from sympy import sqrt
from test_display import LOSSES, N_MIN, TAUS, N, fields, math, tables
from test_tables import latex_number

ROOT = Path(__file__).resolve().parents[1]
FOREVER = 10**9  # seconds: nbclient's waits cannot be switched off, only made unreachable


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, dict]:
    """The first output's data of each tagged cell, after running the notebook top to bottom."""
    nb = nbformat.read(ROOT / "examples" / "tour.ipynb", as_version=4)
    nbformat.validate(nb)
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))  # the kernel imports this checkout
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("tour"))}},
        startup_timeout=FOREVER,
        iopub_timeout=FOREVER,
    )
    client.execute(env=env)  # raises CellExecutionError on any error
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert all(o.output_type != "error" for o in cell.outputs)
            (tag,) = cell.metadata["tags"]
            out[tag] = cell.outputs[0] if cell.outputs else None
    return out


def test_result_cell(outputs):
    data = outputs["result"]["data"]
    assert data["text/plain"] == "Result(n=6, m=4, jumps=3, interpolates=True, N=2 + 2*sqrt(5) + 2*sqrt(14))"
    html = data["text/html"]
    assert r"$\frac{3 \sqrt{14}}{7}$" in html
    jumps, final = tables(html)
    assert len(jumps) == 4
    for row, tau in zip(jumps[1:], TAUS):
        assert sympy.simplify(math(row[1]) - tau) == 0
    assert sympy.simplify(math(fields(final)["N (squared norm)"]) - N) == 0


def test_frame_cell(outputs):
    header, *rows = tables(outputs["frame"]["data"]["text/html"])[0]
    assert len(rows) == 3
    tau, loss = header.index("tau"), header.index("plateau_loss")
    for row, expected, plateau in zip(rows, TAUS, LOSSES):
        assert sympy.simplify(sympy.sympify(row[tau]) - expected) == 0
        assert sympy.Rational(row[loss]) == sympy.Rational(plateau.numerator, plateau.denominator)


def test_tau_cell(outputs):
    tex = outputs["tau"]["data"]["text/latex"]
    assert tex == r"$6 + \frac{3 \sqrt{14}}{7} - \frac{3 \sqrt{70}}{7}$"
    assert sympy.simplify(latex_number(tex) - TAUS[2]) == 0


def test_jump_and_bias_cells(outputs):
    jump = fields(tables(outputs["jump"]["data"]["text/html"])[0])
    assert sympy.simplify(math(jump["τ"]) - TAUS[0]) == 0 and jump["neurons"] == "2"
    bias = fields(tables(outputs["bias"]["data"]["text/html"])[0])
    assert sympy.simplify(math(bias["N / N_min"]) - N / N_MIN) == 0
    assert sympy.simplify(math(bias["N / √n"]) - N / sqrt(6)) == 0


def test_figure_cell(outputs):
    out = outputs["figure"]
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed" in out["text"]
    else:
        assert base64.b64decode(out["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
