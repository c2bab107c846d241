"""Shared by the benchmarks of issue 13: the code before the change, and CPU time of whole processes.

``old_tree(rev, workdir)`` extracts ``limitproc`` at git revision ``rev`` into ``workdir`` so that a
benchmark can run the old code and the new side by side in one run (``PYTHONPATH`` picks which).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the commit before the issue-13 engine work (override with --baseline)
BEFORE = "033d077"


def old_tree(rev: str, workdir) -> Path:
    """``limitproc`` (and ``proofs_check``) as of ``rev``, extracted under ``workdir``."""
    target = Path(workdir) / f"old-{rev}"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "limitproc", "proofs_check"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run(argv, path: Path, cwd, stdout=subprocess.DEVNULL) -> tuple[float, float]:
    """(CPU seconds, peak MiB) of a process ``python argv`` with ``path`` first on ``PYTHONPATH``
    (measured by a small parent process, whose own time is not counted). ``cwd`` must not hold a
    ``limitproc`` (``python -m`` and ``-c`` put it before ``PYTHONPATH``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(path)
    code = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(u.ru_utime + u.ru_stime, u.ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, sys.executable, *map(str, argv)], env=env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True
    )
    if done.returncode:
        raise SystemExit(f"{argv} failed:\n{done.stderr}")
    cpu, peak = done.stderr.strip().splitlines()[-1].split()
    return float(cpu), int(peak) / 1024
