"""Gradient descent with a finite step in the simulator (theory §11), against a float ρ process derived here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_cli

from limitproc import InputError, Problem, solve
from limitproc.flow.descent import Descent
from limitproc.flow.integrator import PerSampleFlow
from limitproc.flow.simulate import extrapolate, simulate

EX2 = dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
LAMBDAS = (1e-20, 1e-40, 1e-60, 1e-80)


def rho_process(y, q, signs, active, lr):
    """Jump times of theory §4 with every rate μ_j(F) replaced by ρ_j = log(1 + η μ_j)/η (§11), in floats."""
    n = len(y)
    aligned = [{i for i in act if signs[j] * y[i] > 0} for j, act in enumerate(active)]
    fitted, escaped, S, tau, times = set(), set(), [0.0] * len(signs), 0.0, []
    while True:
        rates = {}
        for j in range(len(signs)):
            if j not in escaped:
                mu = math.sqrt(sum(y[i] ** 2 * q[i] for i in aligned[j] - fitted)) / n
                if mu > 0:
                    rates[j] = math.log1p(lr * mu) / lr
        if not rates:
            return times
        dt, j = min(((1 - S[j]) / r, j) for j, r in rates.items())
        for k, r in rates.items():
            S[k] += r * dt
        tau += dt
        times.append(tau)
        escaped.add(j)
        fitted |= aligned[j]


def ex2_rho_times(lr):
    return rho_process(EX2["labels"], [1] * 6, EX2["signs"], EX2["active"], lr)


def test_rho_process_of_example_2_matches_the_spec():
    # theory §11 quotes 2.063, 3.157, 4.311 at η = 1 and 1.749, 2.831, 4.098 at η = 0.3
    assert ex2_rho_times(1.0) == pytest.approx([2.063, 3.157, 4.311], abs=1e-3)
    assert ex2_rho_times(0.3) == pytest.approx([1.749, 2.831, 4.098], abs=1e-3)
    # first jump by hand: μ = sqrt(14)/6 for neuron 2, τ_1 = 1/ρ = 1/log(1 + sqrt(14)/6)
    assert ex2_rho_times(1.0)[0] == pytest.approx(1 / math.log(1 + math.sqrt(14) / 6), rel=1e-12)


@pytest.mark.parametrize("coordinates", ["direct", "log-scale"])
def test_descent_drops_extrapolate_to_the_rho_process(coordinates):
    p = Problem(**EX2)
    flow_limit = solve(p)  # plateaus are the same under descent (§11); only times move
    runs = [simulate(p, lam, result=flow_limit, method="gd", lr=1.0, tau_end=8.0, coordinates=coordinates) for lam in LAMBDAS]
    fit = extrapolate(runs)
    assert fit.tau == pytest.approx(ex2_rho_times(1.0), abs=1e-2)
    # ... and not to the flow limit, which is 0.3 to 0.5 earlier
    assert np.abs(fit.tau - [float(j.tau) for j in flow_limit.jumps]).min() > 0.25
    assert runs[-1].final_sq_norm == pytest.approx(2 + 2 * math.sqrt(5) + 2 * math.sqrt(14), rel=1e-8)
    assert all(r.method == "gd" and r.lr == 1.0 and r.t[1] == 1.0 for r in runs)  # t = η·k


def test_direct_and_log_scale_descent_are_the_same_map():
    p = Problem(**EX2)
    r = solve(p)
    a = simulate(p, 1e-30, result=r, method="gd", lr=0.5, tau_end=6.0, coordinates="direct")
    b = simulate(p, 1e-30, result=r, method="gd", lr=0.5, tau_end=6.0, coordinates="log-scale")
    assert a.steps == b.steps
    assert a.drop_times == pytest.approx(b.drop_times, rel=1e-9)
    assert a.loss == pytest.approx(b.loss, rel=1e-9, abs=1e-12)  # the residual cancels to ~1e-15 at the end


@pytest.mark.slow
def test_log_scale_descent_below_float_range():
    p = Problem(**EX2)
    r = solve(p)
    tiny = simulate(p, "1e-400", result=r, method="gd", lr=1.0, tau_end=5.0)
    assert tiny.coordinates == "log-scale"
    # the offsets t_k − τ_k log(1/λ) are λ-free: the same at 1e-80 and 1e-400
    rho = np.array(ex2_rho_times(1.0))
    ref = simulate(p, 1e-80, result=r, method="gd", lr=1.0, tau_end=5.0)
    assert tiny.drop_offsets(rho) == pytest.approx(ref.drop_offsets(rho), abs=0.05)


def test_small_step_approaches_the_flow():
    p = Problem(**EX2)
    r = solve(p)
    flow = simulate(p, 1e-20, result=r, tau_end=6.0).drop_times
    gaps = [np.abs(simulate(p, 1e-20, result=r, method="gd", lr=lr, tau_end=6.0).drop_times - flow).max() for lr in (0.2, 0.05)]
    # the ρ correction is first order in η: a step 4 times smaller moves the drops about 4 times less
    assert gaps[1] < gaps[0] / 3
    assert gaps[1] < 2.0


def full_descent_step(X, y, W, a, lr, c):
    """One step of gradient descent on L = c Σ (a·σ(W x_i) − y_i)² in the original weights (backprop by hand)."""
    pre = W @ X.T  # (m, n)
    r = a @ np.maximum(pre, 0) - y
    grad_a = 2 * c * np.maximum(pre, 0) @ r
    grad_W = 2 * c * ((a[:, None] * (pre > 0)) * r[None, :]) @ X
    return W - lr * grad_W, a - lr * grad_a


def test_descent_step_is_gradient_descent_on_the_weights():
    rng = np.random.default_rng(3)
    n, d, m, lr = 4, 7, 3, 0.7
    X = np.linalg.qr(rng.standard_normal((d, n)))[0].T * rng.uniform(0.5, 2, n)[:, None]  # orthogonal rows
    y, W, a = rng.standard_normal(n), rng.standard_normal((m, d)), rng.standard_normal(m)
    c = 1 / (2 * n)
    q = (X**2).sum(axis=1)
    flow = PerSampleFlow(y, q, c, m)
    state = np.concatenate([a, (W @ X.T).ravel()])
    W1, a1 = full_descent_step(X, y, W, a, lr, c)
    new = Descent(flow, state, lr=lr).step(state)
    expected_u = W1 @ X.T
    expected_u = np.where((W @ X.T > 0) & (expected_u <= 0), 0.0, expected_u)  # overshoot: dead at 0
    assert new[:m] == pytest.approx(a1, rel=1e-12)
    assert new[m:].reshape(m, n) == pytest.approx(expected_u, rel=1e-12, abs=1e-14)


def test_torch_sgd_update_reproduced_with_numpy():
    # torch.optim.SGD (no momentum, no weight decay): p ← p − lr·p.grad; MSELoss(mean) is c = 1/n ("mean").
    # Its gradient written out by hand for the layers Linear(d, m, bias=False), ReLU, Linear(m, 1, bias=False):
    # ∂L/∂a_j = (2/n) Σ_i r_i σ(<w_j, x_i>), ∂L/∂w_j = (2/n) Σ_i r_i a_j 1[<w_j, x_i> > 0] x_i.
    rng = np.random.default_rng(5)
    n, d, m, lr = 3, 5, 2, 0.3
    X = np.eye(d)[:n] * np.array([1.0, 2.0, 0.5])[:, None]
    y = np.array([1.0, -2.0, 0.5])
    W, a = 1e-3 * rng.standard_normal((m, d)), 1e-3 * rng.standard_normal(m)
    r = a @ np.maximum(W @ X.T, 0) - y
    grad_a = np.array([(2 / n) * sum(r[i] * max(W[j] @ X[i], 0) for i in range(n)) for j in range(m)])
    grad_W = np.array([(2 / n) * sum(r[i] * a[j] * (W[j] @ X[i] > 0) * X[i] for i in range(n)) for j in range(m)])
    W1, a1 = W - lr * grad_W, a - lr * grad_a
    p = Problem(labels=[1, -2, "1/2"], signs=[1, 1], active=[[0], [0]], sq_norms=[1, 4, "1/4"], loss="mean")
    flow = PerSampleFlow(y, (X**2).sum(axis=1), float(p.loss_factor), m)
    state = np.concatenate([a, (W @ X.T).ravel()])
    new = Descent(flow, state, lr=lr).step(state)
    u1 = np.where((W @ X.T > 0) & (W1 @ X.T <= 0), 0.0, W1 @ X.T)
    assert new[:m] == pytest.approx(a1, rel=1e-12)
    assert new[m:].reshape(m, n) == pytest.approx(u1, rel=1e-12, abs=1e-18)


def test_overshoot_kills_a_coordinate_on_its_step():
    # one neuron, y = (1, −1), both active; u_01 starts 1000 times smaller than a, so the first step
    # (u_01 ← u_01 − η·(1/2)·a·r_1·q_1 with r_1 ≈ 1) takes it from +λ·1e-3 to about −λ/4: dead at t = η
    p = Problem(labels=[1, -1], signs=[1], active=[[0, 1]], magnitudes=[[1.0, 1e-3]])
    lr = 0.5
    sim = simulate(p, 1e-10, method="gd", lr=lr, tau_end=1.0, result=solve(p))
    assert sim.deaths[0] == (lr, 0, 1)
    assert sim.final_u[0, 1] == 0.0  # it never moves again
    assert sim.final_u[0, 0] > 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(method="gd"), "lr"),
        (dict(method="gd", lr=0.0), "lr"),
        (dict(method="gd", lr=-1.0), "lr"),
        (dict(method="gd", lr=float("nan")), "lr"),
        (dict(lr=0.5), "lr"),
        (dict(method="adam", lr=0.5), "method"),
    ],
)
def test_bad_descent_settings(kwargs, field):
    p = Problem(**EX2)
    with pytest.raises(InputError) as err:
        simulate(p, 1e-10, result=solve(p), **kwargs)
    assert err.value.field == field


@pytest.fixture
def example2(tmp_path):
    path = tmp_path / "ex2.json"
    Problem(**EX2).to_file(path)
    return path


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--method", "gd"], "--lr"),
        (["--lr", "0.5"], "--lr"),
        (["--method", "gd", "--lr", "0"], "--lr"),
        (["--method", "gd", "--lr", "-1"], "--lr"),
        (["--method", "gd", "--lr", "fast"], "--lr"),
        (["--method", "adam", "--lr", "1"], "--method"),
        (["--lambdas", "2"], "--lambdas"),
    ],
)
def test_simulate_bad_descent_flags_one_line_exit_2(capsys, example2, argv, flag):
    code, out, err = run_cli(capsys, "simulate", example2, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and flag in err and "Traceback" not in err


# -- raw data at real sizes (.npz) -----------------------------------------------------------------
def float32_raw(rng, n=20, d=1000, m=8, norm=1e-20):
    """Orthonormal float32 inputs and a balanced float32 init a_j = ±||w_j|| with ||w_j|| ≈ ``norm``, as torch makes it."""
    X = np.linalg.qr(rng.standard_normal((d, n)))[0].T.astype(np.float32)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    W = (norm / np.sqrt(d) * rng.standard_normal((m, d))).astype(np.float32)
    a = (np.sign(rng.standard_normal(m)) * np.sqrt((W * W).sum(axis=1, dtype=np.float32))).astype(np.float32)
    return X, y, W, a


def test_float32_balanced_init_accepted_and_unbalanced_refused(tmp_path):
    X, y, W, a = float32_raw(np.random.default_rng(0))
    # the squares of entries ~3e-22 are subnormal in float32: the float32 norms are off by about 1e-4,
    # so an exact balance check refuses this balanced initialisation
    exact_norms = np.sqrt((W.astype(np.float64) ** 2).sum(axis=1))
    assert (np.abs(a) < exact_norms).any()
    np.savez(tmp_path / "raw.npz", X=X, y=y, W=W, a=a)
    p = Problem.from_file(tmp_path / "raw.npz")
    assert (p.n, p.m) == (20, 8)
    pre = W.astype(np.float64) @ X.astype(np.float64).T
    assert np.array_equal(p.active_matrix(), pre > 0)
    assert np.array_equal(p.signs, np.sign(a))
    assert p.magnitudes == pytest.approx(np.abs(pre), rel=1e-12)
    # q_i: ||x_i||² rounded to the data's dtype (about 1, a float32 ulp away at most)
    assert (
        np.array([float(q) for q in p.sq_norms], np.float32).tolist() == (X.astype(np.float64) ** 2).sum(axis=1).astype(np.float32).tolist()
    )
    assert [int(v) for v in p.labels] == y.astype(int).tolist()
    with pytest.raises(InputError) as err:
        Problem.from_file(tmp_path / "raw.npz", balance_tol=0.0)
    assert err.value.field.startswith("a[")
    # genuinely unbalanced: |a_j| 10 % below ||w_j||, refused by default, accepted when forced
    np.savez(tmp_path / "unbalanced.npz", X=X, y=y, W=W, a=(0.9 * a).astype(np.float32))
    with pytest.raises(InputError, match="balance_tol") as err:
        Problem.from_file(tmp_path / "unbalanced.npz")
    assert err.value.field == "a[0]"
    with pytest.warns(UserWarning, match="sign of a_j can flip"):
        Problem.from_file(tmp_path / "unbalanced.npz", allow_sign_flip=True)


def test_float64_orthogonality_tolerance_follows_the_dtype(tmp_path):
    X, y, W, a = float32_raw(np.random.default_rng(1), norm=1.0)
    X64 = X.astype(np.float64)
    X64[1] += 1e-6 * X64[0]  # <x_0, x_1> ≈ 1e-6: within sqrt(eps32) = 3.5e-4, beyond sqrt(eps64) = 1.5e-8
    np.savez(tmp_path / "f32.npz", X=X64.astype(np.float32), y=y, W=W, a=a)
    np.savez(tmp_path / "f64.npz", X=X64, y=y, W=W.astype(np.float64), a=a.astype(np.float64) * 1.001)
    assert Problem.from_file(tmp_path / "f32.npz").n == 20
    with pytest.raises(InputError, match="not orthogonal") as err:
        Problem.from_file(tmp_path / "f64.npz")
    assert err.value.field == "X"
    assert Problem.from_file(tmp_path / "f64.npz", ortho_tol=1e-5).n == 20


def good_raw():
    X = np.diag([1.0, 2.0, 0.5])
    return dict(X=X, y=np.array([1.0, -1.0, 2.0]), W=np.array([[1.0, -1.0, 1.0], [0.5, 1.0, -1.0]]), a=np.array([2.0, -2.0]))


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        (dict(X=None), "X"),
        (dict(y=None), "y"),
        (dict(W=None), "W"),
        (dict(a=None), "a"),
        (dict(y=np.array([1.0, 2.0])), "y"),
        (dict(W=np.ones((2, 4))), "W"),
        (dict(a=np.array([1.0, 2.0, 3.0])), "a"),
        (dict(X=np.diag([1.0, np.nan, 1.0])), "X"),
        (dict(W=np.array([[1.0, np.inf, 1.0], [1.0, 1.0, 1.0]])), "W"),
        (dict(y=np.array([1.0, 0.0, 1.0])), "y"),
        (dict(X=np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])), "X"),
        (dict(a=np.array([0.1, -2.0])), "a[0]"),
    ],
)
def test_bad_raw_npz_one_line_exit_2(capsys, tmp_path, change, flag):
    arrays = {k: v for k, v in {**good_raw(), **change}.items() if v is not None}
    np.savez(tmp_path / "raw.npz", **arrays)
    code, out, err = run_cli(capsys, "solve", tmp_path / "raw.npz")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"limitproc solve: error: {flag}:") and "Traceback" not in err


def test_good_raw_npz_solves(capsys, tmp_path):
    np.savez(tmp_path / "raw.npz", **good_raw())
    code, out, err = run_cli(capsys, "solve", tmp_path / "raw.npz", "--balance-tol", "0.5", "--format", "json")
    assert code == 0, err


def test_simulate_cli_descent_against_the_rho_process(capsys, example2):
    import json

    code, out, err = run_cli(
        capsys, "simulate", example2, "--method", "gd", "--lr", "1", "--lambdas", "1e-20,1e-40,1e-80", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert [float(row["tau_decimal"]) for row in data["jumps"]] == pytest.approx(ex2_rho_times(1.0), rel=1e-12)
    assert [row["tau_extrapolated"] for row in data["jumps"]] == pytest.approx(ex2_rho_times(1.0), abs=1e-2)
    assert data["jumps"][0]["tau"] == "1/log(1 + sqrt(14)/6)"


def test_descent_claim_passes_on_example_2_and_its_step_is_a_power_of_two():
    from proofs_check.builtin import check_descent_times, descent_step
    from proofs_check.case import Case

    case = Case(Problem(**EX2), lambdas=(1e-20, 1e-40))
    lr = descent_step(case.reference)
    # first escape: μ = sqrt(14)/6 ≈ 0.624, so η = 1 (η μ ≤ 1 < 2 η μ)
    assert lr == 1.0
    outcome = check_descent_times(case)
    assert outcome.passed, outcome.detail
    assert outcome.measured < 1e-2


@pytest.mark.parametrize(("i", "k"), [(0, 1), (1, 7), (6, 2), (8, 7), (4, 5)])
def test_blocked_gram_check_finds_every_pair(monkeypatch, i, k):
    import limitproc.io.rawdata as rawdata

    monkeypatch.setattr(rawdata, "GRAM_BLOCK", 3)  # pairs inside a block, across blocks, below and above the diagonal
    X = np.eye(9)
    X[i, k] = 1e-3  # <x_i, x_k> = 1e-3 for this pair only
    with pytest.raises(InputError, match=rf"rows {min(i, k)} and {max(i, k)} are not orthogonal"):
        rawdata.problem_from_raw_arrays(Problem, X, np.ones(9), np.ones((1, 9)), np.array([5.0]))
