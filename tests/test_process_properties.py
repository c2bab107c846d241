"""Spec §4's invariants over many random problems, and agreement with a literal reference.

The reference runs the loop of spec §4 as written (exponents S_j advanced by mu_j * Delta at every
step) in 60-digit mpmath: a different formulation and a different arithmetic from the engine's
escape-time recursion in exact programs. It is a test oracle only, so it may group near-equal
values with a tolerance; the engine never does.
"""

import copy
import dataclasses
from fractions import Fraction

import mpmath
import numpy as np
import sympy
from helpers import EXAMPLE_1, literal_process, same_number
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import Problem, solve

LOSSES = ("half-mean", "mean", "half-sum")


@st.composite
def problems(draw, max_n=9, max_m=5, loss=None):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    nonzero = st.integers(-40, 40).filter(bool)
    labels = [Fraction(draw(nonzero), draw(st.integers(1, 9))) for _ in range(n)]
    sq_norms = [Fraction(draw(st.integers(1, 30)), draw(st.integers(1, 9))) for _ in range(n)]
    signs = [draw(st.sampled_from([1, -1])) for _ in range(m)]
    active = [sorted(draw(st.sets(st.integers(0, n - 1)))) for _ in range(m)]
    return Problem(labels=labels, signs=signs, active=active, sq_norms=sq_norms, loss=loss or draw(st.sampled_from(LOSSES)))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_agrees_with_the_literal_reference(problem):
    result = solve(problem)
    expected = literal_process(problem)
    assert [(j.neurons, j.samples.tolist()) for j in result.jumps] == [(g, b) for _, g, b in expected]
    for jump, (tau, _, _) in zip(result.jumps, expected):
        assert abs(mpmath.mpf(jump.tau.decimal(50)) - tau) < mpmath.mpf(10) ** -40 * max(1, abs(tau))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_invariants(problem):
    result = solve(problem)
    prog = result.program
    y2 = [v * v for v in problem.labels]
    c = problem.loss_factor
    fitted = set()
    seen = set()
    previous_loss = c * sum(y2)
    assert result.saddles[0].loss == previous_loss
    for a, b in zip(result.jumps, result.jumps[1:]):
        sign, certified = prog.compare(b.tau.node, a.tau.node)
        assert sign == 1 and certified  # strictly increasing, ties only inside one jump
    for jump in result.jumps:
        assert not seen & set(jump.neurons)  # at most one jump per neuron
        seen |= set(jump.neurons)
        block = set(jump.samples.tolist())
        assert block and not block & fitted  # F only grows, by new samples
        for j in jump.neurons:
            assert set(jump.blocks[j].tolist()) == set(problem.aligned_set(j).tolist()) - fitted
        fitted |= block
        loss = c * sum(y2[i] for i in range(problem.n) if i not in fitted)
        assert jump.plateau_loss == loss < previous_loss  # strictly decreasing plateaus
        previous_loss = loss
    covered = set(np.flatnonzero(problem.covered()).tolist())
    assert fitted == covered  # the final network fits exactly the covered samples
    assert result.interpolates == (len(covered) == problem.n)
    assert result.final_loss == c * sum(y2[i] for i in range(problem.n) if i not in covered)
    assert set(result.never_escaped) == set(range(problem.m)) - seen


@settings(max_examples=100, deadline=None)
@given(problems(loss="half-mean"))
def test_first_jump_time(problem):
    # tau_1 = n / sqrt(max_j sum_{A_j} y_i^2 q_i) (spec §4)
    sums = [sum((problem.labels[i] ** 2 * problem.sq_norms[i] for i in problem.aligned_set(j)), Fraction(0)) for j in range(problem.m)]
    result = solve(problem)
    if max(sums) == 0:
        assert result.jumps == []
        return
    top = max(sums)
    expected = problem.n / sympy.sqrt(sympy.Rational(top.numerator, top.denominator))
    assert same_number(result.jumps[0].tau.exact(), expected)
    assert set(result.jumps[0].neurons) == {j for j, v in enumerate(sums) if v == top}


@settings(max_examples=60, deadline=None)
@given(problems())
def test_norm_is_the_saddle_parameter_norm(problem):
    # N = sum_j a_j^2 + ||w_j||^2 over the final saddle's exact parameters, and N >= N_min if it interpolates
    result = solve(problem)
    if result.sq_norm is None:
        return
    network = result.saddles[-1].network(problem)
    q = problem.sq_norms
    total = sum(a**2 + sum(u**2 / sympy.Rational(q[i].numerator, q[i].denominator) for i, u in us.items()) for a, us in network.values())
    assert same_number(result.sq_norm.exact(), total)
    if result.interpolates:
        sign, certified = result.program.compare(result.sq_norm.node, result.min_sq_norm.node)
        assert certified and sign >= 0


@settings(max_examples=60, deadline=None)
@given(problems(loss="half-mean"), st.sampled_from(["mean", "half-sum"]))
def test_loss_conventions_rescale_time(problem, loss):
    # rates scale by 2c*n, times by its inverse: 2 for "mean", n for "half-sum"
    other = Problem(labels=problem.labels, signs=problem.signs, active=problem.active_sets(), sq_norms=problem.sq_norms, loss=loss)
    a, b = solve(problem), solve(other)
    factor = 2 * other.loss_factor * problem.n
    assert [(j.neurons, j.samples.tolist()) for j in a.jumps] == [(j.neurons, j.samples.tolist()) for j in b.jumps]
    for ja, jb in zip(a.jumps, b.jumps):
        assert same_number(jb.tau.exact(), sympy.sympify(ja.tau.exact()) / sympy.Rational(factor.numerator, factor.denominator))
        assert jb.plateau_loss == ja.plateau_loss * factor
    assert a.sq_norm is None and b.sq_norm is None or same_number(a.sq_norm.exact(), b.sq_norm.exact())


@settings(max_examples=60, deadline=None)
@given(problems(max_m=1))
def test_wide_network_case_reaches_the_minimal_norm(problem):
    # one neuron per label sign, active on all samples: N = N_min (Boursier et al.)
    wide = Problem(labels=problem.labels, sq_norms=problem.sq_norms, signs=[1, -1], active=[range(problem.n)] * 2, loss=problem.loss)
    result = solve(wide)
    assert result.interpolates
    assert same_number(result.sq_norm.exact(), result.min_sq_norm.exact())


def test_a_copied_result_builds_its_norms_and_replace_can_give_them():
    """Example 1: the two neurons fit y+ = (1, 1) and y- = (-1, -1, -1), so N = 2 sqrt(2) + 2 sqrt(3) = N_min
    (theory §8); the norms are read first from a copy made before anything was built."""
    result = solve(EXAMPLE_1)
    copied = copy.copy(result)
    for r in (copied, result):
        assert same_number(r.sq_norm.exact(), 2 * sympy.sqrt(2) + 2 * sympy.sqrt(3))
        assert same_number(r.min_sq_norm.exact(), 2 * sympy.sqrt(2) + 2 * sympy.sqrt(3))
        assert r.sq_norm_interval is None and r.sq_norm_hi_attained is None
    given = dataclasses.replace(result, sq_norm=None)
    assert given.sq_norm is None and given.min_sq_norm is result.min_sq_norm
