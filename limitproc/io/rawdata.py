"""Raw data in: inputs ``X``, an initialisation ``(W, a)`` and labels, reduced to a :class:`Problem`.

**JSON** (:func:`problem_from_raw`). Integer and string entries are exact, and orthogonality is
then checked exactly. Entries written as JSON decimals (``0.7071067811865476``) are read as exactly
the decimal written, but the data they describe is only approximately orthogonal, so orthogonality
uses the relative tolerance ``ortho_tol`` and the balance check ``|a_j| >= ||w_j||`` the relative
tolerance ``balance_tol`` there (both 1e-9 by default).

**Arrays** (:func:`problem_from_raw_arrays`, and ``.npz`` files with ``X`` (n×d), ``y`` (n),
``W`` (m×d), ``a`` (m) of any float or integer dtype, :func:`problem_from_raw_npz`): real sizes,
checked and reduced with numpy in float64. These are **approximate inputs to an exact engine**:
the squared norms ``q_i = ||x_i||²`` and the labels become the shortest decimals that read back as
the same number in the data's dtype (``0.99999994`` for a float32 unit row), and the engine is
exact for those; the magnitudes ``|<w_j, x_i>|`` and ``|a_j|`` are floats, as in any problem.
The tolerances follow the dtype (``eps`` its machine epsilon, ``tiny`` its smallest subnormal):

* orthogonality, ``|<x_i, x_k>| <= ortho_tol·||x_i||·||x_k||`` over the whole Gram matrix, in blocks
  of rows, its upper triangle only (:func:`check_orthogonal`): default ``sqrt(eps)`` (3.5e-4 for
  float32, 1.5e-8 for float64);
* balance, ``|a_j| >= (1 − balance_tol)·||w_j||``: default ``d·(eps + tiny/||w_j||²)`` per neuron,
  a bound on the rounding error of ``||w_j||`` computed in the data's dtype (``d`` products and
  additions, each off by ``eps`` relative or, once the squares are subnormal, by ``tiny``). So a
  float32 balanced initialisation ``a_j = ±||w_j||`` is accepted even at scale 1e-20, where the
  squares are subnormal in float32 and ``||w_j||`` loses percents; one with ``|a_j|`` genuinely
  below ``||w_j||`` is refused. A neuron that passes is balanced up to rounding, so its
  ``a_magnitudes`` entry is lifted to the ``||w_j||`` its magnitudes imply when that is larger
  (by at most ``balance_tol``), and the problem's own float64 balance check agrees.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..exact import parse_rational
from .files import FloatLiteral, check_keys, json_type, read_json, read_npz_members

__all__ = ["GRAM_BLOCK", "RawData", "check_orthogonal", "problem_from_raw", "problem_from_raw_arrays", "problem_from_raw_npz", "read_raw"]

#: rows of the Gram matrix computed at once (memory: GRAM_BLOCK × n float64)
GRAM_BLOCK = 2048
#: float32 products are summed in float32 over at most this many coordinates, then in float64
GRAM_CHUNK_MAX = 1024


def _matrix(value, field: str, shape=None) -> tuple[list[list[Fraction]], bool]:
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise InputError(field, "must be a non-empty list of rows")
    width = len(value[0])
    rows, approximate = [], False
    for i, row in enumerate(value):
        if len(row) != width:
            raise InputError(f"{field}[{i}]", f"has {len(row)} entries, row 0 has {width}")
        rows.append([parse_rational(x, f"{field}[{i}][{k}]") for k, x in enumerate(row)])
        approximate |= any(isinstance(x, FloatLiteral) for x in row)
    if shape is not None and width != shape:
        raise InputError(field, f"rows have {width} entries but the inputs have dimension {shape}")
    return rows, approximate


def _dot(u, v) -> Fraction:
    return sum((a * b for a, b in zip(u, v)), Fraction(0))


def _check_tolerance(value, field: str) -> None:
    if value is not None and not 0 <= value < 1:
        raise InputError(field, f"must be in [0, 1), got {value}")


def problem_from_raw(cls, data: dict, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None):
    _check_tolerance(ortho_tol, "ortho_tol")
    _check_tolerance(balance_tol, "balance_tol")
    ortho_tol = 1e-9 if ortho_tol is None else ortho_tol
    balance_tol = 1e-9 if balance_tol is None else balance_tol
    if not isinstance(data, dict):
        raise InputError("problem", f"expected a JSON object, got {json_type(data)}")
    check_keys(data, {"inputs", "init", "labels", "loss"})
    X, approx_x = _matrix(data.get("inputs"), "inputs")
    init = data.get("init")
    if not isinstance(init, dict) or "W" not in init or "a" not in init:
        raise InputError("init", 'must be an object with "W" (m x d) and "a" (m)')
    W, approx_w = _matrix(init["W"], "init.W", shape=len(X[0]))
    if not isinstance(init["a"], list):
        raise InputError("init.a", "must be a list")
    a = [parse_rational(v, f"init.a[{j}]") for j, v in enumerate(init["a"])]
    approx_a = any(isinstance(v, FloatLiteral) for v in init["a"])
    if len(a) != len(W):
        raise InputError("init.a", f"has {len(a)} entries but init.W has {len(W)} rows")
    labels = data.get("labels")
    if not isinstance(labels, list) or len(labels) != len(X):
        raise InputError("labels", f"must be a list of {len(X)} labels, one per input")
    n = len(X)
    q = [_dot(x, x) for x in X]
    for i, qi in enumerate(q):
        if qi == 0:
            raise InputError(f"inputs[{i}]", "zero input")
    for i in range(n):
        for k in range(i + 1, n):
            d = _dot(X[i], X[k])
            if approx_x:
                bad = d * d > Fraction(ortho_tol) ** 2 * q[i] * q[k]
                how = f"beyond the relative tolerance {ortho_tol:g}"
            else:
                bad = d != 0
                how = "exactly"
            if bad:
                raise InputError("inputs", f"rows {i} and {k} are not orthogonal ({how}): <x_{i}, x_{k}> = {_decimal(d)}")
    signs = []
    for j, (w, aj) in enumerate(zip(W, a)):
        if aj == 0:
            raise InputError(f"init.a[{j}]", "zero output weight has no sign")
        signs.append(1 if aj > 0 else -1)
        w2 = _dot(w, w)
        slack = (1 - balance_tol) ** 2 if (approx_w or approx_a) else 1
        if aj * aj < w2 * Fraction(slack):
            _unbalanced(f"init.a[{j}]", _decimal(abs(aj)), f"sqrt({_decimal(w2)})", allow_sign_flip, balance_tol if slack != 1 else None)
    pre = [[_dot(w, x) for x in X] for w in W]
    active = np.array([[p > 0 for p in row] for row in pre], dtype=bool).reshape(len(W), n)
    magnitudes = np.array([[_float(abs(p), "init.W") for p in row] for row in pre], dtype=np.float64).reshape(len(W), n)
    return cls(
        labels=labels,
        signs=signs,
        active=active,
        sq_norms=q,
        loss=data.get("loss", "half-mean"),
        magnitudes=np.where(magnitudes > 0, magnitudes, np.finfo(float).tiny),
        a_magnitudes=np.array([_float(abs(v), "init.a") for v in a]),
        allow_sign_flip=allow_sign_flip,
    )


def _float(q: Fraction, field: str) -> float:
    """A magnitude for the float paths (simulator, tie resolution), which need normal floats."""
    try:
        value = float(q)
    except OverflowError:
        value = float("inf")
    if value == float("inf") or 0 < value < np.finfo(np.float64).tiny:
        raise InputError(field, f"the initialisation has a magnitude {_decimal(q)} outside the range of float64")
    return value


def _decimal(q: Fraction) -> str:
    """``q`` to 3 significant digits, at any size (``float`` overflows past 1e308)."""
    if q == 0:
        return "0"
    sign, q = ("-" if q < 0 else ""), abs(q)
    exponent = int((q.numerator.bit_length() - q.denominator.bit_length()) * 0.30103)
    scaled = q / Fraction(10) ** exponent
    while scaled >= 10:
        scaled, exponent = scaled / 10, exponent + 1
    while scaled < 1:
        scaled, exponent = scaled * 10, exponent - 1
    return f"{sign}{float(scaled):.3g}e{exponent:+d}" if abs(exponent) > 300 else f"{sign}{float(q):.3g}"


def _unbalanced(field: str, a: str, w: str, allow_sign_flip: bool, tol: float | None = None) -> None:
    beyond = "" if tol is None else f" beyond `balance_tol` = {tol:.3g}"
    message = f"|a_j| = {a} < ||w_j|| = {w}{beyond}: the sign of a_j can flip and the limit is not established"
    if not allow_sign_flip:
        raise InputError(field, message + " (set `allow_sign_flip` to force)")
    warnings.warn(f"{field}: {message}", stacklevel=3)


RAW_ARRAYS = ("X", "y", "W", "a")


def _raw_npz(path) -> tuple[dict, str]:
    """The arrays ``X``, ``y``, ``W``, ``a`` of a raw ``.npz`` file, and its ``loss`` (default ``half-mean``)."""
    arrays = read_npz_members(path, (*RAW_ARRAYS, "loss"))
    for key in RAW_ARRAYS:
        if key not in arrays:
            raise InputError(key, f"missing from the raw .npz file (it needs {', '.join(RAW_ARRAYS)})")
    return arrays, str(arrays.pop("loss")) if "loss" in arrays else "half-mean"


def problem_from_raw_npz(cls, path, **options):
    """Raw data from a ``.npz`` file holding ``X``, ``y``, ``W``, ``a`` (see :func:`problem_from_raw_arrays`)."""
    arrays, loss = _raw_npz(path)
    return problem_from_raw_arrays(cls, **arrays, loss=loss, **options)


@dataclass(frozen=True)
class RawData:
    """Raw data in float64, not reduced to a problem (the general simulator's input, whatever the
    inputs' angles): ``inputs`` (n, d), ``W`` (m, d), ``a`` (m,), ``labels`` (n,), checked on
    construction; ``loss`` names a convention, checked where it is used (a :class:`Problem`, the simulator)."""

    inputs: np.ndarray
    W: np.ndarray
    a: np.ndarray
    labels: np.ndarray
    loss: str = "half-mean"

    def __post_init__(self):
        X = _finite(self.inputs, "inputs", 2)
        n, d = X.shape
        W = _finite(self.W, "init.W", 2)
        if W.shape[1] != d:
            raise InputError("init.W", f"rows have {W.shape[1]} entries but the inputs have dimension {d}")
        a = _finite(self.a, "init.a", 1)
        if a.shape != (W.shape[0],):
            raise InputError("init.a", f"has {a.size} entries but init.W has {W.shape[0]} rows")
        if np.any(a == 0):
            raise InputError(f"init.a[{int(np.flatnonzero(a == 0)[0])}]", "zero output weight has no sign")
        y = _finite(self.labels, "labels", 1)
        if y.shape != (n,):
            raise InputError("labels", f"must be {n} labels, one per input, got {y.size}")
        zero = np.flatnonzero(~X.any(axis=1))
        if zero.size:
            raise InputError(f"inputs[{int(zero[0])}]", "zero input")
        rank = int(np.linalg.matrix_rank(X))
        if rank < n:
            raise InputError("inputs", f"rank {rank} < n = {n}: the inputs are linearly dependent (the general path needs rank n)")
        if not isinstance(self.loss, str):
            raise InputError("loss", f"must be a string, got {type(self.loss).__name__}")
        for name, value in (("inputs", X), ("W", W), ("a", a), ("labels", y)):
            object.__setattr__(self, name, value)

    @property
    def gram(self) -> np.ndarray:
        return self.inputs @ self.inputs.T

    @property
    def preactivations(self) -> np.ndarray:
        """``(m, n)``: ``<w_j, x_i>`` of the initialisation."""
        return self.W @ self.inputs.T


def _finite(value, name: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        array = _parsed(value, name)  # exact strings ("1/3") as solve reads them, rounded to float64
    if array.dtype != np.float64:
        raise InputError(name, "must be an array of numbers")
    if array.ndim != ndim or array.size == 0:
        raise InputError(name, f"must be a non-empty {ndim}-d array, got shape {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        raise InputError(name, f"non-finite entry at {list(map(int, bad[0]))}")
    return array


def read_raw(path) -> RawData:
    """Raw data from ``.npz`` (arrays ``X``, ``y``, ``W``, ``a``, optional ``loss``, as for
    :func:`problem_from_raw_npz`) or raw-data JSON (``{"inputs", "init": {"W", "a"}, "labels"}``), read as float64."""
    path = Path(path)
    if path.suffix == ".npz":
        arrays, loss = _raw_npz(path)
        return RawData(arrays["X"], arrays["W"], arrays["a"], arrays["y"], loss)
    data = read_json(path)
    init = data.get("init") if isinstance(data, dict) else None
    if not isinstance(data, dict) or "inputs" not in data or not isinstance(init, dict) or "W" not in init or "a" not in init:
        raise InputError("problem", 'raw data needs "inputs", "init": {"W", "a"} and "labels"')
    return RawData(data["inputs"], init["W"], init["a"], data.get("labels"), data.get("loss", "half-mean"))


def _parsed(value, name: str) -> np.ndarray:
    """Nested lists of numbers or exact strings, each in float64 (an object array if they are not)."""

    def number(v, at: str) -> float:
        try:
            return float(parse_rational(v, at))
        except OverflowError:
            return math.inf

    if not isinstance(value, list):
        return np.asarray([value], dtype=object)
    rows = [
        [number(v, f"{name}[{i}][{k}]") for k, v in enumerate(row)] if isinstance(row, list) else number(row, f"{name}[{i}]")
        for i, row in enumerate(value)
    ]
    try:
        return np.asarray(rows, dtype=float)
    except ValueError:  # ragged rows
        return np.asarray([0], dtype=object)


def _array(value, field: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise InputError(field, f"expected a float or integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim or 0 in arr.shape:
        raise InputError(field, f"expected a non-empty {ndim}-d array, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        where = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise InputError(field, f"non-finite entry at {where}")
    return arr


def _eps_tiny(dtype) -> tuple[float, float]:
    """Machine epsilon and smallest subnormal of a float dtype (integers: those of float64)."""
    info = np.finfo(dtype if np.dtype(dtype).kind == "f" else np.float64)
    return float(info.eps), float(info.smallest_subnormal)


def _shortest(values: np.ndarray, dtype) -> list[str]:
    """The shortest decimal that reads back as each value in ``dtype`` (exact for integer dtypes)."""
    if np.dtype(dtype).kind != "f":
        return [str(int(v)) for v in values]
    return [np.format_float_positional(v, unique=True, trim="-") for v in values.astype(dtype)]


def _float32_chunk(X: np.ndarray, tol: float) -> int | None:
    """How many float32 products may be summed in float32 for the Gram check at ``tol``, or None (use float64).

    Only data held exactly in float32 qualify. Any order of summing ``K`` float32 products is off by
    at most ``γ_K Σ|x_ij x_kj| <= γ_K ||x_i|| ||x_k||`` (``γ_K = K u/(1 − K u)``, ``u = 2^-24``; Higham,
    Accuracy and Stability, §3.1), which must stay well below ``tol``.
    """
    if X.dtype not in (np.float16, np.float32):
        return None
    most = int(float(tol) / 4 * 2**24)  # K u <= tol/4
    return min(GRAM_CHUNK_MAX, 1 << (most.bit_length() - 1)) if most >= 128 else None


def check_orthogonal(X: np.ndarray, tol: float, X64: np.ndarray | None = None, q: np.ndarray | None = None, float64: bool = False) -> None:
    """Refuse (:class:`InputError` on ``X``) two rows with ``|<x_i, x_k>| > tol·||x_i||·||x_k||``.

    The Gram matrix goes in blocks of :data:`GRAM_BLOCK` rows against the rows after them, and stops
    at the first block with a violation (its worst entry is reported). In float64 (``float64``, or
    data not held in float32, or a ``tol`` too tight for float32) the products are exact for float32
    data and the sums off by ``d·2^-53`` relative at most: far below any ``tol``. For float32 data at a
    dtype-sized ``tol`` the products run in float32, the data's own dtype, at twice the speed: summed
    in float32 over chunks of ``K`` coordinates (:func:`_float32_chunk`) and in float64 across chunks,
    each entry is within ``β = γ_K + d·2^-149/(||x_i|| ||x_k||)`` (the second term: float32 underflow)
    of ``<x_i, x_k>/(||x_i|| ||x_k||)``. A block where some entry is not certainly within ``tol − β``
    (or is not finite: float32 overflow) is computed again in float64 and judged there, so the
    verdict is the float64 one.
    """
    n, d = X.shape
    X64 = X.astype(np.float64, copy=False) if X64 is None else X64
    q = np.einsum("ij,ij->i", X64, X64) if q is None else q
    norms = np.sqrt(q)
    chunk = None if float64 else _float32_chunk(X, tol)
    if chunk is not None:
        pieces = [np.ascontiguousarray(X[:, c : c + chunk], dtype=np.float32) for c in range(0, d, chunk)]
        gamma = chunk * 2.0**-24 / (1 - chunk * 2.0**-24)
    # the Gram matrix is symmetric: each block of rows against itself and the rows after it
    for start in range(0, n, GRAM_BLOCK):
        rows = slice(start, start + GRAM_BLOCK)
        scale = norms[rows, None] * norms[None, start:]
        if chunk is not None:
            block = np.zeros((min(GRAM_BLOCK, n - start), n - start))
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # inf or nan: judged in float64 below
                for piece in pieces:
                    block += piece[rows] @ piece[start:].T
                block /= scale
                _zero_diagonal(block)
                beta = gamma * (1 + 1e-6) + d * 2.0**-149 / scale
                if (np.abs(block) <= tol - beta).all():
                    continue
        block = X64[rows] @ X64[start:].T
        block /= scale
        _zero_diagonal(block)
        worst = np.unravel_index(np.argmax(np.abs(block)), block.shape)
        if abs(block[worst]) > tol:
            i, k = start + int(worst[0]), start + int(worst[1])
            raise InputError(
                "X",
                f"rows {i} and {k} are not orthogonal: <x_i, x_k>/(||x_i|| ||x_k||) = {block[worst]:.3g} beyond `ortho_tol` = {tol:.3g}",
            )


def _zero_diagonal(block: np.ndarray) -> None:
    diagonal = np.arange(block.shape[0])
    block[diagonal, diagonal] = 0.0


def problem_from_raw_arrays(
    cls,
    X,
    y,
    W,
    a,
    *,
    loss: str = "half-mean",
    allow_sign_flip: bool = False,
    ortho_tol: float | None = None,
    balance_tol: float | None = None,
):
    """Reduce raw arrays to a :class:`Problem` with numpy: ``X`` (n×d) pairwise orthogonal rows, ``y`` (n)
    non-zero labels, ``W`` (m×d) and ``a`` (m) the initialisation. Tolerances: see the module."""
    _check_tolerance(ortho_tol, "ortho_tol")
    _check_tolerance(balance_tol, "balance_tol")
    X, y, W, a = _array(X, "X", 2), _array(y, "y", 1), _array(W, "W", 2), _array(a, "a", 1)
    n, d = X.shape
    if y.shape != (n,):
        raise InputError("y", f"has {y.shape[0]} labels but X has {n} rows")
    if W.shape[1] != d:
        raise InputError("W", f"rows have {W.shape[1]} entries but the inputs X have dimension {d}")
    if a.shape != (W.shape[0],):
        raise InputError("a", f"has {a.shape[0]} entries but W has {W.shape[0]} rows")
    eps, tiny = _eps_tiny(X.dtype)
    X64 = X.astype(np.float64, copy=False)
    q = np.einsum("ij,ij->i", X64, X64)
    if (q == 0).any():
        raise InputError("X", f"row {int(np.flatnonzero(q == 0)[0])} is zero")
    check_orthogonal(X, eps**0.5 if ortho_tol is None else ortho_tol, X64, q)
    if (y == 0).any():
        raise InputError("y", f"label {int(np.flatnonzero(y == 0)[0])} is zero")
    if (a == 0).any():
        raise InputError("a", f"entry {int(np.flatnonzero(a == 0)[0])}: zero output weight has no sign")
    W64, a64 = W.astype(np.float64, copy=False), a.astype(np.float64, copy=False)
    w2 = np.einsum("ij,ij->i", W64, W64)
    w_eps, w_tiny = _eps_tiny(W.dtype)
    with np.errstate(divide="ignore"):
        slack = d * (w_eps + w_tiny / w2) if balance_tol is None else np.full_like(w2, balance_tol)
    blind = np.flatnonzero(slack >= 1)
    if blind.size:
        warnings.warn(
            f"a: the balance of neurons {blind[:5].tolist()} cannot be checked: ||w_j|| is below the precision of {W.dtype}", stacklevel=3
        )
    short = np.flatnonzero(np.abs(a64) < (1 - np.minimum(slack, 1.0)) * np.sqrt(w2))
    for j in short:
        _unbalanced(f"a[{j}]", f"{abs(a64[j]):.9g}", f"{float(np.sqrt(w2[j])):.9g}", allow_sign_flip, float(slack[j]))
    pre = W64 @ X64.T
    sq_norms = _shortest(q, X.dtype)
    magnitudes = np.where(pre != 0, np.abs(pre), np.finfo(float).tiny)
    # a neuron that passed the balance check is balanced up to rounding: its |a_j| is lifted to the
    # ||w_j|| its magnitudes imply (as Problem computes it), so that Problem's float64 check agrees
    implied = np.sqrt(cls.implied_w_sq_norms(magnitudes, np.array([float(v) for v in sq_norms])))
    balanced = np.ones(len(a64), bool)
    balanced[short] = False
    a_magnitudes = np.where(balanced, np.maximum(np.abs(a64), implied), np.abs(a64))
    return cls(
        labels=_shortest(y, y.dtype),
        signs=np.where(a64 > 0, 1, -1).tolist(),
        active=pre > 0,
        sq_norms=sq_norms,
        loss=loss,
        magnitudes=magnitudes,
        a_magnitudes=a_magnitudes,
        allow_sign_flip=allow_sign_flip,
    )
