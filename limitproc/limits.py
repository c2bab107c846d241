"""Resource guards: the sizes beyond which limitproc refuses a request instead of running for minutes.

Every guard is one field of :class:`Limits`, checked before the expensive work starts, and
refused as an :class:`~limitproc.errors.InputError` naming the API field. Raise one for a run
with :func:`limits` (``with limits(number_digits=20000): ...``); the command lines take
``--limit NAME=VALUE`` (repeatable, before the subcommand). A few guards protect a native library
from sizes it cannot handle (``prob_samples``): raising those is at your own risk.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, fields, replace

from .errors import InputError

__all__ = ["Limits", "check_at_most", "check_number_text", "current", "limits"]


@dataclass(frozen=True)
class Limits:
    """The guards and their defaults (see docs/engine.md, "Guards")."""

    number_digits: int = 4000  # digits of one number read from a file or a flag (Python's own int limit is 4300)
    number_exponent: int = 5000  # |exponent| of one number written like 1e-4000
    digits: int = 10_000  # significant digits asked of an output (--digits)
    precision: int = 1 << 20  # bits of working or maximum precision (--precision, --max-precision)
    prob_samples: int = 10**7  # n (or n_pos + n_neg) of an exact probability; flint's exponents overflow far beyond
    prob_work: int = 10**9  # m^2 * n of one exact probability: about 8 s at the limit
    problem_samples: int = 10**8  # n of a generated problem, or of a sweep cell (labels and norms: 3.2 GB at the limit)
    problem_size: int = 10**10  # n * m activation bits of a generated problem (1.25 GB at the limit)
    runs: int = 10**8  # initialisations drawn for one ensemble graph
    rule_bits: int = 64  # bits of any intermediate integer of a sweep rule (m = "ceil(2*log2(n))")
    sweep_cells: int = 10**6  # cells of one sweep grid
    descent_steps: int = 10**6  # steps of one descent run or prediction (t / η): about half a minute at the limit on small problems

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


_state = threading.local()


def current() -> Limits:
    """The limits in force in this thread."""
    return getattr(_state, "limits", None) or Limits()


@contextlib.contextmanager
def limits(**overrides: int):
    """Run a block with some limits changed: ``with limits(prob_width=10**6): ...``."""
    for name, value in overrides.items():
        if name not in Limits.names():
            raise InputError("limit", f"unknown limit {name!r} (choose {', '.join(Limits.names())})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(name, f"a limit must be a positive integer, got {value!r}")
    before = getattr(_state, "limits", None)
    _state.limits = replace(current(), **overrides)
    try:
        yield _state.limits
    finally:
        _state.limits = before


def check_at_most(value: int, limit: str, field: str, what: str = "") -> int:
    """``value`` if it is at most the limit ``limit``, else an InputError on ``field``."""
    bound = getattr(current(), limit)
    if value > bound:
        raise InputError(field, f"{what or 'value'} {_short(value)} is above the guard {limit} = {bound} (raise it with `limits`)")
    return value


def check_number_text(text: str, field: str) -> None:
    """Refuse a number written with too many digits or too large an exponent, before it is built."""
    mantissa, _, rest = text.lower().partition("e")
    exponent, _, denominator = rest.partition("/")
    digits = sum(c.isdigit() for c in mantissa + denominator)
    bounds = current()
    if digits > bounds.number_digits:
        raise InputError(
            field, f"a number with {digits} digits is above the guard number_digits = {bounds.number_digits} (raise it with `limits`)"
        )
    if exponent:
        exp = exponent.strip().lstrip("+-").lstrip("0")
        if len(exp) > 12 or (exp and int(exp) > bounds.number_exponent):
            raise InputError(
                field,
                f"exponent {_short(exponent.strip())} is beyond the guard number_exponent = {bounds.number_exponent} (raise it with `limits`)",
            )


def _short(value) -> str:
    text = str(value) if not isinstance(value, int) or value.bit_length() < 1000 else f"about 2^{value.bit_length()}"
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
