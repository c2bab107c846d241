"""The gradient-descent limit (theory §11) and the users' conventions (standard, mean-field).

Expected values are derived here by hand from theory §4 with ``rho = log(1 + eta mu) / eta`` in
sympy, by a literal run of §4 with ``rho`` in 50-digit mpmath, and, for mean-field, from the model
itself; none is copied from the engine's output.
"""

import json
from fractions import Fraction

import mpmath
import pytest
import sympy
from helpers import EXAMPLE_2, literal_process, same_number
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import InputError, Problem, solve
from limitproc.exact import Program

sqrt, log, R = sympy.sqrt, sympy.log, sympy.Rational


def rho(mu, eta):
    return log(1 + eta * mu) / eta


def example_2_times(eta):
    """Theory §10 example 2 under step eta, by hand from §4 with rho (half-mean loss: mu = sqrt(R)/6).

    Aligned sets: A_0 = {0, 1}, A_1 = {2, 4}, A_2 = {1, 3, 5}, A_3 = {4}; R = 5, 5, 14, 4.
    Neuron 2 has the largest R and escapes first, fitting {1, 3, 5}: neuron 0 loses sample 1
    (R_0 = 1 from then on), the others keep their sets. Neuron 1 (rho(sqrt 5/6)) beats neuron 3
    (rho(1/3)) and fits {2, 4}, taking neuron 3's only sample. Neuron 0 carries its head start
    S_0 = rho(sqrt5/6) tau_1 and escapes at tau_1 + (1 - S_0) / rho(1/6).
    """
    t1 = 1 / rho(sqrt(14) / 6, eta)
    t2 = 1 / rho(sqrt(5) / 6, eta)
    t3 = t1 + (1 - rho(sqrt(5) / 6, eta) * t1) / rho(R(1, 6), eta)
    assert t1 < t2 < t3 and rho(R(1, 3), eta) * t2 < 1  # the order above, and neuron 3 dies before escaping
    return [t1, t2, t3]


def test_example_2_at_step_1_matches_the_hand_derived_times():
    result = solve(EXAMPLE_2, lr=1)
    expected = example_2_times(1)
    assert [j.neurons for j in result.jumps] == [(2,), (1,), (0,)]
    assert [j.samples.tolist() for j in result.jumps] == [[1, 3, 5], [2, 4], [0]]
    for jump, hand in zip(result.jumps, expected):
        got = sympy.sympify(jump.tau.exact())
        assert got.has(sympy.log)
        assert sympy.simplify(got - hand) == 0
    assert [jump.tau.decimal(4) for jump in result.jumps] == ["2.063", "3.157", "4.311"]  # theory §11
    assert result.jumps[0].tau.exact() == "1/log(1 + sqrt(14)/6)"
    # blocks, plateaus and norms are the flow's (theory §11)
    flow = solve(EXAMPLE_2)
    assert [j.plateau_loss for j in result.jumps] == [j.plateau_loss for j in flow.jumps] == [Fraction(1, 2), Fraction(1, 12), 0]
    assert result.sq_norm.exact() == flow.sq_norm.exact() and same_number(result.sq_norm.exact(), 2 + 2 * sqrt(5) + 2 * sqrt(14))
    assert result.never_escaped == [3] and result.lr == 1


def test_decimals_are_certified_and_match_an_independent_evaluation():
    for eta in (R(3, 10), R(1, 10), R(1, 1)):
        result = solve(EXAMPLE_2, lr=str(eta))
        for jump, hand in zip(result.jumps, example_2_times(eta)):
            ball = jump.tau.ball(200)
            mid = sympy.Float(str(ball.mid().str(60, radius=False)), 60)
            assert abs(mid - sympy.N(hand, 70)) < sympy.Float(10) ** -50


@st.composite
def problems(draw, max_n=7, max_m=4):
    n, m = draw(st.integers(1, max_n)), draw(st.integers(1, max_m))
    labels = [Fraction(draw(st.integers(-9, 9).filter(bool)), draw(st.integers(1, 4))) for _ in range(n)]
    sq_norms = [Fraction(draw(st.integers(1, 9)), draw(st.integers(1, 4))) for _ in range(n)]
    signs = [draw(st.sampled_from([1, -1])) for _ in range(m)]
    active = [sorted(draw(st.sets(st.integers(0, n - 1)))) for _ in range(m)]
    loss = draw(st.sampled_from(["half-mean", "mean", "half-sum"]))
    return Problem(labels=labels, signs=signs, active=active, sq_norms=sq_norms, loss=loss)


def stable_step(problem: Problem, draw_eta: Fraction) -> Fraction:
    """A step below the stability bound 2/mu_max (mu_max < 2c sqrt(sum y^2 q))."""
    bound = 2 * problem.loss_factor * sum(y * y * q for y, q in zip(problem.labels, problem.sq_norms))
    return draw_eta / max(1, int(bound) + 1)


@settings(max_examples=40)
@given(problems(), st.fractions(min_value=Fraction(1, 20), max_value=Fraction(19, 10), max_denominator=20))
def test_the_engine_is_the_literal_rho_process(problem, eta):
    eta = stable_step(problem, eta)
    result = solve(problem, lr=eta)
    literal = literal_process(problem, eta)
    assert [j.neurons for j in result.jumps] == [group for _, group, _ in literal]
    for jump, (tau, _, _) in zip(result.jumps, literal):
        assert abs(mpmath.mpf(jump.tau.decimal(45)) - tau) < mpmath.mpf(10) ** -30
    # rho < mu: the first escape comes later under descent, by the same neurons
    flow = solve(problem)
    if result.jumps:
        assert result.jumps[0].tau > flow.jumps[0].tau and result.jumps[0].neurons == flow.jumps[0].neurons


def test_small_steps_recover_the_flow():
    flow = solve(EXAMPLE_2)
    flow_taus = [mpmath.mpf(j.tau.decimal(40)) for j in flow.jumps]
    errors = []
    for k in range(1, 7):
        result = solve(EXAMPLE_2, lr=Fraction(1, 10**k))
        assert [j.neurons for j in result.jumps] == [j.neurons for j in flow.jumps]
        errors.append(max(abs(mpmath.mpf(j.tau.decimal(40)) - t) for j, t in zip(result.jumps, flow_taus)))
    assert all(b < a for a, b in zip(errors, errors[1:]))  # times converge as eta decreases
    assert errors[-1] < 1e-5  # first order in eta: rho = mu - eta mu^2 / 2 + O(eta^2)
    # at eta = 0 (or None) it is the flow, byte for byte
    text = flow.to_json(digits=40)
    assert "lr" not in json.loads(text)
    for zero in (0, "0", Fraction(0), None):
        assert solve(EXAMPLE_2, lr=zero).to_json(digits=40) == text
    assert flow.jumps[0].tau.exact() == "3*sqrt(14)/7"  # theory §10


def test_equal_rates_tie_by_structure_under_a_step():
    # neurons 0 and 1 have equal radicands sum y^2 q (1 + 4 and 1 + 1 + 3): equal mu, so equal rho; disjoint blocks
    p = Problem(labels=[1, 2, "1/2", "1/2", 1, -1], signs=[1, 1, -1], active=[[0, 1], [2, 3, 4], [5]], sq_norms=[1, 1, 4, 4, 3, 1])
    result = solve(p, lr="1/2")
    first = result.jumps[0]
    assert first.neurons == (0, 1) and first.tie and first.tie_certificate == "structure"
    assert same_number(str(sympy.sympify(first.tau.exact())), 1 / rho(sqrt(5) / 6, R(1, 2)))
    assert result.to_dict()["jumps"][0]["tie_certified"] is True


def test_a_tie_of_logarithms_without_structure_is_not_certified():
    # log 2 + log 3 = log 6 exactly, but no structure says so and logs have no canonical form
    prog = Program()
    a = prog.add(prog.log(prog.const(2)), prog.log(prog.const(3)))
    b = prog.log(prog.const(6))
    assert prog.compare(a, b, 64, 256) == (0, False)
    assert prog.compare(prog.log(prog.const(2)), prog.log(prog.const(3))) == (-1, True)
    with pytest.raises(InputError, match="^log"):
        prog.log(prog.const(0))


def test_log_values_are_exact_expressions_with_certified_decimals():
    prog = Program()
    one = prog.const(1)
    t = prog.value(prog.div(one, prog.log(prog.add(one, prog.sqrt(Fraction(14, 36))))))
    assert t.exact() == "1/log(1 + sqrt(14)/6)" and same_number(str(t.sympy()), 1 / log(1 + sqrt(14) / 6))
    assert t.decimal(25) == str(sympy.N(1 / log(1 + sqrt(14) / 6), 40))[:26]
    assert t.form() is None and t.exact(budget=1) is None  # two terms: over a budget of one


def test_unstable_steps_are_refused():
    p = Problem(labels=[3, 4], signs=[1], active=[[0, 1]])  # mu = (1/2) sqrt(25) = 5/2
    assert solve(p, lr="79/100").lr == Fraction(79, 100)
    with pytest.raises(InputError, match=r"^lr: .*neurons \[0\]"):
        solve(p, lr="4/5")  # eta mu = 2 exactly
    for bad in ("-1", "x", True):
        with pytest.raises(InputError, match="^lr"):
            solve(p, lr=bad)


# -- conventions ----------------------------------------------------------------------------------
def test_mean_field_is_standard_rescaled_derived_from_the_model():
    """Mean-field (Dana et al.): f_mf(x; a, W) = (1/m) sum_j a_j relu(<w_j, x>), L_mf = m c sum (f_mf - y)^2.

    ReLU is 1-homogeneous, so with theta_hat = theta / sqrt(m): f_mf(x; theta) = f(x; theta_hat) and
    L_mf(theta) = m L(theta_hat). Hence grad L_mf(theta) = sqrt(m) grad L(theta_hat), and under
    d theta/dt = -grad L_mf(theta), d theta_hat/dt = -grad L(theta_hat): the same flow in the same
    time t (also step for step under descent with the same eta). Initial scale lambda becomes
    lambda/sqrt(m), and log(sqrt(m)/lambda) / log(1/lambda) -> 1: tau is unchanged. Hessians agree
    (so the saddles' rates mu); losses are m times, squared norms ||theta||^2 = m ||theta_hat||^2.
    Checked symbolically here on a network with m = 2, two samples, all units active.
    """
    m = 2
    a = sympy.symbols("a0:2", positive=True)
    u = sympy.symbols("u0:2_0:2", positive=True)  # u_ji = <w_j, x_i>, unit inputs
    y = [R(3, 2), R(-1, 3)]
    c = R(1, 4)
    U = [[u[0], u[1]], [u[2], u[3]]]

    def loss(a, U, mean_field):
        f = [sum(a[j] * U[j][i] for j in range(m)) / (m if mean_field else 1) for i in range(2)]
        return (m if mean_field else 1) * c * sum((f[i] - y[i]) ** 2 for i in range(2))

    theta = list(a) + list(u)
    hat = {s: s / sqrt(m) for s in theta}
    L_mf = loss(a, U, True)
    L_std_hat = loss([a[0] / sqrt(m), a[1] / sqrt(m)], [[x / sqrt(m) for x in row] for row in U], False)
    assert sympy.simplify(L_mf - m * L_std_hat) == 0
    L_std = loss(a, U, False)
    for s in theta:  # grad L_mf(theta) = sqrt(m) (grad L)(theta_hat)
        assert sympy.simplify(sympy.diff(L_mf, s) - sqrt(m) * sympy.diff(L_std, s).subs(hat, simultaneous=True)) == 0
    for s in theta:  # Hessians agree
        for t in theta:
            assert sympy.simplify(sympy.diff(L_mf, s, t) - sympy.diff(L_std, s, t).subs(hat, simultaneous=True)) == 0


@settings(max_examples=30)
@given(problems(), st.sampled_from([None, Fraction(1, 3)]))
def test_mean_field_gives_the_same_process_rescaled(problem, eta):
    eta = None if eta is None else stable_step(problem, eta)
    std = solve(problem, lr=eta)
    mf_problem = Problem.from_dict(problem.to_dict() | {"scaling": "mean-field"})
    assert mf_problem.scaling == "mean-field" and Problem.from_dict(mf_problem.to_dict()).scaling == "mean-field"
    mf = solve(mf_problem, lr=eta)
    m = problem.m
    assert [(j.tau.exact(), j.neurons, j.samples.tolist()) for j in mf.jumps] == [
        (j.tau.exact(), j.neurons, j.samples.tolist()) for j in std.jumps
    ]
    assert [j.plateau_loss for j in mf.jumps] == [m * j.plateau_loss for j in std.jumps]
    assert [s.loss for s in mf.saddles] == [m * s.loss for s in std.saddles]
    assert same_number(mf.min_sq_norm.exact(), m * sympy.sympify(std.min_sq_norm.exact()))
    assert (mf.sq_norm is None) == (std.sq_norm is None)
    if std.sq_norm is not None:
        assert same_number(mf.sq_norm.exact(), m * sympy.sympify(std.sq_norm.exact()))
    assert mf.to_dict()["scaling"] == "mean-field" and "scaling" not in std.to_dict()


def test_scaling_is_checked():
    with pytest.raises(InputError, match="^scaling: unknown"):
        Problem(labels=[1], signs=[1], active=[[0]], scaling="ntk")
    with pytest.raises(InputError, match="^scaling: mean-field"):
        Problem(labels=[1], signs=[], active=[], scaling="mean-field")


def test_mean_field_survives_the_npz_format(tmp_path):
    p = Problem(labels=[1, -2], signs=[1, -1], active=[[0], [1]], scaling="mean-field")
    p.to_file(tmp_path / "p.npz")
    assert Problem.from_file(tmp_path / "p.npz").scaling == "mean-field"


def test_cli_takes_the_step_and_the_scaling(tmp_path):
    import subprocess

    path = tmp_path / "p.json"
    EXAMPLE_2.to_file(path)

    def run(*args):
        return subprocess.run(["limitproc", *args], capture_output=True, text=True)

    out = run("solve", str(path), "--lr", "1", "--scaling", "mean-field", "--format", "json")
    data = json.loads(out.stdout)
    assert data["lr"] == "1" and data["scaling"] == "mean-field" and data["jumps"][0]["tau"] == "1/log(1 + sqrt(14)/6)"
    assert data["jumps"][0]["plateau_loss"] == "2"  # 4 neurons times the standard 1/2
    table = run("table", "jumps", str(path), "--lr", "1", "--format", "csv").stdout
    assert "3.1569" in table and "2.6832" not in table
    for bad in ("-1", "x", "9"):
        err = run("solve", str(path), "--lr", bad)
        assert err.returncode == 2 and err.stderr.count("\n") == 1 and "--lr:" in err.stderr and "Traceback" not in err.stderr


def test_a_tiny_step_prints_the_flows_times():
    """η = 1e-40: ρ = log(1 + η μ)/η equals μ to about η μ / 2, so τ = 1/ρ prints as the flow's 1. Its
    ball at the working precision holds 0 in the logarithm, and decimals raise the precision (they
    crashed)."""
    one = Problem(labels=[1], signs=[1], active=[[0]])
    tau = solve(one, lr="1e-40").jumps[0].tau
    assert float(tau) == 1.0 and tau.decimal(30) == "1.00000000000000000000000000000"


def test_extreme_steps_and_precisions_are_refused_in_one_line():
    one = Problem(labels=[1], signs=[1], active=[[0]])
    with pytest.raises(InputError, match=r"^lr: step 1000.* unstable at the origin: .*largest eta\*mu = 1\.0e\+309"):
        solve(one, lr="1e309")  # η μ past float64's range (its message overflowed)
    with pytest.raises(InputError, match="^precision: must be an integer >= 2"):
        solve(one, precision=1)  # arb needs two bits
