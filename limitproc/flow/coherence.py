"""How far the jump process survives on nearly orthogonal data: the coherence study (approximate).

Start from a problem with orthogonal data (labels ``y``, squared norms ``q``, signs, activation
pattern and initial magnitudes) and replace its inputs by nearly orthogonal ones:

* **perturbed** (``eps``): ``X = Q + ε G`` with ``Q`` the first ``n`` coordinate axes of ``R^d``
  (``d`` default ``n``; exactly orthogonal in floats, so ``ε = 0`` is the orthogonal problem itself)
  and ``G`` i.i.d. ``N(0, 1/d)`` (rows of norm ≈ 1), each row scaled back to ``sqrt(q_i)``. ``G`` is
  isotropic, so ``X`` has the distribution it would have for any fixed orthonormal ``Q``; the
  coherence ``max |cos(x_i, x_k)|`` is about ``ε·sqrt(8 log n / d)``;
* **Gaussian** (``d``): rows i.i.d. ``N(0, I_d)`` scaled to ``sqrt(q_i)``, coherence about
  ``sqrt(4 log n / d)`` (the inputs of Dana et al. and Boursier et al.).

Labels and the initialisation pattern are kept exactly: ``W = U G⁻¹ X`` with ``U`` the problem's
signed magnitudes (so ``<w_j, x_i> = ±magnitude_ji``), ``a_j = s_j ||w_j||`` (balanced). The
general flow (:mod:`limitproc.flow.general`) runs at each λ of a ladder and is compared with the
exact limit of the orthogonal problem: plateau losses (inside each limit plateau, at the smallest
λ), drop times extrapolated to λ → 0 by a fit linear in ``1/log(1/λ)``, the order in which
neurons escape (first carry half of some sample's label: ``a_j σ(u_ji) / y_i ≥ 1/2``, the limit's
tied classes together) against the limit's blocks, ``N`` and the final loss (interpolation).

The raw data's losses and norms are the spec's, so a mean-field problem is studied in the spec's
units (:meth:`Problem.with_scaling` ``("standard")``: the same limit, losses and squared norms divided
by ``m``); the relative deviations do not depend on the units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.rawdata import RawData
from ..problem import Problem
from .general import coherence_of, simulate_general
from .simulate import float_labels, float_sq_norms, initial_magnitudes, log_inverse

__all__ = ["CoherenceRow", "CoherenceStudy", "coherence_study", "gaussian_inputs", "perturbed_inputs", "raw_with_inputs"]


def _unit_rows(X: np.ndarray, q: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1)[:, None] * np.sqrt(q)[:, None]


def perturbed_inputs(problem: Problem, eps: float, d: int | None = None, seed: int = 0) -> np.ndarray:
    """``Q + ε G`` row-normalised to the problem's norms (see the module doc)."""
    if not 0 <= eps < 1:
        raise InputError("eps", f"must lie in [0, 1), got {eps}")
    n = problem.n
    d = n if d is None else d
    if d < n:
        raise InputError("d", f"dimension {d} < n = {n}: no n orthogonal inputs")
    G = np.random.default_rng(seed).standard_normal((n, d)) / math.sqrt(d)
    return _unit_rows(np.eye(n, d) + eps * G, float_sq_norms(problem))


def gaussian_inputs(problem: Problem, d: int, seed: int = 0) -> np.ndarray:
    """Rows i.i.d. ``N(0, I_d)`` scaled to the problem's norms."""
    if d < problem.n:
        raise InputError("d", f"dimension {d} < n = {problem.n}: Gaussian inputs would be dependent")
    rng = np.random.default_rng(seed)
    return _unit_rows(rng.standard_normal((problem.n, d)), float_sq_norms(problem))


def raw_with_inputs(problem: Problem, inputs: np.ndarray, seed: int = 0) -> RawData:
    """Raw data on ``inputs`` with the problem's labels and initialisation: ``<w_j, x_i> = ±magnitude_ji``."""
    mags, _ = initial_magnitudes(problem, seed)
    U = np.where(problem.active_matrix(), mags, -mags)
    W = np.linalg.solve(inputs @ inputs.T, U.T).T @ inputs
    a = problem.signs * np.linalg.norm(W, axis=1)
    return RawData(inputs, W, a, float_labels(problem), problem.loss)


@dataclass(frozen=True)
class CoherenceRow:
    """One input set. At the smallest λ, against the run on the orthogonal inputs ``Q`` at that λ:
    ``plateau_dev`` (loss inside each limit plateau, largest difference) and ``drop_dev`` (drop times
    ``t``). Against the limit: ``tau_dev`` (τ extrapolated over the λ ladder, largest over the jumps),
    ``N_dev`` (relative), ``final_loss``, and ``same_order``: the neurons that escape are the limit's
    and escape block after block in the limit's order, every drop happened, and the final loss is the
    limit's (to 1e-3 of the initial loss). Losses in the spec's units (module doc)."""

    inputs: str
    eps: float
    coherence: float
    plateau_dev: float
    drop_dev: float
    tau_dev: float
    N_dev: float | None
    final_loss: float
    drops: int
    same_order: bool
    switches: int


@dataclass(frozen=True)
class CoherenceStudy:
    """The rows, and the power law ``dev ≈ C ε^p`` fitted (log-log least squares) over the perturbed
    rows with ``ε > 0`` that keep the limit's jump order: ``fits[name] = (C, p)`` for ``plateau_dev``
    and ``drop_dev``. ``scaling`` is the problem's; the study is in the spec's units (module doc)."""

    rows: list[CoherenceRow]
    fits: dict
    first_order_change: float | None  # the smallest ε whose jump order differs from the limit's
    scaling: str = "standard"

    def to_dict(self) -> dict:
        return {
            "rows": [r.__dict__ for r in self.rows],
            "fits": {k: {"C": c, "exponent": p} for k, (c, p) in self.fits.items()},
            "first_order_change": self.first_order_change,
            "scaling": self.scaling,
            "units": "spec",
        }

    def table(self):
        from ..io.tables import Table

        columns = [
            "inputs",
            "eps",
            "coherence",
            "plateau dev",
            "drop dev (t)",
            "tau dev (limit)",
            "N dev",
            "final loss",
            "drops",
            "same order",
            "switches",
        ]

        def g(x):
            return "" if x is None else f"{x:.3g}"

        rows = [
            [r.inputs, g(r.eps), g(r.coherence), g(r.plateau_dev), g(r.drop_dev), g(r.tau_dev), g(r.N_dev), g(r.final_loss)]
            + [r.drops, r.same_order, r.switches]
            for r in self.rows
        ]
        fits = "; ".join(f"{k} ≈ {c:.3g}·ε^{p:.3f}" for k, (c, p) in self.fits.items())
        change = "none" if self.first_order_change is None else f"{self.first_order_change:g}"
        summary = [f"power-law fits: {fits or 'too few points'}", f"first ε changing the jump order: {change}"]
        if self.scaling != "standard":
            summary.append(f"{self.scaling} problem: losses in the spec's units (the problem's are m times these)")
        return Table(columns, rows, caption="coherence study", header=summary)


def _growth_order(output_shares: np.ndarray, classes=()) -> list[int]:
    """The neurons that escape, in the order in which they first carry half of some sample's label
    (``output_shares[s, j] ≥ 1/2``, rows the steps). A neuron that stays small carries
    ``O(λ^(2(1 − max S_j)))`` of any output, so this tends to the limit's escaped set as λ → 0, and
    a neuron whose exponent peaks below but near 1 does not pass it at practical λ (a threshold on the
    norm, ``λ^(1/8)``, counted one peaking at 0.95). The neurons of one of the limit's ``classes``
    (identical blocks: they act as one neuron, theory §6, and split its output in the ratio of their
    starts) escape together, when their shares add up to 1/2. (The order, not the drop each falls in:
    at finite λ the offsets ``δ_k`` merge drops whose τ are close, but not the order of escapes.)"""
    m = output_shares.shape[1]
    grouped = {j for c in classes for j in c}
    groups = [tuple(c) for c in classes] + [(j,) for j in range(m) if j not in grouped]
    carries = np.stack([output_shares[:, list(g)].sum(axis=1) for g in groups], axis=1) >= 0.5
    escaped = np.flatnonzero(carries.any(axis=0))
    when = np.argmax(carries[:, escaped], axis=0)
    return [j for g in escaped[np.argsort(when, kind="stable")] for j in groups[g]]


def _row(name: str, eps: float, data: RawData, result, lams, rtol: float, reference, sims=None) -> CoherenceRow:
    sims = sims or [simulate_general(data, lam, result=result, rtol=rtol) for lam in lams]
    deepest = max(sims, key=lambda s: s.log_inv_lambda)
    ref = max(reference, key=lambda s: s.log_inv_lambda)  # the orthogonal run at the same λ
    K = len(result.jumps)
    taus = np.array([float(j.tau) for j in result.jumps])
    drop_taus = np.array([s.drop_taus for s in sims])
    if K and np.isfinite(drop_taus).all():
        inv = np.array([1 / s.log_inv_lambda for s in sims])
        fit = np.polyfit(inv, drop_taus, 1) if len(sims) > 1 else drop_taus  # intercept: τ at λ → 0
        tau_dev = float(np.abs(fit[-1] - taus).max())
    else:
        tau_dev = math.inf if K else 0.0
    with np.errstate(invalid="ignore"):
        drop_dev = float(np.max(np.abs(deepest.drop_times - ref.drop_times), initial=0.0)) if K else 0.0
    block = {j: k for k, jump in enumerate(result.jumps) for j in jump.neurons}
    order = _growth_order(deepest.output_shares, [c for jump in result.jumps for c in jump.classes])
    same = (
        sorted(order) == sorted(block)
        and all(block[x] <= block[z] for x, z in zip(order, order[1:]))  # the limit's blocks, one after another
        and bool(np.isfinite(deepest.drop_times).all())
        and abs(deepest.final_loss - float(result.final_loss)) <= 1e-3 * deepest.loss[0]  # no extra fit after the limit's last jump
    )
    N = None if result.sq_norm is None else float(result.sq_norm)
    return CoherenceRow(
        inputs=name,
        eps=eps,
        coherence=coherence_of(data.inputs),
        plateau_dev=float(np.abs(deepest.plateau_losses - ref.plateau_losses).max()),
        drop_dev=drop_dev if np.isfinite(drop_dev) else math.inf,
        tau_dev=tau_dev,
        N_dev=None if N is None else abs(deepest.final_sq_norm - N) / N,
        final_loss=deepest.final_loss,
        drops=int(np.isfinite(deepest.drop_times).sum()),
        same_order=bool(same),
        switches=len(deepest.switches),
    )


def coherence_study(
    problem: Problem,
    eps=(0.0, 1e-3, 1e-2, 1e-1),
    *,
    gaussian_dims=(),
    lambdas=("1e-8", "1e-12", "1e-16"),
    d: int | None = None,
    seed: int = 0,
    rtol: float = 1e-8,
) -> CoherenceStudy:
    """Run the study (module doc) for each ``ε`` in ``eps`` and each Gaussian dimension in ``gaussian_dims``."""
    from ..process import solve

    scaling, problem = problem.scaling, problem.with_scaling("standard")  # the raw data's units (module doc)
    for e in eps:
        if not 0 <= e < 1:
            raise InputError("eps", f"must lie in [0, 1), got {e}")
    if not lambdas:
        raise InputError("lambdas", "give at least one λ")
    for lam in lambdas:
        log_inverse(lam)
    result = solve(problem)

    def raw(e):
        return raw_with_inputs(problem, perturbed_inputs(problem, e, d, seed), seed)

    reference = [simulate_general(raw(0.0), lam, result=result, rtol=rtol) for lam in lambdas]
    rows = [_row("Q+εG", e, raw(e), result, lambdas, rtol, reference, reference if e == 0 else None) for e in eps]
    for dim in gaussian_dims:
        X = gaussian_inputs(problem, dim, seed)
        rows.append(_row(f"gauss d={dim}", math.nan, raw_with_inputs(problem, X, seed), result, lambdas, rtol, reference))
    fits = {}
    for key in ("plateau_dev", "drop_dev"):
        pts = [
            (r.eps, getattr(r, key)) for r in rows if r.inputs == "Q+εG" and r.eps > 0 and r.same_order and 0 < getattr(r, key) < math.inf
        ]
        if len(pts) >= 2:
            p, logc = np.polyfit(np.log([e for e, _ in pts]), np.log([v for _, v in pts]), 1)
            fits[key] = (float(math.exp(logc)), float(p))
    changed = [r.eps for r in rows if r.inputs == "Q+εG" and not r.same_order]
    return CoherenceStudy(rows, fits, min(changed) if changed else None, scaling)


def coherence_figure(study: CoherenceStudy, path) -> None:
    """Deviation against ε (log-log) with the fitted power laws, written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in study.rows if r.inputs == "Q+εG" and r.eps > 0 and 0 < r.plateau_dev < math.inf and 0 < r.drop_dev < math.inf]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    eps = np.array([r.eps for r in rows])
    for key, label in (("plateau_dev", "plateau loss"), ("drop_dev", "drop time t")):
        vals = np.array([getattr(r, key) for r in rows])
        (line,) = ax.loglog(eps, vals, "o", label=label)
        if key in study.fits:
            c, p = study.fits[key]
            ax.loglog(eps, c * eps**p, "-", color=line.get_color(), label=f"{c:.2g}·ε^{p:.2f}")
    if study.first_order_change is not None:
        ax.axvline(study.first_order_change, color="grey", ls=":", label="jump order changes")
    ax.set_xlabel("ε")
    ax.set_ylabel("deviation from the limit")
    ax.legend(fontsize=7)
    fig.tight_layout()
    import io

    from ..io.files import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format=str(path).rsplit(".", 1)[-1] or "png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue(), mode="wb")
