"""Time the finite-λ simulator, and print the offsets δ_k of spec §10 example 2.

    python benchmarks/bench_simulate.py             # n = 12, m = 8 (generate seed 1) at λ = 1e-30, and a λ ladder
    python benchmarks/bench_simulate.py --offsets   # example 2's offsets t_k − τ_k log(1/λ) at 1e-8 ... 1e-128

Times are the best of ``--repeat`` runs in this process (the limit is solved once, outside the timing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from limitproc import Problem, generate, solve
from limitproc.flow.simulate import extrapolate, simulate


def best_time(problem, lam, result, repeat: int, **kw):
    best, sim = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        sim = simulate(problem, lam, result=result, **kw)
        best = min(best, time.perf_counter() - start)
    return best, sim


def timing(repeat: int) -> None:
    problem = generate(12, 8, seed=1)
    result = solve(problem)
    print("n = 12, m = 8 (generate seed 1):")
    for lam in (1e-10, 1e-30, 1e-100, 1e-150):
        seconds, sim = best_time(problem, lam, result, repeat)
        print(f"  λ = {lam:g}: {seconds:.3f} s, {sim.steps} steps, final N = {sim.final_sq_norm:.8g}")
    seconds, sim = best_time(problem, "1e-400", result, repeat)
    print(f"  λ = 1e-400 (log-scale): {seconds:.3f} s, {sim.steps} steps")


def offsets() -> None:
    problem = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
    result = solve(problem)
    taus = np.array([float(j.tau) for j in result.jumps])
    runs = [simulate(problem, lam, result=result) for lam in (1e-8, 1e-16, 1e-32, 1e-64, 1e-128)]
    print("spec §10 example 2, magnitudes drawn with seed 0; offsets δ_k = t_k − τ_k log(1/λ):")
    for run in runs:
        print(f"  λ = e^-{run.log_inv_lambda:.1f}: δ = {np.round(run.drop_offsets(taus), 5).tolist()}")
    fit = extrapolate(runs)
    print(
        f"  fit: τ = {np.round(fit.tau, 6).tolist()} (exact {np.round(taus, 6).tolist()}), δ = {np.round(fit.delta, 4).tolist()} ± {np.round(fit.delta_stderr, 4).tolist()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offsets", action="store_true", help="print example 2's offsets instead of timing")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (default 3)")
    args = parser.parse_args()
    offsets() if args.offsets else timing(args.repeat)


if __name__ == "__main__":
    main()
