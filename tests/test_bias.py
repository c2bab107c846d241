"""Implicit bias (spec §5): exact N, N_min, ratio, certified bounds, and the derived 1 + sqrt(2)."""

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import sympy
from sympy import Rational, sqrt

from limitproc import Problem, solve
from limitproc.bias import Bias, asymptotic_ratio, asymptotic_sqrt_n_constant

EXAMPLE_2 = {"labels": [1, 2, -1, 3, -2, 1], "signs": [1, -1, 1, -1], "active": [[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]]}


def same(text, value):
    return sympy.simplify(sympy.sympify(text) - value) == 0


def test_spec_example_1_is_minimal():
    result = solve(Problem(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)]))
    bias = Bias.of_result(result)
    assert same(bias.sq_norm.exact(), 2 * sqrt(2) + 2 * sqrt(3))
    assert bias.ratio.exact() == "1"
    assert bias.lower_bound().holds and bias.lower_bound().certified  # an equality, decided exactly


def test_spec_example_2():
    bias = Bias.of_result(solve(Problem(**EXAMPLE_2)))
    N = 2 + 2 * sqrt(5) + 2 * sqrt(14)  # spec §10
    N_min = 2 * sqrt(1 + 4 + 9 + 1) + 2 * sqrt(1 + 4)  # the two label classes
    assert same(bias.sq_norm.exact(), N)
    assert same(bias.min_sq_norm.exact(), N_min)
    assert same(bias.ratio.exact(), N / N_min)
    assert same(bias.sqrt_n_constant.exact(), N / sqrt(6))
    assert bias.lower_bound().holds
    assert float(bias.ratio.decimal(20)) == pytest.approx(float(N / N_min), rel=1e-15)


def test_result_values_and_result_file_give_the_same_bias():
    result = solve(Problem(**EXAMPLE_2))
    from_file = Bias.of_result_dict(json.loads(result.to_json()))
    assert Bias.of_result(result).to_dict(C=6) == from_file.to_dict(C=6)


def test_bias_of_a_decimals_only_result_is_exact():
    # a term budget of 0 gives the jump times as decimals only, but the norms (m + 1 roots) are still read exactly
    result = solve(Problem(**EXAMPLE_2), term_budget=0)
    assert result.jumps[0].tau.exact() is None
    bias = Bias.of_result(result)
    assert same(bias.sq_norm.exact(), 2 + 2 * sqrt(5) + 2 * sqrt(14))  # spec §10
    assert bias.lower_bound().holds and bias.lower_bound().certified


def test_upper_bound_at_the_exact_constant():
    # one neuron fits 4 unit samples: N = 2 sqrt(4) = 4 = 2 sqrt(n), so C = 2 is exactly the smallest
    bias = Bias.of_result(solve(Problem(labels=[1, 1, 1, 1], signs=[1], active=[range(4)])))
    assert bias.sqrt_n_constant.exact() == "2"
    assert bias.upper_bound(2).holds
    assert not bias.upper_bound(Fraction(2) - Fraction(1, 10**40)).holds
    assert bias.upper_bound("2.0000000001").holds


def test_lower_bound_fails_without_interpolation():
    # sample 2 (label -1) is never fitted: N = 2 sqrt(2) < N_min = 2 sqrt(2) + 2
    bias = Bias.of_result(solve(Problem(labels=[1, 1, -1], signs=[1], active=[range(3)])))
    assert bias.interpolates is False
    assert not bias.lower_bound().holds


def test_undetermined_norm_is_reported():
    # two positive neurons with equal rates share sample 1: an overlapping tie (spec §6)
    result = solve(Problem(labels=[1, 1, 1], signs=[1, 1], active=[[0, 1], [1, 2]]))
    bias = Bias.of_result(result)
    assert bias.sq_norm is None and bias.ratio is None and bias.lower_bound() is None
    assert "undetermined" in bias.explain()
    data = bias.to_dict()
    assert data["sq_norm"] is None and data["ratio"] is None and data["sq_norm_undetermined"]


def test_halving_constant_is_one_plus_sqrt_2():
    assert sympy.simplify(asymptotic_ratio(Fraction(1, 2)) - (1 + sqrt(2))) == 0
    assert sympy.simplify(asymptotic_sqrt_n_constant(Fraction(1, 2)) - 2 * sqrt(2) * (1 + sqrt(2))) == 0


@pytest.mark.parametrize("rho", [Fraction(1, 3), Fraction(1, 5), Fraction(3, 4)])
def test_shrink_constant_matches_the_geometric_series(rho):
    r = Rational(rho.numerator, rho.denominator)
    # sum_k sqrt((1 - r) r^(k-1)) = sqrt(1 - r) / (1 - sqrt(r))
    assert sympy.simplify(asymptotic_ratio(rho) - sqrt(1 - r) / (1 - sqrt(r))) == 0


def test_finite_halving_blocks_approach_the_constant():
    # classes of 2^K - 1 samples fitted by blocks 2^(K-1), ..., 2, 1: the exact ratio climbs to 1 + sqrt(2)
    K = 24
    blocks = " + ".join(f"2*sqrt({2**k})" for k in range(K))
    bias = Bias(2 * (2**K - 1), f"2*({blocks})", f"4*sqrt({2**K - 1})")
    gap = (1 + 2**0.5) - float(bias.ratio.decimal(20))
    assert 0 < gap < 2 ** (-K / 2) * 3


def run(*argv):
    return subprocess.run([sys.executable, "-m", "limitproc", *argv], capture_output=True, text=True)


def test_cli_bound_on_a_result_file(tmp_path):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(EXAMPLE_2))
    result = tmp_path / "r.json"
    assert run("solve", str(problem), "--format", "json", "-o", str(result)).returncode == 0
    out = run("bound", str(result), "--c", "6", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    N = 2 + 2 * sqrt(5) + 2 * sqrt(14)
    assert same(data["sq_norm"], N)
    assert same(data["ratio"], N / (2 * sqrt(15) + 2 * sqrt(5)))
    assert same(data["sqrt_n_constant"], N / sqrt(6))
    assert data["sq_norm_le_C_sqrt_n"] is True  # N/sqrt(6) = 5.697... <= 6
    assert same(data["asymptotic_ratio"], 1 + sqrt(2))
    text = run("bound", str(problem), "--c", "5")
    assert text.returncode == 0 and "FAILS" in text.stdout  # 5.697... > 5


def test_cli_bound_bad_input(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"n": 3, "jumps": [], "sq_norm": "2*pi", "min_sq_norm": "2"}))
    out = run("bound", str(bad))
    assert out.returncode == 2 and "sq_norm" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("rho", [Fraction(1, 4), Fraction(1, 50), Fraction(49, 50), Fraction(99, 100)])
def test_asymptotic_ratio_is_the_closed_form_for_every_rho(rho):
    """sqrt(1 - rho) / (1 - sqrt(rho)) (theory §5), as a closed form: for rho = 99/100 the series in rho
    itself stayed an unevaluated Sum. 99/100 gives (1/10) / (1 - 3 sqrt(11)/10) = 10 + 3 sqrt(11)."""
    r = sympy.Rational(rho.numerator, rho.denominator)
    value = asymptotic_ratio(rho)
    assert not value.has(sympy.Sum)
    assert sympy.simplify(value - sympy.sqrt(1 - r) / (1 - sympy.sqrt(r))) == 0
    if rho == Fraction(99, 100):
        assert sympy.simplify(value - (10 + 3 * sympy.sqrt(11))) == 0
