"""Saddle-transition graphs of the limit process (theory §4-§7).

:func:`transition_graph` turns one :class:`~limitproc.process.Result` into a ``networkx.DiGraph``
whose nodes are the saddles (origin to final state) and whose edges are the jumps.
:func:`ensemble_graph` fixes the labels and norms, draws random initialisations (or enumerates them
all, exactly) and merges the saddles of every run by their fitted set ``F``.

Exact values are sympify-able strings, each with a float ``*_decimal`` twin. Attribute names are a
public contract (docs/graph.md). Graph files are written and read by :mod:`limitproc.io.graphs`,
pictures drawn by :mod:`limitproc.plots`.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations_with_replacement
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .exact import ExactValue, parse_rational, rational_string
from .io.files import read_json
from .problem import Problem, draw_initialisation
from .process import LabelContext, Result, solve
from .progress import progress_bar
from .saddles import critical_point

__all__ = [
    "CONFIDENCE",
    "MAX_PATTERNS",
    "edge_label",
    "ensemble_graph",
    "enumerated_initialisations",
    "node_label",
    "pattern_count",
    "read_data",
    "sampled_initialisations",
    "transition_graph",
    "wilson_interval",
]

if TYPE_CHECKING:  # networkx is imported where graphs are built: the CLI's parser reads CONFIDENCE
    import networkx as nx

CONFIDENCE = 0.95
MAX_PATTERNS = 2**20


# -- exact attribute values ------------------------------------------------------------------------
def _set_exact(attrs: dict, name: str, value: ExactValue | None) -> None:
    """``name`` = sympify-able string (None when undetermined or over the term budget), plus a float twin."""
    attrs[name] = None if value is None else value.exact()
    attrs[f"{name}_decimal"] = None if value is None else float(value.decimal(20))


def _set_rational(attrs: dict, name: str, value: Fraction) -> None:
    attrs[name] = rational_string(value)
    attrs[f"{name}_decimal"] = float(value)


# -- one run -------------------------------------------------------------------------------------
def transition_graph(result: Result) -> nx.DiGraph:
    """The saddles of ``result`` (nodes ``0..K``, saddle ``k`` entered by jump ``k``) and its jumps (edges).

    Graph attributes: ``kind``, ``n``, ``m``, ``loss_convention``, ``interpolates``, ``lr`` (the exact
    step of gradient descent, ``"0"`` for gradient flow) and ``scaling`` (the units of losses and norms).
    """
    import networkx as nx

    p = result.problem
    G = nx.DiGraph(kind="transition", n=p.n, m=p.m, loss_convention=p.loss, interpolates=result.interpolates)
    G.graph.update(lr=rational_string(result.lr or 0), scaling=p.scaling)  # the step ("0": gradient flow) and the units
    for saddle in result.saddles:
        attrs = {
            "k": saddle.k,
            "fitted": saddle.fitted.tolist(),
            "neurons": sorted(saddle.escaped),
            "blocks": {str(j): b.tolist() for j, b in sorted(saddle.escaped.items())},
        }
        _set_rational(attrs, "loss", saddle.loss)
        _set_exact(attrs, "tau", saddle.tau)
        _set_exact(attrs, "sq_norm", saddle.sq_norm)
        attrs["critical_point"], attrs["critical_point_reason"] = critical_point(p, saddle)
        attrs["unstable"] = len(saddle.unstable)
        _set_exact(attrs, "min_eigenvalue", saddle.min_eigenvalue)
        G.add_node(saddle.k, **attrs)
    for jump, before in zip(result.jumps, result.saddles):
        attrs = {
            "k": jump.k,
            "neurons": list(jump.neurons),
            "samples": jump.samples.tolist(),
            "blocks": {str(j): b.tolist() for j, b in jump.blocks.items()},
        }
        _set_exact(attrs, "tau", jump.tau)
        _set_exact(attrs, "dtau", jump.tau - before.tau)
        _set_rational(attrs, "loss_drop", before.loss - jump.plateau_loss)
        attrs["escape_direction"] = [jump.escape_direction(j).to_dict() for j in jump.neurons]
        attrs.update(tie=jump.tie, tie_certified=jump.tie_certified, shared=jump.shared.tolist())
        G.add_edge(before.k, jump.k, **attrs)
    return G


# -- ensembles -----------------------------------------------------------------------------------
def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (approximate, as every confidence interval)."""
    return _wilson(successes, trials, _z(confidence))


def _z(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence``."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # at 0 or all successes the bound is exactly 0 or 1; rounding would leave it a hair inside
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == trials else centre + half)


def _base_problem(data) -> Problem:
    """Labels, norms and loss convention of ``data``: a Problem, or a problem's dict without signs/active.
    Standard units only: the runs share labels and norms, and mean-field units depend on each run's m."""
    scaling = data.scaling if isinstance(data, Problem) else data.get("scaling", "standard") if isinstance(data, dict) else "standard"
    if scaling != "standard":
        raise InputError("scaling", f"the ensemble graph is in standard units; give the data without scaling {scaling!r}")
    if isinstance(data, Problem):
        return Problem.from_arrays(
            data.y.num, data.y.den, data.q.num, data.q.den, [], np.zeros((0, (data.n + 7) // 8), np.uint8), loss=data.loss
        )
    if not isinstance(data, dict):
        raise InputError("data", "expected a Problem or a dict with labels (and optionally sq_norms, loss)")
    known = {"labels", "sq_norms", "loss", "signs", "active", "scaling"}
    for key in data:
        if key not in known:
            raise InputError(key, f"unknown field in the data (expected {', '.join(sorted(known))})")
    if "labels" not in data:
        raise InputError("labels", "missing")
    return Problem(data["labels"], [], [], sq_norms=data.get("sq_norms"), loss=data.get("loss", "half-mean"))


def read_data(path) -> Problem:
    """The labels and norms of a data file (a problem file without ``signs`` and ``active``, or with them)."""
    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path, "data")
        if isinstance(data, dict) and "signs" not in data:
            return _base_problem(data)
    return _base_problem(Problem.from_file(path))


def _with_pattern(base: Problem, signs: np.ndarray, bits: np.ndarray) -> Problem:
    """``base`` (validated once per ensemble) with signs and a pattern that are valid by construction:
    ±1 int8 signs, ``(m, ceil(n / 8))`` packed bits with none past sample ``n - 1``."""
    problem = copy.copy(base)
    problem.signs, problem.packed_active = signs, bits
    return problem


def sampled_initialisations(base: Problem, m: int, runs: int, seed: int):
    """``runs`` random initialisations as :func:`~limitproc.problem.generate` draws them (theory §7),
    each with weight 1: uniform signs and an i.i.d. Bernoulli(1/2) activation pattern."""
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        yield _with_pattern(base, *draw_initialisation(rng, base.n, m)), 1


def pattern_count(base: Problem, m: int) -> int:
    """How many initialisations :func:`enumerated_initialisations` visits.

    The limit depends only on each neuron's sign and aligned set (theory §3), and neurons are
    exchangeable, so it enumerates multisets of ``m`` outcomes ``(s_j, A_j)``, of which there are
    ``K = 2^{n_+} + 2^{n_-}``.
    """
    n_pos = int(np.count_nonzero(base.positive_labels))
    K = 2**n_pos + 2 ** (base.n - n_pos)
    return math.comb(K + m - 1, m)


def enumerated_initialisations(base: Problem, m: int):
    """Every initialisation up to neuron order, with its exact probability under theory §7.

    A neuron's sign is +1 or -1 with probability 1/2, and its aligned set is a uniform subset of
    the samples whose label has that sign (each ``<g_j, x_i> > 0`` with probability 1/2,
    independently). A multiset of outcomes has probability ``multinomial * prod p(outcome)``.
    """
    count = pattern_count(base, m)
    if count > MAX_PATTERNS:
        raise InputError("exact", f"the enumeration has {count} patterns (> 2^20); draw `runs` random ones instead")
    n = base.n
    outcomes = []
    for sign, side in ((1, base.positive_labels), (-1, ~base.positive_labels)):
        samples = np.flatnonzero(side)
        for mask in range(2**samples.size):
            row = np.zeros(n, dtype=bool)
            row[samples[[b for b in range(samples.size) if mask >> b & 1]]] = True
            outcomes.append((sign, row, Fraction(1, 2 ** (samples.size + 1))))
    for combo in combinations_with_replacement(range(len(outcomes)), m):
        weight = Fraction(math.factorial(m))
        for index, times in Counter(combo).items():
            weight *= outcomes[index][2] ** times / math.factorial(times)
        signs = np.array([outcomes[i][0] for i in combo], dtype=np.int8)
        active = np.array([outcomes[i][1] for i in combo], dtype=bool).reshape(m, n)
        yield _with_pattern(base, signs, np.packbits(active, axis=1)), weight


@dataclass
class _Tally:
    """What the runs through one node or edge have in common, and their entry times."""

    weight: Fraction | int = 0
    count: int = 0
    taus: list = field(default_factory=list)  # (tau, weight)
    sizes: set = field(default_factory=set)  # edges: how many neurons escaped together
    tie_weight: Fraction | int = 0
    shared: set = field(default_factory=set)

    def add(self, tau: float, weight) -> None:
        self.weight += weight
        self.count += 1
        self.taus.append((tau, weight))

    def tau_stats(self) -> dict:
        taus = sorted(self.taus)
        half, acc = sum(w for _, w in taus) / 2, 0
        for median, w in taus:  # noqa: B007 (the (lower) weighted median, read after the loop)
            acc += w
            if acc >= half:
                break
        return {"tau_min": taus[0][0], "tau_median": median, "tau_max": taus[-1][0]}


@dataclass(frozen=True)
class _Path:
    """What an ensemble keeps of one run: each saddle's (F as the bits of an int, loss, tau) and each jump's (tau, group size, shared)."""

    saddles: list
    jumps: list

    @classmethod
    def of(cls, result: Result) -> _Path:
        fitted = 0  # F grows by each jump's samples
        saddles = [(fitted, result.saddles[0].loss, _float(result.saddles[0].tau))]
        for saddle, jump in zip(result.saddles[1:], result.jumps):
            for i in jump.samples.tolist():
                fitted |= 1 << i
            saddles.append((fitted, saddle.loss, _float(saddle.tau)))
        # jump k enters saddle k: the same tau
        return cls(saddles, [(entered[2], len(j.neurons), j.shared.tolist()) for j, entered in zip(result.jumps, saddles[1:])])


def _repeats_expected(base: Problem, m: int, runs: int) -> bool:
    """Whether ``runs`` drawn initialisations are expected to repeat an aligned pattern at least once.

    A neuron's outcome is its aligned set: a non-empty subset of one sign's samples, with probability
    ``2^-(1 + n_s)``, or the empty set, reached under both signs with probability
    ``(2^-n_+ + 2^-n_-) / 2``; each is at most ``2^-min(n_+, n_-)``. So a pattern of ``m`` neurons has
    probability at most ``p = 2^-m min(n_+, n_-)``, and the expected number of repeated pairs,
    ``C(runs, 2)`` times the sum of squared pattern probabilities, is at most ``C(runs, 2) p``.
    (An enumeration never repeats.)
    """
    n_pos = int(np.count_nonzero(base.positive_labels))
    return math.comb(runs, 2) >= 2 ** (m * min(n_pos, base.n - n_pos))


def _float(value: ExactValue) -> float:
    return float(value.ball().mid())  # the working precision: its balls are already computed


def ensemble_graph(
    data,
    m: int,
    runs: int | None = None,
    seed: int = 0,
    exact: bool = False,
    confidence: float = CONFIDENCE,
    progress: bool = False,
    **solver,
) -> nx.DiGraph:
    """The saddles of many initialisations with fixed labels and norms, merged by fitted set ``F``.

    ``data`` is a :class:`Problem` (its signs and pattern are ignored) or a dict with ``labels`` and
    optional ``sq_norms`` and ``loss``. With ``exact=False``, ``runs`` initialisations are drawn with
    ``seed``; node and edge ``probability`` is the empirical frequency (an exact rational string)
    with a Wilson ``probability_ci`` at ``confidence``. With ``exact=True`` every initialisation is
    enumerated (:func:`enumerated_initialisations`) and ``probability`` is exact. Entry times
    ``tau_min``, ``tau_median``, ``tau_max`` are floats (approximate by design). ``solver`` goes to
    :func:`~limitproc.process.solve`.
    """
    import networkx as nx

    base = _base_problem(data)
    if m < 1:
        raise InputError("m", f"must be at least 1, got {m}")
    if exact:
        draws, total = enumerated_initialisations(base, m), pattern_count(base, m)
    else:
        if runs is None or runs < 1:
            raise InputError("runs", f"must be at least 1, got {runs}")
        if not 0 < confidence < 1:
            raise InputError("confidence", f"must be between 0 and 1, got {confidence}")
        draws, total = sampled_initialisations(base, m, runs, seed), runs
    nodes: dict[int, _Tally] = {}  # keyed by F as the bits of an int
    edges: dict[tuple[int, int], _Tally] = {}
    fitted_sets: dict[int, np.ndarray] = {}
    losses: dict[int, Fraction] = {}
    # the limit depends only on the aligned sets (theory §3): solve each once, when patterns can repeat
    # (kept for nothing, the paths would only add to memory and to the garbage collector's passes)
    paths: dict[bytes, _Path] | None = {} if not exact and _repeats_expected(base, m, runs or 0) else None
    context = LabelContext(base)  # what the runs share: the labels, norms and loss convention
    with progress_bar(total=total, desc="runs", enabled=progress) as bar:
        for problem, weight in draws:
            if paths is None:
                path = _Path.of(solve(problem, context=context, **solver))
            else:
                pattern = problem.aligned_bits().tobytes()
                path = paths.get(pattern) or paths.setdefault(pattern, _Path.of(solve(problem, context=context, **solver)))
            for key, loss, tau in path.saddles:
                if key not in nodes:
                    nodes[key], losses[key] = _Tally(), loss
                    fitted_sets[key] = np.array([i for i in range(base.n) if key >> i & 1], dtype=np.int64)
                nodes[key].add(tau, weight)
            for edge, (tau, size, shared) in zip(zip(path.saddles, path.saddles[1:]), path.jumps):
                tally = edges.get((edge[0][0], edge[1][0]))
                if tally is None:  # (not setdefault: a _Tally per run would be built and dropped)
                    tally = edges[edge[0][0], edge[1][0]] = _Tally()
                tally.add(tau, weight)
                tally.sizes.add(size)
                tally.tie_weight += weight if size > 1 else 0
                tally.shared.update(shared)
            bar.update(1)
    total_weight = sum(w for _, w in nodes[next(iter(nodes))].taus)  # every run passes the origin
    order = sorted(nodes, key=lambda k: (fitted_sets[k].size, fitted_sets[k].tolist()))
    ids = {key: index for index, key in enumerate(order)}
    G = nx.DiGraph(
        kind="ensemble",
        n=base.n,
        m=m,
        loss_convention=base.loss,
        exact=exact,
        runs=None if exact else runs,
        seed=None if exact else seed,
        confidence=None if exact else confidence,
        lr=rational_string(parse_rational(solver.get("lr") or 0, "lr")),  # as in transition_graph
        scaling="standard",
    )

    z = None if exact else _z(confidence)  # (an enumeration has no interval: its confidence is not read)

    def probability(tally: _Tally) -> dict:
        p = Fraction(tally.weight) / total_weight
        ci = [float(p), float(p)] if z is None else list(_wilson(tally.count, total_weight, z))
        return {"probability": rational_string(p), "probability_decimal": float(p), "probability_ci": ci, **tally.tau_stats()}

    for key in order:
        attrs = {"fitted": fitted_sets[key].tolist(), **probability(nodes[key])}
        _set_rational(attrs, "loss", losses[key])
        G.add_node(ids[key], **attrs)
    for (u, v), tally in sorted(edges.items(), key=lambda item: (ids[item[0][0]], ids[item[0][1]])):
        attrs = {
            "samples": sorted(set(fitted_sets[v].tolist()) - set(fitted_sets[u].tolist())),
            "group_sizes": sorted(tally.sizes),
            "tie": bool(tally.tie_weight),
            "tie_probability": rational_string(Fraction(tally.tie_weight) / total_weight),
            "shared": sorted(tally.shared),
            **probability(tally),
        }
        _set_rational(attrs, "loss_drop", losses[u] - losses[v])
        G.add_edge(ids[u], ids[v], **attrs)
    return G


# -- labels (DOT files and pictures) --------------------------------------------------------------
def node_label(G: nx.DiGraph, u) -> str:
    a = G.nodes[u]
    head = f"p={a['probability_decimal']:.3g}" if "probability" in a else f"saddle {u}"
    return f"{head}\n|F|={len(a['fitted'])}  L={a['loss']}"


def edge_label(G: nx.DiGraph, u, v) -> str:
    """``neuron(s): block size`` for one run; ``block size, probability`` in an ensemble."""
    a = G.edges[u, v]
    if "probability" in a:
        return f"|B|={len(a['samples'])} p={a['probability_decimal']:.2f}"
    tie = " tie" if a["tie"] else ""
    return f"n{'+'.join(map(str, a['neurons']))}: {len(a['samples'])}{tie}"
