"""Figures of a sweep (matplotlib; each saved as PNG and PDF, atomically and reproducibly).

* ``probability``: P(interpolate) against ``m / log2 n``: the exact curve of theory §7 (labels
  with fair-coin signs, as the sweep draws them) and the fraction of seeds that interpolated;
* ``norm_scaling``: ``N / sqrt(n)`` against ``n`` (and ``N_min / sqrt(n)`` for reference);
* ``bias_ratio``: ``N / N_min`` against ``n`` with the ``1 + sqrt(2)`` line of the idealised process.

One figure of a single problem: :func:`loss_curve_figure`, finite-λ loss curves on the limit's staircase.

Runs whose norm is undetermined (an overlapping tie) are left out of the norm figures and counted
in their legends.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .plots import save_figure

__all__ = ["FIGURES", "bias_ratio_figure", "loss_curve_figure", "norm_scaling_figure", "probability_figure", "sweep_figures"]

FIGURES = ("probability", "norm_scaling", "bias_ratio")


def _save(fig, stem: Path) -> list[str]:
    paths = []
    for fmt in ("png", "pdf"):
        path = stem.with_suffix(f".{fmt}")
        save_figure(fig, path, fmt)  # the same sweep gives the same bytes
        paths.append(str(path))
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def loss_curve_figure(result, curves, path) -> str:
    """The limit's loss staircase with ``curves`` (``(label, tau, loss)``) overlaid, written
    atomically to ``path`` (PNG, PDF or SVG by its suffix)."""
    from .plots import loss_staircase

    _pyplot()
    fig = loss_staircase(result, curves)
    try:
        save_figure(fig, path, field="figure")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return str(path)


def probability_figure(rows: list[dict], stem) -> list[str]:
    from .probability import random_signs_probability

    plt = _pyplot()
    by_n = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_n[r["n"]][r["m"]].append(bool(r["interpolates"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in sorted(by_n):
        cells = by_n[n]
        log2n = math.log2(n) if n > 1 else 1.0
        widths = range(min(cells), max(cells) + 1)  # exact values cost ~m·n bits each: stay in the sweep's span
        exact = [float(random_signs_probability(n, m).decimal(17)) for m in widths]
        (line,) = ax.plot([m / log2n for m in widths], exact, lw=1.2, label=f"exact, n = {n}")
        ms = sorted(cells)
        ax.plot(
            [m / log2n for m in ms],
            [sum(cells[m]) / len(cells[m]) for m in ms],
            "o",
            color=line.get_color(),
            ms=4,
            label=f"engine, n = {n} ({len(cells[ms[0]])} seeds)",
        )
    ax.axvline(2, color="grey", ls=":", lw=1, label="m = 2 log2 n")
    ax.set_xlabel("m / log2 n")
    ax.set_ylabel("P(interpolate)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = _save(fig, Path(stem))
    plt.close(fig)
    return paths


def _norm_figure(rows: list[dict], stem, value, ylabel: str, reference) -> list[str]:
    plt = _pyplot()
    determined = [r for r in rows if r["sq_norm_determined"]]
    missing = len(rows) - len(determined)
    fig, ax = plt.subplots(figsize=(6, 4))
    by_n = defaultdict(list)
    for r in determined:
        by_n[r["n"]].append(value(r))
    ns = sorted(by_n)
    ax.plot(
        [n for n in ns for _ in by_n[n]],
        [v for n in ns for v in by_n[n]],
        ".",
        alpha=0.4,
        color="C0",
        label=f"runs ({missing} with undetermined N left out)",
    )
    ax.plot(ns, [sum(by_n[n]) / len(by_n[n]) for n in ns], "-o", color="C1", label="mean")
    every_n = sorted({r["n"] for r in rows})
    reference(ax, every_n)
    if every_n:  # fixed limits: the axis stays valid even if every N is undetermined
        ax.set_xlim(every_n[0] / 1.5, every_n[-1] * 1.5)
        ax.set_xscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = _save(fig, Path(stem))
    plt.close(fig)
    return paths


def norm_scaling_figure(rows: list[dict], stem) -> list[str]:
    def reference(ax, ns):
        from .bias import asymptotic_sqrt_n_constant

        constant = asymptotic_sqrt_n_constant()
        ax.axhline(float(constant), color="grey", ls="--", label=f"{constant} (idealised halving, balanced)")
        by_n = defaultdict(list)
        for r in rows:
            by_n[r["n"]].append(r["min_sq_norm"] / math.sqrt(r["n"]))
        ax.plot(ns, [sum(by_n[n]) / len(by_n[n]) for n in ns], "--", color="C2", label="N_min / sqrt(n), mean")

    return _norm_figure(rows, stem, lambda r: r["sqrt_n_constant"], "N / sqrt(n)", reference)


def bias_ratio_figure(rows: list[dict], stem) -> list[str]:
    def reference(ax, ns):
        from .bias import asymptotic_ratio

        constant = asymptotic_ratio()  # derived from the series: 1 + sqrt(2)
        ax.axhline(float(constant), color="grey", ls="--", label=f"{constant} (idealised halving)")

    return _norm_figure(rows, stem, lambda r: r["ratio"], "N / N_min", reference)


def sweep_figures(rows: list[dict], directory) -> list[str]:
    """All three figures into ``directory`` (created); returns the files written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = probability_figure(rows, directory / "probability")
    paths += norm_scaling_figure(rows, directory / "norm_scaling")
    paths += bias_ratio_figure(rows, directory / "bias_ratio")
    return paths
