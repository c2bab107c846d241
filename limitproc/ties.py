"""Resolving a tie whose blocks overlap from the initial magnitudes (spec §6): an approximate path.

When tied neurons share samples, the limit fixes which samples get fitted but not how each shared
sample's output ``y_i`` is split between the tied neurons: that depends on the neurons' ``O(1)``
prefactors, i.e. on the initial magnitudes, and not on ``λ``. The split is computed in two
``λ``-free stages, both integrated numerically with the simulator's integrator (float64, so the
split is a float result):

1. **Prefactors.** While a neuron is small its dynamics are linear with residual ``r = −y`` on its
   aligned samples. From its initial magnitudes (at scale 1) we integrate that linear flow until
   its misaligned coordinates have died; it is then linear with constant coefficients, and its
   growing part is ``P_j e^{μ_j t} e_j`` with ``e_j`` the escape direction (spec §5) and ``P_j``
   the projection onto it, times ``e^{−μ_j t}``. At scale ``λ`` the neuron is ``λ P_j e^{μ_j t} e_j``.
2. **Coupled dynamics.** The tied neurons have equal rates, so their relative sizes stay
   ``P_j / P_k``. We start them on their escape directions at size ``1e-7`` in that ratio and
   integrate the full nonlinear flow of these neurons on the union of their blocks until the
   residual there vanishes; the shares ``a_j σ(u_ji) / y_i`` at the end are the split.

This is exact in the limit (up to the integrator's tolerance) when no tied neuron lost an aligned
sample to an earlier jump: then nothing but the initial magnitudes enters its prefactor. Otherwise
the prefactors also depend on the ``O(1)`` shape of the earlier transitions, and the tie is
reported as not resolved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .simulate import _Flow, _Integrator, _float_labels, initial_magnitudes

#: size of the tied neurons when the coupled (nonlinear) integration starts
START_SIZE = 1e-7
METHOD = "approximate (float64): coupled O(1)-time dynamics of the tied neurons from the initial magnitudes"


@dataclass(frozen=True)
class TieSplit:
    """The resolved split of jump ``k``'s shared samples.

    ``shares[i][j]`` is neuron ``j``'s share ``a_j σ(u_ji) / y_i`` of sample ``i``'s output (the
    shares of a sample sum to 1); ``sq_norms[j]`` is ``a_j² + ||w_j||²`` of each tied neuron after
    the tie; ``prefactors[j]`` is ``P_j``.
    """

    k: int
    neurons: tuple[int, ...]
    shares: dict[int, dict[int, float]]
    sq_norms: dict[int, float]
    prefactors: dict[int, float]
    method: str = METHOD

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "shares": {str(i): {str(j): v for j, v in row.items()} for i, row in self.shares.items()},
            "sq_norms": {str(j): v for j, v in self.sq_norms.items()},
        }


class UnresolvedTie(ValueError):
    """The tie's split depends on more than the initial magnitudes (see the module docstring)."""


def _run_until(integ: _Integrator, done, t_max: float) -> None:
    h = 1e-3
    while not done() and integ.t < t_max:
        h = integ.advance(h, t_max, lambda *args: None)


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float, rtol: float = 1e-11) -> float:
    """``P_j``: neuron ``j`` at scale 1 behaves like ``P_j e^{μ_j t}`` along its escape direction."""
    y = _float_labels(problem)
    q = np.array([float(x) for x in problem.sq_norms])
    c = float(problem.loss_factor)
    s = int(problem.signs[j])
    active = problem.active_matrix()[j]
    u0 = np.where(active, magnitudes, -magnitudes)
    flow = _Flow(y, q, c, 1, residual=-y)
    integ = _Integrator(flow, np.concatenate([[s * a_magnitude], u0]), rtol, rescale=True)
    misaligned = np.flatnonzero(active & (s * y < 0))
    _run_until(integ, lambda: not np.any(integ.state[1:][misaligned] > 0), 1e6)
    # now linear with constant coefficients: project on the +μ eigenvector in (a, v = u/||x||)
    aligned = problem.aligned_set(j)
    b = y[aligned] * np.sqrt(q[aligned])
    mu = 2 * c * np.linalg.norm(b)
    a, u = integ.state[0], integ.state[1:]
    e_a, e_v = s / math.sqrt(2), np.abs(b) / np.linalg.norm(b) / math.sqrt(2)
    proj = a * e_a + (u[aligned] / np.sqrt(q[aligned])) @ e_v
    return float(proj) * math.exp(float(flow.kappa[0]) - mu * integ.t)


def resolve_tie(result, jump, magnitudes=None, a_magnitudes=None, rtol: float = 1e-11) -> TieSplit:
    """Split jump ``jump`` (a :class:`~limitproc.process.Jump` or its ``k``) of ``result``."""
    p = result.problem
    jump = result.jumps[jump - 1] if isinstance(jump, int) else jump
    if magnitudes is None:
        if p.magnitudes is None:
            raise UnresolvedTie("the problem carries no initial magnitudes")
        magnitudes, a_magnitudes = initial_magnitudes(p)
    elif a_magnitudes is None:
        q = np.array([float(x) for x in p.sq_norms])
        a_magnitudes = np.sqrt((np.asarray(magnitudes) ** 2 / q[None, :]).sum(axis=1))
    aligned = p.aligned_matrix()
    for j in jump.neurons:
        if not np.array_equal(np.flatnonzero(aligned[j]), jump.blocks[j]):
            raise UnresolvedTie(f"neuron {j} lost aligned samples to an earlier jump: its prefactor depends on that transition")
    J = list(jump.neurons)
    P = {j: prefactor(p, j, magnitudes[j], a_magnitudes[j], rtol) for j in J}
    U = jump.samples
    y = _float_labels(p)[U]
    q = np.array([float(x) for x in p.sq_norms])[U]
    top = max(P.values())
    a0, u0 = np.zeros(len(J)), np.zeros((len(J), len(U)))
    for row, j in enumerate(J):
        size = START_SIZE * P[j] / top
        b = np.where(np.isin(U, jump.blocks[j]), np.abs(y) * np.sqrt(q), 0.0)
        a0[row] = int(p.signs[j]) * size / math.sqrt(2)
        u0[row] = size * b / np.linalg.norm(b) / math.sqrt(2) * np.sqrt(q)
    flow = _Flow(y, q, float(p.loss_factor), len(J))
    integ = _Integrator(flow, np.concatenate([a0, u0.ravel()]), rtol, rescale=False)
    _run_until(integ, lambda: np.abs(flow.residual(integ.state)).max() < 1e-9 * np.abs(y).max(), 1e7)
    a, u = flow.split(integ.state)
    share = a[:, None] * np.maximum(u, 0.0) / y[None, :]
    col = {int(i): c for c, i in enumerate(U)}
    shares = {int(i): {j: float(share[row, col[int(i)]]) for row, j in enumerate(J)} for i in jump.shared}
    sq = {j: float(a[row] ** 2 + (u[row] ** 2 / q).sum()) for row, j in enumerate(J)}
    return TieSplit(jump.k, tuple(J), shares, sq, P)


def attach_tie_splits(result) -> None:
    """Resolve every overlapping tie of ``result`` from ``problem.magnitudes`` (engine hook).

    Sets ``result.tie_splits`` ({k: TieSplit}) and, when all of them resolve, the numeric
    ``result.sq_norm_resolved`` with ``sq_norm_reason`` saying how it was obtained.
    """
    splits, failures = {}, []
    for jump in result.jumps:
        if jump.shared.size:
            try:
                splits[jump.k] = resolve_tie(result, jump)
            except UnresolvedTie as exc:
                failures.append(f"jump {jump.k}: {exc}")
    result.tie_splits = splits
    if failures:
        result.sq_norm_reason += "; not resolved from the magnitudes (" + "; ".join(failures) + ")"
        return
    result.sq_norm_resolved = resolved_sq_norm(result, splits)
    result.sq_norm_reason += f"; resolved from the initial magnitudes: N ≈ {result.sq_norm_resolved:.12g} ({METHOD})"


def resolved_sq_norm(result, splits: dict) -> float:
    """``N`` with the tied neurons' norms taken from their resolved splits."""
    tied = {j: split.sq_norms[j] for split in splits.values() for j in split.neurons}
    final = result.saddles[-1]
    return sum(tied[j] if j in tied else 2 * math.sqrt(float(Q)) for j, Q in final.block_norms.items())
