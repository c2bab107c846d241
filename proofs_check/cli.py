"""The ``proofs-check`` command: ``list`` the claims, ``run`` them on a case."""

from __future__ import annotations

import argparse

from limitproc.clitools import (
    EXIT_FAILED,
    EXIT_OK,
    Output,
    add_option,
    add_output,
    add_subcommand,
    command_parser,
    lambdas_or_auto,
    nonnegative_int,
    run_command,
)
from limitproc.errors import InputError

__all__ = ["EXAMPLES", "FLAG_OF", "build_parser", "main"]

EXAMPLES = {
    "list": "proofs-check list",
    "run": "proofs-check run --generate 6,4,1 --format markdown -o report.md",
}

# API field names of library errors, shown as these flags
FLAG_OF = {"lambdas": "--lambdas", "output": "--output", "seed": "--seed", "limits": "--limit", "lr": "--lr"}


def _generate(text: str) -> tuple[int, int, int]:
    try:
        n, m, seed = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected n,m,seed, got {text!r}") from None
    if n < 1 or m < 1 or seed < 0:
        raise argparse.ArgumentTypeError(f"n and m must be at least 1 and seed at least 0, got {text!r}")
    return n, m, seed


def build_parser() -> argparse.ArgumentParser:
    parser, sub = command_parser("proofs-check", "Check the theory's claims on computed cases.", EXAMPLES)
    listing = add_subcommand(sub, "list", "List the registered claims.", EXAMPLES["list"])
    add_output(listing)
    p = add_subcommand(
        sub, "run", "Run claims on a case: each passes, fails or is inconclusive (exit status 1 if one fails).", EXAMPLES["run"]
    )
    p.add_argument("--claim", action="append", metavar="ID", help="claim to run (repeatable; default all)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--case", metavar="FILE", help="problem file (.json or .npz), optionally with magnitudes")
    source.add_argument("--generate", type=_generate, metavar="n,m,seed", help="a random ±1-label problem (default 6,4,0)")
    p.add_argument(
        "--lambdas",
        type=lambdas_or_auto,
        default="auto",
        help="comma-separated λ ladder, e.g. 1e-20,1e-40,1e-400, or auto: chosen from the case's jump gaps and offsets (default auto)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the drawn initial magnitudes (default 0)")
    p.add_argument(
        "--lr",
        metavar="ETA",
        help="step of gradient descent, an exact rational like 1 or 0.3: claims about descent (theory §11), "
        "flow-only claims inconclusive with the reason; 0 or absent: gradient flow",
    )
    # "md" is the old spelling of "markdown", --report of --format
    add_option(
        p,
        "--format",
        aliases=("--report",),
        choices=("text", "markdown", "md", "json"),
        default="text",
        metavar="{text,markdown,json}",
        help="report format (default text)",
    )
    add_output(p)
    return parser


def _run_list(args) -> str:
    from .registry import claims

    lines = []
    for c in claims().values():
        lines.append(f"{c.id}  [{c.section}]\n    {c.statement}\n")
    return "\n".join(lines)


def _run_run(args) -> Output:
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
    case = Case(problem, lambdas=args.lambdas, seed=args.seed, lr=args.lr)
    report = run(case, args.claim, progress=True)
    text = report.render("md" if args.format == "markdown" else args.format)
    return Output(text, EXIT_FAILED if report.failed else EXIT_OK)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("proofs-check", args, {"list": _run_list, "run": _run_run}[args.command], FLAG_OF)
