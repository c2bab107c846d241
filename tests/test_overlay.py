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


def numpy_descent_run(lr, lam, steps, seed=0):
    """Gradient descent on the weights (W, a) of example 2 with X = I (half-mean loss): the loss log."""
    rng = np.random.default_rng(seed)
    y = np.array(EX2["labels"], float)
    n, m = 6, 4
    pattern = np.zeros((m, n), bool)
    for j, act in enumerate(EX2["active"]):
        pattern[j, act] = True
    W = lam * np.where(pattern, 1, -1) * rng.uniform(0.5, 1.5, (m, n))
    a = lam * np.array(EX2["signs"]) * np.linalg.norm(W, axis=1)
    losses = []
    for _ in range(steps + 1):
        r = a @ np.maximum(W, 0) - y
        losses.append(float(r @ r) / (2 * n))
        grad_a = np.maximum(W, 0) @ r / n
        grad_W = (a[:, None] * (W > 0)) * r[None, :] / n
        W, a = W - lr * grad_W, a - lr * grad_a
    return np.array(losses)


def test_overlay_of_a_numpy_run(tmp_path, capsys):
    from test_descent_sim import ex2_rho_times

    from limitproc.cli import main
    from limitproc.overlay import overlay, read_run

    lr, lam = 1.0, 1e-20
    losses = numpy_descent_run(lr, lam, 600)
    run = tmp_path / "run.csv"
    run.write_text("iteration,loss\n" + "".join(f"{k},{float(v)!r}\n" for k, v in enumerate(losses)))
    iterations, loss = read_run(run)
    assert iterations.tolist() == list(range(601)) and loss.tolist() == losses.tolist()
    p = Problem(**EX2)
    ov = overlay(p, iterations, loss, "1", lam)
    L = math.log(1e20)
    assert ov.predicted_descent == pytest.approx(np.array(ex2_rho_times(1.0)) * L, rel=1e-12)
    assert ov.predicted_flow == pytest.approx(np.array([float(j.tau) for j in solve(p).jumps]) * L, rel=1e-12)
    # each measured drop: the first k where the loss falls through the midpoint of the plateaus 5/3, 1/2, 1/12, 0
    for k, mid in enumerate([(5 / 3 + 1 / 2) / 2, (1 / 2 + 1 / 12) / 2, 1 / 24]):
        i = int(np.flatnonzero(losses <= mid)[0])
        assert i - 1 < ov.measured[k] <= i
    # at λ = 1e-20 the offsets δ_k/log(1/λ) are still visible, but the ρ process is much closer than the flow
    assert np.abs(ov.measured - ov.predicted_descent).max() < np.abs(ov.measured - ov.predicted_flow).min()
    p.to_file(tmp_path / "ex2.json")
    code = main(
        ["overlay", str(run), str(tmp_path / "ex2.json"), "--lr", "1", "--lambda", "1e-20", "--x", "tau", "-o", str(tmp_path / "o.png")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = out.splitlines()
    assert lines[1].split() == ["k", "measured", "descent", "limit", "flow", "limit"]
    first = [float(v) for v in lines[2].split()]
    assert first[1] == pytest.approx(ov.measured[0] / L, rel=1e-5)
    assert first[2:] == pytest.approx([ex2_rho_times(1.0)[0], 3 * math.sqrt(14) / 7], rel=1e-5)


@pytest.mark.parametrize(
    ("run_text", "argv", "flag"),
    [
        ("iteration,loss\n0,1\n1,0.5\n", ["--lr", "0"], "--lr"),
        ("iteration,loss\n0,1\n1,0.5\n", ["--lr", "-0.1"], "--lr"),
        ("iteration,loss\n0,1\n1,0.5\n", ["--lr", "x"], "--lr"),
        ("iteration,loss\n0,1\n1,0.5\n", ["--lambda", "1"], "--lambda"),
        ("iteration,loss\n0,1\n1,0.5\n", ["--lambda", "0"], "--lambda"),
        ("iteration,loss\n0,1\n1,0.5\n", ["--lambda", "2e3"], "--lambda"),
        ("iteration,error\n0,1\n1,0.5\n", [], "run:"),
        ("iteration,loss\n0,1\n2,0.5\n2,0.4\n", [], "run:"),
        ("iteration,loss\n0,1\n3,0.5\n1,0.4\n", [], "run:"),
        ("iteration,loss\n0,1\n1,nan\n", [], "run:"),
        ("", [], "run:"),
    ],
)
def test_overlay_bad_input_one_line_exit_2(tmp_path, capsys, run_text, argv, flag):
    from limitproc.cli import main

    (tmp_path / "run.csv").write_text(run_text)
    Problem(**EX2).to_file(tmp_path / "ex2.json")
    options = {"--lr": "1", "--lambda": "1e-20"}
    options.update(dict(zip(argv[::2], argv[1::2])))
    try:
        code = main(["overlay", str(tmp_path / "run.csv"), str(tmp_path / "ex2.json"), *[x for kv in options.items() for x in kv]])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and flag in err and "Traceback" not in err


def test_json_run_is_a_list_of_losses(tmp_path):
    from limitproc.overlay import read_run

    (tmp_path / "run.json").write_text("[2.0, 1.5, 0.25]")
    iterations, loss = read_run(tmp_path / "run.json")
    assert iterations.tolist() == [0, 1, 2] and loss.tolist() == [2.0, 1.5, 0.25]


def test_torch_example_run_follows_the_descent_limit(tmp_path):
    pytest.importorskip("torch")  # the one optional dependency: this test runs where torch is installed
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "torch_descent.py"
    done = subprocess.run([sys.executable, str(example), "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    rows = [line.split() for line in done.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    measured, descent, flow = (np.array([float(r[c]) for r in rows]) for c in (1, 2, 3))
    assert len(rows) >= 2
    # on the τ scale at λ = 1e-20 the offsets δ_k / log(1/λ) are below 0.1; the flow limit is further off
    assert np.abs(measured - descent).max() < 0.1
    assert np.abs(measured - descent).max() < np.abs(measured - flow).min()
    assert (tmp_path / "overlay.png").stat().st_size > 0
    raw = np.load(tmp_path / "raw.npz")
    assert set(raw.files) >= {"X", "y", "W", "a"} and str(raw["loss"]) == "mean"
