"""Canonical forms over the term budget are refused before they are expanded, with the same outcome.

The size test is a lower bound on the terms of a result from its operands' keys; it must never exceed
the true size, and a budget must give exactly the forms an unbounded expansion gives wherever every
intermediate fits, None elsewhere.
"""

import itertools
import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

import limitproc
from limitproc.exact import RadicalSum, _least_terms, _to_fmpq

ATOMS = [2, 3, 5, 7, 11]
KEYS = [math.prod(c) for r in range(len(ATOMS) + 1) for c in itertools.combinations(ATOMS, r)]  # products of distinct atoms

forms = st.dictionaries(st.sampled_from(KEYS), st.fractions(max_denominator=5).filter(bool), max_size=12).map(
    lambda terms: RadicalSum({k: _to_fmpq(c) for k, c in terms.items()})
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["add", "sub", "mul", "div"]), forms, forms, st.integers(0, 20))
def test_the_size_floor_never_exceeds_the_true_size(kind, x, y, budget):
    if kind == "div" and not y.terms:
        return
    exact = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "div": lambda: x.divide(y, ATOMS, 10**6)}[kind]()
    assert _least_terms(kind, x, y, budget) <= len(exact)


def test_the_size_floor_is_the_size_for_single_terms_and_disjoint_sums():
    a = RadicalSum({1: _to_fmpq(Fraction(1, 2)), 2: _to_fmpq(3)})
    b = RadicalSum({3: _to_fmpq(5), 5: _to_fmpq(-1)})
    one = RadicalSum({6: _to_fmpq(7)})
    assert _least_terms("add", a, b, 3) == len(a + b) == 4  # no common key: nothing can cancel
    assert _least_terms("sub", a, a, 3) == 0 == len(a - a)
    assert _least_terms("mul", a, one, 0) == len(a * one) == 2 == _least_terms("mul", one, a, 0)
    assert _least_terms("div", a, one, 0) == len(a.divide(one, ATOMS, 10)) == 2


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 300), st.integers(3, 10), st.integers(0, 10**6), st.integers(1, 80))
def test_a_budget_gives_the_unbounded_forms_where_they_fit(n, m, seed, budget):
    problem = limitproc.generate(n, m, seed=seed)
    full = limitproc.solve(problem, term_budget=10**6)
    bounded = limitproc.solve(problem, term_budget=budget)
    for a, b in zip(full.jumps, bounded.jumps):
        assert a.tau.form() is not None
        cone = full.program._forms[a.tau.node][1]  # the largest form met on the way
        assert b.tau.exact() == (a.tau.exact() if cone <= budget else None)
