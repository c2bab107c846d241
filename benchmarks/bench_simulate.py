"""Time the finite-λ simulator against a plain fixed-step RK4, and print the offsets δ_k of spec §10 example 2.

    python benchmarks/bench_simulate.py             # n = 12, m = 8 (generate seed 1) at λ = 1e-30, and a λ ladder
    python benchmarks/bench_simulate.py --rk4       # cost at equal accuracy of extrapolated jump times, against RK4
    python benchmarks/bench_simulate.py --large 3072  # one run at n = 3072, m = 8, λ = 1e-20 (CPU time)
    python benchmarks/bench_simulate.py --offsets   # example 2's offsets t_k − τ_k log(1/λ) at 1e-8 ... 1e-128

``--rk4``: the jump times ``τ_k`` extrapolated from runs at three λ (``extrapolate``) are compared with
a deep reference (``simulate`` at ``rtol = 1e-12``, checked against the finest RK4); for each method
the cheapest setting (``rtol`` for ``simulate``, step count for RK4) from which on every finer one
reaches the target relative error is timed, both interleaved ``--repeat`` times (CPU time, medians),
and the ratio printed. RK4 integrates the same equations in direct coordinates, plainly: the field in
numpy, a fixed step, drops located on the cubic Hermite interpolant of the loss, no death events.
Both integrate to the same end, just past the last drop. Times are CPU seconds (``process_time``).
``--large`` uses only ``generate``, ``solve`` and ``simulate``, so the same file times an older tree
(``PYTHONPATH=old-tree python benchmarks/bench_simulate.py --large 3072``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from limitproc import Problem, generate, solve
from limitproc.flow.simulate import extrapolate, float_labels, initial_magnitudes, simulate

LAMBDAS = (1e-10, 1e-20, 1e-40)


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


def rk4_drop_times(problem, result, lam: float, t_end: float, steps: int) -> np.ndarray:
    """Drop times of a fixed-step RK4 on the per-sample flow in direct coordinates (seed 0 magnitudes, as ``simulate``)."""
    y, q, two_c = float_labels(problem), np.array([float(x) for x in problem.sq_norms]), 2 * float(problem.loss_factor)
    mags, amags = initial_magnitudes(problem, 0)
    a, u = lam * problem.signs.astype(float) * amags, lam * np.where(problem.active_matrix(), mags, -mags)

    def field(a, u):
        positive = np.maximum(u, 0.0)
        r = a @ positive - y
        return -two_c * (positive @ r), -two_c * a[:, None] * (r * q)[None, :] * (u > 0), r

    plateaus = [float(s.loss) for s in result.saddles]
    mids = [(x + z) / 2 for x, z in zip(plateaus, plateaus[1:])]
    drops = np.full(len(mids), np.nan)
    h = t_end / steps
    k1a, k1u, r = field(a, u)
    loss, slope = 0.5 * two_c * r @ r, -(k1a @ k1a + ((k1u * k1u) @ (1 / q)).sum())  # dL/dt = −|∇L|²
    for step in range(steps):
        k2a, k2u, _ = field(a + h / 2 * k1a, u + h / 2 * k1u)
        k3a, k3u, _ = field(a + h / 2 * k2a, u + h / 2 * k2u)
        k4a, k4u, _ = field(a + h * k3a, u + h * k3u)
        a = a + h / 6 * (k1a + 2 * k2a + 2 * k3a + k4a)
        u = u + h / 6 * (k1u + 2 * k2u + 2 * k3u + k4u)
        k1a, k1u, r = field(a, u)
        loss1, slope1 = 0.5 * two_c * r @ r, -(k1a @ k1a + ((k1u * k1u) @ (1 / q)).sum())
        for k, mid in enumerate(mids):
            if np.isnan(drops[k]) and loss > mid >= loss1:
                drops[k] = step * h + h * hermite_root(loss - mid, h * slope, loss1 - mid, h * slope1)
        loss, slope = loss1, slope1
    return drops


def hermite_root(g0: float, d0: float, g1: float, d1: float) -> float:
    """The θ in (0, 1] where the cubic Hermite interpolant from ``g0 > 0`` to ``g1 ≤ 0`` (derivatives ``d0``, ``d1``) first reaches 0."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        t = 0.5 * (lo + hi)
        g = (2 * t**3 - 3 * t**2 + 1) * g0 + (t**3 - 2 * t**2 + t) * d0 + (-2 * t**3 + 3 * t**2) * g1 + (t**3 - t**2) * d1
        lo, hi = (lo, t) if g <= 0 else (t, hi)
    return hi


def extrapolated(drop_times: list[np.ndarray], lambdas) -> np.ndarray:
    """``τ_k`` of the least-squares line ``t_k = τ_k log(1/λ) + δ_k`` (the fit of ``extrapolate``)."""
    Ls = -np.log(np.array(lambdas))
    return np.linalg.lstsq(np.column_stack([Ls, np.ones_like(Ls)]), np.array(drop_times), rcond=None)[0][0]


def cpu(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def versus_rk4(repeat: int, targets=(1e-3, 1e-5)) -> None:
    problem = generate(12, 8, seed=1)
    result = solve(problem)
    taus = [float(j.tau) for j in result.jumps]
    slowest = min(float(r) for j in result.jumps for r in j.rates.values())
    ends = {lam: taus[-1] * -np.log(lam) + 1 / slowest for lam in LAMBDAS}  # past the last drop (offsets are O(1/μ))

    def sim_taus(rtol):
        runs = [simulate(problem, lam, result=result, rtol=rtol, tau_end=ends[lam] / -np.log(lam)) for lam in LAMBDAS]
        return extrapolate(runs).tau

    def rk4_taus(per_unit):  # steps per unit of time
        return extrapolated([rk4_drop_times(problem, result, lam, ends[lam], int(per_unit * ends[lam])) for lam in LAMBDAS], LAMBDAS)

    reference = sim_taus(1e-12)
    finest = rk4_taus(64)
    print(f"n = 12, m = 8 (generate seed 1), λ = {LAMBDAS}: reference τ (simulate, rtol 1e-12) {np.round(reference, 8).tolist()}")
    print(f"  finest RK4 (64 steps per unit time) differs from it by {np.abs(finest / reference - 1).max():.1e} relative")
    # ladders of about equal steps in cost: rtol by 10^(1/8) (cost ~ rtol^(-1/5)), RK4's step by 2^(1/8)
    rtols = [10.0**-k for k in np.arange(1.5, 9.1, 0.125)]
    per_units = [round(0.25 * 2 ** (k / 8), 4) for k in range(49)] + [64]  # steps per unit time: 0.25 ... 16
    sim_err = [float(np.abs(sim_taus(r) / reference - 1).max()) for r in rtols]
    rk4_err = [float(np.abs(rk4_taus(s) / reference - 1).max()) for s in per_units[:-1]] + [float(np.abs(finest / reference - 1).max())]
    print("  simulate: rtol → error " + ", ".join(f"{r:.2g} → {e:.1e}" for r, e in zip(rtols, sim_err)))
    print("  RK4: steps per unit time → error " + ", ".join(f"{s} → {e:.1e}" for s, e in zip(per_units, rk4_err)))

    def loosest(settings, errors, target):  # the first setting from which on every finer one meets the target
        ok = [all(e <= target for e in errors[i:]) for i in range(len(errors))]
        return settings[ok.index(True)] if any(ok) else None

    for target in targets:
        rtol, per_unit = loosest(rtols, sim_err, target), loosest(per_units, rk4_err, target)
        if rtol is None or per_unit is None:
            print(f"  target {target:.0e}: not reached (simulate {rtol}, RK4 {per_unit})")
            continue
        sim_times, rk4_times = [], []
        for _ in range(repeat):  # interleaved: the machine is shared
            sim_times.append(cpu(lambda: sim_taus(rtol))[0])
            rk4_times.append(cpu(lambda: rk4_taus(per_unit))[0])
        s, b = statistics.median(sim_times), statistics.median(rk4_times)
        print(
            f"  target {target:.0e}: simulate rtol {rtol:.2g} {s:.3f} s, RK4 {per_unit} steps per unit time {b:.3f} s "
            f"(medians of {repeat}, CPU, three λ): RK4 / simulate = {b / s:.2f}"
        )


def large(n: int, m: int, lam: float) -> None:
    problem = generate(n, m, seed=1)
    result = solve(problem)
    seconds, sim = cpu(lambda: simulate(problem, lam, result=result))
    print(f"n = {n}, m = {m} (generate seed 1), λ = {lam:g}: {seconds:.2f} s CPU, {sim.steps} steps, {len(sim.deaths)} deaths")
    print(f"  drop taus {np.round(sim.drop_taus, 6).tolist()}")


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
    parser.add_argument("--rk4", action="store_true", help="cost at equal accuracy against a plain fixed-step RK4")
    parser.add_argument("--large", type=int, metavar="N", help="one run at n = N, m = --m, λ = --lam")
    parser.add_argument("--m", type=int, default=8)
    parser.add_argument("--lam", type=float, default=1e-20)
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (default 3)")
    args = parser.parse_args()
    if args.offsets:
        offsets()
    elif args.rk4:
        versus_rk4(args.repeat)
    elif args.large:
        large(args.large, args.m, args.lam)
    else:
        timing(args.repeat)


if __name__ == "__main__":
    main()
