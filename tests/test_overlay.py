"""Figures of runs beside the limit: per-neuron norm trajectories, and users' loss curves (overlay)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from limitproc import Problem, solve
from limitproc.flow.simulate import simulate
from limitproc.plots import norm_trajectories, save_figure

EX2 = dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])


def test_norm_trajectories_draw_each_neuron_on_the_exponent_scale(tmp_path):
    mags = np.array([[1.0, 2.0, 0.5, 1.0, 1.0, 1.0], [1.0] * 6, [0.3] * 6, [2.0] * 6])
    p = Problem(**EX2, magnitudes=mags)
    lam = 1e-10
    sim = simulate(p, lam, result=solve(p), tau_end=3.0)
    fig = norm_trajectories([sim])
    top, bottom = fig.axes
    assert len(top.lines) == 1 and len(bottom.lines) == p.m
    # at t = 0 neuron j has a_j² + ||w_j||² = λ²·2·Σ_i mag_ji²/q_i (balanced, unit norms)
    for j, line in enumerate(bottom.lines):
        expected = math.log(lam**2 * 2 * (mags[j] ** 2).sum()) / (2 * math.log(1 / lam))
        assert line.get_ydata()[0] == pytest.approx(expected, rel=1e-9)
        assert line.get_xdata()[-1] == pytest.approx(3.0)
    save_figure(fig, tmp_path / "norms.svg")
    assert (tmp_path / "norms.svg").read_text().lstrip().startswith("<?xml")
