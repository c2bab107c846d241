"""The ``O(1)`` structure of the jumps from the initial magnitudes: tie splits and offsets (theory §6, §9).

The limit fixes which samples each jump fits, but not the ``O(1)`` details that depend on the
initial magnitudes: how a shared sample's output ``y_i`` is split between tied neurons whose blocks
overlap, and the offsets ``δ_k`` of the drop times ``t_k = τ_k log(1/λ) + δ_k``. Neither depends on
``λ``. They are computed here by a chain of ``λ``-free integrations (float64, with the simulator's
integrator), so both are **approximate** floats.

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
   off its projection on its new escape direction; the escaping neurons' final shares
   ``a_j σ(u_ji) / y_i`` are the split of the shared samples.

In the limit ``L → ∞`` the windows are separated by times of order ``L``, so this chain is exact up
to the integrator's tolerance; at finite λ the simulator agrees up to corrections that vanish as a
power of λ (tests compare both at λ = 1e-20 and 1e-60).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .integrator import _bisect, _Flow, _hermite, _Integrator
from .simulate import float_labels, initial_magnitudes, with_magnitudes

#: size of the escaping neurons when their window starts
START_SIZE = 1e-8
#: the escaping neurons have fitted their blocks once every residual there is below this many
#: integrator tolerances times max |y| (the residual cannot settle much below the tolerance)
FITTED = 10
METHOD = "approximate (float64): O(1)-time coupled dynamics of the tied neurons from the initial magnitudes"


@dataclass(frozen=True)
class TieSplit:
    """The resolved split of jump ``k``'s shared samples.

    ``shares[i][j]`` is neuron ``j``'s share ``a_j σ(u_ji) / y_i`` of sample ``i``'s output (the
    shares of a sample sum to 1); ``sq_norms[j]`` is ``a_j² + ||w_j||²`` of each tied neuron after
    the tie.
    """

    k: int
    neurons: tuple[int, ...]
    shares: dict[int, dict[int, float]]
    sq_norms: dict[int, float]
    method: str = METHOD

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "shares": {str(i): {str(j): v for j, v in row.items()} for i, row in self.shares.items()},
            "sq_norms": {str(j): v for j, v in self.sq_norms.items()},
        }


@dataclass(frozen=True)
class Transitions:
    """The chain's results: ``offsets[k-1] = δ_k``, the splits of overlapping ties, the initial ``π_j``."""

    offsets: list[float]
    splits: dict[int, TieSplit]
    log_prefactors: dict[int, float]


class UnresolvedTie(ValueError):
    """No initial magnitudes to resolve the tie from."""


def _run_until(integ: _Integrator, done, t_max: float, on_step=None) -> None:
    h = 1e-3
    while not done():
        if integ.t >= t_max:
            raise FloatingPointError(f"the O(1) dynamics did not settle within t = {t_max:g}")
        h = integ.advance(h, t_max, on_step or (lambda *args: None))


def _escape_direction(y, q, samples, sign: int):
    """``(a, u)`` of the unit escape direction on ``samples`` (theory §5), in the coordinates ``u = v ||x||``."""
    b = np.zeros(len(y))
    b[samples] = np.abs(y[samples]) * np.sqrt(q[samples])
    v = b / np.linalg.norm(b) / math.sqrt(2)
    return sign / math.sqrt(2), v * np.sqrt(q)


def _log_projection(a: float, u: np.ndarray, log_scale: float, y, q, samples, sign: int) -> float:
    """``log`` of the component of ``e^{log_scale} (a, u)`` along the escape direction on ``samples``."""
    ea, eu = _escape_direction(y, q, samples, sign)
    proj = a * ea + float((u[samples] / q[samples]) @ eu[samples])
    if not proj > 0:
        raise FloatingPointError("a neuron has no component along its escape direction")
    return math.log(proj) + log_scale


def log_prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``π_j`` at the start: neuron ``j`` from scale 1 behaves like ``e^{π_j + μ_j t}`` along ``e_j``."""
    cols = np.flatnonzero(problem.active_matrix()[j])  # inactive coordinates never move
    y = float_labels(problem)[cols]
    q = np.array([float(x) for x in problem.sq_norms])[cols]
    c = float(problem.loss_factor)
    s = int(problem.signs[j])
    flow = _Flow(y, q, c, 1, sources=[False])  # small: residual −y
    integ = _Integrator(flow, np.concatenate([[s * a_magnitude], magnitudes[cols]]), rtol, rescale=True)
    misaligned = np.flatnonzero(s * y < 0)
    _run_until(integ, lambda: not np.any(integ.state[1:][misaligned] > 0), 1e6)
    aligned = np.flatnonzero(s * y > 0)
    mu = 2 * c * np.linalg.norm(y[aligned] * np.sqrt(q[aligned]))
    return _log_projection(integ.state[0], integ.state[1:], float(flow.kappa[0]), y, q, aligned, s) - mu * integ.t


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``P_j = e^{π_j}``: at scale 1 the neuron grows like ``P_j e^{μ_j t}`` along its escape direction."""
    return math.exp(log_prefactor(problem, j, magnitudes, a_magnitude, rtol))


def transitions(result, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9) -> Transitions:
    """Run the chain of module docstring over every jump of ``result``."""
    p = result.problem
    if magnitudes is None:
        if p.magnitudes is None:
            raise UnresolvedTie("the problem carries no initial magnitudes")
        magnitudes, a_magnitudes = initial_magnitudes(p)
    elif a_magnitudes is None:
        a_magnitudes = initial_magnitudes(with_magnitudes(p, magnitudes))[1]
    y_all = float_labels(p)
    q_all = np.array([float(x) for x in p.sq_norms])
    c = float(p.loss_factor)
    aligned = p.aligned_matrix()
    fitted = np.zeros(p.n, bool)
    live = {j: log_prefactor(p, j, magnitudes[j], a_magnitudes[j], rtol) for j in range(p.m) if aligned[j].any()}
    initial = dict(live)
    offsets, splits = [], {}
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
        flow = _Flow(y, q, c, len(J), sources=[j in movers for j in J])
        a0, u0 = np.zeros(len(J)), np.zeros((len(J), len(cols)))
        for row, j in enumerate(J):
            a0[row], u0[row] = _escape_direction(y, q, current[j], int(p.signs[j]))
            flow.kappa[row] = live[j] + mu[j] * s0
        integ = _Integrator(flow, np.concatenate([a0, u0.ravel()]), rtol, rescale=True)
        half = 0.5 * float((y[block] ** 2).sum())
        crossing = []

        def unfit(state):
            return float((flow.residual(state)[block] ** 2).sum())

        def on_step(t0, y0, f0, t1, y1, f1, h):
            if not crossing and unfit(y1) < half:
                crossing.append(t0 + h * _bisect(lambda th: unfit(_hermite(y0, f0, y1, f1, h, th)) < half))

        tol = FITTED * rtol * np.abs(y_all).max()
        _run_until(integ, lambda: np.abs(flow.residual(integ.state)[block]).max() < tol, -s0 + 1e4 / min(mu.values()), on_step)
        offsets.append(s0 + crossing[0])
        s1 = s0 + integ.t
        a, u = flow.split(integ.state)
        fitted[jump.samples] = True
        for row, j in enumerate(J):
            rest = np.flatnonzero(aligned[j, cols] & ~fitted[cols])
            if j in movers or not rest.size:  # escaped, or all its samples fitted by others: it never escapes
                del live[j]
                continue
            mu_new = 2 * c * np.linalg.norm(y[rest] * np.sqrt(q[rest]))
            live[j] = _log_projection(a[row], u[row], float(flow.kappa[row]), y, q, rest, int(p.signs[j])) - mu_new * s1
        if jump.shared.size:
            scale = np.exp(flow.kappa[: len(movers)])
            am, um = scale * a[: len(movers)], scale[:, None] * u[: len(movers)]
            share = am[:, None] * np.maximum(um, 0.0) / y[None, :]
            local = dict(zip(cols.tolist(), range(len(cols))))
            shares = {int(i): {j: float(share[row, local[int(i)]]) for row, j in enumerate(movers)} for i in jump.shared}
            sq = {j: float(am[row] ** 2 + (um[row] ** 2 / q).sum()) for row, j in enumerate(movers)}
            splits[jump.k] = TieSplit(jump.k, tuple(movers), shares, sq)
    return Transitions(offsets, splits, initial)


def resolve_tie(result, jump, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9) -> TieSplit:
    """The split of jump ``jump`` (a :class:`~limitproc.process.Jump` or its ``k``) of ``result``."""
    k = jump if isinstance(jump, int) else jump.k
    splits = transitions(result, magnitudes, a_magnitudes, rtol).splits
    if k not in splits:
        raise ValueError(f"jump {k} is not a tie with shared samples")
    return splits[k]


def attach_tie_splits(result) -> None:
    """Resolve every overlapping tie of ``result`` from ``problem.magnitudes`` (the engine's hook).

    Sets ``result.tie_splits`` ({k: TieSplit}), the numeric ``result.sq_norm_resolved``, and says in
    ``sq_norm_reason`` how it was obtained.
    """
    result.tie_splits = transitions(result).splits
    result.sq_norm_resolved = resolved_sq_norm(result, result.tie_splits)
    result.sq_norm_reason += f"; resolved from the initial magnitudes: N ≈ {result.sq_norm_resolved:.12g} ({METHOD})"


def resolved_sq_norm(result, splits: dict) -> float:
    """``N`` with the tied neurons' norms taken from their resolved splits."""
    tied = {j: split.sq_norms[j] for split in splits.values() for j in split.neurons}
    final = result.saddles[-1]
    return sum(tied[j] if j in tied else 2 * math.sqrt(float(Q)) for j, Q in final.block_norms.items())
