"""The predicted finite-λ curve (limitproc.flow.predict) against closed forms and the simulator,
and the offsets' chain (limitproc.flow.offsets) that tie resolution and prediction share."""

import json
import math

import numpy as np
import pytest

from limitproc import InputError, Problem, generate, solve
from limitproc.cli import main
from limitproc.errors import IntegrationError
from limitproc.flow.offsets import predict_offsets
from limitproc.flow.predict import SEPARATED, compare_prediction, predict, separations
from limitproc.flow.simulate import initial_magnitudes, simulate
from limitproc.flow.ties import resolve_ties, solve_resolved

# one neuron on one sample (y = 1, q = 1, half-mean loss: c = 1/2) from a = u = λ M: p = a u obeys
# the logistic dp/dt = 2p(1 − p), so p(t) = 1 / (1 + (1/p0 − 1) e^{−2t}) with p0 = λ² M²; the loss
# (1 − p)²/2 crosses the midpoint 1/4 of its plateaus 1/2 and 0 at p* = 1 − 1/√2, i.e. at
# t = log(1/λ) − log M − log(1 + √2)/2 up to O(λ²): τ = 1 and δ = −log M − log(1 + √2)/2
M = 0.7
ONE = Problem(labels=[1], signs=[1], active=[[0]], magnitudes=[[M]])
# neurons 0 and 1 (both positive) tie with equal rates and share sample 1
TIE = Problem(
    labels=[1, 1, 1, -1],
    signs=[1, 1, -1],
    active=[[0, 1, 3], [1, 2], [0, 3]],
    magnitudes=np.abs(np.random.default_rng(3).standard_normal((3, 4))),
)


def logistic(t, L):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-2 * (t - L + math.log(M))))


@pytest.mark.parametrize(
    "lam,rtol,tol",
    # the curve between the window's steps is a cubic: its error follows the step size, set by rtol
    [("1e-30", None, 2e-4), ("1e-10000", None, 2e-4), ("1e-30", 1e-8, 1e-5), ("1e-10000", 1e-8, 1e-5)],
)
def test_one_neuron_against_the_logistic(lam, rtol, tol):
    pred = predict(ONE, lam) if rtol is None else predict(ONE, lam, rtol=rtol)
    L = pred.log_inv_lambda
    assert pred.method.startswith("approximate")
    assert pred.offsets[0] == pytest.approx(-math.log(M) - math.log(1 + math.sqrt(2)) / 2, abs=1e-6)
    assert pred.drop_times[0] - L == pytest.approx(pred.offsets[0], abs=1e-6)
    p = logistic(pred.t, L)
    assert np.abs(pred.loss - (1 - p) ** 2 / 2).max() < tol
    # balanced (a = u): a² + u² = 2p, so log(2p); on the plateau the line −2L + 2(t + π) is exact
    seen = p > 1e-300  # where the closed form does not underflow
    assert np.abs(pred.log_sq_norms[seen, 0] - np.log(2 * p[seen])).max() < tol
    assert pred.final_sq_norm == pytest.approx(2.0, rel=tol / 10)


def test_cost_does_not_grow_with_log_inverse_lambda():
    # the curve is made of the windows' points and a few plateau points, whatever λ
    shallow, deep = predict(TIE, "1e-30"), predict(TIE, "1e-10000")
    assert len(shallow.t) == len(deep.t)
    assert shallow.offsets == deep.offsets


def test_separations_by_hand():
    # n = 2, c = 1/4: neuron 1 (y = −2) has μ = 1 and jumps at τ = 1, neuron 0 (y = 1) has μ = 1/2
    # and jumps at τ = 2. At τ = 1 neuron 0's deficit is 1 − 1/2; jump 2 is 1/2 · (2 − 1) after jump 1
    result = solve(Problem(labels=[1, -2], signs=[1, -1], active=[[0], [1]]))
    assert [float(j.tau) for j in result.jumps] == [1.0, 2.0]
    assert separations(result) == pytest.approx([0.5, 0.5])
    assert predict(result, log_inv_lambda=2 * SEPARATED).separated.tolist() == [True, True]
    assert predict(result, log_inv_lambda=1.9 * SEPARATED).separated.tolist() == [False, False]


def test_moved_offsets_equal_the_tie_resolution_and_the_simulation():
    result = solve(TIE)
    chain, ties = predict_offsets(result), resolve_ties(result)
    assert chain.offsets == ties.offsets and chain.log_prefactors == ties.log_prefactors
    # the tie resolution's split is the window's: the escaping neurons' shares of sample 1 sum to 1
    window = chain.windows[0]
    assert window.neurons[: window.escaping] == (0, 1) and sum(ties.splits[1].shares[1].values()) == pytest.approx(1, abs=1e-8)
    taus = [float(j.tau) for j in result.jumps]
    simulated = simulate(TIE, 1e-60, result=result).drop_offsets(taus)
    assert simulated == pytest.approx(chain.offsets, abs=1e-4)


def test_windows_integrated_together_equal_each_problem_alone():
    # two problems side by side (disjoint samples and neurons, half-sum loss so c does not depend on
    # n): their jumps interleave in one chain and their windows share integrations, the right one's
    # tie waiting for its neurons' prefactors (theory §10 example 2; a tie after a rate change)
    rng = np.random.default_rng(1)
    left = dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
    right = dict(labels=[3, 1, 1, 1, 3], signs=[1, 1, 1], active=[[0, 4], [0, 1, 2], [0, 2, 3]])
    mags_left, mags_right = np.abs(rng.standard_normal((4, 6))), np.abs(rng.standard_normal((3, 5)))
    mags = np.ones((7, 11))
    mags[:4, :6], mags[4:, 6:] = mags_left, mags_right
    both = Problem(
        labels=left["labels"] + right["labels"],
        signs=left["signs"] + right["signs"],
        active=left["active"] + [[i + 6 for i in row] for row in right["active"]],
        magnitudes=mags,
        loss="half-sum",
    )
    alone, a_mags = {}, []
    for spec, m, first in ((left, mags_left, 0), (right, mags_right, 4)):
        p = Problem(**spec, magnitudes=m, loss="half-sum")
        a_mags.append(initial_magnitudes(p)[1])  # balanced on its own samples
        result = solve(p)
        for jump, delta in zip(result.jumps, predict_offsets(result).offsets):
            alone[tuple(j + first for j in jump.neurons)] = delta
    result = solve(both)
    assert any(len(j.neurons) > 1 for j in result.jumps) and len(result.jumps) == len(alone)
    for jump, delta in zip(result.jumps, predict_offsets(result, mags, np.concatenate(a_mags)).offsets):
        assert delta == pytest.approx(alone[jump.neurons], abs=1e-6)


def test_prediction_against_the_simulation_on_a_worked_example():
    # theory §10 example 2, seed-0 magnitudes: close already at 1e-30
    p = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
    result = solve(p)
    pred = predict(result, "1e-30")
    comparison = compare_prediction(pred, simulate(p, "1e-30", result=result))
    assert comparison["max_drop_time_difference"] < 1e-4
    assert comparison["max_loss_difference"] < 1e-3
    assert comparison["final_sq_norm_predicted"] == pytest.approx(float(result.sq_norm), rel=1e-6)
    assert comparison["final_sq_norm_simulated"] == pytest.approx(float(result.sq_norm), rel=1e-6)


def random_problems(count=22):
    rng = np.random.default_rng(0)
    out = []
    seed = 0
    while len(out) < count:
        p = generate(int(rng.integers(3, 7)), int(rng.integers(2, 5)), labels="gauss", seed=seed)
        seed += 1
        result = solve(p)
        if result.jumps:
            out.append((p, result))
    return out


@pytest.mark.slow
def test_prediction_converges_to_the_simulation_as_lambda_decreases():
    # "separated" (separations): every other window at least SEPARATED e-folds away at λ = 1e-100
    ladder = ["1e-10", "1e-30", "1e-100"]
    diffs, separated = [], []
    for p, result in random_problems():
        row = []
        for lam in ladder:
            pred = predict(result, lam)
            d = np.abs(pred.drop_times - simulate(p, lam, result=result).drop_times)
            row.append(np.where(np.isnan(d), np.inf, d))  # a drop the simulation never reached
        diffs.append(np.array(row))
        separated.append(pred.separated)
    d = np.concatenate(diffs, axis=1)[:, np.concatenate(separated)]
    assert d.shape[1] >= 20  # enough separated jumps to mean something
    assert (d[-1] < 1e-2).all()
    totals = d.sum(axis=1)
    noise = 1e-5 * d.shape[1]  # both locate drops to about 1e-5 (simulate's rtol 1e-8, predict's 1e-6)
    assert totals[0] > totals[1] + noise  # 1e-10 is far from separated
    assert totals[2] <= totals[1] + noise  # at 1e-30 the rest is mostly the integrators' noise
    assert (d[-1] <= d[0] + 1e-4).all()  # each jump: closer at 1e-100 than at 1e-10, up to the integrators' noise


def test_input_errors():
    with pytest.raises(InputError, match="^seed: must be a non-negative integer"):  # (numpy's ValueError before)
        predict(Problem(labels=[1], signs=[1], active=[[0]]), "1e-20", seed=-1)
    with pytest.raises(InputError, match="^lambda: "):
        predict(ONE, "2")
    with pytest.raises(InputError, match="^lambda: "):
        predict(ONE)
    with pytest.raises(InputError, match="^simulation: "):
        compare_prediction(predict(ONE, "1e-20"), simulate(ONE, 1e-10))


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def one_file(tmp_path):
    path = tmp_path / "one.json"
    ONE.to_file(path)
    return path


def test_cli_json_compare_and_figure(capsys, one_file, tmp_path):
    figure = tmp_path / "curve.png"
    code, out, err = run(capsys, "predict", one_file, "--lambda", "1e-20", "--compare", "--format", "json", "--figure", figure)
    assert code == 0
    data = json.loads(out)
    assert data["method"].startswith("approximate") and data["lambda"] == "1e-20"
    jump = data["jumps"][0]
    assert jump["tau"] == "1" and jump["drop_time"] == pytest.approx(
        20 * math.log(10) - math.log(M) - math.log(1 + math.sqrt(2)) / 2, abs=1e-6
    )
    assert abs(data["comparison"]["drop_time_differences"][0]) < 1e-5
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_cli_text_and_deep_lambda(capsys, one_file):
    code, out, _ = run(capsys, "predict", one_file, "--lambda", "1e-10000", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("k,neurons,tau (limit),delta (offset)")
    t = float(out.splitlines()[1].split(",")[4])
    assert t == pytest.approx(10000 * math.log(10) - math.log(M) - math.log(1 + math.sqrt(2)) / 2, abs=1e-6)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lambda", "2"], "argument --lambda: must lie in (0, 1)"),
        (["--lambda", "1e-3,1e-4"], "--lambda: give one λ"),
        (["--lambda", "1e-3", "--figure", "x.txt"], "--figure: unknown figure extension '.txt' (use .png, .svg or .pdf)"),
        (["--lambda", "1e-3", "--lr", "0"], "--lr"),
        (["--lambda", "1e-3", "--lr", "-1"], "--lr"),
        (["--lambda", "1e-3", "--lr", "x"], "--lr"),
        (["--lambda", "1e-3", "--lr", "3"], "lr: "),
        (["--lambda", "1e-3", "--seed", "-1"], "--seed: must be at least 0"),
    ],
)
def test_cli_bad_input_is_one_line(capsys, one_file, argv, message):
    code, out, err = run(capsys, "predict", one_file, *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


# -- gradient descent (theory §11) -----------------------------------------------------------------
def descent_drop(lam: float, eta: float) -> float:
    """ONE under descent: a = u = x stays balanced and x ← x(1 + η(1 − x²)) from x = λM; the drop is where
    the straight line between two iterates crosses the midpoint 1/4 of the loss (1 − x²)²/2."""
    x, steps, before = lam * M, 0, None
    while (1 - x * x) ** 2 / 2 > 0.25:
        before, x, steps = (1 - x * x) ** 2 / 2 - 0.25, x * (1 + eta * (1 - x * x)), steps + 1
    after = (1 - x * x) ** 2 / 2 - 0.25
    return eta * (steps - 1 + before / (before - after))


@pytest.mark.parametrize("eta", [0.995, 0.9, 0.3, 0.05])  # 0.995: the fitted minimum contracts by only 0.99 a step
@pytest.mark.parametrize("lam", [1e-30, 1e-200])
def test_descent_one_neuron_against_the_map(eta, lam):
    pred = predict(ONE, lam, lr=eta)
    assert pred.lr == eta and pred.method.startswith("approximate") and "descent" in pred.method
    assert pred.drop_times[0] == pytest.approx(descent_drop(lam, eta), abs=1e-8)  # the window starts at 1e-5: about (1e-5)² off
    assert pred.final_sq_norm == pytest.approx(2.0, abs=1e-6)  # a² + u² = 2x² → 2


def test_descent_offsets_tend_to_the_flows_at_first_order():
    flow = predict(ONE, "1e-30").offsets[0]
    gaps = [predict(ONE, "1e-30", lr=eta).offsets[0] - flow for eta in (0.04, 0.02, 0.01)]
    assert all(g < 0 for g in gaps)
    assert 1.9 < gaps[0] / gaps[1] < 2.1 and 1.9 < gaps[1] / gaps[2] < 2.1


@pytest.mark.parametrize("eta", ["0.3", "1", "3/2"])
def test_descent_prediction_against_the_simulated_descent(eta):
    checked = 0
    for seed in range(6):
        p = generate(12, 8, seed=seed)
        result = solve(p, lr=eta)
        pred = predict(result, "1e-100")
        comparison = compare_prediction(pred, simulate(p, "1e-100", result=result, method="gd", lr=float(result.lr)))
        diff = np.abs(comparison["drop_time_differences"])[pred.separated[: len(comparison["drop_time_differences"])]]
        assert (diff < 1e-5).all()
        checked += diff.size
        if result.sq_norm is not None:  # the limit's exact N: every block fitted
            assert pred.final_sq_norm == pytest.approx(float(result.sq_norm), rel=1e-6)
        else:  # a contested tie: N lies in the limit's exact interval
            lo, hi = (float(v) for v in result.sq_norm_interval)
            assert lo * (1 - 1e-6) <= pred.final_sq_norm <= hi * (1 + 1e-6)
        if pred.separated.all():
            assert comparison["final_sq_norm_simulated"] == pytest.approx(pred.final_sq_norm, rel=1e-6)
    assert checked >= 8


def test_descent_input_errors():
    flow = solve(ONE)
    with pytest.raises(InputError, match="^lr: the result was solved for the flow"):
        predict(flow, "1e-20", lr="0.5")
    with pytest.raises(InputError, match="^lr: must be positive"):
        predict(flow, "1e-20", lr=-1)
    assert predict(flow, "1e-20", lr=0).drop_times == pytest.approx(predict(ONE, "1e-20", lr=0).drop_times)  # 0: the flow, as in solve
    with pytest.raises(InputError, match="^simulation: "):
        compare_prediction(predict(ONE, "1e-20", lr="0.5"), simulate(ONE, "1e-20", result=flow))
    # at η = 1 the fitted minimum of p ← p(1 + η(1 − p))² has slope 1 − 2η = −1: descent never settles there
    with pytest.raises(IntegrationError, match="did not settle on the block of jump 1"):
        predict(ONE, "1e-20", lr=1)


def test_cli_descent_json_compare(capsys, one_file):
    code, out, _ = run(capsys, "predict", one_file, "--lambda", "1e-20", "--lr", "0.5", "--compare", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["lr"] == "1/2" and "descent" in data["method"]
    assert data["jumps"][0]["drop_time"] == pytest.approx(descent_drop(1e-20, 0.5), abs=1e-7)
    assert abs(data["comparison"]["drop_time_differences"][0]) < 1e-6


def test_descent_resolves_a_tie_as_the_simulated_descent_does():
    """Tied neurons sharing a sample split it by the descent map, not the flow: the resolved N is the
    simulated descent's, and where λ puts the iterates moves the splits by about 1e-9 only."""
    from limitproc.flow.ties import DESCENT_METHOD

    flow = solve_resolved(TIE).ties
    resolved = solve_resolved(TIE, lr="0.5")
    assert resolved.ties.method == DESCENT_METHOD and resolved.ties.in_interval
    result = resolved.result
    run = simulate(TIE, "1e-60", result=result, method="gd", lr=0.5)
    assert resolved.ties.sq_norm == pytest.approx(run.final_sq_norm, abs=1e-6)
    assert abs(resolved.ties.sq_norm - flow.sq_norm) > 1e-3  # the flow's split would be off by far more
    norms = [predict_offsets(result, log_inv_lambda=L).windows[0] for L in (100.0, 100.3, 100.7)]
    sq = np.array([[w.a[row] ** 2 + (w.u[row] ** 2).sum() for row in range(2)] for w in norms])
    assert np.abs(sq - sq[0]).max() < 1e-7


def test_a_tiny_step_is_refused_before_any_step():
    """η = 1e-9 on ONE (μ = 1) would take 30/(η μ) = 3e10 steps: refused by the descent_steps guard,
    unless raised; the simulator's descent refuses its t/η likewise."""
    from limitproc.limits import limits

    for run_it in (lambda: predict(ONE, "1e-20", lr="1e-9"), lambda: simulate(ONE, "1e-20", method="gd", lr=1e-9)):
        with pytest.raises(InputError, match="^lr: descent .* above the guard descent_steps = 1000000"):
            run_it()
    with limits(descent_steps=10**5):  # 30/η = 3000 steps fit; 300 do not
        assert predict(ONE, "1e-20", lr="0.01").drop_times[0] == pytest.approx(descent_drop(1e-20, 0.01), abs=1e-8)
    with limits(descent_steps=300), pytest.raises(InputError, match="descent_steps = 300"):
        predict(ONE, "1e-20", lr="0.01")


def test_mean_field_scaling_reports_m_times_the_losses_and_norms():
    """Under mean-field scaling (docs/theory.md, "Conventions") the flow is the same in the same time, and
    losses and squared norms are m times the spec's: so are the simulation's and the prediction's,
    whose drops then still cross the limit's (mean-field) midpoints at the same times."""
    p = generate(10, 6, seed=4, magnitudes=True)
    field = p.with_scaling("mean-field")
    for run in (
        lambda q: predict(solve(q), "1e-60"),
        lambda q: simulate(q, "1e-60", result=solve(q)),
        lambda q: predict(solve(q, lr=1), "1e-60"),
    ):
        spec, mf = run(p), run(field)
        assert np.isfinite(mf.drop_times).all() and np.allclose(mf.drop_times, spec.drop_times, rtol=1e-12, atol=0)
        assert np.allclose(mf.loss, 6 * spec.loss, rtol=1e-15, atol=0)
        assert mf.final_sq_norm == pytest.approx(6 * spec.final_sq_norm, rel=1e-14)
        assert np.allclose(mf.log_sq_norms, spec.log_sq_norms + math.log(6), rtol=0, atol=1e-12, equal_nan=True)
    resolved = solve_resolved(TIE.with_scaling("mean-field")).ties  # m = 3: its N in the mean-field interval
    assert resolved.in_interval and resolved.sq_norm == pytest.approx(3 * solve_resolved(TIE).ties.sq_norm, rel=1e-14)
