"""The probability that the limit network interpolates (theory §7), exactly.

With ``g_j`` isotropic Gaussian and ``s_j`` uniform, the events ``<g_j, x_i> > 0`` are fair coins,
independent across ``(j, i)`` for orthogonal data. Given ``m_+`` positive neurons a positive sample
is uncovered with probability ``2^-m_+``, independently, so

    P(interpolate) = sum_{m_+} C(m, m_+) 2^-m (1 - 2^-m_+)^n_+ (1 - 2^-(m - m_+))^n_-.

Every term is a dyadic rational, so the sum is ``num / 2^E`` with integers of about ``m·n`` bits.
They are computed with flint's ``fmpz`` (GMP): ``n = 10^6`` costs seconds, not hours. The search
for the smallest width compares such numbers exactly. The asymptotic thresholds are floats: they
are rules of thumb, documented as approximate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from flint import fmpz

from .errors import InputError
from .exact import parse_rational, rational_string, round_significant

__all__ = [
    "Dyadic",
    "balanced",
    "decimal_string",
    "interpolation_probability",
    "monte_carlo",
    "p_interpolate",
    "p_interpolate_random_signs",
    "prob_report",
    "random_signs_probability",
    "smallest_width",
    "thresholds",
    "union_bound",
    "union_bound_width",
    "width_report",
]


def _check_counts(n_pos: int, n_neg: int, m: int) -> None:
    for field, value in (("n_pos", n_pos), ("n_neg", n_neg), ("m", m)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(field, f"must be a non-negative integer, got {value!r}")


def _binomial_sum(m: int, uncovered_free, progress: bool = False) -> tuple[fmpz, int]:
    """``sum_k C(m, k) 2^-m f(k)`` as ``(num, E)`` meaning ``num / 2^E``.

    ``uncovered_free(k)`` returns ``f(k)`` as ``(num_k, e_k)``, i.e. ``num_k / 2^e_k``.
    """
    from .progress import progress_bar

    terms = []
    with progress_bar(total=m + 1, desc=f"P(interpolate), m = {m}", enabled=progress) as bar:
        for k in range(m + 1):
            num, e = uncovered_free(k)
            terms.append((fmpz.bin_uiui(m, k) * num, m + e))
            bar.update(1)
    E = max(e for _, e in terms)
    total = fmpz(0)
    for num, e in terms:
        total += num << (E - e)
    return total, E


@lru_cache(maxsize=128)
def _mersenne_power(k: int, n: int) -> fmpz:
    """``(2^k - 1)^n``, kept for the neighbouring widths of the width search."""
    return (fmpz(2) ** k - 1) ** n


def _p_interpolate_dyadic(n_pos: int, n_neg: int, m: int, progress: bool = False) -> tuple[fmpz, int]:
    """The sum of theory §7 as ``num / 2^E``.

    Term ``k`` is ``C(m, k) (2^k - 1)^n_+ (2^(m-k) - 1)^n_- / 2^(m + k n_+ + (m-k) n_-)``. With
    ``s = min(n_+, n_-)`` the terms ``k`` and ``m - k`` share the large factor
    ``C(m, k) ((2^k - 1)(2^(m-k) - 1))^s`` and differ only by a power ``|n_+ - n_-|``: each large
    product is formed once per pair.
    """
    from .progress import progress_bar

    s, d = min(n_pos, n_neg), abs(n_pos - n_neg)
    E = m + m * max(n_pos, n_neg)
    total = fmpz(0)
    with progress_bar(total=m // 2 + 1, desc=f"P(interpolate), m = {m}", enabled=progress) as bar:
        for k in range(m // 2 + 1):
            shared = fmpz.bin_uiui(m, k) * _mersenne_power(k, s) * _mersenne_power(m - k, s)
            for j in (k,) if 2 * k == m else (k, m - k):
                extra = _mersenne_power(j if n_pos >= n_neg else m - j, d)
                total += (shared * extra) << (E - m - j * n_pos - (m - j) * n_neg)
            bar.update(1)
    return total, E


def _p_interpolate_random_signs_dyadic(n: int, m: int) -> tuple[fmpz, int]:
    powers = {}

    def free(k):  # each sample positive with probability 1/2: (1 - 2^-(k+1) - 2^-(m-k+1))^n
        k = min(k, m - k)  # symmetric in k <-> m - k: compute each power once
        if k not in powers:
            powers[k] = (fmpz(2) ** (m + 1) - fmpz(2) ** (m - k) - fmpz(2) ** k) ** n
        return powers[k], (m + 1) * n

    return _binomial_sum(m, free)


def _reduced(num: fmpz, E: int) -> tuple[int, int]:
    """``num / 2^E`` in lowest terms, as Python ints ``(p, e)`` meaning ``p / 2^e``."""
    p = int(num)
    if p == 0:
        return 0, 0
    shift = min((p & -p).bit_length() - 1, E)
    return p >> shift, E - shift


def _coprime_fraction(p: int, q: int) -> Fraction:
    # Fraction(p, q) would run CPython's quadratic gcd on numbers of millions of bits; the pair is
    # coprime by construction (odd over a power of two), so skip the normalisation.
    # (private constructors: Python >= 3.12, then 3.11; any other Python just pays for the gcd)
    make = getattr(Fraction, "_from_coprime_ints", None)
    if make is not None:
        return make(p, q)
    try:
        return Fraction(p, q, _normalize=False)  # type: ignore[call-overload]
    except TypeError:
        return Fraction(p, q)


@dataclass(frozen=True)
class Dyadic:
    """An exact probability ``p / 2^e`` in lowest terms; ``fraction()`` and ``decimal(d)`` read it."""

    p: int
    e: int

    @classmethod
    def of(cls, num: fmpz, E: int) -> Dyadic:
        return cls(*_reduced(num, E))

    def fraction(self) -> Fraction:
        return _coprime_fraction(self.p, 1 << self.e)

    def complement(self) -> Dyadic:
        """``1 - self``, still in lowest terms (an odd numerator stays odd)."""
        if self.e == 0:
            return Dyadic(1 - self.p, 0)
        return Dyadic((1 << self.e) - self.p, self.e)

    def string(self) -> str:
        """``"p/q"`` (or ``"p"``), sympify-able; flint prints the digits (Python's str is quadratic)."""
        return str(fmpz(self.p)) if self.e == 0 else f"{fmpz(self.p)}/{fmpz(2) ** self.e}"

    def at_most(self, bound: Fraction) -> bool:
        """``self <= bound``, exactly."""
        return self.p * bound.denominator <= bound.numerator << self.e

    def decimal(self, digits: int) -> str:
        return decimal_string(self.p, self.e, digits)


def p_interpolate(n_pos: int, n_neg: int, m: int) -> Fraction:
    """The exact probability (theory §7) that width ``m`` interpolates ``n_pos`` positive and ``n_neg`` negative samples."""
    return interpolation_probability(n_pos, n_neg, m).fraction()


def interpolation_probability(n_pos: int, n_neg: int, m: int, progress: bool = False) -> Dyadic:
    """:func:`p_interpolate` as a :class:`Dyadic` (fast exact comparisons and decimals for large ``n``).

    ``progress`` shows a bar over the ``m + 1`` terms (seconds each at ``n = 10^6``).
    """
    _check_counts(n_pos, n_neg, m)
    return _probability(int(n_pos), int(n_neg), int(m), progress)


@lru_cache(maxsize=4)  # the width search and its report ask for the same large values again
def _probability(n_pos: int, n_neg: int, m: int, progress: bool) -> Dyadic:
    return Dyadic.of(*_p_interpolate_dyadic(n_pos, n_neg, m, progress))


def p_interpolate_random_signs(n: int, m: int) -> Fraction:
    """The same probability when each label's sign is a fair coin (as ``generate`` draws them).

    A sample is then uncovered with probability ``(2^-m_+ + 2^-m_-)/2``, independently, so the
    sum has ``(1 - 2^-(m_+ + 1) - 2^-(m_- + 1))^n`` in place of the two powers.
    """
    return random_signs_probability(n, m).fraction()


def random_signs_probability(n: int, m: int) -> Dyadic:
    """:func:`p_interpolate_random_signs` as a :class:`Dyadic`."""
    _check_counts(n, 0, m)
    return Dyadic.of(*_p_interpolate_random_signs_dyadic(int(n), int(m)))


def union_bound(n: int, m: int) -> Fraction:
    """The union bound ``P(fail) <= n (3/4)^m``: a sample is uncovered with probability ``(3/4)^m``."""
    _check_counts(n, 0, m)
    return Fraction(n * 3**m, 4**m)


def _check_delta(delta) -> Fraction:
    delta = Fraction(delta)
    if not 0 < delta < 1:
        raise InputError("delta", f"must be strictly between 0 and 1, got {delta}")
    return delta


def union_bound_width(n: int, delta) -> int:
    """The smallest ``m`` with ``n (3/4)^m <= delta``, exactly."""
    delta = _check_delta(delta)
    if n == 0:
        return 0
    m = max(0, math.floor(math.log(n / delta) / math.log(4 / 3)) - 2)  # a float start, then exact steps
    while m > 0 and union_bound(n, m - 1) <= delta:
        m -= 1
    while union_bound(n, m) > delta:
        m += 1
    return m


def smallest_width(n_pos: int, n_neg: int, delta, progress: bool = False) -> int:
    """The smallest ``m`` with ``P(interpolate) >= 1 - delta``, decided exactly.

    ``P`` is non-decreasing in ``m`` (an extra neuron only covers more). A float estimate guesses
    the answer; exact evaluations then confirm ``P(fail) <= delta`` at the answer and ``> delta``
    one below it, walking if the guess was off, so the float never decides.
    """
    _check_counts(n_pos, n_neg, 0)
    delta = _check_delta(delta)

    def enough(m):
        return interpolation_probability(n_pos, n_neg, m, progress).complement().at_most(delta)

    widest = union_bound_width(n_pos + n_neg, delta)
    m = next((m for m in range(widest + 1) if _approx_p_fail(n_pos, n_neg, m) <= delta), widest)
    while not enough(m):
        m += 1
    while m > 0 and enough(m - 1):
        m -= 1
    return m


def _approx_p_fail(n_pos: int, n_neg: int, m: int) -> float:
    """``P(fail)`` in floating point: only a starting guess for :func:`smallest_width`."""

    def log_covered(count, k):  # log (1 - 2^-k)^count
        return 0.0 if count == 0 else (-math.inf if k == 0 else count * math.log1p(-(2.0**-k)))

    return sum(math.comb(m, k) * 2.0**-m * -math.expm1(log_covered(n_pos, k) + log_covered(n_neg, m - k)) for k in range(m + 1))


def thresholds(n: int, delta) -> dict[str, float]:
    """The asymptotic widths (floats, approximate): ``log(n/delta)/log(4/3)`` and ``2 log2 n``."""
    delta = _check_delta(delta)
    return {"union_bound": math.log(n / float(delta)) / math.log(4 / 3), "sharp": 2 * math.log2(n)}


def balanced(n: int) -> tuple[int, int]:
    """``(ceil(n/2), floor(n/2))``."""
    return (n + 1) // 2, n // 2


def monte_carlo(n_pos: int, n_neg: int, m: int, trials: int, seed: int = 0) -> tuple[Fraction, float]:
    """Draw ``trials`` random signs and activation patterns, run the engine, count interpolations.

    Returns the estimate (an exact fraction of the trials) and its standard error (a float).
    """
    from .problem import Problem
    from .process import solve

    _check_counts(n_pos, n_neg, m)
    if trials < 1:
        raise InputError("trials", f"must be at least 1, got {trials}")
    rng = np.random.default_rng(seed)
    labels = [1] * n_pos + [-1] * n_neg
    hits = 0
    for _ in range(trials):
        signs = np.where(rng.integers(0, 2, size=m) == 1, 1, -1)
        active = rng.integers(0, 2, size=(m, n_pos + n_neg)).astype(bool)
        hits += solve(Problem(labels, signs, active)).interpolates
    p = Fraction(hits, trials)
    return p, math.sqrt(float(p * (1 - p)) / trials)


def decimal_string(p: int, e: int, digits: int) -> str:
    """``p / 2^e`` rounded half-to-even to ``digits`` significant digits, exactly.

    Integer arithmetic only, so it works for numbers of millions of bits and for values like
    ``10^-13000`` (whose Fraction would not even print). Same layout as ``exact.round_significant``.
    """
    if digits < 1:
        raise InputError("digits", f"must be at least 1, got {digits}")
    if p == 0:
        return "0"
    sign, p = ("-", -p) if p < 0 else ("", p)
    num, den = fmpz(p), fmpz(2) ** e
    ex = math.floor((p.bit_length() - e) * math.log10(2))  # 10^ex <= x < 10^(ex+1), after fixing

    def scaled(s):  # (num * 10^s, den) as integers
        return (num * fmpz(10) ** s, den) if s >= 0 else (num, den * fmpz(10) ** -s)

    while True:
        a, b = scaled(-ex)
        if a < b:
            ex -= 1
        elif a >= 10 * b:
            ex += 1
        else:
            break
    a, b = scaled(digits - 1 - ex)
    mantissa, rest = divmod(a, b)
    if 2 * rest > b or (2 * rest == b and mantissa % 2 == 1):
        mantissa += 1
    if mantissa == 10**digits:
        mantissa //= 10
        ex += 1
    if -7 <= ex < digits:  # the rounded value is a small fraction: let round_significant lay it out
        return sign + round_significant(Fraction(int(mantissa), 10 ** (digits - 1 - ex)), digits)
    s = str(mantissa)
    return sign + s[0] + ("." + s[1:] if digits > 1 else "") + f"e{ex:+d}"


def prob_report(n_pos: int, n_neg: int, m: int, digits: int = 20, exact: bool = True) -> dict:
    """What ``limitproc prob --n-pos A --n-neg B --m M`` reports (exact values as ``"p/q"``)."""
    p = interpolation_probability(n_pos, n_neg, m, progress=True)
    union_bound(n_pos + n_neg, m)  # validates the counts
    report: dict = {"n_pos": n_pos, "n_neg": n_neg, "m": m}
    for key, value in (("p_interpolate", p), ("p_fail", p.complement()), ("union_bound", Dyadic.of(fmpz((n_pos + n_neg) * 3**m), 2 * m))):
        if exact:
            report[key] = value.string()
        report[f"{key}_decimal"] = value.decimal(digits)
    return report


def width_report(n: int, delta, digits: int = 20) -> dict:
    """What ``limitproc prob --n N --delta D`` reports: balanced classes ``(ceil(n/2), floor(n/2))``."""
    delta = _check_delta(parse_rational(delta, "delta"))
    n_pos, n_neg = balanced(n)
    m = smallest_width(n_pos, n_neg, delta, progress=True)
    fail = interpolation_probability(n_pos, n_neg, m, progress=True).complement()
    return {
        "n": n,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "delta": rational_string(delta),
        "m_min": m,
        "p_fail_at_m_min_decimal": fail.decimal(digits),
        "union_bound_m": union_bound_width(n, delta),
        "threshold_log_n_over_delta": thresholds(n, delta)["union_bound"],
        "threshold_2_log2_n": thresholds(n, delta)["sharp"],
    }
