"""Saddles of the limit process (theory §5), exactly: the network at a saddle, its gradient, its Hessian.

Saddle ``k`` has every escaped neuron ``j`` at ``a_j = s_j Q_j^(1/4)``, ``u_ji = y_i / a_j`` on its
block, and every other neuron at 0. It is a critical point of ``L = c sum_i r_i^2``
(:func:`critical_point` checks it in exact arithmetic), and the Hessian block of a zero neuron
(:func:`hessian_block`) has eigenvalues ``±mu_j``; the eigenvector of ``-mu_j`` is the direction in
which the neuron escapes (:class:`EscapeDirection`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from .errors import InputError
from .exact import sqrt_string

__all__ = ["EscapeDirection", "HessianBlock", "Saddle", "critical_point", "hessian_block", "loss_gradient", "residuals"]

if TYPE_CHECKING:
    import sympy

    from .exact import ExactValue
    from .problem import Problem


class _Deferred(functools.partial):
    """The value of a :class:`_Lazy` field until its first read: ``_Deferred(build, *args)`` stands for ``build(*args)``."""


_T = TypeVar("_T")


class _Lazy(Generic[_T]):
    """A dataclass field that may be given a :class:`_Deferred`, built on first read and kept.

    A data descriptor on the instance's ``__dict__``: it works on frozen dataclasses, and the field
    stays an ``__init__`` argument (``dataclasses.replace`` can give it a value). It has no default."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> _T:
        if obj is None:
            raise AttributeError(self.name)  # (no class attribute: the field has no default)
        value = obj.__dict__[self.name]
        if type(value) is _Deferred:
            value = obj.__dict__[self.name] = value()
        return value

    def __set__(self, obj: object, value: _T | _Deferred) -> None:
        obj.__dict__[self.name] = value


@dataclass(frozen=True)
class EscapeDirection:
    """The eigenvector of ``-mu_j`` along which neuron ``j`` leaves the saddle (theory §5).

    In the coordinates ``(a_j, v_i = u_ji / ||x_i||)``, ``i`` in the block, it is
    ``(s_j, |y_i| ||x_i|| / sqrt(R))`` with ``R = sum_block y_i^2 q_i``; its squared length is 2.
    """

    neuron: int
    a: int
    samples: np.ndarray
    radicands: tuple[Fraction, ...]  # v_i = sqrt(radicand_i)

    def v(self) -> dict[int, str]:
        return {int(i): sqrt_string(r) for i, r in zip(self.samples, self.radicands)}

    def to_dict(self) -> dict:
        return {"neuron": self.neuron, "a": str(self.a), "v": {str(i): s for i, s in self.v().items()}}


@dataclass(frozen=True)
class Saddle:
    """Saddle ``k``: the plateau after jump ``k`` (saddle 0 is the origin), theory §5.

    Every escaped neuron ``j`` with block ``B_j`` has ``a_j = s_j Q_j^(1/4)`` and
    ``u_ji = <w_j, x_i> = y_i / a_j`` on ``B_j``, with ``Q_j = sum_{B_j} y_i^2 / q_i``; the other
    neurons are 0. Tied neurons with identical blocks (a class of ``class_sizes[j]`` neurons, theory
    §6) share their block's outputs in a split the limit does not fix; every split is a critical point
    with the same norm, and :meth:`network` gives the even one. ``determined`` is False once classes
    with different blocks have shared samples: then the split changes the norm too.
    """

    k: int
    tau: ExactValue
    loss: Fraction
    escaped: dict[int, np.ndarray]
    block_norms: dict[int, Fraction]  # Q_j
    determined: bool
    # built on first read (given as a _Deferred): ensembles never read them, and a wide network has
    # one rate per live neuron at every saddle
    sq_norm: _Lazy[ExactValue | None] = _Lazy()  # N (None once classes with different blocks share samples)
    unstable: _Lazy[dict[int, ExactValue]] = _Lazy()  # not-escaped neurons with mu_j > 0 -> mu_j
    min_eigenvalue: _Lazy[ExactValue | None] = _Lazy()  # -max mu_j over the unstable neurons (None if none)
    class_sizes: dict[int, int] = field(default_factory=dict)  # escaped neuron -> size of its class (1 if absent)

    @property
    def fitted(self) -> np.ndarray:
        """The fitted set F, sorted."""
        if not self.escaped:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(list(self.escaped.values())))

    def network(self, problem: Problem) -> dict[int, tuple]:
        """Exact parameters ``{j: (a_j, {i: u_ji})}`` as sympy numbers (escaped neurons only); a class of
        ``k`` tied neurons with one block splits its outputs evenly, ``a_j = s_j Q_j^(1/4) / sqrt(k)``."""
        import sympy

        if not self.determined:
            raise ValueError(f"saddle {self.k}: the weights are undetermined after an overlapping tie")
        labels = problem.labels
        out = {}
        for j, block in self.escaped.items():
            Q, k = self.block_norms[j], self.class_sizes.get(j, 1)
            a = int(problem.signs[j]) * sympy.Rational(Q.numerator, Q.denominator) ** sympy.Rational(1, 4) / sympy.sqrt(k)
            out[j] = (a, {int(i): sympy.Rational(labels[i].numerator, labels[i].denominator) / (k * a) for i in block})
        return out

    def _repr_html_(self) -> str:
        from .display import saddle_html

        return saddle_html(self)

    def _repr_latex_(self) -> str:
        from .display import saddle_latex

        return saddle_latex(self)


# -- critical points -----------------------------------------------------------------------------
def residuals(problem: Problem, network: dict[int, tuple]) -> list:
    """The exact residuals ``r_i = sum_j a_j relu(u_ji) - y_i`` of a network ``{j: (a_j, {i: u_ji})}``."""
    import sympy

    residual = [-sympy.Rational(y.numerator, y.denominator) for y in problem.labels]
    for a, u in network.values():
        for i, u_i in u.items():
            if u_i.is_positive:
                residual[i] += a * u_i
    return residual


def loss_gradient(problem: Problem, network: dict[int, tuple]) -> tuple[dict, dict]:
    """The exact gradient of ``L = c sum_i (sum_j a_j relu(u_ji) - y_i)^2`` in per-sample coordinates.

    ``network`` is ``{j: (a_j, {i: u_ji})}`` as from :meth:`Saddle.network` (omitted neurons and
    coordinates are 0). Returns ``({j: dL/da_j}, {(j, i): dL/du_ji})`` as sympy numbers, for the
    neurons in ``network``; a zero neuron's gradient vanishes identically since ``relu(0) = relu'(0) = 0``.
    Because the ``x_i`` are orthogonal, ``dL/dw_j = sum_i dL/du_ji x_i`` is zero iff every ``dL/du_ji`` is.
    """
    import sympy

    c = sympy.Rational(problem.loss_factor.numerator, problem.loss_factor.denominator)
    residual = residuals(problem, network)
    grad_a, grad_u = {}, {}
    for j, (a, u) in network.items():
        grad_a[j] = 2 * c * sum((residual[i] * u_i for i, u_i in u.items() if u_i.is_positive), sympy.Integer(0))
        for i, u_i in u.items():
            grad_u[j, i] = 2 * c * residual[i] * a if u_i.is_positive else sympy.Integer(0)
    return grad_a, grad_u


def critical_point(problem: Problem, saddle: Saddle) -> tuple[bool | None, str | None]:
    """``(True, None)`` when the gradient at the saddle is exactly zero; ``(None, reason)`` if undetermined."""
    import sympy

    if not saddle.determined:
        return None, "the weights after a tie of different overlapping blocks depend on the initial magnitudes"
    grad_a, grad_u = loss_gradient(problem, saddle.network(problem))
    for g in (*grad_a.values(), *grad_u.values()):
        if not (g.is_zero is True or sympy.simplify(g) == 0):
            return False, f"non-zero gradient component {g}"
    return True, None


# -- the Hessian at a zero neuron ------------------------------------------------------------------
@dataclass(frozen=True)
class HessianBlock:
    """The Hessian of ``L`` at a saddle in the coordinates of one zero neuron ``j`` (theory §5).

    The coordinates are ``(a_j, v_i = u_ji / ||x_i||)`` for ``i`` in ``samples = A_j \\ F``; the
    block is ``-2c [[0, b^T], [b, 0]]`` with ``b_i = y_i ||x_i||`` (``2c = 1/n`` by default), and
    ``rate`` is ``mu_j = 2c ||b||``.
    """

    neuron: int
    sign: int  # s_j
    samples: np.ndarray
    matrix: sympy.ImmutableMatrix
    rate: sympy.Expr
    _radicands: tuple[Fraction, ...]  # b_i^2 / ||b||^2

    def eigenvalues(self) -> dict:
        """``{mu_j: 1, -mu_j: 1, 0: |samples| - 1}``: the block has rank 2 (rank 0 without samples)."""
        import sympy

        if not self.samples.size:
            return {sympy.Integer(0): 1}
        return {self.rate: 1, -self.rate: 1, **({sympy.Integer(0): self.samples.size - 1} if self.samples.size > 1 else {})}

    def escape_direction(self) -> EscapeDirection:
        """The eigenvector of ``-mu_j`` with positive pre-activations, ``(s_j, |b_i| / ||b||)``."""
        if not self.samples.size:
            raise InputError("neuron", f"neuron {self.neuron} has no aligned sample left: it does not escape")
        return EscapeDirection(self.neuron, self.sign, self.samples, self._radicands)


def hessian_block(problem: Problem, saddle: Saddle, neuron: int) -> HessianBlock:
    """The Hessian block of the not-escaped ``neuron`` at ``saddle``, exactly (theory §5)."""
    import sympy

    if not 0 <= neuron < problem.m:
        raise InputError("neuron", f"must be between 0 and {problem.m - 1}, got {neuron}")
    if neuron in saddle.escaped:
        raise InputError("neuron", f"neuron {neuron} has escaped by saddle {saddle.k}: it is not zero there")
    samples = np.setdiff1d(problem.aligned_set(neuron), saddle.fitted)
    labels, sq_norms = problem.labels, problem.sq_norms
    c2 = 2 * sympy.Rational(problem.loss_factor.numerator, problem.loss_factor.denominator)
    b = [
        sympy.Rational(labels[i].numerator, labels[i].denominator)
        * sympy.sqrt(sympy.Rational(sq_norms[i].numerator, sq_norms[i].denominator))
        for i in samples
    ]
    size = len(b) + 1
    matrix = sympy.ImmutableMatrix(size, size, lambda r, s: -c2 * (b[s - 1] if r == 0 and s else b[r - 1] if s == 0 and r else 0))
    squares = [labels[i] ** 2 * sq_norms[i] for i in samples]
    R = sum(squares, Fraction(0))
    rate = c2 * sympy.sqrt(sympy.Rational(R.numerator, R.denominator))
    return HessianBlock(neuron, int(problem.signs[neuron]), samples, matrix, rate, tuple(s / R for s in squares) if R else ())
