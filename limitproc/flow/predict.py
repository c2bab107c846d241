"""The finite-λ loss curve predicted without simulating (theory §9): an approximate path.

At a finite ``λ`` the flow stays near the limit's plateaus and jumps in windows of ``O(1)`` time
around ``t = τ_k L`` (``L = log(1/λ)``). :func:`predict` builds the curve by matched asymptotics
from the limit and the jumps' ``λ``-free windows (:func:`~limitproc.flow.offsets.predict_offsets`):

* **Loss.** Each sample's residual is ``−y_i`` until the window of the jump that fits it, follows
  that window's residual at ``s = t − τ_k L``, and keeps its fitted value after; the loss is
  ``c Σ r_i²``. Between windows it is the limit's plateau. The drops are at ``t_k = τ_k L + δ_k``.
* **Norms.** Neuron ``j`` (with an aligned sample) has ``log(a_j² + ||w_j||²) = 2(−L + S_j(τ) L + π_j)``
  between windows, with ``S_j`` the limit's exponent and ``π_j`` its current log-prefactor; inside a
  window it follows the window's integration, and after its own escape it keeps its final norm.
  The first ``O(1)`` time, while the misaligned coordinates die, is drawn on the same line. Neurons
  without an aligned sample only shrink: their curve is NaN (not predicted).

Nothing here is integrated over the ``O(L)`` plateaus, so the cost does not grow with ``log(1/λ)``
and any ``λ`` works (as a string, ``"1e-10000"``). The result is **approximate** (float64): it
differs from the flow by corrections that vanish as a power of ``λ`` where the jumps are separated
(``(τ_{k+1} − τ_k) L`` large against the windows' widths ``1/μ``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..exact import rational_string
from ..problem import Problem
from ..process import Result, parse_step, solve
from .descent import growth_rate
from .integrator import hermite
from .offsets import predict_offsets
from .simulate import OnTauScale, float_labels, horizon, initial_magnitudes, log_inverse

__all__ = ["DESCENT_METHOD", "METHOD", "SEPARATED", "Prediction", "compare_prediction", "predict", "separations"]

#: a jump is separated at λ when ``separations(result)[k-1] · log(1/λ)`` is at least this many e-folds
SEPARATED = 20.0
METHOD = "approximate (float64): matched asymptotics from the exact limit and the jumps' O(1) windows, not simulated"
DESCENT_METHOD = "approximate (float64): matched asymptotics from the exact limit of descent (rates ρ) and the jumps' O(1) windows iterated with the step, not simulated"


@dataclass(frozen=True, eq=False)
class Prediction(OnTauScale):
    """The predicted curve at one λ. Times are the flow's ``t``; ``tau = t / log(1/λ)``.

    ``loss`` and ``log_sq_norms`` (``(points, m)``, NaN where not predicted; both in the problem's
    units, as the limit's plateaus: ``m`` times the spec's under mean-field scaling) are given at the times
    ``t``; ``drop_times[k-1] = τ_k log(1/λ) + δ_k`` with ``offsets[k-1] = δ_k``; ``plateaus`` are the
    limit's losses; ``lam`` is λ as given; ``separated[k-1]`` says whether jump ``k`` is separated
    at this λ (:func:`separations`), where the prediction is accurate.
    """

    result: Result = field(repr=False)
    lam: str
    log_inv_lambda: float
    magnitudes: np.ndarray = field(repr=False)
    a_magnitudes: np.ndarray = field(repr=False)
    t: np.ndarray = field(repr=False)
    loss: np.ndarray = field(repr=False)
    log_sq_norms: np.ndarray = field(repr=False)
    plateaus: list[float]
    drop_times: np.ndarray
    offsets: tuple[float, ...]
    separated: np.ndarray
    final_sq_norm: float
    method: str = METHOD

    @property
    def problem(self) -> Problem:
        return self.result.problem

    @property
    def lr(self) -> float:
        """The step ``η`` of the predicted descent; 0 for the flow."""
        return 0.0 if self.result.lr is None else float(self.result.lr)

    def to_dict(self, digits: int = 15, curves: bool = False) -> dict:
        """The JSON of ``limitproc predict``: per jump the exact ``tau``, the offset and the predicted drop."""
        jumps = [
            {
                "k": jump.k,
                "neurons": list(jump.neurons),
                "tau": jump.tau.exact(),
                "tau_decimal": jump.tau.decimal(digits),
                "delta": delta,
                "drop_time": float(t),
                "drop_tau": float(t / self.log_inv_lambda),
                "separated": bool(sep),
            }
            for jump, delta, t, sep in zip(self.result.jumps, self.offsets, self.drop_times, self.separated)
        ]
        record = {
            "method": self.method,
            "lambda": self.lam,
            "log_inv_lambda": self.log_inv_lambda,
            "lr": None if self.result.lr is None else rational_string(self.result.lr),  # exact, as solve writes it
            "jumps": jumps,
            "plateaus": self.plateaus,
            "final_sq_norm_predicted": self.final_sq_norm,
            "sq_norm": None if self.result.sq_norm is None else self.result.sq_norm.decimal(digits),
        }
        if curves:
            norms = [[None if np.isnan(v) else float(v) for v in row] for row in self.log_sq_norms]
            record["curve"] = {"t": self.t.tolist(), "tau": self.tau.tolist(), "loss": self.loss.tolist(), "log_sq_norms": norms}
        return record


def _exponents(result: Result, m: int):
    """``(S, rates)``: ``S(τ)`` gives the limit's exponents ``S_j`` at the times ``tau`` (array), shape
    ``(len(tau), m)``; ``rates[k, j]`` is neuron ``j``'s rate on saddle ``k`` (0 if stable there):
    ``μ``, or ``ρ = log(1 + η μ)/η`` for a result of descent."""
    starts = np.array([float(s.tau) for s in result.saddles])
    ends = np.append(starts[1:], np.inf)
    rates = np.zeros((len(starts), m))
    for k, saddle in enumerate(result.saddles):
        for j, mu in saddle.unstable.items():
            rates[k, j] = float(mu)
    rates = growth_rate(rates, None if result.lr is None else float(result.lr))

    def S(tau):
        spent = np.clip(np.asarray(tau, float)[:, None] - starts[None, :], 0.0, (ends - starts)[None, :])
        return spent @ rates

    return S, rates


#: points per integration step of a window in the predicted curve (cubic Hermite in between)
REFINE = 4


def _refined(s, values, rates):
    """``(s, values)`` on ``REFINE`` points per step, by cubic Hermite interpolation with ``rates``."""
    theta = np.arange(REFINE)[None, :, None] / REFINE
    h = np.diff(s)[:, None, None]
    out = hermite(values[:-1, None], rates[:-1, None], values[1:, None], rates[1:, None], h, theta)
    fine = (s[:-1, None] + h[:, :, 0] * theta[0, :, 0]).ravel()
    return np.append(fine, s[-1]), np.concatenate([out.reshape(-1, values.shape[1]), values[-1:]])


def _inside(t, x) -> tuple[int, int]:
    """``(start, end)``: ``t[start:end]`` (sorted) are the times within ``[x[0], x[-1]]``."""
    return int(np.searchsorted(t, x[0])), int(np.searchsorted(t, x[-1], side="right"))


def _interp(t, x, values) -> np.ndarray:
    """The columns of ``values`` (at the increasing ``x``) interpolated linearly at ``t`` within ``[x[0], x[-1]]``."""
    i = np.clip(np.searchsorted(x, t, side="right"), 1, len(x) - 1)
    w = ((t - x[i - 1]) / (x[i] - x[i - 1]))[:, None]
    return values[i - 1] * (1 - w) + values[i] * w


def separations(result: Result) -> np.ndarray:
    """``σ_k`` per jump: at ``λ``, jump ``k``'s window is ``σ_k log(1/λ)`` e-folds away from the
    others'. It is the smallest of the neighbouring gaps ``μ_k |τ_{k±1} − τ_k|`` (``τ_0 = 0``;
    ``μ_k`` the jump's smallest rate) and of the other unstable neurons' deficits ``1 − S_j(τ_k)``
    (a neuron about to escape too would be a full participant, not a small passenger). A jump is
    *separated* when ``σ_k log(1/λ) ≥`` :data:`SEPARATED`; the corrections to the prediction are of
    order ``e^{−σ_k log(1/λ)}``.
    """
    return _separations(result, np.array([float(j.tau) for j in result.jumps]), *_exponents(result, result.problem.m))


def _separations(result: Result, taus, exponents, rates) -> np.ndarray:
    """:func:`separations` from the jumps' float ``taus`` and the limit's :func:`_exponents`."""
    if not len(taus):
        return np.zeros(0)
    S = exponents(taus)
    gaps = np.diff(np.concatenate([[0.0], taus, [np.inf]]))
    out = []
    for k, jump in enumerate(result.jumps):
        mu = min(rates[k, j] for j in jump.neurons)  # the saddle a jump leaves holds its rates
        others = [1 - S[k, j] for j in result.saddles[k].unstable if j not in jump.neurons]
        out.append(min([mu * gaps[k], mu * gaps[k + 1], *others]))
    return np.array(out)


def predict(
    problem_or_result: Problem | Result,
    lam=None,
    *,
    log_inv_lambda: float | None = None,
    magnitudes=None,
    a_magnitudes=None,
    seed: int = 0,
    tau_end: float | None = None,
    rtol: float = 1e-6,
    lr=None,
) -> Prediction:
    """The predicted curve of the flow from scale ``λ`` (or ``exp(−log_inv_lambda)``), without simulating;
    of gradient descent with step ``lr`` if given (theory §11), or if ``problem_or_result`` is a
    result of descent (``solve(problem, lr=η)``).

    ``magnitudes`` (and ``a_magnitudes``) default to the problem's, or are drawn with ``seed``,
    exactly as :func:`~limitproc.flow.simulate.simulate` draws them, so both start alike. The curve
    runs to ``tau_end`` (default: the simulator's horizon). Under descent the windows' curves are
    their iterates (``t = η k``), joined by straight lines.
    """
    if (lam is None) == (log_inv_lambda is None):
        raise InputError("lambda", "give λ or log_inv_lambda (one of them)")
    L = log_inverse(lam) if log_inv_lambda is None else float(log_inv_lambda)
    if not L > 0:
        raise InputError("log_inv_lambda", f"must be positive, got {L}")
    if not rtol > 0:
        raise InputError("rtol", f"must be positive, got {rtol}")
    if isinstance(problem_or_result, Result):
        result = problem_or_result
        if lr is not None and result.lr != parse_step(lr):
            raise InputError("lr", f"the result was solved for {'the flow' if result.lr is None else f'step {result.lr}'}, not step {lr}")
    else:
        result = solve(problem_or_result, lr=lr)
    p = result.problem
    if magnitudes is None:
        magnitudes, a_magnitudes = initial_magnitudes(p, seed)
    chain = predict_offsets(result, magnitudes, a_magnitudes, rtol, log_inv_lambda=L)
    taus = np.array([float(j.tau) for j in result.jumps])
    t_end = (horizon(result, L) if tau_end is None else tau_end) * L
    windows = chain.windows
    descent = result.lr is not None
    refined = [
        (w.s, w.group_residuals) if descent else _refined(w.s, w.group_residuals, w.group_residual_rates) for w in windows
    ]  # their squares sum to the samples'
    t = np.unique(np.concatenate([[0.0, t_end], *[tk * L + s for tk, (s, _) in zip(taus, refined)]]))
    t = t[t <= t_end]

    # loss: each block's residual from its window, −y before and the fitted value after
    y = float_labels(p)
    sq = np.full(len(t), float(y @ y))
    for tk, w, (s, r) in zip(taus, windows, refined):
        start, end = _inside(t, tk * L + s)
        before = float(y[w.samples[w.block]] @ y[w.samples[w.block]])
        sq[start:end] += (_interp(t[start:end], tk * L + s, r) ** 2).sum(axis=1) - before
        sq[end:] += float(r[-1] @ r[-1]) - before
    loss = float(p.loss_factor * p.unit_factor) * sq  # in the problem's units, as its plateaus

    # norms: the line 2(−L + S_j L + π_j) between windows, the windows' curves inside them
    S, rates = _exponents(result, p.m)
    line = 2 * (S(t / L) - 1) * L  # 2(S_j(τ) − 1) L at every t
    log_sq = np.full((len(t), p.m), np.nan)
    for j, pi in chain.log_prefactors.items():
        log_sq[:, j] = line[:, j] + 2 * pi
        for k, later in chain.prefactor_changes.get(j, []):
            after = _inside(t, taus[k - 1] * L + windows[k - 1].s)[1]
            log_sq[after:, j] = line[after:, j] + 2 * later
    for tk, w in zip(taus, windows):
        s, norms = (w.s, w.log_sq_norms) if descent else _refined(w.s, w.log_sq_norms, w.log_sq_norm_rates)
        start, end = _inside(t, tk * L + s)
        shift = np.where(np.arange(len(w.neurons)) < w.escaping, 0.0, 2 * (S(np.array([tk]))[0, list(w.neurons)] - 1) * L)
        log_sq[start:end, w.neurons] = _interp(t[start:end], tk * L + s, norms + shift)
        escaping = list(w.neurons[: w.escaping])
        log_sq[end:, escaping] = norms[-1, : w.escaping]
    escaped = [w.log_sq_norms[-1, row] for w in windows for row in range(w.escaping)]
    return Prediction(
        result=result,
        lam=str(lam) if lam is not None else f"exp(-{L:.17g})",
        log_inv_lambda=L,
        magnitudes=chain.magnitudes,
        a_magnitudes=chain.a_magnitudes,
        t=t,
        loss=loss,
        log_sq_norms=log_sq + math.log(p.unit_factor),
        plateaus=[float(s.loss) for s in result.saddles],
        drop_times=taus * L + np.array(chain.offsets),
        offsets=chain.offsets,
        separated=_separations(result, taus, S, rates) * L >= SEPARATED,
        final_sq_norm=float(np.exp(escaped).sum()) * p.unit_factor,
        method=DESCENT_METHOD if descent else METHOD,
    )


def compare_prediction(prediction: Prediction, simulation) -> dict:
    """The difference between ``prediction`` and a :class:`~limitproc.flow.simulate.Simulation` of
    the same problem, λ and magnitudes: per jump the simulated drop time and predicted minus
    simulated; the largest loss difference on the simulation's steps; both final ``N``."""
    if abs(simulation.log_inv_lambda - prediction.log_inv_lambda) > 1e-9 * prediction.log_inv_lambda:
        raise InputError("simulation", "was run at another λ than the prediction")
    if (simulation.method == "gd") != bool(prediction.lr) or (prediction.lr and simulation.lr != prediction.lr):
        raise InputError("simulation", "was run with another method or step than the prediction")
    sim = simulation.drop_times
    diff = prediction.drop_times[: len(sim)] - sim[: len(prediction.drop_times)]

    def number(x):
        return None if not np.isfinite(x) else float(x)

    predicted_loss = np.interp(simulation.t, prediction.t, prediction.loss)
    return {
        "simulated_drop_times": [number(x) for x in sim],
        "drop_time_differences": [number(x) for x in diff],
        "max_drop_time_difference": number(np.abs(diff).max(initial=0.0)),
        "max_loss_difference": float(np.abs(predicted_loss - simulation.loss).max()),
        "final_sq_norm_simulated": simulation.final_sq_norm,
        "final_sq_norm_predicted": prediction.final_sq_norm,
        "simulation_steps": simulation.steps,
    }
