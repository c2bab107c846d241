"""The limitproc command: outputs, and one clear line with exit status 2 for every bad input."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy
from helpers import EXAMPLE_2, run_cli, same_number

from limitproc.cli import main
from limitproc.io.files import atomic_write


@pytest.fixture
def example2(tmp_path):
    path = tmp_path / "ex2.json"
    EXAMPLE_2.to_file(path)
    return path


run = run_cli


def test_solve_json_contract(capsys, example2):
    code, out, err = run(capsys, "solve", example2, "--format", "json", "--digits", "40")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert (data["n"], data["m"], data["loss"]) == (6, 4, "half-mean")
    first = data["jumps"][0]
    assert {"k", "tau", "tau_decimal", "neurons", "samples", "plateau_loss", "tie", "shared"} <= set(first)
    assert (first["k"], first["neurons"], first["samples"], first["tie"], first["shared"]) == (1, [2], [1, 3, 5], False, [])
    assert same_number(first["tau"], 3 * sympy.sqrt(14) / 7)
    assert first["tau_decimal"] == str(sympy.N(3 * sympy.sqrt(14) / 7, 40))
    assert sympy.sympify(first["plateau_loss"]) == sympy.Rational(1, 2)
    assert data["interpolates"] is True and data["uncovered"] == [] and data["final_loss"] == "0"
    assert same_number(data["sq_norm"], 2 + 2 * sympy.sqrt(5) + 2 * sympy.sqrt(14))
    assert same_number(data["min_sq_norm"], 2 * sympy.sqrt(5) + 2 * sympy.sqrt(15))  # ||y+|| = sqrt(15), ||y-|| = sqrt(5)
    assert data["never_escaped"] == [3]


@pytest.mark.parametrize("fmt,marker", [("text", "interpolates: yes"), ("csv", "k,tau,tau_decimal"), ("latex", r"\frac{3 \sqrt{14}}{7}")])
def test_solve_formats(capsys, example2, fmt, marker):
    code, out, _ = run(capsys, "solve", example2, "--format", fmt)
    assert code == 0 and marker in out


def test_output_file_and_demo(capsys, tmp_path):
    out_file = tmp_path / "demo.json"
    code, out, _ = run(capsys, "demo", "--format", "json", "-o", out_file)
    assert code == 0 and out == ""
    data = json.loads(out_file.read_text())
    assert (data["n"], data["m"]) == (64, 12) and data["jumps"]


def test_generate_then_solve_npz(capsys, tmp_path):
    path = tmp_path / "g.npz"
    assert run(capsys, "generate", "--n", 200, "--m", 6, "--labels", "uniform", "--seed", 4, "-o", path)[0] == 0
    code, out, _ = run(capsys, "solve", path, "--format", "json")
    assert code == 0 and json.loads(out)["n"] == 200


def test_entry_points_are_the_same_program(example2):
    a = subprocess.run(["limitproc", "solve", str(example2), "--format", "json"], capture_output=True, text=True)
    b = subprocess.run([sys.executable, "-m", "limitproc", "solve", str(example2), "--format", "json"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def test_every_command_has_help_with_an_example(capsys):
    for command in ("solve", "generate", "demo", "simulate", "bound", "prob", "sweep", "table", "graph"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0 and "example:" in capsys.readouterr().out


def _problem(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD = {"labels": [1, -1], "signs": [1, -1], "active": [[0], [1]]}
BAD_FILES = [
    ('{"labels": [1, -1], "signs": [1', "problem: malformed JSON"),
    (dict(GOOD, labels=[1, 0]), "labels[1]: zero label"),
    (dict(GOOD, sq_norms=[1, "-2"]), "sq_norms[1]: squared norm must be positive"),
    (dict(GOOD, sq_norms=[1]), "sq_norms: has 1 entries"),
    (dict(GOOD, active=[[0], [5]]), "active[1]: index 5 out of range"),
    (dict(GOOD, signs=[1, 3]), "signs[1]: must be +1 or -1"),
    (dict(GOOD, labels=[1, "1/2/3"]), "labels[1]: not an exact number"),
    (dict(GOOD, loss="median"), "loss: unknown convention"),
    ({"inputs": [[1, 1], [1, 0]], "init": {"W": [[1, 0]], "a": [1]}, "labels": [1, 1]}, "inputs: rows 0 and 1 are not orthogonal"),
    ({"inputs": [[1, 0], [0, 1]], "init": {"W": [[1, 1]], "a": [1]}, "labels": [1, 1]}, "init.a[0]:"),
]


@pytest.mark.parametrize("data,message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, data, message):
    code, out, err = run(capsys, "solve", _problem(tmp_path, data))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"error: {message}" in err and "Traceback" not in err


def test_sign_flip_can_be_forced_with_a_warning(capsys, tmp_path):
    path = _problem(tmp_path, {"inputs": [[1, 0], [0, 1]], "init": {"W": [[1, 1]], "a": [1]}, "labels": [1, 1]})
    code, out, err = run(capsys, "solve", path, "--allow-sign-flip", "--format", "json")
    assert code == 0 and json.loads(out)["jumps"] and "warning" in err and "not established" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["solve", "p.json", "--format", "xml"], "argument --format: invalid choice"),
        (["solve", "p.json", "--digits", "many"], "argument --digits: expected an integer"),
        (["solve", "p.json", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["generate", "--n", "0", "--m", "2", "-o", "x.json"], "argument --n: must be at least 1"),
        (["solve", "p.txt"], "problem: unknown file extension"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    _problem(tmp_path, GOOD, "p.json")
    (tmp_path / "p.txt").write_text("{}")
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_bad_npz(capsys, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, labels_num=np.array([1]), labels_den=np.array([1]))
    code, _, err = run(capsys, "solve", path)
    assert code == 2 and "sq_norms_num: missing from the .npz file" in err


def test_unwritable_output_is_exit_2(capsys, example2, tmp_path):
    code, _, err = run(capsys, "solve", example2, "-o", tmp_path / "no" / "such" / "dir" / "out.json")
    assert code == 2 and err.count("\n") == 1 and "--output: cannot write" in err


def test_real_process_has_no_traceback(tmp_path):
    bad = _problem(tmp_path, dict(GOOD, labels=[0, 1]))
    proc = subprocess.run(["limitproc", "solve", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("labels[0]: zero label (labels must be non-zero)")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def half_then_fail(fh):
        fh.write('{"partial": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_text_summary_shows_a_resolved_tie(capsys, tmp_path):
    # the overlapping tie of two unit-label neurons sharing sample 1, with magnitudes given
    path = _problem(
        tmp_path, {"labels": [1, 1, 1], "signs": [1, 1], "active": [[0, 1], [1, 2]], "magnitudes": [[1.0, 0.5, 0.3], [0.2, 1.5, 1.0]]}
    )
    code, out, _ = run(capsys, "solve", path)
    assert code == 0 and "(approximate: tie split resolved from the initial magnitudes)" in out
    (line,) = [l for l in out.splitlines() if "sample 1 split" in l]
    shares = [float(part.split(": ")[-1]) for part in line.split("split: ")[1].split(", ")]
    assert len(shares) == 2 and abs(sum(shares) - 1) < 2e-6 and all(0 < v < 1 for v in shares)


def test_simulate_converges_to_the_limit(capsys, example2):
    code, out, _ = run(capsys, "simulate", example2, "--lambdas", "1e-10,1e-20,1e-40", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["coordinates"] == ["direct"] * 3
    exact = [3 * sympy.sqrt(14) / 7, 6 * sympy.sqrt(5) / 5, 6 + 3 * sympy.sqrt(14) / 7 - 3 * sympy.sqrt(70) / 7]
    for row, tau in zip(data["jumps"], exact):
        assert same_number(row["tau"], tau)
        errors = [abs(t - float(tau)) for t in row["drop_taus"]]
        assert errors[0] > errors[1] > errors[2]  # the error shrinks like 1/log(1/λ) (spec §9)
        assert abs(row["tau_extrapolated"] - float(tau)) < 1e-3 and abs(row["delta"]) < 10


@pytest.mark.parametrize(
    "lambdas,message", [("2", "--lambdas: must lie in (0, 1)"), ("x", "--lambdas: not a number"), (",", "--lambdas: give at least one")]
)
def test_simulate_bad_lambdas(capsys, example2, lambdas, message):
    code, _, err = run(capsys, "simulate", example2, "--lambdas", lambdas)
    assert code == 2 and err.count("\n") == 1 and message in err


# -- one word per concept: the old spellings still work, and mean the same ------------------------
@pytest.mark.parametrize(
    "new,old",
    [
        (["prob", "--n-pos", 1, "--n-neg", 1, "--m", 2, "--digits", 5], ["prob", "--n-pos", 1, "--n-neg", 1, "--m", 2, "--decimal", 5]),
        (["prob", "--n-pos", 1, "--n-neg", 1, "--m", 2, "--rational"], ["prob", "--n-pos", 1, "--n-neg", 1, "--m", 2, "--exact"]),
        (
            ["table", "prob", "--n", 2, "--m", 2, "--digits", 5, "--format", "csv"],
            ["table", "prob", "--n", 2, "--m", 2, "--decimal", 5, "--format", "csv"],
        ),
    ],
)
def test_old_spellings_are_hidden_aliases(capsys, new, old):
    code, out, err = run(capsys, *new)
    assert code == 0 and err == ""
    # n_+ = n_- = 1, m = 2: one neuron of each sign (1/2), each active on its sample (1/4): 1/8
    assert "0.12500" in out and ("1/8" in out) == ("--rational" in new)
    assert run(capsys, *old) == (0, out, "")
    with pytest.raises(SystemExit):
        main([new[0], "--help"])
    assert not re.search(r"--decimal\b|--exact\b", capsys.readouterr().out)  # hidden from --help


def test_graph_enumerate_is_the_old_exact(capsys, tmp_path):
    data = _problem(tmp_path, {"labels": [1, -1]}, "labels.json")
    code, new, _ = run(capsys, "graph", "--data", data, "--m", 1, "--enumerate", "--format", "json")
    assert code == 0 and run(capsys, "graph", "--data", data, "--m", 1, "--exact", "--format", "json") == (0, new, "")
    # m = 1: the one neuron fits its sample iff it is active on it: probability 1/2 of fitting one sample
    nodes = json.loads(new)["nodes"]
    fitted_one = [node for node in nodes if node["fitted"] in ([0], [1])]
    assert sum(sympy.Rational(node["probability"]) for node in fitted_one) == sympy.Rational(1, 2)


def test_norms_table_decimal_places_keep_their_old_spelling(capsys, tmp_path):
    from test_tables import row

    from limitproc.sweep import write_rows

    path = tmp_path / "s.csv"
    write_rows([row(4, 0, 1.5), row(4, 1, 2.5)], path)
    code, out, _ = run(capsys, "table", "norms", path, "--decimals", 3, "--format", "csv")
    assert code == 0 and ",2.000," in out  # mean of N/sqrt(n) = ratio = (1.5 + 2.5) / 2
    assert run(capsys, "table", "norms", path, "--digits", 3, "--format", "csv") == (0, out, "")


def test_proofs_check_format_and_old_report(tmp_path):
    from proofs_check.cli import main as check

    new, old = tmp_path / "new.md", tmp_path / "old.md"
    assert check(["run", "--generate", "4,3,1", "--claim", "plateaus", "--format", "markdown", "-o", str(new)]) == 0
    assert check(["run", "--generate", "4,3,1", "--claim", "plateaus", "--report", "md", "-o", str(old)]) == 0
    assert new.read_text() == old.read_text() and "| plateaus | pass |" in new.read_text()


# -- library errors name API fields; the command line shows its flags ----------------------------
RAW_SIGN_FLIP = {"inputs": [[1, 0], [0, 1]], "init": {"W": [[1, 1]], "a": [1]}, "labels": [1, 1]}


def test_library_errors_name_api_fields(tmp_path):
    from limitproc import Problem
    from limitproc.errors import InputError

    path = _problem(tmp_path, RAW_SIGN_FLIP)
    with pytest.raises(InputError) as info:
        Problem.from_file(path, ortho_tol=2)
    assert info.value.field == "ortho_tol"
    with pytest.raises(InputError) as info:
        Problem.from_file(path)
    assert "`allow_sign_flip`" in info.value.problem and "--" not in str(info.value)


@pytest.mark.parametrize(
    "argv,line",
    [
        (["solve", "raw.json", "--ortho-tol", "2"], "limitproc solve: error: --ortho-tol: must be in [0, 1), got 2.0"),
        (["solve", "raw.json"], "(set --allow-sign-flip to force)"),
        (
            ["generate", "--n", "3", "--m", "2", "--decimals", "20", "-o", "g.json"],
            "limitproc generate: error: --decimals: must be between 0 and 15, got 20",
        ),
        (
            ["graph", "--data", "labels10.json", "--m", "5", "--enumerate"],
            "error: --enumerate: the enumeration has 10424128 patterns (> 2^20); draw --runs random ones instead",
        ),
        (
            ["graph", "--data", "labels10.json", "--m", "5", "--runs", "3", "--confidence", "1.5"],
            "error: --confidence: must be between 0 and 1, got 1.5",
        ),
        (["bound", "good.json", "--c", "-1"], "limitproc bound: error: --c: must be non-negative, got -1"),
    ],
)
def test_library_errors_print_the_flag(capsys, tmp_path, monkeypatch, argv, line):
    monkeypatch.chdir(tmp_path)
    _problem(tmp_path, RAW_SIGN_FLIP, "raw.json")
    _problem(tmp_path, GOOD, "good.json")
    _problem(tmp_path, {"labels": [1, -1, 2, -2, 3, -3, 4, -4, 5, -5]}, "labels10.json")
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and line in err and "Traceback" not in err
    assert not (tmp_path / "g.json").exists()


def test_a_field_is_shown_as_a_flag_only_where_the_command_has_it(capsys, tmp_path):
    # "labels" is an option of generate, but for solve it is a field of the problem file
    path = _problem(tmp_path, dict(RAW_SIGN_FLIP, labels=[1]))
    code, _, err = run(capsys, "solve", path)
    assert code == 2 and "error: labels: must be a list of 2 labels" in err and "--labels" not in err


def test_describe_error():
    from limitproc.clitools import describe_error
    from limitproc.errors import InputError

    exc = InputError("exact", "too many; use `runs` or `seed` instead")
    assert (
        describe_error(exc, {"exact": "--enumerate", "runs": "--runs"}, {"--enumerate", "--runs"})
        == "--enumerate: too many; use --runs or `seed` instead"
    )
    assert describe_error(exc, {"exact": "--enumerate"}, set()) == "exact: too many; use `runs` or `seed` instead"


def test_no_library_error_names_a_flag():
    import ast
    from pathlib import Path

    import limitproc

    root = Path(limitproc.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name in ("cli.py", "clitools.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "InputError":
                texts = [c.value for arg in node.args for c in ast.walk(arg) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                offenders += [f"{path.name}:{node.lineno}" for text in texts if re.search(r"(^|[\s(/])--[a-z]", text)]
    assert offenders == []


def test_proofs_check_uses_the_public_toolkit():
    import ast
    from pathlib import Path

    import proofs_check.cli

    tree = ast.parse(Path(proofs_check.cli.__file__).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "limitproc.clitools" in modules and "limitproc.cli" not in modules


# -- logic a Python user can reach -----------------------------------------------------------------
def test_bound_reads_a_result_or_a_problem(capsys, example2, tmp_path):
    from limitproc.bias import Bias

    result = tmp_path / "result.json"
    assert run(capsys, "solve", example2, "--format", "json", "-o", result)[0] == 0
    from_result, from_problem = Bias.from_file(result), Bias.from_file(example2)
    for bias in (from_result, from_problem):
        assert same_number(bias.sq_norm.exact(), 2 + 2 * sympy.sqrt(5) + 2 * sympy.sqrt(14))
        assert same_number(bias.min_sq_norm.exact(), 2 * sympy.sqrt(5) + 2 * sympy.sqrt(15))
    code, out, _ = run(capsys, "bound", result, "--format", "json")
    assert code == 0 and run(capsys, "bound", example2, "--format", "json") == (0, out, "")


def test_table_config_is_read_by_the_library(capsys, tmp_path):
    from limitproc.errors import InputError
    from limitproc.io.tables import read_table_config

    new, old, bad = tmp_path / "new.toml", tmp_path / "old.toml", tmp_path / "bad.toml"
    new.write_text("[table]\nn = [2, 4]\nm = [2]\ndigits = 3\n")
    old.write_text("[table]\nn = [2, 4]\nm = [2]\ndecimal = 3\n")
    bad.write_text("[table]\nn = [2, 0]\nm = [2]\n")
    assert read_table_config(new) == read_table_config(old) == {"n": [2, 4], "m": [2], "digits": 3}
    with pytest.raises(InputError, match="table.n: must be a list of positive integers"):
        read_table_config(bad)
    code, out, _ = run(capsys, "table", "prob", "--config", new, "--format", "csv")
    assert code == 0 and "2,0.125\n" in out  # 1/8 to 3 digits
    code, out, _ = run(capsys, "table", "prob", "--config", new, "--digits", "5", "--format", "csv")
    assert code == 0 and "2,0.12500\n" in out  # the flag wins over the file
    code, _, err = run(capsys, "table", "prob", "--config", tmp_path / "missing.toml")
    assert code == 2 and "error: --config: cannot read" in err and err.count("\n") == 1


def test_warnings_of_every_kind_are_one_line_each(capsys):
    """A library warning that is not a UserWarning (numpy's RankWarning, a RuntimeWarning) was handed to
    warnings.showwarning inside the recording context, which recorded it again: the loop over the
    record never ended (the process ran out of memory)."""
    import argparse
    import warnings

    from limitproc.clitools import run_command

    def handler(args):
        warnings.warn("a fit is poorly conditioned", RuntimeWarning, stacklevel=2)
        warnings.warn("the balance cannot be checked", UserWarning, stacklevel=2)
        return "done\n"

    args = argparse.Namespace(command="x", output=None, debug=False, command_parser=argparse.Namespace(option_strings=set))
    assert run_command("limitproc", args, handler, {}) == 0
    out, err = capsys.readouterr()
    assert out == "done\n"
    assert err.splitlines() == [
        "limitproc x: warning: RuntimeWarning: a fit is poorly conditioned",
        "limitproc x: warning: the balance cannot be checked",
    ]


def test_simulate_on_orthogonal_raw_data_compares_with_the_limit_solve_finds(capsys, tmp_path):
    """||x_0||² = float(√2)² = 2.0000000000000004 and ||x_1||² = 2: solve keeps them apart (neuron 0 first,
    at 5e7·sqrt(5000000000000001)/1666..., then neuron 1 at 3√2/2), but simulate reduced the raw data to
    the nearest problem, whose q rounded to 12 digits made the two jumps one tie."""
    X = np.array([[math.sqrt(2), 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1.0]])
    W = np.array([[1.0, -0.5, 0.2, -0.3], [-0.7, 0.4, 0.1, -0.2], [-0.1, -0.3, -0.2, 0.6]])
    path = tmp_path / "raw.npz"
    np.savez(path, X=X, y=np.array([1.0, 1.0, -1.0]), W=W, a=np.array([1, 1, -1]) * np.linalg.norm(W, axis=1) * 1.0000001)
    assert main(["solve", str(path), "--format", "json"]) == 0
    solved = json.loads(capsys.readouterr().out)
    assert [j["neurons"] for j in solved["jumps"]] == [[0], [1], [2]]
    assert main(["simulate", str(path), "--lambdas", "1e-10,1e-20", "--format", "json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    assert [j["neurons"] for j in simulated["jumps"]] == [[0], [1], [2]]
    assert [j["tau"] for j in simulated["jumps"]] == [j["tau"] for j in solved["jumps"]]
