"""The ``O(1)`` windows of the jumps from the initial magnitudes: offsets ``δ_k`` (theory §6, §9).

The limit fixes the times ``τ_k`` of the jumps; at a finite ``λ`` the loss drops at
``t_k = τ_k log(1/λ) + δ_k + o(1)``, and the offsets ``δ_k`` depend on the initial magnitudes, not
on ``λ``. They are computed here by a chain of ``λ``-free integrations (float64, with the
simulator's integrator), so they are **approximate** floats. :func:`predict_offsets` runs the chain
for any problem, tied or not; tie resolution (:mod:`limitproc.flow.ties`) reads the tied neurons'
splits off its windows, and prediction (:mod:`limitproc.flow.predict`) builds the finite-λ curve
from them.

While a neuron is small it follows the flow linearised at 0, and after its misaligned coordinates
have died it grows along its escape direction ``e_j`` (theory §5) as ``exp(−L + S_j L + π_j)``, with
``L = log(1/λ)``, ``S_j`` the exponent of the limit and ``π_j`` an ``O(1)`` log-prefactor:

1. **Alignment.** ``π_j`` starts as the log of the projection on ``e_j`` of the linear flow from the
   neuron's magnitudes (at scale 1, residual ``−y``) once its misaligned coordinates have died,
   times ``e^{−μ_j t}``.
2. **Each jump** is an ``O(1)`` window around ``t = τ_k L``, with time ``s = t − τ_k L``. The
   escaping neurons start on their escape directions at size ``e^{π_j + μ_j s_0}`` (about ``1e-8``)
   and follow the full flow on their blocks; the other live neurons whose samples they fit ride along
   linearised, under the same residual. The loss crosses the midpoint of the two plateaus at
   ``s = δ_k``. When the escaping neurons have fitted their blocks, each passenger's ``π_j`` is read
   off its projection on its new escape direction (a passenger left with no unfitted aligned sample
   stops growing: its ``π_j`` is then the log of its size).

In the limit ``L → ∞`` the windows are separated by times of order ``L``, so this chain is exact up
to the integrator's tolerance; at finite λ the simulator agrees up to corrections that vanish as a
power of λ (tests compare both at λ = 1e-20 and 1e-60).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, IntegrationError
from ..process import Result
from .integrator import Integrator, PerSampleFlow, _hermite
from .simulate import float_labels, initial_magnitudes, with_magnitudes

__all__ = ["METHOD", "Offsets", "Window", "escape_direction", "log_prefactor", "predict_offsets", "prefactor"]

#: size of the escaping neurons when their window starts
START_SIZE = 1e-8
#: the escaping neurons have fitted their blocks once every residual there is below this times
#: max |y|, or 10 integrator tolerances times max |y| if that is smaller: their final norms and the
#: passengers' prefactors are then good to about that (the settled tail costs few steps)
FITTED = 1e-7
METHOD = "approximate (float64): O(1)-time windows of the jumps from the initial magnitudes"
#: first step of each window's integration, and the interval between the checks that it has settled,
#: and the longest it may take to settle, in units of the window's time ``1 / μ`` (the largest rate)
FIRST_STEP, CHECK, SETTLE = 1.0, 2.0, 1e4


@dataclass(frozen=True, eq=False)
class Window:
    """The ``λ``-free integration around jump ``k``, in its time ``s = t − τ_k log(1/λ)``.

    ``neurons`` are the escaping neurons (the first ``escaping``) and then the passengers;
    ``samples`` are the window's samples (global indices), of which ``block`` (positions in
    ``samples``) are the jump's. At each recorded ``s``: ``residuals`` of the block samples, their
    derivatives ``residual_rates`` (for cubic interpolation between the steps), and
    ``log_sq_norms`` of each neuron (``log(a_j² + ||w_j||²)`` without the ``λ``-dependent part
    ``2 (S_j(τ_k) − 1) log(1/λ)``, which is 0 for the escaping neurons) with their derivatives
    ``log_sq_norm_rates``. ``a``, ``u`` are the escaping
    neurons' weights at the end (per-sample coordinates on ``samples``).
    """

    k: int
    neurons: tuple[int, ...]
    escaping: int
    samples: np.ndarray
    block: np.ndarray
    offset: float
    s: np.ndarray
    residuals: np.ndarray
    residual_rates: np.ndarray
    log_sq_norms: np.ndarray
    log_sq_norm_rates: np.ndarray
    a: np.ndarray
    u: np.ndarray


@dataclass(frozen=True, eq=False)
class Offsets:
    """The chain's results for one :class:`~limitproc.process.Result` (approximate floats).

    ``offsets[k-1]`` is ``δ_k``; ``log_prefactors[j]`` is the initial ``π_j`` of each neuron with an
    aligned sample; ``prefactor_changes[j]`` lists ``(k, π_j)`` for each window ``k`` after which
    neuron ``j``'s ``π_j`` was read anew; ``windows[k-1]`` is jump ``k``'s :class:`Window`.
    """

    offsets: tuple[float, ...]
    log_prefactors: dict[int, float]
    prefactor_changes: dict[int, list[tuple[int, float]]]
    windows: tuple[Window, ...] = field(repr=False)
    magnitudes: np.ndarray = field(repr=False)
    a_magnitudes: np.ndarray = field(repr=False)
    method: str = METHOD


def escape_direction(y, q, samples, sign: int):
    """``(a, u)`` of the unit escape direction on ``samples`` (theory §5), in the coordinates ``u = v ||x||``."""
    b = np.zeros(len(y))
    b[samples] = np.abs(y[samples]) * np.sqrt(q[samples])
    v = b / np.linalg.norm(b) / math.sqrt(2)
    return sign / math.sqrt(2), v * np.sqrt(q)


def _log_projection(a: float, u: np.ndarray, log_scale: float, y, q, samples, sign: int) -> float:
    """``log`` of the component of ``e^{log_scale} (a, u)`` along the escape direction on ``samples``."""
    ea, eu = escape_direction(y, q, samples, sign)
    proj = a * ea + float((u[samples] / q[samples]) @ eu[samples])
    if not proj > 0:
        raise IntegrationError("a neuron has no component along its escape direction")
    return math.log(proj) + log_scale


def _first_deaths(u, yq, P, Q, dying) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest ``x = e^{νt} ≥ 1`` at which some ``dying`` coordinate ``u_i + yq_i A(t)``
    reaches 0, where ``A = P sinh(νt) + Q (cosh(νt) − 1)``, and that ``i`` (``inf`` where none does)."""
    # x · (u + yq A) = yq (P+Q)/2 x² + (u − yq Q) x + yq (Q−P)/2: a quadratic in x, positive at x = 1
    qa, qb, qc = yq * (P + Q)[:, None] / 2, u - yq * Q[:, None], yq * (Q - P)[:, None] / 2
    disc = qb * qb - 4 * qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -(qb + np.copysign(np.sqrt(np.maximum(disc, 0.0)), qb)) / 2  # no cancellation
        roots = np.stack([np.where(qa != 0, w / qa, np.where(qb != 0, -qc / qb, np.nan)), np.where((qa != 0) & (w != 0), qc / w, np.nan)])
    roots = np.where(dying & (disc >= 0) & (roots >= 1), roots, np.inf).min(axis=0)
    first = roots.argmin(axis=1)
    return roots[np.arange(len(roots)), first], first


def _log_prefactors(y, q, c: float, signs, active, magnitudes, a_magnitudes) -> np.ndarray:
    """``π_j`` of each row (a neuron: its ``signs``, ``active`` coordinates and magnitudes), see :func:`log_prefactor`."""
    s = np.asarray(signs, float)
    a, u = s * a_magnitudes, np.where(active, magnitudes, 0.0)  # inactive coordinates never move
    alive = active & (u > 0)
    misaligned = s[:, None] * y[None, :] < 0
    rows = np.arange(len(s))
    t, log_scale = np.zeros(len(s)), np.zeros(len(s))
    while (moving := (alive & misaligned).any(axis=1)).any():
        nu = 2 * c * np.sqrt(np.where(alive, y * y * q, 0.0).sum(axis=1))
        nu = np.where(moving, nu, 1.0)
        z = u @ y  # dead coordinates are exactly 0
        P, Q = 2 * c * a / nu, 4 * c * c * z / nu**2
        x, first = _first_deaths(u, y * q, P, Q, alive & misaligned)
        if not np.isfinite(x[moving]).all():
            raise IntegrationError("a misaligned coordinate never dies: the neuron changes sign")
        x = np.where(moving, x, 1.0)
        A = P * (x - 1 / x) / 2 + Q * ((x + 1 / x) / 2 - 1)
        a = a * (x + 1 / x) / 2 + 2 * c * z / nu * (x - 1 / x) / 2
        u = np.where(alive, u + (y * q)[None, :] * A[:, None], u)
        u[rows[moving], first[moving]] = 0.0  # exactly, like the integrator's deaths; a rounding below 0 dies too
        alive &= u > 0
        u = np.maximum(u, 0.0)
        t += np.log(x) / nu
        size = np.maximum(np.abs(a), u.max(axis=1))
        a, u, log_scale = a / size, u / size[:, None], log_scale + np.log(size)
    aligned = active & ~misaligned
    norm = np.sqrt(np.where(aligned, y * y * q, 0.0).sum(axis=1))  # |b| of the escape direction
    proj = (s * a + np.where(aligned, u * np.abs(y), 0.0).sum(axis=1) / norm) / math.sqrt(2)
    if not (proj > 0).all():
        raise IntegrationError("a neuron has no component along its escape direction")
    return np.log(proj) + log_scale - 2 * c * norm * t


def log_prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``π_j`` at the start: neuron ``j`` from scale 1 behaves like ``e^{π_j + μ_j t}`` along ``e_j``.

    While it is small the neuron follows the flow linearised at 0 (residual ``−y``), which is solved
    in closed form between deaths: with ``z = Σ y_i u_i`` over its live coordinates and
    ``ν = 2c sqrt(Σ y_i² q_i)``, ``(a, z)`` is a 2×2 linear system (``a' = 2c z``, ``z' = 2c R a``) and
    ``u_i = u_i(0) + y_i q_i ∫ 2c a``. Each misaligned coordinate dies at the root of a quadratic in
    ``e^{νt}``; ``rtol`` is not needed (kept for the signature of the integrated windows).
    """
    y, q, c = float_labels(problem), np.array([float(x) for x in problem.sq_norms]), float(problem.loss_factor)
    rows = slice(j, j + 1)
    mags, a_mags = np.asarray(magnitudes, float)[None, :], np.array([a_magnitude], float)
    return float(_log_prefactors(y, q, c, problem.signs[rows], problem.active_matrix()[rows], mags, a_mags)[0])


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``P_j = e^{π_j}``: at scale 1 the neuron grows like ``P_j e^{μ_j t}`` along its escape direction."""
    return math.exp(log_prefactor(problem, j, magnitudes, a_magnitude, rtol))


class _WindowFlow(PerSampleFlow):
    """A window's field with an integrating factor: row ``j`` is neuron ``e^{κ_j + ρ_j s} (a_j, u_j)``.

    A neuron that grows at its rate ``ρ_j`` is then constant, so the integrator's steps follow the
    jump itself, not the 18 e-folds of growth before it. The factor makes the field depend on ``s``
    and the integrator integrates autonomous fields: the last row's ``a`` is the clock ``s``.
    """

    def __init__(self, y, q, c: float, sources, log_scales, rates):
        super().__init__(y, q, c, len(sources) + 1, sources=[*sources, False])
        self.escaping = int(np.sum(sources))  # the sources are the first rows
        self.log_scales[:-1] = log_scales
        self.rates = np.append(rates, 0.0)

    def phases(self, state) -> np.ndarray:
        """``κ_j + ρ_j s`` of every row."""
        return self.log_scales + self.rates * state[self.m - 1]

    def residual(self, state) -> np.ndarray:
        E, clock = self.escaping, state[self.m - 1]
        weight = np.exp(2 * (self.log_scales[:E] + self.rates[:E] * clock)) * state[:E]
        return weight @ np.maximum(state[self.m : self.m + E * self.n].reshape(E, self.n), 0.0) - self.y

    def __call__(self, state) -> np.ndarray:
        a, u = self.split(state)
        r = self.residual(state)
        da = -self.two_c * (np.maximum(u, 0.0) @ r) - self.rates * a
        da[-1] = 1.0
        du = -self.two_c * (a[:, None] * (r * self.q)[None, :]) * (u > 0) - self.rates[:, None] * u
        return np.concatenate([da, du.ravel()])


def _curves(flow: _WindowFlow, states: np.ndarray, phases: np.ndarray):
    """At each recorded state (rows ``(points, len(state))``, ``phases`` their ``κ + ρ s``): every sample's
    residual and its rate, every neuron's ``log(a² + ||w||²)`` and its rate (the clock row dropped)."""
    m, n, E, two_c, q = flow.m - 1, flow.n, flow.escaping, flow.two_c, flow.q
    a, u = states[:, :m], states[:, m + 1 : m + 1 + m * n].reshape(len(states), m, n)
    phases = phases[:, :m]
    pos, on = np.maximum(u, 0.0), u > 0
    weight = np.exp(2 * phases[:, :E])
    r = np.einsum("te,ten->tn", weight * a[:, :E], pos[:, :E]) - flow.y
    da = -two_c * np.einsum("tjn,tn->tj", pos, r)  # the true rates, without the factor's −ρ
    du = -two_c * a[:, :, None] * (r * q)[:, None, :] * on
    rate = np.einsum("te,ten->tn", weight * da[:, :E], pos[:, :E]) + np.einsum("te,ten->tn", weight * a[:, :E], du[:, :E])
    sq = a**2 + (u**2 / q).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return r, rate, np.log(sq) + 2 * phases, 2 * (a * da + (u * du / q).sum(axis=2)) / sq


def _run_window(flow: _WindowFlow, start: np.ndarray, s0: float, rtol: float, unit: float, block, tol: float, rest_rates):
    """Integrate a window from ``start`` at ``s0``: with every neuron's factor at its current rate
    until the escaping neurons are about size 1, then with their factors stopped and the passengers'
    at ``rest_rates``, until the block's residuals are below ``tol`` (checked every ``CHECK · unit``).
    Returns ``δ_k`` and the recorded ``s``, states and phases."""
    ss, states, phases = [s0], [start], [flow.phases(start)]
    base = s0

    def record(t, state):
        ss.append(base + t)
        states.append(state.copy())
        phases.append(flow.phases(state))

    integ = Integrator(flow, start, rtol=rtol, first_step=FIRST_STEP * unit)
    with np.errstate(over="ignore", invalid="ignore"):  # a trial step too long overflows; the integrator rejects it
        integ.run(math.log(1 / START_SIZE) * unit, on_step=record).raise_if_failed()
    first = (len(ss), flow.log_scales.copy(), flow.rates.copy())
    # fold the factors into the scales: the escaping neurons stop growing, the passengers grow at their new rates
    state = integ.state.copy()
    flow.log_scales += flow.rates * state[flow.m - 1]
    flow.rates = np.append(rest_rates, 0.0)
    state[flow.m - 1] = 0.0
    base += integ.t
    integ = Integrator(flow, state, rtol=rtol, first_step=integ.h)
    while np.abs(flow.residual(integ.state)[block]).max() >= tol:
        if integ.t > SETTLE * unit:
            raise IntegrationError(f"the O(1) dynamics did not settle within t = {integ.t:g}")
        integ.run(integ.t + CHECK * unit, on_step=record).raise_if_failed()
    ss_, states_, phases_ = np.array(ss), np.array(states), np.array(phases)
    return _half_crossing(flow, ss_, states_, phases_, block, first, rtol), ss_, states_, phases_


def _half_crossing(flow: _WindowFlow, s, states, phases, block, first, rtol: float) -> float:
    """``δ_k``: the ``s`` at which the block's ``Σ r²`` falls to half its start. Located on the cubic
    Hermite interpolant of the residuals in the step, then one Newton step on the flow integrated
    to that point (the interpolant alone is off by about ``(μh)⁴``)."""
    residuals, rates = (x[:, block] for x in _curves(flow, states, phases)[:2])
    half = 0.5 * float((residuals[0] ** 2).sum())
    k = int(np.argmax((residuals**2).sum(axis=1) <= half))
    if k == 0:
        raise IntegrationError("the window's loss never crossed the midpoint of its plateaus")
    h = s[k] - s[k - 1]
    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisection: the loss decreases through the step
        mid = 0.5 * (lo + hi)
        r = _hermite(residuals[k - 1], rates[k - 1], residuals[k], rates[k], h, mid)
        lo, hi = (lo, mid) if float(r @ r) <= half else (mid, hi)
    second = (flow.log_scales.copy(), flow.rates.copy())
    if k - 1 < first[0]:  # the step lies before the factors were folded
        flow.log_scales, flow.rates = first[1], first[2]
    integ = Integrator(flow, states[k - 1], rtol=rtol, first_step=hi * h)
    integ.run(hi * h).raise_if_failed()
    r, rate = (x[0, block] for x in _curves(flow, integ.state[None], flow.phases(integ.state)[None])[:2])
    flow.log_scales, flow.rates = second
    return float(s[k - 1] + hi * h - (r @ r - half) / (2 * r @ rate))


def predict_offsets(result: Result, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9) -> Offsets:
    """Run the chain of the module docstring over every jump of ``result``, from ``magnitudes``
    (default: the problem's; ``a_magnitudes`` default to the problem's, or balanced)."""
    p = result.problem
    if magnitudes is None:
        if p.magnitudes is None:
            raise InputError("magnitudes", "the problem carries none: the offsets are predicted from the initial magnitudes")
        magnitudes, a_magnitudes = initial_magnitudes(p)
    elif a_magnitudes is None:
        a_magnitudes = initial_magnitudes(with_magnitudes(p, magnitudes))[1]
    magnitudes, a_magnitudes = np.asarray(magnitudes, float), np.asarray(a_magnitudes, float)
    y_all = float_labels(p)
    q_all = np.array([float(x) for x in p.sq_norms])
    c = float(p.loss_factor)
    aligned = p.aligned_matrix()
    fitted = np.zeros(p.n, bool)
    growing = np.flatnonzero(aligned.any(axis=1))
    pis = _log_prefactors(y_all, q_all, c, p.signs[growing], p.active_matrix()[growing], magnitudes[growing], a_magnitudes[growing])
    live = {int(j): float(pi) for j, pi in zip(growing, pis)}
    initial = dict(live)
    changes: dict[int, list[tuple[int, float]]] = {}
    windows = []
    for jump in result.jumps:
        movers = list(jump.neurons)
        passengers = [j for j in live if j not in movers and (aligned[j] & ~fitted)[jump.samples].any()]
        J = movers + passengers
        # the window only involves the samples the neurons of J can still move
        cols = np.flatnonzero(aligned[J].any(axis=0) & ~fitted)
        y, q = y_all[cols], q_all[cols]
        current = {j: np.flatnonzero(aligned[j, cols]) for j in J}
        block = np.searchsorted(cols, jump.samples)
        fitted[jump.samples] = True
        rests = {j: np.flatnonzero(aligned[j, cols] & ~fitted[cols]) for j in passengers}
        mu = {j: 2 * c * np.linalg.norm(y[current[j]] * np.sqrt(q[current[j]])) for j in J}
        mu_rest = {j: 2 * c * np.linalg.norm(y[rests[j]] * np.sqrt(q[rests[j]])) for j in passengers}
        s0 = min((math.log(START_SIZE) - live[j]) / mu[j] for j in movers)
        flow = _WindowFlow(y, q, c, [j in movers for j in J], [live[j] + mu[j] * s0 for j in J], [mu[j] for j in J])
        a0, u0 = np.zeros(len(J) + 1), np.zeros((len(J) + 1, len(cols)))
        for row, j in enumerate(J):
            a0[row], u0[row] = escape_direction(y, q, current[j], int(p.signs[j]))
        offset, ss, states, phases = _run_window(
            flow,
            np.concatenate([a0, u0.ravel()]),
            s0,
            rtol,
            1 / max(mu.values()),
            block,
            min(FITTED, 10 * rtol) * np.abs(y_all).max(),
            [0.0] * len(movers) + [mu_rest[j] for j in passengers],
        )
        residuals, rates, norms, norm_rates = _curves(flow, states, phases)
        s1, end = ss[-1], phases[-1]
        a, u = flow.split(states[-1])
        for row, j in enumerate(J):
            if j in movers:
                del live[j]
                continue
            if rests[j].size:
                live[j] = _log_projection(a[row], u[row], float(end[row]), y, q, rests[j], int(p.signs[j])) - mu_rest[j] * s1
            else:  # all its samples fitted by others: it never escapes, and stays at its size
                live.pop(j)
                changes.setdefault(j, []).append((jump.k, float(norms[-1, row]) / 2))
                continue
            changes.setdefault(j, []).append((jump.k, float(live[j])))
        scale = np.exp(end[: len(movers)])
        windows.append(
            Window(
                k=jump.k,
                neurons=tuple(J),
                escaping=len(movers),
                samples=cols,
                block=block,
                offset=float(offset),
                s=ss,
                residuals=residuals[:, block],
                residual_rates=rates[:, block],
                log_sq_norms=norms,
                log_sq_norm_rates=norm_rates,
                a=scale * a[: len(movers)],
                u=scale[:, None] * u[: len(movers)],
            )
        )
    return Offsets(
        offsets=tuple(w.offset for w in windows),
        log_prefactors={j: float(v) for j, v in initial.items()},
        prefactor_changes=changes,
        windows=tuple(windows),
        magnitudes=magnitudes,
        a_magnitudes=a_magnitudes,
    )
