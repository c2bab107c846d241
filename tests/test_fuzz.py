"""Hostile input (issue 12): every outcome is a success or one line ``field: problem`` with exit status 2.

Hypothesis draws JSON problem files, raw data, byte-level corruptions of a valid ``.npz`` and
command lines from a pool of hostile values; the corpus in ``tests/data/hostile`` (written by
its ``make.py``) holds one minimal reproducer per class the issue lists, each with its error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limitproc import Problem
from limitproc.cli import main
from limitproc.errors import InputError

CORPUS = Path(__file__).parent / "data" / "hostile"
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # usage errors, from argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(code, err):
    """Success, or exit status 2 with exactly one line on stderr and no traceback."""
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.endswith("\n"), err


# -- the corpus: each reproducer and the one line it must give --------------------------------------
CORPUS_ERRORS = {
    "nonutf8.json": "problem: ",
    "deep.json": "problem: JSON nested too deeply",
    "digits_label.json": "labels[0]: a number with 4301 digits is above the guard number_digits",
    "digits_number.json": "problem: a number with 4301 digits is above the guard number_digits",
    "loss_list.json": "loss: must be a string, got a list",
    "sq_norms_number.json": "sq_norms: must be a list, got a number",
    "magnitudes_object.json": "magnitudes: must be a list, got an object",
    "magnitudes_1e400.json": "magnitudes: entries must be finite",
    "magnitudes_denormal.json": "magnitudes: entries must not be subnormal",
    "index_1e99999.json": "problem: exponent 99999 is beyond the guard number_exponent",
    "key_newline.json": "'a\\nb': unknown field",
    "sq_norms_1e99999.json": "problem: exponent 99999 is beyond the guard number_exponent",
    "label_1e-40000.json": "labels[0]: exponent -40000 is beyond the guard number_exponent",
    "label_1e400000.json": "problem: exponent 400000 is beyond the guard number_exponent",
    "raw_1e400.json": "init.W: the initialisation has a magnitude 1e+400 outside the range of float64",
    "truncated.npz": "problem: ",
    "bitflip.npz": "problem: ",
    "object_array.npz": "problem: ",
    "bad_member.npz": "problem: ",
    "complex_signs.npz": "signs: expected a 1-d integer array, got complex128",
    "scalar_signs.npz": "signs: expected a 1-d integer array, got int64 of shape ()",
    "string_magnitudes.npz": "magnitudes: expected a 1/2-d float array",
}


def test_corpus_is_complete():
    assert {p.name for p in CORPUS.iterdir() if p.suffix in (".json", ".npz")} == set(CORPUS_ERRORS)


@pytest.mark.parametrize("name", sorted(CORPUS_ERRORS))
def test_corpus_gives_its_one_line_error(capsys, name):
    code, _, err = run(capsys, "solve", CORPUS / name)
    assert_clean(code, err)
    assert code == 2 and err.startswith(f"limitproc solve: error: {CORPUS_ERRORS[name]}"), err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["solve", "PROBLEM", "--digits", "100000"], "--digits: value 100000 is above the guard digits"),
        (["solve", "PROBLEM", "--precision", "1000000000"], "--precision: value 1000000000 is above the guard precision"),
        (["bound", "PROBLEM", "--rho", "1e-100000"], "--rho: exponent -100000 is beyond the guard number_exponent"),
        (["bound", "PROBLEM", "--c", "1e100000"], "--c: exponent 100000 is beyond the guard number_exponent"),
        (["prob", "--n", "100", "--delta", "1e-100000"], "--delta: exponent -100000"),
        (["prob", "--n", "1000000000000", "--delta", "0.01"], "--n: value 1000000000000 is above the guard prob_samples"),
        (["prob", "--n-pos", "1000000000", "--n-neg", "1000000000", "--m", "64"], "--n-pos: n_pos + n_neg = 2000000000 is above"),
        (["prob", "--n-pos", "10", "--n-neg", "10", "--m", "1000000"], "--m: m^2 * n = 20000000000000 is above the guard prob_work"),
        (["table", "prob", "--n", "10000000", "--m", "64"], "m: m^2 * n = 40960000000 is above the guard prob_work"),
        (["generate", "--n", "10000000000", "--m", "1", "-o", "x.json"], "--n: value 10000000000 is above the guard problem_samples"),
        (["generate", "--n", "1", "--m", "1000000000000", "-o", "x.json"], "--n: n * m = 1000000000000 is above the guard problem_size"),
        (["graph", "--data", "PROBLEM", "--m", "2", "--runs", "1000000000"], "--runs: value 1000000000 is above the guard runs"),
        (["generate", "--n", "2", "--m", "2", "--seed", "-1", "-o", "x.json"], "argument --seed: must be at least 0"),
        (["simulate", "PROBLEM", "--rtol", "1e-300"], "argument --rtol: must be between"),
        (["simulate", "PROBLEM", "--rtol", "inf"], "argument --rtol: must be between"),
        (["simulate", "PROBLEM", "--rtol", "10"], "argument --rtol: must be between"),
        (["solve", "PROBLEM", "-o", ""], "--output: empty file name"),
        (["predict", "PROBLEM", "--lambda", "1e-20", "--lr", "1e-9"], "--lr: descent steps of the windows"),
        (["simulate", "PROBLEM", "--method", "gd", "--lr", "1e-9"], "--lr: descent steps t/η to the horizon"),
        (["simulate", "PROBLEM", "--lambdas", "1e-20,1e-20"], "argument --lambdas: λ 1e-20 repeats 1e-20"),
        (["coherence", "PROBLEM", "--seed", "-1"], "argument --seed: must be at least 0"),
        (["solve", "PROBLEM", "--precision", "1"], "--precision: must be an integer >= 2"),
    ],
)
def test_guarded_arguments_refuse_in_one_line(capsys, tmp_path, argv, error):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"labels": [1, -1], "signs": [1, -1], "active": [[0], [1]]}))
    argv = [str(problem) if a == "PROBLEM" else str(tmp_path / a) if a == "x.json" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert_clean(code, err)
    assert code == 2 and error in err, err


def test_a_raised_limit_lets_the_request_through(capsys, tmp_path):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"labels": ["1e-6000", -1], "signs": [1, -1], "active": [[0], [1]]}))
    assert run(capsys, "solve", problem)[0] == 2
    code, out, err = run(capsys, "--limit", "number_exponent=7000", "solve", problem, "--format", "json")
    assert code == 0, err
    # the sole neuron aligned with sample 1 (label -1) fits it: the loss drops to the share of sample 0
    assert json.loads(out)["jumps"]


def test_valid_extreme_values_render(capsys, tmp_path):
    # a 2,500-digit label and 1e-4000 are within the guards: the output must not crash on int -> str
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"labels": ["7" * 2500, "1e-4000"], "signs": [1, 1], "active": [[0], [1]]}))
    code, out, err = run(capsys, "solve", problem)
    assert code == 0, err
    assert "7" * 100 in out


# -- hypothesis over the loaders --------------------------------------------------------------------
numbers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1/2", "3", "-0.25", "1e-3", "1e-100000", "1e99999", "0", "1/0", "x", "1" * 5000]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12,
)
problem_dicts = st.fixed_dictionaries(
    {},
    optional={
        "labels": st.one_of(st.lists(numbers, max_size=4), json_values),
        "signs": st.one_of(st.lists(st.sampled_from([1, -1, 0, 2, True, "1"]), max_size=4), json_values),
        "active": st.one_of(st.lists(st.lists(st.integers(-1, 4), max_size=4), max_size=4), json_values),
        "sq_norms": st.one_of(st.lists(numbers, max_size=4), json_values),
        "loss": st.one_of(st.sampled_from(["half-mean", "mean", "half-sum", "x"]), json_values),
        "magnitudes": json_values,
        "a_magnitudes": json_values,
    },
)
raw_dicts = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(st.lists(numbers, max_size=3), max_size=3), json_values)},
    optional={
        "init": st.one_of(
            st.fixed_dictionaries({"W": st.lists(st.lists(numbers, max_size=3), max_size=3), "a": st.lists(numbers, max_size=3)}),
            json_values,
        ),
        "labels": st.one_of(st.lists(numbers, max_size=3), json_values),
        "loss": json_values,
    },
)


def load(path):
    """Both readers of a problem file: the exact one, and the general path's raw-data one (simulate --general)."""
    from limitproc.io.rawdata import read_raw

    for read in (Problem.from_file, read_raw):
        try:
            read(path)
        except InputError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(data=st.one_of(problem_dicts, raw_dicts, json_values))
def test_json_loader_succeeds_or_refuses_in_one_line(tmp_path, data):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    load(path)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_in_one_line(tmp_path, raw):
    for suffix in (".json", ".npz"):
        path = tmp_path / f"p{suffix}"
        path.write_bytes(raw)
        load(path)


def _valid_npz() -> bytes:
    return (CORPUS / "complex_signs.npz").read_bytes()  # a full .npz; which member is bad does not matter to corruption


@FUZZ
@given(cut=st.integers(0, 4000), flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 255)), max_size=4))
def test_corrupt_npz_is_refused_in_one_line(tmp_path, cut, flips):
    data = bytearray(_valid_npz())
    for at, mask in flips:
        if at < len(data):
            data[at] ^= mask
    path = tmp_path / "p.npz"
    path.write_bytes(bytes(data[: cut or len(data)]))
    load(path)


# -- hypothesis over the command line ---------------------------------------------------------------
HOSTILE = ["-1", "0", "1", "3", "", "x", "nan", "inf", "-inf", "1e-100000", "1e100000", "1/0", "10000000000000", "1e-4000", "0.5"]
COMMANDS = {
    "solve": ["--digits", "--precision", "--max-precision", "--term-budget", "--format", "-o", "--lr"],
    "bound": ["--c", "--rho", "--digits", "--lr"],
    "prob": ["--n-pos", "--n-neg", "--m", "--n", "--delta", "--digits"],
    "generate": ["--n", "--m", "--seed", "--decimals", "--labels"],
    "simulate": ["--lambdas", "--rtol", "--seed", "--lr"],
    "graph": ["--runs", "--m", "--seed", "--confidence", "--lr"],
    "predict": ["--lambda", "--lr", "--seed", "--format"],
}


@FUZZ
@given(st.data())
def test_hostile_command_lines_succeed_or_refuse_in_one_line(capsys, tmp_path, data):
    command = data.draw(st.sampled_from(sorted(COMMANDS)))
    flags = data.draw(st.lists(st.sampled_from(COMMANDS[command]), unique=True, max_size=3))
    argv = [command]
    if command in ("solve", "bound", "simulate", "graph", "predict"):
        problem = tmp_path / "p.json"
        problem.write_text(json.dumps({"labels": [1, -1, 2], "signs": [1, -1], "active": [[0, 2], [1]]}))
        argv.append(problem)
    if command == "generate":
        argv += ["-o", tmp_path / "g.json"]
    for flag in flags:
        value = data.draw(st.sampled_from(HOSTILE))
        argv += [flag, tmp_path / value if flag == "-o" and value else value]
    code, _, err = run(capsys, *argv)
    assert_clean(code, err)


# -- outputs: atomic writes, exit statuses, sweep parts ---------------------------------------------
def test_atomic_write_goes_through_a_symlink_and_removes_stale_temps(tmp_path):
    import os

    from limitproc.io.files import atomic_write

    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    dead = tmp_path / ".real.txt.999999999-x.tmp"  # a pid no process has: its writer was killed
    dead.write_text("partial")
    mine = tmp_path / f".real.txt.{os.getpid()}-y.tmp"  # a live writer's: left alone
    mine.write_text("partial")
    atomic_write(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"
    assert not dead.exists() and mine.exists()


def test_atomic_write_to_a_device_writes_directly():
    from limitproc.io.files import atomic_write

    atomic_write("/dev/null", "discarded")  # replacing it would need a rename over /dev/null
    assert Path("/dev/null").is_char_device()


def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path):
    import os
    import signal

    from limitproc.io.files import Terminated, atomic_write

    def write(fh):
        fh.write("partial")
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Terminated):
        atomic_write(tmp_path / "out.txt", write)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_internal_error_is_exit_3_with_the_traceback_only_under_debug(capsys, monkeypatch):
    import limitproc.cli

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setitem(limitproc.cli.COMMANDS, "demo", (limitproc.cli.COMMANDS["demo"][0], broken))
    code, _, err = run(capsys, "demo")
    assert code == 3 and err == "limitproc demo: internal error: TypeError: a bug (rerun with --debug for the traceback)\n"
    code, _, err = run(capsys, "--debug", "demo")
    assert code == 3 and "Traceback" in err


def test_bad_sweep_parts_are_recomputed_with_a_warning(tmp_path):
    from limitproc.io.sweeprows import COLUMNS
    from limitproc.sweep import Cell, finished, parts_dir

    cell = Cell(4, 2, "pm1", "unit", 0)
    row = {name: {"int64": 1, "string": "", "bool": False, "float64": 0.5}[kind] for name, kind in COLUMNS}
    row |= {"n": 4, "m": 2, "labels": "pm1", "norms": "unit", "seed": 0}
    parts = parts_dir(tmp_path / "out.csv")
    parts.mkdir()
    (parts / f"{cell.key}.json").write_text(json.dumps(row))
    other = Cell(4, 3, "pm1", "unit", 0)
    (parts / f"{other.key}.json").write_text(json.dumps(row))  # names the cell m = 2 under m = 3
    (parts / "n4_m4_pm1_unit_s0.json").write_bytes(b"\x00\xff")
    with pytest.warns(UserWarning) as caught:
        done = finished(tmp_path / "out.csv")
    assert set(done) == {cell.key}
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["part n4_m3_pm1_unit_s0.json", "part n4_m4_pm1_unit_s0.json"]
    assert sorted(p.name for p in parts.iterdir()) == [f"{cell.key}.json"]
