"""The ``proofs-check`` command: ``list`` the claims, ``run`` them on a case."""

from __future__ import annotations

import argparse

from limitproc.cli import _Parser, run_command
from limitproc.errors import InputError

EXAMPLES = {
    "list": "proofs-check list",
    "run": "proofs-check run --generate 6,4,1 --lambdas 1e-10,1e-20,1e-40 --report md -o report.md",
}


def _lambdas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"each λ must lie in (0, 1), got {text!r}")
    return values


def _generate(text: str) -> tuple[int, int, int]:
    try:
        n, m, seed = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected n,m,seed, got {text!r}") from None
    if n < 1 or m < 1:
        raise argparse.ArgumentTypeError(f"n and m must be at least 1, got {text!r}")
    return n, m, seed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="proofs-check", description="Check the theory's claims on computed cases.",
                     epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values()), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, help in (("list", "List the registered claims."), ("run", "Run claims on a case and report pass/fail.")):
        p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "run":
            p.add_argument("--claim", action="append", metavar="ID", help="claim to run (repeatable; default all)")
            source = p.add_mutually_exclusive_group()
            source.add_argument("--case", metavar="FILE", help="problem file (.json or .npz), optionally with magnitudes")
            source.add_argument("--generate", type=_generate, metavar="n,m,seed", help="a random ±1-label problem (default 6,4,0)")
            p.add_argument("--lambdas", type=_lambdas, default=(1e-10, 1e-20, 1e-40), help="λ ladder (default 1e-10,1e-20,1e-40)")
            p.add_argument("--seed", type=int, default=0, help="seed of the drawn initial magnitudes (default 0)")
            p.add_argument("--report", choices=("text", "md", "json"), default="text", help="report format (default text)")
        p.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    return parser


def _run_list(args) -> str:
    from .registry import claims

    lines = []
    for c in claims().values():
        lines.append(f"{c.id}  [{c.section}]\n    {c.statement}\n")
    return "\n".join(lines)


def _run_run(args) -> str:
    from limitproc import Problem, generate

    from .case import Case
    from .registry import claims
    from .report import run

    known = claims()
    for cid in args.claim or []:
        if cid not in known:
            raise InputError("--claim", f"unknown claim {cid!r} (see proofs-check list)")
    if args.case:
        problem = Problem.from_file(args.case)
    else:
        n, m, seed = args.generate or (6, 4, 0)
        problem = generate(n, m, seed=seed)
    case = Case(problem, lambdas=args.lambdas, seed=args.seed)
    report = run(case, args.claim, progress=True)
    args.failed = not report.passed
    return report.render(args.report)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.failed = False
    code = run_command("proofs-check", args, {"list": _run_list, "run": _run_run}[args.command])
    return 1 if code == 0 and args.failed else code
