"""The built-in claims of the theory (docs/theory.md §2-§7), each checked on a :class:`~proofs_check.case.Case`.

The limit under test is ``case.limit``; the finite-λ flow is ``case.simulation(λ)``. Exact claims
(critical points, strict saddles, norm ratio) are decided in exact arithmetic; claims about the
simulation compare floats with the stated tolerance.

Under gradient descent (a case with a step ``lr``, theory §11) every claim is either about descent
or says it does not apply: ``case.limit`` is the ``ρ`` process and ``case.simulation(λ)`` runs the
descent map, so the claims on plateaus, times, blocks, interpolation, norms and saddles check
descent; the exact order of the saddles uses the rates ``ρ``. ``offsets``, ``tie-split`` and
``identical-block-invariance`` rest on the flow's O(1) dynamics (:mod:`limitproc.flow.offsets`,
:mod:`limitproc.flow.ties`) and ``conservation`` on a flow invariant that a finite step breaks:
they are inconclusive, with "not applicable under gradient descent" and the reason.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from limitproc.flow.simulate import extrapolate, float_labels
from limitproc.saddles import loss_gradient, residuals

from .registry import Outcome, claim

__all__ = [
    "CONSERVATION_TOL",
    "DESCENT_TAU_TOL",
    "DRAWS",
    "NORM_TOL",
    "OFFSET_TOL",
    "PLATEAU_TOL",
    "RESIDUAL_FITTED",
    "RESOLVED_TOL",
    "SHARE_FITTED",
    "SPLIT_TOL",
    "TAU_FIT_TOL",
    "check_alignment",
    "check_conservation",
    "check_critical_points",
    "check_descent_times",
    "check_escape_order",
    "check_identical_blocks",
    "check_interpolation",
    "check_jump_times",
    "check_norm_formula",
    "check_norm_ratio",
    "check_offsets",
    "check_plateaus",
    "check_probability",
    "check_strict_saddle",
    "check_tie_split",
    "coverage_monte_carlo",
    "descent_step",
    "identical_block_norm",
    "wilson_interval",
]

# tolerances of the simulation-based claims (defaults of the built-in checks)
PLATEAU_TOL = 1e-3  # |L_sim − L_k| / L_0 inside a plateau
TAU_FIT_TOL = 5e-3  # |extrapolated τ_k − τ_k|
OFFSET_TOL = 1e-2  # |simulated − predicted offset| at the smallest λ
SHARE_FITTED = 0.5  # a neuron "fits" sample i in the simulation when its share a_j σ(u_ji)/y_i exceeds this
RESIDUAL_FITTED = 1e-2  # |r_i| / |y_i| below this: fitted; above 1 − this: untouched
CONSERVATION_TOL = 1e-6  # drift of a_j² − ||w_j||², relative to a_j² + ||w_j||²
NORM_TOL = 1e-3  # relative error of the simulated final squared norm at the smallest λ
SPLIT_TOL = 1e-3  # |simulated share − resolved share|
RESOLVED_TOL = 1e-6  # relative accuracy of an N resolved from the magnitudes (the chain's floats)
DRAWS = 3  # identical-block-invariance: magnitude draws besides the case's


def _flow_only(case, tolerance, why: str) -> Outcome | None:
    """Under gradient descent, the verdict of a claim about the flow alone: inconclusive, with the reason
    (None under gradient flow: the claim applies)."""
    lr = getattr(case, "lr", None)
    if lr is None:
        return None
    return Outcome(False, "n/a", tolerance, f"not applicable under gradient descent (η = {lr}): {why}", inconclusive=True)


def _dynamics(case) -> str:
    """How the simulations were run, for a claim's detail."""
    lr = getattr(case, "lr", None)
    return "" if lr is None else f"gradient descent, η = {lr}: "


def _finite_lambda(case, ok: bool, measured, tolerance, detail: str) -> Outcome:
    """The verdict of a claim about the finite-λ flow: a failure at a λ that the case's margin says
    is not small enough is inconclusive, with the reasons."""
    if ok:
        return Outcome(True, measured, tolerance, detail)
    short = case.shortfall()
    if short:
        return Outcome(False, measured, tolerance, f"{detail}; λ not small enough: {'; '.join(short)}", inconclusive=True)
    return Outcome(False, measured, tolerance, detail)


@claim(
    "alignment",
    """After the alignment phase (O(1) time, τ → 0) the active coordinates are exactly the aligned
    sets: u_ji > 0 iff i ∈ A_j = {i : <g_j, x_i> > 0 and s_j y_i > 0}; misaligned coordinates have died.""",
    "§3",
)
def check_alignment(case) -> Outcome:
    # the claim is asymptotic: judged at the smallest λ (a coordinate with a small |y_i| can take
    # longer than τ_1/2 · log(1/λ) to die at a larger λ); the larger λ are reported
    expected = case.limit.problem.aligned_matrix()
    bad = np.argwhere(case.smallest().pattern_after_alignment != expected)
    larger = [f"e^-{sim.log_inv_lambda:.4g}: {n}" for sim in case.ladder() if (n := int((sim.pattern_after_alignment != expected).sum()))]
    detail = f"(neuron, sample) {bad[:5].tolist()} at the smallest λ" if len(bad) else "pattern at τ_1/2 equals A_j at the smallest λ"
    if larger:
        detail += f"; coordinates not yet settled at larger λ: {', '.join(larger)}"
    return _finite_lambda(case, len(bad) == 0, len(bad), 0, detail)


@claim(
    "plateaus",
    """Between jumps the loss sits at the exact plateau values L_k = c Σ_{i ∉ F_k} y_i²: inside plateau
    k (halfway between τ_k and τ_{k+1}) the simulated loss equals L_k up to o(1) as λ → 0.""",
    "§4",
)
def check_plateaus(case) -> Outcome:
    sim = case.smallest()
    losses = [float(s.loss) for s in case.limit.saddles]
    if len(losses) != len(sim.plateau_states):
        return _finite_lambda(
            case, False, "n/a", PLATEAU_TOL, f"{len(losses)} plateaus in the limit, {len(sim.plateau_states)} in the simulation"
        )
    c = float(case.problem.loss_factor * case.problem.unit_factor)  # the plateaus are in the problem's units
    y = float_labels(case.problem)
    errors = [abs(c * float(((a @ np.maximum(u, 0.0) - y) ** 2).sum()) - L) for (a, u), L in zip(sim.plateau_states, losses)]
    worst = max(errors) / losses[0]
    k = int(np.argmax(errors))
    return _finite_lambda(
        case, worst <= PLATEAU_TOL, worst, PLATEAU_TOL, f"largest at plateau {k} (L_{k} = {case.limit.saddles[k].loss}), relative to L_0"
    )


@claim(
    "jump-times",
    """The k-th loss drop of the flow happens at t_k = τ_k log(1/λ) + δ_k + o(1): the fit of t_k against
    log(1/λ) over a λ ladder extrapolates to the exact τ_k.""",
    "§4, §9",
)
def check_jump_times(case) -> Outcome:
    if len(case.lambdas) < 2:
        return Outcome(False, "n/a", TAU_FIT_TOL, "needs at least two λ")
    sims = case.ladder()
    taus = np.array([float(j.tau) for j in case.limit.jumps])
    ext = extrapolate(sims)
    if len(taus) != len(ext.tau) or np.isnan(ext.drop_times).any():
        return _finite_lambda(case, False, "n/a", TAU_FIT_TOL, f"{len(taus)} jumps in the limit, drops seen: {ext.drop_times.tolist()}")
    if not len(taus):
        return Outcome(True, 0.0, TAU_FIT_TOL, "no jumps")
    offsets = ext.drop_times - taus[None, :] * ext.log_inv_lambdas[:, None]
    spread = float((offsets.max(axis=0) - offsets.min(axis=0)).max())
    fit_err = float(np.abs(ext.tau - taus).max())
    # the spread of the offsets over the ladder is shown, not judged: it is a finite-λ effect the fit absorbs
    detail = (
        f"{_dynamics(case)}extrapolated τ {np.round(ext.tau, 5).tolist()}; offsets δ_k ≈ {np.round(offsets[-1], 3).tolist()}, "
        f"spread over the ladder {spread:.3g}"
    )
    return _finite_lambda(case, fit_err <= TAU_FIT_TOL, fit_err, TAU_FIT_TOL, detail)


@claim(
    "offsets",
    """The offsets δ_k of t_k = τ_k log(1/λ) + δ_k are the O(1) quantities predicted, from the initial
    magnitudes alone, by the chain of λ-free windows of limitproc.flow.offsets (alignment prefactors, then each
    jump's coupled escape): at the smallest λ the simulated offsets equal the predicted ones, and equal
    those of an independent integration (the other coordinates where both apply, else a 10× tighter rtol).""",
    "§6, §9",
)
def check_offsets(case) -> Outcome:
    if na := _flow_only(case, OFFSET_TOL, "the offsets are predicted by integrating the flow's O(1) windows (limitproc.flow.offsets)"):
        return na
    taus = np.array([float(j.tau) for j in case.limit.jumps])
    predicted = np.array(case.prediction.offsets)
    sim = case.smallest()
    lam = case.lambdas_descending[-1]
    other = (
        case.simulation(lam, coordinates="log-scale")
        if sim.coordinates == "direct"
        else case.simulation(lam, coordinates="log-scale", rtol=case.settings["rtol"] / 10)
    )
    if not len(sim.drop_times) == len(other.drop_times) == len(taus):
        return _finite_lambda(case, False, "n/a", OFFSET_TOL, f"{len(taus)} jumps in the limit, {len(sim.drop_times)} drops simulated")
    simulated, independent = sim.drop_offsets(taus), other.drop_offsets(taus)
    err = float(np.nan_to_num(np.abs(simulated - predicted), nan=np.inf).max(initial=0.0))
    err_other = float(np.nan_to_num(np.abs(simulated - independent), nan=np.inf).max(initial=0.0))
    detail = (
        f"predicted δ {np.round(predicted, 4).tolist()}, simulated {np.round(simulated, 4).tolist()}, "
        f"{other.coordinates} path (rtol {case.settings['rtol'] if sim.coordinates == 'direct' else case.settings['rtol'] / 10:g}) "
        f"differs by {err_other:.2g}"
    )
    return _finite_lambda(case, max(err, err_other) <= OFFSET_TOL, max(err, err_other), OFFSET_TOL, detail)


@claim(
    "escape-order",
    """At each drop exactly the engine's neurons grow, and each fits the engine's block B = A_j \\ F:
    inside plateau k the samples whose output a neuron carries (share a_j σ(u_ji)/y_i > 1/2) are its
    block if it escaped by jump k, and none otherwise (shared samples of a tie: the tied neurons' shares sum to 1).""",
    "§4",
)
def check_escape_order(case) -> Outcome:
    sim = case.smallest()
    p = case.problem
    y = float_labels(p)
    expected = np.zeros((p.m, p.n), bool)
    shared = np.zeros((p.m, p.n), bool)
    mismatches, first = 0, ""
    for k, (a, u) in enumerate(sim.plateau_states):
        if k:
            jump = case.limit.jumps[k - 1] if k - 1 < len(case.limit.jumps) else None
            if jump is None:
                return _finite_lambda(case, False, "n/a", 0, "the simulation has more plateaus than the limit has jumps")
            for j, block in jump.blocks.items():
                expected[j, block] = True
                shared[j, jump.shared] = expected[j, jump.shared]
        share = a[:, None] * np.maximum(u, 0.0) / y[None, :]
        seen = share > SHARE_FITTED
        bad = (seen != expected) & ~shared
        tied_cols = np.flatnonzero(shared.any(axis=0))
        tie_bad = np.abs(np.where(shared, share, 0.0)[:, tied_cols].sum(axis=0) - 1) > RESIDUAL_FITTED
        count = int(bad.sum() + tie_bad.sum())
        if count and not first:
            first = f"plateau {k}: (neuron, sample) pairs {np.argwhere(bad)[:5].tolist()}"
        mismatches += count
    return _finite_lambda(case, mismatches == 0, mismatches, 0, first or f"{len(sim.plateau_states)} plateaus agree at the smallest λ")


def _exact_data(problem):
    """``(c, q, y)`` of the problem as sympy rationals."""
    import sympy

    def rat(x):
        return sympy.Rational(x.numerator, x.denominator)

    return rat(problem.loss_factor), [rat(x) for x in problem.sq_norms], [rat(y) for y in problem.labels]


def _is_zero(x) -> bool:
    import sympy

    return sympy.simplify(x) == 0


def _network(case, saddle):
    """Exact ``{j: (a_j, {i: u_ji})}`` of ``saddle``; after an overlapping tie, with the case's resolved
    split rounded to rational shares θ_ji summing to 1 (a_j = s_j (Σ θ_ji² y_i²/q_i)^{1/4},
    u_ji = θ_ji y_i / a_j: any such split is a critical point). None if unresolved."""
    import sympy

    p = case.problem
    if saddle.determined:
        return saddle.network(p)
    if case.ties is None:
        return None
    theta: dict[tuple[int, int], Fraction] = {}
    blocks = {j: set(block.tolist()) for j, block in saddle.escaped.items()}
    for split in case.ties.splits.values():
        if split.k <= saddle.k:
            for i, row in split.shares.items():
                # only the neurons whose block holds sample i share it (a third tied neuron has share 0)
                js = sorted(j for j in row if i in blocks.get(j, ()))
                parts = [max(Fraction(row[j]).limit_denominator(10**6), Fraction(0)) for j in js[:-1]]
                theta.update({(j, i): x for j, x in zip(js, [*parts, 1 - sum(parts)])})
    _, q, y = _exact_data(p)
    network = {}
    for j, block in saddle.escaped.items():
        shares = {int(i): sympy.Rational(*_ratio(theta.get((j, int(i)), Fraction(1)))) for i in block}
        shares = {i: t for i, t in shares.items() if t > 0}
        a = int(p.signs[j]) * sum(t**2 * y[i] ** 2 / q[i] for i, t in shares.items()) ** sympy.Rational(1, 4)
        network[j] = (a, {i: t * y[i] / a for i, t in shares.items()})
    return network


def _ratio(x: Fraction) -> tuple[int, int]:
    return x.numerator, x.denominator


def _order_defects(limit, eta: Fraction | None = None) -> tuple[list[str], int]:
    """Exactly, at each jump k: the exponent S_j(τ_k) = ∫_0^τ_k μ_j of every neuron not yet escaped is 1
    for the escaping neurons and below 1 for the others (a wrong jump order or time shows here).
    The rates μ_j = 2c sqrt(Σ_{A_j \\ F} y_i² q_i) are recomputed from the problem and the jumps' blocks;
    under gradient descent with step ``eta`` (the case's, not the limit's) they are ρ_j = log(1 + η μ_j)/η. Returns the defects and how
    many escapes have S_j = 1 only to the balls' precision (not certified: with logarithms there is
    no canonical form to decide an equality)."""
    p, prog = limit.problem, limit.program
    aligned = p.aligned_matrix()
    weights = [(y**2 * q) for y, q in zip(p.labels, p.sq_norms)]
    fitted = np.zeros(p.n, bool)
    S = {j: prog.const(0) for j in range(p.m) if aligned[j].any()}
    one, previous, defects, uncertified = prog.const(1), prog.const(0), [], 0
    for jump in limit.jumps:
        dtau = prog.sub(jump.tau.node, previous)
        for j in S:
            R = sum((weights[i] for i in np.flatnonzero(aligned[j] & ~fitted)), Fraction(0))
            if R:
                rate = prog.sqrt((2 * p.loss_factor) ** 2 * R)
                if eta is not None:
                    rate = prog.mul(prog.const(1 / eta), prog.log(prog.add(one, prog.mul(prog.const(eta), rate))))
                S[j] = prog.add(S[j], prog.mul(rate, dtau))
        for j in S:
            sign, certified = prog.compare(S[j], one)
            if (sign != 0) if j in jump.neurons else (sign >= 0):
                defects.append(f"jump {jump.k}: S_{j}(τ_{jump.k}) {'<>'[sign > 0] if sign else '='} 1")
            elif j in jump.neurons and not certified:
                uncertified += 1
        for j in jump.neurons:
            S.pop(j, None)
        fitted[jump.samples] = True
        previous = jump.tau.node
    return defects, uncertified


@claim(
    "critical-points",
    """Every saddle of the engine is an exact critical point of L: with a_j = s_j Q_j^{1/4},
    u_ji = y_i / a_j on B_j (after an overlapping tie, with the resolved split of the shared samples),
    all gradients vanish exactly (checked in rational/radical arithmetic), each escaped neuron is
    balanced (a_j² = ||w_j||², the flow's invariant from a small start) and the loss is the plateau
    value L_k; and the saddles come in the right order: at each τ_k the escaping neurons' exponents
    S_j = ∫ μ_j reach 1 and every other live neuron's is below 1.""",
    "§4, §5",
)
def check_critical_points(case) -> Outcome:
    import sympy

    p = case.problem
    c, q, _ = _exact_data(p)
    failures, checked, skipped = [], 0, 0
    for saddle in case.limit.saddles:
        net = _network(case, saddle)
        if net is None:
            skipped += 1
            continue
        r = residuals(p, net)
        da, du = loss_gradient(p, net)  # dL/du_ji without the factor q_i > 0 of the flow: the same zeros
        nonzero = [f"dL/da_{j}" for j, g in da.items() if not _is_zero(g)]
        nonzero += [f"dL/du_{j},{i}" for (j, i), g in du.items() if not _is_zero(g)]
        nonzero += [f"a_{j}² ≠ ||w_{j}||²" for j, (a, u) in net.items() if not _is_zero(a**2 - sum(v**2 / q[i] for i, v in u.items()))]
        loss = p.unit_factor * c * sum(x**2 for x in r)  # the network is the spec's, the plateaus in the problem's units
        if not _is_zero(loss - sympy.Rational(saddle.loss.numerator, saddle.loss.denominator)):
            nonzero.append(f"L = {sympy.nsimplify(loss)} ≠ L_{saddle.k} = {saddle.loss}")
        if nonzero:
            failures.append(f"saddle {saddle.k}: {', '.join(nonzero[:4])}")
        checked += 1
    order, uncertified = _order_defects(case.limit, getattr(case, "lr", None))
    if order:
        failures.append("order: " + ", ".join(order[:4]))
    detail = "; ".join(failures) or f"{_dynamics(case)}{checked} saddles exactly critical, in order" + (
        f", {skipped} after an unresolved overlapping tie not checked" if skipped else ""
    ) + (f"; {uncertified} escapes reach S_j = 1 to the balls' precision only (logarithms: not certified)" if uncertified else "")
    return Outcome(not failures, len(failures), 0, detail)


@claim(
    "strict-saddle",
    """Each jump leaves a strict saddle along its escape direction: in the coordinates (a_j, v_i = u_ji/||x_i||),
    i ∈ B, of the zero neuron j, the Hessian block −2c[[0, b^T], [b, 0]] (b_i = y_i ||x_i||, r_i = −y_i)
    maps the escape direction e = (s_j, |b_i|/(n μ_j)) to −μ_j e exactly, with μ_j > 0 the engine's rate.""",
    "§5",
)
def check_strict_saddle(case) -> Outcome:
    import sympy

    p = case.problem
    c, q, _ = _exact_data(p)
    failures, checked, worst, skipped = [], 0, 0.0, 0
    for jump in case.limit.jumps:
        net = _network(case, case.limit.saddles[jump.k - 1])
        if net is None:
            skipped += 1
            continue
        r = residuals(p, net)
        for j in jump.neurons:
            e = jump.escape_direction(j)
            v = {int(i): sympy.sympify(s) for i, s in e.v().items()}
            mu = jump.rates[j].sympy()
            # Hessian of L in (a_j, v_i) at a zero neuron: d²L/da dv_i = 2c r_i ||x_i||
            h = {i: 2 * c * r[i] * sympy.sqrt(q[i]) for i in v}
            Ha = sum((h[i] * v[i] for i in v), sympy.Integer(0))
            defects = [Ha + mu * e.a] + [h[i] * e.a + mu * v[i] for i in v]
            size = max(abs(float(d)) for d in defects)
            worst = max(worst, size)
            bad = not all(_is_zero(d) for d in defects) or not mu > 0 or any(not x > 0 for x in v.values())
            if bad:
                failures.append(f"jump {jump.k}, neuron {j}: H e + μ e = {[sympy.nsimplify(d) for d in defects][:3]}")
            checked += 1
    note = f", {skipped} jumps after an unresolved overlapping tie not checked" if skipped else ""
    return Outcome(not failures, worst, 0, "; ".join(failures) or f"{checked} escape directions are exact −μ eigenvectors{note}")


@claim(
    "conservation",
    """a_j² − ||w_j||² is constant along the flow (d/dt (a_j² − ||w_j||²) = 0 for ReLU): the simulated drift,
    relative to a_j² + ||w_j||², stays at the integrator's error.""",
    "§1",
)
def check_conservation(case) -> Outcome:
    if na := _flow_only(case, CONSERVATION_TOL, "a step changes a_j² − ||w_j||² by η²(|∂L/∂a_j|² − ||∂L/∂w_j||²): not an invariant"):
        return na
    worst = 0.0
    for sim in case.ladder():
        b0 = sim.balance[0][None, :] * np.exp(sim.log_sq_norms[0][None, :] - sim.log_sq_norms)
        drift = np.nan_to_num(np.abs(sim.balance - b0), nan=0.0)
        worst = max(worst, float(drift.max()))
    return Outcome(worst <= CONSERVATION_TOL, worst, CONSERVATION_TOL, f"largest relative drift over {len(case.lambdas)} runs")


@claim(
    "interpolation-iff-covered",
    """The final loss is 0 exactly when every sample is covered (some neuron j with s_j y_i > 0 and
    <g_j, x_i> > 0); an uncovered sample keeps residual −y_i. Checked per sample on the simulation, and
    on the engine's final loss and uncovered set.""",
    "§5",
)
def check_interpolation(case) -> Outcome:
    p, limit = case.problem, case.limit
    covered = p.covered()
    sim = case.smallest()
    rel = np.abs(sim.final_residual()) / np.abs(float_labels(p))
    sim_bad = np.flatnonzero(np.where(covered, rel > RESIDUAL_FITTED, np.abs(rel - 1) > RESIDUAL_FITTED))
    engine_bad = (limit.final_loss == 0) != bool(covered.all()) or set(limit.uncovered.tolist()) != set(np.flatnonzero(~covered).tolist())
    count = len(sim_bad) + int(engine_bad)
    detail = f"simulation disagrees on samples {sim_bad.tolist()}" if len(sim_bad) else ""
    if engine_bad:
        detail += (
            "; " if detail else ""
        ) + f"engine: final loss {limit.final_loss}, uncovered {limit.uncovered.tolist()}, covered {covered.all()}"
    detail = detail or f"{'all covered, interpolates' if covered.all() else f'uncovered {np.flatnonzero(~covered).tolist()} keep r = −y'}"
    if engine_bad:
        return Outcome(False, count, 0, detail)
    return _finite_lambda(case, count == 0, count, 0, detail)


def _engine_norm(case) -> tuple[float | None, str]:
    limit = case.limit
    if limit.sq_norm is not None:
        return float(limit.sq_norm), "exact N"
    if case.ties is not None:
        return case.ties.sq_norm, "N from the resolved tie (approximate)"
    return None, limit.sq_norm_reason or "undetermined"


@claim(
    "norm-formula",
    """The simulated final squared norm Σ_j a_j² + ||w_j||² tends, as λ → 0, to the engine's
    N = 2 Σ_{escaped j} sqrt(Σ_{i∈B_j} y_i²/q_i) (for a resolved overlapping tie, the resolved N).""",
    "§5",
)
def check_norm_formula(case) -> Outcome:
    N, how = _engine_norm(case)
    if N is None and getattr(case, "lr", None) is not None:
        return Outcome(False, "n/a", NORM_TOL, f"no N to compare under gradient descent: {how} (resolving it integrates the flow)", True)
    if N is None:
        return Outcome(False, "n/a", NORM_TOL, f"no N to compare: {how}")
    scale = N or float(case.limit.min_sq_norm)  # N = 0 without a jump: errors relative to N_min
    errs = [abs(s.final_sq_norm - N) / scale for s in case.ladder()]
    relative = "relative" if N else "relative to N_min (N = 0)"
    detail = f"{_dynamics(case)}{how} = {N:.10g}; errors {relative} along the λ ladder {[f'{e:.2g}' for e in errs]}"
    return _finite_lambda(case, errs[-1] <= NORM_TOL, errs[-1], NORM_TOL, detail)


def _min_norm_fitting(limit):
    """Exact ``N_min`` (an ExactValue) for the samples the limit fits: ``2(||ỹ_+|| + ||ỹ_−||)`` over them.

    It is the engine's ``min_sq_norm`` when the limit interpolates (theory §5).
    """
    if limit.interpolates:
        return limit.min_sq_norm
    from limitproc.exact import Program

    p = limit.problem
    fitted = np.ones(p.n, bool)
    fitted[limit.uncovered] = False
    classes = [Fraction(0), Fraction(0)]
    for i in np.flatnonzero(fitted):
        classes[p.labels[i] > 0] += p.labels[i] ** 2 / p.sq_norms[i]
    prog = Program()
    return prog.value(prog.sum(prog.sqrt(4 * Q) for Q in classes if Q))


def _escaped_by_sign(limit) -> tuple[int, int]:
    """``(J_+, J_−)``: escaped neurons with a non-empty block, by sign (a block's labels have its neuron's sign)."""
    signs = [int(limit.problem.signs[j]) for j, block in limit.final.escaped.items() if len(block)]
    return signs.count(1), signs.count(-1)


@claim(
    "norm-ratio",
    """The limit's norm is never below the minimal norm of a network fitting the same samples,
    N_min = 2(||ỹ_+|| + ||ỹ_−||) over them, and never above sqrt(max(J_+, J_−)) N_min, with J_± the
    escaped neurons of each sign (Cauchy–Schwarz over the disjoint blocks: 2 Σ_j sqrt(Q_j) ≤
    2 sqrt(J_± Σ_j Q_j)); or below the user's bound (setting norm_ratio_bound). Certified exactly when N is
    exact; an N resolved from the magnitudes is compared as a float with relative accuracy 1e-6.""",
    "§5",
)
def check_norm_ratio(case) -> Outcome:
    from limitproc.bias import Bias

    limit = case.limit
    n_min = _min_norm_fitting(limit)
    if n_min.form().is_zero():
        return Outcome(True, 1.0, 1.0, "nothing fitted: N = N_min = 0")
    user = case.settings["norm_ratio_bound"]
    J = max(_escaped_by_sign(limit))
    bound_text = f"{user:g} (user)" if user is not None else f"sqrt({J}) (Cauchy–Schwarz)"
    bound = float(user) if user is not None else math.sqrt(J)
    if limit.sq_norm is not None:
        bias = Bias(case.problem.n, limit.norm_exact(limit.sq_norm), n_min.exact(), interpolates=True)
        lower = bias.lower_bound()
        prog = bias.program
        bound_node = prog.const(Fraction(user).limit_denominator(10**9)) if user is not None else prog.sqrt(Fraction(J))
        sign, certified = prog.compare(bias.ratio.node, bound_node)
        lower_ok, upper_ok = lower.holds and lower.certified, sign < 0 or (sign == 0 and user is None)
        ratio, how = float(bias.ratio), "certified"
    elif case.ties is not None:  # N resolved from the magnitudes: floats of the chain's accuracy
        ratio, how = case.ties.sq_norm / float(n_min), f"N resolved from the magnitudes, relative accuracy {RESOLVED_TOL:g}"
        lower_ok, upper_ok = ratio >= 1 - RESOLVED_TOL, ratio <= bound * (1 + RESOLVED_TOL) if user is None else ratio < bound
    else:
        return Outcome(False, "n/a", bound_text, limit.sq_norm_reason or "N undetermined", inconclusive=True)
    return Outcome(
        bool(lower_ok and upper_ok), ratio, bound_text, f"N_min ≤ N: {bool(lower_ok)}; N/N_min ≤ bound: {bool(upper_ok)} ({how})"
    )


def _p_interpolate(n_pos: int, n_neg: int, m: int) -> Fraction:
    from limitproc.probability import p_interpolate

    return p_interpolate(n_pos, n_neg, m)


def coverage_monte_carlo(n_pos: int, n_neg: int, m: int, trials: int, seed: int = 0) -> int:
    """Trials (of ``trials``) in which every sample is covered: uniform signs, fair-coin activations (theory §7)."""
    rng = np.random.default_rng(seed)
    hits, chunk = 0, max(1, 2_000_000 // max(1, m * (n_pos + n_neg)))
    for start in range(0, trials, chunk):
        k = min(chunk, trials - start)
        pos = rng.integers(0, 2, size=(k, m, 1), dtype=np.int8).astype(bool)
        active = rng.integers(0, 2, size=(k, m, n_pos + n_neg), dtype=np.int8).astype(bool)
        cov_pos = (active[:, :, :n_pos] & pos).any(axis=1).all(axis=1)
        cov_neg = (active[:, :, n_pos:] & ~pos).any(axis=1).all(axis=1)
        hits += int((cov_pos & cov_neg).sum())
    return hits


def wilson_interval(hits: int, trials: int, z: float) -> tuple[float, float]:
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


@claim(
    "probability",
    """With isotropic Gaussian g_j and uniform signs, P(interpolate) = Σ_{m+} C(m, m+) 2^{−m}
    (1 − 2^{−m+})^{n+} (1 − 2^{−(m−m+)})^{n−} exactly; it lies in the Monte Carlo confidence interval
    (Wilson, z = mc_z) for the case's (n+, n−, m).""",
    "§7",
)
def check_probability(case) -> Outcome:
    p = case.problem
    n_pos = int(p.positive_labels.sum())
    n_neg, m = p.n - n_pos, p.m
    exact = case.settings.get("user_p_interpolate", _p_interpolate)(n_pos, n_neg, m)
    trials = int(case.settings["mc_trials"])
    hits = coverage_monte_carlo(n_pos, n_neg, m, trials, case.seed)
    lo, hi = wilson_interval(hits, trials, case.settings["mc_z"])
    value = float(exact)
    return Outcome(
        lo <= value <= hi,
        value,
        f"[{lo:.5g}, {hi:.5g}]",
        f"(n+, n−, m) = ({n_pos}, {n_neg}, {m}); Monte Carlo {hits}/{trials}; exact {exact}",
    )


@claim(
    "tie-split",
    """When blocks of tied neurons overlap, the split of each shared sample's output between them is fixed by
    the O(1) initial magnitudes, not by λ (in the limit): the engine's resolved split (coupled dynamics of
    the tied neurons, approximate) agrees with the simulated shares a_j σ(u_ji)/y_i at the smallest λ.""",
    "§6",
)
def check_tie_split(case) -> Outcome:
    if na := _flow_only(
        case, SPLIT_TOL, "the split is resolved from the flow's coupled dynamics of the tied neurons (limitproc.flow.ties)"
    ):
        return na
    overlapping = [j for j in case.limit.jumps if j.shared.size]
    if not overlapping:
        return Outcome(True, 0.0, SPLIT_TOL, "no overlapping tie: nothing to split")
    splits = case.ties.splits if case.ties is not None else {}
    missing = [j.k for j in overlapping if j.k not in splits]
    if missing:
        return Outcome(False, "n/a", SPLIT_TOL, f"jumps {missing} not resolved: {case.limit.sq_norm_reason}")
    shares = case.smallest().output_shares()
    worst = max(abs(shares[j, i] - value) for split in splits.values() for i, row in split.shares.items() for j, value in row.items())
    detail = f"{len(splits)} overlapping tie(s), at λ = {case.lambdas_descending[-1]}"
    return _finite_lambda(case, worst <= SPLIT_TOL, worst, SPLIT_TOL, detail)


def identical_block_norm(limit) -> float | None:
    """``N`` when every overlapping tie is of neurons with identical blocks (theory §6): each class of
    tied neurons with the same block acts as one neuron, so ``N = 2 Σ_classes sqrt(Σ_B y_i²/q_i)`` (times
    ``m`` in mean-field units). None when two tied neurons with different blocks share a sample."""
    p = limit.problem
    weights = [float(y**2 / q) for y, q in zip(p.labels, p.sq_norms)]
    total = 0.0
    for jump in limit.jumps:
        blocks = {j: tuple(jump.blocks[j].tolist()) for j in jump.neurons}
        classes = set(blocks.values())
        if len(classes) > 1 and any(set(a) & set(b) for a in classes for b in classes if a != b):
            return None
        for block in classes:
            total += 2 * math.sqrt(sum(weights[i] for i in block))
    return total * p.unit_factor


@claim(
    "identical-block-invariance",
    """When tied neurons have identical blocks, the class acts as one neuron: N = 2 Σ_classes sqrt(Σ_B y_i²/q_i)
    does not depend on the initial magnitudes. The N resolved from several magnitude draws (the case's
    and DRAWS more) equals this value (and the engine's exact N when it gives one).""",
    "§6",
)
def check_identical_blocks(case) -> Outcome:
    from limitproc.flow.simulate import initial_magnitudes, with_magnitudes
    from limitproc.flow.ties import resolve_ties

    limit = case.limit
    if na := _flow_only(case, RESOLVED_TOL, "N is resolved from the magnitudes by the flow's tie dynamics (limitproc.flow.ties)"):
        return na
    if not any(j.shared.size for j in limit.jumps):
        return Outcome(True, 0.0, RESOLVED_TOL, "no overlapping tie: N does not depend on the magnitudes")
    exact = identical_block_norm(limit)
    if exact is None:
        return Outcome(True, 0.0, RESOLVED_TOL, "tied neurons with different blocks share samples: N depends on the draw (not claimed)")
    resolved = [case.ties.sq_norm] if case.ties is not None else []
    bare = with_magnitudes(case.problem, None)  # draws new magnitudes
    for draw in range(1, DRAWS + 1):
        mags, amags = initial_magnitudes(bare, case.seed + draw)
        resolved.append(resolve_ties(case.reference, mags, amags).sq_norm)
    values = resolved + ([float(limit.sq_norm)] if limit.sq_norm is not None else [])
    err = max(abs(v - exact) / exact for v in values)
    return Outcome(
        err <= RESOLVED_TOL,
        err,
        RESOLVED_TOL,
        f"class formula N = {exact:.12g}; resolved from {len(resolved)} draws {[f'{v:.12g}' for v in resolved]}",
    )


DESCENT_TAU_TOL = 1e-2  # |extrapolated τ_k of gradient descent − τ_k of the ρ process|


def descent_step(limit) -> float:
    """The step of the descent claim: the largest power of two with η·μ ≤ 1 for the first escape's rate μ."""
    mu = max(float(r) for r in limit.jumps[0].rates.values())
    return 2.0 ** math.floor(math.log2(1 / mu))


@claim(
    "descent-times",
    """Gradient descent with a finite step η (t = η·k) has the limit process of §4 with every rate μ_j(F)
    replaced by ρ_j = log(1 + η μ_j)/η: with η the largest power of two such that η μ ≤ 1 for the first
    escape (or the case's own step), the drops of the exact descent map, extrapolated in 1/log(1/λ)
    over the ladder, match the ρ process's τ_k (and are later than the flow's).""",
    "§11",
)
def check_descent_times(case) -> Outcome:
    from limitproc import solve
    from limitproc.flow.simulate import simulate

    if len(case.lambdas) < 2:
        return Outcome(False, "n/a", DESCENT_TAU_TOL, "needs at least two λ")
    if not case.reference.jumps:
        return Outcome(True, 0.0, DESCENT_TAU_TOL, "no jumps")
    if getattr(case, "lr", None) is not None:  # the case's own step: its limit and its descent runs
        lr, rho, runs = case.step, case.limit, case.ladder()
    else:
        lr = descent_step(case.reference)
        rho = solve(case.problem, lr=lr)
        runs = [simulate(case.problem, lam, result=rho, method="gd", lr=lr) for lam in case.lambdas_descending]
    taus = np.array([float(j.tau) for j in rho.jumps])
    ext = extrapolate(runs)
    if len(taus) != len(ext.tau) or np.isnan(ext.drop_times).any():
        detail = f"η = {lr:g}: {len(taus)} jumps in the ρ process, drops seen: {ext.drop_times.tolist()}"
        return _finite_lambda(case, False, "n/a", DESCENT_TAU_TOL, detail)
    err = float(np.abs(ext.tau - taus).max())
    detail = f"η = {lr:g}: extrapolated τ {np.round(ext.tau, 4).tolist()}, ρ process {np.round(taus, 4).tolist()}"
    return _finite_lambda(case, err <= DESCENT_TAU_TOL, err, DESCENT_TAU_TOL, detail)
