"""Exact strings that share the texts of their terms (``RadicalSum.text``), and the size test that
refuses a sum over the term budget before adding it (``exact._over``), against sympy and against the
full expansion."""

from fractions import Fraction

import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from limitproc.exact import Program, RadicalBasis, RadicalSum

PRIMES = (2, 3, 5, 7, 11)
#: terms ``c sqrt(r)`` over few radicands, so that sums share keys (and coefficients, or not)
terms = st.lists(
    st.tuples(st.sampled_from([Fraction(1), Fraction(-1), Fraction(3, 2), Fraction(-2, 7)]), st.sampled_from([1, 2, 3, 6, 10, 12, 15])),
    min_size=1,
    max_size=6,
)


def symbolic(pairs):
    return sympy.Add(*(sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(r) for c, r in pairs))


@settings(max_examples=100, deadline=None)
@given(st.lists(terms, min_size=1, max_size=6))
def test_texts_sharing_their_terms_are_the_values(sums):
    basis = RadicalBasis()
    for pairs in sums:
        for _, r in pairs:
            basis.add(r)
    known: dict = {}  # one cache for all, as a program's forms share it
    for pairs in sums:
        form = RadicalSum({})
        for c, r in pairs:
            form = form + RadicalSum.rational(c) * RadicalSum.sqrt(r, basis)
        text = form.text(known)
        assert sympy.radsimp(sympy.sympify(text) - symbolic(pairs)) == 0
        assert text == str(form)  # and the same characters as without the cache


signed_primes = st.lists(st.tuples(st.sampled_from([1, -1, 2]), st.sampled_from(PRIMES)), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(signed_primes, signed_primes, st.booleans())
@example([(1, 2), (1, 3)], [(-1, 2), (1, 5)], False)  # sqrt(2) cancels: 2 terms, not 3
@example([(1, 2), (1, 3)], [(1, 2), (1, 3)], True)  # everything cancels
def test_a_sum_is_refused_before_adding_exactly_when_it_ends_over_the_budget(x_terms, y_terms, subtract):
    """Whatever cancels, the form of ``x ± y`` is None at a budget exactly when its full expansion
    has more terms (budgets from the largest partial sum of ``x`` and ``y`` up)."""

    def build(prog, pairs):
        return prog.sum(prog.mul(prog.const(c), prog.sqrt(p)) for c, p in pairs)

    full = Program(term_budget=10**6)
    size = len(full.form((full.sub if subtract else full.add)(build(full, x_terms), build(full, y_terms))))
    for budget in range(max(len(x_terms), len(y_terms)), len(x_terms) + len(y_terms) + 1):
        prog = Program(term_budget=budget)
        node = (prog.sub if subtract else prog.add)(build(prog, x_terms), build(prog, y_terms))
        assert (prog.form(node) is None) == (size > budget)
