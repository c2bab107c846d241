"""The limitproc command: outputs, and one clear line with exit status 2 for every bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import sympy
from helpers import EXAMPLE_2, same_number

from limitproc.cli import main
from limitproc.io.files import atomic_write


@pytest.fixture
def example2(tmp_path):
    path = tmp_path / "ex2.json"
    EXAMPLE_2.to_file(path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


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


@pytest.mark.parametrize("argv,message", [
    (["solve", "p.json", "--format", "xml"], "argument --format: invalid choice"),
    (["solve", "p.json", "--digits", "many"], "argument --digits: expected an integer"),
    (["solve", "p.json", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["generate", "--n", "0", "--m", "2", "-o", "x.json"], "argument --n: must be at least 1"),
    (["solve", "p.txt"], "problem: unknown file extension"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    _problem(tmp_path, GOOD, "p.json")
    (tmp_path / "p.txt").write_text("{}")
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
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
    path = _problem(tmp_path, {"labels": [1, 1, 1], "signs": [1, 1], "active": [[0, 1], [1, 2]],
                               "magnitudes": [[1.0, 0.5, 0.3], [0.2, 1.5, 1.0]]})
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


@pytest.mark.parametrize("lambdas,message", [("2", "--lambdas: must lie in (0, 1)"), ("x", "--lambdas: not a number"), (",", "--lambdas: give at least one")])
def test_simulate_bad_lambdas(capsys, example2, lambdas, message):
    code, _, err = run(capsys, "simulate", example2, "--lambdas", lambdas)
    assert code == 2 and err.count("\n") == 1 and message in err
