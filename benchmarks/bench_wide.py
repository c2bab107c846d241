"""Wide networks (n = 30, m up to 10^7): the engine against the engine at an earlier commit, same run.

    python benchmarks/bench_wide.py                       # m = 10^6 against the baseline, then m = 10^7 alone
    python benchmarks/bench_wide.py --sizes 100000 --repeat 3 --baseline-sizes 100000

The baseline is ``limitproc`` as of ``--baseline`` (a git revision, by default the last commit before
the vectorised neuron state), extracted with ``git archive`` into a temporary directory. Every run is a
fresh process that generates the problem (``generate(n, m, seed)``, ±1 labels), then solves it; it
reports the CPU time of ``solve`` and the peak resident memory of the whole process. Runs of the two
engines alternate; the medians and their ratio are printed, and the jumps (neurons and 40-digit times)
are checked to be the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import BEFORE, ROOT, old_tree

CHILD = """
import json, resource, sys, time
import limitproc
n, m, seed = map(int, sys.argv[1:4])
problem = limitproc.generate(n, m, seed=seed)
t0 = time.process_time()
result = limitproc.solve(problem)
cpu = time.process_time() - t0
jumps = [[list(j.neurons), j.tau.decimal(40)] for j in result.jumps]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"cpu": cpu, "peak": peak, "jumps": jumps, "engine": limitproc.__file__}))
"""


def run(path: Path, n: int, m: int, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(m), str(seed)],
        env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"},
        cwd=path,  # the script's directory comes first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[10**6], help="sizes also run at the baseline")
    parser.add_argument("--baseline", default=BEFORE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = old_tree(args.baseline, tmp)
        print(f"n = {args.n}, ±1 labels, seed {args.seed}; CPU s of solve and peak GiB of the process, medians of {args.repeat}")
        print(f"{'m':>9} {'jumps':>5} {'now s':>8} {'now GiB':>8} {'base s':>8} {'base GiB':>8} {'speed-up':>8} {'same':>5}")
        for m in args.sizes:
            now, base = [], []
            for _ in range(args.repeat):  # interleaved: both engines see the same machine load
                now.append(run(ROOT, args.n, m, args.seed))
                if m in args.baseline_sizes:
                    base.append(run(old, args.n, m, args.seed))
            t, peak = statistics.median(r["cpu"] for r in now), statistics.median(r["peak"] for r in now) / 2**30
            row = f"{m:>9} {len(now[0]['jumps']):>5} {t:>8.3f} {peak:>8.3f}"
            if base:
                bt, bpeak = statistics.median(r["cpu"] for r in base), statistics.median(r["peak"] for r in base) / 2**30
                same = all(r["jumps"] == base[0]["jumps"] for r in now + base)
                assert base[0]["engine"] != now[0]["engine"], "the baseline imported the current engine"
                row += f" {bt:>8.3f} {bpeak:>8.3f} {bt / t:>7.1f}x {'yes' if same else 'NO':>5}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
