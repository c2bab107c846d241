"""The ``limitproc`` command: a thin layer over the library.

Every subcommand is a pair: ``_add_NAME(subparsers)`` declares its arguments, ``_run_NAME(args)``
calls the library and returns the text to write. The shared machinery (one-line errors with exit
status 2, atomic output, typed arguments) is :mod:`limitproc.clitools`; :data:`FLAG_OF` turns the
API field names of library errors into this command line's flags.
"""

from __future__ import annotations

import argparse
import sys

from .clitools import (
    add_option,
    add_output,
    add_subcommand,
    command_parser,
    float_between,
    lambdas,
    nonnegative_int,
    positive_float,
    positive_int,
    run_command,
)
from .errors import InputError

__all__ = ["COMMANDS", "EXAMPLES", "FLAG_OF", "build_parser", "main"]

EXAMPLES = {
    "solve": "limitproc solve problem.json --format json --digits 40 -o result.json",
    "generate": "limitproc generate --n 1000 --m 16 --labels gauss --decimals 3 --seed 1 -o big.npz",
    "demo": "limitproc demo",
    "simulate": "limitproc simulate problem.json --lambdas 1e-10,1e-20,1e-40,1e-400 --format text",
    "predict": "limitproc predict problem.json --lambda 1e-30 --compare --figure curve.png",
    "coherence": "limitproc coherence problem.json --eps 0,1e-3,1e-2,1e-1 --gaussian-d 320,1024 --figure coherence.png",
    "bound": "limitproc bound result.json --c 7 --format json",
    "prob": "limitproc prob --n-pos 500 --n-neg 500 --m 20 --digits 30",
    "sweep": "limitproc sweep examples/sweep_small.toml -o small.parquet --figures figures/",
    "table": "limitproc table jumps problem.json --format latex -o jumps.tex",
    "graph": "limitproc graph --data labels.json --m 8 --runs 10000 --seed 1 --format graphml -o ensemble.graphml",
    "overlay": "limitproc overlay run.csv raw.npz --lr 0.5 --lambda 1e-20 --x tau -o overlay.png",
}

# The library's errors name API fields; the user sees these flags instead (where the command has them).
FLAG_OF = {
    "allow_sign_flip": "--allow-sign-flip",
    "ortho_tol": "--ortho-tol",
    "balance_tol": "--balance-tol",
    "digits": "--digits",
    "term_budget": "--term-budget",
    "precision": "--precision",
    "max_precision": "--max-precision",
    "output": "--output",
    "format": "--format",
    "n": "--n",
    "m": "--m",
    "labels": "--labels",
    "norms": "--norms",
    "decimals": "--decimals",
    "seed": "--seed",
    "runs": "--runs",
    "exact": "--enumerate",
    "confidence": "--confidence",
    "min_probability": "--min-probability",
    "C": "--c",
    "rho": "--rho",
    "n_pos": "--n-pos",
    "n_neg": "--n-neg",
    "delta": "--delta",
    "config": "--config",
    "scheduler": "--scheduler",
    "workers": "--workers",
    "lambda": "--lambdas",
    "lambdas": "--lambdas",
    "method": "--method",
    "x": "--x",
    "figure": "--figure",
    "rtol": "--rtol",
    "lr": "--lr",
    "scaling": "--scaling",
    "limits": "--limit",
    "eps": "--eps",
    "d": "--gaussian-d",
}


def _subparser(sub, name: str, help: str) -> argparse.ArgumentParser:
    return add_subcommand(sub, name, help, EXAMPLES[name])


def _add_solver_options(parser: argparse.ArgumentParser) -> None:
    from .exact import DEFAULT_MAX_PRECISION, DEFAULT_PRECISION, DEFAULT_TERM_BUDGET

    parser.add_argument("--digits", type=positive_int, default=30, help="significant digits of the certified decimals (default 30)")
    parser.add_argument(
        "--term-budget",
        type=nonnegative_int,
        default=DEFAULT_TERM_BUDGET,
        help=f"largest canonical radical form, in terms; 0 gives decimals only (default {DEFAULT_TERM_BUDGET})",
    )
    parser.add_argument(
        "--precision",
        type=positive_int,
        default=DEFAULT_PRECISION,
        help=f"working precision of the certified balls, in bits (default {DEFAULT_PRECISION})",
    )
    parser.add_argument(
        "--max-precision",
        type=positive_int,
        default=DEFAULT_MAX_PRECISION,
        help=f"precision at which near-ties go to canonical forms (default {DEFAULT_MAX_PRECISION})",
    )
    _add_step_option(parser)


def _add_step_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lr",
        metavar="ETA",
        help="step of gradient descent, an exact rational like 1 or 0.3: its limit (theory §11); 0 or absent: gradient flow",
    )


def _add_scaling_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scaling",
        choices=("standard", "mean-field"),
        help="report losses and norms in this parameterisation (default: the problem file's, else standard)",
    )


def _solve_kwargs(args) -> dict:
    return {
        "term_budget": args.term_budget,
        "precision": args.precision,
        "max_precision": args.max_precision,
        "progress": True,
        "lr": args.lr,
    }


def _problem_options(args) -> dict:
    return {key: getattr(args, key, None) for key in ("ortho_tol", "balance_tol")} | {
        "allow_sign_flip": getattr(args, "allow_sign_flip", False)
    }


def _load_problem(args, path=None):
    from .problem import Problem

    problem = Problem.from_file(path or args.problem, **_problem_options(args))
    if getattr(args, "scaling", None):
        problem = problem.with_scaling(args.scaling)
    return problem


def _add_problem_argument(parser: argparse.ArgumentParser, help: str = "problem file: .json (problem or raw data) or .npz") -> None:
    parser.add_argument("problem", metavar="PROBLEM", help=help)
    parser.add_argument(
        "--allow-sign-flip", action="store_true", help="accept raw data with |a_j| < ||w_j|| (the limit is then not established)"
    )
    parser.add_argument(
        "--ortho-tol",
        type=float,
        help="relative tolerance for orthogonality of approximate raw inputs (default 1e-9 for JSON decimals, sqrt(eps) of the dtype for .npz)",
    )
    parser.add_argument(
        "--balance-tol",
        type=float,
        help="relative tolerance of the balance check |a_j| >= ||w_j|| of approximate raw data "
        "(default 1e-9 for JSON decimals; for .npz the rounding error of ||w_j|| in the dtype)",
    )


# -- solve ------------------------------------------------------------------------------------
def _add_solve(sub) -> None:
    parser = _subparser(sub, "solve", "Compute the jump process of a problem exactly.")
    _add_problem_argument(parser)
    parser.add_argument("--format", choices=("text", "json", "csv", "latex"), default="text", help="output format (default text)")
    parser.add_argument("--escape-directions", action="store_true", help="include the exact escape directions in the JSON")
    _add_solver_options(parser)
    _add_scaling_option(parser)
    add_output(parser)


def _run_solve(args) -> list:
    problem = _load_problem(args)
    if problem.magnitudes is None:  # no ties to resolve from magnitudes: limitproc.flow stays unloaded
        from .process import solve

        result, ties = solve(problem, **_solve_kwargs(args)), None
    else:
        from .flow.ties import solve_resolved

        resolved = solve_resolved(problem, **_solve_kwargs(args))
        result, ties = resolved.result, resolved.ties
    from .io.render import render_result_parts

    return render_result_parts(result, args.format, args.digits, args.escape_directions, ties)


# -- generate ---------------------------------------------------------------------------------
def _add_generate(sub) -> None:
    parser = _subparser(sub, "generate", "Generate a random problem (uniform signs, Bernoulli(1/2) activations).")
    parser.add_argument("--n", type=positive_int, required=True, help="number of samples")
    parser.add_argument("--m", type=positive_int, required=True, help="number of neurons")
    parser.add_argument("--labels", choices=("pm1", "gauss", "uniform"), default="pm1", help="label law (default pm1)")
    parser.add_argument("--norms", choices=("unit", "uniform"), default="unit", help="squared-norm law (default unit)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--decimals", type=int, default=3, help="decimal places of non-integer labels and norms (default 3)")
    parser.add_argument(
        "--loss", choices=("half-mean", "mean", "half-sum"), default="half-mean", help="loss convention (default half-mean)"
    )
    parser.add_argument("--magnitudes", action="store_true", help="also draw the initial magnitudes from the same seed")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="problem file to write: .json or .npz")


def _run_generate(args) -> None:
    from .problem import generate

    problem = generate(
        args.n,
        args.m,
        labels=args.labels,
        norms=args.norms,
        seed=args.seed,
        decimals=args.decimals,
        loss=args.loss,
        magnitudes=args.magnitudes,
    )
    problem.to_file(args.output)


# -- demo -------------------------------------------------------------------------------------
# seed 7: it interpolates, has a certified tie, and a determined norm, so the demo shows each part
DEMO = {"n": 64, "m": 12, "labels": "pm1", "seed": 7}


def _add_demo(sub) -> None:
    parser = _subparser(
        sub, "demo", f"Solve a built-in example (n={DEMO['n']}, m={DEMO['m']}, ±1 labels, seed {DEMO['seed']}) and print the table."
    )
    parser.add_argument("--format", choices=("text", "json", "csv", "latex"), default="text", help="output format (default text)")
    _add_solver_options(parser)
    add_output(parser)


def _run_demo(args) -> list:
    from .flow.ties import solve_resolved
    from .io.render import render_result_parts
    from .problem import generate

    problem = generate(DEMO["n"], DEMO["m"], labels=DEMO["labels"], seed=DEMO["seed"])
    resolved = solve_resolved(problem, **_solve_kwargs(args))
    parts = render_result_parts(resolved.result, args.format, args.digits, ties=resolved.ties)
    if args.format != "text":
        return parts
    title = f"limitproc demo: generate(n={DEMO['n']}, m={DEMO['m']}, labels={DEMO['labels']!r}, seed={DEMO['seed']})\n\n"
    return [title.encode(), *parts]


# -- graph ------------------------------------------------------------------------------------
def _add_graph(sub) -> None:
    from .graph import CONFIDENCE
    from .io.graphs import FORMATS

    parser = _subparser(sub, "graph", "Export the saddle-transition graph of a problem, or of an ensemble of random initialisations.")
    parser.add_argument(
        "problem",
        metavar="PROBLEM",
        nargs="?",
        help="problem file (.json or .npz): its graph, or with --runs/--enumerate the ensemble of its labels and norms",
    )
    parser.add_argument(
        "--data", metavar="DATA", help="labels and norms: a problem .json without signs and active (needs --m and --runs or --enumerate)"
    )
    parser.add_argument("--m", type=positive_int, help="number of neurons of the ensemble (taken from PROBLEM when given)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--runs", type=positive_int, help="draw this many random initialisations (uniform signs, Bernoulli(1/2) activations)")
    add_option(
        how,
        "--enumerate",
        aliases=("--exact",),
        action="store_true",
        help="every initialisation with its exact probability (at most 2^20 patterns)",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed of --runs (default 0)")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE, help=f"level of the Wilson intervals (default {CONFIDENCE})")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: from the extension of -o, else json)")
    parser.add_argument(
        "--min-probability", type=float, default=0.0, help="pictures of ensembles: leave out rarer saddles and jumps (default 0)"
    )
    _add_step_option(parser)
    _add_scaling_option(parser)
    add_output(parser)


def _run_graph(args) -> str | None:
    from .graph import ensemble_graph, read_data, transition_graph
    from .io.graphs import FORMATS, PICTURE_FORMATS, graph_text, write_graph

    if (args.problem is None) == (args.data is None):
        raise InputError("PROBLEM", "give either a problem file or --data")
    ensemble = args.runs is not None or args.enumerate
    if args.problem is not None:
        problem = _load_problem(args)
        if args.m is not None and args.m != problem.m:
            raise InputError("--m", f"is taken from the problem (m = {problem.m}); drop it or use --data")
        data, m = problem, problem.m
    else:
        if not ensemble:
            raise InputError("--data", "needs --runs R or --enumerate")
        if args.m is None:
            raise InputError("--m", "required with --data")
        data, m = read_data(args.data), args.m
        if getattr(args, "scaling", None) not in (None, "standard"):
            raise InputError("--scaling", "the ensemble graph is in standard units (its runs' mean-field units would depend on their m)")
    suffix = args.output.rsplit(".", 1)[-1].lower() if args.output and "." in args.output else None
    fmt = args.format or (suffix if suffix in FORMATS else "json")
    if ensemble:
        G = ensemble_graph(
            data, m, runs=args.runs, seed=args.seed, exact=args.enumerate, confidence=args.confidence, progress=True, lr=args.lr
        )
    else:
        from .process import solve

        G = transition_graph(solve(data, progress=True, lr=args.lr))
    if fmt not in PICTURE_FORMATS:
        return graph_text(G, fmt)
    if not args.output:
        raise InputError("--output", f"a {fmt} picture needs a file (-o FILE)")
    write_graph(G, args.output, fmt, min_probability=args.min_probability)
    return None


# -- bound ------------------------------------------------------------------------------------
def _add_bound(sub) -> None:
    parser = _subparser(sub, "bound", "Implicit bias: N, N_min, N/N_min and the sqrt(n) constant, exactly, with certified bounds.")
    _add_problem_argument(parser, "problem file, or the JSON of `limitproc solve --format json`")
    parser.add_argument("--c", metavar="C", help="certify N <= C*sqrt(n) for this rational C")
    parser.add_argument("--rho", default="1/2", help="block-shrink factor of the idealised process (default 1/2)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    _add_solver_options(parser)
    add_output(parser)


def _run_bound(args) -> str:
    import json

    from .bias import Bias

    bias = Bias.from_file(args.problem, **_problem_options(args), **_solve_kwargs(args))
    if args.format == "json":
        return json.dumps(bias.to_dict(args.digits, args.c, args.rho), indent=1) + "\n"
    return bias.explain(args.digits, args.c, args.rho)


# -- prob -------------------------------------------------------------------------------------
def _add_prob(sub) -> None:
    parser = _subparser(sub, "prob", "Exact probability of interpolation (theory §7), or the smallest width for 1 - delta.")
    parser.add_argument("--n-pos", type=int, help="number of positive samples (with --n-neg and --m)")
    parser.add_argument("--n-neg", type=int, help="number of negative samples")
    parser.add_argument("--m", type=int, help="width (number of neurons)")
    parser.add_argument("--n", type=positive_int, help="number of samples, balanced classes (with --delta)")
    parser.add_argument("--delta", help="target failure probability, e.g. 0.01 or 1/100")
    add_option(parser, "--rational", aliases=("--exact",), action="store_true", help="also print the exact rationals p/q (always in JSON)")
    add_option(
        parser,
        "--digits",
        aliases=("--decimal",),
        type=positive_int,
        metavar="D",
        default=20,
        help="significant digits of the decimals (default 20)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    add_output(parser)


def _run_prob(args) -> str:
    import json

    from .probability import prob_report, width_report

    if args.n is not None or args.delta is not None:
        if args.n is None or args.delta is None or any(v is not None for v in (args.n_pos, args.n_neg, args.m)):
            raise InputError("--n/--delta", "give both --n and --delta, and not --n-pos/--n-neg/--m")
        report = width_report(args.n, args.delta, args.digits)
    elif None in (args.n_pos, args.n_neg, args.m):
        raise InputError("--n-pos/--n-neg/--m", "give all three (or --n and --delta)")
    else:
        report = prob_report(args.n_pos, args.n_neg, args.m, args.digits, exact=args.rational or args.format == "json")
    if args.format == "json":
        return json.dumps(report, indent=1) + "\n"
    return "".join(f"{key}: {value}\n" for key, value in report.items())


# -- sweep ------------------------------------------------------------------------------------
def _add_sweep(sub) -> None:
    parser = _subparser(sub, "sweep", "Run a grid of generated problems on dask.distributed; resumable, written to Parquet or CSV.")
    parser.add_argument("config", metavar="CONFIG", help="TOML file with a [sweep] section (n, m, labels, norms, seeds)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="FILE.parquet or FILE.csv (default: CONFIG with .parquet); finished cells live in FILE.parts/",
    )
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing dask scheduler (default: a LocalCluster here)")
    parser.add_argument("--workers", type=positive_int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--figures", metavar="DIR", help="also draw the sweep figures (PNG and PDF) into DIR")
    parser.add_argument(
        "--lr",
        metavar="ETA[,ETA...]",
        help="steps of gradient descent, exact rationals like 1 or 0.3 (an axis of the grid; replaces the config's lr); 0: gradient flow",
    )


def _run_sweep(args) -> None:
    from pathlib import Path

    from .io.sweeprows import read_rows
    from .sweep import SweepConfig, run_sweep

    config = SweepConfig.from_file(args.config, **({} if args.lr is None else {"lr": args.lr.split(",")}))
    output = args.output or str(Path(args.config).with_suffix(".parquet"))
    summary = run_sweep(config, output, scheduler=args.scheduler, workers=args.workers)
    print(f"{summary['cells']} cells ({summary['computed']} computed, {summary['reused']} already finished) -> {output}")
    if args.figures:
        from .figures import sweep_figures

        for path in sweep_figures([row for row in read_rows(output) if not row.get("unstable")], args.figures):
            print(f"figure: {path}")


# -- table ------------------------------------------------------------------------------------
def _add_table(sub) -> None:
    parser = _subparser(sub, "table", "Appendix tables (jumps of a problem, P(interpolate) over n x m, norm scaling of a sweep).")
    parser.add_argument("kind", choices=("jumps", "prob", "norms"), help="jumps PROBLEM | prob --n ... --m ... | norms SWEEP.parquet")
    parser.add_argument("input", nargs="?", metavar="INPUT", help="the problem file (jumps) or the sweep output (norms)")
    parser.add_argument("--n", type=positive_int, nargs="+", help="prob: sample counts (balanced classes)")
    parser.add_argument("--m", type=positive_int, nargs="+", help="prob: widths")
    parser.add_argument("--config", metavar="TOML", help="prob: n, m (and digits) from the [table] section of this file; flags given win")
    add_option(
        parser,
        "--digits",
        aliases=("--decimal",),
        type=positive_int,
        metavar="D",
        help="significant digits of certified decimals (default: jumps 10, prob 6); prob: decimals in the cells unless --values is given",
    )
    parser.add_argument(
        "--values",
        choices=("fit", "exact", "decimal"),
        help="exact values: fit (default: long ones in a block under the table, a marked decimal in the cell), "
        "exact (all in the cells), decimal (decimals in the cells, every exact value in the block)",
    )
    parser.add_argument("--label", help="LaTeX \\label of the table (default tab:jumps, tab:prob, tab:norms)")
    parser.add_argument("--decimals", type=nonnegative_int, metavar="P", help="norms: decimal places of the means (default 4)")
    _add_step_option(parser)
    _add_scaling_option(parser)
    parser.add_argument("--no-decimal-column", action="store_true", help="jumps: leave out the tau decimal column")
    parser.add_argument(
        "--format", choices=("latex", "csv", "markdown", "json", "text"), default="latex", help="output format (default latex)"
    )
    add_output(parser)


def _run_table(args) -> str:
    import json
    from pathlib import Path

    from .io.tables import drop_columns, jump_table, norm_scaling_table, probability_table, read_table_config, table_header

    if args.kind == "prob":
        config = read_table_config(args.config) if args.config else {}
        ns, ms, digits = args.n or config.get("n"), args.m or config.get("m"), args.digits or config.get("digits")
        if not ns or not ms:
            raise InputError("--n/--m", "prob needs sample counts and widths (--n ... --m ... or --config)")
        table = probability_table(ns, ms, digits, args.values)
        source = json.dumps({"n": ns, "m": ms, "digits": digits}, sort_keys=True).encode()
    else:
        if not args.input:
            raise InputError("INPUT", f"{args.kind} needs an input file")
        try:
            source = Path(args.input).read_bytes()
        except OSError as exc:
            raise InputError("INPUT", f"cannot read {args.input}: {exc.strerror}") from None
        if args.kind == "jumps":
            from .process import solve

            table = jump_table(solve(_load_problem(args, args.input), lr=args.lr), args.digits or 10)
            if args.no_decimal_column:
                table = drop_columns(table, ["tau_decimal"])
        else:
            from .io.sweeprows import read_rows

            # before --decimals, norms read its decimal places from --digits
            places = args.decimals if args.decimals is not None else min(args.digits or 4, 8)
            table = norm_scaling_table(read_rows(args.input), places)
    table.header = table_header(args.kind, source)
    if args.kind != "prob" and args.values:
        table.values = args.values
    if args.label:
        table.label = args.label
    return table.render(args.format)


# -- simulate ---------------------------------------------------------------------------------
def _add_simulate(sub) -> None:
    parser = _subparser(
        sub, "simulate", "Integrate the finite-λ gradient flow at several λ and set its loss drops beside the exact limit (theory §9)."
    )
    _add_problem_argument(parser)
    parser.add_argument(
        "--lambdas",
        type=lambdas,
        default="1e-10,1e-20,1e-40",
        help="comma-separated λ; below 1e-150 the log-scale coordinates are used, e.g. 1e-400 (default 1e-10,1e-20,1e-40)",
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the initial magnitudes if the problem carries none (default 0)"
    )
    parser.add_argument(
        "--rtol",
        type=float_between(1e-13, 1e-2),
        default=1e-8,
        help="relative tolerance of the integrator, in [1e-13, 1e-2] (default 1e-8)",
    )
    parser.add_argument(
        "--method", choices=("flow", "gd"), default="flow", help="gradient flow, or gradient descent with step --lr (default flow)"
    )
    parser.add_argument("--lr", type=_step, help="step η of --method gd, e.g. 1 or 0.3 (compared with the ρ process of theory §11)")
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default text)")
    parser.add_argument(
        "--curves",
        action="store_true",
        help="JSON: include every run's loss curve and per-neuron log squared norms (tau, loss, log_sq_norms)",
    )
    parser.add_argument("--figure", metavar="FILE", help="also draw the loss and per-neuron norm trajectories to FILE (.png, .svg, .pdf)")
    parser.add_argument(
        "--general",
        action="store_true",
        help="raw data (.npz: X, y, W, a): run the general flow on the raw inputs (chosen anyway when they are not orthogonal)",
    )
    add_output(parser)


def _step(text: str) -> str:
    """An argparse ``type``: a positive step, kept as written (the exact engine reads ``0.3`` as 3/10)."""
    positive_float(text)
    return text


def _run_simulate(args) -> str:
    import json

    from .flow.simulate import compare_with_limit, simulate
    from .io.tables import simulation_table
    from .process import solve

    if (args.method == "gd") != (args.lr is not None):
        raise InputError("--lr", "give a step with --method gd, and only then")
    problem, data = _simulation_inputs(args)
    result = solve(problem, lr=args.lr) if args.lr is not None else solve(problem)
    lr = None if args.lr is None else float(args.lr)
    if data is not None:
        from .flow.general import simulate_general

        runs = [simulate_general(data, lam, result=result, rtol=args.rtol, method=args.method, lr=lr) for lam in args.lambdas]
    else:
        runs = [
            simulate(problem, lam, result=result, seed=args.seed, rtol=args.rtol, method=args.method, lr=lr, progress=True)
            for lam in args.lambdas
        ]
    comparison = compare_with_limit(result, runs)
    comparison["path"] = "per-sample (orthogonal data)" if data is None else "general (raw inputs, against the nearest orthogonal limit)"
    if args.figure:
        from .plots import norm_trajectories, save_figure

        save_figure(norm_trajectories(runs), args.figure, field="figure")
    if args.format == "json":
        if args.curves:
            comparison["curves"] = [
                {
                    "log_inv_lambda": s.log_inv_lambda,
                    "tau": s.tau.tolist(),
                    "loss": s.loss.tolist(),
                    "log_sq_norms": s.log_sq_norms.tolist(),
                }
                for s in runs
            ]
        return json.dumps(comparison, indent=1) + "\n"
    return simulation_table(comparison).render(args.format)


# -- predict ----------------------------------------------------------------------------------
def _add_predict(sub) -> None:
    parser = _subparser(
        sub,
        "predict",
        "Predict the finite-λ loss curve and drop times t_k = τ_k log(1/λ) + δ_k without simulating (approximate, float64).",
    )
    _add_problem_argument(parser)
    parser.add_argument("--lambda", dest="lam", type=lambdas, required=True, help="one λ in (0, 1), any depth, e.g. 1e-30 or 1e-10000")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the initial magnitudes if the problem carries none (default 0)"
    )
    parser.add_argument(
        "--lr", type=_step, help="predict gradient descent with this step η instead of the flow (theory §11), e.g. --lr 0.5 --compare"
    )
    parser.add_argument("--compare", action="store_true", help="also simulate at λ (cost grows with log(1/λ)) and report the difference")
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default text)")
    parser.add_argument("--curves", action="store_true", help="JSON: include the predicted curve (t, tau, loss, log_sq_norms)")
    parser.add_argument("--figure", metavar="FILE", help="draw the loss curve(s) on the limit's staircase (.png, .pdf or .svg)")
    add_output(parser)


def _run_predict(args) -> str:
    import json

    from .flow.predict import compare_prediction, predict
    from .io.tables import prediction_table
    from .process import solve

    if len(args.lam) != 1:
        raise InputError("--lambda", "give one λ (simulate takes a ladder)")
    lam = args.lam[0]
    problem = _load_problem(args)
    result = solve(problem, lr=args.lr)
    prediction = predict(result, lam, seed=args.seed)
    record = prediction.to_dict(curves=args.curves)
    run = f" descent (η = {args.lr})" if args.lr else ""
    curves = [(f"predicted{run}, λ = {lam}", prediction.tau, prediction.loss)]
    if args.compare:
        from .flow.simulate import simulate

        method = {"method": "gd", "lr": prediction.lr} if args.lr else {}
        simulation = simulate(problem, lam, result=result, seed=args.seed, progress=True, **method)
        record["comparison"] = compare_prediction(prediction, simulation)
        curves.append((f"simulated{run}, λ = {lam}", simulation.tau, simulation.loss))
    if args.figure:
        from .figures import loss_curve_figure

        loss_curve_figure(result, curves, args.figure)
    if args.format == "json":
        return json.dumps(record, indent=1) + "\n"
    text = prediction_table(record).render(args.format)
    if args.format == "text":
        step = f"gradient descent, step η = {args.lr}; " if args.lr else ""
        text += f"{step}log(1/λ) = {prediction.log_inv_lambda:.6g}; final N predicted {prediction.final_sq_norm:.9g}\n"
        if args.compare:
            cmp = record["comparison"]
            text += f"simulated: final N {cmp['final_sq_norm_simulated']:.9g}, largest loss difference {cmp['max_loss_difference']:.3g}\n"
    return text


# -- overlay ----------------------------------------------------------------------------------
def _add_overlay(sub) -> None:
    from .overlay import AXES

    parser = _subparser(
        sub, "overlay", "Draw your own descent run's loss beside the flow and descent limits, and print measured and predicted drop times."
    )
    parser.add_argument("run", metavar="RUN", help="the loss log: CSV with a loss column (and iteration), or a JSON list of losses")
    _add_problem_argument(parser)
    parser.add_argument("--lr", type=_step, required=True, help="the run's step η")
    parser.add_argument("--lambda", dest="lam", type=_scale, required=True, help="the run's initialisation scale λ in (0, 1), e.g. 1e-20")
    parser.add_argument("--x", choices=AXES, default="iterations", help="x axis and unit of the printed times (default iterations)")
    parser.add_argument(
        "-o", "--output", dest="figure", metavar="FIG", help="draw the figure here (.png, .svg or .pdf); the times go to stdout"
    )


def _scale(text: str) -> str:
    """An argparse ``type``: one λ in (0, 1), kept as written."""
    if "," in text:
        raise argparse.ArgumentTypeError(f"one λ, got {text!r}")
    return lambdas(text)[0]


def _run_overlay(args) -> str:
    from .overlay import overlay, read_run

    iterations, loss = read_run(args.run)
    ov = overlay(_load_problem(args), iterations, loss, args.lr, args.lam)
    if args.figure:
        from .plots import overlay_figure, save_figure

        save_figure(overlay_figure(ov, args.x), args.figure)
    return ov.text(args.x)


def _simulation_inputs(args):
    """``(problem, raw data or None)``: the general path runs (raw data returned) with ``--general``
    or on raw ``.npz`` data (X, y, W, a) whose inputs are not orthogonal within ``--ortho-tol``."""
    from .io.problems import is_raw_npz

    raw = args.general or (args.problem.endswith(".npz") and is_raw_npz(args.problem))
    if not raw:
        return _load_problem(args), None
    from .flow.general import is_orthogonal, nearest_orthogonal_problem
    from .io.rawdata import read_raw

    data = read_raw(args.problem)
    general = args.general or not is_orthogonal(data.inputs, args.ortho_tol)
    print(f"limitproc simulate: {'general' if general else 'per-sample (orthogonal inputs)'} path", file=sys.stderr)
    if not general:  # the exact reduction solve makes (the nearest problem rounds q: rounding would decide ties)
        return _load_problem(args), None
    return nearest_orthogonal_problem(data), data


# -- coherence --------------------------------------------------------------------------------
def _add_coherence(sub) -> None:
    parser = _subparser(
        sub,
        "coherence",
        "How far the jump process survives on nearly orthogonal inputs: perturb the data, simulate, compare with the limit.",
    )
    _add_problem_argument(parser, help="problem file with orthogonal data (.json or .npz)")
    parser.add_argument(
        "--eps", type=_eps_list, default="0,1e-3,1e-2,1e-1", help="perturbations ε in [0, 1) of X = Q + εG (default 0,1e-3,1e-2,1e-1)"
    )
    parser.add_argument("--gaussian-d", type=_int_list, default="", help="also Gaussian inputs in these dimensions, e.g. 320,1024")
    parser.add_argument("--lambdas", type=lambdas, default="1e-8,1e-12,1e-16", help="the λ ladder (default 1e-8,1e-12,1e-16)")
    parser.add_argument("--dim", type=positive_int, default=None, help="dimension d of the perturbed inputs (default n)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of Q, G, Gaussian inputs and magnitudes (default 0)")
    parser.add_argument("--rtol", type=positive_float, default=1e-8, help="relative tolerance of the integrator (default 1e-8)")
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default text)")
    parser.add_argument("--figure", metavar="FILE", help="write the deviation-against-ε figure here (.png, .pdf, .svg)")
    add_output(parser)


def _eps_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    for e in values:
        if not 0 <= e < 1:
            raise argparse.ArgumentTypeError(f"ε must lie in [0, 1), got {e:g}")
    return values


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(positive_int(x) for x in text.split(",") if x.strip())


def _run_coherence(args) -> str:
    import json

    from .flow.coherence import coherence_figure, coherence_study

    study = coherence_study(
        _load_problem(args), args.eps, gaussian_dims=args.gaussian_d, lambdas=args.lambdas, d=args.dim, seed=args.seed, rtol=args.rtol
    )
    if args.figure:
        coherence_figure(study, args.figure)
    if args.format == "json":
        return json.dumps(study.to_dict(), indent=1) + "\n"
    return study.table().render(args.format)


COMMANDS = {
    "solve": (_add_solve, _run_solve),
    "generate": (_add_generate, _run_generate),
    "demo": (_add_demo, _run_demo),
    "simulate": (_add_simulate, _run_simulate),
    "predict": (_add_predict, _run_predict),
    "coherence": (_add_coherence, _run_coherence),
    "bound": (_add_bound, _run_bound),
    "prob": (_add_prob, _run_prob),
    "sweep": (_add_sweep, _run_sweep),
    "table": (_add_table, _run_table),
    "graph": (_add_graph, _run_graph),
    "overlay": (_add_overlay, _run_overlay),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone (another command's options may import its modules)."""
    from . import __version__

    parser, sub = command_parser(
        "limitproc", "Exact small-initialisation limit of two-layer ReLU gradient flow on orthogonal data.", EXAMPLES
    )
    parser.add_argument("--version", action="version", version=f"limitproc {__version__}")
    for name, (add, _) in COMMANDS.items():
        if command in (None, name):
            add(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # a command named first is parsed alone: global options (and --help) come before it
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    return run_command("limitproc", args, COMMANDS[args.command][1], FLAG_OF)


if __name__ == "__main__":
    sys.exit(main())
