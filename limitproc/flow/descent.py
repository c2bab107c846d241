"""Gradient descent with a finite step ``η`` in per-sample coordinates (theory §11): an approximate path.

The exact descent map, not an ODE: one step evaluates the gradient at the old point,

    u_ji ← u_ji − η·2c·a_j·r_i·1[u_ji > 0]·q_i,     a_j ← a_j − η·2c·Σ_i r_i σ(u_ji),

which is ``state + η·F(state)`` for the flow's vector field ``F`` (:class:`PerSampleFlow`). A step
can overshoot a coordinate past 0: a coordinate that was positive and is ``≤ 0`` after the step is
dead (``σ'(0) = 0``: it never moves again) and is set to exactly 0, on the step where descent makes
it so. Time is ``t = η·k`` after ``k`` steps; event crossings are interpolated linearly between
consecutive iterates. In log-scale coordinates the map acts on ``(ã, ũ)`` unchanged (it is
homogeneous of degree 1 per neuron given the residual), and neurons are renormalised after each step.
"""

from __future__ import annotations

import math

import numpy as np

from ..limits import check_at_most
from .integrator import IntegrationStatus, PerSampleFlow, _crossing

__all__ = ["Descent", "check_descent_steps", "growth_rate"]


def check_descent_steps(duration: float, lr: float, what: str = "steps t/η to the horizon") -> int:
    """The number of descent steps ``duration / lr``, refused on ``lr`` past the ``descent_steps`` guard
    (before any step is taken: a tiny step would otherwise run for hours)."""
    steps = duration / lr
    return check_at_most(math.ceil(steps) if math.isfinite(steps) else 10**400, "descent_steps", "lr", f"descent {what}")


def growth_rate(mu, lr: float | None):
    """``ρ = log(1 + η μ) / η``: a small neuron's growth per unit time under descent with step ``η``
    (theory §11), ``μ`` itself for the flow (``lr`` None)."""
    return mu if lr is None else np.log1p(lr * np.asarray(mu, float)) / lr


class Descent:
    """Gradient descent on a :class:`PerSampleFlow` from ``state`` at ``t = 0`` with step ``lr``.

    The same interface as :class:`~limitproc.flow.integrator.Integrator`: :meth:`run` takes events
    and reports an :class:`IntegrationStatus`; ``deaths`` lists ``(t, j, i)`` of every coordinate
    ``u_ji`` that a step took from positive to ``≤ 0``; ``steps`` counts the steps.
    """

    def __init__(self, flow: PerSampleFlow, state: np.ndarray, *, lr: float, renormalise: bool = False):
        self.flow, self.state, self.lr, self.renormalise = flow, state.astype(float), float(lr), renormalise
        self.t = 0.0
        self.deaths: list[tuple[float, int, int]] = []
        self.steps = 0

    def step(self, state: np.ndarray) -> np.ndarray:
        """One descent step from ``state`` (a new array), coordinates that cross to ``≤ 0`` set to 0."""
        m = self.flow.m
        new = state + self.lr * self.flow(state)
        crossed = np.flatnonzero((state[m:] > 0) & (new[m:] <= 0))
        new[m + crossed] = 0.0
        return new

    def run(self, t_stop: float, events=(), on_step=None) -> IntegrationStatus:
        """Take every step that ends at or before ``t_stop`` (the grid ``η·k``), or stop at a terminal event."""
        events = list(events)
        t_events: list[list[float]] = [[] for _ in events]
        g0 = [float(g(self.t, self.state)) for g in events]
        m, n = self.flow.m, self.flow.n
        while self.steps + 1 <= t_stop / self.lr * (1 + 1e-12):
            new = self.step(self.state)
            if not np.all(np.isfinite(new)):
                message = (
                    f"descent diverged at t = {self.t} (step {self.steps}): the step `lr` = {self.lr:g} is too large (theory §11: η·μ < 2)"
                )
                return IntegrationStatus(-1, message, self.t, tuple(tuple(ts) for ts in t_events))
            t_new = (self.steps + 1) * self.lr
            for idx in np.flatnonzero((self.state[m:] > 0) & (new[m:] <= 0)):
                self.deaths.append((t_new, int(idx) // n, int(idx) % n))
            g1 = [float(g(t_new, new)) for g in events]
            terminal = False
            for i, g in enumerate(events):
                if _crossing(g, g0[i], g1[i]):
                    t_events[i].append(self.t + self.lr * g0[i] / (g0[i] - g1[i]))
                    terminal = terminal or bool(getattr(g, "terminal", False))
            self.state = self.flow.renormalise(new) if self.renormalise else new
            self.t, self.steps, g0 = t_new, self.steps + 1, g1
            if on_step is not None:
                on_step(self.t, self.state)
            if terminal:
                return IntegrationStatus(1, "a terminal event occurred", self.t, tuple(tuple(ts) for ts in t_events))
        return IntegrationStatus(0, "reached t_stop", self.t, tuple(tuple(ts) for ts in t_events))
