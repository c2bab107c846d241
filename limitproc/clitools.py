"""What every command line of the project is built from (``limitproc``, ``proofs-check``).

A command is a thin layer: parse the arguments, call the library, render. The pieces here exist
once so that the command lines behave alike: a usage error or bad input is one line on stderr and
exit status 2, output files are written atomically, and old option spellings keep working.

Library errors name API fields (``ortho_tol``) and quote API names in backticks in their text
(``set `allow_sign_flip` to force``). Each command line keeps one table from API names to its
flags; :func:`run_command` prints ``--ortho-tol: ...`` when the running command has that flag,
and the API name otherwise (``labels`` of a problem file stays ``labels``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import traceback
import warnings
from dataclasses import dataclass

from .errors import Error, InputError

__all__ = [
    "ARGUMENT_LIMITS",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Output",
    "Parser",
    "add_option",
    "add_output",
    "add_subcommand",
    "command_parser",
    "describe_error",
    "float_between",
    "int_at_least",
    "lambdas",
    "lambdas_or_auto",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "run_command",
    "write_output",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and reports a failure (proofs-check: a claim failed)
EXIT_USAGE = 2  # bad input or bad options: one line on stderr
EXIT_INTERNAL = 3  # a bug: one line on stderr, the traceback with --debug
EXIT_INTERRUPTED = 130

#: argument (dest) -> the guard of :mod:`limitproc.limits` its value must respect, checked before the handler runs
ARGUMENT_LIMITS = {"digits": "digits", "precision": "precision", "max_precision": "precision", "runs": "runs"}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def option_strings(self) -> frozenset[str]:
        """Every option this parser accepts, e.g. ``{"-o", "--output", "--digits"}``."""
        return frozenset(s for action in self._actions for s in action.option_strings)


def command_parser(prog: str, description: str, examples: dict[str, str]):
    """A top-level :class:`Parser` listing ``examples``, and its required subcommands."""
    parser = Parser(
        prog=prog,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="on an internal error, print the traceback")
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        type=_limit,
        metavar="NAME=VALUE",
        help="raise a resource guard, e.g. --limit number_digits=20000 (repeatable; see docs/engine.md, Guards)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)
    return parser, sub


def _limit(text: str) -> tuple[str, int]:
    from .limits import Limits

    name, _, value = text.partition("=")
    if name.strip() not in Limits.names():
        raise argparse.ArgumentTypeError(f"unknown limit {name.strip()!r} (choose {', '.join(Limits.names())})")
    return name.strip(), int_at_least(1)(value)


def add_subcommand(sub, name: str, help: str, example: str) -> Parser:
    """A subcommand whose ``--help`` ends with an example command line."""
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(command_parser=parser)  # run_command asks it which flags exist
    return parser


def add_option(container, *names: str, aliases: tuple[str, ...] = (), **kwargs) -> argparse.Action:
    """``container.add_argument(*names, **kwargs)``, also accepting the old spellings ``aliases``.

    The aliases are hidden from ``--help``; they keep command lines written before a rename working.
    """
    action = container.add_argument(*names, **kwargs)
    same = {k: v for k, v in kwargs.items() if k not in ("help", "default", "required", "dest")}
    for old in aliases:
        container.add_argument(old, dest=action.dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **same)
    return action


def add_output(parser: argparse.ArgumentParser, help: str = "write here (atomically) instead of stdout", **kwargs) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help=help, **kwargs)


# -- typed arguments ------------------------------------------------------------------------------
def int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def float_between(low: float, high: float):
    """An argparse ``type``: a float in ``[low, high]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a float ``> 0``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def lambdas(text: str) -> tuple[str, ...]:
    """An argparse ``type``: comma-separated λ in (0, 1), kept as written (``1e-400`` is no float)."""
    from .flow.simulate import parse_lambda

    values = tuple(x.strip() for x in text.split(",") if x.strip())
    if not values:
        raise argparse.ArgumentTypeError("give at least one λ")
    try:
        parsed = [parse_lambda(lam) for lam in values]
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    seen: dict[float, str] = {}
    for L, text in parsed:
        if L in seen:
            raise argparse.ArgumentTypeError(f"λ {text} repeats {seen[L]}")
        seen[L] = text
    return tuple(text for _, text in parsed)


def lambdas_or_auto(text: str) -> tuple[str, ...] | str:
    """:func:`lambdas`, or ``"auto"`` (the program chooses the ladder)."""
    return "auto" if text.strip() == "auto" else lambdas(text)


# -- running a command ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Output:
    """What a command handler returns when its exit status is not simply 0: text and status."""

    text: str | list | None
    status: int = EXIT_OK


def describe_error(exc: InputError, flag_of: dict[str, str], options=frozenset()) -> str:
    """``field: problem`` with API names shown as the flags in ``options`` that ``flag_of`` maps them to."""

    def name(api: str) -> str | None:
        flag = flag_of.get(api)
        return flag if flag in options else None

    problem = re.sub(r"`(\w+)`", lambda m: name(m[1]) or m[0], exc.problem)
    return f"{name(exc.field) or exc.field}: {problem}"


def write_output(text: str | list | None, output: str | None) -> None:
    """Write ``text`` (or a list of UTF-8 bytes-like parts, one after the other) to the file ``output``
    atomically, or to stdout; nothing if ``text`` is None."""
    if text is None:
        return
    if output is not None:
        from .io.files import atomic_write

        if not output:
            raise InputError("output", "empty file name (leave out -o to write to stdout)")
        try:
            if isinstance(text, str):
                atomic_write(output, text)
            else:
                atomic_write(output, lambda fh: fh.writelines(text), mode="wb")
        except OSError as exc:
            raise InputError("output", f"cannot write {output}: {exc.strerror}") from None
    else:
        try:
            if isinstance(text, str):
                sys.stdout.write(text)
            else:  # the parts one by one, never joined (a solve's JSON may be large)
                sys.stdout.flush()
                sys.stdout.buffer.writelines(text)
            sys.stdout.flush()
        except OSError as exc:
            raise InputError("stdout", f"cannot write: {exc.strerror or exc}") from None


def run_command(prog: str, args: argparse.Namespace, handler, flag_of: dict[str, str]) -> int:
    """Run ``handler(args)``, write what it returns to ``args.output`` or stdout, return the exit status.

    The one place errors become exit statuses: 0 done, 1 a reported failure (the handler's
    :class:`Output`), 2 bad input (:class:`InputError`, an unreadable file, a guard of
    :mod:`limitproc.limits`, or another library :class:`~limitproc.errors.Error`), 3 an internal
    error (its traceback only under ``--debug``), 130 an interrupt. Every message is one line on
    stderr; library warnings are one line each.
    """
    from .io.files import Terminated
    from .limits import check_at_most, limits

    where = f"{prog} {args.command}"
    options = args.command_parser.option_strings() | {"--limit"}
    # numbers read are bounded by the limits on digits and exponents, so printing them may take any length
    sys.set_int_max_str_digits(0)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(limits(**dict(getattr(args, "limit", []))))
            for dest, limit in ARGUMENT_LIMITS.items():
                if isinstance(getattr(args, dest, None), int):
                    check_at_most(getattr(args, dest), limit, dest)
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always", UserWarning)
            try:
                result = handler(args)
            finally:
                _show_warnings(caught, where)
            output = result if isinstance(result, Output) else Output(result)
            write_output(output.text, getattr(args, "output", None))
    except InputError as exc:
        _say(f"{where}: error: {describe_error(exc, flag_of, options)}")
        return EXIT_USAGE
    except Error as exc:  # certified arithmetic that could not decide, an integration that failed
        _say(f"{where}: error: {type(exc).__name__}: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        _say(f"{where}: error: {exc.filename}: {exc.strerror}" if exc.filename else f"{where}: error: {exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except Terminated as exc:
        _say(f"{prog}: terminated by signal {exc.signum}")
        return 128 + exc.signum
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        _say(f"{where}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
    return output.status


def _say(line: str) -> None:
    """One line on stderr, whatever the message holds: control characters escaped, length capped."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    print(line if len(line) <= 2000 else line[:2000] + "...", file=sys.stderr)


def _show_warnings(caught, where: str) -> None:
    """One line per warning. (Not ``warnings.showwarning``: inside the recording context it appends to
    ``caught`` again, so a loop over it never ended.)"""
    for w in list(caught):
        kind = "" if issubclass(w.category, UserWarning) else f"{w.category.__name__}: "  # not ours: say whose
        print(f"{where}: warning: {kind}{w.message}", file=sys.stderr)
