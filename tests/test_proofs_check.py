import dataclasses
import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from limitproc import Problem, generate
from limitproc.probability import p_interpolate
from proofs_check import Case, Outcome, claim, claims, run
from proofs_check.cli import main
from proofs_check.registry import REGISTRY

BUILTIN = [
    "alignment",
    "plateaus",
    "jump-times",
    "offsets",
    "escape-order",
    "critical-points",
    "strict-saddle",
    "conservation",
    "interpolation-iff-covered",
    "norm-formula",
    "norm-ratio",
    "probability",
    "tie-split",
    "identical-block-invariance",
]
SPEC_EXAMPLES = {
    "ex1": dict(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)]),
    "ex2": dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]]),
    "ex3": dict(labels=["1/2", 3, -1], sq_norms=[4, "1/4", 1], signs=[1, 1, -1], active=[[0, 1], [0, 2], [0, 1, 2]]),
}
# random cases without ties, whose jump times are well separated at λ ≤ 1e-10
RANDOM = [
    (6, 4, "pm1", "unit", 0),
    (6, 4, "pm1", "unit", 1),
    (7, 5, "gauss", "uniform", 2),
    (8, 4, "uniform", "unit", 0),
    (8, 4, "uniform", "unit", 1),
    (5, 3, "gauss", "uniform", 1),
]
TIE = dict(
    labels=[1, 1, 1, -1],
    signs=[1, 1, -1],
    active=[[0, 1, 3], [1, 2], [0, 3]],
    magnitudes=np.abs(np.random.default_rng(3).standard_normal((3, 4))),
)


def _random(n, m, labels, norms, seed):
    return generate(n, m, labels=labels, norms=norms, seed=seed)


def test_builtin_claims_are_registered():
    registry = claims()
    assert set(BUILTIN) <= set(registry)
    assert all(registry[c].statement and registry[c].section.startswith("§") for c in BUILTIN)


@pytest.mark.parametrize("name", list(SPEC_EXAMPLES))
def test_all_claims_pass_on_the_spec_examples(name):
    report = run(Case(Problem(**SPEC_EXAMPLES[name])), BUILTIN)
    assert report.passed, report.render()


@pytest.mark.parametrize("params", RANDOM, ids=[f"{p[0]}-{p[1]}-{p[2]}-{p[4]}" for p in RANDOM])
def test_all_claims_pass_on_random_cases(params):
    case = Case(_random(*params))
    assert not any(j.tie for j in case.limit.jumps)
    report = run(case, BUILTIN)
    assert report.passed, report.render()


def test_all_claims_pass_on_an_overlapping_tie():
    case = Case(Problem(**TIE))
    assert case.limit.jumps[0].shared.tolist() == [1]
    report = run(case, BUILTIN)
    assert report.passed, report.render()
    assert dict(report.rows)["tie-split"].measured < 1e-6


@pytest.mark.parametrize("spec", [SPEC_EXAMPLES["ex2"], {"labels": [1, 2, -1], "signs": [1, 1, -1], "active": [[0, 1], [0, 1], [2]]}])
def test_all_claims_pass_in_mean_field_units(spec):
    """Mean-field losses and norms are m times the spec's (docs/theory.md, conventions): the claims compare
    like with like, and the case keeps the scaling when it draws magnitudes."""
    case = Case(Problem(**spec, scaling="mean-field"))
    assert case.problem.scaling == "mean-field" and case.problem.magnitudes is not None
    report = run(case, BUILTIN)
    assert report.passed, report.render()


# -- every check fails on a deliberately wrong input -------------------------------------------
@pytest.fixture(scope="module")
def base():
    case = Case(Problem(**SPEC_EXAMPLES["ex2"]), lambdas=(1e-50, 1e-75, 1e-100))
    assert not case.shortfall()  # deep enough: a wrong limit fails, it is not inconclusive
    for lam in case.lambdas:
        case.simulation(lam)
    return case


def _with(base, limit=None, **settings):
    return Case(base.problem, lambdas=base.lambdas, settings=settings, limit=limit, simulations=dict(base.simulations))


def _shift(value, delta):
    prog = value.program
    return prog.value(prog.add(value.node, prog.const(delta)))


def _check(case, cid) -> Outcome:
    return REGISTRY[cid].check(case)


def test_alignment_catches_a_wrong_aligned_set(base):
    active = base.problem.active_matrix().copy()
    active[2, 3] = False  # neuron 2 no longer aligned with sample 3
    wrong = Problem(base.problem.labels, base.problem.signs, active, magnitudes=base.problem.magnitudes)
    outcome = _check(_with(base, Case(wrong).limit), "alignment")
    assert not outcome.passed and outcome.measured == 1 and "[[2, 3]]" in outcome.detail


def test_plateaus_catch_a_wrong_plateau_loss(base):
    saddles = list(base.limit.saddles)
    saddles[2] = dataclasses.replace(saddles[2], loss=saddles[2].loss + Fraction(1, 20))
    assert not _check(_with(base, dataclasses.replace(base.limit, saddles=saddles)), "plateaus").passed


def test_jump_times_catch_a_perturbed_time(base):
    jumps = list(base.limit.jumps)
    jumps[1] = dataclasses.replace(jumps[1], tau=_shift(jumps[1].tau, Fraction(1, 100)))
    outcome = _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "jump-times")
    assert not outcome.passed and outcome.measured == pytest.approx(0.01, abs=1e-3)


def test_offsets_catch_a_perturbed_time(base):
    jumps = list(base.limit.jumps)
    jumps[2] = dataclasses.replace(jumps[2], tau=_shift(jumps[2].tau, Fraction(1, 1000)))
    assert _check(base, "offsets").passed
    outcome = _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "offsets")
    assert not outcome.passed and outcome.measured == pytest.approx(1e-3 * math.log(1e100), abs=1e-3)


def test_escape_order_catches_a_wrong_block(base):
    jumps = list(base.limit.jumps)
    jumps[0] = dataclasses.replace(jumps[0], blocks={2: np.array([1, 3])})  # drops sample 5
    assert not _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "escape-order").passed


def test_escape_order_catches_a_wrong_neuron(base):
    jumps = list(base.limit.jumps)
    jumps[0] = dataclasses.replace(jumps[0], neurons=(0,), blocks={0: jumps[0].blocks[2]})
    assert not _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "escape-order").passed


def test_critical_points_catch_a_wrong_block_norm(base):
    saddles = list(base.limit.saddles)
    saddles[1] = dataclasses.replace(saddles[1], block_norms={2: saddles[1].block_norms[2] * 2})
    assert not _check(_with(base, dataclasses.replace(base.limit, saddles=saddles)), "critical-points").passed


def test_critical_points_catch_a_doubly_fitted_sample(base):
    saddles = list(base.limit.saddles)
    escaped = dict(saddles[3].escaped)
    escaped[0] = np.array([0, 1])  # sample 1 is neuron 2's: it would be fitted twice
    saddles[3] = dataclasses.replace(saddles[3], escaped=escaped)
    outcome = _check(_with(base, dataclasses.replace(base.limit, saddles=saddles)), "critical-points")
    assert not outcome.passed and "dL/du" in outcome.detail


def test_strict_saddle_catches_a_wrong_rate(base):
    jumps = list(base.limit.jumps)
    jumps[1] = dataclasses.replace(jumps[1], rates={1: _shift(jumps[1].rates[1], Fraction(1, 1000))})
    assert not _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "strict-saddle").passed


def test_conservation_catches_a_drift(base):
    case = _with(base)
    sim = dataclasses.replace(case.simulation(1e-75), balance=case.simulation(1e-75).balance.copy())
    sim.balance[len(sim.balance) // 2, 1] += 1e-4
    case.simulations["1e-75"] = sim
    assert not _check(case, "conservation").passed


def test_interpolation_catches_a_wrong_uncovered_set(base):
    wrong = dataclasses.replace(base.limit, uncovered=np.array([3]))
    assert not _check(_with(base, wrong), "interpolation-iff-covered").passed


def test_norm_formula_catches_a_wrong_norm(base):
    wrong = dataclasses.replace(base.limit, sq_norm=_shift(base.limit.sq_norm, Fraction(1, 10)))
    assert not _check(_with(base, wrong), "norm-formula").passed


def test_norm_ratio_catches_a_tight_bound_and_a_wrong_minimum(base):
    assert _check(base, "norm-ratio").passed
    assert not _check(_with(base, norm_ratio_bound=1.0), "norm-ratio").passed
    prog, n_min = base.limit.program, base.limit.min_sq_norm
    doubled = prog.value(prog.mul(prog.const(2), n_min.node))  # 2 N_min > N
    wrong = dataclasses.replace(base.limit, min_sq_norm=doubled)
    assert not _check(_with(base, wrong), "norm-ratio").passed


def test_probability_catches_a_wrong_formula(base):
    def wrong(n_pos, n_neg, m):  # the formula for one neuron fewer
        return p_interpolate(n_pos, n_neg, m - 1)

    assert not _check(_with(base, user_p_interpolate=wrong), "probability").passed


def test_tie_split_catches_a_wrong_split():
    case = Case(Problem(**TIE))
    split = case.ties.splits[1]
    bad = dataclasses.replace(split, shares={1: {0: split.shares[1][0] + 0.01, 1: split.shares[1][1] - 0.01}})
    wrong = dataclasses.replace(case.ties, splits={1: bad})
    outcome = _check(Case(case.problem, ties=wrong, simulations=case.simulations), "tie-split")
    assert not outcome.passed and outcome.measured == pytest.approx(0.01, abs=1e-4)
    # the norm claims read the resolved N of the case's resolution
    off = dataclasses.replace(case.ties, sq_norm=case.ties.sq_norm * 1.01)
    outcome = _check(Case(case.problem, ties=off, simulations=case.simulations), "norm-formula")
    assert not outcome.passed and outcome.measured == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert _check(Case(case.problem, ties=off, simulations=case.simulations), "norm-ratio").measured == pytest.approx(
        _check(case, "norm-ratio").measured * 1.01, rel=1e-12
    )


# -- user claims, entry points, CLI ------------------------------------------------------------
def test_user_claim_by_decorator():
    @claim("user-loss-decreases", "Gradient flow never increases the loss: dL/dt = −||∇L||² ≤ 0.", "§1")
    def check(case):
        sim = case.smallest()
        rise = float(np.max(np.diff(sim.loss), initial=0.0))
        return Outcome(rise <= 1e-12, rise, 1e-12, "largest rise between steps")

    try:
        report = run(Case(Problem(**SPEC_EXAMPLES["ex1"])), ["user-loss-decreases"])
        assert report.passed and report.to_dict()["claims"][0]["id"] == "user-loss-decreases"
    finally:
        REGISTRY.pop("user-loss-decreases")


def test_a_check_that_raises_is_reported_as_failed():
    @claim("user-broken", "A check with a bug.", "§1")
    def broken(case):
        raise ZeroDivisionError("oops")

    try:
        report = run(Case(Problem(**SPEC_EXAMPLES["ex1"])), ["user-broken"])
        assert not report.passed and "ZeroDivisionError: oops" in report.rows[0][1].detail
    finally:
        REGISTRY.pop("user-broken")


def test_entry_point_claims_are_loaded(monkeypatch):
    import importlib.metadata

    from proofs_check.registry import ENTRY_POINT_GROUP, Claim

    plugin = Claim("plugin-n-positive", "n ≥ 1.", "§1", lambda case: Outcome(case.problem.n >= 1, case.problem.n, ">= 1"))

    class EP:
        name = "plugin"

        def load(self):
            return plugin

    def fake(group=None, **kw):
        return [EP()] if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    try:
        assert "plugin-n-positive" in claims()
    finally:
        REGISTRY.pop("plugin-n-positive", None)


def test_cli_run_json_and_exit_codes(tmp_path, capsys):
    case_file = tmp_path / "ex2.json"
    Problem(**SPEC_EXAMPLES["ex2"]).to_file(case_file)
    out = tmp_path / "report.json"
    args = ["run", "--case", str(case_file), "--claim", "plateaus", "--claim", "jump-times", "--lambdas", "1e-10,1e-20,1e-40"]
    assert main([*args, "--report", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] is True and [c["id"] for c in data["claims"]] == ["plateaus", "jump-times"]
    assert set(data["claims"][0]) == {"id", "status", "passed", "measured", "tolerance", "detail"}
    assert data["status"] == "passed" and data["claims"][0]["status"] == "passed"
    # a single λ cannot extrapolate: the claim fails, exit status 1
    assert main(["run", "--case", str(case_file), "--claim", "jump-times", "--lambdas", "1e-20"]) == 1
    assert main(["run", "--claim", "no-such-claim"]) == 2
    assert main(["run", "--case", str(tmp_path / "missing.json")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", "--lambdas", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no-such-claim" in err


def test_python_m_is_the_same_program():
    listing = subprocess.run([sys.executable, "-m", "proofs_check", "list"], capture_output=True, text=True, check=True).stdout
    assert main(["list"]) == 0
    assert all(c in listing for c in BUILTIN)
    assert "example:" in subprocess.run([sys.executable, "-m", "proofs_check", "run", "--help"], capture_output=True, text=True).stdout


# -- λ, verdicts, no-jump problems, the report --------------------------------------------------
def test_one_lambda_parser_everywhere():
    from limitproc.errors import InputError
    from limitproc.flow.simulate import parse_lambda

    assert parse_lambda("1e-10000") == (pytest.approx(10000 * math.log(10)), "1e-10000")
    assert parse_lambda(1e-20) == (pytest.approx(20 * math.log(10)), "1e-20")
    case = Case(Problem(**SPEC_EXAMPLES["ex1"]), lambdas=("1e-400", 1e-20))
    assert case.lambdas_descending == ["1e-20", "1e-400"]
    assert case.smallest().log_inv_lambda == pytest.approx(400 * math.log(10))
    for bad in [(2,), ("x",), (0.0,), ()]:
        with pytest.raises(InputError) as exc:
            Case(Problem(**SPEC_EXAMPLES["ex1"]), lambdas=bad)
        assert exc.value.field == "lambdas"


def test_auto_ladder_is_deep_enough_for_the_case():
    case = Case(Problem(**SPEC_EXAMPLES["ex2"]))
    # ex2: jumps 2 and 3 at τ = 2.683 and 4.018 need log(1/λ) ≥ 2 (δ + 12/μ) / Δτ; the auto ladder reaches it
    assert case.margin.requirements and not case.shortfall()
    assert Case(case.problem, lambdas=(1e-10, 1e-20)).shortfall()
    assert case.margin.smallest_rate == pytest.approx(min(float(r) for j in case.limit.jumps for r in j.rates.values()))


def test_a_failure_at_too_large_a_lambda_is_inconclusive():
    case = Case(Problem(**SPEC_EXAMPLES["ex2"]), lambdas=(1e-3, 1e-4))
    outcome = _check(case, "jump-times")
    assert outcome.status == "inconclusive" and "needs λ below 1e-" in outcome.detail
    report = run(case, ["jump-times", "critical-points"])
    assert not report.failed and not report.passed and report.status == "inconclusive"


NO_JUMP = dict(labels=[1, -1], signs=[1], active=[[1]])


def test_no_jump_problem_through_every_claim(tmp_path):
    case = Case(Problem(**NO_JUMP))
    assert not case.limit.jumps
    report = run(case, BUILTIN)
    assert report.passed, report.render()
    path = tmp_path / "nojump.json"
    Problem(**NO_JUMP).to_file(path)
    assert main(["run", "--case", str(path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "passed"


def test_report_json_is_safe_for_numpy_values():
    report = run(Case(Problem(**SPEC_EXAMPLES["ex1"])), ["alignment"])
    report.rows.append(("numpy", Outcome(np.bool_(True), np.float64(0.5), np.int64(1), "x")))
    data = json.loads(report.render("json"))
    assert data["claims"][-1]["measured"] == 0.5 and data["claims"][-1]["passed"] is True


def test_norm_ratio_bound_is_the_theorem_sqrt_j():
    # 20 singleton blocks (10 per sign): N/N_min = sqrt(10) exactly, which is the Cauchy–Schwarz bound
    labels = [1] * 10 + [-1] * 10
    p = Problem(labels=labels, signs=[1] * 10 + [-1] * 10, active=[[i] for i in range(20)])
    outcome = _check(Case(p), "norm-ratio")
    assert outcome.passed and outcome.measured == pytest.approx(math.sqrt(10)) and "sqrt(10)" in outcome.tolerance


def test_identical_blocks_give_the_class_norm():
    # the example: neurons 0 and 1 tie on the same block {0, 1}: N = 2 sqrt(1 + 4) + 2 sqrt(1) = 2 + 2 sqrt(5)
    p = Problem(labels=[1, 2, -1], signs=[1, 1, -1], active=[[0, 1], [0, 1], [2]])
    case = Case(p)
    outcome = _check(case, "identical-block-invariance")
    assert outcome.passed and "4 draws" in outcome.detail, outcome.detail
    from proofs_check.builtin import identical_block_norm

    assert identical_block_norm(case.limit) == pytest.approx(2 + 2 * math.sqrt(5))
    # a tampered resolution (a wrong N for the case's draw) fails
    wrong = dataclasses.replace(case.ties, sq_norm=case.ties.sq_norm * 1.001)
    assert not _check(Case(case.problem, ties=wrong), "identical-block-invariance").passed


def test_critical_points_catch_a_wrong_jump_order(base):
    # swap the times of jumps 1 and 2: each saddle is still a critical point, but the order is wrong
    jumps = list(base.limit.jumps)
    jumps[0], jumps[1] = dataclasses.replace(jumps[0], tau=jumps[1].tau), dataclasses.replace(jumps[1], tau=jumps[0].tau)
    outcome = _check(_with(base, dataclasses.replace(base.limit, jumps=jumps)), "critical-points")
    assert not outcome.passed and "order" in outcome.detail


def test_critical_points_and_strict_saddle_check_saddles_after_an_overlapping_tie():
    case = Case(Problem(**TIE))
    assert not case.limit.saddles[-1].determined
    for cid in ("critical-points", "strict-saddle"):
        outcome = _check(case, cid)
        assert outcome.passed and "not checked" not in outcome.detail, outcome.detail


def _varied_cases(count, seed=0):
    rng = np.random.default_rng(seed)
    for k in range(count):
        n, m = int(rng.integers(4, 41)), int(rng.integers(2, 13))
        yield n, m, ["pm1", "uniform", "gauss"][k % 3], ["unit", "uniform"][(k // 3) % 2], k


@pytest.mark.slow
@pytest.mark.parametrize("params", list(_varied_cases(100)), ids=lambda p: "-".join(map(str, p)))
def test_default_settings_never_fail_a_correct_engine(params):
    n, m, labels, norms, seed = params
    # the auto ladder capped at 1e-60 keeps 100 cases within minutes; a claim the cap leaves
    # undecided must say so (inconclusive, with its reason), and none may fail
    report = run(Case(generate(n, m, labels=labels, norms=norms, seed=seed), seed=seed, settings={"deepest_digits": 60}))
    assert not report.failed, report.render()
    for cid, outcome in report.rows:
        assert outcome.status == "passed" or (outcome.status == "inconclusive" and outcome.detail), (cid, outcome)


# -- gradient descent (theory §11) ----------------------------------------------------------------
FLOW_ONLY = {"offsets", "conservation", "tie-split", "identical-block-invariance"}


@pytest.fixture(scope="module")
def descent_ex2():
    case = Case(Problem(**SPEC_EXAMPLES["ex2"]), lr=1)
    return case, run(case, [*BUILTIN, "descent-times"])


def test_descent_case_passes_the_applicable_claims_and_marks_the_others(descent_ex2):
    case, report = descent_ex2
    outcomes = dict(report.rows)
    for cid, outcome in outcomes.items():
        if cid in FLOW_ONLY:
            assert outcome.status == "inconclusive", (cid, outcome)
            assert outcome.detail.startswith("not applicable under gradient descent (η = 1): "), outcome.detail
        else:
            assert outcome.status == "passed", report.render()
    assert report.lr == "1" and "gradient descent, η = 1" in report.render() and json.loads(report.render("json"))["lr"] == "1"
    # what was checked is descent: the ρ process (derived here from theory §4 with ρ = log(1 + η μ)/η)
    # and the descent map. Example 2's first escape: neuron 2 on {1, 3, 5}, μ = 2c sqrt(2² + 3² + 1²) = sqrt(14)/6 (c = 1/12)
    mu = math.sqrt(14) / 6
    assert float(case.limit.jumps[0].tau) == pytest.approx(1 / math.log1p(mu), rel=1e-14)
    assert case.smallest().method == "gd" and case.smallest().lr == 1.0
    assert "gradient descent, η = 1" in outcomes["jump-times"].detail


def test_descent_claims_catch_the_flow_limit(descent_ex2):
    case, _ = descent_ex2
    from limitproc import solve

    wrong = Case(case.problem, lambdas=case.lambdas, lr=1, limit=solve(case.problem), simulations=dict(case.simulations))
    assert REGISTRY["jump-times"].check(wrong).status == "failed"  # flow times 1.60, ... against descent's 2.06, ...
    critical = REGISTRY["critical-points"].check(wrong)
    assert critical.status == "failed" and "order" in critical.detail  # S_j = ∫ρ does not reach 1 at the flow's τ_1


def test_cli_descent_and_bad_steps(tmp_path, capsys):
    case_file = tmp_path / "ex2.json"
    Problem(**SPEC_EXAMPLES["ex2"]).to_file(case_file)
    out = tmp_path / "r.json"
    args = ["run", "--case", str(case_file), "--claim", "plateaus", "--claim", "offsets", "--lr", "1/2", "--format", "json", "-o", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["lr"] == "1/2" and [c["status"] for c in data["claims"]] == ["passed", "inconclusive"]
    assert main(["run", "--case", str(case_file), "--lr", "-1"]) == 2
    assert main(["run", "--case", str(case_file), "--lr", "100"]) == 2  # η μ ≥ 2: descent is unstable, the limit does not apply
    err = capsys.readouterr().err
    assert "--lr: must be positive" in err and "--lr: step 100 makes gradient descent unstable" in err and "Traceback" not in err
    # lr = 0 is gradient flow: the same case as without a step
    assert Case(Problem(**SPEC_EXAMPLES["ex2"]), lr=0).lr is None
