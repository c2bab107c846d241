"""Pictures: what is drawn where (positions, labels, widths), and that files are written."""

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from matplotlib.patches import FancyArrowPatch

from limitproc import Problem, solve
from limitproc.graph import ensemble_graph, transition_graph
from limitproc.io.graphs import write_graph
from limitproc.plots import loss_staircase, staircase_graph

EX2 = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_staircase_graph_of_one_run():
    G = transition_graph(solve(EX2))
    fig = staircase_graph(G)
    ax = fig.axes[0]
    (points,) = ax.collections
    # saddle k at (tau_k, L_k): tau = 0, 3*sqrt(14)/7, 6*sqrt(5)/5; L = 5/3, 1/2, 1/12, 0 (c = 1/12)
    expected = [(0, 5 / 3), (3 * 14**0.5 / 7, 1 / 2), (6 * 5**0.5 / 5, 1 / 12), (6 + 3 * 14**0.5 / 7 - 3 * 70**0.5 / 7, 0)]
    assert np.allclose(points.get_offsets(), expected)
    # each jump labelled with its neuron and block size
    assert {"n2: 3", "n1: 2", "n0: 1"} <= set(_texts(ax))
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 3


def test_staircase_graph_of_an_ensemble_scales_widths_with_probability():
    G = ensemble_graph({"labels": [1, 1, -1]}, 2, exact=True)
    fig = staircase_graph(G)
    ax = fig.axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == G.number_of_edges()
    probabilities = sorted(float(Fraction(a["probability"])) for _, _, a in G.edges(data=True))
    widths = sorted(p.get_linewidth() for p in arrows)
    # width = 0.6 + 8 p (in points), so the widths are an affine image of the probabilities
    assert np.allclose(widths, [0.6 + 8 * p for p in probabilities])
    assert any(t.startswith("F={0,1}\np=") for t in _texts(ax))


def test_min_probability_leaves_out_rare_saddles():
    G = ensemble_graph({"labels": [1, 1, -1]}, 2, exact=True)
    threshold = 0.1
    kept = [u for u, a in G.nodes(data=True) if a["probability_decimal"] >= threshold]
    ax = staircase_graph(G, min_probability=threshold).axes[0]
    assert len(ax.collections[0].get_offsets()) == len(kept) < len(G)


def test_loss_staircase_with_simulations():
    result = solve(EX2)
    tau = np.linspace(0, 5, 50)
    sims = [(1e-8, tau, np.full(50, 1.0)), (1e-32, tau, np.full(50, 0.5))]
    ax = loss_staircase(result, sims).axes[0]
    lines = [line for line in ax.lines if line.get_label().startswith(("simulation", "limit"))]
    assert [line.get_label() for line in lines] == ["simulation, λ = 1e-08", "simulation, λ = 1e-32", "limit λ → 0"]
    limit = lines[-1]
    # the step function holds each plateau loss from the jump that enters it
    assert np.allclose(limit.get_ydata()[:4], [5 / 3, 1 / 2, 1 / 12, 0])
    assert np.allclose(limit.get_xdata()[1], 3 * 14**0.5 / 7)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_pictures_are_written(tmp_path, fmt, magic):
    path = tmp_path / f"g.{fmt}"
    write_graph(transition_graph(solve(EX2)), path)
    assert path.read_bytes().startswith(magic)


def test_import_limitproc_does_not_import_matplotlib():
    code = "import sys, limitproc, limitproc.graph, limitproc.io.graphs; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
