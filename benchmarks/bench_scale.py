"""``limitproc solve`` from n = 10^6 to 10^8 samples (m = 64, ±1 labels): CPU time, peak memory, growth.

    python benchmarks/bench_scale.py                     # n = 10^6, 10^7, 10^8
    python benchmarks/bench_scale.py --sizes 1e6 1e7     # smaller, to try it out

For each size a problem file is generated (not timed), then the floor of ``bench_floor.py`` (python +
numpy + ``np.load`` + one popcount pass) and ``limitproc solve --format json`` run as processes;
printed are CPU times, peak resident memory and the growth exponent ``log(t2/t1) / log(n2/n1)``
between the smallest and the largest size, for the solve and for the floor, measured in this run.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baseline import ROOT, run  # noqa: E402
from bench_floor import FLOOR  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="where the problem and result files go (default: a temporary directory)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        work = Path(workdir)
        (work / "floor.py").write_text(FLOOR)
        for n in map(int, args.sizes):
            problem, out = work / "problem.npz", work / "result.json"
            run(["-c", f"import limitproc; limitproc.generate({n}, {args.m}, seed={args.seed}).to_file({str(problem)!r})"], ROOT, work)
            floor, floor_peak = run([work / "floor.py", problem], ROOT, work)
            cpu, peak = run(["-m", "limitproc", "solve", problem, "--format", "json", "-o", out], ROOT, work)
            rows.append((n, cpu, peak, floor, floor_peak, out.stat().st_size))
            print(
                f"n = {n:>11,}  solve {cpu:8.2f} s CPU, peak {peak / 1024:6.2f} GiB   floor {floor:7.2f} s, {floor_peak / 1024:5.2f} GiB   "
                f"ratio {cpu / floor:5.2f}   JSON {out.stat().st_size / 2**20:7.0f} MiB",
                flush=True,
            )
            problem.unlink()
            out.unlink()
    (n1, t1, *_rest1), (n2, t2, *_rest2) = rows[0], rows[-1]
    f1, f2 = rows[0][3], rows[-1][3]
    if n2 > n1:
        print(
            f"growth exponent {n1:,} -> {n2:,}: solve {math.log(t2 / t1) / math.log(n2 / n1):.2f}, floor {math.log(f2 / f1) / math.log(n2 / n1):.2f}"
        )


if __name__ == "__main__":
    main()
