"""The true gradient flow at a finite initialisation scale ``λ`` (theory §2, §9): an approximate path.

The flow lives in the per-sample coordinates ``u_ji = <w_j, x_i>`` (an ``m × n`` array) and ``a``::

    du_ji/dt = −2c · a_j · r_i · 1[u_ji > 0] · q_i,     da_j/dt = −2c · Σ_i r_i · σ(u_ji)

with ``r_i = Σ_j a_j σ(u_ji) − y_i`` and ``L = c Σ r_i²`` (``2c = 1/n`` by default).

**Integrator.** Dormand–Prince 5(4) with adaptive steps. The error of neuron ``j``'s coordinates
is measured relative to that neuron's own size (``max(|a_j|, max_i |u_ji|)``), because while it
is small its dynamics are linear and scale-free: a pure relative control would stall on
coordinates passing through 0, an absolute one would ignore everything at scale ``λ``.
A coordinate that reaches 0 from above stays dead (``σ'(0) = 0``): each step is integrated in the
activation pattern of its start (the smooth continuation of the flow past a zero), crossings are
located on the step's dense output (its 4th-order continuous extension) and the step ends at one
of them, the coordinates that crossed set to exactly 0, without redoing the step. Several deaths
share a step when continuing the earlier ones up to the last costs little (what a continuation
added to its neuron's ``a`` is taken back). First same as last and a PI step controller. Loss crossings (drop times) are
located on the dense output too.

**Coordinates.** ``"direct"`` integrates ``(u, a)`` themselves in float64; it is accurate down to
``λ = 1e-150`` (below that, ``λ²`` underflows). ``"log-scale"`` is the second path, for any ``λ``
(give ``log_inv_lambda`` directly, or ``λ`` as a string like ``"1e-400"``): neuron ``j`` is held
as ``e^{κ_j} (ã_j, ũ_j)`` with ``max(|ã_j|, |ũ_j|) ≈ 1``. Given the residual, each neuron's
vector field is homogeneous of degree 1 in its own parameters, so ``(ã, ũ)`` follow the same
equations, with ``r_i = Σ_j e^{2κ_j} ã_j σ(ũ_ji) − y_i``; ``κ_j`` is updated when a neuron is
renormalised after an accepted step. The two paths agree where both apply (tests).

**Gradient descent** (theory §11). ``method="gd"`` with step ``lr = η`` runs the exact descent map
(:class:`~limitproc.flow.descent.Descent`) instead of the flow, in the same two coordinate paths,
with the same outputs; its time is ``t = η·k``, drop times are interpolated linearly between
iterates, and the limit it is compared with is the ``ρ`` process (``solve(problem, lr=η)``).

**Initialisation** (theory §1): ``u_ji(0) = ±λ·magnitude_ji`` (``+`` iff active) and
``a_j(0) = λ s_j a_magnitude_j``. Without ``a_magnitudes`` the start is balanced with no component
outside ``span(x)``: ``a_magnitude_j = sqrt(Σ_i magnitude_ji² / q_i)``. Without ``magnitudes``
they are drawn with a seed as ``|N(0,1)|·sqrt(q_i)``, the law of ``|<g_j, x_i>|`` for isotropic
Gaussian ``g_j``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..problem import Problem, draw_magnitudes
from .descent import Descent, check_descent_steps
from .integrator import Integrator, PerSampleFlow

__all__ = [
    "OnTauScale",
    "DIRECT_MIN_LAMBDA",
    "Extrapolation",
    "Simulation",
    "compare_with_limit",
    "extrapolate",
    "float_labels",
    "float_sq_norms",
    "horizon",
    "initial_magnitudes",
    "log_inverse",
    "parse_lambda",
    "simulate",
    "with_magnitudes",
]
#: the smallest λ the direct float64 coordinates accept (theory §9)
DIRECT_MIN_LAMBDA = 1e-150


def initial_magnitudes(problem: Problem, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(magnitudes (m, n), a_magnitudes (m,))`` of the problem, drawn with ``seed`` where absent."""
    q = float_sq_norms(problem)
    mags = problem.magnitudes
    if mags is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError("seed", f"must be a non-negative integer, got {seed!r}")
        mags = draw_magnitudes(np.random.default_rng(seed), problem.m, q)
    amags = problem.a_magnitudes
    if amags is None:
        amags = np.sqrt(Problem.implied_w_sq_norms(mags, q))
    return np.asarray(mags, float), np.asarray(amags, float)


def with_magnitudes(problem: Problem, magnitudes, a_magnitudes=None) -> Problem:
    """``problem`` (its scaling too) carrying a concrete initialisation (balanced ``a_magnitudes`` if not given)."""
    p = problem
    return Problem.from_arrays(
        p.y.num,
        p.y.den,
        p.q.num,
        p.q.den,
        p.signs,
        p.packed_active,
        loss=p.loss,
        magnitudes=magnitudes,
        a_magnitudes=a_magnitudes,
        scaling=p.scaling,
    )


def parse_lambda(lam, field: str = "lambda") -> tuple[float, str]:
    """``(log(1/λ), text)`` of a λ given as a float or a string such as ``"1e-400"`` (parsed with
    mpmath, so any depth down to ``1e-10000`` and below). ``text`` is the string as written, or the
    shortest repr of a float; the one λ parser of ``simulate``, the command lines and proofs-check."""
    import mpmath

    if isinstance(lam, str):
        text = lam.strip()
    elif isinstance(lam, (int, float)) and not isinstance(lam, bool):
        text = repr(float(lam))
    else:
        raise InputError(field, f"not a number: {lam!r}")
    try:
        value = mpmath.mpf(text)
    except (ValueError, TypeError):
        raise InputError(field, f"not a number: {lam!r}") from None
    if not 0 < value < 1:
        raise InputError(field, f"must lie in (0, 1), got {lam}")
    return float(-mpmath.log(value)), text


def log_inverse(lam) -> float:
    """``log(1/λ)`` for a float λ or a string such as ``"1e-400"`` (see :func:`parse_lambda`)."""
    return parse_lambda(lam)[0]


class OnTauScale:
    """``tau`` and ``drop_taus`` of a run or prediction with times ``t``, ``drop_times`` and ``log_inv_lambda``."""

    t: np.ndarray
    drop_times: np.ndarray
    log_inv_lambda: float

    @property
    def tau(self) -> np.ndarray:
        return self.t / self.log_inv_lambda

    @property
    def drop_taus(self) -> np.ndarray:
        return self.drop_times / self.log_inv_lambda


@dataclass
class Simulation(OnTauScale):
    """One finite-λ run. Times are in the flow's time ``t`` (``η·k`` for descent); ``tau = t / log(1/λ)``.

    ``loss``, ``log_sq_norms`` (natural log of ``a_j² + Σ_i u_ji²/q_i``, shape ``(steps, m)``) and
    ``balance`` (``(a_j² − Σ_i u_ji²/q_i) / (a_j² + Σ_i u_ji²/q_i)``, scale-free) are recorded at
    every accepted step. Losses and norms are in the problem's units, as the limit's plateaus
    (``m`` times the spec's under mean-field scaling); the weights are the spec's parameters. ``drop_times[k-1]`` is the time the loss crosses the midpoint between the
    limit's plateaus ``k−1`` and ``k`` (NaN if it never does before the end). ``plateau_states[k]``
    is the state inside plateau ``k``: at ``τ_1/2`` for the origin, halfway between ``τ_k`` and
    ``τ_{k+1}`` after jump ``k``, and at the end for the last.
    """

    problem: Problem
    log_inv_lambda: float
    coordinates: str
    magnitudes: np.ndarray
    a_magnitudes: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    log_sq_norms: np.ndarray
    balance: np.ndarray
    plateaus: list[float]
    drop_times: np.ndarray
    alignment_time: float
    pattern_after_alignment: np.ndarray
    plateau_states: list[tuple[np.ndarray, np.ndarray]]  # true-scale (a, u) inside each limit plateau
    final_a: np.ndarray
    final_u: np.ndarray
    final_log_scale: np.ndarray  # κ_j: the final weights are e^{κ_j} (final_a, final_u) in log-scale
    deaths: list[tuple[float, int, int]] = field(repr=False)
    steps: int = 0
    method: str = "flow"  # or "gd": gradient descent with step ``lr``
    lr: float = 0.0

    @property
    def sq_norms(self) -> np.ndarray:
        return np.exp(self.log_sq_norms)

    @property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The final ``(a, u)`` on the true scale (tiny neurons may underflow to 0)."""
        s = np.exp(self.final_log_scale)
        return s * self.final_a, s[:, None] * self.final_u

    @property
    def final_sq_norm(self) -> float:
        """``Σ_j a_j² + ||w_j||²`` at the end (in-span part of ``w_j``; balanced starts have no other)."""
        return float(self.sq_norms[-1].sum())

    def final_residual(self) -> np.ndarray:
        a, u = self.weights
        return a @ np.maximum(u, 0.0) - float_labels(self.problem)

    def output_shares(self) -> np.ndarray:
        """``(m, n)``: the share ``a_j σ(u_ji) / y_i`` of each neuron in each sample's output."""
        a, u = self.weights
        return a[:, None] * np.maximum(u, 0.0) / float_labels(self.problem)[None, :]

    def drop_offsets(self, taus) -> np.ndarray:
        """``δ_k = t_k − τ_k log(1/λ)`` for given limit times ``τ_k``."""
        return self.drop_times - np.asarray(taus, float) * self.log_inv_lambda


def _float_view(values, field: str) -> np.ndarray:
    """Non-zero exact ``values`` (a ``RationalArray``) in float64, refused where they leave its normal range."""
    floats = values.floats()
    if not np.all(np.isfinite(floats)) or np.any(np.abs(floats) < np.finfo(np.float64).tiny):
        raise InputError(field, "outside the range of float64: the simulator cannot run this problem (the exact engine can)")
    return floats


def float_labels(problem: Problem) -> np.ndarray:
    """The labels as floats, for the simulator's side of a comparison (refused past float64's range)."""
    return _float_view(problem.y, "labels")


def float_sq_norms(problem: Problem) -> np.ndarray:
    """The squared input norms ``q_i`` as floats (refused past float64's range)."""
    return _float_view(problem.q, "sq_norms")


def horizon(result, log_inv_lambda: float) -> float:
    """The default end ``τ`` of a finite-λ curve: the last jump plus room for offsets of ``O(1/μ)``
    and for the last neuron to converge."""
    if not result.jumps:
        return 1.0
    slowest = min(float(r) for j in result.jumps for r in j.rates.values())
    return float(result.jumps[-1].tau) + 40.0 / max(slowest, 1e-300) / log_inv_lambda


def simulate(
    problem: Problem,
    lam=1e-20,
    *,
    log_inv_lambda: float | None = None,
    result=None,
    seed: int = 0,
    tau_end: float | None = None,
    rtol: float = 1e-8,
    coordinates: str | None = None,
    method: str = "flow",
    lr: float | None = None,
    progress: bool = False,
) -> Simulation:
    """Integrate the gradient flow of ``problem`` from scale ``λ`` (or ``exp(-log_inv_lambda)``),
    or with ``method="gd"`` run gradient descent with step ``lr``.

    ``result`` is the limit (``solve(problem)``, or ``solve(problem, lr=lr)`` for descent, computed
    if omitted): its plateau losses define the drop times and its last jump the default horizon
    ``tau_end`` (the last ``τ_k`` plus room for the ``O(1)`` offsets and the final convergence).
    ``coordinates`` is ``"direct"`` or ``"log-scale"`` (default: direct when ``λ ≥ 1e-150``).
    """
    L = log_inverse(lam) if log_inv_lambda is None else float(log_inv_lambda)
    if not L > 0:
        raise InputError("log_inv_lambda", f"must be positive, got {L}")
    if coordinates is None:
        coordinates = "direct" if L <= -math.log(DIRECT_MIN_LAMBDA) else "log-scale"
    if coordinates not in ("direct", "log-scale"):
        raise InputError("coordinates", f"unknown {coordinates!r} (choose direct, log-scale)")
    if coordinates == "direct" and L > -math.log(DIRECT_MIN_LAMBDA) * (1 + 1e-12):
        raise InputError("lambda", f"below {DIRECT_MIN_LAMBDA:g}: float64 underflows in direct coordinates; use coordinates='log-scale'")
    if not rtol > 0:
        raise InputError("rtol", f"must be positive, got {rtol}")
    if method not in ("flow", "gd"):
        raise InputError("method", f"unknown {method!r} (choose flow, gd)")
    if method == "gd" and not (lr is not None and math.isfinite(lr) and lr > 0):
        raise InputError("lr", f"gradient descent needs a positive step, got {lr}")
    if method == "flow" and lr:
        raise InputError("lr", "a step is for method='gd'; the flow has none")
    if result is None:
        from ..process import solve

        result = solve(problem, lr=lr) if method == "gd" else solve(problem)
    mags, amags = initial_magnitudes(problem, seed)
    m = problem.m
    q = float_sq_norms(problem)
    flow = PerSampleFlow(float_labels(problem), q, float(problem.loss_factor), m)
    active = problem.active_matrix()
    a0 = problem.signs.astype(float) * amags
    u0 = np.where(active, mags, -mags)
    if coordinates == "direct":
        lam_f = math.exp(-L)
        state = np.concatenate([lam_f * a0, (lam_f * u0).ravel()])
    else:
        top = np.maximum(amags, mags.max(axis=1, initial=0.0))
        flow.log_scales = np.log(top) - L
        state = np.concatenate([a0 / top, (u0 / top[:, None]).ravel()])

    plateaus = [float(s.loss) for s in result.saddles]
    midpoints = [(plateaus[k - 1] + plateaus[k]) / 2 for k in range(1, len(plateaus))]
    taus = [float(j.tau) for j in result.jumps]
    if tau_end is None:
        tau_end = horizon(result, L)
    t_end = tau_end * L
    if method == "gd":
        check_descent_steps(t_end, float(lr))  # type: ignore[arg-type]
    # without a jump the one plateau is read at the end (its alignment pattern too); a horizon inside
    # the process cuts the later plateaus' states to the end state
    t_align = (taus[0] / 2 if taus else tau_end) * L
    stops = [min(t, t_end) for t in [t_align] + [(x + z) / 2 * L for x, z in zip(taus, taus[1:])]] + ([t_end] if taus else [])

    integ: Integrator | Descent
    if method == "gd":
        integ = Descent(flow, state, lr=float(lr), renormalise=coordinates == "log-scale")  # type: ignore[arg-type]
    else:
        h = 0.01 / max(float(flow.two_c * np.abs(flow.y).max() * q.max()), 1e-300)
        integ = Integrator(flow, state, rtol=rtol, first_step=h, renormalise=coordinates == "log-scale")
    unit = problem.unit_factor  # losses and norms in the problem's units, as its plateaus
    ts, losses = [0.0], [unit * flow.loss(state)]
    a_squares, spans, kappas = [], [], []  # per step; logs and ratios taken once at the end
    drops: list[list[float]] = [[] for _ in midpoints]

    last = [np.empty(0), 0.0]

    def loss_of(y) -> float:  # one loss per state for every event and the record (states are never changed in place)
        if last[0] is not y:
            last[:] = y, unit * flow.loss(y)
        return last[1]

    def below(mid):  # the event of the loss falling through ``mid``
        def g(t, y):
            return loss_of(y) - mid

        g.direction = -1
        return g

    events = [below(mid) for mid in midpoints]

    inv_q = 1 / q

    def record(y):
        a, u = flow.split(y)
        a_squares.append(a * a)
        spans.append((u * u) @ inv_q)
        kappas.append(flow.log_scales.copy())

    record(state)

    from ..progress import progress_bar

    with progress_bar(total=100, desc=f"{'descending' if method == 'gd' else 'simulating'} λ=e^-{L:.4g}", enabled=progress) as bar:
        shown = 0

        def on_step(t, y):
            nonlocal shown
            ts.append(t)
            losses.append(loss_of(y))
            record(y)
            done = int(100 * t / t_end)
            bar.update(done - shown)
            shown = done

        states = []
        for stop in stops:
            status = integ.run(stop, events, on_step).raise_if_failed()
            for k, times in enumerate(status.t_events):
                drops[k] += times
            a, u = flow.split(integ.state)
            scale = np.exp(flow.log_scales)
            states.append((scale * a, scale[:, None] * u))
            if len(states) == 1:  # the sign pattern from the held coordinates: e^{κ_j} underflows below λ ≈ 1e-300
                pattern = u > 0
    drop_times = np.array([times[0] if times else np.nan for times in drops])

    a, u = flow.split(integ.state)
    a_square, span = np.array(a_squares), np.array(spans)
    total = a_square + span
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sq_norms = np.log(total) + 2 * np.array(kappas) + math.log(unit)
        balance = np.where(total > 0, (a_square - span) / total, 0.0)
    return Simulation(
        problem=problem,
        log_inv_lambda=L,
        coordinates=coordinates,
        magnitudes=mags,
        a_magnitudes=amags,
        t=np.array(ts),
        loss=np.array(losses),
        log_sq_norms=log_sq_norms,
        balance=balance,
        plateaus=plateaus,
        drop_times=drop_times,
        alignment_time=t_align,
        pattern_after_alignment=pattern,
        plateau_states=states,
        final_a=a.copy(),
        final_u=u.copy(),
        final_log_scale=flow.log_scales.copy(),
        deaths=integ.deaths,
        steps=integ.steps,
        method=method,
        lr=float(lr or 0.0),
    )


@dataclass(frozen=True)
class Extrapolation:
    """Least-squares fit of ``t_k = τ_k log(1/λ) + δ_k`` over runs at several λ.

    ``tau_stderr``/``delta_stderr`` are the fit's standard errors (NaN with only two λ);
    ``spread`` is the largest residual of the fit, in ``t``.
    """

    log_inv_lambdas: np.ndarray
    drop_times: np.ndarray  # (runs, K)
    tau: np.ndarray
    delta: np.ndarray
    tau_stderr: np.ndarray
    delta_stderr: np.ndarray
    spread: np.ndarray


def extrapolate(simulations) -> Extrapolation:
    """Fit each drop time linearly in ``log(1/λ)`` across ``simulations`` (at least two λ)."""
    sims = list(simulations)
    if len(sims) < 2:
        raise InputError("lambdas", "extrapolation needs runs at two or more λ")
    Ls = np.array([s.log_inv_lambda for s in sims])
    if len(set(Ls.tolist())) < 2:  # one λ repeated: the fit's matrix has rank 1
        raise InputError("lambdas", "extrapolation needs runs at two or more distinct λ")
    K = min(len(s.drop_times) for s in sims)
    T = np.array([s.drop_times[:K] for s in sims])
    X = np.column_stack([Ls, np.ones_like(Ls)])
    coef, *_ = np.linalg.lstsq(X, T, rcond=None)
    fitted = X @ coef
    resid = T - fitted
    dof = len(sims) - 2
    if dof > 0:
        sigma2 = (resid**2).sum(axis=0) / dof
        cov = np.linalg.inv(X.T @ X)
        tau_se, delta_se = np.sqrt(sigma2 * cov[0, 0]), np.sqrt(sigma2 * cov[1, 1])
    else:
        tau_se = delta_se = np.full(K, np.nan)
    return Extrapolation(Ls, T, coef[0], coef[1], tau_se, delta_se, np.abs(resid).max(axis=0))


def compare_with_limit(result, simulations, digits: int = 15) -> dict:
    """The limit's jump times beside the simulated drops at each λ and their extrapolation (theory §9).

    A plain dict (the JSON of ``limitproc simulate``): per jump, the exact ``tau`` and its decimal,
    the simulated drop ``tau`` at each λ (None if the loss never crossed), and, with two or more λ,
    the extrapolated ``tau``, the offset ``delta`` and their standard errors (None with two λ).
    """
    sims = sorted(simulations, key=lambda s: s.log_inv_lambda)
    fit = extrapolate(sims) if len(sims) >= 2 else None

    def number(x):
        return None if x is None or not np.isfinite(x) else float(x)

    jumps = []
    for k, jump in enumerate(result.jumps):
        row = {
            "k": jump.k,
            "neurons": list(jump.neurons),
            "tau": jump.tau.exact(),
            "tau_decimal": jump.tau.decimal(digits),
            "drop_taus": [number(s.drop_taus[k]) if k < len(s.drop_taus) else None for s in sims],
        }
        if fit is not None and k < len(fit.tau):
            row.update(
                tau_extrapolated=number(fit.tau[k]),
                tau_stderr=number(fit.tau_stderr[k]),
                delta=number(fit.delta[k]),
                delta_stderr=number(fit.delta_stderr[k]),
            )
        jumps.append(row)
    return {
        "log_inv_lambdas": [s.log_inv_lambda for s in sims],
        "coordinates": [s.coordinates for s in sims],
        "jumps": jumps,
        "final_sq_norm_simulated": [s.final_sq_norm for s in sims],
        "sq_norm": None if result.sq_norm is None else result.sq_norm.decimal(digits),
    }
