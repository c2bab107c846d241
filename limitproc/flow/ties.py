"""The ``O(1)`` structure of the jumps from the initial magnitudes: tie splits and offsets (theory §6, §9).

The limit fixes which samples each jump fits, but not the ``O(1)`` details that depend on the
initial magnitudes: how a shared sample's output ``y_i`` is split between tied neurons whose blocks
overlap, and the offsets ``δ_k`` of the drop times ``t_k = τ_k log(1/λ) + δ_k``. Neither depends on
``λ``. They are computed here by a chain of ``λ``-free integrations (float64, with the simulator's
integrator), so both are **approximate** floats. :func:`resolve_ties` returns them as a
:class:`TieResolution`, apart from the exact :class:`~limitproc.process.Result` it reads;
:func:`solve_resolved` composes ``solve`` and ``resolve_ties``.

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

from ..errors import InputError, IntegrationError
from ..problem import Problem
from ..process import Result, solve
from .integrator import IntegrationStatus, Integrator, PerSampleFlow
from .simulate import float_labels, initial_magnitudes, with_magnitudes

__all__ = [
    "INTERVAL_RTOL",
    "Resolved",
    "TieResolution",
    "TieSplit",
    "in_interval",
    "log_prefactor",
    "prefactor",
    "resolve_ties",
    "solve_resolved",
]

#: size of the escaping neurons when their window starts
START_SIZE = 1e-8
#: the escaping neurons have fitted their blocks once every residual there is below this many
#: integrator tolerances times max |y| (the residual cannot settle much below the tolerance)
FITTED = 10
METHOD = "approximate (float64): O(1)-time coupled dynamics of the tied neurons from the initial magnitudes"
#: first step of each window's integration
FIRST_STEP = 1e-3
#: relative tolerance of the check that the resolved N lies in the exact interval: the float chain
#: is accurate to about its integrator tolerance, and a split at a vertex attains an end exactly
INTERVAL_RTOL = 1e-6


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
class TieResolution:
    """The chain's results for one :class:`~limitproc.process.Result` (approximate floats).

    ``splits[k]`` is the split of jump ``k`` if its tied neurons share samples; ``sq_norm`` is ``N``
    with the tied neurons' norms taken from their splits (``2 sqrt(Q_j)`` for the others);
    ``offsets[k-1]`` is ``δ_k``; ``log_prefactors[j]`` is the initial ``π_j`` of each neuron with an
    aligned sample.
    """

    splits: dict[int, TieSplit]
    sq_norm: float
    offsets: tuple[float, ...]
    log_prefactors: dict[int, float]
    method: str = METHOD
    #: whether ``sq_norm`` lies in the exact ``Result.sq_norm_interval`` (relative tolerance
    #: :data:`INTERVAL_RTOL`, the float chain's accuracy); None when ``N`` is exact
    in_interval: bool | None = None

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "sq_norm": self.sq_norm,
            "in_interval": self.in_interval,
            "offsets": list(self.offsets),
            "log_prefactors": {str(j): v for j, v in self.log_prefactors.items()},
            "splits": {str(k): split.to_dict() for k, split in self.splits.items()},
        }

    def annotate(self, record: dict) -> dict:
        """The JSON record of the result (``Result.to_dict``) with each split as ``tie_split`` on its
        jump, the resolved ``sq_norm_resolved``, and ``sq_norm_undetermined`` saying how it was obtained."""
        out = dict(
            record,
            jumps=[self._annotate_jump(jump) for jump in record["jumps"]],
            sq_norm_resolved=self.sq_norm,
            sq_norm_resolved_in_interval=self.in_interval,
        )
        if out["sq_norm_undetermined"] is not None:
            where = "inside" if self.in_interval else "OUTSIDE"
            out["sq_norm_undetermined"] += (
                f"; resolved from the initial magnitudes: N ≈ {self.sq_norm:.12g}, {where} the exact interval ({self.method})"
            )
        return out

    def _annotate_jump(self, jump: dict) -> dict:
        if jump["k"] not in self.splits:
            return jump
        # ``tie_split`` goes before the optional escape directions, as it always has
        rest = {key: value for key, value in jump.items() if key != "escape_directions"}
        tail = {key: jump[key] for key in ("escape_directions",) if key in jump}
        return {**rest, "tie_split": self.splits[jump["k"]].to_dict(), **tail}


@dataclass(frozen=True)
class Resolved:
    """An exact ``result`` and, if its problem carries magnitudes and a tie shares samples, its
    ``ties`` resolved from them (else None)."""

    result: Result
    ties: TieResolution | None

    def to_dict(self, digits: int = 30, escape_directions: bool = False) -> dict:
        record = self.result.to_dict(digits, escape_directions)
        return record if self.ties is None else self.ties.annotate(record)


def solve_resolved(problem: Problem, *, rtol: float = 1e-9, **solve_options) -> Resolved:
    """:func:`~limitproc.process.solve` (``solve_options`` go there), then :func:`resolve_ties` when
    the problem carries magnitudes and some jump's tied neurons share samples."""
    result = solve(problem, **solve_options)
    overlapping = problem.magnitudes is not None and any(jump.shared.size for jump in result.jumps)
    return Resolved(result, resolve_ties(result, rtol=rtol) if overlapping else None)


def _terminal(g):
    """``g`` as a terminal event on crossing 0 from above."""
    g.terminal, g.direction = True, -1
    return g


def _settle(integ: Integrator, t_max: float, events) -> IntegrationStatus:
    """Run until the terminal event among ``events``; IntegrationError if it has not occurred by ``t_max``."""
    status = integ.run(t_max, events).raise_if_failed()
    if status.status != 1:
        raise IntegrationError(f"the O(1) dynamics did not settle within t = {t_max:g}")
    return status


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
        raise IntegrationError("a neuron has no component along its escape direction")
    return math.log(proj) + log_scale


def log_prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``π_j`` at the start: neuron ``j`` from scale 1 behaves like ``e^{π_j + μ_j t}`` along ``e_j``."""
    cols = np.flatnonzero(problem.active_matrix()[j])  # inactive coordinates never move
    y = float_labels(problem)[cols]
    q = np.array([float(x) for x in problem.sq_norms])[cols]
    c = float(problem.loss_factor)
    s = int(problem.signs[j])
    flow = PerSampleFlow(y, q, c, 1, sources=[False])  # small: residual −y
    integ = Integrator(flow, np.concatenate([[s * a_magnitude], magnitudes[cols]]), rtol=rtol, first_step=FIRST_STEP, renormalise=True)
    misaligned = np.flatnonzero(s * y < 0)
    if misaligned.size:
        # the largest misaligned coordinate: positive until the last of them dies (exactly 0)
        _settle(integ, 1e6, [_terminal(lambda t, state: float(state[1:][misaligned].max()))])
    aligned = np.flatnonzero(s * y > 0)
    mu = 2 * c * np.linalg.norm(y[aligned] * np.sqrt(q[aligned]))
    return _log_projection(integ.state[0], integ.state[1:], float(flow.log_scales[0]), y, q, aligned, s) - mu * integ.t


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-9) -> float:
    """``P_j = e^{π_j}``: at scale 1 the neuron grows like ``P_j e^{μ_j t}`` along its escape direction."""
    return math.exp(log_prefactor(problem, j, magnitudes, a_magnitude, rtol))


def resolve_ties(result: Result, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9) -> TieResolution:
    """Run the chain of the module docstring over every jump of ``result``, from ``magnitudes``
    (default: the problem's; ``a_magnitudes`` default to the problem's, or balanced). ``result`` is not changed."""
    p = result.problem
    if magnitudes is None:
        if p.magnitudes is None:
            raise InputError("magnitudes", "the problem carries none: a tie is resolved from the initial magnitudes")
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
        flow = PerSampleFlow(y, q, c, len(J), sources=[j in movers for j in J])
        a0, u0 = np.zeros(len(J)), np.zeros((len(J), len(cols)))
        for row, j in enumerate(J):
            a0[row], u0[row] = _escape_direction(y, q, current[j], int(p.signs[j]))
            flow.log_scales[row] = live[j] + mu[j] * s0
        integ = Integrator(flow, np.concatenate([a0, u0.ravel()]), rtol=rtol, first_step=FIRST_STEP, renormalise=True)
        half = 0.5 * float((y[block] ** 2).sum())
        tol = FITTED * rtol * np.abs(y_all).max()

        def half_fitted(t, state):  # the window's loss crosses the midpoint of the plateaus at s = δ_k
            return float((flow.residual(state)[block] ** 2).sum()) - half

        half_fitted.direction = -1
        blocks_fitted = _terminal(lambda t, state: float(np.abs(flow.residual(state)[block]).max()) - tol)
        status = _settle(integ, -s0 + 1e4 / min(mu.values()), [half_fitted, blocks_fitted])
        offsets.append(s0 + status.t_events[0][0])
        s1 = s0 + integ.t
        a, u = flow.split(integ.state)
        fitted[jump.samples] = True
        for row, j in enumerate(J):
            rest = np.flatnonzero(aligned[j, cols] & ~fitted[cols])
            if j in movers or not rest.size:  # escaped, or all its samples fitted by others: it never escapes
                del live[j]
                continue
            mu_new = 2 * c * np.linalg.norm(y[rest] * np.sqrt(q[rest]))
            live[j] = _log_projection(a[row], u[row], float(flow.log_scales[row]), y, q, rest, int(p.signs[j])) - mu_new * s1
        if jump.shared.size:
            scale = np.exp(flow.log_scales[: len(movers)])
            am, um = scale * a[: len(movers)], scale[:, None] * u[: len(movers)]
            share = am[:, None] * np.maximum(um, 0.0) / y[None, :]
            local = dict(zip(cols.tolist(), range(len(cols))))
            shares = {int(i): {j: float(share[row, local[int(i)]]) for row, j in enumerate(movers)} for i in jump.shared}
            sq = {j: float(am[row] ** 2 + (um[row] ** 2 / q).sum()) for row, j in enumerate(movers)}
            splits[jump.k] = TieSplit(jump.k, tuple(movers), shares, sq)
    tied = {j: split.sq_norms[j] for split in splits.values() for j in split.neurons}
    sq_norm = sum(tied[j] if j in tied else 2 * math.sqrt(float(Q)) for j, Q in result.final.block_norms.items())
    return TieResolution(
        splits,
        float(sq_norm),
        tuple(map(float, offsets)),
        {j: float(v) for j, v in initial.items()},
        in_interval=in_interval(result, float(sq_norm)),
    )


def in_interval(result: Result, sq_norm: float) -> bool | None:
    """Whether a float ``N`` lies in ``result.sq_norm_interval`` up to :data:`INTERVAL_RTOL` (None without one)."""
    if result.sq_norm_interval is None:
        return None
    lo, hi = (float(v.ball().mid()) for v in result.sq_norm_interval)
    return lo * (1 - INTERVAL_RTOL) <= sq_norm <= hi * (1 + INTERVAL_RTOL)
