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
from .files import atomic_write, read_json

__all__ = ["problem_from_dict", "problem_from_npz", "problem_to_dict", "read_problem", "write_problem"]

if TYPE_CHECKING:
    from ..problem import Problem


def read_problem(cls, path, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None) -> Problem:
    """Read a problem file: ``.json`` (problem or raw data) or ``.npz`` (compact, or raw data ``X, y, W, a``)."""
    path = Path(path)
    raw = {"allow_sign_flip": allow_sign_flip, "ortho_tol": ortho_tol, "balance_tol": balance_tol}
    if path.suffix == ".npz":
        if _is_raw_npz(path):
            from .rawdata import problem_from_raw_npz

            return problem_from_raw_npz(cls, path, **raw)
        return problem_from_npz(cls, path)
    if path.suffix != ".json":
        raise InputError("problem", f"unknown file extension {path.suffix!r} (use .json or .npz)")
    data = read_json(path, "problem")
    if isinstance(data, dict) and "inputs" in data:
        return cls.from_raw(data, **raw)
    return problem_from_dict(cls, data)


def problem_from_dict(cls, data) -> Problem:
    """The JSON problem format: ``labels``, ``signs``, ``active``, optional ``sq_norms``, ``loss``."""
    if not isinstance(data, dict):
        raise InputError("problem", "expected a JSON object")
    known = {"labels", "signs", "active", "sq_norms", "loss", "magnitudes", "a_magnitudes", "scaling"}
    for key in data:
        if key not in known:
            raise InputError(key, f"unknown field (expected {', '.join(sorted(known))})")
    for key in ("labels", "signs", "active"):
        if key not in data:
            raise InputError(key, "missing")
        if not isinstance(data[key], list):
            raise InputError(key, "must be a list")
    return cls(
        labels=data["labels"],
        signs=data["signs"],
        active=data["active"],
        sq_norms=data.get("sq_norms"),
        loss=data.get("loss", "half-mean"),
        magnitudes=_float_matrix(data.get("magnitudes"), "magnitudes"),
        a_magnitudes=_float_matrix(data.get("a_magnitudes"), "a_magnitudes"),
        scaling=data.get("scaling", "standard"),
    )


def _is_raw_npz(path) -> bool:
    """A ``.npz`` of raw data has one of ``X, y, W, a`` (the compact format has none of them)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return bool({"X", "y", "W", "a"} & set(npz.files))
    except (OSError, ValueError) as exc:
        raise InputError("problem", f"cannot read {path} as .npz: {exc}") from None


def problem_from_npz(cls, path) -> Problem:
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError("problem", f"cannot read {path} as .npz: {exc}") from None
    with npz:
        arrays = {}
        for key in ("labels_num", "labels_den", "sq_norms_num", "sq_norms_den", "signs", "active", "loss"):
            if key not in npz.files:
                raise InputError(key, "missing from the .npz file")
            arrays[key] = npz[key]
        init = {key: npz[key] for key in ("magnitudes", "a_magnitudes") if key in npz.files}
        if "scaling" in npz.files:
            init["scaling"] = str(npz["scaling"])
    for key in ("labels_num", "labels_den", "sq_norms_num", "sq_norms_den"):
        if arrays[key].dtype.kind != "i" or arrays[key].ndim != 1:
            raise InputError(key, f"expected a 1-d integer array, got {arrays[key].dtype} of shape {arrays[key].shape}")
    if arrays["labels_num"].shape != arrays["labels_den"].shape:
        raise InputError("labels_den", "length differs from labels_num")
    if arrays["sq_norms_num"].shape != arrays["sq_norms_den"].shape:
        raise InputError("sq_norms_den", "length differs from sq_norms_num")
    if arrays["active"].ndim != 2:
        raise InputError("active", "expected a 2-d uint8 array of packed bits")
    return cls.from_arrays(
        arrays["labels_num"].astype(np.int64),
        arrays["labels_den"].astype(np.int64),
        arrays["sq_norms_num"].astype(np.int64),
        arrays["sq_norms_den"].astype(np.int64),
        arrays["signs"],
        arrays["active"],
        loss=str(arrays["loss"]),
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
        return np.asarray(
            [[float(x) for x in row] for row in value] if value and isinstance(value[0], list) else [float(x) for x in value],
            dtype=np.float64,
        )
    except (TypeError, ValueError):
        raise InputError(field, "must be a list of numbers or of lists of numbers") from None


def _json_number(q: Fraction):
    return q.numerator if q.denominator == 1 else f"{q.numerator}/{q.denominator}"
