"""The worked examples of spec §10, checked exactly against the spec's own numbers."""

from fractions import Fraction

import pytest
import sympy
from helpers import EXAMPLE_1, EXAMPLE_2, EXAMPLE_3, same_number

from limitproc import solve

# (problem, [(tau, neuron, block)], N, never escaped)
CASES = {
    "example 1": (EXAMPLE_1, [("5*sqrt(3)/3", 1, [2, 3, 4]), ("5*sqrt(2)/2", 0, [0, 1])], "2*sqrt(2) + 2*sqrt(3)", []),
    "example 2": (
        EXAMPLE_2,
        [("3*sqrt(14)/7", 2, [1, 3, 5]), ("6*sqrt(5)/5", 1, [2, 4]), ("6 + 3*sqrt(14)/7 - 3*sqrt(70)/7", 0, [0])],
        "2 + 2*sqrt(5) + 2*sqrt(14)",
        [3],
    ),
    "example 3": (EXAMPLE_3, [("6*sqrt(13)/13", 0, [0, 1]), ("3", 2, [2])], "2 + sqrt(577)/2", [1]),
}


@pytest.mark.parametrize("name", CASES)
def test_jumps_exactly(name):
    problem, jumps, _, _ = CASES[name]
    result = solve(problem)
    assert [(j.neurons, j.samples.tolist()) for j in result.jumps] == [((nj,), block) for _, nj, block in jumps]
    for jump, (tau, _, _) in zip(result.jumps, jumps):
        assert same_number(jump.tau.exact(), tau), (jump.tau.exact(), tau)
        assert not jump.tie


@pytest.mark.parametrize("name", CASES)
def test_norm_and_interpolation(name):
    problem, _, N, never = CASES[name]
    result = solve(problem)
    assert result.interpolates and result.uncovered.size == 0
    assert result.final_loss == 0
    assert same_number(result.sq_norm.exact(), N)
    assert result.never_escaped == never


def test_example_1_is_the_wide_network_picture():
    result = solve(EXAMPLE_1)
    assert result.sq_norm.exact() == result.min_sq_norm.exact()


def test_example_2_plateaus_by_hand():
    # L_k = (1/(2n)) sum of y_i^2 over unfitted samples; y^2 = 1, 4, 1, 9, 4, 1 and n = 6
    result = solve(EXAMPLE_2)
    assert [j.plateau_loss for j in result.jumps] == [Fraction(1 + 4 + 1, 12), Fraction(1, 12), Fraction(0)]
    assert result.saddles[0].loss == Fraction(20, 12)


def test_example_2_decimal_of_third_jump():
    # spec: tau_3 ≈ 4.0179; certified digits agree with sympy's own evaluation at 60 digits
    tau = solve(EXAMPLE_2).jumps[2].tau
    reference = sympy.N(6 + 3 * sympy.sqrt(14) / 7 - 3 * sympy.sqrt(70) / 7, 60)
    assert tau.decimal(5) == "4.0179"
    assert abs(sympy.Float(tau.decimal(50), 60) - reference) < sympy.Float(10) ** -48


def test_escape_direction_of_example_2():
    # block {1, 3, 5} of neuron 2 (s = +1): b = y_i ||x_i|| = (2, 3, 1), ||b|| = sqrt(14) = n mu_2
    result = solve(EXAMPLE_2)
    direction = result.jumps[0].escape_direction()
    assert direction.neuron == 2 and direction.a == 1
    expected = {1: 2 / sympy.sqrt(14), 3: 3 / sympy.sqrt(14), 5: 1 / sympy.sqrt(14)}
    assert {i: sympy.sympify(v) for i, v in direction.v().items()} == expected
    assert same_number(result.jumps[0].rates[2].exact(), sympy.sqrt(14) / 6)
    # neuron 3 (s = -1) never escapes; neuron 1 (s = -1) leaves with a = -1 and v = |y_i| / sqrt(5)
    second = result.jumps[1].escape_direction()
    assert second.a == -1 and {i: sympy.sympify(v) for i, v in second.v().items()} == {2: 1 / sympy.sqrt(5), 4: 2 / sympy.sqrt(5)}
    records = result.to_dict(escape_directions=True)["jumps"][1]["escape_directions"]
    assert records == [{"neuron": 1, "a": "-1", "v": {"2": "sqrt(5)/5", "4": "2*sqrt(5)/5"}}]


def test_saddle_unstable_directions_of_example_2():
    # after jump 1, neurons 0, 1, 3 have remaining aligned samples {0}, {2, 4}, {4}: rates 1/6, sqrt(5)/6, 2/6
    saddle = solve(EXAMPLE_2).saddles[1]
    assert {j: sympy.sympify(v.exact()) for j, v in saddle.unstable.items()} == {
        0: sympy.Rational(1, 6),
        1: sympy.sqrt(5) / 6,
        3: sympy.Rational(1, 3),
    }
    assert same_number(saddle.min_eigenvalue.exact(), -sympy.sqrt(5) / 6)
