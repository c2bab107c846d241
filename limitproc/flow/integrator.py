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

from dataclasses import dataclass

import numpy as np

from ..errors import IntegrationError

__all__ = ["IntegrationStatus", "Integrator", "PerSampleFlow"]

# Dormand–Prince 5(4) tableau (the flow is autonomous: the nodes c_i are not needed)
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
]
_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
# difference between the 5th- and 4th-order weights (the last entry weighs f(t + h, y_new))
_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])


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
        self.log_scales = np.zeros(m)

    def split(self, state) -> tuple[np.ndarray, np.ndarray]:
        """``(a (m,), u (m, n))``: views into ``state``."""
        return state[: self.m], state[self.m :].reshape(self.m, self.n)

    def residual(self, state) -> np.ndarray:
        a, u = self.split(state)
        out = np.where(self.sources, a, 0.0) * np.exp(2 * np.where(self.sources, self.log_scales, 0.0))
        return out @ np.maximum(u, 0.0) - self.y

    def __call__(self, state) -> np.ndarray:
        a, u = self.split(state)
        r = self.residual(state)
        da = -self.two_c * (np.maximum(u, 0.0) @ r)
        du = -self.two_c * (a[:, None] * (r * self.q)[None, :]) * (u > 0)
        return np.concatenate([da, du.ravel()])

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
    which event ``i`` crossed 0, located on the cubic Hermite interpolant of the step.
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


def _hermite(y0, f0, y1, f1, h, theta):
    """The cubic Hermite interpolant of a step at fraction ``theta``."""
    t2, t3 = theta * theta, theta * theta * theta
    return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0 + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1


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
    size. With ``renormalise`` (the log-scale coordinates), a neuron whose size leaves ``[1/2, 2]``
    after a step is rescaled to size 1 and the factor moved into ``flow.log_scales``. ``deaths``
    lists ``(t, j, i)`` for every coordinate ``u_ji`` that reached 0 from above (and stays 0).
    """

    def __init__(self, flow: PerSampleFlow, state: np.ndarray, *, rtol: float, first_step: float, renormalise: bool = False):
        self.flow, self.state, self.rtol, self.renormalise = flow, state.astype(float), rtol, renormalise
        self.t, self.h = 0.0, first_step
        self.deaths: list[tuple[float, int, int]] = []
        self.steps = 0

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
                    theta = _bisect(lambda th: sense * g(self.t + th * h, _hermite(y0, f0, y1, f1, h, th)) >= 0)
                    t_events[i].append(self.t + theta * h)
                    terminal = terminal or bool(getattr(g, "terminal", False))
            self.t += h
            self.state = y1
            self.steps += 1
            if self.renormalise:
                self.state = self.flow.renormalise(self.state)
            g0 = g1  # the same point in other log-scales: not re-evaluated, so no crossing is lost to rounding
            if on_step is not None:
                on_step(self.t, self.state)
            if terminal:
                status, message = 1, "a terminal event occurred"
                break
        return IntegrationStatus(status, message, self.t, tuple(tuple(ts) for ts in t_events))

    def _step(self, h):
        f = self.flow
        y0 = self.state
        k = [f(y0)]
        for i in range(1, 6):
            k.append(f(y0 + h * sum(a * kk for a, kk in zip(_A[i], k))))
        y1 = y0 + h * sum(b * kk for b, kk in zip(_B, k))
        k.append(f(y1))
        err = h * sum(e * kk for e, kk in zip(_E, k))
        return y1, k[0], k[-1], err

    def _error_ratio(self, y1, err) -> float:
        m, n = self.flow.m, self.flow.n
        scale = np.maximum(self.flow.neuron_scales(self.state), self.flow.neuron_scales(y1))
        scale = np.where(scale > 0, scale, 1.0) * self.rtol
        e = err.copy()
        e[:m] /= scale
        e[m:] = (e[m:].reshape(m, n) / scale[:, None]).ravel()
        return float(np.abs(e).max(initial=0.0))

    def _trial_step(self, t_stop: float):
        """``(y1, f0, f1, h)`` of the step the error control accepts (next ``self.h`` set); None on step-size underflow."""
        h = self.h
        while True:
            h = min(h, t_stop - self.t)
            y1, f0, f1, err = self._step(h)
            ratio = self._error_ratio(y1, err)
            if ratio <= 1.0 and np.all(np.isfinite(y1)):
                break
            h *= max(0.2, 0.9 * ratio**-0.2) if np.isfinite(ratio) else 0.2
            if h < 1e-14 * max(1.0, abs(self.t)):
                return None
        self.h = max(h * min(5.0, 0.9 * ratio**-0.2) if ratio > 0 else 5 * h, 1e-12)
        return y1, f0, f1, h

    def _accepted_step(self, t_stop: float):
        """``(y0, f0, y1, f1, h)`` of one accepted step, cut at the first death; None on step-size underflow."""
        trial = self._trial_step(t_stop)
        if trial is None:
            return None
        y1, f0, f1, h = trial
        m, y0 = self.flow.m, self.state
        u0, u1 = y0[m:], y1[m:]
        crossed = np.flatnonzero((u0 > 0) & (u1 <= 0))
        if crossed.size:
            ends = {}
            for idx in crossed:
                ends[idx] = _bisect(lambda th: _hermite(u0[idx], f0[m + idx], u1[idx], f1[m + idx], h, th) <= 0)
            first = min(ends.values())
            h_cut = h * first
            if h_cut > 0:
                y1, f0, f1, _ = self._step(h_cut)
            dead = [idx for idx, th in ends.items() if th <= first * (1 + 1e-9)]
            dead += [int(i) for i in np.flatnonzero((y0[m:] > 0) & (y1[m:] <= 0))]
            y1 = y1.copy()
            for idx in set(dead):
                y1[m + idx] = 0.0
                self.deaths.append((self.t + h_cut, idx // self.flow.n, idx % self.flow.n))
            f1 = self.flow(y1)
            h = h_cut
        return y0, f0, y1, f1, h
