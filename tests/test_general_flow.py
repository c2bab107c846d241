"""The general simulator (limitproc.flow.general) against the per-sample one and a plain numpy descent."""

from fractions import Fraction

import numpy as np
import pytest

from limitproc.errors import InputError
from limitproc.flow.general import nearest_orthogonal_problem, simulate_general
from limitproc.flow.simulate import initial_magnitudes, simulate, with_magnitudes
from limitproc.io.rawdata import RawData
from limitproc.problem import Problem, generate
from limitproc.process import solve


def orthogonal_case(seed: int, n: int = 6, m: int = 3):
    """A problem with non-unit norms (powers of 4) and raw data on orthogonal inputs: scaled, signed,
    permuted basis vectors in dimension n + 3, so that ``<w_j, x_i>`` is exactly the signed magnitude."""
    base = generate(n, m, seed=seed)
    rng = np.random.default_rng(seed)
    scale = 2.0 ** rng.integers(-2, 3, n)
    X = np.zeros((n, n + 3))
    X[np.arange(n), rng.permutation(n + 3)[:n]] = scale * rng.choice([-1.0, 1.0], n)
    q = (X**2).sum(axis=1)
    p = Problem(labels=list(base.labels), signs=base.signs.tolist(), active=base.active_matrix(), sq_norms=[Fraction(x) for x in q])
    mags = np.abs(rng.standard_normal((m, n))) * np.sqrt(q)
    p = with_magnitudes(p, mags)
    mags, amags = initial_magnitudes(p)
    U = np.where(p.active_matrix(), mags, -mags)
    W = (U / scale * np.sign(X.sum(axis=1))) @ (X != 0)  # w_j = Σ_i U_ji x_i / q_i, exactly
    data = RawData(X, W, p.signs * amags, np.array([float(y) for y in p.labels]), p.loss)
    assert np.array_equal(data.preactivations, U)
    return p, data


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_general_flow_equals_per_sample_on_orthogonal_data(seed):
    p, data = orthogonal_case(seed)
    result = solve(p)
    for lam in (1e-10, 1e-30):
        # two different integrators (the per-sample one continues each step's pattern past a death):
        # at rtol 1e-11 each is well inside 1e-8 of the true drop times, so they must agree to 1e-8
        ref = simulate(p, lam, result=result, rtol=1e-11)
        run = simulate_general(data, lam, result=result, rtol=1e-11)
        assert np.all(np.isfinite(ref.drop_times)) and len(ref.drop_times) == len(result.jumps)
        np.testing.assert_allclose(run.drop_times, ref.drop_times, rtol=0, atol=1e-8)
        a, u = ref.weights
        np.testing.assert_allclose(run.final_a, a, rtol=0, atol=1e-8)
        np.testing.assert_allclose(run.final_u, u, rtol=0, atol=1e-8)
        # final W: the per-sample coordinates mapped back, w_j = Σ_i u_ji x_i / q_i
        np.testing.assert_allclose(run.final_W, (u / data.gram.diagonal()) @ data.inputs, rtol=0, atol=1e-8)
        assert {k for *_, k in run.switches} <= {"death"}  # nothing held or revived on orthogonal data


def test_general_log_scale_equals_per_sample():
    p, data = orthogonal_case(5, n=4, m=2)
    result = solve(p)
    ref = simulate(p, "1e-200", result=result, rtol=1e-11)
    run = simulate_general(data, "1e-200", result=result, rtol=1e-11)
    assert run.coordinates == "log-scale"
    np.testing.assert_allclose(run.drop_times, ref.drop_times, rtol=0, atol=1e-8)


def numpy_descent(X, W, a, y, c2, lr, steps):
    """Plain gradient descent on L = c Σ r_i² with σ'(0) = 0, written directly on W (independent of the library)."""
    for _ in range(steps):
        pre = W @ X.T
        r = a @ np.maximum(pre, 0) - y
        grad_a = c2 * np.maximum(pre, 0) @ r
        grad_W = c2 * (a[:, None] * ((pre > 0) * r)) @ X
        W, a = W - lr * grad_W, a - lr * grad_a
    return W, a


@pytest.mark.parametrize("seed,eps", [(0, 0.0), (1, 0.0), (2, 0.05)])
def test_general_descent_equals_numpy_descent(seed, eps):
    p, data = orthogonal_case(seed)
    if eps:  # nearly orthogonal inputs too: the map is the same
        X = data.inputs + eps * np.random.default_rng(seed).standard_normal(data.inputs.shape)
        data = RawData(X, data.W, data.a, data.labels)
    result = solve(p)
    lr, lam = 0.05, 1e-6
    run = simulate_general(data, lam, result=result, method="gd", lr=lr, tau_end=4.0 / 13.8)
    W, a = numpy_descent(data.inputs, lam * data.W, lam * data.a, data.labels, 1.0 / p.n, lr, run.steps)
    np.testing.assert_allclose(run.final_W, W, rtol=1e-8, atol=1e-8 * np.abs(W).max())
    np.testing.assert_allclose(run.final_a, a, rtol=1e-8, atol=1e-8 * np.abs(a).max())


def test_descent_converges_to_flow_as_the_step_shrinks():
    p, data = orthogonal_case(1)
    result = solve(p)
    flow = simulate_general(data, 1e-6, result=result)
    errs = [
        np.nanmax(np.abs(simulate_general(data, 1e-6, result=result, method="gd", lr=lr).drop_times - flow.drop_times)) for lr in (0.2, 0.1)
    ]
    assert errs[1] < 0.7 * errs[0]  # first order in the step: the error halves (up to interpolation)


def test_nearest_orthogonal_problem_keeps_pattern_and_labels():
    p, data = orthogonal_case(0)
    q = nearest_orthogonal_problem(data)
    assert np.array_equal(q.active_matrix(), p.active_matrix())
    assert list(q.labels) == list(p.labels) and list(q.sq_norms) == list(p.sq_norms)


def test_dead_pair_comes_back_to_life():
    # two inputs at 60°: the pair (0, 1) starts inactive, and learning sample 0 drags w_0 onto x_1's side
    X = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    W = np.array([[1.0, -0.8]])
    data = RawData(X, W, np.array([1.3]), np.array([1.0, 1.0]))
    assert data.preactivations[0, 1] < 0
    run = simulate_general(data, 1e-6, result=solve(nearest_orthogonal_problem(data)))
    assert run.final_u[0, 1] > 0 and run.final_loss < 1e-6  # revived: one neuron fits both samples
    assert any(kind == "birth" and (j, i) == (0, 1) for _, j, i, kind in run.switches)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(inputs=[[1.0, 0.0], [2.0, 0.0]]), "inputs"),
        (dict(inputs=[[1.0, 0.0], [0.0, 0.0]]), "inputs[1]"),
        (dict(inputs=[[1.0, np.nan], [0.0, 1.0]]), "inputs"),
        (dict(W=[[np.inf, 0.0]]), "init.W"),
        (dict(a=[0.0]), "init.a[0]"),
        (dict(labels=[1.0]), "labels"),
    ],
)
def test_bad_raw_data_names_the_field(kwargs, field):
    raw = dict(inputs=[[1.0, 0.0], [0.0, 1.0]], W=[[1.0, 1.0]], a=[2.0], labels=[1.0, -1.0])
    raw.update(kwargs)
    with pytest.raises(InputError) as exc:
        RawData(raw["inputs"], raw["W"], raw["a"], raw["labels"])
    assert exc.value.field == field


def test_unknown_loss_is_refused_where_it_is_used():
    # the raw-data format only reads the name; the simulator (like a Problem) knows the conventions
    _, data = orthogonal_case(0, n=4, m=2)
    bogus = RawData(data.inputs, data.W, data.a, data.labels, "bogus")
    with pytest.raises(InputError) as exc:
        simulate_general(bogus, 1e-6, result=solve(nearest_orthogonal_problem(data)))
    assert exc.value.field == "loss"
    with pytest.raises(InputError) as exc:
        nearest_orthogonal_problem(bogus)
    assert exc.value.field == "loss"


def test_descent_refuses_underflowing_lambda():
    _, data = orthogonal_case(0)
    with pytest.raises(InputError) as exc:
        simulate_general(data, "1e-200", method="gd", lr=0.1)
    assert exc.value.field == "lambda"


def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "limitproc", *args], capture_output=True, text=True)


def test_cli_simulate_chooses_the_path(tmp_path):
    import json

    _, data = orthogonal_case(0, n=4, m=2)
    orth = tmp_path / "orth.npz"
    np.savez(orth, X=data.inputs, y=data.labels, W=data.W, a=data.a)
    out = run_cli("simulate", str(orth), "--lambdas", "1e-6", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "per-sample" in out.stderr and json.loads(out.stdout)["path"].startswith("per-sample")
    skew = tmp_path / "skew.npz"
    X = data.inputs + 1e-3 * np.random.default_rng(0).standard_normal(data.inputs.shape)
    np.savez(skew, X=X, y=data.labels, W=data.W, a=data.a)
    out = run_cli("simulate", str(skew), "--lambdas", "1e-6", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "general path" in out.stderr and json.loads(out.stdout)["path"].startswith("general")
    bad = tmp_path / "bad.npz"
    X[1] = 0.0
    np.savez(bad, X=X, y=data.labels, W=data.W, a=data.a)
    out = run_cli("simulate", str(bad), "--lambdas", "1e-6")
    assert out.returncode == 2 and out.stderr.strip().endswith("inputs[1]: zero input") and "Traceback" not in out.stderr


def test_returns_within_a_step_are_found():
    from limitproc.flow.general import _returns

    # per-step slopes ∓6 between equal endpoints ±1: the interpolant is ±(1 − 6θ + 6θ²), beyond 0 by
    # 1/2 at θ = 1/2; slopes ∓3 give ±(1 − 3θ + 3θ²) > 0, which stays on its side; (1 → −1) is a plain crossing
    u0, u1 = np.array([1.0, 1.0, -1.0, -1.0, 1.0]), np.array([1.0, 1.0, -1.0, -1.0, -1.0])
    du0, du1 = np.array([-6.0, -3.0, 6.0, 3.0, -2.0]), np.array([6.0, 3.0, -6.0, -3.0, -2.0])
    active = np.array([True, True, False, False, True])
    assert _returns(u0, du0, u1, du1, active) == {0: 0.5, 2: 0.5}


def test_gaussian_holds_do_not_toggle():
    # Gaussian inputs (coherence ≈ 0.6): many pairs slide. A hold released and taken again at the
    # same instant is the toggling on rounding noise that the release margin and its confirmation at
    # the end of the cut step rule out; the earlier code did it 3 times on this very run.
    from limitproc.flow.coherence import gaussian_inputs, raw_with_inputs

    p = generate(8, 3, seed=1)
    run = simulate_general(raw_with_inputs(p, gaussian_inputs(p, 16, 0), 0), 1e-6, result=solve(p))
    kinds = [k for *_, k in run.switches]
    assert kinds.count("hold") >= 5 and kinds.count("release") >= 5  # the case does slide
    sw = run.switches
    assert not [
        (a, b) for a, b in zip(sw, sw[1:]) if a[3] == "release" and b[3] == "hold" and a[1:3] == b[1:3] and b[0] - a[0] <= 1e-9 * a[0]
    ]


def test_a_release_that_never_comes_ends_the_run_instead_of_looping(monkeypatch):
    # Make every step's interpolant show a release at once (θ = 2⁻⁶⁰) that the cut step's end never
    # confirms: the integrator cuts steps to nothing without an event. It must give up after 4·m·n
    # such steps with the field that names the problem (a bounded count of calls makes a loop fail too).
    from limitproc.flow.coherence import gaussian_inputs, raw_with_inputs
    from limitproc.flow.general import GeneralIntegrator

    real, calls = GeneralIntegrator._outside, [0]

    def outside(self, y, neuron=None):
        calls[0] += 1
        assert calls[0] < 10**6, "looping"
        out = real(self, y, neuron)
        return out | self.flow.held.ravel() if neuron is not None else out

    monkeypatch.setattr(GeneralIntegrator, "_outside", outside)
    p = generate(8, 3, seed=1)
    with pytest.raises(InputError) as exc:
        simulate_general(raw_with_inputs(p, gaussian_inputs(p, 16, 0), 0), 1e-6, result=solve(p))
    assert exc.value.field == "lambda" and "step size underflow" in str(exc.value)


def test_raw_json_reads_exact_strings_as_solve_does(tmp_path):
    """Raw JSON may write entries as exact strings ("1/3"), as solve reads them; the general path read only
    floats ("must be an array of numbers"). The strings are the same float64 values as the numbers."""
    import json

    from limitproc.io.rawdata import read_raw

    exact = {"inputs": [["1/2", 0], [0, "1/3"]], "init": {"W": [["3/2", "-1/4"], ["1/5", "2"]], "a": ["3/2", "2"]}, "labels": ["1", "-2/3"]}
    floats = {"inputs": [[0.5, 0], [0, 1 / 3]], "init": {"W": [[1.5, -0.25], [0.2, 2]], "a": [1.5, 2]}, "labels": [1, -2 / 3]}
    (tmp_path / "exact.json").write_text(json.dumps(exact))
    (tmp_path / "floats.json").write_text(json.dumps(floats))
    a, b = read_raw(tmp_path / "exact.json"), read_raw(tmp_path / "floats.json")
    for field in ("inputs", "W", "a", "labels"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    exact["inputs"][0][1] = "x"
    (tmp_path / "bad.json").write_text(json.dumps(exact))
    with pytest.raises(InputError, match=r"^inputs\[0\]\[1\]: not an exact number"):
        read_raw(tmp_path / "bad.json")
