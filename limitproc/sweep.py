"""Parameter sweeps of the limit process on ``dask.distributed``.

A config (TOML, section ``[sweep]``) names a grid: sample counts ``n``, widths ``m`` (integers or
rules such as ``"ceil(2*log2(n))"``), label and norm laws, seeds, and optionally steps ``lr`` of
gradient descent (theory §11; 0 or absent is gradient flow). Every grid point and seed is a
**cell**: one generated problem, solved exactly, summarised in one row. A step that makes descent
unstable for a cell's problem is reported in that row (``unstable``), not raised: one such cell
does not stop a grid of thousands.

Cells run on a dask cluster (a small ``LocalCluster`` by default, or ``scheduler`` to use an
existing one). The driver writes each finished cell at once, atomically, to its own part file
in ``OUTPUT.parts/``; a rerun skips the cells already there, so a killed sweep loses nothing and
resumes where it stopped. At the end the parts are merged, sorted, into one Parquet or CSV file.
Rows carry floats for display (from certified decimals) and the exact norms as strings.
"""

from __future__ import annotations

import ast
import json
import math
import os
import time
import tomllib
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import InputError
from .exact import parse_rational, rational_string
from .io.files import atomic_write
from .io.sweeprows import COLUMNS, STEP_COLUMNS, format_of, strip_row, write_rows
from .limits import check_at_most, check_number_text
from .limits import current as current_limits

__all__ = [
    "Cell",
    "LABEL_LAWS",
    "NORM_LAWS",
    "SweepConfig",
    "finished",
    "parse_steps",
    "parts_dir",
    "run_cell",
    "run_sweep",
    "timing_path",
    "width_rule",
]

LABEL_LAWS = ("pm1", "gauss", "uniform")
NORM_LAWS = ("unit", "uniform")


# -- m rules ------------------------------------------------------------------------------------
def _functions():
    import sympy

    return {
        "ceil": sympy.ceiling,
        "floor": sympy.floor,
        "log2": lambda x: sympy.log(x, 2),
        "log10": lambda x: sympy.log(x, 10),
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "min": sympy.Min,
        "max": sympy.Max,
    }


_BINARY = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__", ast.Pow: "__pow__"}


def width_rule(text: str, n: int) -> int:
    """Evaluate an ``m`` rule such as ``"ceil(2*log2(n))"`` at ``n``, exactly (sympy, no ``eval``).

    Allowed: numbers (decimals are read exactly), ``n``, ``+ - * / **``, and the functions
    ceil, floor, log2, log10, log (natural, or ``log(x, base)``), sqrt, min, max. Every
    intermediate value must fit in the guard ``rule_bits`` (:mod:`limitproc.limits`): a power is
    refused before it is computed, so ``n**n**n`` fails at once instead of running for hours.
    """
    import sympy

    functions = _functions()
    bits = current_limits().rule_bits

    def bounded(node, result):
        if result.is_number and result.is_finite is not False:
            size = abs(sympy.N(result, 15))
            if size > 2**bits or (result.is_Rational and result.q.bit_length() > bits):
                raise InputError("m", f"rule {text!r}: {_brief(ast.unparse(node))} is beyond the guard rule_bits = {bits} at n = {n}")
        return result

    def power(node, base, exponent):
        magnitude = abs(sympy.N(base, 15))
        if magnitude not in (0, 1) and abs(sympy.N(exponent, 15)) * abs(sympy.log(magnitude, 2)) > bits:
            raise InputError("m", f"rule {text!r}: {_brief(ast.unparse(node))} is beyond the guard rule_bits = {bits} at n = {n}")
        return base**exponent

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            check_number_text(repr(node.value), "m")
            return bounded(node, sympy.Rational(repr(node.value)))
        if isinstance(node, ast.Name) and node.id == "n":
            return sympy.Integer(n)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return bounded(node, power(node, value(node.left), value(node.right)))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return bounded(node, getattr(value(node.left), _BINARY[type(node.op)])(value(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions and not node.keywords:
            return bounded(node, functions[node.func.id](*[value(a) for a in node.args]))
        raise InputError("m", f"rule {text!r}: {ast.unparse(node)!r} is not allowed (use n, numbers, + - * / **, {', '.join(functions)})")

    if len(text) > 1000:
        raise InputError("m", f"rule of {len(text)} characters is too long (at most 1000)")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise InputError("m", f"rule {text!r} is not a valid expression") from None
    try:
        result = value(tree.body)
    except InputError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, RecursionError) as exc:
        raise InputError("m", f"rule {text!r} fails at n = {n}: {exc}") from None
    if not result.is_Integer or result < 1:
        raise InputError("m", f"rule {text!r} gives {result} at n = {n}, not a positive integer (wrap it in ceil())")
    return int(result)


# -- config and cells ---------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Cell:
    """One generated problem of the sweep."""

    n: int
    m: int
    labels: str
    norms: str
    seed: int
    resolve_ties: bool = False  # draw magnitudes and resolve an undetermined N (its rows differ: own key)
    lr: Fraction = Fraction(0)  # the step of gradient descent; 0 is gradient flow (the key of a flow cell is unchanged)

    @property
    def key(self) -> str:
        step = "" if not self.lr else f"_lr{self.lr.numerator}" + (f"_{self.lr.denominator}" if self.lr.denominator != 1 else "")
        return f"n{self.n}_m{self.m}_{self.labels}_{self.norms}_s{self.seed}{step}" + ("_resolved" if self.resolve_ties else "")


@dataclass
class SweepConfig:
    n: list[int]
    m: list  # ints, or rule strings
    labels: list[str]
    norms: list[str]
    seeds: list[int]
    decimals: int = 3
    resolve_ties: bool = False
    lr: list[Fraction] = field(default_factory=lambda: [Fraction(0)])  # the steps (an axis of the grid)

    @property
    def descent(self) -> bool:
        """Whether some cell runs gradient descent: then rows carry the columns ``lr``, ``lr_exact``, ``unstable``."""
        return any(self.lr)

    @classmethod
    def from_file(cls, path, **settings) -> SweepConfig:
        """Read the ``[sweep]`` section of a TOML file; ``settings`` (such as ``lr``) replace the file's."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise InputError("config", f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError("config", f"not valid TOML: {exc}") from None
        return cls.from_dict(data.get("sweep", data) | settings)

    @classmethod
    def from_dict(cls, data: dict) -> SweepConfig:
        unknown = set(data) - {"n", "m", "labels", "norms", "seeds", "seed0", "decimals", "resolve_ties", "lr"}
        if unknown:
            raise InputError(
                sorted(unknown)[0], "unknown sweep setting (expected n, m, labels, norms, seeds, seed0, decimals, resolve_ties, lr)"
            )
        for key in ("n", "m"):
            if key not in data:
                raise InputError(key, "missing from [sweep]")
        ns = _int_list(data["n"], "n")
        for n in ns:
            check_at_most(n, "problem_samples", "n")
        ms = data["m"] if isinstance(data["m"], list) else [data["m"]]
        for m in ms:
            if isinstance(m, str):
                for n in ns:
                    check_at_most(n * width_rule(m, n), "problem_size", "m", "n * m =")  # fail now, not on a worker
            elif isinstance(m, bool) or not isinstance(m, int) or m < 1:
                raise InputError("m", f"must be positive integers or rule strings, got {_brief(repr(m))}")
            else:
                check_at_most(max(ns) * m, "problem_size", "m", "n * m =")
        labels = _choice_list(data.get("labels", "pm1"), "labels", LABEL_LAWS)
        norms = _choice_list(data.get("norms", "unit"), "norms", NORM_LAWS)
        seeds = data.get("seeds", 1)
        steps = parse_steps(data.get("lr", 0))
        count = seeds if isinstance(seeds, int) else len(seeds) if isinstance(seeds, list) else 1
        check_at_most(len(ns) * len(ms) * len(labels) * len(norms) * len(steps) * count, "sweep_cells", "seeds", "a grid of")
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise InputError("seeds", f"must be at least 1, got {seeds}")
            seed0 = data.get("seed0", 0)
            if isinstance(seed0, bool) or not isinstance(seed0, int):
                raise InputError("seed0", f"must be an integer, got {seed0!r}")
            seeds = list(range(seed0, seed0 + seeds))
        else:
            seeds = _int_list(seeds, "seeds", minimum=0)
        decimals = data.get("decimals", 3)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 15:
            raise InputError("decimals", f"must be an integer between 0 and 15, got {decimals!r}")
        resolve = data.get("resolve_ties", False)
        if not isinstance(resolve, bool):
            raise InputError("resolve_ties", f"must be true or false, got {resolve!r}")
        return cls(ns, ms, labels, norms, seeds, decimals, resolve, steps)

    def cells(self) -> list[Cell]:
        out = set()
        for n in self.n:
            for m in self.m:
                width = width_rule(m, n) if isinstance(m, str) else m
                for labels in self.labels:
                    for norms in self.norms:
                        for lr in self.lr:
                            out.update(Cell(n, width, labels, norms, seed, self.resolve_ties, lr) for seed in self.seeds)
        return sorted(out)


def parse_steps(value) -> list[Fraction]:
    """The steps ``lr`` of a sweep, exactly: a number or a list; TOML floats are read as written
    (``0.3`` is 3/10), strings as rationals (``"1/3"``). Each must be at least 0 (0: gradient flow)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InputError("lr", "is empty")
    steps = []
    for v in values:
        if isinstance(v, float) and math.isfinite(v):
            v = repr(v)  # the decimal the TOML file holds, not its binary neighbour
        step = parse_rational(v, "lr")
        if step < 0:
            raise InputError("lr", f"must be at least 0 (0: gradient flow), got {rational_string(step)}")
        steps.append(step)
    return list(dict.fromkeys(steps))


def _brief(text: str) -> str:
    return text if len(text) <= 40 else text[:30] + "..."


def _int_list(value, field: str, minimum: int = 1) -> list[int]:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise InputError(field, f"must be integers >= {minimum}, got {v!r}")
    if not values:
        raise InputError(field, "is empty")
    return values


def _choice_list(value, field: str, choices) -> list[str]:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if v not in choices:
            raise InputError(field, f"unknown law {v!r} (choose {', '.join(choices)})")
    return values


# -- one cell (runs on a worker) ----------------------------------------------------------------
def run_cell(cell: Cell, decimals: int = 3) -> dict:
    """Generate, solve and summarise one cell. Floats come from certified decimals.

    ``sq_norm_source`` says how ``sq_norm`` was obtained: ``exact``; ``resolved`` (``resolve_ties``:
    the magnitudes drawn with the cell's seed resolve the split, an approximate float inside the
    exact interval); or ``interval`` (``sq_norm`` is NaN, ``sq_norm_lo`` and ``sq_norm_hi`` bound it).

    A cell with a step (``cell.lr``) is solved for gradient descent and its row also holds ``lr``,
    ``lr_exact`` and ``unstable``: empty, or why the step makes descent unstable for this problem,
    in which case every column that describes the limit is None (the limit does not describe it).
    """
    from .bias import Bias
    from .problem import generate
    from .process import solve

    problem = generate(
        cell.n, cell.m, labels=cell.labels, norms=cell.norms, seed=cell.seed, decimals=decimals, magnitudes=cell.resolve_ties
    )
    n_pos = int(problem.positive_labels.sum())
    inputs = {k: v for k, v in asdict(cell).items() if k != "lr"} | {"n_pos": n_pos, "n_neg": cell.n - n_pos}
    step = _step_columns(cell.lr) if cell.lr else {}
    start = time.perf_counter()
    try:
        result = solve(problem, lr=cell.lr or None)
    except InputError as exc:
        if exc.field != "lr":
            raise
        limit = {name: None for name, _ in COLUMNS if name not in inputs}
        return inputs | step | limit | {"unstable": exc.problem, "engine_seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    bias = Bias.of_result(result)
    nan = math.nan

    def num(value):
        return nan if value is None else float(value.decimal(17))

    source, sq_norm = ("exact", num(bias.sq_norm)) if bias.sq_norm is not None else ("interval", nan)
    ratio, constant = num(bias.ratio), num(bias.sqrt_n_constant)
    if source == "interval" and cell.resolve_ties:
        from .flow.ties import resolve_ties

        source, sq_norm = "resolved", resolve_ties(result).sq_norm
        ratio, constant = sq_norm / num(bias.min_sq_norm), sq_norm / math.sqrt(cell.n)
    lo, hi = (nan, nan) if result.sq_norm_interval is None else (num(v) for v in result.sq_norm_interval)

    return (
        inputs
        | step
        | {
            "interpolates": bool(result.interpolates),
            "uncovered": int(result.uncovered.size),
            "sq_norm": sq_norm,
            "sq_norm_determined": bias.sq_norm is not None,
            "sq_norm_source": source,
            "sq_norm_lo": lo,
            "sq_norm_hi": hi,
            "sq_norm_undetermined": result.sq_norm_reason or "",
            "min_sq_norm": num(bias.min_sq_norm),
            "ratio": ratio,
            "sqrt_n_constant": constant,
            "sq_norm_exact": "" if bias.sq_norm is None else bias.sq_norm.exact(),
            "min_sq_norm_exact": bias.min_sq_norm.exact(),
            "jumps": len(result.jumps),
            "ties": sum(1 for j in result.jumps if j.tie),
            "first_jump_tau": num(result.jumps[0].tau) if result.jumps else nan,
            "last_jump_tau": num(result.jumps[-1].tau) if result.jumps else nan,
            "engine_seconds": seconds,
        }
    )


def _step_columns(lr: Fraction) -> dict:
    """A row's step columns; ``unstable`` stays empty unless the cell's row gives the solver's reason."""
    return {"lr": float(lr), "lr_exact": rational_string(lr), "unstable": ""}


# -- the sweep ----------------------------------------------------------------------------------
def parts_dir(output) -> Path:
    return Path(str(output) + ".parts")


def finished(output) -> dict[str, dict]:
    """The part files already written: ``{cell key: row}`` (stale temporary files are removed)."""
    parts = parts_dir(output)
    if not parts.is_dir():
        return {}
    for stale in parts.glob(".*.tmp"):  # left by a run killed mid-write; never a finished cell
        stale.unlink(missing_ok=True)
    done = {}
    for path in sorted(parts.glob("*.json")):
        problem = _part_problem(path)
        if problem:
            warnings.warn(f"part {path.name}: {problem}; it is computed again", stacklevel=2)
            path.unlink(missing_ok=True)
        else:
            done[path.stem] = json.loads(path.read_text())
    return done


_PART_TYPES = {"int64": int, "string": str, "bool": bool, "float64": (float, int)}


def _part_problem(path: Path) -> str | None:
    """What is wrong with a part file, or None: it must hold a full row of the cell its name gives."""
    try:
        row = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return f"unreadable ({type(exc).__name__})"
    if not isinstance(row, dict):
        return "not a JSON object"
    unstable = row.get("unstable")
    for name, kind in COLUMNS + (STEP_COLUMNS if "lr_exact" in row else []):
        if name not in row:
            return f"column {name} missing"
        if unstable and row[name] is None:  # an unstable step leaves the limit's columns empty
            continue
        if not isinstance(row[name], _PART_TYPES[kind]) or (kind != "bool" and isinstance(row[name], bool)):
            return f"column {name} has the wrong type"
    try:
        lr = parse_rational(row.get("lr_exact", 0), "lr")
    except InputError:
        return "column lr_exact is not a rational"
    if _cell_of(row, resolve_ties=row.get("resolve_ties") is True, lr=lr).key != path.stem:
        return "its content is of another cell"
    return None


def _cell_of(row: dict, **fields) -> Cell:
    return Cell(row["n"], row["m"], row["labels"], row["norms"], row["seed"], **fields)


def timing_path(output) -> Path:
    """Where a sweep writes how long each cell's solve took: kept apart so the data are reproducible."""
    return Path(str(output) + ".timing.csv")


def run_sweep(config: SweepConfig, output, scheduler: str | None = None, workers: int = 2, progress: bool = True) -> dict:
    """Run the cells not yet finished, then merge every part into ``output``.

    Returns ``{"cells", "computed", "reused", "output"}``.
    """
    fmt = format_of(output)
    cells = config.cells()
    done = finished(output)
    todo = [c for c in cells if c.key not in done]
    parts = parts_dir(output)
    if not parts.parent.is_dir():  # as every other -o: the directory must exist
        raise InputError("output", f"cannot write {output}: no directory {parts.parent}")
    parts.mkdir(exist_ok=True)
    run_id = uuid.uuid4().hex
    if todo:
        _compute(todo, config.decimals, parts, run_id, scheduler, workers, progress)
    full = [json.loads((parts / f"{c.key}.json").read_text()) for c in cells]
    if config.descent:  # a flow cell (lr = 0) of a grid with steps: its row says lr = 0
        full = [_step_columns(c.lr) | row for c, row in zip(cells, full)]
    write_rows([strip_row(row, config.descent) for row in full], output, fmt, config.descent)
    timing = "".join(f"{c.key},{row.get('engine_seconds', '')}\n" for c, row in zip(cells, full))
    atomic_write(timing_path(output), "cell,engine_seconds\n" + timing)
    return {"cells": len(cells), "computed": len(todo), "reused": len(cells) - len(todo), "output": str(output)}


def _compute(todo, decimals, parts: Path, run_id: str, scheduler, workers: int, progress: bool) -> None:
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    from .progress import progress_bar

    if scheduler:
        try:
            client = Client(scheduler)  # waits distributed.comm.timeouts.connect (dask config)
        except (OSError, TimeoutError) as exc:
            raise InputError("scheduler", f"cannot connect to {scheduler}: {exc}") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = client.map(run_cell, todo, decimals=decimals, pure=False)
        cell_of = dict(zip(futures, todo))
        with progress_bar(total=len(todo), desc="sweep cells", enabled=progress) as bar:
            for future in as_completed(futures):
                row = future.result()
                atomic_write(parts / f"{cell_of[future].key}.json", json.dumps(row | {"run_id": run_id, "pid": os.getpid()}) + "\n")
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
