"""Appendix tables: well-formed LaTeX, exact values that parse back, deterministic bytes, headers."""

import json
import re
import subprocess
import sys
from fractions import Fraction

import pytest
import sympy
from sympy import sqrt

from limitproc.io.sweeprows import read_rows, write_rows
from limitproc.io.tables import norm_scaling_table
from limitproc.probability import p_interpolate

EXAMPLE_2 = {"labels": [1, 2, -1, 3, -2, 1], "signs": [1, -1, 1, -1], "active": [[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]]}
# spec §10, example 2: jump times; plateau losses (1/12) * sum of y^2 left: {0,2,4} -> 6/12, {0} -> 1/12, none -> 0
TAUS = [3 * sqrt(14) / 7, 6 * sqrt(5) / 5, 6 + 3 * sqrt(14) / 7 - 3 * sqrt(70) / 7]
LOSSES = [Fraction(1, 2), Fraction(1, 12), Fraction(0)]


def latex_number(latex: str):
    """An exact value as the table typesets it (integers, \\frac, \\sqrt, 2^{e}, long integers broken by \\allowbreak)."""
    s = latex.strip().strip("$").replace("\\allowbreak ", "")
    s = re.sub(r"\\sqrt\{(\d+)\}", r"sqrt(\1)", s)
    s = re.sub(r"\^\{(\d+)\}", r"**(\1)", s)
    while (t := re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)) != s:
        s = t
    assert "\\" not in s and "{" not in s, latex
    s = re.sub(r"(\d|\))\s*(sqrt|\()", r"\1*\2", s)
    return sympy.sympify(s)


def run(*argv):
    out = subprocess.run([sys.executable, "-m", "limitproc", *map(str, argv)], capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


@pytest.fixture(autouse=True)
def long_integers():
    """P(interpolate) at n = 1024 has numerators of thousands of digits (CPython refuses past 4300)."""
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    yield
    sys.set_int_max_str_digits(saved)


def compiles(tex: str, tmp_path) -> str:
    """Compile the table in a plain article with the packages its header names; return the log."""
    packages = re.search(r"^% needs (\\usepackage\{[a-z, ]+\})", tex, re.M).group(1)
    assert set(re.findall(r"[a-z]+", packages.split("{")[1])) <= {"amsmath", "booktabs", "longtable", "array", "dcolumn"}
    (tmp_path / "table.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n" + packages + "\n\\begin{document}\n\\input{table}\n\\end{document}\n")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path, capture_output=True)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert out.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, log[log.index("Overfull") :][:500]
    return log


def read_latex(tex: str):
    """The cells of every part of a LaTeX table by (row key, header), and the exact-values block by marker."""
    cells = {}
    for part in re.findall(r"\\begin\{longtable\}.*?\\end\{longtable\}", tex, re.S):
        header = part.split("\\toprule\n")[1].split(" \\\\\n")[0].split(" & ")
        header = [re.sub(r"^\\multicolumn\{1\}\{c\}\{(.*)\}$", r"\1", h) for h in header]
        body = part.split("\\endlastfoot\n")[1].split("\\end{longtable}")[0]
        for line in body.strip().splitlines():
            row = line.removesuffix(r" \\").split(" & ")
            assert len(row) == len(header), line
            cells.update({(row[0], h): c for h, c in zip(header, row)})
    block = dict(re.findall(r"\((\d+)\)~\$[^=]*= (.*?)\$\\par", tex))
    return cells, block


def decimal_of(latex: str):
    """A decimal cell ``d.ddd\\times 10^{e}{}^{(k)}``: (value, last digit's place, marker or None)."""
    m = re.fullmatch(r"\$?(-?\d+(?:\.(\d+))?)(?:\\times 10\^\{(-?\d+)\})?(?:\{\}\^\{\((\d+)\)\})?\$?", latex.strip())
    assert m, latex
    exponent = int(m.group(3) or 0)
    return sympy.Rational(m.group(1)) * sympy.Integer(10) ** exponent, exponent - len(m.group(2) or ""), m.group(4)


def check_decimal(latex: str, exact) -> str | None:
    """The decimal agrees with the exact value to its printed digits (half a unit of its last place)."""
    shown, place, marker = decimal_of(latex)
    error = abs(sympy.N(exact - shown, 60)) if not isinstance(exact, Fraction) else abs(exact - Fraction(str(shown)))
    assert error <= sympy.Rational(1, 2) * sympy.Integer(10) ** place, (latex, exact)
    return marker


def check_value(cell: str, block: dict, exact) -> bool:
    """A cell holds the exact value, or a certified decimal whose marker leads to it; True when moved."""
    if "(" in cell or "." in cell:
        marker = check_decimal(cell, exact)
        assert marker is not None, cell  # never a decimal without its exact value
        assert sympy.expand(latex_number(block[marker]) - sympy.sympify(exact)) == 0
        return True
    assert sympy.expand(latex_number(cell) - sympy.sympify(exact)) == 0
    return False


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(EXAMPLE_2))
    return path


def test_jump_table_latex(problem, tmp_path):
    tex = run("table", "jumps", problem, "--format", "latex", "--label", "tab:example2").decode()
    compiles(tex, tmp_path)
    assert "\\label{tab:example2}" in tex and "$\\tau_k$" in tex and "$|B_k|$" in tex and "$L_k$" in tex
    cells, block = read_latex(tex)
    assert "\\frac{3 \\sqrt{14}}{7}" in tex
    for k, tau, loss in zip("123", TAUS, LOSSES):
        check_value(cells[k, "$\\tau_k$"], block, tau)
        assert latex_number(cells[k, "$L_k$"]) == sympy.Rational(loss.numerator, loss.denominator)
        check_decimal(cells[k, "$\\tau_k \\approx$"], tau)
    assert [cells[k, "$|B_k|$"] for k in "123"] == ["3", "2", "1"]


@pytest.mark.parametrize("n,m,seed", [(6, 4, 1), (64, 12, 7), (1000, 16, 7)])
def test_jump_tables_compile_and_read_back(tmp_path, n, m, seed):
    from limitproc import Problem
    from limitproc.process import solve

    path = tmp_path / "p.json"
    run("generate", "--n", n, "--m", m, "--seed", seed, "-o", path)
    result = solve(Problem.from_file(path))
    tex = run("table", "jumps", path).decode()
    compiles(tex, tmp_path)
    cells, block = read_latex(tex)
    moved = 0
    for jump in result.jumps:
        k = str(jump.k)
        moved += check_value(cells[k, "$\\tau_k$"], block, jump.tau.sympy())
        moved += check_value(cells[k, "$L_k$"], block, jump.plateau_loss)
        check_decimal(cells[k, "$\\tau_k \\approx$"], jump.tau.sympy())
    assert moved == len(block)
    if n == 1000:
        assert moved > 0  # long radical sums leave their cells
    for values in ("exact", "decimal"):
        compiles(run("table", "jumps", path, "--values", values).decode(), tmp_path)


def test_probability_table_exact_and_decimal(tmp_path):
    tex = run("table", "prob", "--n", 2, 3, 5, "--m", 2, 3, "--format", "latex").decode()
    compiles(tex, tmp_path)
    cells, block = read_latex(tex)
    assert latex_number(cells["2", "$m = 2$"]) == sympy.Rational(1, 8)  # one neuron of each sign, both active: 2 (1/4)^2
    for n in (2, 3, 5):
        for m in (2, 3):
            check_value(cells[str(n), f"$m = {m}$"], block, p_interpolate((n + 1) // 2, n // 2, m))
    assert "$n_+ = \\lceil n/2 \\rceil$" in tex
    config = tmp_path / "t.toml"
    config.write_text("[table]\nn = [2, 3, 5]\nm = [2, 3]\ndecimal = 6\n")
    md = run("table", "prob", "--config", config, "--format", "markdown").decode()
    assert "| 2 | 0.125000 | 0.281250 |" in md  # 1/8 and 9/32
    assert md == run("table", "prob", "--n", 2, 3, 5, "--m", 2, 3, "--decimal", 6, "--format", "markdown").decode()


def test_large_probability_table_fits_and_reads_back(tmp_path):
    ns, ms = (16, 1024), (4, 12, 32)
    tex = run("table", "prob", "--n", *ns, "--m", *ms).decode()  # n = 1024, m = 32 used to crash in sympy
    compiles(tex, tmp_path)
    cells, block = read_latex(tex)
    for n in ns:
        for m in ms:
            p = p_interpolate((n + 1) // 2, n // 2, m)
            moved = check_value(cells[str(n), f"$m = {m}$"], block, p)
            assert moved == (len(str(p.numerator)) > 12)  # p/2^e keeps short numerators in the cell
    assert re.search(r"\\allowbreak \d+/2\^\{\d+\}", tex)  # a long one is shown as p/2^e, p broken over lines
    decimal = run("table", "prob", "--n", *ns, "--m", *ms, "--values", "decimal").decode()
    compiles(decimal, tmp_path)
    cells, _ = read_latex(decimal)
    exact = {(n, m): latex_number(v) for n, m, v in re.findall(r"\$P_\{(\d+),(\d+)\} = (.*?)\$\\par", decimal)}
    for n in ns:  # every value rounded in a cell is exact below the table
        for m in ms:
            p = p_interpolate((n + 1) // 2, n // 2, m)
            assert check_decimal(cells[str(n), f"$m = {m}$"], p) is None  # no markers: every cell is a decimal
            assert exact[str(n), str(m)] == sympy.Rational(p.numerator, p.denominator)
    wide = run("table", "prob", "--n", 2, 3, "--m", *range(2, 30, 2)).decode()
    compiles(wide, tmp_path)
    assert wide.count("\\begin{longtable}") > 1  # too many columns for one page width: split in parts


def test_markdown_tables_move_long_values_to_notes(problem, tmp_path):
    md = run("table", "prob", "--n", 4, 64, "--m", 8, "--format", "markdown").decode()
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[1] == "|---:|---:|" and len(lines) == 4
    note = re.search(r"^1\. \$P_\{64,8\}\$ = `(\d+/\d+)`$", md, re.M).group(1)
    assert Fraction(note) == p_interpolate(32, 32, 8) and lines[3].endswith(" [1] |")
    check_decimal(lines[3].split(" | ")[1].removesuffix(" [1] |"), p_interpolate(32, 32, 8))


def row(n, seed, ratio, determined=True):
    base = {
        "n": n,
        "m": 8,
        "labels": "pm1",
        "norms": "unit",
        "seed": seed,
        "n_pos": n // 2,
        "n_neg": n - n // 2,
        "interpolates": True,
        "uncovered": 0,
        "sq_norm": 2.0 * ratio,
        "sq_norm_determined": determined,
        "sq_norm_undetermined": "" if determined else "tie",
        "min_sq_norm": 2.0,
        "ratio": ratio,
        "sqrt_n_constant": 2.0 * ratio / n**0.5,
        "sq_norm_exact": "",
        "min_sq_norm_exact": "2",
        "jumps": 3,
        "ties": 0,
        "first_jump_tau": 1.0,
        "last_jump_tau": 2.0,
        "engine_seconds": 0.0,
    }
    if not determined:
        base |= {"sq_norm": float("nan"), "ratio": float("nan"), "sqrt_n_constant": float("nan")}
    return base


def test_norm_scaling_table_from_a_sweep_file(tmp_path):
    path = tmp_path / "s.csv"
    write_rows([row(4, 0, 1.5), row(4, 1, 2.5), row(4, 2, 0, determined=False), row(16, 0, 2.0)], path)
    table = norm_scaling_table(read_rows(path), digits=3)
    # N/sqrt(n) = 2 ratio / sqrt(4) = ratio: both means are (1.5 + 2.5) / 2 over the two determined runs
    assert table.rows[0][4:] == [3, 3, 2, "2.000", "2.000", "1.500", "2.500"]
    assert table.rows[1][:2] == [16, 8] and table.rows[1][8] == "2.000"
    first = run("table", "norms", path, "--format", "latex")
    assert first == run("table", "norms", path, "--format", "latex")
    tex = first.decode()
    compiles(tex, tmp_path)
    cells, _ = read_latex(tex)
    assert cells["4", "$n$"] == "4" and "D{.}{.}{-1}" in tex  # means aligned on the point
    assert [v for (key, _), v in cells.items() if key == "4"][-4:] == ["2.0000", "2.0000", "1.5000", "2.5000"]  # 4 places


def test_norm_table_of_a_large_sweep_fits(tmp_path):
    path = tmp_path / "s.csv"
    rows = [row(n, seed, 1 + seed / 7 + n / 1000) for n in (16, 64, 256, 1024, 4096) for seed in range(4)]
    write_rows([r | {"labels": labels} for r in rows for labels in ("pm1", "gauss", "uniform")], path)
    compiles(run("table", "norms", path, "--decimals", 8).decode(), tmp_path)


def test_descent_times_are_exact_expressions_in_every_format(tmp_path):
    """Under a step η the times are logarithms (theory §11): ρ = log(1 + η μ)/η. For example 2 at η = 1 the
    first escape (block {1, 3, 5}, Σ y² = 14, c = 1/12) has μ = 2c √14 = √14/6, so τ_1 = 1/log(1 + √14/6).
    Every format prints that expression (the tables printed "over budget", the CSV the decimal)."""
    path = tmp_path / "ex2.json"
    path.write_text(json.dumps(EXAMPLE_2))
    expected = 1 / sympy.log(1 + sqrt(14) / 6)
    rows = run("solve", path, "--lr", "1", "--format", "csv").decode().splitlines()
    assert sympy.simplify(sympy.sympify(rows[1].split(",")[1]) - expected) == 0
    text = run("solve", path, "--lr", "1").decode()
    assert "over budget" not in text and "1/log(1 + sqrt(14)/6)" in text
    latex = run("solve", path, "--lr", "1", "--format", "latex").decode()
    assert r"\frac{1}{\log{\left(\frac{\sqrt{14}}{6} + 1 \right)}}" in latex and "term budget" not in latex
