"""How large the canonical radical forms of the jump times grow (spec §8), and what they cost.

    python benchmarks/bench_forms.py            # the growth table, then forms over the budget
    python benchmarks/bench_forms.py --quick    # smaller sizes

The growth table: for ±1 labels and random patterns it prints, per (n, m) and seed, the number of
jumps, the largest canonical form among the jump times, and the time to solve and to expand every
jump time, against the time of the solve alone (decimals only, budget 0) measured in the same run.

Over the budget: at the default term budget some jump times end over it (``null`` in the output).
Expanding them is the work a size test before expansion saves, and it is measured here: the CPU time
to expand the canonical forms of only the jump times that fit, against all of them, and all of them
without the size test (``exact._over``: a sum whose unshared terms already exceed the budget is not
added), on fresh solves alternating, medians. Most of the remaining difference is spent on
intermediates that fit (exponents of the neurons that escape later).
"""

import argparse
import statistics
import time

import limitproc
from limitproc import exact


def growth(sizes) -> None:
    print(f"{'n':>6} {'m':>3} {'seed':>4} {'jumps':>5} {'max terms':>9} {'solve+forms s':>13} {'solve only s':>12} {'ratio':>6}")
    for n, m in sizes:
        for seed in range(3):
            problem = limitproc.generate(n, m, seed=seed)
            t0 = time.perf_counter()
            limitproc.solve(problem, term_budget=0)
            bare = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = limitproc.solve(problem, term_budget=10**6)
            terms = max((len(j.tau.form()) for j in result.jumps), default=0)
            full = time.perf_counter() - t0
            print(f"{n:>6} {m:>3} {seed:>4} {len(result.jumps):>5} {terms:>9} {full:>13.3f} {bare:>12.3f} {full / bare:>6.1f}")


def expand(problem, which: list[bool]) -> float:
    """CPU seconds to expand the canonical forms of the jump times picked by ``which``, on a fresh solve."""
    result = limitproc.solve(problem)
    t0 = time.process_time()
    for jump, pick in zip(result.jumps, which):
        if pick:
            jump.tau.form()
    return time.process_time() - t0


def over_budget(sizes, repeat: int) -> None:
    print(f"\ndefault term budget {exact.DEFAULT_TERM_BUDGET}; CPU s to expand the jump times' forms, medians of {repeat}")
    print(
        f"{'n':>8} {'m':>3} {'jumps':>5} {'over':>5} {'fitting s':>9} {'all s':>8} {'no test s':>9} {'all/fitting':>11} {'no test/all':>11}"
    )
    size_test = exact._over
    for n, m in sizes:
        problem = limitproc.generate(n, m, seed=0)
        fits = [j.tau.form() is not None for j in limitproc.solve(problem).jumps]
        some, every, untested = [], [], []
        for _ in range(repeat):  # interleaved: all see the same machine load
            some.append(expand(problem, fits))
            every.append(expand(problem, [True] * len(fits)))
            exact._over = lambda *_: False  # the code before the size test
            try:
                untested.append(expand(problem, [True] * len(fits)))
            finally:
                exact._over = size_test
        t, all_t, old_t = statistics.median(some), statistics.median(every), statistics.median(untested)
        print(
            f"{n:>8} {m:>3} {len(fits):>5} {fits.count(False):>5} {t:>9.3f} {all_t:>8.3f} {old_t:>9.3f} {all_t / t:>10.2f}x {old_t / all_t:>10.2f}x"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    limitproc.solve(limitproc.generate(50, 4))  # warm up imports and caches before timing
    growth([(100, 12), (1000, 16)] if args.quick else [(100, 12), (1000, 16), (10_000, 20)])
    over_budget([(10**5, 48)] if args.quick else [(10**5, 48), (10**6, 64)], args.repeat)


if __name__ == "__main__":
    main()
