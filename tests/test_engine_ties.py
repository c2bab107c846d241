"""Ties (spec §6) are decided exactly and reported, never merged or split by a tolerance."""

import sympy
from helpers import same_number

from limitproc import Problem, solve


def test_disjoint_tie_by_structure():
    # two neurons with two samples each and the same rate 1/2: both escape at tau = 4/sqrt(2) = 2*sqrt(2)
    result = solve(Problem(labels=[1, 1, 1, 1], signs=[1, 1], active=[[0, 1], [2, 3]]))
    (jump,) = result.jumps
    assert jump.neurons == (0, 1) and jump.tie
    assert jump.tie_certified and jump.tie_certificate == "structure"
    assert jump.shared.size == 0 and jump.samples.tolist() == [0, 1, 2, 3]
    assert same_number(jump.tau.exact(), 2 * sympy.sqrt(2))
    assert same_number(result.sq_norm.exact(), 4 * sympy.sqrt(2))  # 2 sqrt(2) per block of two unit labels


def test_overlapping_tie_leaves_the_norm_undetermined():
    result = solve(Problem(labels=[1, 1, 1], signs=[1, 1], active=[[0, 1], [1, 2]]))
    (jump,) = result.jumps
    assert jump.neurons == (0, 1) and jump.shared.tolist() == [1]
    assert {j: b.tolist() for j, b in jump.blocks.items()} == {0: [0, 1], 1: [1, 2]}
    assert result.final_loss == 0 and result.interpolates
    assert result.sq_norm is None and "share samples [1]" in result.sq_norm_reason
    assert not result.saddles[-1].determined
    record = result.to_dict()["jumps"][0]
    assert record["tie"] and record["tie_certified"] and record["shared"] == [1]
    assert result.to_dict()["sq_norm"] is None


def _equal_but_written_differently():
    # weights w_i = y_i^2 q_i = 3/2, 1/2, 13/2, 8/9 (unit labels, these squared norms); n = 4
    # neuron 0 (R = 8) escapes at 4/sqrt(8) = sqrt(2). Neuron 1 (R = 2) has S = 1/2 then and R = 1/2 after,
    # so it escapes at sqrt(2) + (1/2) * 4 / sqrt(1/2) = 3 sqrt(2). Neuron 2 (R = 8/9) escapes at
    # 4 / sqrt(8/9) = 3 sqrt(2) too: equal values with different rate histories.
    return Problem(labels=[1, 1, 1, 1], sq_norms=["3/2", "1/2", "13/2", "8/9"], signs=[1, 1, 1], active=[[0, 2], [0, 1], [3]])


def test_tie_with_different_histories_is_certified_by_canonical_forms():
    result = solve(_equal_but_written_differently())
    first, second = result.jumps
    assert first.neurons == (0,) and same_number(first.tau.exact(), sympy.sqrt(2))
    assert second.neurons == (1, 2) and second.tie
    assert second.tie_certified and second.tie_certificate == "canonical"
    assert same_number(second.tau.exact(), 3 * sympy.sqrt(2))


def test_tie_over_the_budget_is_flagged_not_certified():
    # with a zero budget no canonical form is formed, and the balls never separate
    result = solve(_equal_but_written_differently(), term_budget=0, max_precision=256)
    second = result.jumps[1]
    assert second.neurons == (1, 2) and second.tie and second.tie_certified is False
    assert result.to_dict()["jumps"][1]["tie_certified"] is False


def test_near_tie_is_separated_not_merged():
    # 4/sqrt(2 + 10^-30) < 4/sqrt(2): a difference far below float precision is still an ordering
    q = f"{10**30 + 1}/{10**30}"
    result = solve(Problem(labels=[1, 1, 1, 1], sq_norms=[1, 1, 1, q], signs=[1, 1], active=[[0, 1], [2, 3]]))
    assert [j.neurons for j in result.jumps] == [(1,), (0,)]
    assert not any(j.tie for j in result.jumps)
