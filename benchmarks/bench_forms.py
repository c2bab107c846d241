"""How large the canonical radical forms of the jump times grow (spec §8), and what they cost.

    python benchmarks/bench_forms.py            # the growth table, then forms over the budget
    python benchmarks/bench_forms.py --quick    # smaller sizes

The growth table: for ±1 labels and random patterns it prints, per (n, m) and seed, the number of
jumps, the largest canonical form among the jump times, and the time to solve and to expand every
jump time, against the time of the solve alone (decimals only, budget 0) measured in the same run.

Over the budget: at the default term budget some jump times end over it. The canonical forms refuse
a result from its operands' sizes before expanding it (``exact._least_terms``); the baseline is the
same code with that test disabled (``_least_terms`` patched to 0 in this process), so every form is
expanded and then measured. CPU time of expanding every jump time of a fresh solve, runs of the two
alternating, medians and their ratio; the strings are checked to be the same.
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


def expand(problem, floor: bool) -> tuple[float, list]:
    """CPU seconds to expand every jump time of a fresh solve, and the strings (None over the budget)."""
    result = limitproc.solve(problem)
    saved = exact._least_terms
    if not floor:
        exact._least_terms = lambda kind, x, y, budget: 0
    try:
        t0 = time.process_time()
        texts = [j.tau.exact() for j in result.jumps]
        return time.process_time() - t0, texts
    finally:
        exact._least_terms = saved


def over_budget(sizes, repeat: int) -> None:
    print(f"\ndefault term budget {exact.DEFAULT_TERM_BUDGET}; CPU s to expand every jump time, medians of {repeat}")
    print(f"{'n':>8} {'m':>3} {'jumps':>5} {'over':>5} {'now s':>8} {'no floor s':>10} {'speed-up':>8} {'same':>5}")
    for n, m in sizes:
        problem = limitproc.generate(n, m, seed=0)
        now, base = [], []
        for _ in range(repeat):  # interleaved: both see the same machine load
            now.append(expand(problem, True))
            base.append(expand(problem, False))
        t, bt = statistics.median(r[0] for r in now), statistics.median(r[0] for r in base)
        texts = now[0][1]
        same = all(r[1] == texts for r in now + base)
        over = sum(s is None for s in texts)
        print(f"{n:>8} {m:>3} {len(texts):>5} {over:>5} {t:>8.3f} {bt:>10.3f} {bt / t:>7.1f}x {'yes' if same else 'NO':>5}")


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
