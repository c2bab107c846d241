"""P(interpolate) and the width search at large n: the library against the plain formula, same run.

    python benchmarks/bench_prob.py                 # n = 200000 (balanced), delta = 0.01
    python benchmarks/bench_prob.py --n 1000000

The baseline evaluates theory §7's sum term by term with fresh powers at every width the search
visits; the library shares ``(2^k - 1)^n`` between the terms ``k`` and ``m - k`` and between
neighbouring widths. Both give the same exact numbers (checked).
"""

import argparse
import time

from flint import fmpz

from limitproc import probability
from limitproc.probability import balanced, interpolation_probability, smallest_width


def plain(n_pos: int, n_neg: int, m: int) -> tuple[fmpz, int]:
    """``num / 2^E`` of P(interpolate), every power computed afresh."""
    E = m + m * max(n_pos, n_neg)
    total = fmpz(0)
    for k in range(m + 1):
        num = fmpz.bin_uiui(m, k) * (fmpz(2) ** k - 1) ** n_pos * (fmpz(2) ** (m - k) - 1) ** n_neg
        total += num << (E - (m + k * n_pos + (m - k) * n_neg))
    return total, E


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    n_pos, n_neg = balanced(args.n)
    m = smallest_width(n_pos, n_neg, "0.01")  # warm-up, and the widths the search visits
    widths = [m - 1, m, m + 1]

    probability._mersenne_power.cache_clear()
    probability._probability.cache_clear()
    start = time.process_time()
    shared = [interpolation_probability(n_pos, n_neg, w).fraction() for w in widths]
    t_lib = time.process_time() - start

    start = time.process_time()
    fresh = []
    for w in widths:
        num, E = plain(n_pos, n_neg, w)
        fresh.append(probability.Dyadic.of(num, E).fraction())
    t_plain = time.process_time() - start
    assert shared == fresh, "the two evaluations disagree"
    print(f"n = {args.n}, widths {widths} (smallest for delta = 0.01: {m})")
    print(f"plain formula  {t_plain:8.2f} s CPU")
    print(f"limitproc      {t_lib:8.2f} s CPU   ratio plain/limitproc = {t_plain / t_lib:.2f}")


if __name__ == "__main__":
    main()
