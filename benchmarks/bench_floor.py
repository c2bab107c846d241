"""``limitproc solve`` as a whole process against the floor of issue 13, the float64 recursion and the old code.

    python benchmarks/bench_floor.py                 # n = 10^6, m = 64, ±1 labels, 5 interleaved rounds
    python benchmarks/bench_floor.py --n 100000 --rounds 3

The floor is what any solver of a ``.npz`` problem pays: python + numpy + ``np.load`` of the arrays
+ one popcount pass over the packed activation bits. Each round runs, one after the other, the
floor, the float64 recursion of ``bench_engine.py`` (a process), ``limitproc solve`` of the old code
(``git archive`` of ``--baseline``) and of this tree; printed are median CPU times (user + sys of
the process) and their ratios. The JSON outputs of the old and the new code are compared byte for byte.
A first round, not counted, writes the bytecode caches of both trees (``PYTHONDONTWRITEBYTECODE`` is
dropped for the children), as an installed package has them: otherwise every round recompiles
each module of ``limitproc`` it imports.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baseline import BEFORE, ROOT, median, old_tree, run  # noqa: E402

FLOOR = """
import sys
import numpy as np
with np.load(sys.argv[1]) as npz:
    arrays = {key: npz[key] for key in npz.files}
bits = arrays["active"]
words = np.zeros((bits.shape[0], -(-bits.shape[1] // 8) * 8), np.uint8)
words[:, : bits.shape[1]] = bits
print(int(np.bitwise_count(words.view(np.uint64)).sum()))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10**6)
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default=BEFORE, help=f"git revision of the old code (default {BEFORE})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        old = old_tree(args.baseline, work)
        problem = work / "problem.npz"
        run(["-c", f"import limitproc; limitproc.generate({args.n}, {args.m}, seed={args.seed}).to_file({str(problem)!r})"], ROOT, work)
        (work / "floor.py").write_text(FLOOR)
        float_code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench_engine; bench_engine.float_recursion({str(problem)!r})"
        cases = {
            "floor (python + numpy + np.load + popcount)": (["floor.py", problem], work),
            "float64 recursion (bench_engine.py)": (["-c", float_code], ROOT),
            f"limitproc solve, old code ({args.baseline})": (
                ["-m", "limitproc", "solve", problem, "--format", "json", "-o", work / "old.json"],
                old,
            ),
            "limitproc solve, this tree": (["-m", "limitproc", "solve", problem, "--format", "json", "-o", work / "new.json"], ROOT),
        }
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        peak: dict[str, float] = {}
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        for i in range(args.rounds + 1):  # interleaved: the machine is shared; round 0 compiles
            for name, (argv, path) in cases.items():
                seconds, mib = run([work / a if a == "floor.py" else a for a in argv], path, work)
                if i:
                    cpu[name].append(seconds)
                    peak[name] = max(peak.get(name, 0.0), mib)
        same = (work / "old.json").read_bytes() == (work / "new.json").read_bytes()
    print(f"n = {args.n}, m = {args.m}, ±1 labels, seed {args.seed}; median CPU of {args.rounds} interleaved rounds")
    names = list(cases)
    floor, flt, old_name, new = (median(cpu[name]) for name in names)
    for name in names:
        print(
            f"  {name:48s} {median(cpu[name]):7.3f} s   (min {min(cpu[name]):.3f}, max {max(cpu[name]):.3f})   peak {peak[name]:6.0f} MiB"
        )
    print(f"  this tree / floor          = {new / floor:5.2f}   (goal: at most 2)")
    print(f"  this tree / float64        = {new / flt:5.2f}   (goal: below 1)")
    print(f"  this tree / old code       = {new / old_name:5.2f}")
    print(f"  JSON of old and new code identical byte for byte: {same}")


if __name__ == "__main__":
    main()
