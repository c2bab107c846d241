"""Gradient descent against both limits (docs/descent.md), and the raw ``.npz`` reduction time.

    python benchmarks/bench_descent.py --table        # theory §10 example 2: drops of descent at η = 0.1, 0.3, 1
                                                      # and λ = 1e-20 ... 1e-80 against the ρ and flow limits (markdown)
    python benchmarks/bench_descent.py --raw          # reduce a raw .npz with n = d = 10^4, m = 64 (float32)
    python benchmarks/bench_descent.py --raw --n 2000 --d 2025 --repeat 5

The table's magnitudes are drawn with seed 0 (``simulate``'s default). The raw data are a Kronecker
product of two random orthogonal matrices (dense, orthogonal to float32 rounding), scaled rows,
±1 labels and a balanced float32 initialisation at scale 1e-20; the time covers ``Problem.from_file``
(loading, the blocked Gram check, pre-activations, the balance check). The baseline is the same
reduction with the Gram check forced to float64 (the way before the float32 path,
:func:`limitproc.io.rawdata.check_orthogonal`), run in the same process, alternating with the new
way ``--repeat`` times each; medians and their ratio are printed (the machine is shared).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from limitproc import Problem, solve
from limitproc.flow.simulate import extrapolate, simulate
from limitproc.io import rawdata

EX2 = dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
STEPS = ("0.1", "0.3", "1")
LAMBDAS = (1e-20, 1e-40, 1e-60, 1e-80)


def table() -> None:
    problem = Problem(**EX2)
    flow = [float(j.tau) for j in solve(problem).jumps]
    print("| η | λ | descent drops τ_1, τ_2, τ_3 | ρ process | flow limit |")
    print("|---|---|---|---|---|")
    for lr in STEPS:
        limit = solve(problem, lr=lr)
        rho = [float(j.tau) for j in limit.jumps]
        runs = [simulate(problem, lam, result=limit, method="gd", lr=float(lr)) for lam in LAMBDAS]

        def cells(values):
            return ", ".join(f"{v:.3f}" for v in values)

        for lam, run in zip(LAMBDAS, runs):
            print(f"| {lr} | {lam:.0e} | {cells(run.drop_taus)} | {cells(rho)} | {cells(flow)} |")
        print(f"| {lr} | extrapolated | {cells(extrapolate(runs).tau)} | {cells(rho)} | {cells(flow)} |")


def raw_data(n: int, d: int, m: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    side = math.isqrt(d)
    if side * side != d or n > d:
        raise SystemExit("--d must be a perfect square and at least --n")
    q1, q2 = (np.linalg.qr(rng.standard_normal((side, side)))[0] for _ in range(2))
    X = np.kron(q1, q2)[:n].astype(np.float32) * rng.uniform(0.5, 2.0, n).astype(np.float32)[:, None]
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    W = (1e-20 / np.sqrt(d) * rng.standard_normal((m, d))).astype(np.float32)
    a = (np.sign(rng.standard_normal(m)) * np.sqrt((W * W).sum(axis=1, dtype=np.float32))).astype(np.float32)
    return dict(X=X, y=y, W=W, a=a)


def _reduce(path, float64: bool) -> tuple[float, Problem]:
    start = time.perf_counter()
    if float64:  # the baseline: no float32 chunk, so every block of the Gram matrix in float64
        with mock.patch.object(rawdata, "_float32_chunk", lambda X, tol: None):
            problem = Problem.from_file(path)
    else:
        problem = Problem.from_file(path)
    return time.perf_counter() - start, problem


def raw(n: int, d: int, m: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.npz"
        np.savez(path, **raw_data(n, d, m))
        size = path.stat().st_size / 2**20
        times: dict[bool, list[float]] = {True: [], False: []}
        problems = {}
        for r in range(repeat):
            for float64 in (r % 2 == 0, r % 2 != 0):  # alternate which goes first
                seconds, problems[float64] = _reduce(path, float64)
                times[float64].append(seconds)
    assert problems[True].to_dict() == problems[False].to_dict()  # the same problem either way
    old, new = statistics.median(times[True]), statistics.median(times[False])
    print(f"raw .npz n = {n}, d = {d}, m = {m} (float32, {size:.0f} MiB) -> {problems[False]}")
    print(f"  float64 Gram (before): {old:.2f} s   float32 Gram (now): {new:.2f} s   ratio {old / new:.2f}x   (medians of {repeat})")
    print(f"  all runs: before {[round(t, 2) for t in times[True]]}, now {[round(t, 2) for t in times[False]]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=10_000)
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if not (args.table or args.raw):
        parser.error("give --table and/or --raw")
    if args.table:
        table()
    if args.raw:
        raw(args.n, args.d, args.m, args.repeat)


if __name__ == "__main__":
    main()
