"""The integrator of the approximate paths: Dormand–Prince 5(4) with neuron-relative error control
and exact death events (a coordinate reaching 0 from above stays 0), in per-sample coordinates.

See :mod:`limitproc.flow.simulate` for the equations and the two coordinate paths.
"""

from __future__ import annotations

import numpy as np

# Dormand–Prince 5(4) tableau
_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0])
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


class _Flow:
    """The vector field in scaled coordinates ``y = (ã (m), ũ (m·n))`` with log-scales ``κ``.

    ``sources`` (bool, per neuron) are the neurons whose outputs enter the residual; the others
    follow the flow linearised at 0 (the tie resolution's small neurons). Default: all.
    """

    def __init__(self, labels: np.ndarray, q: np.ndarray, c: float, m: int, sources=None):
        self.y, self.q, self.two_c, self.m, self.n = labels, q, 2 * c, m, len(labels)
        self.sources = np.ones(m, bool) if sources is None else np.asarray(sources, bool)
        self.kappa = np.zeros(m)

    def split(self, state):
        return state[: self.m], state[self.m :].reshape(self.m, self.n)

    def residual(self, state) -> np.ndarray:
        a, u = self.split(state)
        out = np.where(self.sources, a, 0.0) * np.exp(2 * np.where(self.sources, self.kappa, 0.0))
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

    def neuron_scale(self, state) -> np.ndarray:
        a, u = self.split(state)
        return np.maximum(np.abs(a), np.abs(u).max(axis=1, initial=0.0))


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


class _Integrator:
    """Dormand–Prince 5(4) with neuron-relative error control and death events."""

    def __init__(self, flow: _Flow, state: np.ndarray, rtol: float, rescale: bool):
        self.flow, self.state, self.rtol, self.rescale = flow, state.astype(float), rtol, rescale
        self.t = 0.0
        self.deaths: list[tuple[float, int, int]] = []
        self.steps = 0

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
        scale = np.maximum(self.flow.neuron_scale(self.state), self.flow.neuron_scale(y1))
        scale = np.where(scale > 0, scale, 1.0) * self.rtol
        e = err.copy()
        e[:m] /= scale
        e[m:] = (e[m:].reshape(m, n) / scale[:, None]).ravel()
        return float(np.abs(e).max(initial=0.0))

    def advance(self, h: float, t_stop: float, on_step) -> float:
        """One accepted step (possibly cut at a death event or at ``t_stop``); returns the next h."""
        m = self.flow.m
        while True:
            h = min(h, t_stop - self.t)
            y1, f0, f1, err = self._step(h)
            ratio = self._error_ratio(y1, err)
            if ratio <= 1.0 and np.all(np.isfinite(y1)):
                break
            h *= max(0.2, 0.9 * ratio ** -0.2) if np.isfinite(ratio) else 0.2
            if h < 1e-14 * max(1.0, abs(self.t)):
                raise FloatingPointError(f"step size underflow at t = {self.t}")
        y0 = self.state
        u0, u1 = y0[m:], y1[m:]
        crossed = np.flatnonzero((u0 > 0) & (u1 <= 0))
        h_next = h * min(5.0, 0.9 * ratio ** -0.2) if ratio > 0 else 5 * h
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
        on_step(self.t, y0, f0, self.t + h, y1, f1, h)
        self.t += h
        self.state = y1
        self.steps += 1
        if self.rescale:
            self._renormalise()
        return max(h_next, 1e-12)

    def _renormalise(self) -> None:
        f = self.flow
        scale = f.neuron_scale(self.state)
        redo = np.flatnonzero((scale > 0) & ((scale > 2.0) | (scale < 0.5)))
        if redo.size:
            a, u = f.split(self.state.copy())
            a[redo] /= scale[redo]
            u[redo] /= scale[redo, None]
            f.kappa[redo] += np.log(scale[redo])
            self.state = np.concatenate([a, u.ravel()])
