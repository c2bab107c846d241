"""Sweeps on dask: the grid, the rows (checked against the engine), resume after a kill, figures."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from limitproc import InputError, generate, solve
from limitproc.io.sweeprows import read_rows
from limitproc.sweep import Cell, SweepConfig, finished, parts_dir, run_sweep, width_rule


@pytest.mark.parametrize(
    "rule,n,m",
    [
        ("ceil(2*log2(n))", 100, 14),  # 2 log2 100 = 13.29
        ("ceil(2*log2(n))", 1024, 20),  # exactly 20: no float round-up to 21
        ("ceil(1.5*log2(n))", 1024, 15),
        ("floor(sqrt(n)) + 1", 99, 10),
        ("n**0.5", 100, 10),
        ("max(3, ceil(log(n)))", 2, 3),
    ],
)
def test_width_rules(rule, n, m):
    assert width_rule(rule, n) == m


@pytest.mark.parametrize("rule", ["2*log2(n)", "__import__('os')", "n.real", "ceil(", "0*n", "lambda: 1"])
def test_bad_width_rules(rule):
    with pytest.raises(InputError):
        width_rule(rule, 1000)


def test_config_grid():
    config = SweepConfig.from_dict({"n": [100, 1024], "m": ["ceil(2*log2(n))", 7], "labels": ["pm1", "gauss"], "seeds": 2, "seed0": 5})
    cells = config.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    assert {(c.n, c.m) for c in cells} == {(100, 14), (100, 7), (1024, 20), (1024, 7)}
    assert {c.seed for c in cells} == {5, 6}


@pytest.mark.parametrize(
    "data,field",
    [
        ({"n": [10]}, "m"),
        ({"n": [0], "m": 3}, "n"),
        ({"n": [10], "m": 3, "labels": "cauchy"}, "labels"),
        ({"n": [10], "m": 3, "seed": 1}, "seed"),
        ({"n": [10], "m": [2.5]}, "m"),
    ],
)
def test_bad_config(data, field):
    with pytest.raises(InputError) as exc:
        SweepConfig.from_dict(data)
    assert exc.value.args[0] == field or field in str(exc.value)


@pytest.mark.slow
def test_tiny_sweep_on_a_local_cluster(tmp_path):
    config = SweepConfig.from_dict({"n": [12, 40], "m": "ceil(2*log2(n))", "labels": ["pm1", "gauss"], "seeds": 2})
    out = tmp_path / "tiny.parquet"
    summary = run_sweep(config, out, workers=2, progress=False)
    assert summary == {"cells": 8, "computed": 8, "reused": 0, "output": str(out)}
    rows = read_rows(out)
    assert [(r["n"], r["m"], r["labels"], r["seed"]) for r in rows] == sorted((r["n"], r["m"], r["labels"], r["seed"]) for r in rows)
    for r in rows:
        # each row is what the engine gives for the generated problem
        result = solve(generate(r["n"], r["m"], labels=r["labels"], norms=r["norms"], seed=r["seed"]))
        assert r["m"] == math.ceil(2 * math.log2(r["n"]))
        assert r["interpolates"] == result.interpolates and r["jumps"] == len(result.jumps)
        assert r["n_pos"] + r["n_neg"] == r["n"] == result.problem.n
        assert r["min_sq_norm_exact"] == result.min_sq_norm.exact()
        if result.sq_norm is None:  # undetermined: kept, flagged, NaN
            assert not r["sq_norm_determined"] and r["sq_norm_undetermined"] and math.isnan(r["ratio"])
        else:
            assert r["sq_norm_determined"] and r["sq_norm_exact"] == result.sq_norm.exact()
            assert r["ratio"] == pytest.approx(r["sq_norm"] / r["min_sq_norm"], rel=1e-14)
            assert r["sqrt_n_constant"] == pytest.approx(r["sq_norm"] / math.sqrt(r["n"]), rel=1e-14)
        assert r["first_jump_tau"] <= r["last_jump_tau"]
    # the CSV form holds the same rows
    csv_out = tmp_path / "tiny.csv"
    assert run_sweep(config, csv_out, workers=1, progress=False)["computed"] == 8
    again = read_rows(csv_out)
    assert [(r["n"], r["seed"], r["labels"], r["sq_norm_exact"], r["interpolates"]) for r in again] == [
        (r["n"], r["seed"], r["labels"], r["sq_norm_exact"], r["interpolates"]) for r in rows
    ]


@pytest.mark.slow
def test_killed_sweep_resumes_without_recomputing(tmp_path):
    config_path = tmp_path / "big.toml"
    config_path.write_text("[sweep]\nn = [4000]\nm = [24]\nseeds = 150\n")
    out = tmp_path / "big.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "limitproc", "sweep", str(config_path), "-o", str(out), "--workers", "1"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = parts_dir(out)
    while proc.poll() is None and not (parts.is_dir() and len(list(parts.glob("*.json"))) >= 3):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its dask workers, mid-run
    proc.wait()
    before = {p.name: p.read_bytes() for p in parts.glob("*.json")}
    assert 3 <= len(before) < 150, "the sweep must be killed midway"
    assert not out.exists()
    for data in before.values():  # every part written is complete
        json.loads(data)

    summary = run_sweep(SweepConfig.from_file(config_path), out, workers=2, progress=False)
    assert summary["reused"] == len(before) and summary["computed"] == 150 - len(before)
    after = {p.name: p.read_bytes() for p in parts.glob("*.json")}
    assert len(after) == 150
    for name, data in before.items():
        assert after[name] == data  # untouched: not recomputed
    old_runs = {json.loads(d)["run_id"] for d in before.values()}
    new_runs = {json.loads(after[n])["run_id"] for n in after if n not in before}
    assert len(old_runs) == 1 and len(new_runs) == 1 and old_runs != new_runs
    rows = read_rows(out)
    assert sorted(r["seed"] for r in rows) == list(range(150))
    assert set(finished(out)) == {Cell(4000, 24, "pm1", "unit", s).key for s in range(150)}


@pytest.mark.slow
def test_cli_sweep_with_figures(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[sweep]\nn = [16, 64]\nm = [4, 8, 12]\nseeds = 3\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "limitproc",
            "sweep",
            str(config),
            "-o",
            str(tmp_path / "c.csv"),
            "--workers",
            "1",
            "--figures",
            str(tmp_path / "fig"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "18 cells (18 computed" in out.stdout
    for name in ("probability", "norm_scaling", "bias_ratio"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "fig" / f"{name}.{ext}").stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "-m", "limitproc", "sweep", str(config), "-o", str(tmp_path / "c.txt")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--output" in bad.stderr and "Traceback" not in bad.stderr


def test_existing_scheduler_runs_the_same_sweep(tmp_path):
    from dask.distributed import LocalCluster

    config = SweepConfig.from_dict({"n": [20], "m": [6], "seeds": 3})
    local = run_sweep(config, tmp_path / "local.csv", workers=1, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        remote = run_sweep(config, tmp_path / "remote.csv", scheduler=cluster.scheduler_address, progress=False)
    assert local["computed"] == remote["computed"] == 3

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "engine_seconds"} for r in rows]

    assert strip(read_rows(tmp_path / "local.csv")) == strip(read_rows(tmp_path / "remote.csv"))


def test_unreachable_scheduler_is_an_input_error(tmp_path):
    config = SweepConfig.from_dict({"n": [20], "m": [6], "seeds": 1})
    import dask

    with pytest.raises(InputError) as exc, dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        run_sweep(config, tmp_path / "x.csv", scheduler="tcp://127.0.0.1:9", progress=False)
    assert exc.value.field == "scheduler"  # the API field; the CLI shows --scheduler


def test_resolve_ties_keeps_every_row_and_says_how_N_was_obtained():
    from limitproc.sweep import run_cell

    assert SweepConfig.from_dict({"n": 8, "m": 4, "resolve_ties": True}).cells()[0].resolve_ties is True
    with pytest.raises(InputError):
        SweepConfig.from_dict({"n": 8, "m": 4, "resolve_ties": "yes"})
    sources = set()
    for seed in range(40):
        plain, resolved = run_cell(Cell(12, 6, "pm1", "unit", seed)), run_cell(Cell(12, 6, "pm1", "unit", seed, True))
        sources.add(resolved["sq_norm_source"])
        if plain["sq_norm_source"] == "exact":
            assert resolved["sq_norm_source"] == "exact" and resolved["sq_norm"] == plain["sq_norm"]
            assert math.isnan(plain["sq_norm_lo"])
            continue
        assert plain["sq_norm_source"] == "interval" and math.isnan(plain["sq_norm"]) and plain["sq_norm_lo"] <= plain["sq_norm_hi"]
        assert resolved["sq_norm_source"] == "resolved"
        assert plain["sq_norm_lo"] * (1 - 1e-6) <= resolved["sq_norm"] <= plain["sq_norm_hi"] * (1 + 1e-6)
        assert resolved["ratio"] == pytest.approx(resolved["sq_norm"] / resolved["min_sq_norm"], rel=1e-12)
    assert sources == {"exact", "resolved"}


# -- steps of gradient descent (theory §11) ------------------------------------------------------
def test_lr_is_an_axis_read_exactly_and_flow_keys_are_unchanged():
    from fractions import Fraction

    config = SweepConfig.from_dict({"n": 8, "m": 4, "seeds": 2, "lr": [0, 0.3, "1/3"]})
    assert config.lr == [0, Fraction(3, 10), Fraction(1, 3)]  # the TOML decimal 0.3 is 3/10, not its binary neighbour
    cells = config.cells()
    assert len(cells) == 2 * 3
    keys = {c.key for c in cells}
    assert {"n8_m4_pm1_unit_s0", "n8_m4_pm1_unit_s0_lr3_10", "n8_m4_pm1_unit_s1_lr1_3"} <= keys
    assert not SweepConfig.from_dict({"n": 8, "m": 4, "lr": 0}).descent and config.descent
    for bad in (-1, "x", [], True):
        with pytest.raises(InputError) as exc:
            SweepConfig.from_dict({"n": 8, "m": 4, "lr": bad})
        assert exc.value.field == "lr"


def test_descent_rows_follow_the_rho_rates_and_an_unstable_step_is_reported_in_its_row():
    from fractions import Fraction

    from limitproc.sweep import run_cell

    flow = run_cell(Cell(10, 5, "gauss", "uniform", 3))
    # the first escape has the largest rate mu = 1/tau_1 (theory §4); descent replaces it by
    # rho = log(1 + eta mu)/eta (§11), so tau_1 = eta / log(1 + eta / tau_1(flow))
    mu = 1 / flow["first_jump_tau"]
    eta = Fraction(1, 2) / Fraction(mu).limit_denominator(1000)  # eta mu close to 1/2: stable
    row = run_cell(Cell(10, 5, "gauss", "uniform", 3, lr=eta))
    assert row["lr_exact"] == f"{eta.numerator}/{eta.denominator}" and row["unstable"] == ""
    assert row["first_jump_tau"] == pytest.approx(float(eta) / math.log1p(float(eta) * mu), rel=1e-12)
    assert row["first_jump_tau"] > flow["first_jump_tau"]
    # blocks, saddles and norms do not change with the step
    for name in ("interpolates", "uncovered", "sq_norm_exact", "jumps", "ties"):
        assert row[name] == flow[name]
    unstable = run_cell(Cell(10, 5, "gauss", "uniform", 3, lr=Fraction(2) / Fraction(mu).limit_denominator(1000) * 2))  # eta mu near 4
    assert "unstable" in unstable["unstable"] and "eta*mu_j >= 2" in unstable["unstable"]
    assert unstable["jumps"] is None and unstable["sq_norm"] is None and unstable["n_pos"] == flow["n_pos"]


def test_a_sweep_over_steps_writes_every_row_and_flow_output_is_unchanged(tmp_path):
    config = SweepConfig.from_dict({"n": [8], "m": [4], "seeds": 2, "lr": [0, "1/2", 100]})
    for ext in ("csv", "parquet"):
        out = tmp_path / f"steps.{ext}"
        assert run_sweep(config, out, workers=1, progress=False)["computed"] == 6
        assert run_sweep(config, out, workers=1, progress=False)["reused"] == 6  # the parts of every step are reused
        rows = read_rows(out)
        assert [(r["seed"], r["lr_exact"]) for r in rows] == [(s, lr) for s in (0, 1) for lr in ("0", "1/2", "100")]
        for r in rows:
            result = solve(generate(8, 4, seed=r["seed"]), lr=None if r["lr"] == 100 else r["lr_exact"])
            if r["lr"] == 100:  # mu_max >= 1/32 here (c = 1/16, |y| = 1, q = 1), so eta mu >= 3: unstable
                assert r["unstable"].startswith("step 100 makes gradient descent unstable") and r["jumps"] is None
            else:
                assert r["unstable"] == "" and r["jumps"] == len(result.jumps)
                assert r["first_jump_tau"] == pytest.approx(float(result.jumps[0].tau), rel=1e-14)
    # lr = 0 alone is gradient flow: the same bytes as a sweep without lr
    plain, zero = tmp_path / "plain.csv", tmp_path / "zero.csv"
    run_sweep(SweepConfig.from_dict({"n": [8], "m": [4], "seeds": 2}), plain, workers=1, progress=False)
    run_sweep(SweepConfig.from_dict({"n": [8], "m": [4], "seeds": 2, "lr": 0}), zero, workers=1, progress=False)
    assert plain.read_bytes() == zero.read_bytes() and b"lr" not in plain.read_bytes().splitlines()[0]


def test_cli_sweep_lr(tmp_path, capsys):
    from helpers import run_cli

    config = tmp_path / "c.toml"
    config.write_text("[sweep]\nn = [8]\nm = [4]\nseeds = 1\nlr = 0.25\n")
    code, out, _ = run_cli(capsys, "sweep", config, "-o", tmp_path / "c.csv", "--workers", "1", "--lr", "0,1/2")
    assert code == 0 and "2 cells (2 computed" in out
    assert [r["lr_exact"] for r in read_rows(tmp_path / "c.csv")] == ["0", "1/2"]  # --lr replaces the config's lr
    code, _, err = run_cli(capsys, "sweep", config, "-o", tmp_path / "d.csv", "--lr", "-1")
    assert code == 2 and err.strip().endswith("--lr: must be at least 0 (0: gradient flow), got -1") and "Traceback" not in err
