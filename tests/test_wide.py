"""The engine's vectorised neuron state (float screen, histories, lazy saddle rates) against a literal reference.

The reference runs theory §4 per neuron in its own exact program: every neuron keeps its exponent,
anchor and escape time as nodes, the next jump is found by comparing every pair exactly, and ties by
structure are recognised from the neurons' explicit rate histories. The engine must agree exactly:
jump times (``==``, or the same exact expression under a step), neurons, blocks, tie certificates,
rates, and every saddle's unstable neurons and rates.
"""

import math
from fractions import Fraction

import numpy as np
import sympy
from helpers import same_number
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import Problem, solve
from limitproc.exact import Program
from limitproc.process import _escape_bounds, _fraction_bounds, _groups, _int_bounds


def reference(problem: Problem, lr: Fraction | None = None):
    """Theory §4 literally, exactly: ([(tau, neurons, blocks, certificate, rates)], [(unstable, min_eig)])."""
    prog = Program()
    coef = (2 * problem.loss_factor) ** 2
    w = [y * y * q for y, q in zip(problem.labels, problem.sq_norms)]
    aligned = [set(problem.aligned_set(j).tolist()) for j in range(problem.m)]
    zero, one = prog.const(0), prog.const(1)

    def rates(R):
        mu = prog.sqrt(coef * R)
        if lr is None:
            return mu, mu
        return mu, prog.mul(prog.const(1 / lr), prog.log(prog.add(one, prog.mul(prog.const(lr), mu))))

    state = {}  # j -> [R, history, mu, rho, S, anchor, T]
    for j in range(problem.m):
        R = sum((w[i] for i in aligned[j]), Fraction(0))
        if R:
            mu, rho = rates(R)
            state[j] = [R, (R,), mu, rho, zero, zero, prog.div(one, rho)]

    def saddle():
        unstable = {j: prog.value(s[2]) for j, s in sorted(state.items())}
        top = max(state.values(), key=lambda s: s[0], default=None)
        return unstable, None if top is None else prog.value(prog.sub(zero, top[2]))

    fitted, jumps, saddles = set(), [], [saddle()]
    while state:
        best = None
        for j in sorted(state):
            if best is None or prog.compare(state[j][6], state[best][6])[0] < 0:
                best = j
        tau = state[best][6]
        tied = {j: prog.compare(state[j][6], tau) for j in state}
        group = sorted(j for j, (sign, _) in tied.items() if sign == 0)
        if len({state[j][1] for j in group}) == 1:
            certificate = "structure"
        else:
            certificate = "canonical" if all(tied[j][1] for j in group) else None
        blocks = {j: sorted(aligned[j] - fitted) for j in group}
        new = set().union(*blocks.values())
        fitted |= new
        jumps.append((prog.value(tau), tuple(group), blocks, certificate, {j: prog.value(state[j][2]) for j in group}))
        for j in group:
            del state[j]
        for j in list(state):
            lost = aligned[j] & new
            if not lost:
                continue
            R, history, mu, rho, S, anchor, _ = state[j]
            S = prog.add(S, prog.mul(rho, prog.sub(tau, anchor)))
            R -= sum(w[i] for i in lost)
            if not R:
                del state[j]
                continue
            mu, rho = rates(R)
            state[j] = [R, (history, len(jumps), R), mu, rho, S, tau, prog.add(tau, prog.div(prog.sub(one, S), rho))]
        saddles.append(saddle())
    return jumps, saddles


def same_value(a, b, lr) -> bool:
    """Exact equality across two programs: certified ``==``; with logarithms the same exact expression."""
    if lr is None:
        return a == b
    return a.exact() is not None and a.exact() == b.exact()


def check_against_reference(problem: Problem, lr=None):
    result = solve(problem, lr=lr)
    jumps, saddles = reference(problem, result.lr)
    assert len(result.jumps) == len(jumps)
    for jump, (tau, neurons, blocks, certificate, rates) in zip(result.jumps, jumps):
        assert jump.neurons == neurons
        assert {j: b.tolist() for j, b in jump.blocks.items()} == blocks
        assert jump.tie_certificate == (certificate if len(neurons) > 1 else None)
        assert same_value(jump.tau, tau, result.lr)
        assert jump.rates.keys() == rates.keys() and all(jump.rates[j] == rates[j] for j in rates)
    assert len(result.saddles) == len(saddles)
    for saddle, (unstable, min_eig) in zip(result.saddles, saddles):
        assert list(saddle.unstable) == list(unstable)
        assert all(saddle.unstable[j] == mu for j, mu in unstable.items())
        assert (saddle.min_eigenvalue is None) == (min_eig is None)
        assert min_eig is None or saddle.min_eigenvalue == min_eig


@st.composite
def problems(draw, max_n=7, max_m=8):
    """Small problems rich in ties: labels and norms from few values, active sets from a small pool."""
    n, m = draw(st.integers(1, max_n)), draw(st.integers(1, max_m))
    values = draw(st.sampled_from([[1], [1, 2], [1, 2, Fraction(1, 3)], list(range(1, 10))]))
    labels = [draw(st.sampled_from(values)) * draw(st.sampled_from([1, -1])) for _ in range(n)]
    sq_norms = [draw(st.sampled_from([1, 1, 2, Fraction(1, 2), Fraction(7, 3)])) for _ in range(n)]
    pool = draw(st.lists(st.sets(st.integers(0, n - 1)), min_size=1, max_size=4))
    active = [sorted(draw(st.sampled_from(pool)) | draw(st.sets(st.integers(0, n - 1), max_size=1))) for _ in range(m)]
    signs = [draw(st.sampled_from([1, -1])) for _ in range(m)]
    loss = draw(st.sampled_from(["half-mean", "mean", "half-sum"]))
    return Problem(labels=labels, signs=signs, active=active, sq_norms=sq_norms, loss=loss)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_flow_agrees_with_the_literal_reference(problem):
    check_against_reference(problem)


@settings(max_examples=60, deadline=None)
@given(problems(max_n=6, max_m=6), st.fractions(min_value=Fraction(1, 20), max_value=Fraction(19, 10), max_denominator=20))
def test_descent_agrees_with_the_literal_reference(problem, eta):
    # a step below the stability bound 2/mu_max, mu_max <= 2c sqrt(sum y^2 q) <= 2c sum y^2 q + 1
    bound = 2 * problem.loss_factor * sum(y * y * q for y, q in zip(problem.labels, problem.sq_norms))
    check_against_reference(problem, eta / (int(bound) + 2))


def test_escape_times_closer_than_floats_are_ordered_exactly():
    # R_0 = 10^40 + 1 and R_1 = 10^40 (unit norms, n = 3, 2c = 1/3): escape times 3 / sqrt(R) differ by a
    # relative 5e-41, inside one float ulp, so both stay candidates and the exact comparison decides
    big = 10**20
    problem = Problem(labels=[big, 1, big], signs=[1, 1], active=[[0, 1], [2]])
    result = solve(problem)
    assert [j.neurons for j in result.jumps] == [(0,), (1,)]
    assert same_number(result.jumps[0].tau.exact(), 3 / sympy.sqrt(10**40 + 1))
    assert result.jumps[1].tau == Fraction(3, 10**20)
    check_against_reference(problem)


def test_huge_radicands_fall_back_to_python_integers():
    # squared labels past int64: the radicands are Python ints and their float bounds still hold
    problem = Problem(labels=[10**30, -(10**30), 3, 10**30 + 1], signs=[1, -1, 1, 1], active=[[0, 2], [1, 2], [2, 3], [0, 3]])
    check_against_reference(problem)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**80), min_size=1, max_size=5), st.booleans())
def test_integer_bounds_enclose_the_integers(values, small):
    if small:
        values = [v % 2**63 for v in values]
    R = np.array(values, dtype=np.int64 if small else object)
    lo, hi = _int_bounds(R)
    for v, a, b in zip(values, lo.tolist(), hi.tolist()):
        assert Fraction(a) <= v <= Fraction(b)


@settings(max_examples=300, deadline=None)
@given(
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
    st.fractions(min_value=Fraction(1, 10**6), max_value=10**6, max_denominator=10**6),
    st.fractions(min_value=Fraction(1, 10**6), max_value=10**6, max_denominator=10**6),
)
def test_escape_bounds_enclose_the_exact_escape_time(tau, wait, rho_p, rho):
    # each input widened to its enclosing floats; a history born at tau from a parent escaping at
    # T_p = tau + wait with rate rho_p escapes at T = tau + rho_p (T_p - tau) / rho, inside the result
    T_p = tau + wait
    column = np.array([_fraction_bounds(tau)]).T
    lo, hi = _escape_bounds(*(np.array([_fraction_bounds(x)]).T for x in (T_p, rho_p, rho)), column)
    T = tau + rho_p * wait / rho
    assert Fraction(lo[0]) <= T <= Fraction(hi[0]) and math.isfinite(lo[0]) and math.isfinite(hi[0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**70), max_size=80), st.booleans())
def test_groups_are_those_of_unique(values, small):
    if small:
        values = [v % 50 for v in values]
    array = np.array(values, dtype=np.int64 if small else object)
    distinct, inverse = _groups(array)
    assert distinct.tolist() == sorted(set(values)) and [distinct[i] for i in inverse.tolist()] == values
