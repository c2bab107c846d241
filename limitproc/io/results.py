"""The JSON of results: the public contract of ``limitproc solve`` and :meth:`Result.to_dict` (field names are stable)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..exact import rational_string

__all__ = ["int_list_json", "result_dict", "result_json", "result_json_parts"]

if TYPE_CHECKING:
    from ..process import Result


def result_dict(result: Result, digits: int = 30, escape_directions: bool = False) -> dict:
    """The jumps, final state and norms of ``result``: exact strings, decimals to ``digits`` digits."""
    return _record(result, digits, escape_directions, np.ndarray.tolist)


def _record(result: Result, digits: int, escape_directions: bool, listed: Callable[[np.ndarray], object]) -> dict:
    """:func:`result_dict`, with each array of indices turned into JSON by ``listed``."""
    p = result.problem
    interval = result.sq_norm_interval
    jumps = []
    for jump in result.jumps:
        record = {
            "k": jump.k,
            "tau": jump.tau.exact(),
            "tau_decimal": jump.tau.decimal(digits),
            "neurons": list(jump.neurons),
            "samples": listed(jump.samples),
            "plateau_loss": rational_string(jump.plateau_loss),
            "tie": jump.tie,
            "shared": listed(jump.shared),
        }
        if jump.tie:
            record["tie_certified"] = jump.tie_certified
            record["tie_certificate"] = jump.tie_certificate
            record["blocks"] = {str(j): listed(b) for j, b in jump.blocks.items()}
            record["classes"] = [list(c) for c in jump.classes]  # neurons with identical blocks act as one
            record["contested"] = listed(jump.contested)  # shared by classes with different blocks
        if escape_directions:
            record["escape_directions"] = [jump.escape_direction(j).to_dict() for j in jump.neurons]
        jumps.append(record)
    out = {
        "n": p.n,
        "m": p.m,
        "loss": p.loss,
        "jumps": jumps,
        "interpolates": result.interpolates,
        "uncovered": listed(result.uncovered),
        "final_loss": rational_string(result.final_loss),
        "sq_norm": None if result.sq_norm is None else result.norm_exact(result.sq_norm),
        "sq_norm_decimal": None if result.sq_norm is None else result.sq_norm.decimal(digits),
        "sq_norm_undetermined": result.sq_norm_reason,
        "sq_norm_interval": None if interval is None else [result.norm_exact(v) for v in interval],
        "sq_norm_interval_decimal": None if interval is None else [v.decimal(digits) for v in interval],
        "sq_norm_interval_hi": None if interval is None else ("vertex maximum" if result.sq_norm_hi_attained else "upper bound"),
        "sq_norm_resolved": None,  # filled by a tie resolution (limitproc.flow.ties.TieResolution.annotate)
        "sq_norm_resolved_in_interval": None,  # likewise, when N has an interval
        "min_sq_norm": result.norm_exact(result.min_sq_norm),
        "min_sq_norm_decimal": result.min_sq_norm.decimal(digits),
        "never_escaped": result.never_escaped,
        "term_budget": result.program.term_budget,
    }
    if result.lr is not None:  # gradient descent (theory §11); absent for gradient flow
        out["lr"] = rational_string(result.lr)
    if p.scaling != "standard":  # losses and norms are in the user's units (theory, conventions)
        out["scaling"] = p.scaling
    return out


def result_json(
    result: Result,
    digits: int = 30,
    escape_directions: bool = False,
    indent: int | None = None,
    annotate: Callable[[dict], dict] | None = None,
) -> str:
    """``json.dumps`` of :func:`result_dict` (edited by ``annotate``, e.g. a tie resolution's), the same
    text; without ``indent``, long index arrays are written by numpy instead of as Python lists."""
    if indent is not None:
        record = _record(result, digits, escape_directions, np.ndarray.tolist)
        return json.dumps(record if annotate is None else annotate(record), indent=indent)
    return b"".join(result_json_parts(result, digits, escape_directions, annotate)).decode("ascii")


def result_json_parts(
    result: Result, digits: int = 30, escape_directions: bool = False, annotate: Callable[[dict], dict] | None = None, end: bytes = b""
) -> list:
    """:func:`result_json` (without ``indent``) and then ``end`` as ASCII, in parts (bytes-like) to be
    written one after the other: the index arrays are the bytes numpy wrote, and no copy of the
    whole text is made (``limitproc solve`` writes them so)."""
    arrays: list[np.ndarray] = []

    def listed(values: np.ndarray):
        if values.size < _LONG:
            return values.tolist()
        arrays.append(values)
        return f"\0{len(arrays) - 1}\0"  # json.dumps writes it as "\u0000k\u0000"; no exact string holds NUL

    record = _record(result, digits, escape_directions, listed)
    texts = _PLACEHOLDER.split(json.dumps(record if annotate is None else annotate(record)))  # text, index, text, ..., text
    parts = [texts[0].encode("ascii")]
    for index, text in zip(texts[1::2], texts[2::2]):
        parts += _int_list_parts(arrays[int(index)])
        parts.append(text.encode("ascii"))
    return [*parts, end]


#: arrays at least this long are written by :func:`int_list_json`
_LONG = 256
_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')


def int_list_json(values: np.ndarray) -> str:
    """``json.dumps(values.tolist())`` for a sorted 1-d array of non-negative integers, without making
    Python ints: entries of equal width (contiguous, as the array is sorted) are written as rows of
    bytes, four decimal digits at a time from a table. Other arrays go through ``json.dumps``."""
    return "".join(str(part, "ascii") for part in _int_list_parts(values))


def _int_list_parts(values: np.ndarray) -> list:
    """The ASCII of :func:`int_list_json` in parts (bytes-like)."""
    values = np.asarray(values)
    if values.size == 0 or values.dtype.kind not in "iu" or values[0] < 0 or np.any(values[1:] < values[:-1]):
        return [json.dumps(values.tolist()).encode("ascii")]
    top = int(values[-1])
    v = values.astype(np.uint32 if top < 2**32 else np.uint64, copy=False)
    ends = np.searchsorted(v, 10 ** np.arange(1, len(str(top)), dtype=np.uint64)).tolist() + [v.size]  # of the widths
    parts, start = [b"["], 0
    for width, stop in enumerate(ends, start=1):
        if stop > start:
            rest, groups = v[start:stop], []  # of four digits, the last first
            for _ in range(1, -(-width // 4)):
                high = rest // 10000  # (dividing by a constant is fast, % is not)
                groups.append(rest - high * 10000)
                rest = high
            rows = np.empty(stop - start, _row_dtype(width))
            rows["w0"] = np.take(_FOUR_DIGITS, rest) >> (8 * (-width % 4))  # without its leading zeros
            for word, group in enumerate(reversed(groups), start=1):  # in order: each overwrites the spare bytes of the one before
                rows[f"w{word}"] = np.take(_FOUR_DIGITS, group)
            rows["separator"] = ord(",") | ord(" ") << 8
            parts.append(rows.view(np.uint8))
        start = stop
    parts[-1] = parts[-1][:-2]  # no separator after the last entry
    return [*parts, b"]"]


def _four_digits() -> np.ndarray:
    """Entry ``i``: the ASCII digits of ``i`` zero-padded to four, as one little-endian uint32."""
    i = np.arange(10000, dtype=np.uint32)
    return sum((i // 10**p % 10 + ord("0")) << (8 * (3 - p)) for p in range(4)).astype(np.uint32)


_FOUR_DIGITS = _four_digits()


@functools.cache
def _row_dtype(width: int) -> np.dtype:
    """One entry of ``width`` digits and its separator ``", "``: fields of four digits from the table,
    the first cut to its significant digits, the others at the offsets that join them up (overlapping
    the spare bytes of the one before), then the separator."""
    words = -(-width // 4)
    return np.dtype(
        {
            "names": [f"w{i}" for i in range(words)] + ["separator"],
            "formats": ["<u1" if width == 1 else "<u4"] + ["<u4"] * (words - 1) + ["<u2"],
            "offsets": [0] + [width - 4 * (words - i) for i in range(1, words)] + [width],
            "itemsize": width + 2,
        }
    )
