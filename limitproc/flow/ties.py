"""Tie resolution from the initial magnitudes: how tied neurons split their shared samples (theory §6).

The limit fixes which samples each jump fits, but not how a shared sample's output ``y_i`` is split
between tied neurons whose blocks overlap: that depends on the initial magnitudes, not on ``λ``.
:func:`resolve_ties` reads the split off the jump's ``O(1)`` window, computed by the chain of
:func:`~limitproc.flow.offsets.predict_offsets` (which also gives the offsets ``δ_k``): the escaping
neurons' final shares ``a_j σ(u_ji) / y_i`` are the split. Both are **approximate** floats, returned
as a :class:`TieResolution` apart from the exact :class:`~limitproc.process.Result` it reads;
:func:`solve_resolved` composes ``solve`` and ``resolve_ties``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..problem import Problem
from ..process import Result, solve
from .offsets import predict_offsets
from .simulate import float_labels, float_sq_norms

__all__ = ["INTERVAL_RTOL", "Resolved", "TieResolution", "TieSplit", "in_interval", "resolve_ties", "solve_resolved"]

METHOD = "approximate (float64): O(1)-time coupled dynamics of the tied neurons from the initial magnitudes"
#: a result of descent (theory §11): the same, by the descent map with its step; its offsets hold up
#: to O(η) (where λ puts the iterates), its splits to about 1e-9
DESCENT_METHOD = "approximate (float64): O(1)-time coupled descent of the tied neurons (iterated with the step) from the initial magnitudes"
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


def resolve_ties(result: Result, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9) -> TieResolution:
    """The splits of ``result``'s overlapping ties and the resolved ``N``, from the jumps' windows
    (:func:`~limitproc.flow.offsets.predict_offsets`, with the same defaults of the magnitudes). ``result`` is not changed."""
    p = result.problem
    chain = predict_offsets(result, magnitudes, a_magnitudes, rtol)
    method = METHOD if result.lr is None else DESCENT_METHOD
    unit = p.unit_factor  # norms in the problem's units, as the exact interval
    y_all = float_labels(p)
    q_all = float_sq_norms(p)
    splits = {}
    for jump, window in zip(result.jumps, chain.windows):
        if not jump.shared.size:
            continue
        movers = window.neurons[: window.escaping]
        y, q = y_all[window.samples], q_all[window.samples]
        share = window.a[:, None] * np.maximum(window.u, 0.0) / y[None, :]
        local = dict(zip(window.samples.tolist(), range(len(window.samples))))
        shares = {int(i): {j: float(share[row, local[int(i)]]) for row, j in enumerate(movers)} for i in jump.shared}
        sq = {j: unit * float(window.a[row] ** 2 + (window.u[row] ** 2 / q).sum()) for row, j in enumerate(movers)}
        splits[jump.k] = TieSplit(jump.k, tuple(movers), shares, sq, method)
    tied = {j: split.sq_norms[j] for split in splits.values() for j in split.neurons}
    sq_norm = sum(tied[j] if j in tied else unit * 2 * math.sqrt(float(Q)) for j, Q in result.final.block_norms.items())
    return TieResolution(
        splits, float(sq_norm), chain.offsets, chain.log_prefactors, method, in_interval=in_interval(result, float(sq_norm))
    )


def in_interval(result: Result, sq_norm: float) -> bool | None:
    """Whether a float ``N`` lies in ``result.sq_norm_interval`` up to :data:`INTERVAL_RTOL` (None without one)."""
    if result.sq_norm_interval is None:
        return None
    lo, hi = (float(v.ball().mid()) for v in result.sq_norm_interval)
    return lo * (1 - INTERVAL_RTOL) <= sq_norm <= hi * (1 + INTERVAL_RTOL)
