"""Sweep rows: the Parquet and CSV files of :func:`limitproc.sweep.run_sweep`, one row per cell."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .files import atomic_write

__all__ = ["COLUMNS", "STEP_COLUMNS", "columns", "format_of", "read_rows", "strip_row", "write_rows"]

# (name, pyarrow type name): the row schema, in output order
COLUMNS = [
    ("n", "int64"),
    ("m", "int64"),
    ("labels", "string"),
    ("norms", "string"),
    ("seed", "int64"),
    ("n_pos", "int64"),
    ("n_neg", "int64"),
    ("interpolates", "bool"),
    ("uncovered", "int64"),
    ("sq_norm", "float64"),
    ("sq_norm_determined", "bool"),
    ("sq_norm_undetermined", "string"),
    ("sq_norm_source", "string"),
    ("sq_norm_lo", "float64"),
    ("sq_norm_hi", "float64"),
    ("min_sq_norm", "float64"),
    ("ratio", "float64"),
    ("sqrt_n_constant", "float64"),
    ("sq_norm_exact", "string"),
    ("min_sq_norm_exact", "string"),
    ("jumps", "int64"),
    ("ties", "int64"),
    ("first_jump_tau", "float64"),
    ("last_jump_tau", "float64"),
]

#: the columns of a sweep with steps of gradient descent, after ``seed``: the step (a float for
#: display and its exact rational) and why it makes descent unstable for the row's problem (empty
#: if it does not; then the limit's columns are null). A flow-only sweep has none of them.
STEP_COLUMNS = [("lr", "float64"), ("lr_exact", "string"), ("unstable", "string")]


def columns(descent: bool = False) -> list[tuple[str, str]]:
    """The row schema in output order: :data:`COLUMNS`, with :data:`STEP_COLUMNS` after ``seed`` if ``descent``."""
    if not descent:
        return COLUMNS
    at = [name for name, _ in COLUMNS].index("seed") + 1
    return COLUMNS[:at] + STEP_COLUMNS + COLUMNS[at:]


def strip_row(row: dict, descent: bool = False) -> dict:
    return {name: row[name] for name, _ in columns(descent)}


def format_of(output) -> str:
    suffix = Path(str(output)).suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError("output", f"must end in .parquet or .csv, got {output!r}")
    return suffix[1:]


def write_rows(rows: list[dict], output, fmt: str | None = None, descent: bool = False) -> None:
    """Write rows (in :func:`columns` order) to Parquet or CSV, atomically."""
    import pyarrow as pa

    fmt = fmt or format_of(output)
    schema = pa.schema([(name, pa.type_for_alias(t)) for name, t in columns(descent)])
    table = pa.Table.from_pylist(rows, schema=schema)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        atomic_write(output, lambda fh: pq.write_table(table, fh), mode="wb")
    else:
        import pyarrow.csv as pcsv

        atomic_write(output, lambda fh: pcsv.write_csv(table, fh), mode="wb")


def read_rows(path) -> list[dict]:
    """The rows of a sweep output (Parquet or CSV)."""
    import pyarrow as pa

    fmt = format_of(path)
    if not Path(path).is_file():
        raise InputError("path", f"no such file: {path}")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pcsv

        types = {name: pa.type_for_alias(t) for name, t in columns(descent=True)}
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    return table.to_pylist()
