"""The ``limitproc`` command: a thin layer over the library.

Every subcommand is a pair: ``_add_NAME(subparsers)`` declares its arguments, ``_run_NAME(args)``
calls the library and returns the text to write. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .errors import InputError

EXAMPLES = {
    "solve": "limitproc solve problem.json --format json --digits 40 -o result.json",
    "generate": "limitproc generate --n 1000 --m 16 --labels gauss --decimals 3 --seed 1 -o big.npz",
    "demo": "limitproc demo",
    "simulate": "limitproc simulate problem.json --lambdas 1e-10,1e-20,1e-40,1e-400 --format text",
    "bound": "limitproc bound result.json --c 7 --format json",
    "prob": "limitproc prob --n-pos 500 --n-neg 500 --m 20 --decimal 30",
    "sweep": "limitproc sweep examples/sweep_small.toml -o small.parquet --figures figures/",
    "table": "limitproc table jumps problem.json --format latex -o jumps.tex",
    "graph": "limitproc graph --data labels.json --m 8 --runs 10000 --seed 1 --format graphml -o ensemble.graphml",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _subparser(sub, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")


def _add_solver_options(parser: argparse.ArgumentParser) -> None:
    from .exact import DEFAULT_MAX_PRECISION, DEFAULT_PRECISION, DEFAULT_TERM_BUDGET

    parser.add_argument("--digits", type=_positive_int, default=30, help="significant digits of the certified decimals (default 30)")
    parser.add_argument("--term-budget", type=_nonnegative_int, default=DEFAULT_TERM_BUDGET, help=f"largest canonical radical form, in terms; 0 gives decimals only (default {DEFAULT_TERM_BUDGET})")
    parser.add_argument("--precision", type=_positive_int, default=DEFAULT_PRECISION, help=f"working precision of the certified balls, in bits (default {DEFAULT_PRECISION})")
    parser.add_argument("--max-precision", type=_positive_int, default=DEFAULT_MAX_PRECISION, help=f"precision at which near-ties go to canonical forms (default {DEFAULT_MAX_PRECISION})")


def _solve_kwargs(args) -> dict:
    return {"term_budget": args.term_budget, "precision": args.precision, "max_precision": args.max_precision, "progress": True}


def _load_problem(args):
    from .problem import Problem

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem = Problem.from_file(args.problem, allow_sign_flip=getattr(args, "allow_sign_flip", False), ortho_tol=getattr(args, "ortho_tol", 1e-9))
    for w in caught:
        print(f"limitproc: warning: {w.message}; the limit is not established for this initialisation", file=sys.stderr)
    return problem


def _add_problem_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", metavar="PROBLEM", help="problem file: .json (problem or raw data) or .npz")
    parser.add_argument("--allow-sign-flip", action="store_true", help="accept raw data with |a_j| < ||w_j|| (the limit is then not established)")
    parser.add_argument("--ortho-tol", type=float, default=1e-9, help="relative tolerance for orthogonality of decimal raw inputs (default 1e-9)")


# -- solve ------------------------------------------------------------------------------------
def _add_solve(sub) -> None:
    parser = _subparser(sub, "solve", "Compute the jump process of a problem exactly.")
    _add_problem_argument(parser)
    parser.add_argument("--format", choices=("text", "json", "csv", "latex"), default="text", help="output format (default text)")
    parser.add_argument("--escape-directions", action="store_true", help="include the exact escape directions in the JSON")
    _add_solver_options(parser)
    _add_output(parser)


def _run_solve(args) -> str:
    from .flow.ties import solve_resolved
    from .io.tables import render_result

    resolved = solve_resolved(_load_problem(args), **_solve_kwargs(args))
    return render_result(resolved.result, args.format, args.digits, args.escape_directions, resolved.ties)


# -- generate ---------------------------------------------------------------------------------
def _add_generate(sub) -> None:
    parser = _subparser(sub, "generate", "Generate a random problem (uniform signs, Bernoulli(1/2) activations).")
    parser.add_argument("--n", type=_positive_int, required=True, help="number of samples")
    parser.add_argument("--m", type=_positive_int, required=True, help="number of neurons")
    parser.add_argument("--labels", choices=("pm1", "gauss", "uniform"), default="pm1", help="label law (default pm1)")
    parser.add_argument("--norms", choices=("unit", "uniform"), default="unit", help="squared-norm law (default unit)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--decimals", type=int, default=3, help="decimals of non-integer labels and norms (default 3)")
    parser.add_argument("--loss", choices=("half-mean", "mean", "half-sum"), default="half-mean", help="loss convention (default half-mean)")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="problem file to write: .json or .npz")


def _run_generate(args) -> None:
    from .problem import generate

    problem = generate(args.n, args.m, labels=args.labels, norms=args.norms, seed=args.seed, decimals=args.decimals, loss=args.loss)
    problem.to_file(args.output)


# -- demo -------------------------------------------------------------------------------------
# seed 7: it interpolates, has a certified tie, and a determined norm, so the demo shows each part
DEMO = {"n": 64, "m": 12, "labels": "pm1", "seed": 7}


def _add_demo(sub) -> None:
    parser = _subparser(sub, "demo", f"Solve a built-in example (n={DEMO['n']}, m={DEMO['m']}, ±1 labels, seed {DEMO['seed']}) and print the table.")
    parser.add_argument("--format", choices=("text", "json", "csv", "latex"), default="text", help="output format (default text)")
    _add_solver_options(parser)
    _add_output(parser)


def _run_demo(args) -> str:
    from .flow.ties import solve_resolved
    from .io.tables import render_result
    from .problem import generate

    problem = generate(DEMO["n"], DEMO["m"], labels=DEMO["labels"], seed=DEMO["seed"])
    resolved = solve_resolved(problem, **_solve_kwargs(args))
    title = f"limitproc demo: generate(n={DEMO['n']}, m={DEMO['m']}, labels={DEMO['labels']!r}, seed={DEMO['seed']})\n\n"
    return (title if args.format == "text" else "") + render_result(resolved.result, args.format, args.digits, ties=resolved.ties)


# -- graph ------------------------------------------------------------------------------------
def _add_graph(sub) -> None:
    from .graph import CONFIDENCE, FORMATS

    parser = _subparser(sub, "graph", "Export the saddle-transition graph of a problem, or of an ensemble of random initialisations.")
    parser.add_argument("problem", metavar="PROBLEM", nargs="?", help="problem file (.json or .npz): its graph, or with --runs/--exact the ensemble of its labels and norms")
    parser.add_argument("--data", metavar="DATA", help="labels and norms: a problem .json without signs and active (needs --m and --runs or --exact)")
    parser.add_argument("--m", type=_positive_int, help="number of neurons of the ensemble (taken from PROBLEM when given)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--runs", type=_positive_int, help="draw this many random initialisations (uniform signs, Bernoulli(1/2) activations)")
    how.add_argument("--exact", action="store_true", help="enumerate every initialisation with its exact probability (at most 2^20 patterns)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of --runs (default 0)")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE, help=f"level of the Wilson intervals (default {CONFIDENCE})")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: from the extension of -o, else json)")
    parser.add_argument("--min-probability", type=float, default=0.0, help="pictures of ensembles: leave out rarer saddles and jumps (default 0)")
    _add_output(parser)


def _run_graph(args) -> str | None:
    from .graph import FORMATS, PICTURE_FORMATS, ensemble_graph, graph_text, read_data, transition_graph, write_graph

    if (args.problem is None) == (args.data is None):
        raise InputError("PROBLEM", "give either a problem file or --data")
    ensemble = args.runs is not None or args.exact
    if args.problem is not None:
        problem = _load_problem(args)
        if args.m is not None and args.m != problem.m:
            raise InputError("--m", f"is taken from the problem (m = {problem.m}); drop it or use --data")
        data, m = problem, problem.m
    else:
        if not ensemble:
            raise InputError("--data", "needs --runs R or --exact")
        if args.m is None:
            raise InputError("--m", "required with --data")
        data, m = read_data(args.data), args.m
    if not 0 < args.confidence < 1:
        raise InputError("--confidence", f"must be between 0 and 1, got {args.confidence}")
    suffix = args.output.rsplit(".", 1)[-1].lower() if args.output and "." in args.output else None
    fmt = args.format or (suffix if suffix in FORMATS else "json")
    if ensemble:
        G = ensemble_graph(data, m, runs=args.runs, seed=args.seed, exact=args.exact, confidence=args.confidence, progress=True)
    else:
        from .process import solve

        G = transition_graph(solve(data, progress=True))
    if fmt not in PICTURE_FORMATS:
        return graph_text(G, fmt)
    if not args.output:
        raise InputError("--output", f"a {fmt} picture needs a file (-o FILE)")
    write_graph(G, args.output, fmt, min_probability=args.min_probability)
    return None


# -- bound ------------------------------------------------------------------------------------
def _add_bound(sub) -> None:
    parser = _subparser(sub, "bound", "Implicit bias: N, N_min, N/N_min and the sqrt(n) constant, exactly, with certified bounds.")
    _add_problem_argument(parser)
    parser.add_argument("--c", metavar="C", help="certify N <= C*sqrt(n) for this rational C")
    parser.add_argument("--rho", default="1/2", help="block-shrink factor of the idealised process (default 1/2)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    _add_solver_options(parser)
    _add_output(parser)


def _run_bound(args) -> str:
    import json

    from .bias import Bias
    from .io.files import read_json
    from .process import solve

    data = read_json(args.problem, "RESULT") if args.problem.endswith(".json") else None
    if isinstance(data, dict) and "jumps" in data and "min_sq_norm" in data:
        bias = Bias.of_result_dict(data)
    else:
        bias = Bias.of_result(solve(_load_problem(args), **_solve_kwargs(args)))
    if args.format == "json":
        return json.dumps(bias.to_dict(args.digits, args.c, args.rho), indent=1) + "\n"
    return bias.explain(args.digits, args.c, args.rho)


# -- prob -------------------------------------------------------------------------------------
def _add_prob(sub) -> None:
    parser = _subparser(sub, "prob", "Exact probability of interpolation (spec §7), or the smallest width for 1 - delta.")
    parser.add_argument("--n-pos", type=int, help="number of positive samples (with --n-neg and --m)")
    parser.add_argument("--n-neg", type=int, help="number of negative samples")
    parser.add_argument("--m", type=int, help="width (number of neurons)")
    parser.add_argument("--n", type=_positive_int, help="number of samples, balanced classes (with --delta)")
    parser.add_argument("--delta", help="target failure probability, e.g. 0.01 or 1/100")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--exact", action="store_true", help="print the exact rational p/q")
    shown.add_argument("--decimal", type=_positive_int, metavar="D", default=20, help="significant digits of the decimals (default 20)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    _add_output(parser)


def _run_prob(args) -> str:
    import json

    from .probability import prob_report, width_report

    if args.n is not None or args.delta is not None:
        if args.n is None or args.delta is None or any(v is not None for v in (args.n_pos, args.n_neg, args.m)):
            raise InputError("--n/--delta", "give both --n and --delta, and not --n-pos/--n-neg/--m")
        report = width_report(args.n, args.delta, args.decimal)
    elif None in (args.n_pos, args.n_neg, args.m):
        raise InputError("--n-pos/--n-neg/--m", "give all three (or --n and --delta)")
    else:
        report = prob_report(args.n_pos, args.n_neg, args.m, args.decimal, exact=args.exact or args.format == "json")
    if args.format == "json":
        return json.dumps(report, indent=1) + "\n"
    return "".join(f"{key}: {value}\n" for key, value in report.items())


# -- sweep ------------------------------------------------------------------------------------
def _add_sweep(sub) -> None:
    parser = _subparser(sub, "sweep", "Run a grid of generated problems on dask.distributed; resumable, written to Parquet or CSV.")
    parser.add_argument("config", metavar="CONFIG", help="TOML file with a [sweep] section (n, m, labels, norms, seeds)")
    parser.add_argument("-o", "--output", metavar="FILE", help="FILE.parquet or FILE.csv (default: CONFIG with .parquet); finished cells live in FILE.parts/")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing dask scheduler (default: a LocalCluster here)")
    parser.add_argument("--workers", type=_positive_int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--figures", metavar="DIR", help="also draw the sweep figures (PNG and PDF) into DIR")


def _run_sweep(args) -> None:
    from pathlib import Path

    from .sweep import SweepConfig, read_rows, run_sweep

    config = SweepConfig.from_file(args.config)
    output = args.output or str(Path(args.config).with_suffix(".parquet"))
    summary = run_sweep(config, output, scheduler=args.scheduler, workers=args.workers)
    print(f"{summary['cells']} cells ({summary['computed']} computed, {summary['reused']} already finished) -> {output}")
    if args.figures:
        from .figures import sweep_figures

        for path in sweep_figures(read_rows(output), args.figures):
            print(f"figure: {path}")


# -- table ------------------------------------------------------------------------------------
def _add_table(sub) -> None:
    parser = _subparser(sub, "table", "Appendix tables (jumps of a problem, P(interpolate) over n x m, norm scaling of a sweep).")
    parser.add_argument("kind", choices=("jumps", "prob", "norms"), help="jumps PROBLEM | prob --n ... --m ... | norms SWEEP.parquet")
    parser.add_argument("input", nargs="?", metavar="INPUT", help="the problem file (jumps) or the sweep output (norms)")
    parser.add_argument("--n", type=_positive_int, nargs="+", help="prob: sample counts (balanced classes)")
    parser.add_argument("--m", type=_positive_int, nargs="+", help="prob: widths")
    parser.add_argument("--config", metavar="TOML", help="prob: read n and m (and decimal) from the [table] section instead")
    parser.add_argument("--decimal", type=_positive_int, metavar="D", help="prob: D-digit decimals instead of exact rationals")
    parser.add_argument("--digits", type=_positive_int, default=12, help="jumps: digits of the decimal column; norms: decimals (default 12)")
    parser.add_argument("--no-decimal-column", action="store_true", help="jumps: leave out the tau decimal column")
    parser.add_argument("--format", choices=("latex", "csv", "markdown", "json", "text"), default="latex", help="output format (default latex)")
    _add_output(parser)


def _run_table(args) -> str:
    import json
    from pathlib import Path

    from .io.tables import drop_columns, jump_table, norm_scaling_table, probability_table, table_header

    if args.kind == "prob":
        ns, ms, decimal = args.n, args.m, args.decimal
        if args.config:
            import tomllib

            try:
                settings = tomllib.loads(Path(args.config).read_text()).get("table", {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise InputError("--config", f"cannot read {args.config}: {exc}") from None
            ns, ms, decimal = settings.get("n", ns), settings.get("m", ms), settings.get("decimal", decimal)
        if not ns or not ms:
            raise InputError("--n/--m", "prob needs sample counts and widths (--n ... --m ... or --config)")
        table = probability_table(ns, ms, decimal)
        source = json.dumps({"n": ns, "m": ms, "decimal": decimal}, sort_keys=True).encode()
    else:
        if not args.input:
            raise InputError("INPUT", f"{args.kind} needs an input file")
        try:
            source = Path(args.input).read_bytes()
        except OSError as exc:
            raise InputError("INPUT", f"cannot read {args.input}: {exc.strerror}") from None
        if args.kind == "jumps":
            from .process import solve

            args.problem = args.input
            table = jump_table(solve(_load_problem(args)), args.digits)
            if args.no_decimal_column:
                table = drop_columns(table, ["tau_decimal"])
        else:
            from .sweep import read_rows

            table = norm_scaling_table(read_rows(args.input), min(args.digits, 8))
    table.header = table_header(args.kind, source)
    return table.render(args.format)


# -- simulate ---------------------------------------------------------------------------------
def _add_simulate(sub) -> None:
    parser = _subparser(sub, "simulate", "Integrate the finite-λ gradient flow at several λ and set its loss drops beside the exact limit (spec §9).")
    _add_problem_argument(parser)
    parser.add_argument("--lambdas", default="1e-10,1e-20,1e-40", help="comma-separated λ; below 1e-150 the log-scale coordinates are used, e.g. 1e-400 (default 1e-10,1e-20,1e-40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial magnitudes if the problem carries none (default 0)")
    parser.add_argument("--rtol", type=float, default=1e-8, help="relative tolerance of the integrator (default 1e-8)")
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default text)")
    parser.add_argument("--curves", action="store_true", help="JSON: include every run's loss curve (tau, loss)")
    _add_output(parser)


def _run_simulate(args) -> str:
    import json

    from .io.tables import simulation_table
    from .process import solve
    from .flow.simulate import compare_with_limit, log_inverse, simulate

    lambdas = [x.strip() for x in args.lambdas.split(",") if x.strip()]
    if not lambdas:
        raise InputError("--lambdas", "give at least one λ")
    for lam in lambdas:  # validate before any work
        try:
            log_inverse(lam)
        except InputError as exc:
            raise InputError("--lambdas", exc.problem) from None
    if not args.rtol > 0:
        raise InputError("--rtol", f"must be positive, got {args.rtol}")
    problem = _load_problem(args)
    result = solve(problem)
    runs = [simulate(problem, lam, result=result, seed=args.seed, rtol=args.rtol, progress=True) for lam in lambdas]
    comparison = compare_with_limit(result, runs)
    if args.format == "json":
        if args.curves:
            comparison["curves"] = [{"log_inv_lambda": s.log_inv_lambda, "tau": s.tau.tolist(), "loss": s.loss.tolist()} for s in runs]
        return json.dumps(comparison, indent=1) + "\n"
    return simulation_table(comparison).render(args.format)


COMMANDS = {
    "solve": (_add_solve, _run_solve),
    "generate": (_add_generate, _run_generate),
    "demo": (_add_demo, _run_demo),
    "simulate": (_add_simulate, _run_simulate),
    "bound": (_add_bound, _run_bound),
    "prob": (_add_prob, _run_prob),
    "sweep": (_add_sweep, _run_sweep),
    "table": (_add_table, _run_table),
    "graph": (_add_graph, _run_graph),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="limitproc",
        description="Exact small-initialisation limit of two-layer ReLU gradient flow on orthogonal data.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"limitproc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def write_output(text: str | None, output: str | None) -> None:
    """Write to ``output`` atomically, or to stdout."""
    if text is None:
        return
    if output:
        from .io.files import atomic_write

        try:
            atomic_write(output, text)
        except OSError as exc:
            raise InputError("--output", f"cannot write {output}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)


def run_command(prog: str, args, handler) -> int:
    """Run ``handler(args)`` and write the text it returns; bad input is one line on stderr and exit 2."""
    try:
        write_output(handler(args), getattr(args, "output", None))
    except InputError as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog} {args.command}: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("limitproc", args, COMMANDS[args.command][1])


if __name__ == "__main__":
    sys.exit(main())
