"""How large the canonical radical forms of the jump times grow (spec §8), and what they cost.

    python benchmarks/bench_forms.py

For ±1 labels and random patterns it prints, per (n, m) and seed, the number of jumps, the largest
canonical form among the jump times, and the time to solve and to expand every jump time, against
the time of the solve alone (decimals only, budget 0) measured in the same run.
"""

import time

import limitproc


def main():
    limitproc.solve(limitproc.generate(50, 4))  # warm up imports and caches before timing
    print(f"{'n':>6} {'m':>3} {'seed':>4} {'jumps':>5} {'max terms':>9} {'solve+forms s':>13} {'solve only s':>12} {'ratio':>6}")
    for n, m in [(100, 12), (1000, 16), (10_000, 20)]:
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


if __name__ == "__main__":
    main()
