"""Selection bias of dropping rows with an undetermined N (docs/bias.md)."""

import math
from statistics import mean

from limitproc.sweep import Cell, run_cell

print("n   m   rows  tied  mean N/N_min (exact rows)  mean N/N_min (all rows, ties resolved)")
for n in (8, 16, 32, 64):
    m = math.ceil(2 * math.log2(n))
    rows = [run_cell(Cell(n, m, "pm1", "unit", seed, True)) for seed in range(100)]
    rows = [r for r in rows if r["interpolates"]]
    exact = [r["ratio"] for r in rows if r["sq_norm_source"] == "exact"]
    every = [r["ratio"] for r in rows]
    print(f"{n:<3} {m:<3} {len(rows):<5} {len(rows) - len(exact):<5} {mean(exact):<26.4f} {mean(every):.4f}")
