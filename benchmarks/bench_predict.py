"""Time ``predict`` against ``simulate``, and compare both with a deep-λ reference, in one run.

    python benchmarks/bench_predict.py                       # n = 200, m = 16 (generate seed 1), λ = 1e-30 and 1e-100
    python benchmarks/bench_predict.py --repeat 5 --reference 1e-150 --deep 1e-10000
    python benchmarks/bench_predict.py --lr 1 --lambdas 1e-30,1e-100,1e-300   # gradient descent, step 1

The limit is solved once, outside the timing. For each λ, ``predict`` and ``simulate`` are timed
(CPU time) ``--repeat`` times, interleaved (predict, simulate, predict, ...; the machine may be shared), and
the medians and their ratio are printed, with ``predict`` also timed at ``--deep`` (no simulation
could go there) to show its cost does not grow with ``log(1/λ)``.

Agreement is the error of the offsets ``δ_k = t_k − τ_k log(1/λ)`` against those of one simulation
at the reference λ (deepest is closest to the limit ``λ → 0`` of the offsets, which is what the
prediction computes; the simulation at λ carries its ``e^{−σ_k log(1/λ)}`` corrections). A jump whose
``σ_k log(1/λ_ref)`` is below :data:`RESOLVED` is still moving at the reference itself (its offset
there is no reference), so the largest error is printed over the jumps the reference resolves, and
over all it reached; the table per jump shows both.

Equal agreement: the equal-λ ratios compare a prediction that carries no ``e^{−σ_k log(1/λ)}``
corrections with simulations that do. So simulate is also run down a ladder of ``--ladder`` λ
(shallower than the reference), and the first λ whose simulated offsets are within predict's
largest error on the resolved jumps is the cost simulate needs to agree as well; its time (median
of ``--repeat``) over predict's is the equal-agreement ratio. If no rung gets there, the ratio lies
between the deepest rung's and the reference's own (the reference agrees with itself; at n = 200
predict's error on the resolved jumps is mostly the reference's own ``e^{−σ_k log(1/λ_ref)}``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from limitproc import generate, solve
from limitproc.flow.predict import predict, separations
from limitproc.flow.simulate import log_inverse, simulate

#: the reference resolves jump k when σ_k log(1/λ_ref) is at least this (its corrections e^{−σL} below about 5 %)
RESOLVED = 3.0


def timed(f):
    """``(CPU seconds, f())``: process time, which a shared machine's other load disturbs less than the wall clock."""
    start = time.process_time()
    out = f()
    return time.process_time() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lambdas", default="1e-30,1e-100")
    parser.add_argument("--reference", default="1e-1000", help="λ of the reference simulation (log-scale coordinates below 1e-150)")
    parser.add_argument("--deep", default="1e-1000", help="a λ at which only predict is timed")
    parser.add_argument("--repeat", type=int, default=3, help="timings per λ (medians reported)")
    parser.add_argument(
        "--ladder",
        default="1e-30,1e-100,1e-300,1e-500,1e-700,1e-900",
        help="λ at which simulate is tried for predict's agreement (above the reference)",
    )
    parser.add_argument("--lr", help="time gradient descent with this step instead (predict --lr against simulate method gd)")
    args = parser.parse_args()

    problem = generate(args.n, args.m, seed=args.seed)
    if args.lr:
        descent(problem, args)
        return
    result = solve(problem)
    taus = np.array([float(j.tau) for j in result.jumps])
    sigma = separations(result)
    print(f"n = {args.n}, m = {args.m} (generate seed {args.seed}): {len(taus)} jumps; separations σ_k = {np.round(sigma, 4).tolist()}")
    seconds, ref = timed(lambda: simulate(problem, args.reference, result=result))
    reached = np.isfinite(ref.drop_times)
    resolved = reached & (sigma * log_inverse(args.reference) >= RESOLVED)
    ref_delta = ref.drop_offsets(taus)
    print(
        f"reference: simulate at λ = {args.reference}: {seconds:.1f} s, {ref.steps} steps; resolves jumps {(np.flatnonzero(resolved) + 1).tolist()}"
    )

    lambdas = args.lambdas.split(",")
    times: dict[str, dict[str, list[float]]] = {lam: {"predict": [], "simulate": []} for lam in [*lambdas, args.deep]}
    runs = {}
    for _ in range(args.repeat):
        for lam in lambdas:
            t_pred, pred = timed(lambda: predict(result, lam))
            t_sim, sim = timed(lambda: simulate(problem, lam, result=result))
            times[lam]["predict"].append(t_pred)
            times[lam]["simulate"].append(t_sim)
            runs[lam] = (pred, sim)
        times[args.deep]["predict"].append(timed(lambda: predict(result, args.deep))[0])

    def worst(errors, where):
        e = np.where(np.isnan(errors), np.inf, np.abs(errors))[where]
        return f"{e.max():.2g}" if e.size else "-"

    for lam in lambdas:
        pred, sim = runs[lam]
        t_pred, t_sim = (statistics.median(times[lam][key]) for key in ("predict", "simulate"))
        err_pred = np.array(pred.offsets) - ref_delta
        err_sim = sim.drop_offsets(taus) - ref_delta
        print(
            f"λ = {lam}: predict {t_pred:.3f} s, simulate {t_sim:.2f} s ({sim.steps} steps), medians of {args.repeat}: "
            f"simulate/predict = {t_sim / t_pred:.0f}x; max |δ − δ_ref| on resolved jumps: predicted {worst(err_pred, resolved)}, "
            f"simulated {worst(err_sim, resolved)}; on all reached: predicted {worst(err_pred, reached)}, simulated {worst(err_sim, reached)}"
        )
        print("   k  σ_k·log(1/λ_ref)  δ_ref      predicted − δ_ref  simulated − δ_ref")
        for k in range(len(taus)):
            print(
                f"  {k + 1:2d}  {sigma[k] * log_inverse(args.reference):15.2f}  {ref_delta[k]:9.4f}  {err_pred[k]:17.2e}  {err_sim[k]:17.2e}"
            )
    print(f"λ = {args.deep}: predict {statistics.median(times[args.deep]['predict']):.3f} s (median of {args.repeat}; no simulation)")

    # equal agreement: the shallowest λ at which simulate is as close to the reference as predict
    t_pred = statistics.median(t for lam in lambdas for t in times[lam]["predict"])
    target = max(np.abs(np.array(runs[lam][0].offsets) - ref_delta)[resolved].max(initial=0.0) for lam in lambdas)
    print(f"equal agreement: predict's largest error on the resolved jumps is {target:.2g} (predict {t_pred:.3f} s, median over all λ)")
    for lam in args.ladder.split(","):
        if lam in runs:  # timed above
            t_sim, sim = statistics.median(times[lam]["simulate"]), runs[lam][1]
        else:
            t_sim, sim = timed(lambda: simulate(problem, lam, result=result))
        err = np.abs(sim.drop_offsets(taus) - ref_delta)[resolved]
        error = np.where(np.isnan(err), np.inf, err).max(initial=0.0)
        print(f"   simulate at λ = {lam}: {t_sim:.2f} s, max |δ − δ_ref| on resolved jumps {error:.2g}")
        if error <= target:
            if lam not in runs:
                t_sim = statistics.median(
                    [t_sim] + [timed(lambda: simulate(problem, lam, result=result))[0] for _ in range(args.repeat - 1)]
                )
            print(
                f"equal agreement reached at λ = {lam}: simulate {t_sim:.2f} s (median of {args.repeat}): simulate/predict = {t_sim / t_pred:.0f}x"
            )
            break
    else:
        print(
            f"equal agreement not reached down to λ = {lam}: simulate/predict between {t_sim / t_pred:.0f}x (one run of that rung) "
            f"and {seconds / t_pred:.0f}x (simulate at the reference λ = {args.reference}, which agrees with itself)"
        )
    for lam in lambdas:
        ratio = statistics.median(times[lam]["simulate"]) / statistics.median(times[lam]["predict"])
        print(f"equal λ = {lam}: simulate/predict = {ratio:.0f}x")


def descent(problem, args) -> None:
    """Descent with step ``--lr``: at each λ, predict and simulate (method gd) interleaved, their CPU
    medians and ratio, and the largest drop-time difference on the jumps separated there. There is
    no deep reference: the descent windows are the map itself, so where jumps are separated the two
    agree to the window start's 1e-8 and the iterates' rounding."""
    result = solve(problem, lr=args.lr)
    lr = float(result.lr)
    print(f"n = {args.n}, m = {args.m} (generate seed {args.seed}), gradient descent with step {args.lr}: {len(result.jumps)} jumps")
    for lam in [*args.lambdas.split(","), args.deep]:
        times: dict[str, list[float]] = {"predict": [], "simulate": []}
        for _ in range(args.repeat):
            seconds, pred = timed(lambda: predict(result, lam))
            times["predict"].append(seconds)
            if lam != args.deep:
                seconds, sim = timed(lambda: simulate(problem, lam, result=result, method="gd", lr=lr))
                times["simulate"].append(seconds)
        t_pred = statistics.median(times["predict"])
        if lam == args.deep:
            print(f"λ = {lam}: predict {t_pred:.3f} s (median of {args.repeat}; no simulation)")
            continue
        t_sim = statistics.median(times["simulate"])
        diff = np.abs(pred.drop_times - sim.drop_times)
        separated = (
            f"{diff[pred.separated].max():.2g} on the {int(pred.separated.sum())} separated"
            if pred.separated.any()
            else "no jump separated"
        )
        print(
            f"λ = {lam}: predict {t_pred:.3f} s, simulate {t_sim:.3f} s ({sim.steps} steps), medians of {args.repeat}: "
            f"simulate/predict = {t_sim / t_pred:.1f}x; max |t_pred − t_sim|: {separated}, {np.nanmax(diff):.2g} on all"
        )


if __name__ == "__main__":
    main()
