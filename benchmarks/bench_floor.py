"""``limitproc solve`` as a whole process against the floor of issue 13, the float64 recursion and the old code.

    python benchmarks/bench_floor.py                 # n = 10^6, m = 64, ±1 labels, 5 interleaved rounds
    python benchmarks/bench_floor.py --n 100000 --rounds 3
    python benchmarks/bench_floor.py --breakdown      # and where this tree's time goes, phase by phase

The floor is what any solver of a ``.npz`` problem pays: python + numpy + ``np.load`` of the arrays
+ one popcount pass over the packed activation bits. Each round runs, one after the other, the
floor, the float64 recursion of ``bench_engine.py`` (a process), ``limitproc solve`` of the old code
(``git archive`` of ``--baseline``) and of this tree; printed are median CPU times (user + sys of
the process) and their ratios. The JSON outputs of the old and the new code are compared byte for byte.
A first round, not counted, writes the bytecode caches of both trees (``PYTHONDONTWRITEBYTECODE`` is
dropped for the children), as an installed package has them: otherwise every round recompiles
each module of ``limitproc`` it imports.

``--breakdown`` adds, interleaved with the rounds, a process of this tree that does what
``limitproc solve --format json -o`` does one phase at a time and reports the CPU time of each
(python and the imports, loading the problem, the solve, the canonical forms of the jump times,
their exact strings, the rest of the JSON, writing it): medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baseline import BEFORE, ROOT, old_tree, run  # noqa: E402

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

PHASES = """
import json, resource, sys
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
import limitproc.cli
from limitproc.io.files import atomic_write
from limitproc.io.results import result_json_parts
from limitproc.problem import Problem
from limitproc.process import solve
marks = [("python and imports", cpu())]
problem = Problem.from_file(sys.argv[1])
marks.append(("load the problem", cpu()))
result = solve(problem)
marks.append(("solve", cpu()))
for jump in result.jumps:
    jump.tau.form()
marks.append(("canonical forms of the jump times", cpu()))
for jump in result.jumps:
    jump.tau.exact()
marks.append(("their exact strings", cpu()))
parts = result_json_parts(result, end=b"\\n")
marks.append(("the rest of the JSON", cpu()))
atomic_write(sys.argv[2], lambda fh: fh.writelines(parts), mode="wb")
marks.append(("write it", cpu()))
print(json.dumps({name: t - (marks[i - 1][1] if i else 0.0) for i, (name, t) in enumerate(marks)}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10**6)
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default=BEFORE, help=f"git revision of the old code (default {BEFORE})")
    parser.add_argument("--breakdown", action="store_true", help="also time this tree's phases (a process per round)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        old = old_tree(args.baseline, work)
        problem = work / "problem.npz"
        run(["-c", f"import limitproc; limitproc.generate({args.n}, {args.m}, seed={args.seed}).to_file({str(problem)!r})"], ROOT, work)
        (work / "floor.py").write_text(FLOOR)
        (work / "phases.py").write_text(PHASES)
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
        phases: dict[str, list[float]] = {}
        peak: dict[str, float] = {}
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        for i in range(args.rounds + 1):  # interleaved: the machine is shared; round 0 compiles
            for name, (argv, path) in cases.items():
                seconds, mib = run([work / a if a == "floor.py" else a for a in argv], path, work)
                if i:
                    cpu[name].append(seconds)
                    peak[name] = max(peak.get(name, 0.0), mib)
            if args.breakdown and i:
                done = subprocess.run(
                    [sys.executable, work / "phases.py", problem, work / "phases.json"],
                    env=dict(os.environ, PYTHONPATH=str(ROOT)),
                    cwd=work,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                for phase, seconds in json.loads(done.stdout).items():
                    phases.setdefault(phase, []).append(seconds)
        same = (work / "old.json").read_bytes() == (work / "new.json").read_bytes()
    print(f"n = {args.n}, m = {args.m}, ±1 labels, seed {args.seed}; median CPU of {args.rounds} interleaved rounds")
    names = list(cases)
    floor, flt, old_name, new = (statistics.median(cpu[name]) for name in names)
    for name in names:
        print(
            f"  {name:48s} {statistics.median(cpu[name]):7.3f} s   (min {min(cpu[name]):.3f}, max {max(cpu[name]):.3f})   peak {peak[name]:6.0f} MiB"
        )
    print(f"  this tree / floor          = {new / floor:5.2f}   (goal: at most 2)")
    print(f"  this tree / float64        = {new / flt:5.2f}   (goal: below 1)")
    print(f"  this tree / old code       = {new / old_name:5.2f}")
    print(f"  JSON of old and new code identical byte for byte: {same}")
    if phases:
        print(f"where this tree's time goes (CPU s, medians of {args.rounds}; their sum is one process)")
        for phase, seconds in phases.items():
            print(f"  {phase:48s} {statistics.median(seconds):7.3f} s")


if __name__ == "__main__":
    main()
