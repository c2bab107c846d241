"""Exact interpolation probability (spec §7): hand cases, brute force, identities, Monte Carlo."""

import itertools
import json
import math
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc.exact import round_significant
from limitproc.probability import (
    balanced,
    decimal_string,
    interpolation_probability,
    monte_carlo,
    p_interpolate,
    p_interpolate_random_signs,
    smallest_width,
    union_bound,
    union_bound_width,
)


def brute_force(n_pos, n_neg, m):
    """Enumerate every sign vector and activation pattern (all equally likely)."""
    labels = [1] * n_pos + [-1] * n_neg
    n = len(labels)
    good = total = 0
    for signs in itertools.product((1, -1), repeat=m):
        for bits in itertools.product((0, 1), repeat=m * n):
            total += 1
            good += all(any(bits[j * n + i] and signs[j] == y for j in range(m)) for i, y in enumerate(labels))
    return Fraction(good, total)


def test_hand_cases():
    assert p_interpolate(1, 0, 1) == Fraction(1, 4)  # the neuron must be positive and active
    assert p_interpolate(1, 1, 2) == Fraction(1, 8)  # one neuron of each sign, each active: 2 * 1/4 * 1/4
    assert p_interpolate(2, 0, 1) == Fraction(1, 8)
    assert p_interpolate(0, 0, 3) == 1
    assert p_interpolate(1, 0, 0) == 0


@pytest.mark.parametrize("n_pos,n_neg,m", [(1, 1, 2), (2, 1, 2), (1, 2, 3), (3, 0, 2), (2, 2, 2)])
def test_matches_brute_force(n_pos, n_neg, m):
    assert p_interpolate(n_pos, n_neg, m) == brute_force(n_pos, n_neg, m)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 12))
def test_equals_the_literal_sum(n_pos, n_neg, m):
    """Theory §7 term by term in Fractions (the library pairs the terms k and m - k)."""
    literal = sum(
        Fraction(math.comb(m, k), 2**m) * (1 - Fraction(1, 2**k)) ** n_pos * (1 - Fraction(1, 2 ** (m - k))) ** n_neg for k in range(m + 1)
    )
    assert p_interpolate(n_pos, n_neg, m) == literal


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 12), st.integers(0, 10))
def test_random_signs_is_the_binomial_mixture(n, m):
    mixture = sum(Fraction(math.comb(n, k), 2**n) * p_interpolate(k, n - k, m) for k in range(n + 1))
    assert p_interpolate_random_signs(n, m) == mixture


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 25))
def test_monotone_in_m_and_below_the_union_bound(n_pos, n_neg, m):
    p = p_interpolate(n_pos, n_neg, m)
    assert p <= p_interpolate(n_pos, n_neg, m + 1)
    assert 1 - p <= union_bound(n_pos + n_neg, m)


@settings(max_examples=60, deadline=None)
@given(st.integers(-(10**30), 10**30), st.integers(0, 120), st.integers(1, 25))
def test_decimal_string_rounds_like_round_significant(p, e, digits):
    assert decimal_string(p, e, digits) == round_significant(Fraction(p, 2**e), digits)


def test_tiny_probability_prints():
    # (1 - 1/2)^100000 ... far below any float; the decimal is still exact
    p = interpolation_probability(100000, 0, 1)  # = 1/2 * 2^-100000
    assert p.p == 1 and p.e == 100001
    import mpmath

    with mpmath.workdps(30):
        expected = mpmath.nstr(mpmath.mpf(2) ** -100001, 5, strip_zeros=False)  # '5.0050e-30104'
    assert p.decimal(5) == expected


@pytest.mark.parametrize("n,delta", [(1, Fraction(1, 2)), (10, Fraction(1, 10)), (101, Fraction(1, 1000)), (1000, Fraction(1, 100))])
def test_smallest_width_is_minimal(n, delta):
    a, b = balanced(n)
    m = smallest_width(a, b, delta)
    assert 1 - p_interpolate(a, b, m) <= delta
    assert m == 0 or 1 - p_interpolate(a, b, m - 1) > delta
    assert m <= union_bound_width(n, delta)


def test_union_bound_width_is_minimal():
    for n, delta in [(10, Fraction(1, 10)), (1000, Fraction(1, 100)), (7, Fraction(1, 3))]:
        m = union_bound_width(n, delta)
        assert union_bound(n, m) <= delta < union_bound(n, m - 1)


def test_large_n_agrees_with_a_float_evaluation():
    n_pos = n_neg = 50000
    m = 40
    exact = float(interpolation_probability(n_pos, n_neg, m).complement().decimal(17))
    approx = sum(
        math.comb(m, k) / 2**m * -math.expm1(n_pos * math.log1p(-(2.0**-k)) + n_neg * math.log1p(-(2.0 ** -(m - k)))) for k in range(1, m)
    )
    approx += 2 / 2**m  # k = 0 or m: a class is never covered
    assert exact == pytest.approx(approx, rel=1e-9)


def test_monte_carlo_through_the_engine():
    exact = p_interpolate(3, 2, 4)
    estimate, se = monte_carlo(3, 2, 4, trials=400, seed=7)
    assert abs(float(estimate - exact)) <= 4 * math.sqrt(float(exact * (1 - exact)) / 400)
    assert se > 0


def run(*argv):
    return subprocess.run([sys.executable, "-m", "limitproc", *argv], capture_output=True, text=True)


def test_cli_prob_json():
    out = run("prob", "--n-pos", "1", "--n-neg", "1", "--m", "2", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert Fraction(data["p_interpolate"]) == Fraction(1, 8)
    assert Fraction(data["p_fail"]) == Fraction(7, 8)
    assert Fraction(data["union_bound"]) == Fraction(2 * 9, 16)
    assert data["p_interpolate_decimal"].startswith("0.125")


def test_cli_width_json():
    out = run("prob", "--n", "101", "--delta", "1/1000", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["n_pos"], data["n_neg"]) == (51, 50)
    assert data["m_min"] == smallest_width(51, 50, Fraction(1, 1000))
    assert data["threshold_2_log2_n"] == pytest.approx(2 * math.log2(101))


@pytest.mark.parametrize(
    "argv,field",
    [
        (["--n", "10", "--delta", "1.5"], "delta"),
        (["--n-pos", "3"], "--n-pos"),
        (["--n-pos", "-1", "--n-neg", "1", "--m", "2"], "--n-pos: "),
    ],
)
def test_cli_bad_input(argv, field):
    out = run("prob", *argv)
    assert out.returncode == 2
    assert field in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
