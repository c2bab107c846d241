"""Notebook displays: the HTML and LaTeX of spec §10 example 2 read back to the spec's exact values,
escaping, the decimal fallback over the term budget, and the pandas frames."""

import re
import sys
from fractions import Fraction
from html.parser import HTMLParser

import pytest
import sympy
from helpers import EXAMPLE_2
from sympy import sqrt
from test_tables import latex_number

from limitproc import InputError, Problem, solve
from limitproc.bias import Bias
from limitproc.io.tables import jump_table

# spec §10, example 2 (the same values as test_tables: times, plateau losses, N and N_min)
TAUS = [3 * sqrt(14) / 7, 6 * sqrt(5) / 5, 6 + 3 * sqrt(14) / 7 - 3 * sqrt(70) / 7]
LOSSES = [Fraction(1, 2), Fraction(1, 12), Fraction(0)]
N = 2 + 2 * sqrt(5) + 2 * sqrt(14)
N_MIN = 2 * sqrt(5) + 2 * sqrt(15)  # 2(||y_+|| + ||y_-||) with y_+ = (1, 2, 3, 1), y_- = (-1, -2)

ALLOWED_TAGS = {"div", "table", "caption", "thead", "tbody", "tr", "th", "td", "span", "b"}


class Tables(HTMLParser):
    """Tables of an HTML text as lists of rows of unescaped cell texts; checks the tags balance."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables, self.stack, self.titles = [], [], []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
        self.titles += [v for k, v in attrs if k == "title"]

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"misnested </{tag}>"

    def handle_data(self, data):
        if self.stack and self.stack[-1] != "caption" and {"td", "th"} & set(self.stack):
            self.tables[-1][-1][-1] += data


def tables(text: str) -> list[list[list[str]]]:
    return Tables(text).tables


def tags(text: str) -> set[str]:
    found = set()

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.add(tag)

    Collect().feed(text)
    return found


def math(cell: str):
    """The value typeset in a cell ``$...$``."""
    (body,) = re.findall(r"\$([^$]*)\$", cell)
    return latex_number(body)


def fields(table) -> dict[str, str]:
    return {row[0]: row[1] for row in table}


@pytest.fixture(scope="module")
def result():
    return solve(EXAMPLE_2)


def test_result_html_reads_back_the_spec_values(result):
    text = result._repr_html_()
    assert tags(text) <= ALLOWED_TAGS
    jumps, final = tables(text)
    header, *rows = jumps
    assert header == ["k", "τ_k", "τ_k ≈", "neurons", "size", "block", "plateau loss"]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    for row, tau, loss in zip(rows, TAUS, LOSSES):
        assert sympy.simplify(math(row[1]) - tau) == 0
        assert row[2] == str(sympy.N(tau, 12))  # the certified decimal, 12 digits
        assert math(row[6]) == sympy.Rational(loss.numerator, loss.denominator)
    assert [(r[3], r[4], r[5]) for r in rows] == [("2", "3", "1, 3, 5"), ("1", "2", "2, 4"), ("0", "1", "0")]
    final = fields(final)
    assert sympy.simplify(math(final["N (squared norm)"]) - N) == 0
    assert sympy.simplify(math(final["N_min"]) - N_MIN) == 0
    assert final["interpolates"] == "yes" and final["never escaped"] == "3"
    # the radicals as typeset (hand-written), and the plain forms as tooltips
    assert r"$\frac{3 \sqrt{14}}{7}$" in text and r"$\frac{6 \sqrt{5}}{5}$" in text
    assert r"$2 + 2 \sqrt{5} + 2 \sqrt{14}$" in text
    assert "3*sqrt(14)/7 ≈ 1.60356745147" in Tables(text).titles


def test_result_latex_reads_back(result):
    tex = result._repr_latex_()
    assert tex.count("{") == tex.count("}") and tex.count("$$") % 2 == 0
    body = tex.split(r"\hline")[1].split(r"\end{array}")[0]
    rows = [r.split(" & ") for r in body.strip().split(r" \\") if r.strip()]
    assert [r[0].strip() for r in rows] == ["1", "2", "3"]
    for row, tau in zip(rows, TAUS):
        exact, decimal = row[1].split(r" \approx ")
        assert sympy.simplify(latex_number(exact) - tau) == 0 and decimal == str(sympy.N(tau, 12))
    assert rows[0][3] == r"\{1, 3, 5\}"
    norm = re.search(r"\$\$N = (.*?),\\quad", tex).group(1)
    assert sympy.simplify(latex_number(norm) - N) == 0


def test_result_repr_is_short(result):
    assert repr(result) == "Result(n=6, m=4, jumps=3, interpolates=True, N=2 + 2*sqrt(5) + 2*sqrt(14))"


def test_exact_value_latex(result):
    for jump, tau in zip(result.jumps, TAUS):
        tex = jump.tau._repr_latex_()
        assert tex.startswith("$") and tex.endswith("$")
        assert sympy.simplify(latex_number(tex) - tau) == 0
    assert result.jumps[2].tau._repr_latex_() == r"$6 + \frac{3 \sqrt{14}}{7} - \frac{3 \sqrt{70}}{7}$"
    assert result.saddles[0].min_eigenvalue._repr_latex_() == r"$-\frac{\sqrt{14}}{6}$"  # -mu_2 = -sqrt(14)/6


def test_jump_and_saddle_displays(result):
    jump = fields(tables(result.jumps[0]._repr_html_())[0])
    assert sympy.simplify(math(jump["τ"]) - TAUS[0]) == 0
    assert jump["neurons"] == "2" and jump["samples fitted"] == "1, 3, 5 (3)"
    assert math(jump["rate μ_2"]) == sqrt(14) / 6  # mu = (1/n) sqrt(sum of y^2 on {1, 3, 5}) = sqrt(4 + 9 + 1) / 6
    tex = result.jumps[1]._repr_latex_()
    tau = re.search(r"\\tau_\{2\} = (.*?) \\approx", tex).group(1)
    assert sympy.simplify(latex_number(tau) - TAUS[1]) == 0
    assert r"\text{neuron 1 fits}\ \{2, 4\}" in tex and r"L = \frac{1}{12}" in tex

    saddle = fields(tables(result.saddles[2]._repr_html_())[0])
    assert saddle["fitted samples"] == "1, 2, 3, 4, 5 (5)"
    assert saddle["escaped neurons: block"] == "2: {1, 3, 5}; 1: {2, 4}"
    assert sympy.simplify(math(saddle["N so far"]) - (2 * sqrt(5) + 2 * sqrt(14))) == 0
    assert math(saddle["loss"]) == sympy.Rational(1, 12) and saddle["unstable neurons"] == "0"
    assert r"F = \{1, 2, 3, 4, 5\}" in result.saddles[2]._repr_latex_()


def test_bias_displays(result):
    bias = Bias.of_result(result)
    values = fields(tables(bias._repr_html_())[0])
    assert sympy.simplify(math(values["N (squared norm)"]) - N) == 0
    assert sympy.simplify(math(values["N_min"]) - N_MIN) == 0
    assert sympy.simplify(math(values["N / N_min"]) - N / N_MIN) == 0
    assert sympy.simplify(math(values["N / √n"]) - N / sqrt(6)) == 0
    assert values["N_min ≤ N"] == "holds"
    tex = bias._repr_latex_()
    ratio = re.search(r"\\frac\{N\}\{N_\{\\min\}\} = (.*?),\\quad", tex).group(1)
    assert sympy.simplify(latex_number(ratio) - N / N_MIN) == 0


def test_everything_is_escaped(result):
    hostile = "<script>alert('x & y')</script>"
    bias = Bias(4, None, "2*sqrt(2)", reason=hostile)
    text = bias._repr_html_()
    assert tags(text) <= ALLOWED_TAGS and "<script>" not in text
    assert "&lt;script&gt;" in text and hostile in fields(tables(text)[0])["N (squared norm)"]

    undetermined = solve(Problem(labels=[1, 1, 1, -1], signs=[1, 1, -1], active=[[0, 1], [1, 2], [3]]))  # blocks share 1
    undetermined.sq_norm_reason = hostile
    text = undetermined._repr_html_()
    assert tags(text) <= ALLOWED_TAGS and hostile in fields(tables(text)[1])["N (squared norm)"]
    assert tables(text)[0][1][3] == "0, 1 (tie, certified by structure)"


def test_over_the_budget_shows_certified_decimals():
    result = solve(EXAMPLE_2, term_budget=1)  # the third time has three terms
    assert result.jumps[2].tau.exact() is None
    rows = tables(result._repr_html_())[0][1:]
    decimal = str(sympy.N(TAUS[2], 12))
    assert rows[2][1] == f"≈ {decimal}" and rows[2][2] == decimal
    assert sympy.simplify(math(rows[0][1]) - TAUS[0]) == 0  # one-term times stay exact
    assert result.jumps[2].tau._repr_latex_() == rf"$\approx {decimal}$"
    assert rf"\approx {decimal} & 0 &" in result._repr_latex_()
    frame = result.to_frame()
    assert frame["tau"].isna().tolist() == [False, False, True]
    assert frame["tau_decimal"][2] == pytest.approx(float(sympy.N(TAUS[2], 30)), rel=1e-15)


def test_long_blocks_are_shortened():
    # one neuron active on 12 samples with y = 1: mu = (1/12) sqrt(12), so tau = 1/mu = 2 sqrt(3)
    result = solve(Problem(labels=[1] * 12, signs=[1], active=[range(12)]))
    (row,) = tables(result._repr_html_())[0][1:]
    assert row[5] == "0, 1, 2, 3, 4, 5, 6, 7, … (4 more)" and row[4] == "12"
    assert math(row[1]) == 2 * sqrt(3)
    assert r"\{0, 1, 2, 3, 4, 5, 6, 7, \ldots\}\ (\text{4 more})" in result.jumps[0]._repr_latex_()


def test_jump_frame_holds_the_exact_values(result):
    frame = result.to_frame()
    assert list(frame["k"]) == [1, 2, 3]
    for tau, decimal, expected in zip(frame["tau"], frame["tau_decimal"], TAUS):
        assert sympy.simplify(sympy.sympify(tau) - expected) == 0
        assert decimal == pytest.approx(float(sympy.N(expected, 30)), rel=1e-15)
    assert [Fraction(q) for q in frame["plateau_loss"]] == LOSSES
    assert list(frame["neurons"]) == [[2], [1], [0]] and list(frame["samples"]) == [[1, 3, 5], [2, 4], [0]]
    assert list(frame["block_size"]) == [3, 2, 1] and not frame["tie"].any()


def test_saddles_frame(result):
    frame = result.saddles_frame()
    assert list(frame["k"]) == [0, 1, 2, 3]
    # plateau losses (1/12) sum y^2 of the unfitted samples: all 20, then {0, 2, 4}: 6, {0}: 1, none
    assert [Fraction(q) for q in frame["loss"]] == [Fraction(5, 3), *LOSSES]
    assert sympy.sympify(frame["tau"][0]) == 0
    assert all(sympy.simplify(sympy.sympify(t) - e) == 0 for t, e in zip(frame["tau"][1:], TAUS))
    assert sympy.simplify(sympy.sympify(frame["sq_norm"][3]) - N) == 0
    assert list(frame["fitted"][3]) == [0, 1, 2, 3, 4, 5] and list(frame["neurons"][3]) == [0, 1, 2]
    assert list(frame["unstable"]) == [4, 3, 1, 0]
    assert frame["min_eigenvalue"].isna().tolist() == [False, False, False, True]
    assert sympy.sympify(frame["min_eigenvalue"][2]) == sympy.Rational(-1, 6)


def test_table_frame(result):
    table = jump_table(result)
    frame = table.to_frame()
    assert list(frame.columns) == table.columns and len(frame) == 3
    assert all(sympy.simplify(sympy.sympify(t) - e) == 0 for t, e in zip(frame["tau"], TAUS))
    assert [Fraction(q) for q in frame["plateau_loss"]] == LOSSES
    floats = table.to_frame(exact=False)
    assert floats["tau"].tolist() == pytest.approx([float(sympy.N(t, 30)) for t in TAUS], rel=1e-15)


def test_frames_without_pandas(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(InputError, match="^pandas: not installed"):
        result.to_frame()
    with pytest.raises(InputError, match="^pandas: not installed"):
        jump_table(result).to_frame()
