"""Raw data in: inputs ``X``, an initialisation ``(W, a)`` and labels, reduced to a :class:`Problem`.

Integer and string entries are exact, and orthogonality is then checked exactly. Entries written
as JSON decimals (``0.7071067811865476``) are read as exactly the decimal written, but the data
they describe is only approximately orthogonal, so orthogonality and the balance check
``|a_j| >= ||w_j||`` use the relative tolerance ``ortho_tol`` there.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..exact import parse_rational
from .files import FloatLiteral
from .problems import check_keys, json_type

__all__ = ["problem_from_raw"]


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


def problem_from_raw(cls, data: dict, allow_sign_flip: bool = False, ortho_tol: float = 1e-9):
    if not 0 <= ortho_tol < 1:
        raise InputError("ortho_tol", f"must be in [0, 1), got {ortho_tol}")
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
        slack = (1 - ortho_tol) ** 2 if (approx_w or approx_a) else 1
        if aj * aj < w2 * Fraction(slack):
            message = (
                f"|a_j| = {_decimal(abs(aj))} < ||w_j|| = sqrt({_decimal(w2)}): the sign of a_j can flip and the limit is not established"
            )
            if not allow_sign_flip:
                raise InputError(f"init.a[{j}]", message + " (set `allow_sign_flip` to force)")
            warnings.warn(f"init.a[{j}]: {message}", stacklevel=2)
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
