"""A result in a format: the one place that picks it, for ``limitproc solve``, ``limitproc demo`` and the library.

JSON is written by :mod:`limitproc.io.results` without loading :mod:`limitproc.io.tables` (which the other
formats need), so that ``limitproc solve --format json`` stays close to the cost of solving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .results import result_json_parts

__all__ = ["render_result", "render_result_parts"]

if TYPE_CHECKING:
    from ..flow.ties import TieResolution
    from ..process import Result


def render_result_parts(
    result: Result, fmt: str, digits: int = 30, escape_directions: bool = False, ties: TieResolution | None = None
) -> list:
    """What ``limitproc solve --format FMT`` writes, as UTF-8 parts (bytes-like) to be written one after
    the other: ``json``, or a table format of :func:`~limitproc.io.tables.result_table_text`. ``ties`` (a
    resolution of ``result``) adds its splits and ``N``; ``escape_directions`` applies to JSON only."""
    if fmt == "json":  # Resolved(result, ties).to_dict(...), written fast
        return result_json_parts(result, digits, escape_directions, None if ties is None else ties.annotate, end=b"\n")
    from .tables import result_table_text

    return [result_table_text(result, fmt, digits, ties).encode()]


def render_result(result: Result, fmt: str, digits: int = 30, escape_directions: bool = False, ties: TieResolution | None = None) -> str:
    """:func:`render_result_parts` joined: the text ``limitproc solve --format FMT`` prints."""
    return b"".join(render_result_parts(result, fmt, digits, escape_directions, ties)).decode()
