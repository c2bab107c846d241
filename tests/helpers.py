"""Shared test helpers: exact comparison and the worked examples of docs/theory.md §10."""

from fractions import Fraction

import mpmath
import sympy

from limitproc import Problem

__all__ = ["EXAMPLE_1", "EXAMPLE_2", "EXAMPLE_3", "literal_process", "run_cli", "same_number"]


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


def literal_process(problem: Problem, lr=None) -> list[tuple]:
    """Theory §4 literally in 60-digit mpmath, every rate ``mu`` replaced by ``rho = log(1 + eta mu) / eta``
    under a step ``lr`` (§11): [(tau, neurons, sorted union of their blocks)]."""
    mpmath.mp.dps = 60
    y, q, c = problem.labels, problem.sq_norms, problem.loss_factor  # the signs enter through the aligned sets
    aligned = [set(problem.aligned_set(j).tolist()) for j in range(problem.m)]
    fitted, escaped, S, tau, out = set(), set(), [mpmath.mpf(0)] * problem.m, mpmath.mpf(0), []
    eta = None if not lr else mpmath.mpf(Fraction(lr).numerator) / Fraction(lr).denominator

    def rate(j):
        R = sum((y[i] ** 2 * q[i] for i in aligned[j] - fitted), Fraction(0))
        mu = 2 * mpmath.mpf(c.numerator) / c.denominator * mpmath.sqrt(mpmath.mpf(R.numerator) / R.denominator)
        return mu if eta is None else mpmath.log(1 + eta * mu) / eta

    while True:
        rates = {j: rate(j) for j in range(problem.m) if j not in escaped}
        rates = {j: r for j, r in rates.items() if r > 0}
        if not rates:
            return out
        delta = {j: (1 - S[j]) / r for j, r in rates.items()}
        d = min(delta.values())
        for j, r in rates.items():
            S[j] += r * d
        tau += d
        group = sorted(j for j in rates if delta[j] - d < mpmath.mpf(10) ** -45)
        block = set().union(*(aligned[j] - fitted for j in group))
        fitted |= block
        escaped |= set(group)
        out.append((tau, tuple(group), sorted(block)))
