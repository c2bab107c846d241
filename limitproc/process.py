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
from .saddles import EscapeDirection, Saddle

__all__ = ["Jump", "Result", "solve"]


@dataclass(frozen=True)
class Jump:
    """Jump ``k`` (from 1): at time ``tau`` the neuron(s) escape and fit ``samples`` (theory §4)."""

    k: int
    tau: ExactValue
    neurons: tuple[int, ...]
    blocks: dict[int, np.ndarray]  # each escaping neuron's block A_j \ F
    samples: np.ndarray  # the union of the blocks
    shared: np.ndarray  # samples in two or more blocks (only in a tie)
    plateau_loss: Fraction  # the loss of the saddle entered
    rates: dict[int, ExactValue]  # mu_j of each escaping neuron just before it escapes
    tie_certificate: str | None  # "structure", "canonical", or None: a tie not certified
    _radicands: dict[int, Fraction] = field(repr=False)
    _problem: Problem = field(repr=False)

    @property
    def tie(self) -> bool:
        return len(self.neurons) > 1

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
    sq_norm: ExactValue | None
    sq_norm_reason: str | None  # why ``sq_norm`` is None
    min_sq_norm: ExactValue
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


@dataclass
class _Neuron:
    """A not-yet-escaped neuron: its radicand and the nodes of its rate, anchor and escape time."""

    R: int  # R_j times the common denominator of the rate weights
    mu: int
    rho: int  # the growth rate: mu for gradient flow, log(1 + eta mu) / eta for descent
    S: int  # exponent at the anchor time
    anchor: int
    T: int  # escape time if nothing changes
    history: int  # equal histories of rates give equal exponents (a tie certified by structure)


def solve(
    problem: Problem,
    *,
    term_budget: int = DEFAULT_TERM_BUDGET,
    precision: int = DEFAULT_PRECISION,
    max_precision: int = DEFAULT_MAX_PRECISION,
    progress: bool = False,
    lr=None,
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
    """
    return _Engine(problem, term_budget, precision, max_precision, _step(lr)).run(progress)


def _step(lr) -> Fraction | None:
    if lr is None:
        return None
    eta = parse_rational(lr, "lr")
    if eta < 0:
        raise InputError("lr", f"must be positive (or 0 for gradient flow), got {rational_string(eta)}")
    return eta or None


def _masked_sums(weights: np.ndarray, uniform, mask: np.ndarray) -> list[int]:
    """Row sums of ``weights`` over a boolean ``(rows, k)`` mask, exactly."""
    if uniform is not None:
        return [int(c) * uniform for c in np.count_nonzero(mask, axis=1)]
    return [int(weights[row].sum()) for row in mask]


class _Engine:
    def __init__(self, problem: Problem, term_budget: int, precision: int, max_precision: int, lr: Fraction | None):
        self.problem, self.lr = problem, lr
        self.precision, self.max_precision = precision, max_precision
        self.program = Program(precision=Precision(term_budget, precision, max_precision))
        y2 = problem.y * problem.y
        self.rate_w, self.rate_den = (y2 * problem.q).scaled_integers()
        self.loss_w, self.loss_den = y2.scaled_integers()
        self.norm_w, self.norm_den = (y2 * problem.q.reciprocal()).scaled_integers()
        # squared norms N = 2 sum sqrt(Q_j) = sum sqrt(4 Q_j), times the user's unit factor (theory, conventions)
        self.norm_coef = 4 * problem.unit_factor**2
        first = self.rate_w[0]
        self.uniform = int(first) if np.all(self.rate_w == first) else None
        # mu_j^2 = (2c)^2 R_j
        self.rate_coef = (2 * problem.loss_factor) ** 2 / self.rate_den
        self._histories: dict[tuple, int] = {}

    def _rates(self, R: int) -> tuple[int, int]:
        """The nodes of ``mu`` and of the growth rate ``rho`` for the radicand ``R`` (theory §4, §11)."""
        prog = self.program
        mu = prog.sqrt(self.rate_coef * R)
        if self.lr is None:
            return mu, mu
        growth = prog.log(prog.add(prog.const(1), prog.mul(prog.const(self.lr), mu)))
        return mu, prog.mul(prog.const(1 / self.lr), growth)

    def _check_stable(self, radicands: list[int]) -> None:
        """Rates only fall as samples are fitted, so the initial ones decide stability: eta mu_j < 2."""
        if self.lr is None:
            return
        unstable = [j for j, R in enumerate(radicands) if R > 0 and self.lr**2 * self.rate_coef * R >= 4]
        if unstable:
            top = max(radicands)
            raise InputError(
                "lr",
                f"step {rational_string(self.lr)} makes gradient descent unstable at the origin: eta*mu_j >= 2 for neurons "
                f"{unstable} (largest eta*mu = {float(self.lr * (self.rate_coef * top) ** 0.5):.6g}); "
                f"the limit needs eta < 2/mu_max = {float(2 / (self.rate_coef * top) ** 0.5):.6g}",
            )

    def _history(self, key: tuple) -> int:
        return self._histories.setdefault(key, len(self._histories))

    def _sum(self, weights, den, indices) -> Fraction:
        return Fraction(int(weights[indices].sum()), den)

    def run(self, progress: bool) -> Result:
        p, prog = self.problem, self.program
        aligned = p.aligned_matrix()
        zero, one = prog.const(0), prog.const(1)
        live: dict[int, _Neuron] = {}
        initial = _masked_sums(self.rate_w, self.uniform, aligned)
        self._check_stable(initial)
        for j, R in enumerate(initial):
            if R > 0:
                mu, rho = self._rates(R)
                live[j] = _Neuron(R, mu, rho, zero, zero, prog.div(one, rho), self._history((R,)))
        fitted = np.zeros(p.n, dtype=bool)
        loss_left = int(self.loss_w.sum())
        c = p.loss_factor * p.unit_factor
        escaped: dict[int, np.ndarray] = {}
        block_norms: dict[int, Fraction] = {}
        norm_node: int | None = zero
        reason: str | None = None
        jumps: list[Jump] = []
        saddles = [self._saddle(0, zero, c * Fraction(loss_left, self.loss_den), escaped, block_norms, True, zero, live)]

        from .progress import progress_bar

        with progress_bar(total=len(live), desc="jumps", enabled=progress) as bar:
            while live:
                group, certificate = self._earliest(live)
                k = len(jumps) + 1
                tau = live[group[0]].T
                blocks = {j: np.flatnonzero(aligned[j] & ~fitted) for j in group}
                if len(group) == 1:
                    union, shared = blocks[group[0]], np.zeros(0, dtype=np.int64)
                else:
                    union, counts = np.unique(np.concatenate(list(blocks.values())), return_counts=True)
                    shared = union[counts > 1]
                fitted[union] = True
                loss_left -= int(self.loss_w[union].sum())
                rates, radicands = {}, {}
                for j in group:
                    state = live.pop(j)
                    rates[j] = prog.value(state.mu)
                    radicands[j] = Fraction(state.R, self.rate_den)
                    escaped[j] = blocks[j]
                    block_norms[j] = self._sum(self.norm_w, self.norm_den, blocks[j])
                    if norm_node is not None and not shared.size:  # None once a tie left N undetermined
                        norm_node = prog.add(norm_node, prog.sqrt(self.norm_coef * block_norms[j]))
                if shared.size and reason is None:
                    reason = f"jump {k}: tied neurons {list(group)} share samples {shared.tolist()}; their split depends on the initial magnitudes"
                    norm_node = None
                self._update(live, aligned, union, tau, k)
                loss = c * Fraction(loss_left, self.loss_den)
                jumps.append(
                    Jump(
                        k,
                        prog.value(tau),
                        tuple(group),
                        blocks,
                        union,
                        shared,
                        loss,
                        rates,
                        certificate if len(group) > 1 else None,
                        radicands,
                        p,
                    )
                )
                saddles.append(self._saddle(k, tau, loss, escaped, block_norms, reason is None, norm_node, live))
                bar.update(len(group))
        Qpos = self._sum(self.norm_w, self.norm_den, p.positive_labels)
        Qneg = self._sum(self.norm_w, self.norm_den, ~p.positive_labels)
        min_sq_norm = prog.add(prog.sqrt(self.norm_coef * Qpos), prog.sqrt(self.norm_coef * Qneg))
        return Result(
            problem=p,
            program=prog,
            jumps=jumps,
            saddles=saddles,
            never_escaped=sorted(set(range(p.m)) - set(escaped)),
            uncovered=np.flatnonzero(~fitted),
            sq_norm=None if norm_node is None else prog.value(norm_node),
            sq_norm_reason=reason,
            min_sq_norm=prog.value(min_sq_norm),
            lr=self.lr,
        )

    def _update(self, live: dict[int, _Neuron], aligned: np.ndarray, union: np.ndarray, tau: int, k: int) -> None:
        """Neurons whose remaining aligned samples were just fitted change rate at ``tau``."""
        if not live:
            return
        prog = self.program
        one = prog.const(1)
        idx = np.fromiter(live, dtype=np.int64, count=len(live))
        lost = _masked_sums(self.rate_w[union], self.uniform, aligned[np.ix_(idx, union)])
        for j, d in zip(idx.tolist(), lost):
            if not d:
                continue
            state = live[j]
            state.S = prog.add(state.S, prog.mul(state.rho, prog.sub(tau, state.anchor)))
            state.anchor = tau
            state.R -= d
            if state.R == 0:  # all its samples were fitted by others: it never escapes
                del live[j]
                continue
            state.mu, state.rho = self._rates(state.R)
            state.T = prog.add(tau, prog.div(prog.sub(one, state.S), state.rho))
            state.history = self._history((state.history, k, state.R))

    def _earliest(self, live: dict[int, _Neuron]) -> tuple[list[int], str | None]:
        """The neurons with the smallest escape time, and how their tie (if any) is certified."""
        prog = self.program
        by_history: dict[int, list[int]] = {}
        for j, state in live.items():
            by_history.setdefault(state.history, []).append(j)
        classes = sorted(by_history.values(), key=lambda js: float(prog.ball(live[js[0]].T, self.precision).mid()))
        best = classes[0]
        while True:
            tied, hows, smaller = [best], [], None
            for other in classes:
                if other is best:
                    continue
                sign, certified = prog.compare(live[other[0]].T, live[best[0]].T, self.precision, self.max_precision)
                if sign < 0:
                    smaller = other
                    break
                if sign == 0:
                    tied.append(other)
                    hows.append("canonical" if certified else None)
            if smaller is None:
                break
            best = smaller
        neurons = sorted(j for js in tied for j in js)
        certificate = "structure" if not hows else ("canonical" if all(hows) else None)
        return neurons, certificate

    def _saddle(self, k, tau, loss, escaped, block_norms, determined, norm_node, live) -> Saddle:
        prog = self.program
        unstable = {j: prog.value(s.mu) for j, s in sorted(live.items())}
        top = max(live.items(), key=lambda item: item[1].R, default=None)
        min_eig = None if top is None else prog.value(prog.sub(prog.const(0), top[1].mu))
        return Saddle(
            k=k,
            tau=prog.value(tau),
            loss=loss,
            escaped=dict(escaped),
            block_norms=dict(block_norms),
            determined=determined,
            sq_norm=None if norm_node is None else prog.value(norm_node),
            unstable=unstable,
            min_eigenvalue=min_eig,
        )
