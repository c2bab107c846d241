"""Pictures of the limit process: the staircase graph of saddles and the loss staircase.

matplotlib is imported inside the functions, so ``import limitproc`` stays light; figures are
built with ``matplotlib.figure.Figure`` (no pyplot state, any backend). Positions come from the
float ``*_decimal`` twins: pictures are for display only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .graph import edge_label
from .io.files import atomic_write
from .process import Result

__all__ = ["FIGURE_FORMATS", "loss_staircase", "norm_trajectories", "overlay_figure", "save_figure", "staircase_graph"]

FIGURE_FORMATS = ("png", "svg", "pdf")
# per format, the metadata matplotlib would stamp with a date or version: left out
_NO_STAMPS = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


def save_figure(fig, path, fmt: str | None = None, *, field: str = "output", dpi: int = 150) -> None:
    """Save ``fig`` atomically as PNG, SVG or PDF (``fmt``, else by the extension of ``path``),
    byte-identical across runs: no dates, fixed SVG ids (``svg.hashsalt``)."""
    import matplotlib

    fmt = fmt or Path(path).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise InputError(field, f"unknown figure extension {Path(path).suffix!r} (use .png, .svg or .pdf)")
    try:
        with matplotlib.rc_context({"svg.hashsalt": "limitproc"}):
            atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, metadata=_NO_STAMPS[fmt]), mode="wb")
    except OSError as exc:
        raise InputError(field, f"cannot write {path}: {exc.strerror}") from None


def _new_axes(ax, size):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def staircase_graph(G, ax=None, min_probability: float = 0.0, title: str | None = None):
    """The saddles at ``(tau, plateau loss)`` joined by their jumps; returns the figure.

    One run (:func:`~limitproc.graph.transition_graph`): each jump is a step (plateau, then the
    loss drop) labelled ``n<neuron>: <block size>``. Ensemble (:func:`~limitproc.graph.ensemble_graph`):
    a node sits at its median entry time, its area and colour follow its probability, edge widths
    are proportional to probability and edges are labelled with the block size; nodes and edges
    below ``min_probability`` are left out.
    """
    ensemble = G.graph.get("kind") == "ensemble"
    keep = [u for u, a in G.nodes(data=True) if not ensemble or a["probability_decimal"] >= min_probability]
    H = G.subgraph(keep)
    if ensemble:
        H = H.edge_subgraph([(u, v) for u, v, a in H.edges(data=True) if a["probability_decimal"] >= min_probability]).copy()
        H.add_nodes_from((u, G.nodes[u]) for u in keep)
    fig, ax = _new_axes(ax, (10, 7) if ensemble else (10, 6))
    pos = _positions(H, "tau_median" if ensemble else "tau_decimal")
    from matplotlib.patches import FancyArrowPatch

    xs = [x for x, _ in pos.values()] or [0.0]
    close = 0.08 * ((max(xs) - min(xs)) or 1.0)
    small = len(H) <= 30  # ensembles: label nodes and edges only while it stays readable
    for u, v, a in H.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        width = 0.6 + 8 * a["probability_decimal"] if ensemble else 1.6
        style = "arc3,rad=0" if ensemble else "angle,angleA=0,angleB=90,rad=0"  # one run: plateau, then drop
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                connectionstyle=style,
                arrowstyle="-|>",
                mutation_scale=12,
                lw=width,
                color="tab:blue",
                alpha=0.5 if ensemble else 0.9,
                shrinkA=6,
                shrinkB=6,
                zorder=1,
            )
        )
        if small or not ensemble:
            # one run: beside the drop, on the right unless the next drop follows closely (then the
            # right is crowded and the left, under the previous plateau, is free);
            # ensembles: the block size, 60% of the way, where edges fanning out of one node have parted
            at = (0.4 * x0 + 0.6 * x1, 0.4 * y0 + 0.6 * y1) if ensemble else (x1, (y0 + y1) / 2)
            side = 0 if ensemble else (-1 if any(pos[w][0] - x1 < close for w in H.successors(v)) else 1)
            text = f"{len(a['samples'])}" if ensemble else edge_label(G, u, v)
            ax.annotate(
                text,
                at,
                xytext=(4 * side, 0),
                textcoords="offset points",
                fontsize=7 if ensemble else 8,
                va="center",
                ha={0: "center", 1: "left", -1: "right"}[side],
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                zorder=1.5,
            )
    xs, ys = zip(*pos.values()) if pos else ((), ())
    if ensemble:
        probs = [a["probability_decimal"] for _, a in H.nodes(data=True)]
        points = ax.scatter(xs, ys, s=[30 + 400 * p for p in probs], c=probs, cmap="viridis", vmin=0, vmax=1, zorder=2, edgecolors="k")
        fig.colorbar(points, ax=ax, label="probability")
        if small:
            _label_nodes(ax, H, pos)
    else:
        ax.scatter(xs, ys, s=40, color="tab:red", zorder=2, edgecolors="k")
        for u in H:
            ax.annotate(str(u), pos[u], xytext=(-4, -4), textcoords="offset points", fontsize=8, ha="right", va="top")
    ax.set_xlabel("τ (rescaled time)" + (", median entry time" if ensemble else ""))
    ax.set_ylabel("plateau loss")
    ax.set_title(title or _title(G, len(H)))
    if pos:
        _fix_limits(ax, pos)
    ax.grid(alpha=0.3)
    return fig


def _label_nodes(ax, H, pos: dict) -> None:
    """``F`` and ``p`` beside each node, at the spot of four whose box overlaps the earlier labels least
    (no label when even that spot is mostly covered).

    Boxes are estimated in points (7-point text: about 4.3 points a character, 18 points for two lines).
    """
    _fix_limits(ax, pos)
    to_points = 72 / ax.figure.dpi
    spots = [((6, 3), "left", "bottom"), ((6, -3), "left", "top"), ((-6, 3), "right", "bottom"), ((-6, -3), "right", "top")]
    placed: list[tuple[float, float, float, float]] = []
    for u in sorted(H, key=lambda u: pos[u][0]):
        fitted = H.nodes[u]["fitted"]
        name = "F={" + ",".join(map(str, fitted)) + "}" if len(fitted) <= 6 else f"|F|={len(fitted)}"
        text = f"{name}\np={H.nodes[u]['probability_decimal']:.2f}"
        x, y = ax.transData.transform(pos[u]) * to_points
        w, h = 4.3 * max(map(len, text.split("\n"))), 18

        def overlap(spot):
            (dx, dy), ha, va = spot
            left, bottom = x + dx - (w if ha == "right" else 0), y + dy - (h if va == "top" else 0)
            box = (left, bottom, left + w, bottom + h)
            return sum(max(0, min(box[2], b[2]) - max(box[0], b[0])) * max(0, min(box[3], b[3]) - max(box[1], b[1])) for b in placed), box

        (dx, dy), ha, va = min(spots, key=lambda spot: overlap(spot)[0])  # the first spot free of overlap, else the least covered
        covered, box = overlap(((dx, dy), ha, va))
        if covered > 0.3 * w * h:  # a crowd of saddles: an unreadable label only hides the others
            continue
        placed.append(box)
        ax.annotate(text, pos[u], xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha, va=va, zorder=4)


def _fix_limits(ax, pos: dict) -> None:
    """Set the data limits now (8% margins), so that data and points are related before drawing."""
    xs, ys = zip(*pos.values())
    for setter, lo, hi in ((ax.set_xlim, min(xs), max(xs)), (ax.set_ylim, min(ys), max(ys))):
        pad = 0.08 * ((hi - lo) or 1.0)
        setter(lo - pad, hi + pad)


def _positions(H, xkey: str) -> dict:
    """``(tau, loss)`` of each node; nodes at the same point (equal rates and losses) are spread sideways."""
    points: dict[tuple, list] = {}
    for u, a in H.nodes(data=True):
        points.setdefault((round(a[xkey], 9), round(a["loss_decimal"], 9)), []).append(u)
    xs = [x for x, _ in points] or [0.0]
    step = 0.04 * ((max(xs) - min(xs)) or 1.0)
    return {u: (x + (i - (len(us) - 1) / 2) * step, y) for (x, y), us in points.items() for i, u in enumerate(us)}


def _title(G, shown: int) -> str:
    g = G.graph
    if g.get("kind") == "ensemble":
        how = "exact enumeration" if g.get("exact") else f"{g.get('runs')} runs, seed {g.get('seed')}"
        return f"saddle ensemble: n={g['n']}, m={g['m']}, {how} ({shown} of {len(G)} saddles shown)"
    return f"saddle-to-saddle path: n={g['n']}, m={g['m']}, {len(G) - 1} jumps"


def loss_staircase(result: Result, simulations=(), ax=None, title: str | None = None):
    """The limit's loss as a function of ``tau`` (a staircase), with simulated curves overlaid.

    ``simulations`` is a list of ``(lam, tau_array, loss_array)``: loss curves of gradient flow at
    initialisation scale ``lam``, with time already rescaled to ``tau = t / log(1/lam)``; a ``lam``
    given as text is the curve's label.
    """
    fig, ax = _new_axes(ax, (9, 5))
    taus = [float(s.tau.ball(64).mid()) for s in result.saddles]
    losses = [float(s.loss) for s in result.saddles]
    end = max(taus[-1] * 1.15, taus[-1] + 0.5)
    for lam, tau, loss in simulations:
        ax.plot(tau, loss, lw=1.2, alpha=0.8, label=lam if isinstance(lam, str) else f"simulation, λ = {lam:.0e}")
    ax.step(taus + [end], losses + [losses[-1]], where="post", color="k", lw=2, label="limit λ → 0")
    for x in taus[1:]:
        ax.axvline(x, color="0.7", lw=0.6, ls=":", zorder=0)
    ax.set_xlim(0, end)
    ax.set_xlabel("τ = t / log(1/λ)")
    ax.set_ylabel("loss")
    p = result.problem
    ax.set_title(title or f"loss staircase: n={p.n}, m={p.m}, {len(result.jumps)} jumps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def norm_trajectories(simulations, title: str | None = None):
    """Loss and per-neuron norms of simulated runs against ``tau``; returns the figure.

    Top: the loss of each run. Bottom: ``log(a_j² + ||w_j||²) / (2 log(1/λ))`` per neuron, which
    starts at −1 (size λ) and tends to the limit's ``S_j(τ) − 1`` until the neuron escapes (theory §4).
    """
    from matplotlib.figure import Figure

    sims = list(simulations)
    fig = Figure(figsize=(9, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    styles = ["-", "--", ":", "-."]
    for k, sim in enumerate(sims):
        style = styles[k % len(styles)]
        label = f"λ = e^-{sim.log_inv_lambda:.4g}" + (f", gd η = {sim.lr:g}" if sim.method == "gd" else "")
        top.semilogy(sim.tau, sim.loss, style, lw=1.2, label=label)
        exponents = sim.log_sq_norms / (2 * sim.log_inv_lambda)
        for j in range(exponents.shape[1]):
            bottom.plot(sim.tau, exponents[:, j], style, lw=1.0, color=f"C{j % 10}", label=f"neuron {j}" if k == 0 else None)
    top.set_ylabel("loss")
    top.legend(fontsize=8)
    bottom.set_ylabel("log(a_j² + ||w_j||²) / (2 log(1/λ))")
    bottom.set_xlabel("τ = t / log(1/λ)")
    bottom.legend(fontsize=8, ncol=2)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    if sims:
        p = sims[0].problem
        fig.suptitle(title or f"loss and neuron norms: n={p.n}, m={p.m}")
    return fig


def overlay_figure(ov, x: str = "iterations", title: str | None = None):
    """A user's loss curve (:class:`~limitproc.overlay.Overlay`) with the flow and descent limits and their drop times.

    The limits are staircases of the plateau losses, jumping at ``τ_k log(1/λ)/η`` iterations (scaled to
    the axis ``x``); dotted vertical lines mark the descent limit's drops, crosses the measured ones.
    """
    scale = ov.scale(x)
    fig, ax = _new_axes(None, (9, 5))
    xs = ov.iterations * scale
    ax.plot(xs, ov.loss, color="tab:blue", lw=1.6, label=f"your run (η = {ov.lr:g})")
    losses = [float(s.loss) for s in ov.descent.saddles]
    end = max(float(xs[-1]), 1.1 * float(max(ov.predicted_flow.max(initial=0), ov.predicted_descent.max(initial=0)) * scale))
    for drops, style, label in (
        (ov.predicted_descent, dict(color="k", lw=2.0), "descent limit (ρ process)"),
        (ov.predicted_flow, dict(color="tab:gray", lw=1.4, ls="--"), "flow limit"),
    ):
        edges = [0.0] + list(drops * scale) + [end]
        ax.step(edges, losses + [losses[-1]], where="post", label=label, **style)
    for d in ov.predicted_descent * scale:
        ax.axvline(d, color="0.6", lw=0.7, ls=":", zorder=0)
    seen = ~np.isnan(ov.measured)
    mids = [(a + b) / 2 for a, b in zip(losses, losses[1:])]
    ax.plot(ov.measured[seen] * scale, np.array(mids)[seen], "x", color="tab:red", ms=8, label="measured drops")
    ax.set_xlim(0, end)
    ax.set_xlabel({"iterations": "iteration k", "t": "t = η·k", "tau": "τ = η·k / log(1/λ)"}[x])
    ax.set_ylabel("loss")
    p = ov.descent.problem
    ax.set_title(title or f"run beside the limits: n={p.n}, m={p.m}, log(1/λ) = {ov.log_inv_lambda:.4g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
