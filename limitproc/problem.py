"""The problem: labels, squared input norms, neuron signs, initial activation pattern (theory §1, §3).

Labels and norms are exact rationals, held as numerator/denominator arrays (int64, or Python ints
when int64 could overflow) so that n = 10^6 costs no Python objects. The activation pattern is
held as bits: ``numpy.packbits(pattern, axis=1)``.
"""

from __future__ import annotations

import copy
import math
import warnings
from fractions import Fraction

import numpy as np

from .errors import InputError
from .exact import parse_rational
from .io.files import FloatLiteral
from .limits import check_at_most

__all__ = ["LOSS_CONVENTIONS", "SCALINGS", "SIGN_FLIP_ULPS", "Problem", "RationalArray", "draw_initialisation", "generate"]

#: loss convention -> the factor c of L = c * sum_i (f(x_i) - y_i)^2, as a function of n
LOSS_CONVENTIONS = {
    "half-mean": lambda n: Fraction(1, 2 * n),
    "mean": lambda n: Fraction(1, n),
    "half-sum": lambda n: Fraction(1, 2),
}

#: parameterisations: "standard" f = sum_j a_j relu(<w_j, x>) (the spec's); "mean-field" (Dana et al.)
#: f = (1/m) sum_j ..., loss multiplied by m. Mean-field parameters are sqrt(m) times standard ones
#: that follow the same flow in the same time, so times and rates agree and losses and squared
#: norms are m times the spec's (docs/theory.md, "Conventions").
SCALINGS = ("standard", "mean-field")

_INT64_SAFE = 2**62
#: integers up to this are exact in float64
_FLOAT_EXACT = 2**53
#: ``a_magnitudes[j]² < (1 - SIGN_FLIP_ULPS · n · eps) Σ_i magnitudes[j, i]² / q_i`` (float64 ``eps``)
#: is a sign-flipping start: the float sum of ``n`` rounded quotients is good to a few ulps per term,
#: so a balanced start computed in floats is not refused (``allow_sign_flip`` forces, with a warning)
SIGN_FLIP_ULPS = 4


def _check_scaling(scaling, m: int) -> str:
    if scaling not in SCALINGS:
        raise InputError("scaling", f"unknown convention {scaling!r} (choose {', '.join(SCALINGS)})")
    if scaling == "mean-field" and m == 0:
        raise InputError("scaling", "mean-field divides the output by m, which needs at least one neuron")
    return scaling


def check_loss(loss) -> str:
    """``loss`` if it names a loss convention, else an error on ``loss``."""
    if loss not in LOSS_CONVENTIONS:
        raise InputError("loss", f"unknown convention {loss!r} (choose {', '.join(LOSS_CONVENTIONS)})")
    return loss


class RationalArray:
    """Exact rationals as numerator and (positive) denominator arrays."""

    __slots__ = ("num", "den")

    def __init__(self, num, den):
        self.num, self.den = num, den

    @classmethod
    def from_values(cls, values, field: str) -> RationalArray:
        fractions = [parse_rational(v, f"{field}[{i}]") for i, v in enumerate(values)]
        num = [q.numerator for q in fractions]
        den = [q.denominator for q in fractions]
        return cls(_int_array(num), _int_array(den))

    def __len__(self) -> int:
        return len(self.num)

    def fractions(self) -> list[Fraction]:
        return [Fraction(int(p), int(q)) for p, q in zip(self.num, self.den)]

    def floats(self) -> np.ndarray:
        """The values in float64, each correctly rounded as ``float(Fraction)`` (±inf past its range).

        Numerators and denominators below 2^53 are exact in float64, and one IEEE division rounds
        correctly, so that case is one numpy division."""
        if self.num.dtype != object and self.den.dtype != object and max(_abs_max(self.num), _abs_max(self.den)) <= _FLOAT_EXACT:
            return self.num.astype(np.float64) / self.den.astype(np.float64)
        out = np.empty(len(self))
        for i, (p, q) in enumerate(zip(self.num.tolist(), self.den.tolist())):
            try:
                out[i] = p / q  # int / int is correctly rounded
            except OverflowError:
                out[i] = math.inf if p > 0 else -math.inf
        return out

    def __mul__(self, other: RationalArray) -> RationalArray:
        """The product; it may share its operands' arrays, or be a read-only broadcast of 1 (products of ±1)."""
        return RationalArray(_times(self.num, other.num), _times(self.den, other.den)).reduced()

    def reciprocal(self) -> RationalArray:
        """``1/x`` for positive entries (used for ``1/q``, which validation keeps positive)."""
        return RationalArray(self.den, self.num)

    def reduced(self) -> RationalArray:
        if self.den.dtype != object and self.den.max(initial=1) == 1:  # integers: nothing to reduce
            return self
        g = np.gcd(self.num, self.den)
        return RationalArray(self.num // g, self.den // g)

    def scaled_integers(self) -> tuple[np.ndarray, int]:
        """Integers ``k`` and one denominator ``D`` with ``value_i = k_i / D`` exactly.

        int64 when ``sum |k_i|`` provably fits, otherwise Python ints.
        """
        if self.den.dtype != object and self.num.dtype != object and self.den.max(initial=1) == 1:
            # integers (the common case): no lcm pass and no copy
            if _abs_max(self.num) * max(len(self), 1) < _INT64_SAFE:
                return self.num, 1
        D = 1
        dens = (
            self.den
            if self.den.dtype == object
            else np.unique(self.den)
            if self.den.max(initial=1) != self.den.min(initial=1)
            else self.den[:1]
        )
        for d in dens:
            D = math.lcm(D, int(d))
        factor_small = self.den.dtype != object and D < _INT64_SAFE
        if factor_small:
            factor = D // self.den
            bound = int(np.abs(self.num).max(initial=0)) * int(factor.max(initial=1)) * max(len(self), 1)
            if bound < _INT64_SAFE:
                return self.num * factor, D
        num = self.num.astype(object)
        return num * (D // self.den.astype(object)), D


def _int_array(values) -> np.ndarray:
    if all(-_INT64_SAFE < int(v) < _INT64_SAFE for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([int(v) for v in values], dtype=object)


def _abs_max(a: np.ndarray) -> int:
    return max(int(a.max(initial=0)), -int(a.min(initial=0)))


def _unit(a: np.ndarray) -> bool:
    """Every entry is ±1 (then ``a * a`` is all ones)."""
    return a.dtype != object and _abs_max(a) == 1 and np.count_nonzero(a) == a.size


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` without allocating when a factor is all ones or both are the same ±1 array (at
    n = 10^8 a product is 800 MB of fresh pages): the other factor, or a broadcast 1."""
    if a.size and _unit(a):
        if b is a or (_unit(b) and a.min() == 1 and b.min() == 1):
            return np.broadcast_to(np.int64(1), a.shape)
        if a.min() == 1:
            return b
    if b.size and b is not a and _unit(b) and b.min() == 1:
        return a
    return _safe_mul(a, b)


def _safe_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype != object and b.dtype != object:
        amax = _abs_max(a)
        bmax = _abs_max(b)
        if amax * bmax < _INT64_SAFE:
            return a * b
    return a.astype(object) * b.astype(object)


class Problem:
    """A limit-process problem (theory §1, §3).

    ``labels`` and ``sq_norms`` are exact rationals (ints, Fractions or strings like ``"3/2"``);
    ``signs`` are the neurons' output signs ``s_j``; ``active[j]`` lists the samples ``i`` with
    ``<w_j(0), x_i> > 0`` (or ``active`` is an ``(m, n)`` boolean array). ``loss`` is the loss
    convention (``half-mean``, ``mean`` or ``half-sum``). ``magnitudes`` (``(m, n)`` floats,
    ``|<g_j, x_i>|``) and ``a_magnitudes`` (``|a_j(0)|`` at scale 1) optionally fix a concrete
    initialisation, for the simulator and for resolving ties. ``scaling`` is the parameterisation
    the user trains in (``standard`` or ``mean-field``, see :data:`SCALINGS`): results are reported
    in its units; ``a_magnitudes[j]`` below ``||w_j|| =
    sqrt(Σ_i magnitudes[j, i]² / q_i)`` lets ``a_j`` change sign (theory §1) and is refused unless
    ``allow_sign_flip`` (then with a warning).

    >>> p = Problem(labels=[1, 1, -1], signs=[1, -1], active=[[0, 1, 2], [2]])
    >>> p.n, p.m, [list(p.aligned_set(j)) for j in range(p.m)]
    (3, 2, [[0, 1], [2]])
    """

    def __init__(
        self,
        labels,
        signs,
        active,
        sq_norms=None,
        loss: str = "half-mean",
        magnitudes=None,
        a_magnitudes=None,
        allow_sign_flip: bool = False,
        scaling: str = "standard",
    ):
        y = labels if isinstance(labels, RationalArray) else RationalArray.from_values(labels, "labels")
        n = len(y)
        if sq_norms is None:
            q = RationalArray(np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64))
        elif isinstance(sq_norms, RationalArray):
            q = sq_norms
        else:
            q = RationalArray.from_values(sq_norms, "sq_norms")
        signs = _signs_array(signs)
        self._init(y, q, signs, _pack_active(active, n, len(signs)), loss, magnitudes, a_magnitudes, allow_sign_flip, scaling)

    def _init(self, y, q, signs, packed, loss, magnitudes, a_magnitudes, allow_sign_flip=False, scaling="standard"):
        self.y, self.q = y, q
        self.signs = signs
        self.packed_active = packed
        self.loss = check_loss(loss)
        self.scaling = _check_scaling(scaling, len(signs))
        self.magnitudes = None if magnitudes is None else np.asarray(magnitudes, dtype=np.float64)
        self.a_magnitudes = None if a_magnitudes is None else np.asarray(a_magnitudes, dtype=np.float64)
        self._validate()
        self._check_sign_flip(allow_sign_flip)

    @classmethod
    def from_arrays(cls, labels_num, labels_den, sq_norms_num, sq_norms_den, signs, active_bits, loss="half-mean", **init) -> Problem:
        """Build from the arrays of the ``.npz`` format, without per-sample Python objects."""
        self = cls.__new__(cls)
        y = RationalArray(np.asarray(labels_num), np.asarray(labels_den))
        q = RationalArray(np.asarray(sq_norms_num), np.asarray(sq_norms_den))
        self._init(
            y,
            q,
            _signs_array(signs),
            np.asarray(active_bits),
            loss,
            init.get("magnitudes"),
            init.get("a_magnitudes"),
            init.get("allow_sign_flip", False),
            init.get("scaling", "standard"),
        )
        return self

    # -- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        n, m = self.n, self.m
        if n == 0:
            raise InputError("labels", "no samples")
        if len(self.q) != n:
            raise InputError("sq_norms", f"has {len(self.q)} entries but there are {n} labels")
        for field, arr in (("labels", self.y), ("sq_norms", self.q)):
            if arr.num.dtype.kind not in "iO" or arr.den.dtype.kind not in "iO":
                raise InputError(field, "numerators and denominators must be integers")
            bad = np.flatnonzero(arr.den <= 0)
            if bad.size:
                raise InputError(f"{field}[{bad[0]}]", "denominator must be positive")
        zero = np.flatnonzero(self.y.num == 0)
        if zero.size:
            raise InputError(f"labels[{zero[0]}]", "zero label (labels must be non-zero)")
        nonpos = np.flatnonzero(self.q.num <= 0)
        if nonpos.size:
            i = nonpos[0]
            raise InputError(f"sq_norms[{i}]", f"squared norm must be positive, got {Fraction(int(self.q.num[i]), int(self.q.den[i]))}")
        if self.packed_active.shape != (m, (n + 7) // 8) or self.packed_active.dtype != np.uint8:
            raise InputError(
                "active",
                f"expected packed bits of shape ({m}, {(n + 7) // 8}) and dtype uint8, got {self.packed_active.shape} {self.packed_active.dtype}",
            )
        if n % 8 and m and np.any(self.packed_active[:, -1] & np.uint8((1 << (8 - n % 8)) - 1)):
            raise InputError("active", f"bits set past sample {n - 1}")
        if self.magnitudes is not None:
            if self.magnitudes.shape != (m, n):
                raise InputError("magnitudes", f"expected shape ({m}, {n}), got {self.magnitudes.shape}")
            if not np.all(np.isfinite(self.magnitudes)) or np.any(self.magnitudes <= 0):
                raise InputError("magnitudes", "entries must be positive and finite")
        if self.a_magnitudes is not None:
            if self.a_magnitudes.shape != (m,):
                raise InputError("a_magnitudes", f"expected {m} entries, got {self.a_magnitudes.shape}")
            if not np.all(np.isfinite(self.a_magnitudes)) or np.any(self.a_magnitudes <= 0):
                raise InputError("a_magnitudes", "entries must be positive and finite")

    @staticmethod
    def implied_w_sq_norms(magnitudes: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``||w_j||² = Σ_i magnitudes[j, i]² / q_i``: the squared norms that the magnitudes ``|<w_j, x_i>|``
        imply on orthogonal inputs of squared norms ``q`` (float64); balanced starts have ``|a_j|`` equal to their roots."""
        return (magnitudes**2 / q[None, :]).sum(axis=1)

    def _check_sign_flip(self, allow: bool) -> None:
        if self.magnitudes is None or self.a_magnitudes is None:
            return
        w2 = self.implied_w_sq_norms(self.magnitudes, self.q.floats())
        rtol = SIGN_FLIP_ULPS * self.n * float(np.finfo(np.float64).eps)
        for j in np.flatnonzero(self.a_magnitudes**2 < w2 * (1 - rtol)).tolist():
            message = f"{self.a_magnitudes[j]:.6g} < ||w_{j}|| = {np.sqrt(w2[j]):.6g}: the sign of a_{j} can flip and the limit is not established"
            if not allow:
                raise InputError(f"a_magnitudes[{j}]", message + " (set `allow_sign_flip` to force)")
            warnings.warn(f"a_magnitudes[{j}]: {message}", stacklevel=3)

    # -- views --------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def m(self) -> int:
        return len(self.signs)

    @property
    def labels(self) -> list[Fraction]:
        return self.y.fractions()

    @property
    def sq_norms(self) -> list[Fraction]:
        return self.q.fractions()

    @property
    def loss_factor(self) -> Fraction:
        """The ``c`` of ``L = c * sum_i r_i^2``."""
        return LOSS_CONVENTIONS[self.loss](self.n)

    def with_scaling(self, scaling: str) -> Problem:
        """This problem reported in another parameterisation (the limit itself is the same)."""
        other = copy.copy(self)
        other.scaling = _check_scaling(scaling, self.m)
        return other

    @property
    def unit_factor(self) -> int:
        """Losses and squared parameter norms in the user's units are this times the spec's (``m`` for mean-field)."""
        return self.m if self.scaling == "mean-field" else 1

    @property
    def positive_labels(self) -> np.ndarray:
        return self.y.num > 0

    def active_matrix(self) -> np.ndarray:
        """``(m, n)`` booleans: ``<w_j(0), x_i> > 0``."""
        return np.unpackbits(self.packed_active, axis=1, count=self.n).view(bool)

    def aligned_bits(self) -> np.ndarray:
        """The aligned sets (theory §3) as packed bits: active and ``s_j y_i > 0``."""
        return self.aligned_words().view(np.uint8)[:, : self.packed_active.shape[1]]

    def aligned_words(self) -> np.ndarray:
        """The aligned sets as ``(m, ceil(n / 64))`` uint64 words: the bytes of :meth:`aligned_bits`,
        zero-padded to whole words (for popcounts and set operations without unpacking ``m x n`` bits)."""
        m, nbytes = self.packed_active.shape
        out = np.zeros((m, -(-nbytes // 8) * 8), dtype=np.uint8)
        pos = np.packbits(self.positive_labels)
        neg = ~pos
        if nbytes >= 512:  # long rows: one call per row beats a masked ufunc over all of them
            for j, sign in enumerate(self.signs.tolist()):
                np.bitwise_and(self.packed_active[j], pos if sign > 0 else neg, out=out[j, :nbytes])
        else:  # each row's labels of its sign (signs are ±1)
            np.bitwise_and(self.packed_active, np.where((self.signs > 0)[:, None], pos, neg), out=out[:, :nbytes])
        return out.view(np.uint64)

    def aligned_matrix(self) -> np.ndarray:
        """``(m, n)`` booleans: sample ``i`` is in the aligned set ``A_j``."""
        return np.unpackbits(self.aligned_bits(), axis=1, count=self.n).view(bool)

    def aligned_set(self, j: int) -> np.ndarray:
        """``A_j = {i : <g_j, x_i> > 0 and s_j y_i > 0}`` as sorted indices."""
        bits = self.aligned_bits()[j]
        return np.flatnonzero(np.unpackbits(bits, count=self.n))

    def active_sets(self) -> list[list[int]]:
        return [np.flatnonzero(row).tolist() for row in self.active_matrix()]

    def covered(self) -> np.ndarray:
        """Samples in some aligned set: exactly the ones the limit fits (theory §5)."""
        return (
            np.unpackbits(np.bitwise_or.reduce(self.aligned_bits(), axis=0), count=self.n).view(bool) if self.m else np.zeros(self.n, bool)
        )

    # -- files (limitproc.io.problems) ----------------------------------------------------------
    @classmethod
    def from_file(cls, path, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None) -> Problem:
        """Read a problem file: ``.json`` (problem or raw data) or ``.npz`` (compact, or raw data ``X, y, W, a``)."""
        from .io.problems import read_problem

        return read_problem(cls, path, allow_sign_flip=allow_sign_flip, ortho_tol=ortho_tol, balance_tol=balance_tol)

    @classmethod
    def from_dict(cls, data, allow_sign_flip: bool = False) -> Problem:
        """The JSON problem format: ``labels``, ``signs``, ``active``, optional ``sq_norms``, ``loss``."""
        from .io.problems import problem_from_dict

        return problem_from_dict(cls, data, allow_sign_flip=allow_sign_flip)

    @classmethod
    def from_raw(cls, data, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None) -> Problem:
        from .io.rawdata import problem_from_raw

        return problem_from_raw(cls, data, allow_sign_flip=allow_sign_flip, ortho_tol=ortho_tol, balance_tol=balance_tol)

    def to_dict(self) -> dict:
        from .io.problems import problem_to_dict

        return problem_to_dict(self)

    def to_file(self, path) -> None:
        """Write ``.json`` or ``.npz`` (by extension), atomically."""
        from .io.problems import write_problem

        write_problem(self, path)

    def __repr__(self) -> str:
        scaling = "" if self.scaling == "standard" else f", scaling={self.scaling!r}"
        return f"Problem(n={self.n}, m={self.m}, loss={self.loss!r}{scaling})"


def _signs_array(signs) -> np.ndarray:
    values = list(signs) if not isinstance(signs, np.ndarray) else signs.tolist()
    for j, s in enumerate(values):
        if isinstance(s, bool) or s not in (1, -1) or isinstance(s, FloatLiteral):
            raise InputError(f"signs[{j}]", f"must be +1 or -1, got {s!r}")
    return np.asarray(values, dtype=np.int8)


def _pack_active(active, n: int, m: int) -> np.ndarray:
    if isinstance(active, np.ndarray) and active.ndim == 2:
        if active.shape != (m, n):
            raise InputError("active", f"expected shape ({m}, {n}), got {active.shape}")
        return np.packbits(active.astype(bool), axis=1)
    if len(active) != m:
        raise InputError("active", f"has {len(active)} sets but there are {m} signs")
    pattern = np.zeros((m, n), dtype=bool)
    for j, indices in enumerate(active):
        if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
            raise InputError(f"active[{j}]", "must be a list of sample indices")
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or isinstance(i, FloatLiteral):
                raise InputError(f"active[{j}]", f"index {i!r} is not an integer")
            if not 0 <= i < n:
                raise InputError(f"active[{j}]", f"index {i} out of range for n = {n}")
            pattern[j, i] = True
    return np.packbits(pattern, axis=1)


#: the sign drawn as 0 or 1
_SIGNS = np.array([-1, 1], dtype=np.int8)


def draw_magnitudes(rng: np.random.Generator, m: int, q: np.ndarray) -> np.ndarray:
    """Magnitudes ``|<g_j, x_i>|`` of isotropic Gaussian ``g_j`` on orthogonal inputs of squared norms ``q``: ``|N(0, q_i)|``."""
    return np.abs(rng.standard_normal((m, len(q)))) * np.sqrt(q)[None, :]


def draw_initialisation(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform signs ``s_j`` and an i.i.d. Bernoulli(1/2) pattern as packed bits (theory §7), from ``rng``.

    For orthogonal data and isotropic Gaussian ``g_j`` the signs of ``<g_j, x_i>`` are exactly fair coins.
    """
    signs = _SIGNS[rng.integers(0, 2, size=m)]  # 1 -> 1, 0 -> -1
    bits = rng.integers(0, 256, size=(m, (n + 7) // 8), dtype=np.uint8)
    if n % 8 and m:
        bits[:, -1] &= np.uint8((0xFF << (8 - n % 8)) & 0xFF)  # no bits past sample n - 1
    return signs, bits


def generate(
    n: int,
    m: int,
    labels: str = "pm1",
    norms: str = "unit",
    seed: int = 0,
    decimals: int = 3,
    loss: str = "half-mean",
    magnitudes: bool = False,
) -> Problem:
    """A random problem as in theory §7: uniform signs, an i.i.d. Bernoulli(1/2) activation pattern.

    The pattern is drawn as random bits: for orthogonal data and isotropic Gaussian ``g_j`` the signs
    of ``<g_j, x_i>`` are exactly i.i.d. fair coins. ``labels``: ``pm1`` (uniform ±1), ``gauss``
    (standard normal) or ``uniform`` (on [-1, 1]); ``norms``: ``unit`` or ``uniform`` (squared norms
    uniform on [1/2, 3/2]). Non-integer values are rounded to ``decimals`` decimals and stored
    exactly; a label that rounds to 0 is drawn again. The same arguments give the same problem.

    ``magnitudes=True`` also draws the initial magnitudes ``|<g_j, x_i>|`` from the same seed (after
    the rest, so the problem is the same as without them): for a Gaussian ``g_j`` they are
    ``|z| ||x_i||``, independent of the pattern's signs, and ``a_magnitudes`` are balanced
    (``||w_j||``, ``w_j`` in the data span). The problem then describes a whole initialisation.
    """
    if n < 1:
        raise InputError("n", f"must be at least 1, got {n}")
    if m < 0:
        raise InputError("m", f"must be non-negative, got {m}")
    if not 0 <= decimals <= 15:
        raise InputError("decimals", f"must be between 0 and 15, got {decimals}")
    check_at_most(n, "problem_samples", "n")
    check_at_most(n * max(m, 1), "problem_size", "n", "n * m =")
    check_loss(loss)
    rng = np.random.default_rng(seed)
    signs, bits = draw_initialisation(rng, n, m)
    scale = 10**decimals
    if labels == "pm1":
        y = RationalArray(np.where(rng.integers(0, 2, size=n) == 1, 1, -1).astype(np.int64), np.ones(n, np.int64))
    elif labels in ("gauss", "uniform"):
        draw = (lambda k: rng.standard_normal(k)) if labels == "gauss" else (lambda k: rng.uniform(-1.0, 1.0, k))
        num = np.rint(draw(n) * scale).astype(np.int64)
        while (zero := np.flatnonzero(num == 0)).size:
            num[zero] = np.rint(draw(zero.size) * scale).astype(np.int64)
        y = RationalArray(num, np.full(n, scale, np.int64)).reduced()
    else:
        raise InputError("labels", f"unknown label law {labels!r} (choose pm1, gauss, uniform)")
    if norms == "unit":
        q = RationalArray(np.ones(n, np.int64), np.ones(n, np.int64))
    elif norms == "uniform":
        num = np.rint(rng.uniform(0.5, 1.5, n) * scale).astype(np.int64)
        q = RationalArray(np.maximum(num, 1), np.full(n, scale, np.int64)).reduced()
    else:
        raise InputError("norms", f"unknown norm law {norms!r} (choose unit, uniform)")
    init = {}
    if magnitudes:
        q_float = q.floats()
        init["magnitudes"] = draw_magnitudes(rng, m, q_float)
        init["a_magnitudes"] = np.sqrt(Problem.implied_w_sq_norms(init["magnitudes"], q_float))
    return Problem.from_arrays(y.num, y.den, q.num, q.den, signs, bits, loss=loss, **init)
