"""Time ``predict`` against ``simulate``, and compare both with a deep-λ reference.

    python benchmarks/bench_predict.py                       # n = 200, m = 16 (generate seed 1), λ = 1e-30 and 1e-100
    python benchmarks/bench_predict.py --reference 1e-150    # the deep-λ reference run (default 1e-150)

For each λ it prints the wall time of ``predict`` (the limit solved once, outside the timing) and of
``simulate``, their ratio, and the largest error of the offsets ``δ_k = t_k − τ_k log(1/λ)`` of each
against the offsets of a simulation at the reference λ (deepest is closest to the limit ``λ → 0``
of the offsets, which is what the prediction computes). Only jumps that the reference run reached
are compared.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from limitproc import generate, solve
from limitproc.flow.predict import predict, separations
from limitproc.flow.simulate import simulate


def timed(f):
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lambdas", default="1e-30,1e-100")
    parser.add_argument("--reference", default="1e-150", help="λ of the reference simulation")
    args = parser.parse_args()

    problem = generate(args.n, args.m, seed=args.seed)
    result = solve(problem)
    taus = np.array([float(j.tau) for j in result.jumps])
    print(
        f"n = {args.n}, m = {args.m} (generate seed {args.seed}): {len(taus)} jumps; separations σ_k = {np.round(separations(result), 4).tolist()}"
    )
    seconds, ref = timed(lambda: simulate(problem, args.reference, result=result))
    reached = np.isfinite(ref.drop_times)
    ref_delta = ref.drop_offsets(taus)[reached]
    print(f"reference: simulate at λ = {args.reference}: {seconds:.1f} s, {ref.steps} steps; δ = {np.round(ref_delta, 4).tolist()}")
    for lam in args.lambdas.split(","):
        t_pred, pred = timed(lambda: predict(result, lam))
        t_sim, sim = timed(lambda: simulate(problem, lam, result=result))
        err_pred = np.abs(np.array(pred.offsets)[reached] - ref_delta).max()
        err_sim = np.abs(sim.drop_offsets(taus)[reached] - ref_delta)
        err_sim = np.where(np.isnan(err_sim), np.inf, err_sim).max()
        print(
            f"λ = {lam}: predict {t_pred:.2f} s, simulate {t_sim:.1f} s ({sim.steps} steps): {t_sim / t_pred:.0f}x faster; "
            f"max |δ − δ_ref|: predicted {err_pred:.2g}, simulated {err_sim:.2g}; "
            f"max |t_pred − t_sim| {np.nanmax(np.abs(pred.drop_times - sim.drop_times)):.2g}; separated jumps {int(pred.separated.sum())}/{len(taus)}"
        )


if __name__ == "__main__":
    main()
