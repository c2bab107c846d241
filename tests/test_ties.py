import dataclasses
import math

import numpy as np
import pytest

from limitproc import (
    InputError,
    Problem,
    Resolved,
    TieResolution,
    solve,
    solve_resolved,
)
from limitproc.flow.offsets import prefactor
from limitproc.flow.simulate import initial_magnitudes, simulate
from limitproc.flow.ties import resolve_ties

RNG_MAGS = np.abs(np.random.default_rng(3).standard_normal((3, 4)))
# neurons 0 and 1 (both positive) tie with equal rates and share sample 1
TIE = dict(labels=[1, 1, 1, -1], signs=[1, 1, -1], active=[[0, 1, 3], [1, 2], [0, 3]])


def test_split_agrees_with_the_simulation_at_two_lambdas():
    p = Problem(**TIE, magnitudes=RNG_MAGS)
    result = solve(p)
    ties = resolve_ties(result)
    split = ties.splits[1]
    assert split.neurons == (0, 1) and list(split.shares) == [1]
    assert sum(split.shares[1].values()) == pytest.approx(1, abs=1e-8)
    assert 0.05 < split.shares[1][0] < 0.95  # a genuine split, not a winner-takes-all
    for lam in (1e-20, 1e-60):
        sim = simulate(p, lam, result=result)
        shares = sim.output_shares()
        for j, value in split.shares[1].items():
            assert shares[j, 1] == pytest.approx(value, abs=1e-3)
        assert sim.final_sq_norm == pytest.approx(ties.sq_norm, rel=1e-3)


def test_identical_neurons_split_evenly():
    # two copies of one neuron on y = 1: each carries half; a_j^4 = (1/2)^2 so N = 2 * 2 * (1/2) = 2
    p = Problem(labels=[1], signs=[1, 1], active=[[0], [0]], magnitudes=[[0.8], [0.8]])
    resolved = solve_resolved(p)
    assert resolved.ties.splits[1].shares == {0: {0: pytest.approx(0.5, abs=1e-8), 1: pytest.approx(0.5, abs=1e-8)}}
    # one class of identical blocks: N = 2 ||y||_q = 2 exactly, whatever the split (theory §6)
    assert resolved.result.sq_norm.exact() == "2" and resolved.ties.sq_norm == pytest.approx(2.0, rel=1e-8)
    assert resolved.to_dict()["sq_norm_undetermined"] is None


def test_larger_start_takes_the_larger_share():
    small = solve_resolved(Problem(labels=[1], signs=[1, 1], active=[[0], [0]], magnitudes=[[0.5], [1.0]]))
    big = solve_resolved(Problem(labels=[1], signs=[1, 1], active=[[0], [0]], magnitudes=[[2.0], [1.0]]))
    assert small.ties.splits[1].shares[0][0] < 0.5 < big.ties.splits[1].shares[0][0]


def test_prefactor_of_a_start_on_the_escape_direction():
    # a = 1, u = b/|b| with b = (1, 2): the start is sqrt(2) times the unit escape direction
    p = Problem(labels=[1, 2], signs=[1], active=[[0, 1]])
    mags = np.array([1.0, 2.0]) / math.sqrt(5)
    assert prefactor(p, 0, mags, 1.0) == pytest.approx(math.sqrt(2), rel=1e-8)


def test_tie_after_a_rate_change_agrees_with_the_simulation():
    # neuron 0 fits {0, 4} first; neurons 1 and 2 then tie (same history) and share sample 2: their
    # prefactors went through neuron 0's transition
    mags = np.abs(np.random.default_rng(5).standard_normal((3, 5)))
    p = Problem(labels=[3, 1, 1, 1, 3], signs=[1, 1, 1], active=[[0, 4], [0, 1, 2], [0, 2, 3]], magnitudes=mags)
    result = solve(p)
    assert result.jumps[1].neurons == (1, 2) and result.jumps[1].shared.tolist() == [2]
    split = resolve_ties(result).splits[2].shares[2]
    for lam in (1e-20, 1e-60):
        shares = simulate(p, lam, result=result).output_shares()
        assert shares[1, 2] == pytest.approx(split[1], abs=1e-3) and shares[2, 2] == pytest.approx(split[2], abs=1e-3)


def test_predicted_offsets_match_the_simulated_drop_times():
    # theory §10 example 2: the offsets δ_k of t_k = τ_k log(1/λ) + δ_k, from the O(1) chain alone
    p = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
    result = solve(p)
    predicted = resolve_ties(result, *initial_magnitudes(p)).offsets
    taus = [float(j.tau) for j in result.jumps]
    simulated = simulate(p, 1e-40, result=result).drop_offsets(taus)
    assert simulated == pytest.approx(predicted, abs=1e-4)


def test_no_magnitudes_no_resolution():
    result = solve(Problem(**TIE))
    with pytest.raises(InputError, match="^magnitudes: "):
        resolve_ties(result)
    assert solve_resolved(Problem(**TIE)).ties is None  # the convenience leaves the tie open


def test_json_records_the_split():
    resolved = solve_resolved(Problem(**TIE, magnitudes=RNG_MAGS))
    data = resolved.to_dict(escape_directions=True)
    record = data["jumps"][0]
    assert record["tie_split"]["method"].startswith("approximate")
    assert set(record["tie_split"]["shares"]) == {"1"}
    assert list(record)[-2:] == ["tie_split", "escape_directions"]
    assert data["sq_norm_resolved"] == pytest.approx(resolved.ties.sq_norm)
    assert "tie_split" not in data["jumps"][1]  # jump 2 is a single neuron
    exact = resolved.result.to_dict()  # the exact record: no resolution in it
    assert exact["sq_norm_resolved"] is None and all("tie_split" not in j for j in exact["jumps"])


def test_resolution_is_a_separate_frozen_record():
    p = Problem(**TIE, magnitudes=RNG_MAGS)
    result = solve(p)
    before = result.to_dict()
    ties = resolve_ties(result)
    assert isinstance(ties, TieResolution) and result.to_dict() == before  # the Result is not touched
    with pytest.raises(dataclasses.FrozenInstanceError):
        ties.sq_norm = 0.0
    # the resolved N is the formula of theory §5 with the tied neurons' norms from the split:
    # neuron 2 alone fits sample 3 (y = -1, q = 1), so it contributes 2 sqrt(1) = 2
    assert ties.sq_norm == pytest.approx(sum(ties.splits[1].sq_norms.values()) + 2, rel=1e-12)
    record = ties.to_dict()
    assert record["splits"]["1"] == ties.splits[1].to_dict() and len(record["offsets"]) == len(result.jumps)
    assert isinstance(solve_resolved(p), Resolved) and solve_resolved(Problem(**TIE)).to_dict() == solve(Problem(**TIE)).to_dict()


def test_a_problem_without_overlap_is_not_resolved():
    # magnitudes but no shared sample: nothing to resolve, N is exact
    p = Problem(labels=[1, -1], signs=[1, -1], active=[[0], [1]], magnitudes=[[1.0, 1.0], [1.0, 1.0]])
    resolved = solve_resolved(p)
    assert resolved.ties is None and resolved.result.sq_norm is not None
