"""The integrator of the approximate paths: Dormand–Prince 5(4) with neuron-relative error control
and exact death events (a coordinate reaching 0 from above stays 0), in per-sample coordinates.

:class:`PerSampleFlow` is the vector field, :class:`Integrator` integrates it. Like
``scipy.integrate.solve_ivp``, :meth:`Integrator.run` takes **events**, plain functions
``g(t, state) -> float`` with optional attributes ``terminal`` (stop after the step in which ``g``
crosses 0) and ``direction`` (−1: only crossings from ``g > 0`` to ``g ≤ 0``; +1: from ``g < 0`` to
``g ≥ 0``; 0: both), and reports an :class:`IntegrationStatus` instead of raising.

See :mod:`limitproc.flow.simulate` for the equations and the two coordinate paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import IntegrationError

__all__ = ["IntegrationStatus", "Integrator", "PerSampleFlow"]

# Dormand–Prince 5(4): stage i is f(y0 + h·_A[i] @ K) (the flow is autonomous: no nodes c_i); the
# seventh stage is f(y1), the first of the next step (first same as last)
_A = np.zeros((7, 7))
_A[1, :1] = [1 / 5]
_A[2, :2] = [3 / 40, 9 / 40]
_A[3, :3] = [44 / 45, -56 / 15, 32 / 9]
_A[4, :4] = [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]
_A[5, :5] = [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]
_A[6, :6] = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
# difference between the 5th- and 4th-order weights
_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])
# the 4th-order continuous extension (Hairer, Nørsett & Wanner, dense output of DOPRI5)
_D = np.array(
    [-12715105075 / 11282082432, 0, 87487479700 / 32700410799, -10690763975 / 1880347072, 701980252875 / 199316789632]
    + [-1453857185 / 822651844, 69997945 / 29380423]
)
# step-size control: PI controller (Gustafsson; the constants of Hairer's DOPRI5)
_SAFETY, _BETA, _SHRINK, _GROW = 0.9, 0.04, 0.2, 10.0
_EXPONENT = 0.2 - 0.75 * _BETA
# a death's kink window allows 10·rtol of error before its part in a_j is taken back (what remains is
# of the order of rtol: measured at n = 3072, where 6128 deaths share 745 steps at rtol 1e-8)
_KINK = 10.0
_TINY = np.finfo(float).tiny  # the size of a neuron that is all 0 (its error is 0 too)


class PerSampleFlow:
    """The gradient-flow vector field in per-sample coordinates ``state = (a (m), u (m·n))``.

    Neuron ``j`` is ``e^{κ_j} (a_j, u_j)`` with ``κ = log_scales`` (all 0 in direct coordinates);
    ``y`` are the labels, ``q`` the squared norms, ``two_c`` is ``2c``. ``sources`` (bool, per
    neuron) are the neurons whose outputs enter the residual; the others follow the flow linearised
    at 0 (the tie resolution's small neurons). Default: all.
    """

    def __init__(self, labels: np.ndarray, sq_norms: np.ndarray, loss_factor: float, m: int, sources=None):
        self.y, self.q, self.two_c, self.m, self.n = labels, sq_norms, 2 * loss_factor, m, len(labels)
        self.sources = np.ones(m, bool) if sources is None else np.asarray(sources, bool)
        self._every_source = bool(self.sources.all())
        self._rate_factors = -2 * loss_factor * np.asarray(sq_norms, float)  # −2c q_i
        self.log_scales = np.zeros(m)
        self._residual_of: tuple = (None, None)  # (state, residual) of the last field evaluated at its own pattern

    def split(self, state) -> tuple[np.ndarray, np.ndarray]:
        """``(a (m,), u (m, n))``: views into ``state``."""
        return state[: self.m], state[self.m :].reshape(self.m, self.n)

    def _output_weights(self) -> np.ndarray:
        """``e^{2κ_j}`` for the sources, 0 for the others: ``r = (weights · a) @ σ(u) − y``."""
        if self._every_source:
            return np.exp(2 * self.log_scales)
        return np.where(self.sources, np.exp(2 * np.where(self.sources, self.log_scales, 0.0)), 0.0)

    def residual(self, state) -> np.ndarray:
        if self._residual_of[0] is state:  # computed with the field there (states are never changed in place)
            return self._residual_of[1]
        a, u = self.split(state)
        return (self._output_weights() * a) @ np.maximum(u, 0.0) - self.y

    def __call__(self, state) -> np.ndarray:
        out = self.field(state, self.split(state)[1] > 0)
        self._residual_of = (state, self._residual)
        return out

    def field(self, state, active) -> np.ndarray:
        """The vector field with the coordinates ``active`` (``m × n``, bool or 0/1) on the linear side
        of the ReLU (``σ(u) = u``, ``σ' = 1``) and the others on the flat side. At the state's own
        pattern ``u > 0`` it is the flow; a pattern held over a step continues the flow smoothly past
        a coordinate's zero, so the step's error estimate and dense output hold up to that zero."""
        return self._field(state, active, self._output_weights(), np.empty_like(state))

    def _field(self, state, active, weights, out) -> np.ndarray:
        """:meth:`field` into ``out``, with :meth:`_output_weights` given (None: all 1), the integrator's fast path."""
        m = self.m
        a, u = state[:m], state[m:].reshape(m, self.n)
        du = out[m:].reshape(m, self.n)
        np.multiply(u, active, out=du)  # σ(u), until du is written
        r = self._residual = (a if weights is None else weights * a) @ du - self.y
        np.matmul(du, r, out=out[:m])
        out[:m] *= -self.two_c
        np.multiply(a[:, None], r * self._rate_factors, out=du)
        du *= active
        return out

    def loss(self, state) -> float:
        r = self.residual(state)
        return 0.5 * self.two_c * float(r @ r)

    def neuron_scales(self, state) -> np.ndarray:
        """``max(|a_j|, max_i |u_ji|)`` per neuron (without ``e^{κ_j}``)."""
        a, u = self.split(state)
        return np.maximum(np.abs(a), np.abs(u).max(axis=1, initial=0.0))

    def renormalise(self, state) -> np.ndarray:
        """``state`` with every neuron whose size left ``[1/2, 2]`` rescaled to size 1, the factor moved into ``log_scales``."""
        scale = self.neuron_scales(state)
        redo = np.flatnonzero((scale > 0) & ((scale > 2.0) | (scale < 0.5)))
        if not redo.size:
            return state
        a, u = self.split(state.copy())
        a[redo] /= scale[redo]
        u[redo] /= scale[redo, None]
        self.log_scales[redo] += np.log(scale[redo])
        return np.concatenate([a, u.ravel()])


@dataclass(frozen=True)
class IntegrationStatus:
    """How :meth:`Integrator.run` ended, in the manner of ``solve_ivp``'s result.

    ``status`` is 0 (reached ``t_stop``), 1 (a terminal event occurred) or −1 (the step size
    underflowed; the integrator stays at its last accepted step). ``t_events[i]`` are the times at
    which event ``i`` crossed 0, located on the dense output of the step.
    """

    status: int
    message: str
    t: float
    t_events: tuple[tuple[float, ...], ...]

    @property
    def success(self) -> bool:
        return self.status >= 0

    def raise_if_failed(self) -> IntegrationStatus:
        """``self``, or :class:`~limitproc.errors.IntegrationError` with the message if the run failed."""
        if not self.success:
            raise IntegrationError(self.message)
        return self


def hermite(y0, f0, y1, f1, h, theta):
    """The cubic Hermite interpolant of a step at fraction ``theta``."""
    t2, t3 = theta * theta, theta * theta * theta
    return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0 + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1


def _extension(coefficients, theta):
    """Dormand–Prince's continuous extension with ``coefficients`` (see ``Integrator._coefficients``) at ``theta``."""
    y0, dy, c3, c4, c5 = coefficients
    return y0 + theta * (dy + (1 - theta) * (c3 + theta * (c4 + (1 - theta) * c5)))


def _first_zero(fn, g_start: float, g_end: float) -> float:
    """A θ in (0, 1] with ``fn(θ) ≤ 0``, within 1e-13 of a zero of ``fn`` (``fn(0) = g_start > 0 ≥ g_end = fn(1)``):
    regula falsi with the Illinois modification (in Python floats: it runs on one entry at a time)."""
    lo, hi, g_lo, g_hi, side = 0.0, 1.0, g_start, g_end, 0
    for _ in range(200):
        if hi - lo <= 1e-13 or g_hi == 0:
            break
        theta = hi - g_hi * (hi - lo) / (g_hi - g_lo)
        if not lo < theta < hi:
            theta = 0.5 * (lo + hi)
        g = fn(theta)
        if g <= 0:
            g_lo = g_lo / 2 if side < 0 else g_lo  # the same end moved twice: halve the other's value
            hi, g_hi, side = theta, g, -1
        else:
            g_hi = g_hi / 2 if side > 0 else g_hi
            lo, g_lo, side = theta, g, 1
    return hi


def _bisect(predicate, iterations: int = 60) -> float:
    """The smallest θ in (0, 1] with ``predicate(θ)`` true, assuming it is true at 1 and monotone."""
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _crossing(event, g0: float, g1: float) -> int:
    """−1 or +1 if ``event`` crosses 0 downwards or upwards between ``g0`` and ``g1`` (in its direction), else 0."""
    direction = getattr(event, "direction", 0)
    if g0 > 0 >= g1 and direction <= 0:
        return -1
    if g0 < 0 <= g1 and direction >= 0:
        return 1
    return 0


class Integrator:
    """Dormand–Prince 5(4) on a :class:`PerSampleFlow` from ``state`` at ``t = 0``.

    The error of neuron ``j``'s coordinates is measured relative to ``rtol`` times the neuron's own
    size; a PI controller sets the next step. The last stage of a step is the first of the next
    (first same as last). With ``renormalise`` (the log-scale coordinates), a neuron whose size
    leaves ``[1/2, 2]`` after a step is rescaled to size 1 and the factor moved into
    ``flow.log_scales``. ``deaths`` lists ``(t, j, i)`` for every coordinate ``u_ji`` that reached 0
    from above (and stays 0): each step is integrated in the activation pattern of its start, and
    ends at a crossing located on its dense output (its 4th-order continuous extension), without
    being redone (see :meth:`_accepted_step`).
    """

    def __init__(self, flow: PerSampleFlow, state: np.ndarray, *, rtol: float, first_step: float, renormalise: bool = False):
        self.flow, self.state, self.rtol, self.renormalise = flow, state.astype(float), rtol, renormalise
        self.t, self.h = 0.0, first_step
        self.deaths: list[tuple[float, int, int]] = []
        self.steps = 0
        self._f0, self._f0_of = np.empty(0), None  # f(state) for the state _f0_of, from the last stage of the previous step
        self._previous_ratio = 1e-4  # the error ratio of the last accepted step (the PI controller's memory)
        self._last: tuple = ()  # (y0, y1, stages, h) of the last step taken, for its dense output
        # the per-sample field is integrated at the pattern of each step's start (so a step is smooth up
        # to the first death); a subclass's own field as it is
        self._continued = type(flow).__call__ is PerSampleFlow.__call__
        self._sizes: tuple = (None, None)  # (state, its neuron sizes), kept from the last error estimate
        self._mode: tuple = (None, None, None)  # (state, its pattern u > 0 as 0/1, output weights or None if all 1)

    def run(self, t_stop: float, events=(), on_step=None) -> IntegrationStatus:
        """Integrate up to ``t_stop``, or until a terminal event, calling ``on_step(t, state)`` after each step."""
        events = list(events)
        t_events: list[list[float]] = [[] for _ in events]
        g0 = [float(g(self.t, self.state)) for g in events]
        status, message = 0, "reached t_stop"
        while self.t < t_stop * (1 - 1e-15):
            step = self._accepted_step(t_stop)
            if step is None:
                status, message = -1, f"step size underflow at t = {self.t}"
                break
            y0, f0, y1, f1, h = step
            g1 = [float(g(self.t + h, y1)) for g in events]
            terminal = False
            for i, g in enumerate(events):
                sense = _crossing(g, g0[i], g1[i])
                if sense:
                    part = h / self._last[3]  # of the last step taken (less than 1 if ended at a death)
                    theta = _first_zero(lambda th: -sense * g(self.t + th * h, self._dense(th * part)), -sense * g0[i], -sense * g1[i])
                    t_events[i].append(self.t + theta * h)
                    terminal = terminal or bool(getattr(g, "terminal", False))
            self.t += h
            self.state, self._f0, self._f0_of = y1, f1, y1
            self.steps += 1
            if self.renormalise:
                self._renormalise()
            g0 = g1  # the same point in other log-scales: not re-evaluated, so no crossing is lost to rounding
            if on_step is not None:
                on_step(self.t, self.state)
            if terminal:
                status, message = 1, "a terminal event occurred"
                break
        return IntegrationStatus(status, message, self.t, tuple(tuple(ts) for ts in t_events))

    def _renormalise(self) -> None:
        """Renormalise the state; the kept ``f(state)`` follows, since each neuron's field is homogeneous
        of degree 1 in its own coordinates (given the residual, which renormalising leaves unchanged)."""
        f = self.flow
        before = f.log_scales.copy()
        state = f.renormalise(self.state)
        if state is self.state:
            return
        if self._f0_of is self.state:
            factor = np.exp(before - f.log_scales)
            da, du = f.split(self._f0)
            self._f0, self._f0_of = np.concatenate([da * factor, (du * factor[:, None]).ravel()]), state
        self.state = state

    def _step(self, h):
        """``(y1, f0, f1, err)`` of one Dormand–Prince step of size ``h`` from ``state``; its stages are kept."""
        f, y0 = self.flow, self.state
        if self._f0_of is not y0:
            self._f0, self._f0_of = f(y0), y0
        K = np.empty((7, y0.size))
        K[0] = self._f0
        hA = h * _A
        if self._continued:
            if self._mode[0] is not y0:
                weights = f._output_weights()
                self._mode = (y0, (f.split(y0)[1] > 0).astype(float), None if (weights == 1).all() else weights)
            _, pattern, weights = self._mode
            for i in range(1, 6):
                f._field(y0 + hA[i, :i] @ K[:i], pattern, weights, K[i])
            y1 = y0 + hA[6, :6] @ K[:6]
            f._field(y1, pattern, weights, K[6])
            f._residual_of = (y1, f._residual)  # its pattern, unless a coordinate crossed (then y1 is replaced)
        else:
            for i in range(1, 6):
                K[i] = f(y0 + hA[i, :i] @ K[:i])
            y1 = y0 + hA[6, :6] @ K[:6]
            K[6] = f(y1)
        self._last = (y0, y1, K, h)
        return y1, K[0], K[6], (h * _E) @ K

    def _dense(self, theta, index=slice(None)):
        """The last step's continuous extension at fraction ``theta`` (entries ``index`` of the state)."""
        return _extension(self._coefficients(index), theta)

    def _coefficients(self, index):
        y0, y1, K, h = self._last
        y0, y1, K = y0[index], y1[index], K[:, index]
        dy = y1 - y0
        c3 = h * K[0] - dy
        return y0, dy, c3, dy - h * K[6] - c3, h * (_D @ K)

    def _error_ratio(self, y1, err) -> float:
        """The largest error relative to ``rtol`` times its neuron's size (inf if ``y1`` is not finite)."""
        m, n = self.flow.m, self.flow.n
        if self._sizes[0] is not self.state:
            self._sizes = (self.state, self.flow.neuron_scales(self.state))
        size = np.abs(y1)
        end = np.maximum(size[:m], size[m:].reshape(m, n).max(axis=1))
        if not math.isfinite(end.sum()):
            return math.inf
        scale = np.maximum(np.maximum(self._sizes[1], end), _TINY)
        self._sizes = (y1, end)  # the next step's start, unless renormalised or cut
        e = np.abs(err)
        worst = np.maximum(e[:m], e[m:].reshape(m, n).max(axis=1))
        return float((worst / scale).max()) / self.rtol

    def _trial_step(self, t_stop: float):
        """``(y1, f0, f1, h)`` of the step the error control accepts (next ``self.h`` set); None on step-size underflow."""
        proposed, rejected = self.h, False
        h = proposed
        while True:
            h = min(h, t_stop - self.t)
            y1, f0, f1, err = self._step(h)
            ratio = self._error_ratio(y1, err)
            if ratio <= 1.0:
                break
            h *= max(_SHRINK, _SAFETY * ratio**-_EXPONENT) if math.isfinite(ratio) else _SHRINK
            rejected = True
            if h < 1e-14 * max(1.0, abs(self.t)):
                return None
        grow = _SAFETY * ratio**-_EXPONENT * self._previous_ratio**_BETA if ratio > 0 else _GROW
        grow = min(1.0 if rejected else _GROW, max(_SHRINK, grow))
        self._previous_ratio = max(ratio, 1e-4)
        self.h = max(h * grow, 1e-12 if rejected or h >= proposed else proposed)  # a step cut at t_stop proposes no less
        return y1, f0, f1, h

    def _accepted_step(self, t_stop: float):
        """``(y0, f0, y1, f1, h)`` of one accepted step, ended at a death; None on step-size underflow.

        The step is integrated in the pattern of its start, so it continues dying coordinates past
        their zeros. It ends at the zero of the latest of the earliest crossings whose continuations
        stay within their kink windows (:meth:`_kink_windows`), all of them set to exactly 0 there, and
        what their continuations added to their neurons' ``a_j`` taken back."""
        trial = self._trial_step(t_stop)
        if trial is None:
            return None
        y1, f0, f1, h = trial
        m, n, y0 = self.flow.m, self.flow.n, self.state
        crossing = (y1[m:] <= 0) & (y0[m:] > 0)
        if not crossing.any():
            self._mode = (y1, *self._mode[1:])  # the same pattern and output weights
            return y0, f0, y1, f1, h
        crossed = crossing.nonzero()[0]
        last = int(m + crossed[0])
        if crossed.size > 1:
            drop = y0[m + crossed] - y1[m + crossed]
            estimate = y0[m + crossed] / drop  # linear estimates of the zeros, in fractions of the step
            order = np.argsort(estimate)
            within = estimate[order] <= np.minimum.accumulate(estimate[order] + self._kink_windows(crossed, drop, h)[order])
            last = int(m + crossed[order[int(within.sum()) - 1]])
        c = tuple(x.item() for x in self._coefficients(last))
        end = _first_zero(lambda th: _extension(c, th), c[0], float(y1[last]))
        y1 = self._dense(end)
        dead = np.flatnonzero((y0[m:] > 0) & (y1[m:] <= 0))
        r = self.flow.residual(y0) if self._continued else None
        for idx, c in zip(dead.tolist(), zip(*(x.tolist() for x in self._coefficients(m + dead)))):
            at = end * _first_zero(lambda th, c=c: _extension(c, end * th), c[0], float(y1[m + idx]))
            j, i = divmod(idx, n)
            if r is not None:  # take back what σ(u_ji) < 0 added to a_j after the zero (trapezoid, u_ji about linear there)
                y1[j] += self.flow.two_c * r[i] * y1[m + idx] * (end - at) * h / 2
            y1[m + idx] = 0.0
            self.deaths.append((self.t + at * h, j, i))
        return y0, f0, y1, self.flow(y1), h * end

    def _kink_windows(self, crossed, drop, h) -> np.ndarray:
        """How far past its zero (in fractions of the step) each crossing ``u_ji`` may be continued.

        Continued a time ``Δ`` past its zero, ``u_ji`` reaches about ``drop·Δ/h`` below 0 instead of
        staying at 0; integrated, that moves ``a_j`` by ``2c |r_i| ∫|u_ji|`` and any neuron ``k``, through
        ``r_i``, by at most ``2c max(1, q_i) e^{2κ_j} |a_j| ∫|u_ji|`` relative to its size. The window
        keeps the sum below ``_KINK · rtol`` relative to neuron ``j``'s size; 0 for another field."""
        f = self.flow
        if not self._continued:
            return np.zeros(crossed.size)
        j, i = np.divmod(crossed, f.n)
        a, _ = f.split(self.state)
        weight = f.two_c * (
            np.abs(f.residual(self.state))[i] / f.neuron_scales(self.state)[j]
            + np.maximum(1.0, f.q[i]) * np.abs(f._output_weights() * a)[j]
        )
        with np.errstate(divide="ignore"):
            return np.sqrt(2 * _KINK * self.rtol / (weight * drop * h))
