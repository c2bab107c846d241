"""ExactValue as a number: operators and certified comparisons against sympy, conversions, the precision context."""

from fractions import Fraction

import mpmath
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import Problem, solve
from limitproc.errors import BudgetExceeded, Error, InputError, Uncertified
from limitproc.exact import ExactValue, Precision, Program

EXAMPLE_2 = {"labels": [1, 2, -1, 3, -2, 1], "signs": [1, -1, 1, -1], "active": [[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]]}
TAU_1 = 3 * sympy.sqrt(14) / 7  # spec §10, example 2: the first jump

coefficients = st.fractions(min_value=-20, max_value=20, max_denominator=6)
radicands = st.fractions(min_value=0, max_value=60, max_denominator=5)
radical_sums = st.lists(st.tuples(coefficients, radicands), min_size=1, max_size=4)


def build(program: Program, terms) -> ExactValue:
    """sum c sqrt(r), through the operators."""
    total = 0
    for c, r in terms:
        total = c * program.value(program.sqrt(r)) + total
    return total


def rational(q: Fraction) -> sympy.Rational:
    return sympy.Rational(q.numerator, q.denominator)


def symbolic(terms) -> sympy.Expr:
    return sympy.Add(*(rational(c) * sympy.sqrt(rational(r)) for c, r in terms))


def is_zero(expr) -> bool:
    # sympy keeps sqrt of integers squarefree and merges like terms: a sum of radicals expands to 0 iff it is 0
    return sympy.expand(expr) == 0


def sign(expr) -> int:
    return 0 if is_zero(expr) else (1 if sympy.N(expr, 60) > 0 else -1)


@settings(max_examples=150, deadline=None)
@given(radical_sums, radical_sums)
def test_operators_agree_with_sympy(a_terms, b_terms):
    p = Program()
    a, b = build(p, a_terms), build(p, b_terms)
    A, B = symbolic(a_terms), symbolic(b_terms)
    third = Fraction(1, 3)
    cases = [(a + b, A + B), (a - b, A - B), (a * b, A * B), (-a, -A), (a + 3, A + 3), (third - a, rational(third) - A), (b / 2, B / 2)]
    for value, expected in cases:
        assert isinstance(value, ExactValue)
        assert is_zero(sympy.sympify(value) - expected)
    if is_zero(B):
        with pytest.raises(ZeroDivisionError):
            a / b
    else:
        assert is_zero(sympy.sympify(a / b) * B - A)
        assert is_zero(sympy.sympify(1 / b) * B - 1)


@settings(max_examples=150, deadline=None)
@given(radical_sums, radical_sums)
def test_comparisons_agree_with_sympy(a_terms, b_terms):
    p = Program()
    a, b = build(p, a_terms), build(p, b_terms)
    s = sign(symbolic(a_terms) - symbolic(b_terms))
    assert (a < b, a <= b, a == b, a != b, a > b, a >= b) == (s < 0, s <= 0, s == 0, s != 0, s > 0, s >= 0)
    assert bool(a - b) == (s != 0)
    assert (a > 0) == (sign(symbolic(a_terms)) > 0)


@settings(max_examples=100, deadline=None)
@given(radical_sums, st.data())
def test_equal_values_built_differently_are_equal(terms, data):
    """sqrt(r) rewritten as sqrt(r s^2) / s, in another order and in another program: equal, equal hashes."""
    p, q = Program(), Program()
    a = build(p, terms)
    rewritten = []
    for c, r in data.draw(st.permutations(terms)):
        s = data.draw(st.integers(1, 7))
        rewritten.append((c / s, r * s * s))
    for b in (build(p, rewritten), build(q, rewritten)):
        assert a == b and b == a and a <= b and a >= b and not a < b and (a != b) is False
        assert hash(a) == hash(b)


def test_sqrt_8_is_2_sqrt_2():
    p = Program()
    root_8 = p.value(p.sqrt(8))
    two_root_2 = 2 * p.value(p.sqrt(2))
    assert root_8.node != two_root_2.node
    assert root_8 == two_root_2 and hash(root_8) == hash(two_root_2)
    other = Program()
    assert len({root_8, two_root_2, other.value(other.sqrt(2)) * 2}) == 1
    assert p.value(p.sqrt(Fraction(1, 4))) == Fraction(1, 2) == 0.5
    assert hash(p.value(p.sqrt(Fraction(1, 4)))) == hash(Fraction(1, 2))


def test_hash_does_not_depend_on_the_base():
    # 1009 > 1000 is not split off as a small prime: alone, sqrt(1009^3) keeps the key 1009^3; with sqrt(1009)
    # the base refines to {1009} and the same number becomes 1009 sqrt(1009)
    alone = Program()
    cube = alone.value(alone.sqrt(1009**3))
    before = hash(cube)
    refined = Program()
    same = refined.value(refined.sqrt(1009**3))
    refined.sqrt(1009)
    assert same.exact() == "1009*sqrt(1009)" and cube.exact() == f"sqrt({1009**3})"
    assert cube == same and hash(same) == before
    alone.sqrt(1009)  # refines the base of the first program too
    assert cube.exact() == "1009*sqrt(1009)" and hash(cube) == before


def test_taus_of_jumps_and_saddles_are_equal_values():
    result = solve(Problem(**EXAMPLE_2))
    for k, jump in enumerate(result.jumps, start=1):
        assert jump.tau == result.saddles[k].tau
        assert jump.tau != result.saddles[k - 1].tau
    first, second = result.jumps[0].tau, result.jumps[1].tau
    rebuilt = first + (second - first)  # new nodes, the same number
    assert rebuilt.node != second.node and rebuilt == second and hash(rebuilt) == hash(second)
    assert sorted([second, first]) == [first, second]
    assert first < second and second > first and first - second < 0


def test_spec_example_2_tau_in_sympy_mpmath_and_float():
    tau = solve(Problem(**EXAMPLE_2)).jumps[0].tau
    assert sympy.sympify(tau) == TAU_1 and tau.sympy() == TAU_1
    assert sympy.sympify(tau) + 1 == TAU_1 + 1
    square = Fraction(9 * 14, 49)  # tau^2, and 1 < tau < 2, so an ulp at p bits is 2^(1 - p)
    for prec in (10, 53, 100, 333):
        with mpmath.workprec(prec):
            x = mpmath.mpf(tau)
        man, exp = x.man_exp
        R, half_ulp = Fraction(int(man)) * Fraction(2) ** int(exp), Fraction(1, 2**prec)
        assert int(man).bit_length() <= prec
        assert (R - half_ulp) ** 2 < square < (R + half_ulp) ** 2  # the correctly rounded value
    R = Fraction(float(tau))
    assert (R - Fraction(1, 2**53)) ** 2 < square < (R + Fraction(1, 2**53)) ** 2
    assert mpmath.mpf(1) + tau > 2  # mpmath arithmetic converts through _mpmath_ too


def test_display():
    tau = solve(Problem(**EXAMPLE_2)).jumps[0].tau
    assert repr(tau) == "ExactValue(3*sqrt(14)/7)" and str(tau) == "3*sqrt(14)/7"
    assert tau._repr_latex_() == f"${sympy.latex(TAU_1)}$"
    assert f"{tau:.4f}" == "1.6036"  # 3 sqrt(14)/7 = 1.603567...
    p = Program(precision=Precision(term_budget=0))
    root = p.value(p.sqrt(2))
    assert root._repr_latex_() == "$\\approx 1.41421356237$"  # sqrt(2) = 1.41421356237309504880..., 12 digits for display
    assert str(root) == "≈1.4142135623730950488" and "over the term budget of 0" in repr(root)
    big = Program()
    long_sum = sum((big.value(big.sqrt(r)) for r in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)), 0)
    assert repr(long_sum) == "ExactValue(≈39.1810249867613, 11 terms)"  # sum of sqrt of the first 11 primes


def test_values_of_other_programs_enter_through_their_canonical_form():
    p, q = Program(), Program()
    a, b = p.value(p.sqrt(2)), q.value(q.add(q.sqrt(3), q.const(1)))
    assert (a + b).program is p and (b + a).program is q
    assert is_zero(sympy.sympify(a * b) - sympy.sqrt(2) * (sympy.sqrt(3) + 1))
    over = Program(0)
    c = over.value(over.sqrt(5))
    with pytest.raises(BudgetExceeded, match="term budget of 0"):
        a + c
    assert c > a  # the reverse direction imports a, within p's budget; balls separate the values


def test_floats_compare_by_exact_value_and_do_not_mix_in_arithmetic():
    p = Program()
    root = p.value(p.sqrt(2))
    nearest = 1.4142135623730951
    assert (Fraction(nearest) ** 2 > 2) == (root < nearest)  # decided exactly, not by rounding sqrt(2)
    nan = float("nan")
    assert root != nearest and root < float("inf") and (root == nan) is False and root != nan
    with pytest.raises(TypeError):
        root + 0.5
    assert (root == "sqrt(2)") is False


def test_uncertified_is_raised_not_guessed():
    # sqrt(8) + sqrt(18) = sqrt(50): balls cannot separate them, and a budget of 0 terms forbids the forms
    p = Program(precision=Precision(term_budget=0, precision=8, max_precision=16))
    a, b = p.value(p.add(p.sqrt(8), p.sqrt(18))), p.value(p.sqrt(50))
    for compare in (lambda: a < b, lambda: a == b, lambda: a >= b, lambda: bool(a - b)):
        with pytest.raises(Uncertified) as info:
            compare()
        assert isinstance(info.value, Error) and isinstance(info.value, ArithmeticError)
        assert info.value.precision == 16 and info.value.term_budget == 0
    assert p.compare(a.node, b.node) == (0, False)  # the engine's non-raising form
    assert p.value(p.sqrt(7)) < b  # balls still certify unequal values: 2.64... < 7.07...
    with pytest.raises(BudgetExceeded):
        hash(a)
    with pytest.raises(BudgetExceeded):
        sympy.sympify(a)
    # the same comparison with forms allowed is a certified tie
    q = Program(precision=Precision(precision=8, max_precision=16))
    assert q.value(q.add(q.sqrt(8), q.sqrt(18))) == q.value(q.sqrt(50))


def test_decimal_and_balls_honour_the_context():
    # 1/3 - 5/24 = 1/8 = 0.125 sits on a 2-digit rounding boundary, and its ball is not exact:
    # only the canonical form can settle it
    for budget, expected in ((1, "0.12"), (0, None)):
        p = Program(precision=Precision(term_budget=budget, max_precision=64))
        eighth = p.sub(p.div(p.const(1), p.const(3)), p.const(Fraction(5, 24)))
        if expected is None:
            with pytest.raises(Uncertified, match="2-digit decimal"):
                p.decimal(eighth, 2)
        else:
            assert p.decimal(eighth, 2) == expected
        assert p.decimal(p.sqrt(2), 25) == "1.414213562373095048801689"  # irrational: balls settle it at any budget
    fine = Program(precision=Precision(precision=600))
    assert fine.ball(fine.sqrt(3)).rel_accuracy_bits() >= 590
    assert fine.value(fine.sqrt(3)).ball().rel_accuracy_bits() >= 590
    default = Program()
    assert default.ball(default.sqrt(3)).rel_accuracy_bits() < 200


def test_solve_builds_its_program_from_the_context():
    result = solve(Problem(**EXAMPLE_2), term_budget=0, precision=64, max_precision=256)
    assert result.program.precision == Precision(term_budget=0, precision=64, max_precision=256)
    tau = result.jumps[0].tau
    assert tau.exact() is None and tau.decimal(12) == "1.60356745147"  # 3 sqrt(14)/7 = 1.6035674514745...
    with pytest.raises(BudgetExceeded):
        tau.sympy()
    assert tau.sympy(budget=10) == TAU_1
    assert Program(7).precision == Precision(term_budget=7)
    with pytest.raises(TypeError):
        Program(7, precision=Precision())


@pytest.mark.parametrize("field, value", [("term_budget", -1), ("precision", 0), ("max_precision", 1.5), ("precision", True)])
def test_precision_rejects_bad_settings(field, value):
    with pytest.raises(InputError) as info:
        Precision(**{field: value})
    assert info.value.field == field
