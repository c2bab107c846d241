"""Tables of a result in text, CSV, Markdown, LaTeX (booktabs) and JSON.

A table is a list of column names and rows of cells. A cell is a plain value or an
:class:`ExactCell`: an exact sympify-able string, typeset as a radical in LaTeX.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from ..process import Result

__all__ = [
    "ExactCell",
    "TABLE_FORMATS",
    "Table",
    "drop_columns",
    "jump_table",
    "norm_scaling_table",
    "probability_table",
    "read_table_config",
    "render_result",
    "simulation_table",
    "summary_lines",
    "table_header",
]

if TYPE_CHECKING:
    from ..flow.ties import TieResolution

TABLE_FORMATS = ("text", "csv", "markdown", "latex", "json")


@dataclass(frozen=True)
class ExactCell:
    """An exact value (sympify-able string, or None over the budget) and its certified decimal."""

    exact: str | None
    decimal: str

    def __str__(self) -> str:
        return self.exact if self.exact is not None else self.decimal

    def latex(self) -> str:
        if self.exact is None:
            return self.decimal
        import sympy

        return sympy.latex(sympy.sympify(self.exact))


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""
    header: list[str] | None = None  # comment lines (version, input hash)

    def render(self, fmt: str) -> str:
        if fmt not in TABLE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        return getattr(self, f"_{fmt}")()

    def _cells(self):
        return [[str(c) if c is not None else "" for c in row] for row in self.rows]

    def _comments(self, prefix: str) -> str:
        return "".join(f"{prefix}{line}\n" for line in (self.header or []))

    def _text(self) -> str:
        cells = [self.columns] + self._cells()
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return self._comments("# ") + "\n".join(lines) + "\n"

    def _csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self._cells())
        return self._comments("# ") + buf.getvalue()

    def _markdown(self) -> str:
        def row(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        lines = [row(self.columns), "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += [row(r) for r in self._cells()]
        return self._comments("<!-- ").replace("\n", " -->\n") + "\n".join(lines) + "\n"

    def _latex(self) -> str:
        def cell(c):
            if isinstance(c, ExactCell):
                return f"${c.latex()}$"
            return _latex_escape("" if c is None else str(c))

        lines = [r"\begin{table}[ht]", r"\centering", r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\toprule"]
        lines.append(" & ".join(_latex_escape(c) for c in self.columns) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(cell(c) for c in r) + r" \\" for r in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.caption:
            lines.append(r"\caption{" + _latex_escape(self.caption) + "}")
        lines.append(r"\end{table}")
        return self._comments("% ") + "\n".join(lines) + "\n"

    def _json(self) -> str:
        def cell(c):
            if isinstance(c, ExactCell):
                return {"exact": c.exact, "decimal": c.decimal}
            return c

        data = {"columns": self.columns, "rows": [[cell(c) for c in r] for r in self.rows]}
        if self.header:
            data["header"] = self.header
        return json.dumps(data, indent=1) + "\n"

    def to_frame(self, exact: bool = True):
        """The table as a pandas DataFrame (needs pandas): an exact cell becomes its sympify-able
        string (None over the term budget), or with ``exact=False`` the float of its decimal; the
        caption and header go to ``frame.attrs``."""
        from ..display import require_pandas

        def cell(c):
            if isinstance(c, ExactCell):
                return c.exact if exact else float(c.decimal)
            return c

        frame = require_pandas().DataFrame([[cell(c) for c in row] for row in self.rows], columns=self.columns)
        frame.attrs.update(caption=self.caption, header=list(self.header or []))
        return frame


def _latex_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        else:
            out.append(ch)
    return "".join(out)


def jump_table(result: Result, digits: int = 30) -> Table:
    """One row per jump: k, tau exact and decimal, neurons, block size, plateau loss, tie."""
    rows = []
    for jump in result.jumps:
        loss = _rational_cell(jump.plateau_loss, digits)
        tie = "" if not jump.tie else f"tie ({jump.tie_certificate or 'NOT certified'})"
        rows.append(
            [
                jump.k,
                ExactCell(jump.tau.exact(), jump.tau.decimal(digits)),
                jump.tau.decimal(digits),
                " ".join(map(str, jump.neurons)),
                int(jump.samples.size),
                loss,
                tie,
            ]
        )
    return Table(["k", "tau", "tau_decimal", "neurons", "block_size", "plateau_loss", "tie"], rows)


def simulation_table(comparison: dict) -> Table:
    """One row per jump: the exact tau, the simulated drop at each lambda, the extrapolation and offset."""
    ladder = [f"tau @ log(1/λ)={L:.4g}" for L in comparison["log_inv_lambdas"]]
    fitted = any("tau_extrapolated" in row for row in comparison["jumps"])
    columns = ["k", "neurons", "tau (limit)", *ladder] + (["tau extrapolated", "delta (offset)"] if fitted else [])

    def num(x, err=None):
        if x is None:
            return "never"
        return f"{x:.6f}" + (f" ± {err:.1g}" if err is not None else "")

    rows = []
    for row in comparison["jumps"]:
        cells = [row["k"], " ".join(map(str, row["neurons"])), row["tau_decimal"], *(num(t) for t in row["drop_taus"])]
        if fitted:
            cells += [num(row.get("tau_extrapolated"), row.get("tau_stderr")), num(row.get("delta"), row.get("delta_stderr"))]
        rows.append(cells)
    return Table(columns, rows, caption="finite-λ gradient flow against the exact limit")


def _rational_cell(q, digits: int) -> ExactCell:
    from fractions import Fraction

    from ..exact import rational_string, round_significant

    return ExactCell(rational_string(q), round_significant(Fraction(q), digits))


def summary_lines(result: Result, digits: int = 30, ties: TieResolution | None = None) -> list[str]:
    """The human summary printed under the text table (with the approximate ``N`` and splits of ``ties``, if given)."""
    p = result.problem
    lines = [f"n = {p.n}, m = {p.m}, loss = {p.loss}, jumps = {len(result.jumps)}"]
    if result.interpolates:
        lines.append("interpolates: yes (every sample is covered)")
    else:
        lines.append(f"interpolates: no; {result.uncovered.size} uncovered samples, final loss {_rational_cell(result.final_loss, digits)}")
    interval = result.sq_norm_interval
    if interval is not None:
        lo, hi = interval
        kind = "the maximum over split vertices" if result.sq_norm_hi_attained else "an upper bound"
        lines.append(f"sq_norm N in [{_short(result.norm_exact(lo), 50)}, {_short(result.norm_exact(hi), 50)}]")
        lines.append(f"  ≈ [{lo.decimal(digits)}, {hi.decimal(digits)}] (exact; the upper end is {kind}): {result.sq_norm_reason}")
    elif result.sq_norm is not None:
        lines.append(f"sq_norm N = {_short(result.norm_exact(result.sq_norm))} ≈ {result.sq_norm.decimal(digits)}")
    if ties is not None and (interval is not None or ties.splits):
        inside = {True: "inside the exact interval", False: "OUTSIDE the exact interval", None: "equal to the exact N"}
        lines.append(
            f"resolved N ≈ {ties.sq_norm:.12g} (approximate: tie split resolved from the initial magnitudes), {inside[ties.in_interval]}"
        )
        for k, split in sorted(ties.splits.items()):
            for i, shares in sorted(split.shares.items()):
                parts = ", ".join(f"neuron {j}: {v:.6f}" for j, v in sorted(shares.items()))
                lines.append(f"  jump {k}, sample {i} split: {parts}")
    lines.append(f"min_sq_norm N_min = {_short(result.norm_exact(result.min_sq_norm))} ≈ {result.min_sq_norm.decimal(digits)}")
    if result.never_escaped:
        lines.append(f"never escaped: {len(result.never_escaped)} neurons {_short(str(result.never_escaped))}")
    ties = [j for j in result.jumps if j.tie]
    if ties:
        uncertified = sum(1 for j in ties if not j.tie_certified)
        classes = sum(1 for j in ties for c in j.classes if len(c) > 1)
        acting = f"; {classes} classes of identical blocks, each acting as one neuron" if classes else ""
        lines.append(f"ties: {len(ties)} ({uncertified} not certified{acting})")
    return lines


def _short(text: str | None, width: int = 120) -> str:
    if text is None:
        return "(over the term budget)"
    return text if len(text) <= width else text[: width - 5] + " ..."


def render_result(result: Result, fmt: str, digits: int = 30, escape_directions: bool = False, ties: TieResolution | None = None) -> str:
    """What ``limitproc solve --format FMT`` prints; ``ties`` (a resolution of ``result``) adds its splits and ``N``."""
    if fmt == "json":
        from ..flow.ties import Resolved

        return json.dumps(Resolved(result, ties).to_dict(digits, escape_directions)) + "\n"
    table = jump_table(result, digits)
    if fmt == "text":
        for row in table.rows:
            row[1] = _short(row[1].exact, 40) if row[1].exact is not None else "(over budget)"
        return table.render("text") + "\n" + "\n".join(summary_lines(result, digits, ties)) + "\n"
    return table.render(fmt)


# -- appendix tables: deterministic, with a header naming the version and the input's hash -----
def table_header(kind: str, source: bytes) -> list[str]:
    """The comment lines of an appendix table: what it is, the limitproc version, the input's sha256."""
    import hashlib

    from .. import __version__

    return [f"limitproc {__version__}: {kind} table", f"input sha256 {hashlib.sha256(source).hexdigest()}"]


def drop_columns(table: Table, names) -> Table:
    """The table without the named columns (e.g. the decimal column of a jump table)."""
    keep = [i for i, c in enumerate(table.columns) if c not in set(names)]
    return Table([table.columns[i] for i in keep], [[row[i] for i in keep] for row in table.rows], table.caption, table.header)


def probability_table(ns, ms, digits: int | None = None) -> Table:
    """P(interpolate) (theory §7) for balanced classes over ``n × m``: exact rationals, or ``digits`` decimals."""
    from ..probability import balanced, interpolation_probability

    rows = []
    for n in ns:
        row = [n]
        for m in ms:
            p = interpolation_probability(*balanced(n), m)
            row.append(ExactCell(p.string(), p.decimal(digits or 30)) if digits is None else p.decimal(digits))
        rows.append(row)
    caption = "P(interpolate), balanced classes n_+ = ceil(n/2), n_- = floor(n/2)"
    return Table(["n"] + [f"m = {m}" for m in ms], rows, caption)


def read_table_config(path) -> dict:
    """The ``[table]`` section of a TOML file, as :func:`probability_table` takes it.

    ``n`` and ``m`` are lists of positive integers, ``digits`` (optional; ``decimal`` is its old
    name) the significant digits of decimals instead of exact rationals. Returns the keys present.
    """
    import tomllib

    try:
        with open(path, "rb") as fh:
            section = tomllib.load(fh).get("table", {})
    except OSError as exc:
        raise InputError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError("config", f"{path} is not valid TOML: {exc}") from None
    if not isinstance(section, dict):
        raise InputError("table", "must be a TOML table ([table])")
    if "decimal" in section:
        section["digits"] = section.pop("decimal")
    unknown = set(section) - {"n", "m", "digits"}
    if unknown:
        raise InputError(f"table.{min(unknown)}", "unknown key (expected n, m, digits)")
    for key in ("n", "m"):
        values = section.get(key, [])
        if not isinstance(values, list) or not all(type(v) is int and v >= 1 for v in values):
            raise InputError(f"table.{key}", f"must be a list of positive integers, got {values!r}")
    digits = section.get("digits", 1)
    if type(digits) is not int or digits < 1:
        raise InputError("table.digits", f"must be a positive integer, got {digits!r}")
    return section


def norm_scaling_table(rows: list[dict], digits: int = 4) -> Table:
    """Per ``(n, m, labels, norms)`` of a sweep: runs, how many interpolate or have a determined ``N``,
    and the mean of ``N/sqrt(n)`` and ``N/N_min`` with the range of the latter (over determined runs)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["n"], r["m"], r["labels"], r["norms"]), []).append(r)

    def fmt(x):
        return f"{x:.{digits}f}" if x is not None else ""

    out = []
    for key in sorted(groups):
        runs = groups[key]
        det = [r for r in runs if r["sq_norm_determined"] or r.get("sq_norm_source") == "resolved"]
        mean = (lambda f: sum(f(r) for r in det) / len(det)) if det else (lambda f: None)
        ratios = [r["ratio"] for r in det]
        out.append(
            [
                *key,
                len(runs),
                sum(bool(r["interpolates"]) for r in runs),
                len(det),
                fmt(mean(lambda r: r["sqrt_n_constant"])),
                fmt(mean(lambda r: r["ratio"])),
                fmt(min(ratios) if ratios else None),
                fmt(max(ratios) if ratios else None),
            ]
        )
    columns = [
        "n",
        "m",
        "labels",
        "norms",
        "runs",
        "interpolating",
        "N determined",
        "mean N/sqrt(n)",
        "mean N/N_min",
        "min N/N_min",
        "max N/N_min",
    ]
    return Table(columns, out, "Norm scaling of the limit network (means over runs with a determined N)")
