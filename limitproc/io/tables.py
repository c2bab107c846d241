"""Tables of a result in text, CSV, Markdown, LaTeX (booktabs) and JSON.

A table is a list of column names and rows of cells. A cell is a plain value or an
:class:`ExactCell`: an exact sympify-able string, typeset as a radical in LaTeX.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from flint import fmpz

from ..errors import InputError
from ..exact import ExactValue, rational_string, round_significant
from ..probability import Dyadic
from ..process import Result

__all__ = [
    "Column",
    "ExactCell",
    "FIT_DIGITS",
    "FIT_WIDTH",
    "LATEX_PACKAGES",
    "TABLE_FORMATS",
    "Table",
    "Term",
    "VALUE_MODES",
    "drop_columns",
    "jump_table",
    "norm_scaling_table",
    "prediction_table",
    "probability_table",
    "read_table_config",
    "result_table_text",
    "simulation_table",
    "summary_lines",
    "table_header",
]

if TYPE_CHECKING:
    from ..flow.ties import TieResolution

TABLE_FORMATS = ("text", "csv", "markdown", "latex", "json")
VALUE_MODES = ("fit", "exact", "decimal")
# amsmath and booktabs (TeX Live "recommended"), longtable, array and dcolumn (the LaTeX "tools" bundle, in base)
LATEX_PACKAGES = ("amsmath", "booktabs", "longtable", "array", "dcolumn")
FIT_WIDTH = 18  # a radical sum wider than this (in digit widths) leaves its cell in "fit" mode
FIT_DIGITS = 12  # so does a rational (or the numerator of a dyadic) with more digits
_TEXT_WIDTH = 68  # the article class's \textwidth at 10pt (345pt), in digit widths of \small type (4.5pt), less a margin
_COLUMN_GAP = 1.6  # 2\tabcolsep (set to 4pt) in digit widths
_PARAGRAPH = 24  # width of a paragraph column, in digit widths


def _digit_count(x: int) -> int:
    """Decimal digits of ``|x|``, without printing a huge int (CPython refuses past 4300 digits)."""
    x = abs(x)
    return len(str(x)) if x.bit_length() < 1000 else len(str(fmpz(x)))


def _digits_latex(x: int, breakable: bool) -> str:
    """``|x|`` in digits; long ones may break every ten digits (a number then runs on to the next line)."""
    s = str(fmpz(abs(x)))
    if not breakable or len(s) <= 20:
        return s
    return r"\allowbreak ".join(s[i : i + 10] for i in range(0, len(s), 10))


@dataclass(frozen=True)
class Term:
    """One term ``num/den * sqrt(root)`` of an exact value; ``den_exp`` shows ``den`` as ``2^den_exp``."""

    num: int
    den: int = 1
    root: int = 1
    den_exp: int | None = None

    def width(self) -> float:
        """Printed width in digit widths: a fraction in a line of text is set at script size."""
        top = _digit_count(self.num) + (len(str(self.root)) + 2 if self.root != 1 else 0)
        bottom = len(str(self.den_exp)) + 1 if self.den_exp is not None else _digit_count(self.den)
        return 0.75 * max(top, bottom) + 0.5 if self.den != 1 else top

    def digits(self) -> int:
        return max(_digit_count(self.num), 0 if self.den_exp is not None else _digit_count(self.den))

    def latex(self, breakable: bool = False) -> str:
        """``|term|`` in LaTeX: a fraction, or in ``breakable`` form a line that may break inside long numbers."""
        root = rf"\sqrt{{{self.root}}}" if self.root != 1 else ""
        p = "" if root and abs(self.num) == 1 else _digits_latex(self.num, breakable)
        top = p + (" " if p and root else "") + root
        if self.den == 1:
            return top
        bottom = f"2^{{{self.den_exp}}}" if self.den_exp is not None else _digits_latex(self.den, breakable)
        if breakable and self.digits() > 20:
            return f"{top}/{bottom}"
        return rf"\frac{{{top}}}{{{bottom}}}"


def _terms_latex(terms, breakable: bool = False) -> str:
    out = ""
    for t in terms:
        sign = ("-" if t.num < 0 else "") if not out else (" - " if t.num < 0 else " + ")
        out += sign + t.latex(breakable)
    return out or "0"


def _decimal_latex(decimal: str) -> str:
    mantissa, _, exponent = decimal.partition("e")
    return mantissa if not exponent else rf"{mantissa}\times 10^{{{int(exponent)}}}"


@dataclass(frozen=True)
class ExactCell:
    """An exact value (sympify-able string, or None over the budget), its certified decimal, and its
    terms; or, for an exact expression that is not a radical sum (with logarithms: descent's times,
    theory §11), its LaTeX in ``expression``."""

    exact: str | None
    decimal: str
    terms: tuple[Term, ...] | None = None
    expression: str | None = None

    @classmethod
    def of_value(cls, value: ExactValue, digits: int) -> ExactCell:
        form = value.form()
        if form is None and (text := value.exact()) is not None:  # an expression within the budget
            return cls(text, value.decimal(digits), None, value.latex(digits))
        terms = None if form is None else tuple(Term(c.numerator, c.denominator, k) for c, k in form.pairs())
        return cls(None if form is None else str(form), value.decimal(digits), terms)

    @classmethod
    def of_rational(cls, q, digits: int) -> ExactCell:
        q = Fraction(q)
        return cls(rational_string(q), round_significant(q, digits), (Term(q.numerator, q.denominator),) if q else ())

    @classmethod
    def of_dyadic(cls, d: Dyadic, digits: int) -> ExactCell:
        term = Term(d.p, 1 << d.e, 1, d.e if d.e else None)
        return cls(d.string(), d.decimal(digits), (term,) if d.p else ())

    def __str__(self) -> str:
        return self.exact if self.exact is not None else self.decimal

    def fits(self) -> bool:
        """Short enough to stay in its cell: a rational of at most FIT_DIGITS digits, a radical sum of at most FIT_WIDTH."""
        if self.terms is None:
            return False
        if len(self.terms) == 1 and self.terms[0].root == 1:
            return self.terms[0].digits() <= FIT_DIGITS
        return sum(t.width() + 2 for t in self.terms) <= FIT_WIDTH and all(t.digits() <= FIT_DIGITS for t in self.terms)

    @property
    def over_budget(self) -> bool:
        """Only the certified decimal is known (the exact form exceeds the term budget)."""
        return self.terms is None and self.expression is None

    def latex(self, breakable: bool = False) -> str:
        if self.terms is not None:
            return _terms_latex(self.terms, breakable)
        return self.expression if self.expression is not None else self.decimal


@dataclass(frozen=True)
class Column:
    """How a column is typeset: header in LaTeX and Markdown, alignment, and the symbol of its values.

    ``align`` is ``l`` (text), ``r`` (numbers), ``d`` (decimals, aligned on the point) or ``p``
    (a paragraph that breaks, for lists). ``symbol`` names a value in the exact-values block,
    ``#`` standing for the row's first cell (e.g. ``\\tau_{#}``).
    """

    latex: str
    markdown: str
    align: str = "r"
    symbol: str = ""


def _plain_width(latex: str) -> float:
    """The printed width of a short LaTeX string, in digit widths (roughly: superscripts at 0.7)."""

    def count(s: str) -> float:
        s = re.sub(r"\\[a-zA-Z]+|[{}$_^]", "", s.replace(r"\min", "mi").replace(r"\sqrt", "v"))
        return len(s) + 0.15 * sum(ch.isalpha() for ch in s)  # letters run wider than digits

    def line_width(line: str) -> float:
        line = line.replace(r"\times", "xx")
        supers = re.findall(r"\^\{([^{}]*)\}", line)
        base = re.sub(r"\^\{[^{}]*\}", "", line)
        return count(base) + 0.7 * sum(count(s) for s in supers)

    return max(line_width(line) for line in latex.split(r"\\"))


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""
    header: list[str] | None = None  # comment lines (version, input hash)
    specs: list[Column] | None = None  # typesetting of each column (LaTeX, Markdown)
    latex_caption: str | None = None
    label: str = "tab:limitproc"
    values: str = "fit"  # exact values: "fit" (long ones below the table), "exact" (all in the cells), "decimal"
    note: str = ""  # a sentence under the caption (e.g. the digits shown)

    def render(self, fmt: str) -> str:
        if fmt not in TABLE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        if self.values not in VALUE_MODES:
            raise InputError("values", f"must be one of {', '.join(VALUE_MODES)}, got {self.values!r}")
        return getattr(self, f"_{fmt}")()

    def _spec(self, i: int) -> Column:
        if self.specs is not None:
            return self.specs[i]
        return Column(_latex_escape(self.columns[i]), self.columns[i].replace("|", "\\|"), "l")

    def _cells(self):
        def cell(c):
            if isinstance(c, ExactCell) and self.values == "decimal":
                return c.decimal
            return str(c) if c is not None else ""

        return [[cell(c) for c in row] for row in self.rows]

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

    def _moved(self) -> list[tuple[int, int]]:
        """The (row, column) of each exact value shown as a decimal in its cell, in reading order."""
        if self.values == "exact":
            return []
        return [
            (r, i)
            for r, row in enumerate(self.rows)
            for i, c in enumerate(row)
            if isinstance(c, ExactCell) and (self.values == "decimal" or not c.fits())
        ]

    def _symbol(self, r: int, i: int) -> str:
        symbol = self._spec(i).symbol or self.columns[i]
        return symbol.replace("#", str(self.rows[r][0]))

    def _markdown(self) -> str:
        moved = {at: k for k, at in enumerate(self._moved(), 1)}

        def cell(r, i, c):
            if not isinstance(c, ExactCell):
                return ("" if c is None else str(c)).replace("|", "\\|")
            if (r, i) in moved:
                return c.decimal + (f" [{moved[r, i]}]" if self.values == "fit" else "")
            return f"`{c.exact}`" if c.exact is not None else c.decimal

        align = {"l": ":---", "p": ":---", "r": "---:", "d": "---:"}
        lines = ["| " + " | ".join(self._spec(i).markdown for i in range(len(self.columns))) + " |"]
        lines.append("|" + "|".join(align[self._spec(i).align] for i in range(len(self.columns))) + "|")
        lines += ["| " + " | ".join(cell(r, i, c) for i, c in enumerate(row)) + " |" for r, row in enumerate(self.rows)]
        out = self._comments("<!-- ").replace("\n", " -->\n")
        if self.caption:
            out += f"**{self.caption}**" + (f" {self.note}" if self.note else "") + "\n\n"
        out += "\n".join(lines) + "\n"
        if moved:
            out += "\nExact values:\n\n"
            for (r, i), k in moved.items():
                c = self.rows[r][i]
                value = (
                    f"`{c.exact}`" if c.exact is not None else f"{c.decimal} (certified decimal; the exact form exceeds the term budget)"
                )
                out += f"{k}. ${self._symbol(r, i)}$ = {value}\n"
        return out

    # -- LaTeX: longtables that fit the text width, long exact values in a block under them -------
    def _latex_cell(self, r: int, i: int, moved: dict) -> str:
        c = self.rows[r][i]
        align = self._spec(i).align
        if isinstance(c, ExactCell):
            if (r, i) in moved:
                marker = f"{{}}^{{({moved[r, i]})}}" if self.values == "fit" else ""
                return f"${_decimal_latex(c.decimal)}{marker}$"
            if c.over_budget:  # the certified decimal is all there is
                return f"${_decimal_latex(c.decimal)}^{{\\ast}}$"
            return f"${c.latex(breakable=not c.fits())}$"
        text = "" if c is None else str(c)
        if align == "d":
            return _decimal_latex(text)
        return _latex_escape(text)

    def _paragraph(self, i: int) -> bool:
        """A column that breaks into lines: a list, or (all exact) long exact values."""
        long = any(isinstance(row[i], ExactCell) and not row[i].fits() for row in self.rows)
        return self._spec(i).align == "p" or (self.values == "exact" and long)

    def _width(self, i: int, cells: list[str]) -> float:
        if self._paragraph(i):
            return _PARAGRAPH

        def width(r, text):
            c = self.rows[r][i]
            if isinstance(c, ExactCell) and c.terms is not None and c.fits() and "(" not in text:  # shown exactly
                return sum(t.width() + 2 for t in c.terms)
            return _plain_width(text)

        return max([_plain_width(self._spec(i).latex)] + [width(r, text) for r, text in enumerate(cells)])

    def _latex(self) -> str:
        moved = {at: k for k, at in enumerate(self._moved(), 1)}
        cells = [[self._latex_cell(r, i, moved) for i in range(len(self.columns))] for r in range(len(self.rows))]
        widths = [self._width(i, [row[i] for row in cells]) for i in range(len(self.columns))]
        # the first column names the row; the others go into as many parts as the text width needs
        parts: list[list[int]] = []
        used = _TEXT_WIDTH
        for i in range(1, len(self.columns)):
            if used + widths[i] + _COLUMN_GAP > _TEXT_WIDTH - widths[0] - _COLUMN_GAP:
                parts.append([])
                used = 0
            parts[-1].append(i)
            used += widths[i] + _COLUMN_GAP
        uses = ", ".join(LATEX_PACKAGES)
        out = self._comments("% ") + f"% needs \\usepackage{{{uses}}} (booktabs: TeX Live recommended; the rest: LaTeX base)\n"
        caption = self.latex_caption or _latex_escape(self.caption)
        out += "{\\small\\renewcommand{\\arraystretch}{1.3}\\setlength{\\tabcolsep}{4pt}%\n"  # small type, room for the fractions
        for n, part in enumerate(parts or [[]]):
            keep = [0, *part]
            out += self._longtable(keep, cells, widths, caption if n == 0 else None, n)
        out += "}\n"
        if moved:
            out += self._exact_block(moved)
        return out

    def _longtable(self, keep: list[int], cells, widths, caption: str | None, part: int) -> str:
        def column(i):
            align = self._spec(i).align
            if align == "d":
                return "D{.}{.}{-1}"
            if self._paragraph(i):
                return rf">{{\raggedright\arraybackslash}}p{{{_PARAGRAPH * 5}pt}}"
            return align

        def head(i):
            text = self._spec(i).latex
            if r"\\" in text:
                text = r"\begin{tabular}[b]{@{}c@{}}" + text + r"\end{tabular}"
            return rf"\multicolumn{{1}}{{c}}{{{text}}}" if self._spec(i).align in "dp" or r"\\" in text else text

        header = " & ".join(head(i) for i in keep) + r" \\"
        lines = [r"\begin{longtable}{" + "".join(column(i) for i in keep) + "}"]
        if caption is not None:
            note = f" {self.note}" if self.note else ""
            lines.append(rf"\caption{{{caption}{note}}}\label{{{self.label}}}\\")
        else:
            lines.append(rf"\caption*{{Table~\ref{{{self.label}}}, continued (part {part + 1}).}}\\")
        lines += [r"\toprule", header, r"\midrule", r"\endfirsthead"]
        lines += [
            rf"\multicolumn{{{len(keep)}}}{{l}}{{\small\emph{{Table~\ref{{{self.label}}}, continued}}}}\\",
            r"\toprule",
            header,
            r"\midrule",
            r"\endhead",
        ]
        lines += [
            r"\midrule",
            rf"\multicolumn{{{len(keep)}}}{{r}}{{\small\emph{{continued on the next page}}}}\\",
            r"\endfoot",
            r"\bottomrule",
            r"\endlastfoot",
        ]
        lines += [" & ".join(row[i] for i in keep) + r" \\" for row in cells]
        lines.append(r"\end{longtable}")
        return "\n".join(lines) + "\n"

    def _exact_block(self, moved: dict) -> str:
        what = "marked $^{(k)}$" if self.values == "fit" else "shown as decimals"
        lines = [
            r"\begin{flushleft}\small\setlength{\lineskiplimit}{3pt}\setlength{\lineskip}{4pt}",
            rf"\textbf{{Exact values}} of the entries {what} in Table~\ref{{{self.label}}}.\par",
        ]
        for (r, i), k in moved.items():
            c = self.rows[r][i]
            tag = f"({k})~" if self.values == "fit" else ""
            if c.over_budget:
                value = rf"\approx {_decimal_latex(c.decimal)}$ (the exact form exceeds the term budget)"
            else:
                value = c.latex(breakable=True) + "$"
            lines.append(rf"\noindent\hangindent=2em {tag}${self._symbol(r, i)} = {value}\par")
        lines.append(r"\end{flushleft}")
        return "\n".join(lines) + "\n"

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
        tie = "" if not jump.tie else (jump.tie_certificate or "NOT certified")  # how the tie is certified
        rows.append(
            [
                jump.k,
                ExactCell.of_value(jump.tau, digits),
                jump.tau.decimal(digits),
                " ".join(map(str, jump.neurons)),
                int(jump.samples.size),
                ExactCell.of_rational(jump.plateau_loss, digits),
                tie,
            ]
        )
    specs = [
        Column("$k$", "k"),
        Column(r"$\tau_k$", "τ<sub>k</sub>", symbol=r"\tau_{#}"),
        Column(r"$\tau_k \approx$", "τ<sub>k</sub> ≈", "d"),
        Column("neurons", "neurons", "p" if any(len(r[3]) > _PARAGRAPH for r in rows) else "r"),
        Column("$|B_k|$", "\\|B<sub>k</sub>\\|"),
        Column("$L_k$", "L<sub>k</sub>", symbol="L_{#}"),
        Column("tie", "tie", "l"),
    ]
    p = result.problem
    caption = f"Jumps of the limit process (n = {p.n}, m = {p.m}): times tau_k, escaping neurons, blocks B_k, plateau losses L_k"
    latex = rf"Jumps of the limit process ($n = {p.n}$, $m = {p.m}$): times $\tau_k$, escaping neurons, blocks $B_k$, plateau losses $L_k$."
    return Table(
        ["k", "tau", "tau_decimal", "neurons", "block_size", "plateau_loss", "tie"],
        rows,
        caption,
        specs=specs,
        latex_caption=latex,
        label="tab:jumps",
        note=f"Decimals to {digits} significant digits, certified.",
    )


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


def prediction_table(record: dict) -> Table:
    """One row per jump of ``limitproc predict``'s JSON: the exact tau, the offset and the predicted
    drop, and with a comparison the simulated drop and the difference."""
    compared = "comparison" in record
    columns = ["k", "neurons", "tau (limit)", "delta (offset)", "t predicted", "tau predicted", "separated"]
    columns += ["t simulated", "predicted - simulated"] if compared else []

    def num(x):
        return "never" if x is None else f"{x:.6f}"

    rows = []
    for k, row in enumerate(record["jumps"]):
        cells = [row["k"], " ".join(map(str, row["neurons"])), row["tau_decimal"], num(row["delta"]), num(row["drop_time"])]
        cells += [num(row["drop_tau"]), "yes" if row["separated"] else "no"]
        if compared:
            cmp = record["comparison"]
            cells += [num(cmp["simulated_drop_times"][k]), num(cmp["drop_time_differences"][k])]
        rows.append(cells)
    return Table(columns, rows, caption=f"predicted finite-λ drops at λ = {record['lambda']} ({record['method']})")


def summary_lines(result: Result, digits: int = 30, ties: TieResolution | None = None) -> list[str]:
    """The human summary printed under the text table (with the approximate ``N`` and splits of ``ties``, if given)."""
    p = result.problem
    lines = [f"n = {p.n}, m = {p.m}, loss = {p.loss}, jumps = {len(result.jumps)}"]
    if result.interpolates:
        lines.append("interpolates: yes (every sample is covered)")
    else:
        lines.append(
            f"interpolates: no; {result.uncovered.size} uncovered samples, final loss {ExactCell.of_rational(result.final_loss, digits)}"
        )
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


def result_table_text(result: Result, fmt: str, digits: int = 30, ties: TieResolution | None = None) -> str:
    """The table formats of :func:`limitproc.io.render.render_result`: the jump table in ``fmt``; as text,
    with short exact times and then the summary (``ties``, a resolution of ``result``, adds its splits and ``N``)."""
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
    from dataclasses import replace

    keep = [i for i, c in enumerate(table.columns) if c not in set(names)]
    specs = None if table.specs is None else [table.specs[i] for i in keep]
    return replace(table, columns=[table.columns[i] for i in keep], rows=[[row[i] for i in keep] for row in table.rows], specs=specs)


def probability_table(ns, ms, digits: int | None = None, values: str | None = None) -> Table:
    """P(interpolate) (theory §7) for balanced classes over ``n × m``: exact dyadics ``p/2^e`` with
    certified decimals to ``digits`` significant digits (default 6). Giving ``digits`` without
    ``values`` shows decimals (``values="decimal"``); otherwise long exact values leave the cells ("fit")."""
    from ..probability import balanced, interpolation_probability

    rows = []
    for n in ns:
        rows.append([n] + [ExactCell.of_dyadic(interpolation_probability(*balanced(n), m), digits or 6) for m in ms])
    caption = "P(interpolate), balanced classes n₊ = ⌈n/2⌉, n₋ = ⌊n/2⌋"
    latex = r"$P(\text{interpolate})$ for balanced classes, $n_+ = \lceil n/2 \rceil$, $n_- = \lfloor n/2 \rfloor$, width $m$."
    specs = [Column("$n$", "n")] + [Column(f"$m = {m}$", f"m = {m}", symbol=f"P_{{#,{m}}}") for m in ms]
    note = f"Decimals to {digits or 6} significant digits, certified; $P_{{n,m}}$ is the entry in row $n$, column $m$."
    if values is None:
        values = "fit" if digits is None else "decimal"
    return Table(
        ["n"] + [f"m = {m}" for m in ms], rows, caption, specs=specs, latex_caption=latex, label="tab:prob", values=values, note=note
    )


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
    and the mean of ``N/sqrt(n)`` and ``N/N_min`` with the range of the latter (over determined runs),
    to ``digits`` decimal places (means of float64 values: approximate)."""
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
    specs = [
        Column("$n$", "n"),
        Column("$m$", "m"),
        Column("labels", "labels", "l"),
        Column("norms", "norms", "l"),
        Column("runs", "runs"),
        Column("interp.", "interpolating"),
        Column("$N$ det.", "N determined"),
        Column(r"mean\\$N/\sqrt{n}$", "mean N/√n", "d"),
        Column(r"mean\\$N/N_{\min}$", "mean N/N<sub>min</sub>", "d"),
        Column(r"min\\$N/N_{\min}$", "min N/N<sub>min</sub>", "d"),
        Column(r"max\\$N/N_{\min}$", "max N/N<sub>min</sub>", "d"),
    ]
    caption = "Norm scaling of the limit network (means over runs with a determined N)"
    latex = r"Norm scaling of the limit network: means over the runs with a determined $N$ (approximate: float64 means)."
    return Table(columns, out, caption, specs=specs, latex_caption=latex, label="tab:norms")
