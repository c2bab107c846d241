"""Notebook displays of exact results: compact HTML tables, LaTeX, and pandas frames.

Exact values are typeset as radicals from their canonical forms, in the order of their exact
strings. A value over the term budget (``.exact()`` is None), or in a table longer than
``DISPLAY_TERMS`` terms, shows its certified decimal instead. Every text put into HTML is escaped;
the LaTeX in it is typeset by the notebook's MathJax, and the plain exact string is the cell's
tooltip. Only the exact core is imported here: no pictures, no approximate paths.
"""

from __future__ import annotations

import html
from fractions import Fraction

from .errors import InputError
from .exact import ExactValue, RadicalSum, rational_string

__all__ = [
    "DISPLAY_DIGITS",
    "DISPLAY_ROWS",
    "DISPLAY_SAMPLES",
    "DISPLAY_TERMS",
    "bias_html",
    "bias_latex",
    "jump_html",
    "jump_latex",
    "jumps_frame",
    "rational_latex",
    "require_pandas",
    "result_html",
    "result_latex",
    "result_repr",
    "saddle_html",
    "saddle_latex",
    "saddles_frame",
    "value_latex",
]

DISPLAY_DIGITS = 12  # significant digits of the certified decimals shown
DISPLAY_TERMS = 8  # a table shows a longer radical by its decimal
DISPLAY_SAMPLES = 8  # a longer block is shown as its first samples and a count
DISPLAY_ROWS = 40  # jumps listed in a result's table


# -- values ----------------------------------------------------------------------------------
def rational_latex(q) -> str:
    q = Fraction(q)
    body = str(abs(q.numerator)) if q.denominator == 1 else rf"\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"
    return ("-" if q < 0 else "") + body


def _form(value: ExactValue, budget: int | None, max_terms: int | None) -> RadicalSum | None:
    form = value.form(budget)
    return None if form is None or (max_terms is not None and len(form) > max_terms) else form


def value_latex(value: ExactValue, digits: int = DISPLAY_DIGITS, budget: int | None = None, max_terms: int | None = None) -> str:
    """The radical of ``value`` (math mode, no delimiters), or ``\\approx`` its certified decimal
    when it is over the term budget or has more than ``max_terms`` terms."""
    form = _form(value, budget, max_terms)
    return form.latex() if form is not None else rf"\approx {value.decimal(digits)}"


def _value_html(value: ExactValue | None, digits: int, budget: int | None = None) -> str:
    if value is None:
        return "undetermined"
    full = value.form(budget)
    decimal = value.decimal(digits)
    form = full if full is not None and len(full) <= DISPLAY_TERMS else None
    if form is None:
        note = "over the term budget" if full is None else f"{len(full)} terms; .exact() gives them"
        return f'<span title="{html.escape(note)}">&asymp; {html.escape(decimal)}</span>'
    return f'<span title="{html.escape(str(form))} &asymp; {html.escape(decimal)}">${html.escape(form.latex())}$</span>'


def _rational_html(q) -> str:
    return f'<span title="{html.escape(rational_string(q))}">${html.escape(rational_latex(q))}$</span>'


def _samples(indices) -> list[int]:
    return [int(i) for i in indices]


def _samples_text(indices) -> str:
    """``1, 3, 5``, or the first ``DISPLAY_SAMPLES`` and ``… (n more)``."""
    items = _samples(indices)
    text = ", ".join(map(str, items[:DISPLAY_SAMPLES]))
    return text + (f", … ({len(items) - DISPLAY_SAMPLES} more)" if len(items) > DISPLAY_SAMPLES else "")


def _samples_latex(indices) -> str:
    items = _samples(indices)
    more = len(items) - DISPLAY_SAMPLES
    body = ", ".join(map(str, items[:DISPLAY_SAMPLES])) + (r", \ldots" if more > 0 else "")
    return r"\{" + body + r"\}" + (rf"\ (\text{{{more} more}})" if more > 0 else "")


# -- HTML scaffolding ------------------------------------------------------------------------
_STYLE = "border-collapse:collapse;margin:0.3em 0"


def _table(caption: str, header: list[str] | None, rows: list[list[str]]) -> str:
    """Cells are HTML already (escaped by their builders); the caption and header are escaped here."""
    out = [f'<table class="limitproc" style="{_STYLE}">', f"<caption>{html.escape(caption)}</caption>"]
    if header:
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "\n".join(out)


def _fields(caption: str, items: list[tuple[str, str]]) -> str:
    """A two-column table of ``(label, HTML value)``."""
    return _table(caption, None, [[f"<b>{html.escape(label)}</b>", value] for label, value in items])


def _text(value) -> str:
    return html.escape(str(value))


def _neurons_text(jump) -> str:
    text = ", ".join(map(str, jump.neurons))
    if jump.tie:
        text += f" (tie, {'certified by ' + jump.tie_certificate if jump.tie_certificate else 'NOT certified'})"
    return text


# -- Result ----------------------------------------------------------------------------------
def _norm_html(result, value: ExactValue | None, digits: int) -> str:
    """Norms are sums of at most m + 1 roots: always within the budget ``result.norm_exact`` uses."""
    if value is None:
        return f"undetermined ({_text(result.sq_norm_reason)})"
    return _value_html(value, digits, max(result.program.term_budget, result.problem.m + 2))


def result_html(result, digits: int = DISPLAY_DIGITS) -> str:
    p = result.problem
    rows = []
    for jump in result.jumps[:DISPLAY_ROWS]:
        rows.append(
            [
                _text(jump.k),
                _value_html(jump.tau, digits),
                _text(jump.tau.decimal(digits)),
                _text(_neurons_text(jump)),
                _text(jump.samples.size),
                _text(_samples_text(jump.samples)),
                _rational_html(jump.plateau_loss),
            ]
        )
    more = len(result.jumps) - DISPLAY_ROWS
    if more > 0:
        rows.append(["", _text(f"… ({more} more jumps)"), "", "", "", "", ""])
    header = ["k", "τ_k", "τ_k ≈", "neurons", "size", "block", "plateau loss"]
    count = f"{len(result.jumps)} jump" + ("" if len(result.jumps) == 1 else "s")
    jumps = _table(f"limit process: n = {p.n}, m = {p.m}, loss = {p.loss}, {count}", header, rows)
    if result.interpolates:
        interpolates = "yes"
    else:
        interpolates = f"no: {result.uncovered.size} uncovered ({_text(_samples_text(result.uncovered))}), final loss {_rational_html(result.final_loss)}"
    summary = [
        ("N (squared norm)", _norm_html(result, result.sq_norm, digits)),
        ("N_min", _norm_html(result, result.min_sq_norm, digits)),
        ("interpolates", interpolates),
    ]
    if result.never_escaped:
        summary.append(("never escaped", _text(_samples_text(result.never_escaped))))
    return f'<div class="limitproc">\n{jumps}\n{_fields("final network", summary)}\n</div>'


def _norm_latex(result, value: ExactValue | None, digits: int) -> str:
    if value is None:
        return r"\text{undetermined}"
    return value_latex(value, digits, max(result.program.term_budget, result.problem.m + 2), DISPLAY_TERMS)


def result_latex(result, digits: int = DISPLAY_DIGITS) -> str:
    lines = [r"$$\begin{array}{rllll}", r"k & \tau_k & \text{neurons} & \text{block} & L_k \\ \hline"]
    for jump in result.jumps[:DISPLAY_ROWS]:
        tau = value_latex(jump.tau, digits, max_terms=DISPLAY_TERMS)
        if not tau.startswith(r"\approx"):
            tau += rf" \approx {jump.tau.decimal(digits)}"
        neurons = ", ".join(map(str, jump.neurons))
        lines.append(rf"{jump.k} & {tau} & {neurons} & {_samples_latex(jump.samples)} & {rational_latex(jump.plateau_loss)} \\")
    more = len(result.jumps) - DISPLAY_ROWS
    if more > 0:
        lines.append(rf"\vdots & \text{{{more} more jumps}} & & & \\")
    lines.append(r"\end{array}$$")
    final = [rf"N = {_norm_latex(result, result.sq_norm, digits)}", rf"N_{{\min}} = {_norm_latex(result, result.min_sq_norm, digits)}"]
    final.append(
        r"\text{interpolates}" if result.interpolates else rf"\text{{does not interpolate: }} L = {rational_latex(result.final_loss)}"
    )
    lines.append("$$" + r",\quad ".join(final) + "$$")
    return "\n".join(lines)


def result_repr(result, width: int = 80) -> str:
    """``Result(n=6, m=4, jumps=3, interpolates=True, N=2 + 2*sqrt(5) + 2*sqrt(14))``."""
    p = result.problem
    if result.sq_norm is None:
        norm = "N=undetermined"
    else:
        text = result.norm_exact(result.sq_norm)
        norm = f"N={text}" if len(text) <= width else f"N≈{result.sq_norm.decimal(DISPLAY_DIGITS)}"
    return f"Result(n={p.n}, m={p.m}, jumps={len(result.jumps)}, interpolates={result.interpolates}, {norm})"


# -- Jump, Saddle ----------------------------------------------------------------------------
def jump_html(jump, digits: int = DISPLAY_DIGITS) -> str:
    items = [("τ", f"{_value_html(jump.tau, digits)} &asymp; {_text(jump.tau.decimal(digits))}"), ("neurons", _text(_neurons_text(jump)))]
    if jump.tie:
        items += [(f"block of neuron {j}", _text(_samples_text(jump.blocks[j]))) for j in jump.neurons]
        if jump.shared.size:
            items.append(("shared samples", _text(_samples_text(jump.shared))))
    items.append(("samples fitted", f"{_text(_samples_text(jump.samples))} ({jump.samples.size})"))
    items.append(("plateau loss", _rational_html(jump.plateau_loss)))
    items += [(f"rate μ_{j}", _value_html(rate, digits)) for j, rate in jump.rates.items()]
    return _fields(f"jump {jump.k}", items)


def jump_latex(jump, digits: int = DISPLAY_DIGITS) -> str:
    tau = value_latex(jump.tau, digits)
    if not tau.startswith(r"\approx"):
        tau += rf" \approx {jump.tau.decimal(digits)}"
    who = r"\text{neuron" + ("s" if jump.tie else "") + " " + ", ".join(map(str, jump.neurons)) + " fit" + ("" if jump.tie else "s") + "}"
    return rf"$$\tau_{{{jump.k}}} = {tau}:\ {who}\ {_samples_latex(jump.samples)},\quad L = {rational_latex(jump.plateau_loss)}$$"


def _escaped_text(saddle) -> str:
    return "; ".join(f"{j}: {{{_samples_text(block)}}}" for j, block in saddle.escaped.items()) or "none"


def saddle_html(saddle, digits: int = DISPLAY_DIGITS) -> str:
    items = [
        ("τ (entered)", _value_html(saddle.tau, digits)),
        ("loss", _rational_html(saddle.loss)),
        ("fitted samples", _text(f"{_samples_text(saddle.fitted)} ({saddle.fitted.size})")),
        ("escaped neurons: block", _text(_escaped_text(saddle))),
        ("N so far", _value_html(saddle.sq_norm, digits) if saddle.determined else "undetermined (after an overlapping tie)"),
        ("unstable neurons", _text(", ".join(map(str, saddle.unstable)) or "none")),
    ]
    if saddle.min_eigenvalue is not None:
        items.append(("smallest eigenvalue", _value_html(saddle.min_eigenvalue, digits)))
    return _fields(f"saddle {saddle.k}", items)


def saddle_latex(saddle, digits: int = DISPLAY_DIGITS) -> str:
    parts = [
        rf"\tau = {value_latex(saddle.tau, digits, max_terms=DISPLAY_TERMS)}",
        rf"L = {rational_latex(saddle.loss)}",
        rf"F = {_samples_latex(saddle.fitted)}",
    ]
    if saddle.sq_norm is not None:
        parts.append(rf"N = {value_latex(saddle.sq_norm, digits, max_terms=DISPLAY_TERMS)}")
    return rf"$$\text{{saddle {saddle.k}: }} " + r",\quad ".join(parts) + "$$"


# -- Bias ------------------------------------------------------------------------------------
def bias_html(bias, digits: int = DISPLAY_DIGITS) -> str:
    items = [("n", _text(bias.n))]
    if bias.interpolates is not None:
        items.append(("interpolates", "yes" if bias.interpolates else "no"))
    undetermined = f"undetermined ({_text(bias.reason)})"
    items.append(("N (squared norm)", _value_html(bias.sq_norm, digits) if bias.sq_norm is not None else undetermined))
    items.append(("N_min", _value_html(bias.min_sq_norm, digits)))
    if bias.sq_norm is not None:
        lower = bias.lower_bound()
        items += [
            ("N / N_min", _value_html(bias.ratio, digits)),
            ("N / √n", _value_html(bias.sqrt_n_constant, digits)),
            ("N_min ≤ N", ("holds" if lower.holds else "fails") + ("" if lower.certified else " (not certified)")),
        ]
    return _fields("implicit bias", items)


def bias_latex(bias, digits: int = DISPLAY_DIGITS) -> str:
    parts = [rf"N_{{\min}} = {value_latex(bias.min_sq_norm, digits, max_terms=DISPLAY_TERMS)}"]
    if bias.sq_norm is None:
        parts.insert(0, r"N\ \text{undetermined}")
    else:
        parts.insert(0, rf"N = {value_latex(bias.sq_norm, digits, max_terms=DISPLAY_TERMS)}")
        parts.append(rf"\frac{{N}}{{N_{{\min}}}} = {value_latex(bias.ratio, digits, max_terms=DISPLAY_TERMS)}")
        parts.append(rf"\frac{{N}}{{\sqrt{{n}}}} = {value_latex(bias.sqrt_n_constant, digits, max_terms=DISPLAY_TERMS)}")
    return "$$" + r",\quad ".join(parts) + "$$"


# -- pandas ----------------------------------------------------------------------------------
def require_pandas():
    """The pandas module, or an :class:`InputError` saying how to get it (pandas is optional)."""
    try:
        import pandas
    except ImportError:
        raise InputError("pandas", "not installed; data frames need it (pip install pandas)") from None
    return pandas


_JUMP_COLUMNS = (
    "k",
    "tau",
    "tau_decimal",
    "neurons",
    "block_size",
    "samples",
    "plateau_loss",
    "plateau_loss_decimal",
    "tie",
    "tie_certified",
)
_SADDLE_COLUMNS = (
    "k",
    "tau",
    "tau_decimal",
    "loss",
    "loss_decimal",
    "fitted",
    "neurons",
    "determined",
    "sq_norm",
    "sq_norm_decimal",
    "unstable",
    "min_eigenvalue",
    "min_eigenvalue_decimal",
)


def _pair(value: ExactValue | None, budget: int | None = None) -> tuple[str | None, float | None]:
    """The exact string (None over the budget) and the float of the certified decimal."""
    return (None, None) if value is None else (value.exact(budget), float(value))


def jumps_frame(result):
    """One row per jump: exact values as sympify-able strings (None over the budget) with float twins."""
    rows = []
    for jump in result.jumps:
        tau, tau_decimal = _pair(jump.tau)
        rows.append(
            {
                "k": jump.k,
                "tau": tau,
                "tau_decimal": tau_decimal,
                "neurons": list(jump.neurons),
                "block_size": int(jump.samples.size),
                "samples": _samples(jump.samples),
                "plateau_loss": rational_string(jump.plateau_loss),
                "plateau_loss_decimal": float(jump.plateau_loss),
                "tie": jump.tie,
                "tie_certified": jump.tie_certified,
            }
        )
    return require_pandas().DataFrame(rows, columns=list(_JUMP_COLUMNS))


def saddles_frame(result):
    """One row per saddle (0 is the origin): entry time, loss, fitted set, escaped neurons, norm so far."""
    budget = max(result.program.term_budget, result.problem.m + 2)  # norms always fit, as in ``norm_exact``
    rows = []
    for saddle in result.saddles:
        tau, tau_decimal = _pair(saddle.tau)
        sq_norm, sq_norm_decimal = _pair(saddle.sq_norm, budget)
        eig, eig_decimal = _pair(saddle.min_eigenvalue)
        rows.append(
            {
                "k": saddle.k,
                "tau": tau,
                "tau_decimal": tau_decimal,
                "loss": rational_string(saddle.loss),
                "loss_decimal": float(saddle.loss),
                "fitted": _samples(saddle.fitted),
                "neurons": sorted(saddle.escaped),
                "determined": saddle.determined,
                "sq_norm": sq_norm,
                "sq_norm_decimal": sq_norm_decimal,
                "unstable": len(saddle.unstable),
                "min_eigenvalue": eig,
                "min_eigenvalue_decimal": eig_decimal,
            }
        )
    return require_pandas().DataFrame(rows, columns=list(_SADDLE_COLUMNS))
