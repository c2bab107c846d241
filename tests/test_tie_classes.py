"""Ties completed (theory §6): classes of identical blocks, the exact interval of N, magnitudes, sign flips."""

import json
import math
import warnings

import numpy as np
import pytest
import sympy
from helpers import same_number

from limitproc import Problem, solve
from limitproc.cli import main
from limitproc.errors import InputError
from limitproc.flow.simulate import simulate
from limitproc.flow.ties import solve_resolved
from limitproc.problem import generate

# the example: neurons 0 and 1 share the block {0, 1}
IDENTICAL = dict(labels=[1, 2, -1], signs=[1, 1, -1], active=[[0, 1], [0, 1], [2]])
# neurons 0 and 1 tie (R = 2) with different blocks {0, 1} and {1, 2} sharing sample 1
OVERLAP = dict(labels=[1, 1, 1, -1], signs=[1, 1, -1], active=[[0, 1], [1, 2], [3]])


def _draw(seed: int, m: int, n: int) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((m, n))) + 0.05


def test_identical_blocks_give_an_exact_norm_equal_to_the_simulation():
    result = solve(Problem(**IDENTICAL))
    assert result.jumps[0].classes == ((0, 1),) and result.jumps[0].contested.size == 0
    # one class on {0, 1}: 2 sqrt(1 + 4); neuron 2 on {2}: 2
    assert same_number(result.sq_norm.exact(), 2 + 2 * sympy.sqrt(5))
    exact = 2 + 2 * math.sqrt(5)
    shares = []
    for seed in range(3):
        p = Problem(**IDENTICAL, magnitudes=_draw(seed, 3, 3))
        sim = simulate(p, 1e-30, result=solve(p), rtol=1e-10)
        assert sim.final_sq_norm == pytest.approx(exact, abs=1e-6)
        shares.append(sim.output_shares()[0, 0])
    assert max(shares) - min(shares) > 0.1  # the splits differ, N does not


def test_overlapping_blocks_give_an_exact_interval():
    result = solve(Problem(**OVERLAP))
    assert result.sq_norm is None and result.jumps[0].classes == ((0,), (1,)) and result.jumps[0].contested.tolist() == [1]
    lo, hi = result.sq_norm_interval
    # share t of sample 1 to neuron 0: 2 sqrt(1 + t^2) + 2 sqrt(1 + (1 - t)^2) + 2 (neuron 2), convex in t:
    # smallest at t = 1/2 (2 + 2 sqrt 5), largest at t in {0, 1} (4 + 2 sqrt 2)
    assert same_number(lo.exact(), 2 + 2 * sympy.sqrt(5)) and same_number(hi.exact(), 4 + 2 * sympy.sqrt(2))
    assert result.sq_norm_hi_attained is True
    record = result.to_dict(digits=10)
    assert record["sq_norm_interval"] == [lo.exact(), hi.exact()] and record["sq_norm_interval_hi"] == "vertex maximum"


def _network_sq_norm(blocks: dict, labels, q) -> float:
    """``Σ_j a_j² + ||w_j||²`` of balanced neurons fitting ``blocks[j] = {i: output}`` (theory §5)."""
    total = 0.0
    for outputs in blocks.values():
        Q = sum(v * v / q[i] for i, v in outputs.items())
        a = Q**0.25
        total += a * a + sum((v / a) ** 2 / q[i] for i, v in outputs.items())
    return total


def test_the_upper_end_is_attained_by_a_vertex_network_and_resolved_norms_lie_inside():
    result = solve(Problem(**OVERLAP))
    lo, hi = (float(v.decimal(20)) for v in result.sq_norm_interval)
    vertex = {0: {0: 1.0, 1: 1.0}, 1: {2: 1.0}, 2: {3: -1.0}}  # sample 1 given whole to neuron 0
    assert _network_sq_norm(vertex, [1, 1, 1, -1], [1, 1, 1, 1]) == pytest.approx(hi, abs=1e-6)
    for seed in range(20):
        resolved = solve_resolved(Problem(**OVERLAP, magnitudes=_draw(seed, 3, 4)))
        N = resolved.ties.sq_norm
        assert lo - 1e-9 <= N <= hi + 1e-9 and resolved.ties.in_interval is True
        assert resolved.to_dict()["sq_norm_resolved_in_interval"] is True


def _random_split_norm(result, rng) -> float:
    """N for a random split of every contested sample among the classes owning it."""
    y = [float(v) for v in result.problem.labels]
    q = [float(v) for v in result.problem.sq_norms]
    total = 0.0
    for jump in result.jumps:
        classes = [jump.blocks[c[0]].tolist() for c in jump.classes]
        share = {}
        for i in jump.contested.tolist():
            owners = [c for c, b in enumerate(classes) if i in b]
            for c, v in zip(owners, rng.dirichlet(np.ones(len(owners)))):
                share[c, i] = v
        for c, block in enumerate(classes):
            total += 2 * math.sqrt(sum((share.get((c, i), 1.0) * y[i]) ** 2 / q[i] for i in block))
    return total


@pytest.mark.parametrize("n,m,labels,seeds", [(12, 6, "pm1", range(40)), (8, 10, "pm1", range(40)), (10, 6, "gauss", range(20))])
def test_every_split_lies_in_the_interval(n, m, labels, seeds):
    rng = np.random.default_rng(0)
    seen = 0
    for seed in seeds:
        result = solve(generate(n, m, labels=labels, seed=seed))
        if result.sq_norm_interval is None:
            continue
        seen += 1
        lo, hi = (float(v.decimal(20)) for v in result.sq_norm_interval)
        assert lo <= hi
        for _ in range(20):
            assert lo * (1 - 1e-12) <= _random_split_norm(result, rng) <= hi * (1 + 1e-12)
    if labels == "pm1":
        assert seen  # ±1 labels tie often enough to exercise the interval


def test_a_class_norm_is_invariant_on_generated_problems():
    # where every tie is a union of classes without contested samples, N is exact and is the
    # same for every split (the random-split N equals it)
    rng = np.random.default_rng(1)
    checked = 0
    for seed in range(40):
        result = solve(generate(10, 8, seed=seed))
        if result.sq_norm is not None and any(len(c) > 1 for j in result.jumps for c in j.classes):
            checked += 1
            assert _random_split_norm(result, rng) == pytest.approx(float(result.sq_norm.decimal(20)), rel=1e-12)
    assert checked


# -- bad input: a sign-flipping start ----------------------------------------------------------
FLIP = {"labels": [1, -1], "signs": [1, -1], "active": [[0], [1]], "magnitudes": [[1.0, 0.5], [0.5, 1.0]], "a_magnitudes": [0.5, 2.0]}


def test_a_magnitudes_below_the_norm_of_w_are_refused():
    # ||w_0|| = sqrt(1 + 0.25) > 0.5
    with pytest.raises(InputError) as info:
        Problem(**FLIP)
    assert info.value.field == "a_magnitudes[0]"
    with pytest.warns(UserWarning, match=r"a_magnitudes\[0\]"):
        Problem(**FLIP, allow_sign_flip=True)


def test_balanced_magnitudes_are_accepted():
    # a_j = ||w_j|| computed in floats sits on the boundary: the float64 tolerance accepts it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(5):
            generate(50, 7, norms="uniform", seed=seed, magnitudes=True)


def test_cli_refuses_a_sign_flip_in_one_line(tmp_path, capsys):
    path = tmp_path / "flip.json"
    path.write_text(json.dumps(FLIP))
    assert main(["solve", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a_magnitudes[0]" in err and "--allow-sign-flip" in err
    assert main(["solve", str(path), "--allow-sign-flip"]) == 0
    assert "warning: a_magnitudes[0]" in capsys.readouterr().err


# -- generated magnitudes ------------------------------------------------------------------------
def test_generate_draws_magnitudes_from_the_same_seed(tmp_path):
    plain, full = generate(20, 5, norms="uniform", seed=4), generate(20, 5, norms="uniform", seed=4, magnitudes=True)
    assert plain.magnitudes is None and np.array_equal(plain.packed_active, full.packed_active)
    assert np.array_equal(plain.signs, full.signs) and plain.labels == full.labels
    q = np.array([float(x) for x in full.sq_norms])
    assert np.allclose(full.a_magnitudes**2, (full.magnitudes**2 / q).sum(axis=1), rtol=1e-14)
    assert np.array_equal(generate(20, 5, norms="uniform", seed=4, magnitudes=True).magnitudes, full.magnitudes)
    for name in ("g.json", "g.npz"):
        assert (
            main(["generate", "--n", "20", "--m", "5", "--norms", "uniform", "--seed", "4", "--magnitudes", "-o", str(tmp_path / name)])
            == 0
        )
        back = Problem.from_file(tmp_path / name)
        assert np.allclose(back.magnitudes, full.magnitudes, rtol=0, atol=0) and np.array_equal(back.a_magnitudes, full.a_magnitudes)


# -- a no-jump problem and a one-class problem through the commands ---------------------------------
NO_JUMP = {"labels": [1, -1], "signs": [1], "active": [[1]]}
ONE_CLASS = {"labels": [1, 2], "signs": [1, 1], "active": [[0, 1], [0, 1]]}


@pytest.mark.parametrize("data,sq_norm", [(NO_JUMP, "0"), (ONE_CLASS, "2*sqrt(5)")])
def test_commands_on_no_jump_and_one_class_problems(tmp_path, capsys, data, sq_norm):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert main(["solve", str(path), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sq_norm"] == sq_norm and record["sq_norm_interval"] is None
    assert len(record["jumps"]) == (0 if data is NO_JUMP else 1)
    assert main(["solve", str(path)]) == 0 and "sq_norm N = " in capsys.readouterr().out
    assert main(["bound", str(path), "--format", "json"]) == 0
    bound = json.loads(capsys.readouterr().out)
    assert bound["sq_norm"] == sq_norm
    assert main(["graph", str(path), "--format", "json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert len(graph["nodes"]) == len(record["jumps"]) + 1
    assert main(["table", "jumps", str(path)]) == 0
    capsys.readouterr()


def test_bound_reports_the_interval_of_the_ratio():
    from limitproc.bias import Bias

    bias = Bias.of_result(solve(Problem(**OVERLAP)))
    d = bias.to_dict()
    # N_min = 2 ||y_+|| + 2 ||y_-|| = 2 sqrt 3 + 2; N in [2 + 2 sqrt 5, 4 + 2 sqrt 2]
    N_min = 2 + 2 * sympy.sqrt(3)
    assert same_number(d["ratio_interval"][0], (2 + 2 * sympy.sqrt(5)) / N_min)
    assert same_number(d["ratio_interval"][1], (4 + 2 * sympy.sqrt(2)) / N_min)
    assert Bias.of_result_dict(solve(Problem(**OVERLAP)).to_dict()).to_dict()["ratio_interval"] == d["ratio_interval"]
