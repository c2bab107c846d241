"""Exact engine against a plain float64 numpy implementation of the same recursion.

    python benchmarks/bench_engine.py            # n = 10^6, m = 64, ±1 labels; n = 10^5, m = 32, 3-decimal labels
    python benchmarks/bench_engine.py --quick    # smaller sizes, to try it out

Both paths run on the same file, best of ``--repeat`` runs: in this process, and as whole processes
(``limitproc solve big.npz --format json -o out.json`` against a process running the float
recursion), with the CLI's peak memory. Printed ratios are exact/float, measured in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import limitproc
from limitproc.problem import Problem


def float_recursion(path) -> list[tuple[float, tuple[int, ...]]]:
    """Spec §4 in float64: the same loading, bit unpacking and incremental rate updates, no certification."""
    p = Problem.from_file(path)
    aligned = p.aligned_matrix()
    y = p.y.num.astype(np.float64) / p.y.den
    q = p.q.num.astype(np.float64) / p.q.den
    w = y * y * q
    two_c = 2 * float(p.loss_factor)
    uniform = w[0] if np.all(w == w[0]) else None  # the same shortcut the exact engine takes

    def masked_sums(weights, mask):
        if uniform is not None:
            return np.count_nonzero(mask, axis=1) * uniform
        return np.array([weights[row].sum() for row in mask])

    R = masked_sums(w, aligned)
    live = R > 0
    mu = two_c * np.sqrt(R)
    S = np.zeros(p.m)  # exponent at the anchor time
    anchor = np.zeros(p.m)  # time of the last rate change
    fitted = np.zeros(p.n, dtype=bool)
    jumps = []
    while live.any():
        T = np.where(live, anchor + (1 - S) / np.where(live, mu, 1.0), np.inf)
        j = int(np.argmin(T))
        tau = float(T[j])
        block = np.flatnonzero(aligned[j] & ~fitted)
        fitted[block] = True
        live[j] = False
        jumps.append((tau, (j,)))
        idx = np.flatnonzero(live)
        lost = masked_sums(w[block], aligned[np.ix_(idx, block)])
        changed = idx[lost > 0]
        S[changed] += mu[changed] * (tau - anchor[changed])
        anchor[changed] = tau
        R[changed] -= lost[lost > 0]
        live[changed[R[changed] <= 0]] = False
        mu[changed] = two_c * np.sqrt(np.maximum(R[changed], 0.0))
    return jumps


def exact_solve(path, out) -> limitproc.Result:
    result = limitproc.solve(Problem.from_file(path))
    Path(out).write_text(result.to_json() + "\n")
    return result


def best_of(repeat, fn, *args):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), value


def process_run(argv) -> float:
    """Wall time of a whole process (interpreter start and imports included)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True)
    return time.perf_counter() - t0


def peak_memory_mib(argv) -> float:
    """Peak resident memory of a fresh process running ``argv`` (ru_maxrss is in KiB on Linux)."""
    code = f"import resource, subprocess, sys; subprocess.run({[sys.executable, *argv]!r}, check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) / 1024


def case(name, n, m, labels, decimals, repeat, workdir):
    path = Path(workdir) / f"{name}.npz"
    out = Path(workdir) / f"{name}.json"
    limitproc.generate(n, m, labels=labels, decimals=decimals, seed=1).to_file(path)
    t_float, float_jumps = best_of(repeat, float_recursion, path)
    t_exact, result = best_of(repeat, exact_solve, path, out)
    cli = ["-m", "limitproc", "solve", str(path), "--format", "json", "-o", str(out)]
    t_cli = min(process_run(cli) for _ in range(repeat))
    t_float_process = min(
        process_run(
            [
                "-c",
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_engine; bench_engine.float_recursion({str(path)!r})",
            ]
        )
        for _ in range(repeat)
    )
    peak = peak_memory_mib(cli)
    same = [j.neurons for j in result.jumps if not j.tie] == [nj for _, nj in float_jumps][: len([j for j in result.jumps if not j.tie])]
    worst = max((abs(float(j.tau) - ft) / float(j.tau) for j, (ft, _) in zip(result.jumps, float_jumps)), default=0.0)
    exact_terms = sum(j.tau.exact() is not None for j in result.jumps)
    print(
        f"\n{name}: n = {n}, m = {m}, labels = {labels}, {len(result.jumps)} jumps ({exact_terms} with canonical forms within the budget)"
    )
    print(f"  float64 recursion (in process)     {t_float:8.3f} s")
    print(f"  exact engine + JSON (in process)   {t_exact:8.3f} s   ratio exact/float = {t_exact / t_float:5.2f}")
    print(f"  whole process: float recursion     {t_float_process:8.3f} s")
    print(
        f"  whole process: limitproc solve ... {t_cli:8.3f} s   ratio exact/float = {t_cli / t_float_process:5.2f}   peak memory {peak:.0f} MiB"
    )
    print(f"  float and exact jump orders agree: {same}; largest relative float error in tau: {worst:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 10^5 and 10^4 instead of 10^6 and 10^5")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as workdir:
        case("pm1", 10**6 // scale, 64, "pm1", 3, args.repeat, workdir)
        case("rational", 10**5 // scale, 32, "gauss", 3, args.repeat, workdir)


if __name__ == "__main__":
    main()
