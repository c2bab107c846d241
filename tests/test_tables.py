"""Appendix tables: well-formed LaTeX, exact values that parse back, deterministic bytes, headers."""

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from fractions import Fraction

import pytest
import sympy
from sympy import sqrt

from limitproc import __version__
from limitproc.io.sweeprows import read_rows, write_rows
from limitproc.io.tables import norm_scaling_table
from limitproc.probability import p_interpolate

EXAMPLE_2 = {"labels": [1, 2, -1, 3, -2, 1], "signs": [1, -1, 1, -1], "active": [[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]]}
# spec §10, example 2: jump times; plateau losses (1/12) * sum of y^2 left: {0,2,4} -> 6/12, {0} -> 1/12, none -> 0
TAUS = [3 * sqrt(14) / 7, 6 * sqrt(5) / 5, 6 + 3 * sqrt(14) / 7 - 3 * sqrt(70) / 7]
LOSSES = [Fraction(1, 2), Fraction(1, 12), Fraction(0)]


def latex_number(cell: str):
    """Read back the small LaTeX subset of exact values: integers, \\frac, \\sqrt, + and -."""
    s = cell.strip().strip("$")
    s = re.sub(r"\\sqrt\{(\d+)\}", r"sqrt(\1)", s)
    while (t := re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)) != s:
        s = t
    assert "\\" not in s and "{" not in s, cell
    s = re.sub(r"(\d|\))\s+(sqrt|\()", r"\1*\2", s)
    return sympy.sympify(s)


def run(*argv):
    out = subprocess.run([sys.executable, "-m", "limitproc", *argv], capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def tabular_rows(tex: str):
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", tex).group(1)
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return len(spec), [r.removesuffix(r" \\").split(" & ") for r in body.strip().splitlines()]


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(EXAMPLE_2))
    return path


def test_jump_table_latex(problem):
    tex = run("table", "jumps", str(problem), "--format", "latex").decode()
    assert tex.count("{") == tex.count("}")
    depth = 0
    for ch in tex:  # balanced in order, not just in number
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 1
    ncols, rows = tabular_rows(tex)
    header = tex.split("\\toprule\n")[1].split(" \\\\")[0].split(" & ")
    assert len(header) == ncols == 7
    assert len(rows) == 3 and all(len(r) == ncols for r in rows)
    assert "\\frac{3 \\sqrt{14}}{7}" in tex
    for row, tau, loss in zip(rows, TAUS, LOSSES):
        assert sympy.simplify(latex_number(row[1]) - tau) == 0
        assert latex_number(row[5]) == sympy.Rational(loss.numerator, loss.denominator)
        assert float(row[2]) == pytest.approx(float(tau), rel=1e-11)


def test_jump_table_header_and_determinism(problem):
    first = run("table", "jumps", str(problem), "--format", "latex")
    assert run("table", "jumps", str(problem), "--format", "latex") == first
    digest = hashlib.sha256(problem.read_bytes()).hexdigest()
    lines = first.decode().splitlines()
    assert lines[0] == f"% limitproc {__version__}: jumps table"
    assert lines[1] == f"% input sha256 {digest}"


def test_jump_table_csv_markdown_json(problem):
    text = run("table", "jumps", str(problem), "--format", "csv", "--no-decimal-column").decode()
    rows = list(csv.reader(io.StringIO("".join(l + "\n" for l in text.splitlines() if not l.startswith("#")))))
    assert rows[0] == ["k", "tau", "neurons", "block_size", "plateau_loss", "tie"]
    assert [sympy.simplify(sympy.sympify(r[1]) - t) == 0 for r, t in zip(rows[1:], TAUS)] == [True] * 3
    assert [int(r[3]) for r in rows[1:]] == [3, 2, 1]
    md = run("table", "jumps", str(problem), "--format", "markdown").decode()
    table_lines = [l for l in md.splitlines() if l.startswith("|")]
    assert len(table_lines) == 2 + 3 and all(l.count("|") == 8 for l in table_lines)
    data = json.loads(run("table", "jumps", str(problem), "--format", "json"))
    assert [Fraction(r[5]["exact"]) for r in data["rows"]] == LOSSES
    assert data["header"][0].startswith("limitproc")


def test_probability_table_exact_and_decimal(tmp_path):
    tex = run("table", "prob", "--n", "2", "3", "5", "--m", "2", "3", "--format", "latex").decode()
    ncols, rows = tabular_rows(tex)
    assert ncols == 3 and len(rows) == 3
    assert latex_number(rows[0][1]) == sympy.Rational(1, 8)  # one neuron of each sign, both active: 2 (1/4)^2
    for row, n in zip(rows, (2, 3, 5)):
        for cell, m in zip(row[1:], (2, 3)):
            p = p_interpolate((n + 1) // 2, n // 2, m)
            assert latex_number(cell) == sympy.Rational(p.numerator, p.denominator)
    config = tmp_path / "t.toml"
    config.write_text("[table]\nn = [2, 3, 5]\nm = [2, 3]\ndecimal = 6\n")
    md = run("table", "prob", "--config", str(config), "--format", "markdown").decode()
    assert "| 2 | 0.125000 | 0.281250 |" in md  # 1/8 and 9/32
    assert md == run("table", "prob", "--n", "2", "3", "5", "--m", "2", "3", "--decimal", "6", "--format", "markdown").decode()


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
    first = run("table", "norms", str(path), "--format", "latex")
    assert first == run("table", "norms", str(path), "--format", "latex")
    ncols, rows = tabular_rows(first.decode())
    assert ncols == 11 and all(len(r) == 11 for r in rows)
