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
from .integrator import IntegrationStatus, Integrator, PerSampleFlow
from .simulate import float_labels, initial_magnitudes, with_magnitudes

__all__ = ["METHOD", "Offsets", "Window", "escape_direction", "log_prefactor", "predict_offsets", "prefactor"]

#: size of the escaping neurons when their window starts
START_SIZE = 1e-8
#: the escaping neurons have fitted their blocks once every residual there is below this many
#: integrator tolerances times max |y| (the residual cannot settle much below the tolerance)
FITTED = 10
METHOD = "approximate (float64): O(1)-time windows of the jumps from the initial magnitudes"
#: first step of each window's integration
FIRST_STEP = 1e-3


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


def _terminal(g):
    """``g`` as a terminal event on crossing 0 from above."""
    g.terminal, g.direction = True, -1
    return g


def _settle(integ: Integrator, t_max: float, events, on_step=None) -> IntegrationStatus:
    """Run until the terminal event among ``events``; IntegrationError if it has not occurred by ``t_max``."""
    status = integ.run(t_max, events, on_step).raise_if_failed()
    if status.status != 1:
        raise IntegrationError(f"the O(1) dynamics did not settle within t = {t_max:g}")
    return status


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


def _first_death(u, yq, P, Q) -> tuple[float, int]:
    """The smallest ``x = e^{νt} ≥ 1`` at which some ``u_i + yq_i A(t)`` reaches 0, where
    ``A = P sinh(νt) + Q (cosh(νt) − 1)``, and that ``i``; ``(inf, -1)`` if none does."""
    # x · (u + yq A) = yq (P+Q)/2 x² + (u − yq Q) x + yq (Q−P)/2: a quadratic in x, positive at x = 1
    qa, qb, qc = yq * (P + Q) / 2, u - yq * Q, yq * (Q - P) / 2
    disc = qb * qb - 4 * qa * qc
    best, first = math.inf, -1
    for i, (A2, B, C, D) in enumerate(zip(qa, qb, qc, disc)):
        if D < 0:
            continue
        if A2 == 0:
            roots = [-C / B] if B else []
        else:
            w = -(B + math.copysign(math.sqrt(D), B)) / 2  # no cancellation
            roots = [w / A2] + ([C / w] if w else [])
        for x in roots:
            if 1 <= x < best:
                best, first = x, i
    return best, first


def log_prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``π_j`` at the start: neuron ``j`` from scale 1 behaves like ``e^{π_j + μ_j t}`` along ``e_j``.

    While it is small the neuron follows the flow linearised at 0 (residual ``−y``), which is solved
    in closed form between deaths: with ``z = Σ y_i u_i`` over its live coordinates and
    ``ν = 2c sqrt(Σ y_i² q_i)``, ``(a, z)`` is a 2×2 linear system (``a' = 2c z``, ``z' = 2c R a``) and
    ``u_i = u_i(0) + y_i q_i ∫ 2c a``. Each misaligned coordinate dies at the root of a quadratic in
    ``e^{νt}``; ``rtol`` is not needed (kept for the signature of the integrated windows).
    """
    cols = np.flatnonzero(problem.active_matrix()[j])  # inactive coordinates never move
    y = float_labels(problem)[cols]
    q = np.array([float(x) for x in problem.sq_norms])[cols]
    c = float(problem.loss_factor)
    s = int(problem.signs[j])
    a, u = s * float(a_magnitude), np.array(magnitudes, float)[cols]
    alive = np.ones(len(cols), bool)
    misaligned = s * y < 0
    t = log_scale = 0.0
    while (alive & misaligned).any():
        R = float((y[alive] ** 2 * q[alive]).sum())
        nu = 2 * c * math.sqrt(R)
        z = float(y[alive] @ u[alive])
        P, Q = 2 * c * a / nu, 4 * c * c * z / nu**2
        dying = np.flatnonzero(alive & misaligned)
        x, first = _first_death(u[dying], y[dying] * q[dying], P, Q)
        if not math.isfinite(x):
            raise IntegrationError("a misaligned coordinate never dies: the neuron changes sign")
        A = P * (x - 1 / x) / 2 + Q * ((x + 1 / x) / 2 - 1)
        a = a * (x + 1 / x) / 2 + 2 * c * z / nu * (x - 1 / x) / 2
        u = np.where(alive, u + y * q * A, u)
        u[dying[first]] = 0.0  # exactly, like the integrator's deaths; a rounding below 0 dies too
        alive &= u > 0
        u = np.maximum(u, 0.0)
        t += math.log(x) / nu
        size = max(abs(a), float(np.abs(u).max()))
        a, u, log_scale = a / size, u / size, log_scale + math.log(size)
    aligned = np.flatnonzero(s * y > 0)
    mu = 2 * c * np.linalg.norm(y[aligned] * np.sqrt(q[aligned]))
    return _log_projection(a, u, log_scale, y, q, aligned, s) - mu * t


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``P_j = e^{π_j}``: at scale 1 the neuron grows like ``P_j e^{μ_j t}`` along its escape direction."""
    return math.exp(log_prefactor(problem, j, magnitudes, a_magnitude, rtol))


def _log_sq_norms(flow: PerSampleFlow, state, rate, q) -> tuple[np.ndarray, np.ndarray]:
    """``log(a_j² + ||w_j||²)`` of each neuron and its time derivative (``rate`` is ``flow(state)``)."""
    a, u = flow.split(state)
    da, du = flow.split(rate)
    sq = a**2 + (u**2 / q[None, :]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(sq) + 2 * flow.log_scales, 2 * (a * da + (u * du / q[None, :]).sum(axis=1)) / sq


def _residual_rate(flow: PerSampleFlow, state, rate) -> np.ndarray:
    """``dr/dt`` of every sample (the escaping neurons' outputs move it; ``rate`` is ``flow(state)``)."""
    a, u = flow.split(state)
    da, du = flow.split(rate)
    weight = np.where(flow.sources, np.exp(2 * flow.log_scales), 0.0)
    return (weight * da) @ np.maximum(u, 0.0) + (weight * a) @ np.where(u > 0, du, 0.0)


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
    live = {j: log_prefactor(p, j, magnitudes[j], a_magnitudes[j], rtol) for j in range(p.m) if aligned[j].any()}
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
        mu = {j: 2 * c * np.linalg.norm(y[current[j]] * np.sqrt(q[current[j]])) for j in J}
        s0 = min((math.log(START_SIZE) - live[j]) / mu[j] for j in movers)
        flow = PerSampleFlow(y, q, c, len(J), sources=[j in movers for j in J])
        a0, u0 = np.zeros(len(J)), np.zeros((len(J), len(cols)))
        for row, j in enumerate(J):
            a0[row], u0[row] = escape_direction(y, q, current[j], int(p.signs[j]))
            flow.log_scales[row] = live[j] + mu[j] * s0
        integ = Integrator(flow, np.concatenate([a0, u0.ravel()]), rtol=rtol, first_step=FIRST_STEP, renormalise=True)
        half = 0.5 * float((y[block] ** 2).sum())
        tol = FITTED * rtol * np.abs(y_all).max()

        def half_fitted(t, state):  # the window's loss crosses the midpoint of the plateaus at s = δ_k
            return float((flow.residual(state)[block] ** 2).sum()) - half

        half_fitted.direction = -1
        blocks_fitted = _terminal(lambda t, state: float(np.abs(flow.residual(state)[block]).max()) - tol)
        ss, residuals, rates, norms, norm_rates = [], [], [], [], []

        def record(t, state):
            ss.append(s0 + t)
            residuals.append(flow.residual(state)[block])
            f = flow(state)
            rates.append(_residual_rate(flow, state, f)[block])
            norm, rate = _log_sq_norms(flow, state, f, q)
            norms.append(norm)
            norm_rates.append(rate)

        record(0.0, integ.state)

        status = _settle(integ, -s0 + 1e4 / min(mu.values()), [half_fitted, blocks_fitted], record)
        s1 = s0 + integ.t
        a, u = flow.split(integ.state)
        fitted[jump.samples] = True
        for row, j in enumerate(J):
            if j in movers:
                del live[j]
                continue
            rest = np.flatnonzero(aligned[j, cols] & ~fitted[cols])
            if rest.size:
                mu_new = 2 * c * np.linalg.norm(y[rest] * np.sqrt(q[rest]))
                live[j] = _log_projection(a[row], u[row], float(flow.log_scales[row]), y, q, rest, int(p.signs[j])) - mu_new * s1
            else:  # all its samples fitted by others: it never escapes, and stays at its size
                live.pop(j)
                changes.setdefault(j, []).append((jump.k, float(norms[-1][row]) / 2))
                continue
            changes.setdefault(j, []).append((jump.k, float(live[j])))
        scale = np.exp(flow.log_scales[: len(movers)])
        windows.append(
            Window(
                k=jump.k,
                neurons=tuple(J),
                escaping=len(movers),
                samples=cols,
                block=block,
                offset=float(s0 + status.t_events[0][0]),
                s=np.array(ss),
                residuals=np.array(residuals),
                residual_rates=np.array(rates),
                log_sq_norms=np.array(norms),
                log_sq_norm_rates=np.array(norm_rates),
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
