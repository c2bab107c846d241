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
   times ``e^{−μ_j t}``: in closed form, all neurons at once (:func:`_log_prefactors`).
2. **Each jump** is an ``O(1)`` window around ``t = τ_k L``, with time ``s = t − τ_k L``. The
   escaping neurons start on their escape directions at size ``e^{π_j + μ_j s_0}`` (about ``1e-8``)
   and follow the full flow on their blocks; the other live neurons whose samples they fit ride along
   linearised, under the same residual. The loss crosses the midpoint of the two plateaus at
   ``s = δ_k``. When the escaping neurons have fitted their blocks, each passenger's ``π_j`` is read
   off its projection on its new escape direction (a passenger left with no unfitted aligned sample
   stops growing: its ``π_j`` is then the log of its size).

The windows are integrated with an integrating factor (each neuron relative to its growth at its
rate), so the integrator's steps follow the jump and not the growth before it, and side by side in
one integration, each in its own time unit ``1/μ``: a window's shape does not depend on the
prefactors except for tied escaping neurons, whose windows wait for their prefactors. Each window
is integrated on groups of its samples that the flow cannot tell apart (alike in ``q_i``, the sign
of ``y_i``, the block and the escaping neurons aligned with them: one coordinate per neuron and
group, exactly), so the state is small (n = 200, m = 16, seed 1: 37 neurons × 2 groups instead of
37 × 103 samples). The cost is one integration of some fifty steps (``rtol = 1e-6``) per batch of
windows: one batch, and one more for each tie that has to wait (n = 200, m = 16, seed 1: two
batches for eight jumps). Each window's midpoint crossing is then refined by one Newton step on the
flow integrated from the step before it (one short integration for all the batch's windows).

In the limit ``L → ∞`` the windows are separated by times of order ``L``, so this chain is exact up
to the integrator's tolerance; at finite λ the simulator agrees up to corrections that vanish as a
power of λ (tests compare both at λ = 1e-20 and 1e-60).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, IntegrationError
from ..process import Result
from .descent import Descent, check_descent_steps, growth_rate
from .integrator import Integrator, PerSampleFlow, hermite
from .simulate import float_labels, float_sq_norms, initial_magnitudes, with_magnitudes

__all__ = ["DESCENT_METHOD", "METHOD", "Offsets", "Window", "escape_direction", "log_prefactor", "predict_offsets", "prefactor"]

#: size of the escaping neurons when their window starts
START_SIZE = 1e-8
#: the same for descent windows, whose every step is taken: the linear start is good to about its
#: square (relative), and the window is about a quarter shorter
DESCENT_START_SIZE = 1e-5
#: the escaping neurons have fitted their blocks once every residual there is below this times
#: max |y|, or 10 integrator tolerances times max |y| if that is smaller: their final norms and the
#: passengers' prefactors are then good to about that (the settled tail costs few steps)
FITTED = 1e-7
METHOD = "approximate (float64): O(1)-time windows of the jumps from the initial magnitudes"
DESCENT_METHOD = "approximate (float64): O(1)-time windows of the jumps from the initial magnitudes, iterated with the descent step"
#: first step of the windows' integration, the longest interval between the checks that they have
#: settled, and the longest they may take to settle, in units of each window's time ``1 / μ`` (its largest rate)
FIRST_STEP, CHECK, SETTLE = 1.0, 4.0, 1e4
#: points of the grids on which a step's cubic Hermite interpolant is searched for the midpoint
#: crossing (twice: to 1/GRID² of the step; the Newton step after it takes the rest)
GRID = 128


@dataclass(frozen=True, eq=False)
class Window:
    """The ``λ``-free integration around jump ``k``, in its time ``s = t − τ_k log(1/λ)``.

    ``neurons`` are the escaping neurons (the first ``escaping``) and then the passengers;
    ``samples`` are the window's samples (global indices), of which ``block`` (positions in
    ``samples``) are the jump's. At each recorded ``s``: ``group_residuals`` of the block's groups
    of samples (see ``_Plan``; the block samples' ``residuals`` are their products with
    ``block_expand``, and the sum of their squares is the groups'), their derivatives
    ``group_residual_rates`` (for cubic interpolation between the steps), and
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
    group_residuals: np.ndarray
    group_residual_rates: np.ndarray
    block_expand: np.ndarray
    log_sq_norms: np.ndarray
    log_sq_norm_rates: np.ndarray
    a: np.ndarray
    u: np.ndarray

    @property
    def residuals(self) -> np.ndarray:
        """``(points, block)``: the block samples' residuals at each recorded ``s``."""
        return self.group_residuals @ self.block_expand

    @property
    def residual_rates(self) -> np.ndarray:
        """``(points, block)``: their derivatives in ``s``."""
        return self.group_residual_rates @ self.block_expand


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


def _log_prefactors(y, q, c: float, signs, active, magnitudes, a_magnitudes) -> np.ndarray:
    """``π_j`` of each row (a neuron: its ``signs``, ``active`` coordinates and magnitudes), see :func:`log_prefactor`.

    With ``s`` the row's sign and ``A = s ∫ 2c a dt``, a live coordinate is ``u_i(0) + s y_i q_i A``, so
    the misaligned ones die in the order of ``θ_i = u_i(0) / (|y_i| q_i)``, whatever ``a`` does. In
    ``A`` the flow is polynomial: ``dz/dA = R`` (``z = s Σ y_i u_i``, ``R = Σ y_i² q_i`` over the live
    coordinates, constant between deaths), ``d(a²)/dA = 2z``; and ``√R a + z`` grows like ``e^{νt}``,
    ``√R a − z`` decays like ``e^{−νt}`` (``ν = 2c √R``), which gives the time between deaths. So every
    row's deaths are taken at once, without integrating."""
    s = np.asarray(signs, float)
    u = np.where(active, magnitudes, 0.0)  # inactive coordinates never move
    alive = active & (u > 0)
    sy = s[:, None] * y[None, :]
    dying = alive & (sy < 0)
    yq = y * y * q
    with np.errstate(divide="ignore", invalid="ignore"):  # y_i = 0 is never misaligned
        thresholds = np.where(dying, u / (np.abs(y) * q)[None, :], np.inf)
    order = np.argsort(thresholds, axis=1, kind="stable")
    theta = np.take_along_axis(thresholds, order, axis=1)
    deaths = dying.sum(axis=1)
    last = np.where(deaths > 0, theta[np.arange(len(s)), np.maximum(deaths - 1, 0)], 0.0)
    theta = np.where(np.isfinite(theta), theta, last[:, None])  # padding: intervals of length 0
    dA = np.diff(theta, axis=1, prepend=0.0)
    lost = np.take_along_axis(np.where(dying, yq, 0.0), order, axis=1)
    R = np.where(alive, yq, 0.0).sum(axis=1)[:, None] - np.cumsum(lost, axis=1) + lost  # on each interval
    z0 = (np.where(alive, sy, 0.0) * u).sum(axis=1)
    a0 = np.asarray(a_magnitudes, float)
    z = np.concatenate([z0[:, None], z0[:, None] + np.cumsum(R * dA, axis=1)], axis=1)
    a2 = np.concatenate([(a0 * a0)[:, None], (a0 * a0)[:, None] + np.cumsum((z[:, :-1] + z[:, 1:]) * dA, axis=1)], axis=1)
    C = R * a2[:, :-1] - z[:, :-1] ** 2  # R a² − z², constant on the interval
    a = np.sqrt(np.maximum(a2, 0.0))
    crosses = (z[:, :-1] < 0) & (z[:, 1:] > 0)  # z = 0 inside: there a² = C / R is its least
    if ((dA > 0) & ((a2[:, 1:] <= 0) | (crosses & (C <= 0)))).any():
        raise IntegrationError("a misaligned coordinate never dies: the neuron changes sign")
    root = np.sqrt(R)
    with np.errstate(divide="ignore", invalid="ignore"):
        grow = np.log((root * a[:, 1:] + z[:, 1:]) / (root * a[:, :-1] + z[:, :-1]))  # no cancellation for z ≥ 0
        decay = -np.log((root * a[:, 1:] - z[:, 1:]) / (root * a[:, :-1] - z[:, :-1]))  # for z ≤ 0
        through = np.log((root * a[:, :-1] - z[:, :-1]) * (root * a[:, 1:] + z[:, 1:]) / C)  # through z = 0
        spent = np.where(z[:, :-1] >= 0, grow, np.where(z[:, 1:] <= 0, decay, through)) / (2 * c * root)
    t = np.where(dA > 0, spent, 0.0).sum(axis=1)
    aligned = active & (sy > 0)
    norm = np.sqrt(np.where(aligned, yq, 0.0).sum(axis=1))  # |b| of the escape direction
    grown = np.where(aligned & alive, u + (np.abs(y) * q)[None, :] * last[:, None], 0.0)
    return _log_along_escape(a[:, -1], grown, y, norm) - 2 * c * norm * t


def _log_along_escape(a, aligned_u, y, norm) -> np.ndarray:
    """``log`` of each row's component along its escape direction (theory §5), from ``a_j`` signed by
    ``s_j``, its coordinates ``aligned_u`` on its aligned samples (0 elsewhere) and ``norm = |b_j|``."""
    proj = (a + (aligned_u * np.abs(y)).sum(axis=1) / norm) / math.sqrt(2)
    if not (proj > 0).all():
        raise IntegrationError("a neuron has no component along its escape direction")
    return np.log(proj)


def log_prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float) -> float:
    """``π_j`` at the start: neuron ``j`` from scale 1 behaves like ``e^{π_j + μ_j t}`` along ``e_j``.

    While it is small the neuron follows the flow linearised at 0 (residual ``−y``), which is solved
    in closed form between deaths: with ``z = Σ y_i u_i`` over its live coordinates and
    ``ν = 2c sqrt(Σ y_i² q_i)``, ``(a, z)`` is a 2×2 linear system (``a' = 2c z``, ``z' = 2c R a``) and
    ``u_i = u_i(0) + y_i q_i ∫ 2c a``: the misaligned coordinates die in a known order, and the time
    between deaths is a logarithm (:func:`_log_prefactors`).
    """
    y, q, c = float_labels(problem), float_sq_norms(problem), float(problem.loss_factor)
    rows = slice(j, j + 1)
    mags, a_mags = np.asarray(magnitudes, float)[None, :], np.array([a_magnitude], float)
    return float(_log_prefactors(y, q, c, problem.signs[rows], problem.active_matrix()[rows], mags, a_mags)[0])


def prefactor(problem, j: int, magnitudes: np.ndarray, a_magnitude: float) -> float:
    """``P_j = e^{π_j}``: at scale 1 the neuron grows like ``P_j e^{μ_j t}`` along its escape direction."""
    return math.exp(log_prefactor(problem, j, magnitudes, a_magnitude))


@dataclass(frozen=True, eq=False)
class _Plan:
    """The structure of jump ``k``'s window, fixed by the limit alone: escaping neurons (the first
    ``escaping``) and passengers ``neurons``, the window's ``samples`` and ``block`` (positions in
    ``samples``), each neuron's current and remaining aligned samples (positions) and rates.

    The window is integrated on **groups** of its samples, those alike in ``q_i``, the sign of
    ``y_i``, being in the block and which escaping neurons they are aligned with: on a group every
    residual is the same multiple of ``y_i``, and every neuron's ``u_ji`` (from its escape direction)
    the same multiple of ``|y_i|`` on the group's samples it is aligned with, so one coordinate per
    neuron and group is exact. Group ``G`` acts as one sample with label ``sgn_G √Y_G``
    (``Y_G = Σ y_i²``) and ``q_G`` (``labels``, ``sq``); ``mask[j, G] = Y_jG / Y_G`` is the share of it
    neuron ``j`` is aligned with; ``start`` the neurons' escape directions; per-sample values are the
    group's times ``expand[G, i] = |y_i| / √Y_G``; ``in_block`` marks the block's groups."""

    k: int
    neurons: tuple[int, ...]
    escaping: int
    samples: np.ndarray
    block: np.ndarray
    current: tuple[np.ndarray, ...]
    rests: tuple[np.ndarray, ...]
    mu: np.ndarray
    mu_rest: np.ndarray
    labels: np.ndarray
    sq: np.ndarray
    mask: np.ndarray
    start: np.ndarray
    expand: np.ndarray
    in_block: np.ndarray


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, group)`` of the distinct columns of ``keys`` (rows of integers ``≥ 0``): the first
    column of each group and each column's group, ranked one row at a time (no bound on the rows)."""
    code = np.zeros(keys.shape[1], int)
    for row in keys:
        code = np.unique(code * (int(row.max()) + 1) + row, return_inverse=True)[1].ravel()
    first, group = np.unique(code, return_index=True, return_inverse=True)[1:]
    return first, group.ravel()


def _plans(result: Result, y_all, q_all, c: float) -> list[_Plan]:
    """Every jump's :class:`_Plan`. Which neurons ride along does not depend on the magnitudes."""
    p = result.problem
    aligned = p.aligned_matrix()
    fitted = np.zeros(p.n, bool)
    live = set(np.flatnonzero(aligned.any(axis=1)).tolist())
    out = []
    for jump in result.jumps:
        movers = list(jump.neurons)
        others = sorted(live - set(movers))
        passengers = [j for j, rides in zip(others, (aligned[np.ix_(others, jump.samples)] & ~fitted[jump.samples]).any(axis=1)) if rides]
        J = movers + passengers
        # the window only involves the samples the neurons of J can still move
        cols = np.flatnonzero(aligned[J].any(axis=0) & ~fitted)
        y, q = y_all[cols], q_all[cols]
        fitted[jump.samples] = True
        on = aligned[np.ix_(J, cols)]
        rest = on & ~fitted[cols] & (np.arange(len(J)) >= len(movers))[:, None]
        current, rests = tuple(map(np.flatnonzero, on)), tuple(map(np.flatnonzero, rest))
        mu, mu_rest = 2 * c * np.sqrt(on @ (y * y * q)), 2 * c * np.sqrt(rest @ (y * y * q))
        live -= set(movers) | {j for j, i in zip(J[len(movers) :], rests[len(movers) :]) if not i.size}
        block = np.searchsorted(cols, jump.samples)
        in_block = np.zeros(len(cols), bool)
        in_block[block] = True
        kind = np.unique(q, return_inverse=True)[1].ravel() * 4 + in_block * 2 + (y > 0)
        first, group = _groups(np.vstack([kind, on[: len(movers)]]))
        member = np.zeros((len(cols), len(first)))
        member[np.arange(len(cols)), group] = 1.0
        Y = (y * y) @ member
        expand = member.T * (np.abs(y) / np.sqrt(Y[group]))[None, :]
        mask = (on * (y * y)) @ member / Y
        start = (mask > 0) * (q[first] * np.sqrt(Y))[None, :] / (math.sqrt(2) * (mu / (2 * c)))[:, None]  # |b_j| = μ_j / 2c
        out.append(
            _Plan(
                k=jump.k,
                neurons=tuple(J),
                escaping=len(movers),
                samples=cols,
                block=block,
                current=current,
                rests=rests,
                mu=mu,
                mu_rest=mu_rest,
                labels=np.sign(y[first]) * np.sqrt(Y),
                sq=q[first],
                mask=mask,
                start=start,
                expand=expand,
                in_block=in_block[first],
            )
        )
    return out


def _ready(plans: list[_Plan], first: int, k: int) -> bool:
    """Whether window ``k`` can be integrated before the windows ``first … k−1``: a single escaping
    neuron's prefactor only shifts its window in ``s``, tied ones' must be final."""
    movers = set(plans[k].neurons[: plans[k].escaping])
    return len(movers) == 1 or not any(movers & set(plans[i].neurons[plans[i].escaping :]) for i in range(first, k))


class _BatchFlow(PerSampleFlow):
    """Several windows side by side, each neuron with an integrating factor, in one time ``τ``.

    Row ``j`` (a neuron of window ``w``, whose time is ``s = s_0 + τ / ν_w`` with ``ν_w`` its largest
    rate) is ``e^{κ_j + ρ_j s} (a_j, u_j)``. A neuron growing at its rate ``ρ_j`` is then constant, so
    the integrator's steps follow the jumps, not the 18 e-folds of growth before them, and every jump
    takes the same ``O(1)`` time in ``τ``, so one integration serves them all. Windows share nothing
    (each has its own residuals); their groups of samples are padded with zeros to the widest. The
    factor makes the field depend on ``τ`` and the integrator integrates autonomous fields: the last
    row's ``a`` is ``τ``. The escaping neurons' rows come first (a window's rows keep their order);
    ``log_scales`` are given window by window, in the order of ``plans``.
    """

    def __init__(self, plans: list[_Plan], c: float, log_scales):
        rows = [(w, row) for w, plan in enumerate(plans) for row in range(len(plan.neurons))]
        order = sorted(range(len(rows)), key=lambda i: (rows[i][1] >= plans[rows[i][0]].escaping, i))
        rows = [rows[i] for i in order]
        width = max(len(plan.labels) for plan in plans)
        super().__init__(np.zeros(width), np.ones(width), c, len(rows) + 1, sources=[row < plans[w].escaping for w, row in rows] + [False])
        self.window = np.array([w for w, _ in rows])
        self.escaping = int(self.sources.sum())  # the rows whose outputs enter the residuals: the first ones
        # each escaping row's window (and a row of zeros for the clock), and the labels of each window's groups
        self.member = (self.window[None, : self.escaping] == np.arange(len(plans) + 1)[:, None]).astype(float)
        self.labels = np.zeros((len(plans) + 1, width))
        self.peaks = np.zeros((len(plans), width))  # max |r_i| over a block's group is |r_G| times this, 0 off the block
        self.sq, self.mask = np.ones((len(rows) + 1, width)), np.zeros((len(rows) + 1, width))
        for w, plan in enumerate(plans):
            groups = len(plan.labels)
            self.labels[w, :groups] = plan.labels
            self.peaks[w, :groups] = plan.expand.max(axis=1) * plan.in_block
            self.sq[:-1][self.window == w, :groups] = plan.sq
            self.mask[:-1][self.window == w, :groups] = plan.mask
        self.speed = np.append([1 / plans[w].mu.max() for w, _ in rows], 0.0)  # ds/dτ
        self.log_scales = np.append(np.asarray(log_scales, float)[order], 0.0)
        self.rates = np.append([plans[w].mu[row] for w, row in rows], 0.0)
        self.rates_after = np.append([0.0 if row < plans[w].escaping else plans[w].mu_rest[row] for w, row in rows], 0.0)
        of_row = np.append(self.window, len(plans))  # the clock row reads the row of zeros
        self._row_member, self._row_labels = self.member[of_row], self.labels[of_row]  # each row's window's
        self._set_rates()

    def _set_rates(self) -> None:
        """The field's constants from ``log_scales``, ``rates`` and ``speed``."""
        self._speed_two_c = -self.two_c * self.speed[:, None] * self.mask  # −2c ν_w^{-1} M_jG
        self._speed_sq = -self.two_c * self.speed[:, None] * self.sq  # −2c ν_w^{-1} q_G
        decay = -self.speed * self.rates  # the integrating factor's −ρ_j ds/dτ, on a_j and u_j
        self._decay = np.concatenate([decay, np.repeat(decay, self.n)])
        E = self.escaping
        self._E_scales, self._E_rates = 2 * self.log_scales[:E], 2 * self.rates[:E] * self.speed[:E]

    def phases(self, state) -> np.ndarray:
        """``κ_j + ρ_j s`` of every row."""
        return self.log_scales + self.rates * self.speed * state[self.m - 1]

    def _outputs(self, state, pos) -> np.ndarray:
        """``(escaping, width)``: the escaping rows' outputs ``e^{2(κ_j + ρ_j s)} a_j σ(u_j)``."""
        E = self.escaping
        weights = np.exp(self._E_scales + self._E_rates * state[self.m - 1])
        weights *= state[:E]
        return weights[:, None] * pos[:E]

    def residuals(self, state) -> np.ndarray:
        """``(windows, width)``: each window's residuals (of its groups)."""
        return (self.member @ self._outputs(state, np.maximum(self.split(state)[1], 0.0)) - self.labels)[:-1]

    def __call__(self, state) -> np.ndarray:
        m = self.m
        a, u = state[:m], state[m:].reshape(m, self.n)
        pos = np.maximum(u, 0.0)
        # kept: a descent window reads its block's residuals here instead of evaluating the outputs again
        r = self.row_residuals = self._row_member @ self._outputs(state, pos) - self._row_labels  # each row's window's, 0 for the clock
        out = self._decay * state
        out[:m] += np.einsum("jn,jn->j", pos * self._speed_two_c, r)
        out[m - 1] = 1.0
        out[m:].reshape(m, self.n)[:] += r * self._speed_sq * np.where(u > 0, a[:, None], 0.0)
        return out

    def fold(self, state) -> np.ndarray:
        """``state`` with the factors so far moved into the scales and ``τ`` back at 0; from then on the
        escaping neurons' factors are stopped and the passengers' follow their rates after the jump."""
        self.log_scales, self.rates = self.phases(state), self.rates_after
        self._set_rates()
        state = state.copy()
        state[self.m - 1] = 0.0
        return state


def _curves(a, u, phases, plan: _Plan, c: float):
    """At each recorded point of one window (``a (points, J)``, ``u (points, J, groups)``, ``phases``
    their ``κ + ρ s``): every group's residual and its rate in ``s``, every neuron's
    ``log(a² + ||w||²)`` and its rate."""
    E, q, mask = plan.escaping, plan.sq, plan.mask
    pos = np.maximum(u, 0.0)
    weight = np.exp(2 * phases[:, :E])
    r = np.einsum("te,ten->tn", weight * a[:, :E], pos[:, :E]) - plan.labels
    da = -2 * c * np.einsum("tjn,tn->tj", pos * mask, r)  # the true rates, without the factor's −ρ
    du = -2 * c * a[:, :, None] * (r * q)[:, None, :] * (u > 0)
    rate = np.einsum("te,ten->tn", weight * da[:, :E], pos[:, :E]) + np.einsum("te,ten->tn", weight * a[:, :E], du[:, :E])
    sq = a**2 + (u**2 * mask / q).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return r, rate, np.log(sq) + 2 * phases, 2 * (a * da + (u * du * mask / q).sum(axis=2)) / sq


@dataclass(frozen=True, eq=False)
class _Local:
    """One window integrated in its own time ``σ = s − s_0``: at each recorded ``sigma`` its
    :func:`_curves` (a passenger's log-norm without its scale at the start); at the end its ``a``,
    ``u`` (on its groups) and ``phases`` (likewise); the ``σ`` at which the block's loss crossed the
    midpoint of its plateaus."""

    sigma: np.ndarray
    curves: tuple
    a: np.ndarray
    u: np.ndarray
    phases: np.ndarray
    sigma_half: float


def _integrate(plans: list[_Plan], c: float, signs, log_scales, rtol: float, tol: float) -> list[_Local]:
    """Integrate the windows of ``plans`` together (:class:`_BatchFlow`) from their escape directions
    with the rows' scales ``log_scales``: with every factor at its neuron's current rate until the
    escaping neurons are about size 1, then folded, until every block's residuals are below ``tol``.
    Each block's loss crossing the midpoint of its plateaus is located on the recorded steps and
    refined by one Newton step on that window's flow alone (below)."""
    flow = _BatchFlow(plans, c, log_scales)
    a0, u0 = np.zeros(flow.m), np.zeros((flow.m, flow.n))
    for w, plan in enumerate(plans):
        rows = np.flatnonzero(flow.window == w)
        a0[rows] = signs[list(plan.neurons)] / math.sqrt(2)
        u0[rows, : len(plan.labels)] = plan.start
    start = np.concatenate([a0, u0.ravel()])
    taus, states, phases = [0.0], [start], [flow.phases(start)]
    base = 0.0

    def settled(t, state):
        return float(np.abs(flow.residuals(state) * flow.peaks).max() - tol)

    settled.direction, settled.terminal = -1, True  # type: ignore[attr-defined]

    def run(integ, t_stop, *events):
        with np.errstate(over="ignore", invalid="ignore"):  # a trial step too long overflows; the integrator rejects it
            integ.run(t_stop, events, on_step=record).raise_if_failed()

    def record(t, state):
        taus.append(base + t)
        states.append(state.copy())
        phases.append(flow.phases(state))

    integ = Integrator(flow, start, rtol=rtol, first_step=FIRST_STEP)
    run(integ, math.log(1 / START_SIZE))
    base, folded, before = integ.t, len(taus), flow.rates
    integ = Integrator(flow, flow.fold(integ.state), rtol=rtol, first_step=integ.h)
    # an event, and checked at least every CHECK: settled residuals are near the integrator's noise,
    # which the long steps of an unbroken run would raise above tol
    while settled(integ.t, integ.state) >= 0:
        if integ.t > SETTLE:
            raise IntegrationError(f"the O(1) dynamics did not settle within t = {integ.t:g}")
        run(integ, integ.t + CHECK, settled)
    tau, S, phase = np.array(taus), np.array(states), np.array(phases)
    A, U = S[:, : flow.m], S[:, flow.m :].reshape(len(S), flow.m, flow.n)
    steps, spans, halves = np.zeros(len(plans), int), np.zeros(len(plans)), np.zeros(len(plans))
    curves = []
    for w, plan in enumerate(plans):
        rows, block = np.flatnonzero(flow.window == w), plan.in_block
        curves.append(_curves(A[:, rows], U[:, rows, : len(plan.labels)], phase[:, rows], plan, c))
        r, rates = curves[-1][0][:, block], curves[-1][1][:, block]
        halves[w] = 0.5 * float(r[0] @ r[0])
        k = int(np.argmax((r**2).sum(axis=1) <= halves[w]))
        if k == 0:
            raise IntegrationError("a window's loss never crossed the midpoint of its plateaus")
        # on the cubic Hermite interpolant of the step, then one Newton step on the flow integrated
        # to there (below): the interpolant alone is off by about (μh)⁴
        x0, dx0, x1, dx1 = r[k - 1], rates[k - 1], r[k], rates[k]
        h = tau[k] - tau[k - 1]
        lo, width = 0.0, 1.0
        for _ in range(2):  # the first θ on a grid of GRID, then on a grid of GRID within that cell
            theta = lo + width * np.arange(1, GRID + 1)[:, None] / GRID
            x = hermite(x0, dx0, x1, dx1, h / plan.mu.max(), theta)
            below = np.append((x * x).sum(axis=1) <= halves[w], True)
            lo, width = lo + width * int(np.argmax(below)) / GRID, width / GRID
        steps[w], spans[w] = k, (lo + width) * h
    # the probe: every window from its step k − 1 at once, its time stretched so that its span is 1
    last = np.append(steps[flow.window], 1) - 1  # each row's step k − 1
    every = np.arange(flow.m)
    probe = copy.copy(flow)  # the same windows, from other scales, rates and speeds
    probe.log_scales, probe.rates = phase[last, every], np.where(last < folded, before, flow.rates)
    probe.speed = flow.speed * np.append(spans[flow.window], 0.0)
    probe._set_rates()
    state = np.concatenate([A[last, every], U[last, every].ravel()])
    state[flow.m - 1] = 0.0
    integ = Integrator(probe, state, rtol=rtol, first_step=1.0)
    integ.run(1.0).raise_if_failed()
    ends, end_phases = probe.split(integ.state), probe.phases(integ.state)
    out = []
    for w, plan in enumerate(plans):
        rows, speed = np.flatnonzero(flow.window == w), 1 / plan.mu.max()
        x, dx = (
            v[0, plan.in_block]
            for v in _curves(ends[0][None, rows], ends[1][None, rows, : len(plan.labels)], end_phases[None, rows], plan, c)[:2]
        )
        k = steps[w]
        out.append(
            _Local(
                speed * tau,
                curves[w],
                A[-1, rows],
                U[-1, rows, : len(plan.labels)],
                phase[-1, rows],
                float(speed * (tau[k - 1] + spans[w]) - (x @ x - halves[w]) / (2 * x @ dx)),
            )
        )
    return out


#: a descent window's length in units of its time 1/μ, about (the guard on steps reads it)
WINDOW = 30.0
#: descent windows renormalise their passengers every this many steps (3^32 is far from overflow)
RENORMALISE = 32


def _descent_log_prefactors(y, q, c: float, signs, active, magnitudes, a_magnitudes, lr: float) -> np.ndarray:
    """``π_j`` of each row under descent with step ``lr`` (theory §11): the linear map at 0 (residual
    ``−y``) is iterated from the magnitudes until the row's misaligned coordinates have died (a step
    that takes one to ``≤ 0`` kills it, as in :class:`~limitproc.flow.descent.Descent`); from then on
    its component along ``e_j`` is multiplied by ``1 + η μ_j = e^{η ρ_j}`` per step and the rest by
    ``1 − η μ_j`` or 1, so ``π_j = log(projection) − ρ_j t`` at the first such step. Rows are
    renormalised each step (their logs kept), so the iteration cannot overflow."""
    s = np.asarray(signs, float)
    u = np.where(active, magnitudes, 0.0)
    a = s * np.asarray(a_magnitudes, float)
    sy = s[:, None] * y[None, :]
    aligned = active & (sy > 0)
    norm = np.sqrt(np.where(aligned, y * y * q, 0.0).sum(axis=1))  # |b| of the escape direction
    rho = growth_rate(2 * c * norm, lr)
    step_a, step_u = lr * 2 * c * y, lr * 2 * c * y * q
    logs, pis = np.zeros(len(s)), np.full(len(s), np.nan)
    steps, cap = 0, int(SETTLE / (lr * max(float(rho.min(initial=np.inf)), 1e-300))) + 1
    while True:
        done = np.isnan(pis) & ~((u > 0) & (sy < 0)).any(axis=1)
        if done.any():
            along = _log_along_escape(s[done] * a[done], np.where(aligned[done], u[done], 0.0), y, norm[done])
            pis[done] = along + logs[done] - rho[done] * lr * steps
        if not np.isnan(pis).any():
            return pis
        if steps > cap:
            raise IntegrationError(f"a misaligned coordinate did not die within {steps} descent steps of size {lr:g}")
        pos = np.maximum(u, 0.0)
        new = u + (a[:, None] * step_u[None, :]) * (u > 0)
        a = a + pos @ step_a
        new[(u > 0) & (new <= 0)] = 0.0
        u, steps = new, steps + 1
        if (s * a <= 0).any():
            raise IntegrationError("a misaligned coordinate never dies: the neuron changes sign")
        scale = np.maximum(np.abs(a), u.max(axis=1, initial=0.0))
        a, u, logs = a / scale, u / scale[:, None], logs + np.log(scale)


def _descend(plan: _Plan, c: float, signs, log_scales, lr: float, tol: float) -> _Local:
    """Window ``plan`` under descent with step ``lr``: the escaping neurons from their escape
    directions at sizes ``e^{log_scales}``, every step the descent map (a coordinate that a step takes
    to ``≤ 0`` dies), until the block's residuals are below ``tol``. The passengers are renormalised
    every RENORMALISE steps (their logs in the phases; the escaping rows and the clock are not:
    ``PerSampleFlow.renormalise`` would rescale those too). The loss crosses the midpoint of its plateaus where the
    straight line between two iterates does, as the simulator's descent locates it."""
    flow = _BatchFlow([plan], c, log_scales)
    flow.speed, flow.rates = np.append(np.ones(flow.m - 1), 0.0), np.zeros(flow.m)  # time s itself, no factors
    flow._set_rates()
    rows = np.arange(flow.escaping, flow.m - 1)  # the passengers
    a0 = np.append(signs[list(plan.neurons)] / math.sqrt(2), 0.0)
    u0 = np.zeros((flow.m, flow.n))
    u0[:-1] = plan.start
    state = np.concatenate([a0, u0.ravel()])
    states, phases = [state], [flow.log_scales.copy()]  # rates 0: the phases are the scales
    m, peaks, descent = flow.m, flow.peaks[0], Descent(flow, state, lr=lr)
    for step in range(1, int(SETTLE / (lr * plan.mu.max())) + 2):
        new = descent.step(state)
        worst = float(np.abs(flow.row_residuals[0] * peaks).max())  # the block's, at the step's start
        if not math.isfinite(worst):
            raise IntegrationError(f"descent diverged in window {plan.k}: the step lr = {lr:g} is too large for its fitted block")
        if step % RENORMALISE == 0:  # a passenger grows at most 3x per step (η μ < 2)
            a, u = flow.split(new)
            scale = flow.neuron_scales(new)[rows]
            a[rows] /= scale
            u[rows] /= scale[:, None]
            flow.log_scales[rows] += np.log(scale)
        states.append(new)
        phases.append(flow.log_scales.copy() if step % RENORMALISE == 0 else phases[-1])
        state = new
        if worst < tol:
            break
    else:
        raise IntegrationError(
            f"descent with step lr = {lr:g} did not settle on the block of jump {plan.k} within t = {SETTLE / plan.mu.max():g}: "
            "its fitted minimum is unstable at this step, or contracts too slowly (theory §11 covers the small neurons only)"
        )
    S, phase = np.array(states), np.array(phases)
    A, U = S[:, :m], S[:, m:].reshape(len(S), m, flow.n)
    sigma = lr * np.arange(len(S))
    curves = _curves(A[:, :-1], U[:, :-1, : len(plan.labels)], phase[:, :-1], plan, c)
    r = curves[0][:, plan.in_block]
    g = (r**2).sum(axis=1) - 0.5 * float(plan.labels[plan.in_block] @ plan.labels[plan.in_block])  # the plateaus' midpoint
    k = int(np.argmax(g <= 0))
    if k == 0:
        raise IntegrationError("a window's loss never crossed the midpoint of its plateaus")
    half = sigma[k - 1] + lr * g[k - 1] / (g[k - 1] - g[k])
    return _Local(sigma, curves, A[-1, :-1], U[-1, :-1, : len(plan.labels)], phase[-1, :-1], float(half))


def predict_offsets(
    result: Result, magnitudes=None, a_magnitudes=None, rtol: float = 1e-9, *, log_inv_lambda: float | None = None
) -> Offsets:
    """Run the chain of the module docstring over every jump of ``result``, from ``magnitudes``
    (default: the problem's; ``a_magnitudes`` default to the problem's, or balanced). Windows are
    integrated together as soon as their shape is known (:func:`_ready`), and chained in order.

    A result of gradient descent (``solve(problem, lr=η)``, theory §11) gets descent windows: every
    rate ``μ`` becomes ``ρ = log(1 + η μ)/η``, the prefactors come from the descent map at 0
    (:func:`_descent_log_prefactors`) and each window iterates the map (:func:`_descend`) on the
    iterates ``t = η k``. Where these fall in a window depends on ``τ_k log(1/λ)`` modulo ``η``:
    without ``log_inv_lambda`` it is taken as 0. That moves the offsets by ``O(η)``, and the
    windows' final weights (the tie splits, the norms) only by about 1e-9. The windows are taken one
    after the other."""
    p = result.problem
    lr = None if result.lr is None else float(result.lr)
    if magnitudes is None:
        if p.magnitudes is None:
            raise InputError("magnitudes", "the problem carries none: the offsets are predicted from the initial magnitudes")
        magnitudes, a_magnitudes = initial_magnitudes(p)
    elif a_magnitudes is None:
        a_magnitudes = initial_magnitudes(with_magnitudes(p, magnitudes))[1]
    magnitudes, a_magnitudes = np.asarray(magnitudes, float), np.asarray(a_magnitudes, float)
    y_all = float_labels(p)
    q_all = float_sq_norms(p)
    c = float(p.loss_factor)
    growing = np.flatnonzero(p.aligned_matrix().any(axis=1))
    rows = (y_all, q_all, c, p.signs[growing], p.active_matrix()[growing], magnitudes[growing], a_magnitudes[growing])
    pis = _log_prefactors(*rows) if lr is None else _descent_log_prefactors(*rows, lr)
    live = {int(j): float(pi) for j, pi in zip(growing, pis)}
    initial = dict(live)
    plans = _plans(result, y_all, q_all, c)
    tol = min(FITTED, 10 * rtol) * np.abs(y_all).max()

    if lr is not None:  # each window takes about WINDOW / μ of time (docs/simulate.md)
        check_descent_steps(sum(WINDOW / float(plan.mu.max()) for plan in plans), lr, "steps of the windows (about 30/(η μ) each)")
    growth = [(growth_rate(plan.mu, lr), growth_rate(plan.mu_rest, lr)) for plan in plans]  # ρ (μ for the flow) before and after each jump
    taus = [float(jump.tau) for jump in result.jumps]

    def start(index: int) -> float:  # s_0: the first escaping neuron has size START_SIZE (descent: at the iterate before)
        plan, rho = plans[index], growth[index][0]
        size = START_SIZE if lr is None else DESCENT_START_SIZE
        s0 = min((math.log(size) - live[j]) / rho[row] for row, j in enumerate(plan.neurons[: plan.escaping]))
        if lr is None:
            return s0
        at = 0.0 if log_inv_lambda is None else taus[index] * log_inv_lambda
        return lr * math.floor((at + s0) / lr) - at

    done: dict[int, _Local] = {}
    changes: dict[int, list[tuple[int, float]]] = {}
    windows = []
    for index, plan in enumerate(plans):
        if index not in done:
            later = [] if lr is not None else [i for i in range(index + 1, len(plans)) if i not in done and _ready(plans, index, i)]
            batch = [index, *later]
            scales = [
                live[j] + growth[i][0][row] * start(i) if row < plans[i].escaping else 0.0
                for i in batch
                for row, j in enumerate(plans[i].neurons)
            ]
            if lr is None:
                done.update(zip(batch, _integrate([plans[i] for i in batch], c, p.signs, scales, rtol, tol)))
            else:
                done[index] = _descend(plan, c, p.signs, scales, lr, tol)
        local, s0, E = done.pop(index), start(index), plan.escaping
        scales = np.array([0.0 if row < E else live[j] + growth[index][0][row] * s0 for row, j in enumerate(plan.neurons)])
        y, q = y_all[plan.samples], q_all[plan.samples]
        residuals, rates, norms, norm_rates = local.curves
        norms = norms + 2 * scales  # the residuals do not depend on the passengers' scales
        s = s0 + local.sigma
        a, end = local.a, local.phases + scales
        u = local.u @ plan.expand  # per sample, on the groups' samples
        for row, j in enumerate(plan.neurons[E:], start=E):
            if plan.rests[row].size:
                on = np.zeros(len(y))
                on[plan.current[row]] = u[row, plan.current[row]]  # a passenger is on its aligned samples only
                pi = _log_projection(a[row], on, float(end[row]), y, q, plan.rests[row], int(p.signs[j])) - growth[index][1][row] * s[-1]
                live[j] = pi
            else:  # all its samples fitted by others: it never escapes, and stays at its size
                live.pop(j)
                pi = float(norms[-1, row]) / 2
            changes.setdefault(j, []).append((plan.k, float(pi)))
        for j in plan.neurons[:E]:
            del live[j]
        scale = np.exp(end[:E])
        windows.append(
            Window(
                k=plan.k,
                neurons=plan.neurons,
                escaping=E,
                samples=plan.samples,
                block=plan.block,
                offset=float(s0 + local.sigma_half),
                s=s,
                group_residuals=residuals[:, plan.in_block],
                group_residual_rates=rates[:, plan.in_block],
                block_expand=plan.expand[np.ix_(plan.in_block, plan.block)],
                log_sq_norms=norms,
                log_sq_norm_rates=norm_rates,
                a=scale * a[:E],
                u=scale[:, None] * u[:E],
            )
        )
    return Offsets(
        offsets=tuple(w.offset for w in windows),
        log_prefactors={j: float(v) for j, v in initial.items()},
        prefactor_changes=changes,
        windows=tuple(windows),
        magnitudes=magnitudes,
        a_magnitudes=a_magnitudes,
        method=METHOD if lr is None else DESCENT_METHOD,
    )
