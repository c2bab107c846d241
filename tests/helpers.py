"""Shared test helpers: exact comparison and the worked examples of docs/theory.md §10."""

import sympy

from limitproc import Problem

__all__ = ["EXAMPLE_1", "EXAMPLE_2", "EXAMPLE_3", "same_number"]


def same_number(text, expected) -> bool:
    """Exact equality of a sympify-able string and a sympy expression (no floats involved)."""
    return sympy.radsimp(sympy.sympify(text) - sympy.sympify(expected)) == 0


EXAMPLE_1 = Problem(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)])
EXAMPLE_2 = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
EXAMPLE_3 = Problem(labels=["1/2", 3, -1], sq_norms=[4, "1/4", 1], signs=[1, 1, -1], active=[[0, 1], [0, 2], [0, 1, 2]])


def run_cli(capsys, *argv):
    """Run the limitproc CLI in process: (exit status, stdout, stderr)."""
    from limitproc.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # a usage error, reported by argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
