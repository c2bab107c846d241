"""The saddle-to-saddle jump process of the small-initialisation limit (theory §4-§6), exactly.

Each not-escaped neuron ``j`` has a rate ``mu_j = 2c sqrt(R_j)`` with ``R_j = sum_{A_j \\ F} y_i^2 q_i``
(``2c = 1/n`` by default) and an exponent ``S_j`` growing at that rate. Between changes of its rate
a neuron's exponent is linear in ``tau``, so the engine keeps, per neuron, the exponent at its last
rate change and its escape time ``T_j = tau_c + (1 - S_j(tau_c)) / mu_j``. The next jump is the
certified minimum of the ``T_j``; a jump only changes the neurons whose remaining aligned samples
it fits. All values are nodes of one exact :class:`~limitproc.exact.Program`.

Gradient descent with a step ``eta`` (theory §11) grows a small neuron at ``rho_j = log(1 + eta mu_j) / eta``
instead of ``mu_j``: the exponents and escape times use ``rho``, everything else is unchanged.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .errors import InputError
from .exact import (
    DEFAULT_MAX_PRECISION,
    DEFAULT_PRECISION,
    DEFAULT_TERM_BUDGET,
    ExactValue,
    Precision,
    Program,
    parse_rational,
    rational_string,
)
from .io.results import result_dict, result_json
from .problem import Problem
from .saddles import EscapeDirection, Saddle, _Deferred, _Lazy

__all__ = ["VERTEX_CAP", "Jump", "LabelContext", "Result", "parse_step", "solve"]

#: the most split vertices (each contested sample given whole to one class) enumerated for the upper
#: end of ``sq_norm_interval``; past it the upper end is the bound of each class fitting its whole block
VERTEX_CAP = 4096
#: fixed-point iterations approximating the minimising split (it only tightens the certified lower end)
DUAL_ITERATIONS = 50
#: words of packed bits gathered at once when summing weights over aligned sets (bounds temporaries)
_CHUNK_WORDS = 1 << 18
#: weighted sums unpack this many bits at once, into one reused float64 buffer (1 MiB: it stays in cache)
_CHUNK_BITS = 1 << 17
#: limbs of the rate weights: a chunk sums at most _CHUNK_BITS limbs, below 2^(24 + 17) < 2^53
_LIMB_BITS = 24
_LIMB_MASK = (1 << _LIMB_BITS) - 1
#: samples in the layouts of tied classes whose norm intervals a LabelContext keeps (emptied when full)
_INTERVAL_CACHE = 1 << 20


@dataclass(frozen=True)
class Jump:
    """Jump ``k`` (from 1): at time ``tau`` the neuron(s) escape and fit ``samples`` (theory §4)."""

    k: int
    tau: ExactValue
    neurons: tuple[int, ...]
    blocks: dict[int, np.ndarray]  # each escaping neuron's block A_j \ F
    samples: np.ndarray  # the union of the blocks
    shared: np.ndarray  # samples in two or more blocks (only in a tie)
    classes: tuple[tuple[int, ...], ...]  # the escaping neurons grouped by identical blocks (theory §6)
    contested: np.ndarray  # samples in the blocks of two or more classes: their split changes N
    plateau_loss: Fraction  # the loss of the saddle entered
    rates: dict[int, ExactValue]  # mu_j of each escaping neuron just before it escapes
    tie_certificate: str | None  # "structure", "canonical", or None: a tie not certified
    _radicands: dict[int, Fraction] = field(repr=False)
    _problem: Problem = field(repr=False)

    @property
    def tie(self) -> bool:
        return len(self.neurons) > 1

    @property
    def sq_norm_determined(self) -> bool:
        """True unless classes with different blocks share a sample (a class acts as one neuron, theory §6)."""
        return not self.contested.size

    @property
    def tie_certified(self) -> bool | None:
        return (self.tie_certificate is not None) if self.tie else None

    def escape_direction(self, neuron: int | None = None) -> EscapeDirection:
        neuron = self.neurons[0] if neuron is None else neuron
        block = self.blocks[neuron]
        y, q = self._problem.y, self._problem.q
        R = self._radicands[neuron]
        radicands = tuple(Fraction(int(y.num[i]) ** 2 * int(q.num[i]), int(y.den[i]) ** 2 * int(q.den[i])) / R for i in block)
        return EscapeDirection(neuron, int(self._problem.signs[neuron]), block, radicands)

    def _repr_html_(self) -> str:
        from .display import jump_html

        return jump_html(self)

    def _repr_latex_(self) -> str:
        from .display import jump_latex

        return jump_latex(self)


@dataclass
class Result:
    """The limit process of a problem: its jumps and saddles, the final network and its norms."""

    problem: Problem
    program: Program
    jumps: list[Jump]
    saddles: list[Saddle]
    never_escaped: list[int]
    uncovered: np.ndarray
    # the norms are built on first read (given as a _Deferred): ensembles never read them
    sq_norm: _Lazy[ExactValue | None] = _Lazy()
    min_sq_norm: _Lazy[ExactValue] = _Lazy()
    # (lo, hi) containing N when it is undetermined (theory §6), else None; ``sq_norm_hi_attained``
    # says whether ``hi`` is the maximum over the split vertices or only an upper bound (too many vertices)
    sq_norm_interval: _Lazy[tuple[ExactValue, ExactValue] | None] = _Lazy()
    sq_norm_hi_attained: _Lazy[bool | None] = _Lazy()
    sq_norm_reason: str | None = None  # why ``sq_norm`` is None
    lr: Fraction | None = None  # the step of gradient descent (theory §11); None for gradient flow

    @property
    def interpolates(self) -> bool:
        return self.uncovered.size == 0

    @property
    def final_loss(self) -> Fraction:
        return self.saddles[-1].loss

    @property
    def final(self) -> Saddle:
        return self.saddles[-1]

    def norm_exact(self, value: ExactValue) -> str | None:
        """Norms are sums of at most m + 1 square roots: their canonical form is always given (theory §8)."""
        return value.exact(max(self.program.term_budget, self.problem.m + 2))

    def to_dict(self, digits: int = 30, escape_directions: bool = False) -> dict:
        """The public JSON contract (field names are stable): :func:`limitproc.io.results.result_dict`."""
        return result_dict(self, digits, escape_directions)

    def to_json(self, digits: int = 30, escape_directions: bool = False, indent: int | None = None) -> str:
        return result_json(self, digits, escape_directions, indent)

    def to_frame(self):
        """One row per jump as a pandas DataFrame (exact strings with float twins; needs pandas)."""
        from .display import jumps_frame

        return jumps_frame(self)

    def saddles_frame(self):
        """One row per saddle as a pandas DataFrame (needs pandas)."""
        from .display import saddles_frame

        return saddles_frame(self)

    def __repr__(self) -> str:
        from .display import result_repr

        return result_repr(self)

    def _repr_html_(self) -> str:
        from .display import result_html

        return result_html(self)

    def _repr_latex_(self) -> str:
        from .display import result_latex

        return result_latex(self)


@dataclass(frozen=True)
class _FinalNorms:
    """The norm fields of a :class:`Result`."""

    sq_norm: ExactValue | None
    min_sq_norm: ExactValue
    sq_norm_interval: tuple[ExactValue, ExactValue] | None
    sq_norm_hi_attained: bool | None


class _Norms:
    """``N = Σ 2 ||y_B||_q`` over the classes of each jump (theory §6), as nodes built on first use."""

    def __init__(self, engine: _Engine):
        self.engine = engine
        self.jumps: list[tuple[list[list[np.ndarray]], np.ndarray]] = []  # per jump: its components, contested samples
        # after jump k: the exactly known part of N, the interval (lo, hi) of the undetermined part
        # once classes share samples, and whether hi is attained
        self._after: list[tuple[int, int | None, int | None, bool]] = [(engine.zero, None, None, True)]
        self._final: _FinalNorms | None = None

    def after(self, k: int) -> tuple[int, int | None, int | None, bool]:
        engine, prog = self.engine, self.engine.program
        while len(self._after) <= k:
            norm_node, lo_node, hi_node, hi_attained = self._after[-1]
            components, contested = self.jumps[len(self._after) - 1]
            for component in components:
                if len(component) == 1:  # a class acts as one neuron: 2 ||y_B||_q whatever its split
                    Q = engine._block_norm(component[0])
                    norm_node = prog.add(norm_node, prog.sqrt(engine.context.norm_coef * Q))
                    continue
                lo, hi, attained = engine._interval(component, contested)
                lo_node = lo if lo_node is None else prog.add(lo_node, lo)
                hi_node = hi if hi_node is None else prog.add(hi_node, hi)
                hi_attained &= attained
            self._after.append((norm_node, lo_node, hi_node, hi_attained))
        return self._after[k]

    def saddle(self, k: int) -> ExactValue | None:
        """``N`` at saddle ``k`` (None once classes with different blocks have shared samples)."""
        norm_node, lo_node, _, _ = self.after(k)
        return self.engine.program.value(norm_node) if lo_node is None else None

    def final(self, name: str):
        """The field ``name`` of the final norms (all built on the first call)."""
        if self._final is None:
            self._final = self._build_final()
        return getattr(self._final, name)

    def _build_final(self) -> _FinalNorms:
        prog = self.engine.program
        norm_node, lo_node, hi_node, hi_attained = self.after(len(self.jumps))
        min_sq_norm = prog.value(_root_sum(prog, self.engine.context.min_sq_norm_radicands))
        if lo_node is None or hi_node is None:
            return _FinalNorms(prog.value(norm_node), min_sq_norm, None, None)
        interval = (prog.value(prog.add(norm_node, lo_node)), prog.value(prog.add(norm_node, hi_node)))
        return _FinalNorms(None, min_sq_norm, interval, hi_attained)


@dataclass
class _Neuron:
    """What the run reads of one neuron: its radicand and the nodes of its rate and escape time."""

    R: int  # R_j times the common denominator of the rate weights
    mu: int
    T: int


class _Neurons:
    """The not-yet-escaped neurons in numpy arrays, grouped by rate history (theory §8, ties by structure).

    Neurons with the same history (initial radicand, then the same new radicand at the same jumps) have
    the same exponent and escape time, so every exact node is per history, built only when needed: for
    the candidates of the next jump, the escaping neurons and saddles' rates. Each history also carries
    a float64 interval of its escape time, rounded outwards at every operation, that encloses the exact
    value: the screen of :meth:`_Engine._earliest` drops a history only when its interval lies wholly
    above another's, so floats never decide an order on their own. The intervals are the columns of
    ``bounds`` (rows :data:`_RHO` and :data:`_T`, each a lower row and an upper row), so each interval
    operation is one numpy call for both ends.
    """

    def __init__(self, engine: _Engine, initial):
        self.engine = engine
        radicands = np.asarray(initial, dtype=engine.context.rate_w.dtype)
        m = len(radicands)
        self.k = 0  # jumps made
        self.taus = [engine.zero]  # tau_k nodes, k = 0, 1, ...
        self.tau_bounds = np.zeros((2, 1))  # the interval of the latest tau_k, a column
        self._nodes: dict[int, tuple[int, int, int, int]] = {}  # history -> (mu, rho, S, T)
        self._rate_nodes: dict[int, tuple[int, int]] = {}  # R -> (mu, rho)
        self._steps: dict[tuple[int, int], int] = {}  # (i, k) -> tau_k - tau_i
        # per neuron: its latest history (-1 if never live) and the jump it left at (escaped or fully fitted)
        self.history = np.full(m, -1, dtype=np.int64)
        positive = radicands > 0
        self.left = np.where(positive, _LIVE, 0)
        self.ids = np.flatnonzero(positive)
        values, self.history[self.ids] = _groups(radicands[self.ids])
        self.parent = np.full(len(values), -1, dtype=np.int64)
        self.born = np.zeros(len(values), dtype=np.int64)
        self.R = values
        rho = self._rate_bounds(values)
        # T = 1 / rho, the whole exponent to grow (a rate not certified positive: T up to inf)
        with np.errstate(divide="ignore"):
            self.bounds = np.concatenate([rho, _out(1.0 / np.maximum(rho[::-1], 0.0))])
        self._popped = False

    def __len__(self) -> int:
        self._compact()
        return len(self.ids)

    def indices(self) -> np.ndarray:
        """The live neurons, ascending."""
        self._compact()
        return self.ids

    def _compact(self) -> None:
        if self._popped:
            self.ids = self.ids[self.left[self.ids] == _LIVE]
            self._popped = False

    def __getitem__(self, j: int) -> _Neuron:
        h = int(self.history[j])
        mu, _, _, T = self.nodes(h)
        return _Neuron(int(self.R[h]), mu, T)

    def pop(self, j: int) -> _Neuron:
        """Neuron ``j`` escapes at the jump being made."""
        state = self[j]
        self.left[j] = self.k + 1
        self._popped = True
        return state

    def rates(self, R: int) -> tuple[int, int]:
        R = int(R)
        nodes = self._rate_nodes.get(R)
        if nodes is None:
            nodes = self._rate_nodes[R] = self.engine._rates(R)
        return nodes

    def nodes(self, h: int) -> tuple[int, int, int, int]:
        """The exact ``(mu, rho, S, T)`` of history ``h``: the same recursion as spec §4 per neuron."""
        chain, top = [], h
        while top >= 0 and top not in self._nodes:
            chain.append(top)
            top = int(self.parent[top])
        prog, one = self.engine.program, self.engine.one
        for g in reversed(chain):
            mu, rho = self.rates(self.R[g])
            p = int(self.parent[g])
            if p < 0:
                S, T = self.engine.zero, prog.div(one, rho)
            else:
                _, rho_p, S_p, _ = self._nodes[p]
                S = prog.add(S_p, prog.mul(rho_p, self._step(int(self.born[p]), int(self.born[g]))))
                T = prog.add(self.taus[self.born[g]], prog.div(prog.sub(one, S), rho))
            self._nodes[g] = (mu, rho, S, T)
        return self._nodes[h]

    def _step(self, i: int, k: int) -> int:
        """The node of ``tau_k - tau_i``, one for all histories (their forms are computed once)."""
        node = self._steps.get((i, k))
        if node is None:
            node = self._steps[i, k] = self.engine.program.sub(self.taus[k], self.taus[i])
        return node

    def _radicands_at(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The neurons live at saddle ``k`` and their radicands then (each history's ancestor born by jump ``k``)."""
        js = np.flatnonzero((self.left > k) & (self.history >= 0))
        h = self.history[js]
        while True:
            late = np.flatnonzero(self.born[h] > k)
            if not late.size:
                break
            h[late] = self.parent[h[late]]
        return js, self.R[h]

    def rates_at(self, k: int) -> dict[int, ExactValue]:
        """``{j: mu_j}`` over the neurons live at saddle ``k``."""
        js, R = self._radicands_at(k)
        prog = self.engine.program
        return {j: prog.value(self.rates(r)[0]) for j, r in zip(js.tolist(), R.tolist())}

    def min_eigenvalue_at(self, k: int) -> ExactValue | None:
        """``-mu`` of the largest radicand live at saddle ``k`` (None when none is live)."""
        R = self._radicands_at(k)[1]
        if not R.size:
            return None
        prog = self.engine.program
        return prog.value(prog.sub(self.engine.zero, self.rates(R.max())[0]))

    def _rate_bounds(self, R: np.ndarray) -> np.ndarray:
        """Float intervals of the growth rates ``rho`` of the radicands ``R`` (lower row, upper row)."""
        engine = self.engine
        if engine.lr is None:  # mu = sqrt(coef R): IEEE operations, each widened by one ulp
            return _out(np.sqrt(np.maximum(_out(engine.context.rate_coef_bounds * _int_bounds(R)), 0.0)))
        # rho = log(1 + eta mu) / eta: from the balls of its nodes, one per distinct radicand
        prog, bounds = engine.program, {}
        for value in set(R.tolist()):
            bounds[value] = _ball_floats(prog.ball(self.rates(value)[1], engine.precision))
        return np.array([bounds[v] for v in R.tolist()], dtype=np.float64).reshape(-1, 2).T

    def advance(self, idx: np.ndarray, lost, tau: int, k: int) -> None:
        """Jump ``k`` at ``tau`` fitted ``lost[r]`` (scaled) of live neuron ``idx[r]``'s radicand: each
        neuron with a loss takes the history (its history, k, new R); one with nothing left never escapes."""
        self.k = k
        self.taus.append(tau)
        self.tau_bounds = np.array(_ball_floats(self.engine.program.ball(tau, self.engine.precision)))[:, None]
        if not any(lost):  # (a list of ints: stops at the first loss)
            return
        top = max(lost)
        lost = np.asarray(lost, dtype=self.R.dtype)
        changed = lost != 0
        js, lost = idx[changed], lost[changed]
        if lost.dtype != object and top < 2**62 // len(self.R):
            losses, code, width = None, lost, top + 1  # a loss is its own code: the keys below fit int64
        else:
            losses, code = _groups(lost)
            width = len(losses)
        keys, group = _groups(self.history[js] * width + code)  # one group per (history, loss)
        parent, loss = np.divmod(keys, width)
        R = self.R[parent] - (loss if losses is None else losses[loss])
        alive = R != 0
        if alive.all():  # (the common case: no neuron's aligned samples are all fitted)
            self.history[js] = group + len(self.R)
        else:
            kept = alive[group]
            self.left[js[~kept]] = k
            self._popped = True
            parent, R = parent[alive], R[alive]
            self.history[js[kept]] = (alive.cumsum() - 1 + len(self.R))[group[kept]]
        rho = self._rate_bounds(R)
        before = self.bounds[:, parent]
        T = _escape_bounds(before[_T], before[_RHO], rho, self.tau_bounds)
        self.bounds = np.concatenate([self.bounds, np.concatenate([rho, T])], axis=1)
        self.parent = np.concatenate([self.parent, parent])
        self.born = np.concatenate([self.born, np.full(len(parent), k, dtype=np.int64)])
        self.R = np.concatenate([self.R, R])


#: ``_Neurons.left`` of a neuron that has not left
_LIVE = np.iinfo(np.int64).max
#: arrays up to this size are grouped in Python (small networks: ensembles)
_FEW = 32


def _groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct, inverse)`` as ``np.unique`` gives them; by counting, without a sort, when the
    values are small non-negative integers, and with a dict when they are few (numpy's calls cost more)."""
    if values.size <= _FEW:
        listed = values.tolist()
        ordered = sorted(set(listed))
        rank = {x: r for r, x in enumerate(ordered)}
        return np.array(ordered, dtype=values.dtype), np.array([rank[x] for x in listed], dtype=np.int64)
    if values.dtype != object and 0 <= values.min() and values.max() < 4 * values.size:
        present = np.bincount(values) > 0
        return np.flatnonzero(present), (np.cumsum(present) - 1)[values]
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.reshape(-1)


#: rows of ``_Neurons.bounds``: intervals (lower row, upper row) of each history's growth rate and escape time
_RHO, _T = slice(0, 2), slice(2, 4)
#: nextafter towards these rounds the lower row of an interval down and the upper row up
_OUTWARDS = np.array([[-np.inf], [np.inf]])


def _out(x: np.ndarray) -> np.ndarray:
    """An interval (lower row, upper row) widened by one ulp each way."""
    return np.nextafter(x, _OUTWARDS)


def _ball_floats(x) -> tuple[float, float]:
    """Floats enclosing a ball: its ends, converted (within one ulp, or to the infinity past the
    largest float) and widened by one ulp each way."""
    return math.nextafter(float(x.lower()), -math.inf), math.nextafter(float(x.upper()), math.inf)


def _fraction_bounds(q: Fraction) -> tuple[float, float]:
    """Floats enclosing a rational: its correctly rounded float widened by one ulp each way."""
    try:
        f = float(q)
    except OverflowError:
        return (sys.float_info.max, math.inf) if q > 0 else (-math.inf, -sys.float_info.max)
    return math.nextafter(f, -math.inf), math.nextafter(f, math.inf)


def _int_bounds(R: np.ndarray) -> np.ndarray:
    """Floats enclosing non-negative integers (int64, or Python ints in an object array): lower row,
    upper row, each the rounded value widened by one ulp."""
    if R.dtype == object:  # int -> float rounds correctly; past 2^1023 only bounds are known
        pairs = [(float(x), float(x)) if x.bit_length() <= 1023 else (2.0**1023, math.inf) for x in R.tolist()]
        return _out(np.array(pairs, dtype=np.float64).reshape(-1, 2).T)
    return _out(R.astype(np.float64))


def _escape_bounds(T_p: np.ndarray, rho_p: np.ndarray, rho: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Intervals (lower row, upper row) of the escape time ``T = tau + rho_p (T_p - tau) / rho`` of a
    history born at ``tau`` (a column) from a parent with escape time ``T_p`` and rate ``rho_p``: the
    parent's exponent at ``tau`` is ``1 - rho_p (T_p - tau)``. Each operation is rounded outwards; the
    exact factors are non-negative (``T_p >= tau``: the parent had not escaped), so their lower ends
    are clamped at 0, and an end that is lost (a rate not certified positive, an overflow) becomes infinite."""
    with np.errstate(all="ignore"):
        left = np.maximum(_out(T_p - tau[::-1]), 0.0)
        T = _out(tau + _out(_out(rho_p * left) / np.maximum(rho[::-1], 0.0)))
    return np.where(T == T, T, _OUTWARDS)  # (NaN from 0 * inf or 0 / 0)


def solve(
    problem: Problem,
    *,
    term_budget: int = DEFAULT_TERM_BUDGET,
    precision: int = DEFAULT_PRECISION,
    max_precision: int = DEFAULT_MAX_PRECISION,
    progress: bool = False,
    lr=None,
    context: LabelContext | None = None,
) -> Result:
    """Run the jump process of theory §4 exactly.

    ``lr`` is the step ``eta`` of gradient descent (an exact rational: int, Fraction or a string
    like ``"0.3"``); None or 0 is gradient flow. With a step, rates become
    ``rho = log(1 + eta mu) / eta`` (theory §11) and times are exact expressions with logarithms.
    A step with ``eta mu_j >= 2`` for a neuron with a rate makes descent unstable near the origin,
    so the limit does not describe it: that raises :class:`~limitproc.errors.InputError` on ``lr``.

    ``term_budget`` caps the canonical radical forms (values over it are still exact as programs
    and have certified decimals); ``precision`` is the working precision of the balls in bits, and
    ``max_precision`` the precision at which a near-tie is handed to the canonical forms.
    ``context`` (a :class:`LabelContext` of the same labels, norms and conventions) saves recomputing
    what depends on them alone when many initialisations share the data.
    """
    if context is None:
        context = LabelContext(problem)
    else:
        context.check(problem)
    return _Engine(problem, context, term_budget, precision, max_precision, parse_step(lr)).run(progress)


class LabelContext:
    """What the jump process needs from the labels, norms, loss convention and scaling alone (not
    from signs or the activation pattern): exact integer sample weights over common denominators.
    Build it once to :func:`solve` many initialisations of the same data (an ensemble)."""

    def __init__(self, problem: Problem):
        self.y, self.q, self.loss, self.unit_factor = problem.y, problem.q, problem.loss, problem.unit_factor
        y2 = problem.y * problem.y
        self.rate_w, self.rate_den = (y2 * problem.q).scaled_integers()
        self.loss_w, self.loss_den = y2.scaled_integers()
        self.norm_w, self.norm_den = (y2 * problem.q.reciprocal()).scaled_integers()
        # squared norms N = 2 sum sqrt(Q_j) = sum sqrt(4 Q_j), times the user's unit factor (theory, conventions)
        self.norm_coef = 4 * problem.unit_factor**2
        first = self.rate_w[0]
        self.uniform = int(first) if np.all(self.rate_w == first) else None
        # non-uniform rate weights (non-negative integers) laid out like the words of the aligned sets
        # (zero past sample n - 1), split into limbs of LIMB_BITS bits held as floats: a 0/1 matrix
        # times a limb sums integers below 2^53, so BLAS computes it exactly
        self.rate_limbs: list[np.ndarray] | None = None
        if self.uniform is None:
            padded = np.zeros(-(-problem.n // 64) * 64, dtype=self.rate_w.dtype)
            padded[: problem.n] = self.rate_w
            top = int(padded.max())
            self.rate_limbs = [
                ((padded >> shift) & _LIMB_MASK).astype(np.float64).reshape(-1, 64)
                for shift in range(0, max(top.bit_length(), 1), _LIMB_BITS)
            ]
        # mu_j^2 = (2c)^2 R_j
        self.rate_coef = (2 * problem.loss_factor) ** 2 / self.rate_den
        self.rate_coef_bounds = np.array(_fraction_bounds(self.rate_coef))[:, None]  # a column (lower, upper)
        self.loss_scale = problem.loss_factor * problem.unit_factor  # the loss is this times sum r_i^2
        # the radicands of min N = 2 ||y_+||_q + 2 ||y_-||_q (theory §8)
        self.min_sq_norm_radicands = tuple(
            self.norm_coef * Fraction(_total(self.norm_w, side), self.norm_den)
            for side in (problem.positive_labels, ~problem.positive_labels)
        )
        # (layout of tied classes, precision) -> radicands of the ends of the norm interval, and whether hi is attained
        self._intervals: dict[tuple, tuple[tuple[Fraction, ...], tuple[Fraction, ...], bool]] = {}
        self._interval_samples = 0  # the size of the layouts kept

    def check(self, problem: Problem) -> None:
        same = (
            problem.loss == self.loss
            and problem.unit_factor == self.unit_factor
            and all(
                a is b or (a.shape == b.shape and np.array_equal(a, b))
                for a, b in (
                    (problem.y.num, self.y.num),
                    (problem.y.den, self.y.den),
                    (problem.q.num, self.q.num),
                    (problem.q.den, self.q.den),
                )
            )
        )
        if not same:
            raise InputError("context", "was built for other labels, norms, loss convention or scaling than the problem's")


def _root_sum(prog: Program, radicands) -> int:
    """The node of ``Σ sqrt(r)`` over ``radicands``, added left to right."""
    return prog.sum(prog.sqrt(r) for r in radicands)


def parse_step(lr) -> Fraction | None:
    """The step ``η`` of gradient descent as :func:`solve` reads it: an exact rational, ``None`` for
    the flow (no step, or 0); a negative step is refused."""
    if lr is None:
        return None
    eta = parse_rational(lr, "lr")
    if eta < 0:
        raise InputError("lr", f"must be positive (or 0 for gradient flow), got {rational_string(eta)}")
    return eta or None


def _components(classes: list[tuple[np.ndarray, tuple[int, ...]]], contested: np.ndarray) -> list[list[np.ndarray]]:
    """The blocks of the classes, grouped into components linked by contested samples."""
    if not contested.size:  # the common case: each class alone (and no pass over its block)
        return [[block] for block, _ in classes]
    parent = list(range(len(classes)))

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    owner: dict[int, int] = {}
    disputed = set(contested.tolist())
    for c, (block, _) in enumerate(classes):
        for i in (i for i in block.tolist() if i in disputed):  # in increasing order, as blocks are sorted
            if i in owner:
                parent[root(c)] = root(owner[i])
            owner[i] = c
    groups: dict[int, list[np.ndarray]] = {}
    for c, (block, _) in enumerate(classes):
        groups.setdefault(root(c), []).append(block)
    return list(groups.values())


#: the set bits of each byte value, as offsets from its first sample (numpy.packbits order: high bit first)
_BITS = [tuple(b for b in range(8) if byte >> (7 - b) & 1) for byte in range(256)]


def _indices(words: np.ndarray) -> np.ndarray:
    """The sorted sample indices of a row of packed uint64 words (a sparse row unpacks only its nonzero words)."""
    if words.size <= 2:  # small problems (ensembles): a byte table beats the calls below
        return np.array([8 * k + b for k, byte in enumerate(words.tobytes()) if byte for b in _BITS[byte]], dtype=np.int64)
    nonzero = np.flatnonzero(words)
    if 4 * nonzero.size > words.size:  # (nonzero of booleans is several times faster than of uint8)
        return np.flatnonzero(np.unpackbits(words.view(np.uint8)).view(bool))
    bits = np.flatnonzero(np.unpackbits(words[nonzero].view(np.uint8)).view(bool))
    return nonzero[bits >> 6] * 64 + (bits & 63)


@functools.lru_cache(maxsize=1 << 12)
def _ratio(num: int, den: int) -> Fraction:
    """``num / den`` (block norms, radicands and losses repeat across runs of an ensemble: cached)."""
    return Fraction(num, den)


@functools.lru_cache(maxsize=1 << 12)
def _limited(share: float) -> Fraction:
    """A float share as a nearby small rational (shares repeat across runs of an ensemble: cached)."""
    return Fraction(share).limit_denominator(10**6)


def _total(weights: np.ndarray, indices: np.ndarray) -> int:
    """``Σ weights[indices]`` (indices or a boolean mask); constant weights (a broadcast) need only a count."""
    if weights.strides == (0,):
        return int(weights[0]) * int(np.count_nonzero(indices) if indices.dtype == bool else indices.size) if weights.size else 0
    return int(weights[indices].sum())


def _all_samples(n: int) -> np.ndarray:
    """Samples ``0..n-1`` as packed uint64 words (zero past ``n - 1``)."""
    out = np.zeros(-(-n // 64) * 8, dtype=np.uint8)
    out[: n // 8] = 0xFF
    if n % 8:
        out[n // 8] = (0xFF << (8 - n % 8)) & 0xFF
    return out.view(np.uint64)


def _union(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The union of rows of packed words, and the indices of the samples in two or more of them."""
    if len(rows) == 1:
        return rows[0], np.zeros(0, dtype=np.int64)
    seen, twice = rows[0].copy(), np.zeros_like(rows[0])
    for row in rows[1:]:
        twice |= seen & row
        seen |= row
    return seen, _indices(twice)


def _masked_sums(context: LabelContext, aligned: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> list[int]:
    """``Σ_{i ∈ A_j ∩ mask} y_i² q_i`` (times the rate denominator) for each ``j`` in ``rows``, exactly.

    ``aligned`` and ``mask`` are packed uint64 words, and uniform weights need only popcounts
    (nothing ``m x n`` is unpacked). A dense mask is read in slices of all rows into one reused
    buffer (no gathers, no fresh pages), a sparse one only at its nonzero words. Other weights
    unpack a chunk of bits at a time and multiply it by each limb of the weights."""
    if context.uniform is not None and rows.size * mask.size <= _FEW:  # small (ensembles): numpy's calls cost more than the words
        return [sum(row) * context.uniform for row in np.bitwise_count(aligned[rows] & mask).tolist()]
    cols = mask.nonzero()[0]
    limbs = context.rate_limbs
    dense = 4 * cols.size > mask.size
    count = aligned.shape[0] if dense else rows.size
    step = max(1, (_CHUNK_WORDS if limbs is None else _CHUNK_BITS // 64) // max(count, 1))
    total = np.zeros((1 if limbs is None else len(limbs), count), dtype=np.int64)
    step = min(step, max(1, mask.size if dense else cols.size))
    buffer = np.empty((count, step), dtype=np.uint64)
    counts = np.empty((count, step), dtype=np.uint8)
    floats = None if limbs is None else np.empty((count, 64 * step))
    for start in range(0, mask.size if dense else cols.size, step):
        chunk: slice | np.ndarray
        if dense:
            chunk = slice(start, min(mask.size, start + step))
            words = np.bitwise_and(aligned[:, chunk], mask[chunk], out=buffer[:, : chunk.stop - start])
        else:
            chunk = cols[start : start + step]
            words = np.bitwise_and(aligned[rows[:, None], chunk], mask[chunk], out=buffer[:, : chunk.size])
        if limbs is None or floats is None:
            total[0] += np.bitwise_count(words, out=counts[:, : words.shape[1]]).sum(axis=1, dtype=np.int64)
        else:
            bits = floats[:, : 64 * words.shape[1]]
            np.copyto(bits, np.unpackbits(words.view(np.uint8), axis=1))
            for limb, weights in zip(total, limbs):
                limb += (bits @ weights[chunk].reshape(-1)).astype(np.int64)  # exact: integers below 2^53
    if dense:
        total = total[:, rows]
    if context.uniform is not None:
        return [int(c) * context.uniform for c in total[0].tolist()]
    sums = [0] * total.shape[1]
    for k, parts in enumerate(total.tolist()):
        sums = [x + (c << (_LIMB_BITS * k)) for x, c in zip(sums, parts)]
    return sums


class _Engine:
    def __init__(self, problem: Problem, context: LabelContext, term_budget: int, precision: int, max_precision: int, lr: Fraction | None):
        self.problem, self.context, self.lr = problem, context, lr
        self.precision, self.max_precision = precision, max_precision
        self.program = Program(precision=Precision(term_budget, precision, max_precision))
        self.zero, self.one = self.program.const(0), self.program.const(1)

    def _rates(self, R: int) -> tuple[int, int]:
        """The nodes of ``mu`` and of the growth rate ``rho`` for the radicand ``R`` (theory §4, §11)."""
        prog, coef = self.program, self.context.rate_coef
        mu = prog.sqrt(_ratio(coef.numerator * R, coef.denominator))  # (coef R)
        if self.lr is None:
            return mu, mu
        growth = prog.log(prog.add(prog.const(1), prog.mul(prog.const(self.lr), mu)))
        return mu, prog.mul(prog.const(1 / self.lr), growth)

    def _check_stable(self, radicands) -> None:
        """Rates only fall as samples are fitted, so the initial ones decide stability: eta mu_j < 2."""
        if self.lr is None:
            return
        coef = self.context.rate_coef
        R = np.asarray(radicands, dtype=self.context.rate_w.dtype)
        least = math.ceil(4 / (self.lr**2 * coef))  # eta mu >= 2 iff R >= 4 / (eta^2 coef), R an integer
        top = int(R.max(initial=0))
        if top >= least:
            import mpmath  # (mpf: a step past float64's range still prints)

            unstable = np.flatnonzero(R >= least)
            listed = str(unstable[:10].tolist()) + (f" and {unstable.size - 10} more" if unstable.size > 10 else "")
            mu = mpmath.sqrt(mpmath.mpf(coef.numerator * top) / coef.denominator)
            raise InputError(
                "lr",
                f"step {rational_string(self.lr)} makes gradient descent unstable at the origin: eta*mu_j >= 2 for neurons "
                f"{listed} (largest eta*mu = {mpmath.nstr(mpmath.mpf(self.lr.numerator) / self.lr.denominator * mu, 6)}); "
                f"the limit needs eta < 2/mu_max = {mpmath.nstr(2 / mu, 6)}",
            )

    def _block_norm(self, block: np.ndarray) -> Fraction:
        """``Q = Σ_block y_i^2 / q_i``."""
        return _ratio(_total(self.context.norm_w, block), self.context.norm_den)

    def run(self, progress: bool) -> Result:
        p, prog, context = self.problem, self.program, self.context
        aligned = p.aligned_words()
        zero = self.zero
        unfitted = _all_samples(p.n)  # the samples not in F, as words
        initial = _masked_sums(context, aligned, np.arange(p.m), unfitted)
        self._check_stable(initial)
        live = _Neurons(self, initial)
        loss_left = int(context.loss_w.sum())
        c = context.loss_scale  # the loss is c * loss_left / loss_den
        loss_num, loss_den = c.numerator, c.denominator * context.loss_den
        escaped: dict[int, np.ndarray] = {}
        block_norms: dict[int, Fraction] = {}
        norms = _Norms(self)
        reason: str | None = None
        weights_determined = True
        class_sizes: dict[int, int] = {}
        jumps: list[Jump] = []
        saddles = [self._saddle(0, zero, _ratio(loss_num * loss_left, loss_den), escaped, block_norms, True, norms, live)]

        from .progress import progress_bar

        with progress_bar(total=len(live), desc="jumps", enabled=progress) as bar:
            while live:
                group, certificate = self._earliest(live)
                k = len(jumps) + 1
                tau = live[group[0]].T
                block_words = {j: aligned[j] & unfitted for j in group}
                blocks = {j: _indices(block_words[j]) for j in group}
                by_block: dict[bytes, list[int]] = {}
                for j in group:
                    by_block.setdefault(block_words[j].tobytes(), []).append(j)
                classes = [(blocks[js[0]], tuple(js)) for js in by_block.values()]
                union_words, shared = _union(list(block_words.values()))
                union = blocks[group[0]] if len(group) == 1 else _indices(union_words)
                contested = _union([block_words[js[0]] for js in by_block.values()])[1]
                unfitted &= ~union_words
                loss_left -= _total(context.loss_w, union)
                rates, radicands = {}, {}
                for j in group:
                    state = live.pop(j)
                    rates[j] = prog.value(state.mu)
                    radicands[j] = _ratio(state.R, context.rate_den)
                    escaped[j] = blocks[j]
                    block_norms[j] = self._block_norm(blocks[j])
                norms.jumps.append((_components(classes, contested), contested))
                if contested.size and reason is None:
                    reason = (
                        f"jump {k}: tied neurons {list(group)} with different blocks share samples {contested.tolist()}; "
                        "their split depends on the initial magnitudes (sq_norm_interval bounds N)"
                    )
                weights_determined &= not contested.size
                class_sizes.update({j: len(js) for _, js in classes for j in js})
                self._update(live, aligned, union_words, tau, k)
                loss = _ratio(loss_num * loss_left, loss_den)
                jumps.append(
                    Jump(
                        k,
                        prog.value(tau),
                        tuple(group),
                        blocks,
                        union,
                        shared,
                        tuple(sorted(js for _, js in classes)),
                        contested,
                        loss,
                        rates,
                        certificate if len(group) > 1 else None,
                        radicands,
                        p,
                    )
                )
                saddles.append(self._saddle(k, tau, loss, escaped, block_norms, weights_determined, norms, live, class_sizes))
                bar.update(len(group))
        return Result(
            problem=p,
            program=prog,
            jumps=jumps,
            saddles=saddles,
            never_escaped=sorted(set(range(p.m)) - set(escaped)),
            uncovered=_indices(unfitted),
            sq_norm=_Deferred(norms.final, "sq_norm"),
            min_sq_norm=_Deferred(norms.final, "min_sq_norm"),
            sq_norm_interval=_Deferred(norms.final, "sq_norm_interval"),
            sq_norm_hi_attained=_Deferred(norms.final, "sq_norm_hi_attained"),
            sq_norm_reason=reason,
            lr=self.lr,
        )

    def _interval(self, component: list[np.ndarray], contested: np.ndarray) -> tuple[int, int, bool]:
        """Nodes ``(lo, hi)`` bounding ``Σ_classes 2 ||v_c||_q`` over the splits of the classes' blocks
        ``component`` (theory §6), and whether ``hi`` is attained (the vertex maximum, not a bound).

        Both are sums of square roots whose radicands depend only on the layout of the blocks (each
        sample's weight, and which shared sample it is, in block order), not on which samples they
        are: the context keeps them per layout, as runs of an ensemble meet the same layouts again."""
        disputed = set(contested.tolist())
        shared = sorted(set(np.concatenate(component).tolist()) & disputed)
        rank = {i: r for r, i in enumerate(shared)}
        # (each sample's weight y_i^2 / q_i times the norm denominator, read for the component's samples only)
        layout = tuple(tuple((rank.get(i, -1), w) for i, w in zip(b.tolist(), self.context.norm_w[b].tolist())) for b in component)
        key = (layout, self.program.precision)
        found = self.context._intervals.get(key)
        if found is None:
            size = sum(map(len, layout))
            if self.context._interval_samples + size > _INTERVAL_CACHE:
                self.context._intervals.clear()
                self.context._interval_samples = 0
            self.context._interval_samples += size
            found = self.context._intervals[key] = self._interval_radicands(layout)
        lo, hi, attained = found
        return _root_sum(self.program, lo), _root_sum(self.program, hi), attained

    def _interval_radicands(self, layout: tuple[tuple[tuple[int, int], ...], ...]) -> tuple[tuple, tuple, bool]:
        """The radicands of ``lo`` and ``hi`` of :meth:`_interval`, chosen in a scratch program. Per class,
        ``layout`` lists ``(r, w)`` in block order: ``r`` the rank of a shared sample (-1: unshared), ``w``
        its weight ``y_i^2 / q_i`` as an integer over the common denominator (kept so until a root is taken)."""
        prog, den, coef = Program(precision=self.program.precision), self.context.norm_den, self.context.norm_coef
        weight = {r: x for block in layout for r, x in block if r >= 0}
        shared = range(len(weight))
        private = [sum(x for r, x in block if r < 0) for block in layout]
        owners = [[c for c, block in enumerate(layout) if any(s == r for s, _ in block)] for r in shared]

        roots: dict[int, Fraction] = {}  # Q -> norm_coef Q / den (vertices repeat their sums)

        def radicands(Qs) -> tuple[Fraction, ...]:
            return tuple(roots[Q] if Q in roots else roots.setdefault(Q, coef * Fraction(Q, den)) for Q in Qs)

        # hi: the convex function is largest at a vertex of the split polytope (each shared sample whole to one class)
        hi = None
        if math.prod(len(o) for o in owners) <= VERTEX_CAP:
            vertices = set()
            for choice in itertools.product(*owners):
                Qs = list(private)
                for r, c in zip(shared, choice):
                    Qs[c] += weight[r]
                vertices.add(tuple(sorted(Qs)))
            sums = [radicands(Qs) for Qs in sorted(vertices)]
            best = self._certified_max(prog, [_root_sum(prog, r) for r in sums], len(layout))
            hi = None if best is None else sums[best]
        attained = hi is not None
        if hi is None:  # each class fitting its whole block bounds every split
            hi = radicands(sum(x for _, x in block) for block in layout)
        # lo: each candidate is a valid lower bound, so the float order only picks the tightest
        union = sum(private) + sum(weight.values())
        candidates = [radicands([union]), radicands(private), self._dual_bound(layout, owners, private)]
        nodes = [_root_sum(prog, r) for r in candidates]
        lo = max(range(len(nodes)), key=lambda c: float(prog.ball(nodes[c], self.precision).mid()))
        return candidates[lo], hi, attained

    def _certified_max(self, prog: Program, nodes: list[int], terms: int) -> int | None:
        """The index of the largest of ``nodes`` (sums of ``terms`` square roots), certified (None if
        two cannot be ordered within the budget)."""
        best = max(range(len(nodes)), key=lambda c: float(prog.ball(nodes[c], self.precision).mid()))
        for c, node in enumerate(nodes):
            if c == best and terms <= prog.term_budget:  # its form fits the budget: equal to itself, certified
                continue
            sign, certified = prog.compare(node, nodes[best], self.precision, self.max_precision)
            if not certified:
                return None
            if sign > 0:
                rest = [x for x in range(len(nodes)) if x != best]
                found = self._certified_max(prog, [nodes[x] for x in rest], terms)
                return None if found is None else rest[found]
        return best

    def _dual_bound(self, layout, owners, private) -> tuple[Fraction, ...]:
        """The radicands of a lower bound of ``Σ_c 2 ||v_c||_q`` over the splits, exact for any rational
        shares ``s``: with ``d_ci = s_ci |y_i|``, Cauchy-Schwarz gives ``||v_c||_q ≥ <v_c, d_c>_q / ||d_c||_q``,
        linear in the split, so its minimum gives each shared sample to the class with the smallest
        ``s_ci / ||d_c||_q``. At the minimising split the bound is the minimum itself; that split is
        approximated in floats (fixed point: a shared sample splits in proportion to the classes' norms).
        ``private[c]``: the weight of class ``c``'s unshared samples (times the denominator)."""
        den, coef, classes = self.context.norm_den, self.context.norm_coef, range(len(layout))
        share = [[1 / len(o) if c in o else 0.0 for c in classes] for o in owners]
        # per class, each sample's row of shares (-1: unshared, share 1) and float weight, in block order
        # (int / int is correctly rounded: the float of y_i^2 / q_i)
        terms = [[(r, x / den) for r, x in block] for block in layout]
        kinds = list(dict.fromkeys(map(tuple, owners)))  # samples shared by the same classes get the same row
        of_kind = [kinds.index(tuple(o)) for o in owners]
        for _ in range(DUAL_ITERATIONS):
            # (1.0 ** 2 * x is x: an unshared sample adds its weight)
            norms = [math.sqrt(sum([x if r < 0 else share[r][c] ** 2 * x for r, x in t])) for c, t in zip(classes, terms)]
            rows = []
            for o in kinds:
                total = sum(norms[d] for d in o)
                rows.append([norms[c] / total if c in o else 0.0 for c in classes])
            update = [rows[k] for k in of_kind]
            if update == share:  # an exact fixed point: the remaining iterations would not change it
                break
            share = update
        rational = [{r: _limited(share[r][c]) for r, _ in block if r >= 0} for c, block in enumerate(layout)]
        weight = {r: Fraction(x, den) for block in layout for r, x in block if r >= 0}
        A = [Fraction(p, den) for p in private]  # unshared samples have share 1
        D = [a + sum((x**2 * weight[r] for r, x in sc.items()), Fraction(0)) for a, sc in zip(A, rational)]  # ||d_c||_q^2
        for r in range(len(owners)):
            c = min(owners[r], key=lambda c: rational[c][r] ** 2 / D[c] if D[c] else Fraction(0))
            A[c] += rational[c][r] * weight[r]
        return tuple(coef * a * a / d for a, d in zip(A, D) if d)

    def _update(self, live: _Neurons, aligned: np.ndarray, union: np.ndarray, tau: int, k: int) -> None:
        """Neurons whose remaining aligned samples were just fitted (``union``: packed words) change rate at ``tau``."""
        if not live:
            return
        idx = live.indices()
        lost = _masked_sums(self.context, aligned, idx, union)
        live.advance(idx, lost, tau, k)

    def _earliest(self, live: _Neurons) -> tuple[list[int], str | None]:
        """The neurons with the smallest escape time, and how their tie (if any) is certified.

        Each history is a class of neurons tied by structure. A class whose escape-time interval lies
        above another's upper end cannot be next; the rest are ordered exactly, as nodes.
        """
        prog = self.program
        ids = live.indices()
        history = live.history[ids]
        T_lo, T_hi = live.bounds[_T]  # (rows of a C-ordered array: gathers from contiguous rows)
        inside = T_lo[history] <= T_hi[history].min()
        members, of = ids[inside], history[inside]
        listed = of.tolist()
        if listed.count(listed[0]) == len(listed):  # one history (the common case)
            groups = [(listed[0], members)]
        else:
            order = np.argsort(of, kind="stable")
            members, of = members[order], of[order]
            ends = [*((of[1:] != of[:-1]).nonzero()[0] + 1).tolist(), of.size]  # of is sorted: where each history ends
            groups = [(int(of[a]), members[a:b]) for a, b in zip([0, *ends], ends)]
        T = {h: live.nodes(h)[3] for h, _ in groups}
        if len(groups) > 1:
            groups.sort(key=lambda c: (float(prog.ball(T[c[0]], self.precision).mid()), c[1][0]))
        classes = [(T[h], js) for h, js in groups]
        best = classes[0]
        while True:
            tied, hows, smaller = [best], [], None
            for other in classes:
                if other is best:
                    continue
                sign, certified = prog.compare(other[0], best[0], self.precision, self.max_precision)
                if sign < 0:
                    smaller = other
                    break
                if sign == 0:
                    tied.append(other)
                    hows.append("canonical" if certified else None)
            if smaller is None:
                break
            best = smaller
        neurons = tied[0][1].tolist() if len(tied) == 1 else sorted(np.concatenate([js for _, js in tied]).tolist())
        certificate = "structure" if not hows else ("canonical" if all(hows) else None)
        return neurons, certificate

    def _saddle(self, k, tau, loss, escaped, block_norms, determined, norms: _Norms, live: _Neurons, class_sizes=None) -> Saddle:
        prog = self.program
        return Saddle(
            k=k,
            tau=prog.value(tau),
            loss=loss,
            escaped=dict(escaped),
            block_norms=dict(block_norms),
            determined=determined,
            sq_norm=_Deferred(norms.saddle, k),
            unstable=_Deferred(live.rates_at, k),
            min_eigenvalue=_Deferred(live.min_eigenvalue_at, k),
            class_sizes=dict(class_sizes or {}),
        )
