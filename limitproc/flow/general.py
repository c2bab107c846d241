"""Gradient flow and gradient descent on arbitrary data (not only orthogonal): an approximate path.

The model and loss are those of theory §1 on raw inputs ``X`` (n × d), first-layer weights ``W``
(m × d), output weights ``a`` and labels ``y``; the run starts from ``λ (W, a)``. The gradient of
``w_j`` always lies in ``span(x_1 … x_n)``, so the part of ``w_j`` outside it never moves and the
flow is integrated in the coordinates ``u_ji = <w_j, x_i>`` with the Gram matrix ``G = X Xᵀ``::

    du_ji/dt = −2c · a_j · Σ_k r_k σ'(u_jk) G_ki,     da_j/dt = −2c · Σ_i r_i σ(u_ji)

(``w_j`` is recovered as ``u_j G⁻¹ X`` plus its constant out-of-span part; the data must have rank n).
With diagonal ``G`` this is exactly the per-sample flow of :mod:`limitproc.flow.simulate`, and the
same integrator (:class:`~limitproc.flow.integrator.Integrator`: Dormand–Prince 5(4), neuron-relative
error control, direct or log-scale coordinates) runs it.

**Activation events in both directions.** Pair ``(j, i)`` is active iff ``u_ji > 0``. A step in which
some ``u_ji`` changes sign (either way), or leaves its side and comes back within the step (its
interpolant passes 0 between two endpoints on the same side), is redone up to the earliest crossing,
located on the step's cubic Hermite interpolant, and that ``u_ji`` is set to exactly 0. Which side it
then takes depends on the field on both sides of ``u_ji = 0``: a pair reaching 0 from above dies
unless the field with the pair inactive pushes it back up; one reaching 0 from below comes back to
life unless the field with the pair active pushes it down. In those two cases the field points into
the surface from both sides, and the pair is **held** at ``u_ji = 0`` (Filippov's sliding motion):
its gate ``σ'`` is the weight in ``[0, 1]`` that keeps ``du_ji = 0``, and it is released (to the side
the weight leaves through) at a crossing located the same way. On orthogonal data the field with a
pair inactive leaves it still, nothing is ever held or revived, and the run is the per-sample one.

Three guards keep sliding from toggling (measured on Gaussian inputs, n = 32 and 128): returns within
a step are located (without it, a pair pushed onto 0 from both sides dips below 0 and back inside
every step, the error control shrinks the steps instead, and the run crawls); a hold ends only when
its weight leaves ``[−δ, 1 + δ]``, ``δ = GeneralIntegrator.hold_margin = 1e-3``, as confirmed at the
end of the cut step (a weight tending to 1 as the run converges otherwise crosses it on rounding
noise, again and again); and only where the pair, released, would move by more than the local error
tolerance within the step. Its speed once released is ``|s − g| |r_i|`` over ``(G_SS⁻¹)_ii`` (times
``2c |a_j|``), with the neuron's other held pairs rebalancing: once the samples a hold balances are
fitted, its weight ``g`` is a ratio of residuals at the integrator's noise level and that speed is
noise too. (A cruder bound, the field on the pair with every gate in ``[0, 1]``, let the pushes that
held pairs cancel count: at ``n = 128, d = n²`` every step past convergence was then cut where the
step's interpolant, not accurate to those residuals, showed a release that the cut step's end did
not confirm, 0.04 time units at a time; the run did not finish in 5 minutes, and takes 15 s now.)
The margin delays a release while the pair's true speed is below ``δ`` times the field on it.

**Descent** (``method="gd"``) is the plain map ``θ ← θ − η ∇L(θ)`` with ``σ'(0) = 0``, in the same
coordinates (the same map as on ``W``), in float64 from ``λ ≥ 1e-150``; its time is ``t = kη``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..io.rawdata import RawData
from ..problem import LOSS_CONVENTIONS, Problem, check_loss
from .descent import check_descent_steps
from .integrator import Integrator, PerSampleFlow, _bisect, hermite
from .simulate import DIRECT_MIN_LAMBDA, OnTauScale, log_inverse

__all__ = [
    "GeneralFlow",
    "GeneralIntegrator",
    "GeneralSimulation",
    "coherence_of",
    "is_orthogonal",
    "nearest_orthogonal_problem",
    "simulate_general",
]


def coherence_of(inputs: np.ndarray) -> float:
    """``max_{i≠k} |cos(x_i, x_k)|`` (0 for a single input)."""
    G = np.asarray(inputs, float) @ np.asarray(inputs, float).T
    norms = np.sqrt(np.diag(G))
    C = np.abs(G / np.outer(norms, norms))
    np.fill_diagonal(C, 0.0)
    return float(C.max(initial=0.0))


def is_orthogonal(inputs: np.ndarray, tol: float | None = None) -> bool:
    """Whether every pair of inputs has ``|cos| <= tol`` (the per-sample path then applies); the
    default is the raw-data check's for float64, ``sqrt(eps)``."""
    return coherence_of(inputs) <= (np.finfo(np.float64).eps ** 0.5 if tol is None else tol)


def _decimal(x: float, digits: int = 12) -> Fraction:
    return Fraction(f"{x:.{digits}g}")


def nearest_orthogonal_problem(data: RawData) -> Problem:
    """The orthogonal problem with the same labels, squared norms (to 12 digits), signs of ``a``,
    activation pattern and initial magnitudes: the limit a general run is compared with."""
    U = data.preactivations
    mags = np.abs(U)
    return Problem(
        labels=[_decimal(v, 17) for v in data.labels],
        signs=np.where(data.a > 0, 1, -1).tolist(),
        active=U > 0,
        sq_norms=[_decimal(q) for q in np.diag(data.gram)],
        loss=data.loss,
        magnitudes=np.where(mags > 0, mags, np.finfo(float).tiny),
        # sum_i u_ji^2 / q_i is ||w_j||^2 only for orthogonal inputs; on skewed ones it can exceed
        # |a_j|^2 by O(coherence), which would read as a sign flip of this comparison problem
        a_magnitudes=np.maximum(np.abs(data.a), np.sqrt(Problem.implied_w_sq_norms(mags, np.diag(data.gram)))),
    )


class GeneralFlow(PerSampleFlow):
    """The flow in coordinates ``u = W Xᵀ`` with Gram matrix ``gram``; ``active`` says on which side of
    ``u_ji = 0`` a pair sitting exactly at 0 is, ``held`` marks the pairs in sliding motion."""

    def __init__(self, labels: np.ndarray, gram: np.ndarray, loss_factor: float, m: int, active: np.ndarray):
        super().__init__(labels, np.diag(gram).copy(), loss_factor, m)
        self.gram = gram
        self.active = np.array(active, bool)
        self.held = np.zeros_like(self.active)
        self._held_key = b""
        self._held_list: list[tuple[int, np.ndarray, np.ndarray]] = []

    def gates(self, u: np.ndarray, r: np.ndarray, neuron: int | None = None) -> np.ndarray:
        """``σ'(u_ji)`` for the pairs on the ``active`` side, and on held pairs the weights keeping them
        at 0 (only on ``neuron``'s if given: the others' are then 0)."""
        g, balances = self._balance(u, r, neuron)
        for j, S, products, _ in balances:
            # a pair whose residual is exactly 0 has no part in the balance (its weight is taken as 0)
            rs = r[S]
            g[j, S] = np.divide(products, rs, out=np.zeros_like(products), where=rs != 0)
        return g

    def release_speeds(self, state) -> np.ndarray:
        """``(m, n)``: on each held pair, a bound on its speed at ``state`` once released to either side (0 elsewhere).

        Released to gate ``s`` while the rest of its neuron's held pairs ``S`` rebalance, pair ``i``
        moves at ``2c |a_j| |s r_i − g_i r_i| / (G_SS⁻¹)_ii`` (a Schur complement); ``s ∈ {0, 1}``
        gives the bound ``2c |a_j| (|g_i r_i| + |r_i|) / (G_SS⁻¹)_ii``. Once the samples a hold
        balances are fitted, both products are at the integrator's noise level, whatever the weight."""
        a, u = self.split(state)
        r = self.residual(state)
        speeds = np.zeros(self.held.shape)
        for j, S, products, inverse in self._balance(u, r)[1]:
            speeds[j, S] = self.two_c * abs(a[j]) * (np.abs(products) + np.abs(r[S])) / np.diag(inverse)
        return speeds

    def _balance(self, u: np.ndarray, r: np.ndarray, neuron: int | None = None) -> tuple[np.ndarray, list]:
        """The gates with held pairs at 0, and per neuron with held pairs ``S`` (only ``neuron`` if given)
        the products ``g_i r_i`` on ``S`` that keep them at 0: ``Σ_k g_k r_k G_ki = 0`` there, so
        ``g_S r_S = −G_SS⁻¹ (push of the others)``."""
        # an active pair's gate follows its sign inside a step (as in the per-sample flow); an inactive
        # one stays shut until its crossing is located: the field is smooth within a step
        g = (self.active & (u >= 0)).astype(float)
        if not self.held.any():
            return g, []
        g[self.held] = 0.0
        # row by row, the same arithmetic for one neuron (locating a release on a step's interpolant
        # evaluates it many times over) as for all: a weight at the margin is on the same side in both
        return g, [(j, S, -inverse @ ((g[j] * r) @ self.gram)[S], inverse) for j, S, inverse in self._held_sets() if neuron in (None, j)]

    def _held_sets(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(j, S, G_SS⁻¹)`` for each neuron with held pairs ``S``, rebuilt when ``held`` changes."""
        key = self.held.tobytes()
        if key != self._held_key:
            self._held_key, self._held_list = key, []
            for j in np.flatnonzero(self.held.any(axis=1)):
                S = np.flatnonzero(self.held[j])
                # G_SS is a Gram block of independent inputs: invertible
                self._held_list.append((int(j), S, np.linalg.inv(self.gram[np.ix_(S, S)])))
        return self._held_list

    def __call__(self, state) -> np.ndarray:
        a, u = self.split(state)
        r = self.residual(state)
        da = -self.two_c * (np.maximum(u, 0.0) @ r)
        du = -self.two_c * (a[:, None] * ((self.gates(u, r) * r[None, :]) @ self.gram))
        du[self.held] = 0.0
        return np.concatenate([da, du.ravel()])


class GeneralIntegrator(Integrator):
    """The integrator with activation events in both directions and held pairs (see the module doc).

    ``switches`` lists ``(t, j, i, kind)``, kind one of ``death``, ``birth``, ``hold``, ``release``.
    """

    flow: GeneralFlow
    #: a hold ends when its weight leaves ``[−margin, 1 + margin]`` (hysteresis; see the module doc)
    hold_margin = 1e-3

    def __init__(self, flow: GeneralFlow, state: np.ndarray, **kwargs):
        super().__init__(flow, state, **kwargs)
        self.switches: list[tuple[float, int, int, str]] = []
        self._stalled = 0

    def _crossings(self, y0, y1, h: float, outside=None) -> np.ndarray:
        """Flat indices of the pairs whose side changes between ``y0`` and ``y1`` (or whose hold ends at
        ``y1``); ``outside`` is :meth:`_outside` at ``y1`` if the caller has it."""
        f, m = self.flow, self.flow.m
        u0, u1 = y0[m:], y1[m:]
        act, held = f.active.ravel(), f.held.ravel()
        down = ((u0 > 0) & (u1 <= 0)) | ((u0 == 0) & act & ~held & (u1 < 0))
        up = ((u0 < 0) | ((u0 == 0) & ~act & ~held)) & (u1 > 0)
        out = down | up
        if held.any():
            leaving = held & (self._outside(y1) if outside is None else outside)
            if leaving.any():  # (the release speeds cost a residual and the hold's inverses: only when asked)
                out |= leaving & self._resolved(y0, h)
        return np.flatnonzero(out)

    def _resolved(self, y, h: float) -> np.ndarray:
        """Held pairs that, released at ``y``, would move by more than the local error tolerance
        (``rtol`` times the neuron's size) within a step ``h`` (:meth:`GeneralFlow.release_speeds`).
        A hold is released only there: once the samples it balances are fitted, its weight is a ratio
        of residuals at the integrator's noise level, and acting on it only toggles hold and release,
        or cuts every step at a release the step's interpolant shows and its end does not confirm."""
        f = self.flow
        return (f.release_speeds(y) * h > self.rtol * f.neuron_scales(y)[:, None]).ravel()

    def _outside(self, y, neuron: int | None = None) -> np.ndarray:
        """Held pairs (of ``neuron`` if given) whose weight lies outside ``[−margin, 1 + margin]`` at ``y``."""
        g = self.flow.gates(self.flow.split(y)[1], self.flow.residual(y), neuron).ravel()
        return (g < -self.hold_margin) | (g > 1 + self.hold_margin)

    def _accepted_step(self, t_stop: float):
        trial = self._trial_step(t_stop)
        if trial is None:
            return None
        y1, f0, f1, h = trial
        f, m, y0 = self.flow, self.flow.m, self.state
        crossed = self._crossings(y0, y1, h)
        returns = _returns(y0[m:], h * f0[m:], y1[m:], h * f1[m:], f.active.ravel() & ~f.held.ravel())
        if not crossed.size and not returns:
            self._stalled = 0
            return y0, f0, y1, f1, h
        ends = {}
        for idx in crossed:
            if f.held.flat[idx]:
                j = int(idx) // f.n
                ends[idx] = _bisect(lambda th: bool(self._outside(hermite(y0, f0, y1, f1, h, th), j)[idx]))
            else:
                above = y1[m + idx] > 0
                ends[idx] = _bisect(lambda th: (hermite(y0[m + idx], f0[m + idx], y1[m + idx], f1[m + idx], h, th) > 0) == above)
        for idx, top in returns.items():  # the first crossing lies before the extremum
            above = y0[m + idx] < 0
            ends[idx] = top * _bisect(lambda s: (hermite(y0[m + idx], f0[m + idx], y1[m + idx], f1[m + idx], h, s * top) > 0) == above)
        first = min(ends.values())
        h *= first
        if h > 0:
            y1, f0, _, _ = self._step(h)
        else:
            y1 = y0
        # switching back and forth, or cutting steps at events that then do not happen, without
        # advancing t (by more than a few ulps): give up rather than loop
        self._stalled = self._stalled + 1 if h <= 1e-14 * max(1.0, abs(self.t)) else 0
        if self._stalled > 4 * f.active.size:
            return None
        outside = self._outside(y1) if f.held.any() else None
        due = {int(idx) for idx, th in ends.items() if th <= first * (1 + 1e-9)} | {int(i) for i in self._crossings(y0, y1, h, outside)}
        if outside is not None:  # a release located on the interpolant stands only if the step's end confirms it
            due = {idx for idx in due if not f.held.flat[idx] or outside[idx]}
        y1 = y1.copy()
        for idx in sorted(due):
            self._switch(y1, idx, self.t + h)
        return y0, f0, y1, f(y1), h

    def _switch(self, y, idx: int, t: float) -> None:
        f = self.flow
        j, i = divmod(idx, f.n)
        if f.held[j, i]:
            weight = f.gates(f.split(y)[1], f.residual(y))[j, i]
            f.held[j, i], f.active[j, i] = False, weight > 1
            self.switches.append((t, j, i, "release"))
            return
        was_active = bool(f.active[j, i])
        y[f.m + idx] = 0.0
        f.active[j, i] = False
        inactive_speed = f(y)[f.m + idx]
        f.active[j, i] = True
        active_speed = f(y)[f.m + idx]
        hold = inactive_speed > 0 if was_active else active_speed < 0
        f.held[j, i] = hold
        f.active[j, i] = not was_active and not hold
        kind = "hold" if hold else ("death" if was_active else "birth")
        self.switches.append((t, j, i, kind))
        if kind == "death":
            self.deaths.append((t, j, i))


def _returns(u0, du0, u1, du1, active) -> dict[int, float]:
    """``{pair: θ}`` for the pairs whose step interpolant (cubic Hermite, slopes ``du0``, ``du1`` per
    step) leaves its side of 0 and comes back within the step, θ the extremum beyond 0.

    The endpoints alone miss these: an active pair pushed down onto 0 while the field with it inactive
    pushes it back up dips below 0 and returns within every step, and the error control, seeing the
    kink, shrinks the steps to nothing instead of locating the crossing (it must be held there).
    """
    side = np.where(active, u0 > 0, u0 < 0) & np.where(active, u1 > 0, u1 < 0) & (du0 * np.sign(u0) < 0)
    cand = np.flatnonzero(side)
    if not cand.size:
        return {}
    p0, d0, p1, d1 = u0[cand], du0[cand], u1[cand], du1[cand]
    A, B, C = 2 * p0 + d0 - 2 * p1 + d1, -3 * p0 - 2 * d0 + 3 * p1 - d1, d0  # p(θ) = Aθ³ + Bθ² + Cθ + p0
    disc = B * B - 3 * A * C
    with np.errstate(divide="ignore", invalid="ignore"):
        # the first critical point of p in (0, 1): where the initial move towards 0 stops
        cubic = (A != 0) & (disc >= 0)
        root = np.sqrt(np.where(cubic, disc, 0.0))
        roots = np.stack(
            [
                np.where(cubic, (-B - root) / (3 * A), np.nan),
                np.where(cubic, (-B + root) / (3 * A), np.nan),
                np.where(A == 0, -C / (2 * B), np.nan),
            ]
        )
    roots = np.where((roots > 0) & (roots < 1), roots, np.inf).min(axis=0)
    out = {}
    for k in np.flatnonzero(np.isfinite(roots)):
        th = roots[k]
        value = ((A[k] * th + B[k]) * th + C[k]) * th + p0[k]
        if value * np.sign(p0[k]) <= 0:
            out[int(cand[k])] = float(th)
    return out


@dataclass
class GeneralSimulation(OnTauScale):
    """One finite-λ run on raw data. ``t``, ``loss`` and ``log_sq_norms`` (natural log of
    ``a_j² + ||w_j||²``, the in-span part of ``w_j``) at every accepted step (every step of descent);
    ``drop_times[k-1]`` is when the loss first crosses the midpoint of the reference limit's plateaus
    ``k−1`` and ``k`` (NaN if never); ``plateau_losses``/``plateau_log_sq_norms`` are taken inside each
    limit plateau as in :class:`~limitproc.flow.simulate.Simulation`. ``output_shares[s, j]`` is the largest
    share ``a_j σ(u_ji) / y_i`` of a sample's label that neuron ``j`` carries at step ``s``. ``final_W``/``final_a`` are on
    the true scale (tiny neurons may underflow to 0)."""

    data: RawData
    log_inv_lambda: float
    method: str
    coordinates: str
    t: np.ndarray
    loss: np.ndarray
    log_sq_norms: np.ndarray
    output_shares: np.ndarray
    plateaus: list[float]
    drop_times: np.ndarray
    plateau_losses: np.ndarray
    plateau_log_sq_norms: np.ndarray
    final_a: np.ndarray
    final_u: np.ndarray
    final_W: np.ndarray
    switches: list[tuple[float, int, int, str]] = field(repr=False)
    steps: int = 0

    @property
    def final_sq_norm(self) -> float:
        return float((self.final_a**2).sum() + (self.final_W**2).sum())

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1])


def simulate_general(
    data: RawData,
    lam=1e-20,
    *,
    log_inv_lambda: float | None = None,
    result=None,
    method: str = "flow",
    lr: float | None = None,
    tau_end: float | None = None,
    rtol: float = 1e-8,
    coordinates: str | None = None,
) -> GeneralSimulation:
    """Run gradient flow (or descent with step ``lr``) on ``data`` from ``λ (W, a)``.

    ``result`` is the reference limit (default: ``solve(nearest_orthogonal_problem(data))``); its
    plateaus define the drop times and its jump times the horizon and the in-plateau samples, as in
    :func:`~limitproc.flow.simulate.simulate`. ``coordinates`` (flow only): ``"direct"`` or ``"log-scale"``.
    """
    L = log_inverse(lam) if log_inv_lambda is None else float(log_inv_lambda)
    if not L > 0:
        raise InputError("log_inv_lambda", f"must be positive, got {L}")
    deep = L > -math.log(DIRECT_MIN_LAMBDA) * (1 + 1e-12)
    if method not in ("flow", "gd"):
        raise InputError("method", f"unknown {method!r} (choose flow, gd)")
    if method == "gd":
        if lr is None or not lr > 0 or not math.isfinite(lr):
            raise InputError("lr", f"gradient descent needs a positive finite step, got {lr}")
        if deep:
            raise InputError("lambda", f"below {DIRECT_MIN_LAMBDA:g}: float64 underflows and descent has no log-scale coordinates")
        coordinates = "direct"
    if coordinates is None:
        coordinates = "log-scale" if deep else "direct"
    if coordinates not in ("direct", "log-scale"):
        raise InputError("coordinates", f"unknown {coordinates!r} (choose direct, log-scale)")
    if coordinates == "direct" and deep:
        raise InputError("lambda", f"below {DIRECT_MIN_LAMBDA:g}: float64 underflows in direct coordinates; use coordinates='log-scale'")
    if not rtol > 0:
        raise InputError("rtol", f"must be positive, got {rtol}")
    if result is None:
        from ..process import solve

        result = solve(nearest_orthogonal_problem(data))

    G, U0, a0, y = data.gram, data.preactivations, data.a, data.labels
    m, n = U0.shape
    two_c = 2 * float(LOSS_CONVENTIONS[check_loss(data.loss)](n))  # (the file formats leave the conventions to their users)
    plateaus = [float(s.loss) for s in result.saddles]
    midpoints = [(plateaus[k - 1] + plateaus[k]) / 2 for k in range(1, len(plateaus))]
    taus = [float(j.tau) for j in result.jumps]
    rates = [min(float(r) for r in j.rates.values()) for j in result.jumps]
    if tau_end is None:  # as in simulate: room for O(1/μ) offsets and the final convergence
        tau_end = (taus[-1] + 40.0 / max(min(rates), 1e-300) / L) if taus else 1.0
    t_end = tau_end * L
    if method == "gd":
        check_descent_steps(t_end, float(lr))  # type: ignore[arg-type]
    stops = [(taus[0] / 2 if taus else tau_end / 2) * L] + [(x + z) / 2 * L for x, z in zip(taus, taus[1:])] + [t_end]
    chol_inv = np.linalg.inv(np.linalg.cholesky(G))  # once: a solve per step would cost more than the step

    def log_norms(a, u, log_scales):
        """Per neuron, the log squared norm and then the largest share ``a_j σ(u_ji) / y_i`` of a sample's output it carries."""
        span = chol_inv @ u.T  # ||w_j||² = u_j G⁻¹ u_jᵀ
        with np.errstate(divide="ignore", under="ignore"):
            norms = np.log(a**2 + (span**2).sum(axis=0)) + 2 * log_scales
            outputs = (np.exp(2 * log_scales) * a)[:, None] * np.maximum(u, 0.0)
        shares = np.divide(outputs, y, out=np.zeros_like(outputs), where=y != 0).max(axis=1, initial=-np.inf)
        return np.concatenate([norms, shares])

    if method == "gd":
        run = _descend(G, U0, a0, y, two_c, math.exp(-L), lr, stops, midpoints, log_norms)
    else:
        run = _integrate(G, U0, a0, y, two_c, L, coordinates, rtol, stops, midpoints, log_norms)
    ts, losses, records, drops, at_stops, a, u, scales, switches, steps = run
    norms, shares = np.split(np.array(records), [m], axis=1)
    true_u = np.exp(scales)[:, None] * u
    perp = math.exp(-L) * (data.W - np.linalg.solve(G, U0.T).T @ data.inputs) if not deep else np.zeros_like(data.W)
    final_W = perp + np.linalg.solve(G, true_u.T).T @ data.inputs
    return GeneralSimulation(
        data=data,
        log_inv_lambda=L,
        method=method,
        coordinates=coordinates,
        t=np.array(ts),
        loss=np.array(losses),
        log_sq_norms=norms,
        output_shares=shares,
        plateaus=plateaus,
        drop_times=np.array(drops),
        plateau_losses=np.array([s[0] for s in at_stops]),
        plateau_log_sq_norms=np.array([s[1][:m] for s in at_stops]),
        final_a=np.exp(scales) * a,
        final_u=true_u,
        final_W=final_W,
        switches=switches,
        steps=steps,
    )


def _integrate(G, U0, a0, y, two_c, L, coordinates, rtol, stops, midpoints, log_norms):
    m = U0.shape[0]
    flow = GeneralFlow(y, G, two_c / 2, m, U0 > 0)
    if coordinates == "direct":
        lam = math.exp(-L)
        state = np.concatenate([lam * a0, (lam * U0).ravel()])
    else:
        top = np.maximum(np.abs(a0), np.abs(U0).max(axis=1, initial=0.0))
        flow.log_scales = np.log(top) - L
        state = np.concatenate([a0 / top, (U0 / top[:, None]).ravel()])
    h = 0.01 / max(float(flow.two_c * np.abs(y).max() * flow.q.max()), 1e-300)
    integ = GeneralIntegrator(flow, state, rtol=rtol, first_step=h, renormalise=coordinates == "log-scale")

    def below(mid):
        def g(t, s):
            return flow.loss(s) - mid

        g.direction = -1
        return g

    events = [below(mid) for mid in midpoints]
    ts, losses = [0.0], [flow.loss(state)]
    norms = [log_norms(*flow.split(state), flow.log_scales)]

    def on_step(t, s):
        ts.append(t)
        losses.append(flow.loss(s))
        norms.append(log_norms(*flow.split(s), flow.log_scales))

    drops: list[list[float]] = [[] for _ in midpoints]
    at_stops = []
    for stop in stops:
        status = integ.run(stop, events, on_step)
        if not status.success:
            raise InputError("lambda", f"the general flow did not reach t = {stop:.6g}: {status.message}")
        for k, times in enumerate(status.t_events):
            drops[k] += times
        at_stops.append((losses[-1], norms[-1]))
    a, u = flow.split(integ.state)
    first = [times[0] if times else np.nan for times in drops]
    return ts, losses, norms, first, at_stops, a.copy(), u.copy(), flow.log_scales.copy(), integ.switches, integ.steps


def _descend(G, U0, a0, y, two_c, lam, lr, stops, midpoints, log_norms):
    """Plain descent: ``k`` steps of size ``lr`` up to each stop, with ``σ'(0) = 0``."""
    u, a = lam * U0, lam * a0
    zero = np.zeros(len(a))
    ts, losses, norms, at_stops = [0.0], [], [log_norms(a, u, zero)], []
    r = a @ np.maximum(u, 0.0) - y
    losses.append(0.5 * two_c * float(r @ r))
    k = 0
    for stop in stops:
        while (k + 1) * lr <= stop * (1 + 1e-12):
            relu = np.maximum(u, 0.0)
            da = two_c * (relu @ r)
            du = two_c * (a[:, None] * (((u > 0) * r[None, :]) @ G))
            a, u = a - lr * da, u - lr * du
            k += 1
            r = a @ np.maximum(u, 0.0) - y
            ts.append(k * lr)
            losses.append(0.5 * two_c * float(r @ r))
            norms.append(log_norms(a, u, zero))
            if not np.isfinite(losses[-1]):
                raise InputError("lr", f"descent diverged at step {k} (the step is too large for this data)")
        at_stops.append((losses[-1], norms[-1]))
    curve = np.array(losses)
    drops = []
    for mid in midpoints:
        below = np.flatnonzero(curve <= mid)
        if not below.size or below[0] == 0:
            drops.append(np.nan if not below.size else 0.0)
            continue
        k1 = below[0]  # linear interpolation between the iterates around the crossing
        frac = (curve[k1 - 1] - mid) / (curve[k1 - 1] - curve[k1])
        drops.append((k1 - 1 + frac) * lr)
    return ts, losses, norms, drops, at_stops, a, u, zero, [], k
