"""A user's own training run beside the limits: measured drop times against the flow limit and the
descent limit (the ``ρ`` process of theory §11).

The run is a loss curve logged every so many iterations of gradient descent with step ``η`` from an
initialisation at scale ``λ``, in the problem's loss convention. Iteration ``k`` is time ``t = η·k``
and ``τ = t / log(1/λ)``. The measured drop ``k`` is where the logged loss first falls through the
midpoint between the limit's plateaus ``k−1`` and ``k``, interpolated linearly between logged points.
Measured times are floats from the user's data; predicted ones are the engine's exact ``τ_k``
converted with the float ``log(1/λ)``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .flow.simulate import log_inverse
from .process import Result, solve

__all__ = ["AXES", "Overlay", "overlay", "read_run"]

#: the x axes of an overlay: iterations k, time t = η·k, rescaled time τ = t / log(1/λ)
AXES = ("iterations", "t", "tau")


def read_run(path) -> tuple[np.ndarray, np.ndarray]:
    """``(iterations, loss)`` of a run file: CSV with a ``loss`` column (and an ``iteration``, ``iter`` or
    ``step`` column, else the row index), or a JSON list of losses (one per iteration)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError("run", f"cannot read {path}: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError("run", f"not JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
            raise InputError("run", "a JSON run must be a list of losses, one per iteration")
        loss = np.array(data, float)
        iterations = np.arange(len(loss), dtype=float)
    else:
        rows = list(csv.reader(text.splitlines()))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "loss" not in header:
            raise InputError("run", f"no loss column in the CSV header {rows[0] if rows else '(empty file)'}")
        column = header.index("loss")
        steps = [header.index(name) for name in ("iteration", "iter", "step") if name in header]
        try:
            loss = np.array([float(r[column]) for r in rows[1:] if r], float)
            iterations = np.array([float(r[steps[0]]) for r in rows[1:] if r], float) if steps else np.arange(len(loss), dtype=float)
        except (ValueError, IndexError):
            raise InputError("run", "every row needs numbers in the loss (and iteration) columns") from None
    if len(loss) < 2:
        raise InputError("run", f"needs at least two logged losses, got {len(loss)}")
    if not (np.isfinite(loss).all() and np.isfinite(iterations).all()):
        raise InputError("run", "non-finite loss or iteration")
    bad = np.flatnonzero(np.diff(iterations) <= 0)
    if bad.size:
        k = int(bad[0]) + 1
        raise InputError("run", f"iterations must increase: row {k} has {iterations[k]:g} after {iterations[k - 1]:g}")
    return iterations, loss


@dataclass(frozen=True)
class Overlay:
    """A run (``iterations``, ``loss``) beside ``flow`` (``solve(problem)``) and ``descent`` (``solve(problem, lr=η)``).

    ``measured[k-1]`` is the iteration of drop ``k`` in the run (NaN if the loss never falls through
    the midpoint); ``predicted_flow`` and ``predicted_descent`` are the limits' drop iterations
    ``τ_k log(1/λ) / η``.
    """

    iterations: np.ndarray
    loss: np.ndarray
    lr: float
    log_inv_lambda: float
    flow: Result
    descent: Result
    measured: np.ndarray
    predicted_flow: np.ndarray
    predicted_descent: np.ndarray

    def scale(self, x: str) -> float:
        """The factor from iterations to the axis ``x``."""
        if x not in AXES:
            raise InputError("x", f"unknown axis {x!r} (choose {', '.join(AXES)})")
        return {"iterations": 1.0, "t": self.lr, "tau": self.lr / self.log_inv_lambda}[x]

    def rows(self, x: str = "iterations") -> list[dict]:
        """Per drop: ``k``, measured, descent limit and flow limit, on the axis ``x`` (None where not measured)."""
        s = self.scale(x)
        return [
            {
                "k": k + 1,
                "measured": None if math.isnan(m) else m * s,
                "descent_limit": d * s,
                "flow_limit": f * s,
            }
            for k, (m, d, f) in enumerate(zip(self.measured, self.predicted_descent, self.predicted_flow))
        ]

    def text(self, x: str = "iterations") -> str:
        """The measured and predicted drop times side by side, one line per drop."""
        head = f"drop times ({x}; η = {self.lr:g}, log(1/λ) = {self.log_inv_lambda:.6g})"
        lines = [head, f"{'k':>3}  {'measured':>14}  {'descent limit':>14}  {'flow limit':>14}"]
        for row in self.rows(x):
            measured = "never" if row["measured"] is None else f"{row['measured']:.6g}"
            lines.append(f"{row['k']:>3}  {measured:>14}  {row['descent_limit']:>14.6g}  {row['flow_limit']:>14.6g}")
        return "\n".join(lines) + "\n"


def _crossings(iterations: np.ndarray, loss: np.ndarray, levels) -> np.ndarray:
    found = []
    for level in levels:
        below = np.flatnonzero((loss[:-1] > level) & (loss[1:] <= level))
        if not below.size:
            found.append(np.nan)
            continue
        i = int(below[0])
        found.append(iterations[i] + (iterations[i + 1] - iterations[i]) * (loss[i] - level) / (loss[i] - loss[i + 1]))
    return np.array(found, float)


def overlay(problem, iterations, loss, lr, lam) -> Overlay:
    """Set a logged loss curve of gradient descent (step ``lr``, scale ``lam``) beside both limits.

    ``lr`` is the step as the engine reads it (a rational: an int, a Fraction or a string like
    ``"0.3"``; a float is read as its exact binary value); ``lam`` a float or a string like ``"1e-400"``.
    """
    try:
        step = float(lr)
    except (TypeError, ValueError):
        raise InputError("lr", f"not a number: {lr!r}") from None
    if not (math.isfinite(step) and step > 0):
        raise InputError("lr", f"must be positive, got {lr}")
    L = log_inverse(lam)
    flow, descent = solve(problem), solve(problem, lr=lr)
    plateaus = [float(s.loss) for s in descent.saddles]
    midpoints = [(a + b) / 2 for a, b in zip(plateaus, plateaus[1:])]
    iterations, loss = np.asarray(iterations, float), np.asarray(loss, float)
    return Overlay(
        iterations=iterations,
        loss=loss,
        lr=step,
        log_inv_lambda=L,
        flow=flow,
        descent=descent,
        measured=_crossings(iterations, loss, midpoints),
        predicted_flow=np.array([float(j.tau) for j in flow.jumps]) * L / step,
        predicted_descent=np.array([float(j.tau) for j in descent.jumps]) * L / step,
    )
