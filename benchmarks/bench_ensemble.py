"""``ensemble_graph`` of many runs: this tree (one ``LabelContext`` per ensemble) against the old code.

    python benchmarks/bench_ensemble.py                      # 10^4 runs, n = 16, m = 8, 3 interleaved rounds
    python benchmarks/bench_ensemble.py --runs 2000 --rounds 5

Each round builds the ensemble of ``generate(n, m, seed=3)`` (±1 labels, the docs' example) with the
old code (``git archive`` of ``--baseline``) and with this tree, in fresh processes; printed are the
median CPU times of the ``ensemble_graph`` call (imports excluded) and their ratio, and whether the
two graphs' node-link JSON is identical: every node, edge and graph attribute the
old code wrote (graph attributes it did not have, such as ``lr`` and ``scaling`` before 1a5528e, are
listed, not compared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baseline import BEFORE, ROOT, old_tree  # noqa: E402

CODE = """
import sys, time
import networkx
import limitproc
from limitproc.graph import ensemble_graph
from limitproc.io.graphs import graph_text
n, m, runs, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.process_time()
G = ensemble_graph(limitproc.generate(n, m, seed=3), m, runs=runs, seed=1)
print(time.process_time() - t0)
open(out, "w").write(graph_text(G, "json"))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--m", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10**4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BEFORE, help=f"git revision of the old code (default {BEFORE})")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as workdir:
        trees = {"old": old_tree(args.baseline, workdir), "new": ROOT}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                out = Path(workdir) / f"{name}.json"
                done = subprocess.run(
                    [sys.executable, "-c", CODE, str(args.n), str(args.m), str(args.runs), str(out)],
                    env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                    cwd=workdir,  # not this tree: -c puts the working directory first on the path
                    check=True,
                    capture_output=True,
                    text=True,
                )
                times[name].append(float(done.stdout))
        texts = {name: json.loads((Path(workdir) / f"{name}.json").read_text()) for name in trees}
    added = sorted(set(texts["new"]["graph"]) - set(texts["old"]["graph"]))
    for key in added:
        del texts["new"]["graph"][key]
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"ensemble_graph: {args.runs} runs, n = {args.n}, m = {args.m}; median CPU of {args.rounds} interleaved rounds")
    print(f"  old code ({args.baseline})  {old:7.3f} s   {sorted(times['old'])}")
    print(f"  this tree        {new:7.3f} s   {sorted(times['new'])}")
    print(f"  speed-up old / new = {old / new:5.2f}   (goal: at least 3)")
    print(
        f"  graphs identical (node-link JSON): {texts['old'] == texts['new']}"
        + (f"   (new graph attributes: {', '.join(added)})" if added else "")
    )


if __name__ == "__main__":
    main()
