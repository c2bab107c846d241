"""Problem files: the JSON format (problem or raw data) and the compact ``.npz`` format.

The readers take the class to build (``Problem``), so that :mod:`limitproc.problem` can delegate
to them without this module importing it back.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .files import atomic_write, check_keys, json_type, read_json, read_npz_members

__all__ = [
    "is_raw_npz",
    "problem_from_dict",
    "problem_from_npz",
    "problem_to_dict",
    "read_npz",
    "read_problem",
    "write_problem",
]

if TYPE_CHECKING:
    from ..problem import Problem


def read_problem(cls, path, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None) -> Problem:
    """Read a problem file: ``.json`` (problem or raw data) or ``.npz`` (compact, or raw data ``X, y, W, a``)."""
    path = Path(path)
    raw = {"allow_sign_flip": allow_sign_flip, "ortho_tol": ortho_tol, "balance_tol": balance_tol}
    if path.suffix == ".npz":
        if is_raw_npz(path):
            from .rawdata import problem_from_raw_npz

            return problem_from_raw_npz(cls, path, **raw)
        return problem_from_npz(cls, path, allow_sign_flip=allow_sign_flip)
    if path.suffix != ".json":
        raise InputError("problem", f"unknown file extension {path.suffix!r} (use .json or .npz)")
    data = read_json(path, "problem")
    if isinstance(data, dict) and "inputs" in data:
        return cls.from_raw(data, **raw)
    return problem_from_dict(cls, data, allow_sign_flip=allow_sign_flip)


def problem_from_dict(cls, data, allow_sign_flip: bool = False) -> Problem:
    """The JSON problem format: ``labels``, ``signs``, ``active``, optional ``sq_norms``, ``loss``."""
    if not isinstance(data, dict):
        raise InputError("problem", "expected a JSON object")
    known = {"labels", "signs", "active", "sq_norms", "loss", "magnitudes", "a_magnitudes", "scaling"}
    check_keys(data, known)
    for key in ("labels", "signs", "active"):
        if key not in data:
            raise InputError(key, "missing")
    for key in ("labels", "signs", "active", "sq_norms", "magnitudes", "a_magnitudes"):
        if data.get(key) is not None and not isinstance(data[key], list):
            raise InputError(key, f"must be a list, got {json_type(data[key])}")
    if not isinstance(data.get("loss", ""), str):
        raise InputError("loss", f"must be a string, got {json_type(data['loss'])}")
    return cls(
        labels=data["labels"],
        signs=data["signs"],
        active=data["active"],
        sq_norms=data.get("sq_norms"),
        loss=data.get("loss", "half-mean"),
        magnitudes=_float_matrix(data.get("magnitudes"), "magnitudes"),
        a_magnitudes=_float_matrix(data.get("a_magnitudes"), "a_magnitudes"),
        scaling=data.get("scaling", "standard"),
        allow_sign_flip=allow_sign_flip,
    )


def is_raw_npz(path) -> bool:
    """A ``.npz`` of raw data has one of ``X, y, W, a`` (the compact format has none of them)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return bool({"X", "y", "W", "a"} & set(npz.files))
    except Exception:  # not a readable archive: read_npz says what is wrong
        return False


# member -> (dtype kinds accepted, number of dimensions); magnitudes may be 1-d or 2-d
NPZ_MEMBERS = {
    "labels_num": ("i", (1,)),
    "labels_den": ("i", (1,)),
    "sq_norms_num": ("i", (1,)),
    "sq_norms_den": ("i", (1,)),
    "signs": ("i", (1,)),
    "active": ("u", (2,)),
    "loss": ("U", (0,)),
    "magnitudes": ("f", (1, 2)),
    "a_magnitudes": ("f", (1,)),
    "scaling": ("U", (0,)),
}
NPZ_OPTIONAL = frozenset({"magnitudes", "a_magnitudes", "scaling"})


def read_npz(path) -> dict[str, np.ndarray]:
    """Every member of a problem ``.npz``, read in full and checked for dtype and shape."""
    arrays = read_npz_members(path, NPZ_MEMBERS)
    for key, (kinds, ndims) in NPZ_MEMBERS.items():
        if key not in arrays:
            if key not in NPZ_OPTIONAL:
                raise InputError(key, "missing from the .npz file")
            continue
        arr = arrays[key]
        if arr.dtype.kind not in kinds or arr.ndim not in ndims:
            raise InputError(
                key, f"expected a {'/'.join(map(str, ndims))}-d {_KIND_NAMES[kinds]} array, got {arr.dtype} of shape {arr.shape}"
            )
    return arrays


_KIND_NAMES = {"i": "integer", "u": "uint8", "U": "string", "f": "float"}


def problem_from_npz(cls, path, allow_sign_flip: bool = False) -> Problem:
    arrays = read_npz(path)
    if arrays["labels_num"].shape != arrays["labels_den"].shape:
        raise InputError("labels_den", "length differs from labels_num")
    if arrays["sq_norms_num"].shape != arrays["sq_norms_den"].shape:
        raise InputError("sq_norms_den", "length differs from sq_norms_num")
    init = {key: _finite(arrays[key], key) for key in ("magnitudes", "a_magnitudes") if key in arrays}
    if "scaling" in arrays:
        init["scaling"] = str(arrays["scaling"])
    return cls.from_arrays(
        arrays["labels_num"].astype(np.int64, copy=False),
        arrays["labels_den"].astype(np.int64, copy=False),
        arrays["sq_norms_num"].astype(np.int64, copy=False),
        arrays["sq_norms_den"].astype(np.int64, copy=False),
        arrays["signs"].astype(np.int64, copy=False),
        arrays["active"].astype(np.uint8, copy=False),
        loss=str(arrays["loss"]),
        allow_sign_flip=allow_sign_flip,
        **init,
    )


def problem_to_dict(problem: Problem) -> dict:
    data = {
        "labels": [_json_number(q) for q in problem.labels],
        "sq_norms": [_json_number(q) for q in problem.sq_norms],
        "signs": problem.signs.tolist(),
        "active": problem.active_sets(),
        "loss": problem.loss,
    }
    if problem.magnitudes is not None:
        data["magnitudes"] = problem.magnitudes.tolist()
    if problem.a_magnitudes is not None:
        data["a_magnitudes"] = problem.a_magnitudes.tolist()
    if problem.scaling != "standard":
        data["scaling"] = problem.scaling
    return data


def write_problem(problem: Problem, path) -> None:
    """Write ``.json`` or ``.npz`` (by extension), atomically."""
    path = Path(path)
    if path.suffix == ".json":
        atomic_write(path, json.dumps(problem_to_dict(problem)) + "\n")
    elif path.suffix == ".npz":
        arrays = {
            "labels_num": problem.y.num,
            "labels_den": problem.y.den,
            "sq_norms_num": problem.q.num,
            "sq_norms_den": problem.q.den,
        }
        for key, arr in arrays.items():
            if arr.dtype == object:
                raise InputError(key, "too large for int64; use the .json format")
        buf = io.BytesIO()
        extra = {k: v for k, v in (("magnitudes", problem.magnitudes), ("a_magnitudes", problem.a_magnitudes)) if v is not None}
        if problem.scaling != "standard":
            extra["scaling"] = np.array(problem.scaling)
        np.savez(buf, signs=problem.signs, active=problem.packed_active, loss=np.array(problem.loss), **arrays, **extra)
        atomic_write(path, buf.getvalue())
    else:
        raise InputError("output", f"unknown file extension {path.suffix!r} (use .json or .npz)")


def _float_matrix(value, field):
    if value is None:
        return None
    try:
        rows = value if value and isinstance(value[0], list) else [value]
        if any(not isinstance(row, list) or isinstance(x, (bool, str)) for row in rows for x in row):
            raise TypeError
        matrix = np.asarray([[float(x) for x in row] for row in rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(field, "must be a list of numbers or of lists of numbers") from None
    except OverflowError:
        raise InputError(field, "entries must be finite floats (at most about 1.8e308)") from None
    return _finite(matrix if rows is value else matrix[0], field)


def _finite(values: np.ndarray, field: str) -> np.ndarray:
    """Float magnitudes the integrator can use: finite, and normal floats when positive."""
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(field, "entries must be finite")
    if np.any((values > 0) & (values < np.finfo(np.float64).tiny)):
        raise InputError(field, f"entries must not be subnormal floats (below {np.finfo(np.float64).tiny:.3g})")
    return values


def _json_number(q: Fraction):
    return q.numerator if q.denominator == 1 else f"{q.numerator}/{q.denominator}"
