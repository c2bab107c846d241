"""Exact arithmetic: canonical forms against sympy, certified decimals against mpmath and decimal."""

import decimal
from fractions import Fraction

import mpmath
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc.exact import Program, RadicalBasis, RadicalSum, round_significant, sqrt_string

radicands = st.fractions(min_value=0, max_value=10**6, max_denominator=10**4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.fractions(min_value=-50, max_value=50, max_denominator=20), radicands), min_size=1, max_size=8))
def test_canonical_form_equals_sympy(terms):
    """sum c_i sqrt(r_i) in canonical form has sympy's exact value, and is zero iff sympy says so."""
    basis = RadicalBasis()
    for _, r in terms:
        basis.add(r.numerator * r.denominator)
    form = RadicalSum({})
    for c, r in terms:
        form = form + RadicalSum.rational(c) * RadicalSum.sqrt(r, basis)
    expected = sum(sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(sympy.Rational(r.numerator, r.denominator)) for c, r in terms)
    assert sympy.radsimp(sympy.sympify(str(form)) - expected) == 0
    assert form.is_zero() == (sympy.nsimplify(expected) == 0)


small_sums = st.lists(
    st.tuples(st.fractions(min_value=-20, max_value=20, max_denominator=6), st.fractions(min_value=0, max_value=60, max_denominator=5)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(small_sums, small_sums)
def test_division_by_a_sum_equals_sympy(a_terms, b_terms):
    """a / b through conjugates: q * b - a expands to 0 in sympy (which keeps radicals squarefree and merges them)."""
    basis = RadicalBasis()
    for _, r in a_terms + b_terms:
        basis.add(r.numerator * r.denominator)

    def form(terms):
        total = RadicalSum({})
        for c, r in terms:
            total = total + RadicalSum.rational(c) * RadicalSum.sqrt(r, basis)
        return total

    def symbolic(terms):
        return sympy.Add(
            *(sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(sympy.Rational(r.numerator, r.denominator)) for c, r in terms)
        )

    a, b = form(a_terms), form(b_terms)
    if b.is_zero():
        with pytest.raises(ZeroDivisionError):
            a.divide(b, basis.atoms, 10**6)
        return
    q = a.divide(b, basis.atoms, 10**6)
    assert sympy.expand(sympy.sympify(str(q)) * symbolic(b_terms) - symbolic(a_terms)) == 0
    if len(b) > 1:
        assert a.divide(b, basis.atoms, 0) is None  # intermediates over a budget of 0 terms


def test_differently_written_equal_numbers_have_equal_forms():
    # sqrt(8) + sqrt(18) = 5 sqrt(2) = sqrt(50), and sqrt(12)/sqrt(3) = 2
    p = Program()
    a = p.add(p.sqrt(8), p.sqrt(18))
    b = p.sqrt(50)
    assert p.compare(a, b, max_precision=256) == (0, True)
    assert str(p.form(p.div(p.sqrt(12), p.sqrt(3)))) == "2"


def test_basis_refines_without_factoring():
    # two 40-digit primes: factoring their product would be slow, gcds are not
    p1, p2 = 10**39 + 3, 10**40 + 121  # not necessarily prime; the base only needs coprimality
    basis = RadicalBasis()
    for x in (p1 * p2, p1 * 7, p2 * p2 * 5):
        basis.add(x)
    atoms = basis.atoms
    assert all(sympy.gcd(a, b) == 1 for i, a in enumerate(atoms) for b in atoms[i + 1 :])
    c, key = basis.split(p1 * p2 * p2 * 7 * 7)
    assert c * c * key == p1 * p2 * p2 * 49 and c % (p2 * 7) == 0


@settings(max_examples=300, deadline=None)
@given(st.fractions(min_value=-(10**9), max_value=10**9, max_denominator=10**9).filter(bool), st.integers(1, 40))
def test_round_significant_matches_decimal(x, digits):
    ctx = decimal.Context(prec=digits, rounding=decimal.ROUND_HALF_EVEN)
    expected = ctx.divide(decimal.Decimal(x.numerator), decimal.Decimal(x.denominator))
    assert decimal.Decimal(round_significant(x, digits)) == expected


@settings(max_examples=100, deadline=None)
@given(radicands.filter(bool), st.integers(1, 80))
def test_certified_decimals_of_square_roots(r, digits):
    """The digits are sqrt(r) correctly rounded: compare with a 60-digits-more mpmath value, rounded exactly."""
    p = Program()
    mpmath.mp.prec = int((digits + 60) * 3.33)
    approx = mpmath.sqrt(mpmath.mpf(r.numerator) / r.denominator)
    man, exp = approx.man_exp
    exact_binary = Fraction(int(man)) * Fraction(2) ** int(exp)
    assert p.decimal(p.sqrt(r), digits) == round_significant(exact_binary, digits)


def test_decimal_of_a_rational_on_a_rounding_boundary():
    # 1/3 - 5/24 = 1/8 = 0.125 sits exactly between 0.12 and 0.13: its (inexact) balls never settle it,
    # the canonical form does; likewise 1/3 + 1/24 = 3/8 = 0.375
    p = Program()
    third = p.div(p.const(1), p.const(3))
    assert p.decimal(p.sub(third, p.const(Fraction(5, 24))), 2) == "0.12"
    assert p.decimal(p.add(third, p.const(Fraction(1, 24))), 2) == "0.38"


def test_sqrt_string_takes_squares_out():
    assert [sqrt_string(q) for q in (Fraction(12), Fraction(3, 8), Fraction(0), Fraction(49, 4))] == ["2*sqrt(3)", "sqrt(6)/4", "0", "7/2"]


def test_an_operand_over_the_budget_ends_the_form_before_the_other_operand_is_expanded():
    prog = Program(term_budget=2)
    wide = prog.sum(prog.sqrt(p) for p in (2, 3, 5))  # 3 terms: over the budget of 2
    other = prog.mul(prog.add(prog.sqrt(7), prog.const(1)), prog.sqrt(11))  # sqrt(77) + sqrt(11): within it
    assert prog.form(prog.add(other, wide)) is None
    assert other not in prog._forms  # never expanded: the result was over the budget anyway
    assert str(prog.form(other)) == "sqrt(11) + sqrt(77)"  # and it still has its form when asked for
