"""The general simulator's cost against the per-sample one on orthogonal data.

    python benchmarks/bench_general.py                  # n = 200, m = 16 (generate seed 1), λ = 1e-20
    python benchmarks/bench_general.py --n 50 --m 8 --lam 1e-10 --repeat 5

Both run the same problem (inputs: scaled, signed, permuted basis vectors, so that the general run is
the per-sample one step for step); the limit is solved once, outside the timing. The general path
integrates ``u = W Xᵀ`` with the Gram matrix, O(m n²) per evaluation against O(m n). Each is timed
``--repeat`` times, interleaved (per-sample, general, per-sample, ...; the machine may be shared), in
CPU time of this process; the medians and their ratio are printed, the per-sample one the baseline.

BLAS runs on one thread unless ``OPENBLAS_NUM_THREADS`` says otherwise: on a shared 2-core machine
OpenBLAS's second thread spins while it waits for a core, and the CPU time of the general path's
(n × n) products then varied from 8 s to 52 s between runs of this very benchmark.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import argparse
import statistics
import time
from fractions import Fraction

import numpy as np

from limitproc import Problem, generate, solve
from limitproc.flow.general import simulate_general
from limitproc.flow.simulate import initial_magnitudes, simulate, with_magnitudes
from limitproc.io.rawdata import RawData


def orthogonal_raw(n: int, m: int, seed: int):
    base = generate(n, m, seed=seed)
    rng = np.random.default_rng(seed)
    scale = 2.0 ** rng.integers(-1, 2, n)
    X = np.zeros((n, n))
    X[np.arange(n), rng.permutation(n)] = scale
    q = scale**2
    problem = Problem(labels=list(base.labels), signs=base.signs.tolist(), active=base.active_matrix(), sq_norms=[Fraction(x) for x in q])
    problem = with_magnitudes(problem, np.abs(rng.standard_normal((m, n))) * scale)
    mags, amags = initial_magnitudes(problem)
    U = np.where(problem.active_matrix(), mags, -mags)
    W = (U / scale) @ (X != 0)
    return problem, RawData(X, W, problem.signs * amags, np.array([float(y) for y in problem.labels]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--lam", default="1e-20")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    problem, data = orthogonal_raw(args.n, args.m, args.seed)
    result = solve(problem)
    times: dict[str, list[float]] = {"per-sample": [], "general": []}
    for _ in range(args.repeat):
        start = time.process_time()
        ref = simulate(problem, args.lam, result=result)
        times["per-sample"].append(time.process_time() - start)
        start = time.process_time()
        run = simulate_general(data, args.lam, result=result)
        times["general"].append(time.process_time() - start)
    agree = float(np.nanmax(np.abs(run.drop_times - ref.drop_times), initial=0.0))
    base, general = statistics.median(times["per-sample"]), statistics.median(times["general"])
    print(f"n = {args.n}, m = {args.m}, λ = {args.lam}: {ref.steps} / {run.steps} steps, largest drop-time difference {agree:.2g}")
    print(f"  per-sample (baseline) {base:.2f} s, general {general:.2f} s, ratio general / per-sample = {general / base:.2f}")
    print(f"  (CPU-time medians of {args.repeat}, interleaved; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']})")


if __name__ == "__main__":
    main()
