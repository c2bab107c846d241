"""Exact arithmetic for the limit process (theory §8).

Every number of the process lives in Q(sqrt r_1, ..., sqrt r_k) for the rates' radicands r_i.
Three layers, as theory §8 lays out:

* :class:`Program`, a straight-line program over the rationals and square roots of rationals,
  and logarithms of positive values (the rates of gradient descent, theory §11). It *is* the
  exact value, at any size.
* :class:`RadicalSum`, the canonical form ``sum c_k sqrt(k)``. The keys are products of
  distinct atoms of a coprime base of the radicands (:class:`RadicalBasis`), so distinct keys
  are linearly independent over Q and a form is zero iff it has no terms. Forms are produced
  lazily and only within a term budget, because they can double in size per jump.
* Balls (``flint.arb``): rigorous intervals at any precision, which certify orderings and
  give certified decimals.

A value built with a logarithm has no canonical radical form: its exact string is the program
written out as an expression (its log-free parts in canonical form), within the term budget.

How hard a program works is one :class:`Precision` context (term budget, working and maximum
precision of the balls), honoured by every method. :class:`ExactValue` is a node of a program
that behaves like a number: arithmetic, comparisons certified or refused with
:class:`~limitproc.errors.Uncertified`, and conversions to float, sympy and mpmath.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from math import gcd, isqrt

from flint import arb, ctx, fmpq

from .errors import BudgetExceeded, InputError, Uncertified
from .limits import check_number_text

__all__ = [
    "DEFAULT_MAX_PRECISION",
    "DEFAULT_PRECISION",
    "DEFAULT_TERM_BUDGET",
    "ExactValue",
    "Precision",
    "Program",
    "RadicalBasis",
    "RadicalSum",
    "ball_bounds",
    "parse_rational",
    "rational_string",
    "round_significant",
    "sqrt_string",
]

DEFAULT_TERM_BUDGET = 4096  # n = 10^4 with m = 20 peaks near 1400-2300 terms (theory §8): exact by default
DEFAULT_PRECISION = 128  # bits of the working balls
DEFAULT_MAX_PRECISION = 4096  # bits before a tie is handed to canonical forms

_RATIONAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(\s*/\s*\d+)?\s*$")


def parse_rational(value, field: str) -> Fraction:
    """Read an int, a Fraction or a string like ``"3/2"``, ``"-0.25"`` or ``"1e-3"`` exactly."""
    if isinstance(value, bool):
        raise InputError(field, f"expected a number, got {value!r}")
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    if isinstance(value, str) and _RATIONAL.match(value):
        check_number_text(value, field)
        num, _, den = value.partition("/")
        try:
            q = Fraction(num.strip())
            return q / Fraction(int(den)) if den else q
        except ZeroDivisionError:
            raise InputError(field, f"zero denominator in {value!r}") from None
    if isinstance(value, float):  # only from the Python API: floats are read as their exact binary value
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(field, f"not a finite number: {value!r}")
        return Fraction(value)
    raise InputError(field, f'not an exact number: {_brief(value)} (use an int or a string like "3/2" or "0.25")')


def _brief(value) -> str:
    """``repr`` of a bad value, cut short: error messages stay one readable line."""
    text = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def rational_string(q) -> str:
    """A sympify-able string of a rational: ``"3"``, ``"-3/2"``."""
    q = _to_fraction(q)
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def _to_fraction(q) -> Fraction:
    return Fraction(int(q.p), int(q.q)) if isinstance(q, fmpq) else Fraction(q)


def _to_fmpq(q) -> fmpq:
    if isinstance(q, fmpq):
        return q
    if type(q) is not Fraction:
        q = Fraction(q)
    return fmpq(q.numerator, q.denominator)


class RadicalBasis:
    """A coprime base of integers, none a perfect square, generating every radicand seen.

    Built by gcd-based factor refinement, so no integer is ever factored: huge radicands (from
    decimal inputs) cost a few gcds. For a product ``k`` of distinct atoms, the square roots
    ``sqrt(k)`` are linearly independent over Q: any two distinct products differ in an atom
    whose odd-exponent prime divides no other atom.
    """

    def __init__(self):
        self.atoms: list[int] = []
        self._small: set[int] = set()
        self.version = 0
        self._split_cache: dict[int, tuple[int, int]] = {}

    def add(self, x: int) -> None:
        if x <= 1:
            return
        todo = []
        changed = False
        for p in _SMALL_PRIMES:  # small primes become atoms at once, so typical forms are squarefree
            if x % p == 0:
                while x % p == 0:
                    x //= p
                if p not in self._small:
                    self._small.add(p)
                    self.atoms.append(p)
                    changed = True
        todo.append(x)
        while todo:
            x = todo.pop()
            while x > 1 and _is_square(x):
                x = isqrt(x)
            if x == 1:
                continue
            for idx, b in enumerate(self.atoms):
                g = gcd(x, b)
                if g == 1:
                    continue
                if g == b and x % b == 0:
                    # x is a multiple of an existing atom: keep the atom, refine the cofactor
                    todo.append(x // b)
                    break
                # the product of pending and atoms strictly decreases, so this terminates
                del self.atoms[idx]
                todo.extend((g, b // g, x // g))
                changed = True
                break
            else:
                self.atoms.append(x)
                changed = True
        if changed:
            self.version += 1
            self._split_cache.clear()

    def split(self, x: int) -> tuple[int, int]:
        """``sqrt(x) = c * sqrt(key)`` with integer ``c`` and ``key`` a product of distinct atoms."""
        cached = self._split_cache.get(x)
        if cached is not None:
            return cached
        rest, c, key = x, 1, 1
        for b in self.atoms:
            if rest == 1:
                break
            e = 0
            while rest % b == 0:
                rest //= b
                e += 1
            c *= b ** (e // 2)
            if e % 2:
                key *= b
        if rest != 1:
            raise ValueError(f"{x} is not generated by the base; add it first")
        self._split_cache[x] = (c, key)
        return c, key


def _primes_below(n: int) -> list[int]:
    """The primes below ``n``, by a sieve (trial division took most of this module's import time)."""
    sieve = bytearray([1]) * n
    sieve[:2] = b"\0\0"
    for p in range(2, isqrt(n - 1) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, n, p)))
    return [p for p in range(n) if sieve[p]]


_SMALL_PRIMES = _primes_below(1000)


def sqrt_string(q) -> str:
    """``sqrt(q)`` of a rational ``q >= 0`` as a sympify-able string, square factors taken out."""
    q = _to_fmpq(q)
    basis = RadicalBasis()
    basis.add(int(q.p) * int(q.q))
    return str(RadicalSum.sqrt(q, basis))


def _is_square(x: int) -> bool:
    r = isqrt(x)
    return r * r == x


class RadicalSum:
    """Canonical form ``sum_k c_k sqrt(k)`` over one :class:`RadicalBasis` (key 1 is the rational part)."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict[int, fmpq]):
        self.terms = terms

    @classmethod
    def rational(cls, q) -> RadicalSum:
        q = _to_fmpq(q)
        return cls({1: q} if q != 0 else {})

    @classmethod
    def sqrt(cls, q, basis: RadicalBasis) -> RadicalSum:
        """``sqrt(q)`` for a rational ``q >= 0``: ``sqrt(p/d) = sqrt(p*d)/d``."""
        q = _to_fmpq(q)
        if q == 0:
            return cls({})
        p, d = int(q.p), int(q.q)
        c, key = basis.split(p * d)
        return cls({key: fmpq(c, d)})

    def __len__(self) -> int:
        return len(self.terms)

    def __add__(self, other: RadicalSum) -> RadicalSum:
        return self._combine(other, False)

    def __sub__(self, other: RadicalSum) -> RadicalSum:
        return self._combine(other, True)

    def _combine(self, other: RadicalSum, subtract: bool) -> RadicalSum:
        terms = dict(self.terms)
        get = terms.get
        for k, c in other.terms.items():
            if subtract:
                c = -c
            s = get(k)
            if s is None:
                terms[k] = c
            else:
                s += c
                if s:
                    terms[k] = s
                else:
                    del terms[k]
        return RadicalSum(terms)

    def __neg__(self) -> RadicalSum:
        return RadicalSum({k: -c for k, c in self.terms.items()})

    def __mul__(self, other: RadicalSum) -> RadicalSum:
        if len(other) > len(self):
            self, other = other, self
        total = None
        for k2, c2 in other.terms.items():
            part = self._times_monomial(k2, c2)
            total = part if total is None else total + part
        return total if total is not None else RadicalSum({})

    def _times_monomial(self, k2: int, c2: fmpq) -> RadicalSum:
        # multiplying by one monomial permutes the keys (atoms are toggled), so no terms collide
        by_gcd: dict[int, tuple[int, fmpq]] = {}  # atoms common to both keys -> (k2 without them, c2 times them)
        terms = {}
        for k1, c1 in self.terms.items():
            g = gcd(k1, k2)
            factor = by_gcd.get(g)
            if factor is None:
                factor = by_gcd[g] = (k2 // g, c2 * g)
            terms[k1 // g * factor[0]] = c1 * factor[1]
        return RadicalSum(terms)

    def divide(self, other: RadicalSum, atoms: list[int], budget: int) -> RadicalSum | None:
        """``self / other`` over the base ``atoms``, or None if an intermediate exceeds ``budget`` terms.

        A sum is made a single term by multiplying both sides with a conjugate: flipping the sign
        of ``sqrt(a)`` for one atom ``a`` is a field automorphism, and ``(A + sqrt(a) B)(A - sqrt(a) B)
        = A^2 - a B^2`` is non-zero and free of ``a``. Then ``1/(c sqrt(k)) = sqrt(k)/(c k)``.
        """
        if not other.terms:
            raise ZeroDivisionError("division by a zero canonical form")
        num, den = self, other
        while len(den) > 1:
            atom = next(a for a in atoms if any(k % a == 0 for k in den.terms))
            conj = RadicalSum({k: -c if k % atom == 0 else c for k, c in den.terms.items()})
            if len(num) * len(conj) > budget * budget:
                return None
            num, den = num * conj, den * conj
            if max(len(num), len(den)) > budget:
                return None
        ((k, c),) = den.terms.items()
        return num * RadicalSum({k: 1 / (c * k)})

    def is_zero(self) -> bool:
        return not self.terms

    def rational_value(self) -> Fraction | None:
        """The value if it is rational, else None."""
        if any(k != 1 for k in self.terms):
            return None
        return _to_fraction(self.terms.get(1, fmpq(0)))

    def pairs(self) -> list[tuple[Fraction, int]]:
        """``(c, k)`` for each term ``c sqrt(k)``, the rational part (``k = 1``) first."""
        return [(_to_fraction(c), k) for k, c in sorted(self.terms.items())]

    def signed_squares(self) -> frozenset[Fraction]:
        """Each term ``c sqrt(k)`` as ``sign(c) c^2 k``: the same set over any base.

        Refining the base splits each key into a square times a product of finer atoms, which
        rescales a term without changing its value and never merges two terms (distinct keys stay
        linearly independent), so equal numbers give equal sets whatever base built them.
        """
        return frozenset(_to_fraction(c * abs(c) * k) for k, c in self.terms.items())

    def ball(self, prec: int) -> arb:
        with _precision(prec):
            total = arb(0)
            for k, c in self.terms.items():
                total += arb(c) * arb(k).sqrt()
            return total

    def __str__(self) -> str:
        """A string that ``sympy.sympify`` parses to exactly this number."""
        return self.text({})

    def text(self, known: dict[int, tuple[fmpq, str]]) -> str:
        """``str(self)``, reusing the text of a term whose key and coefficient ``known`` holds (and
        adding the others): the forms of one program share many terms."""
        if not self.terms:
            return "0"
        parts = []
        for k in sorted(self.terms):
            c = self.terms[k]
            seen = known.get(k)
            if seen is not None and (seen[0] is c or seen[0] == c):
                parts.append(seen[1])
                continue
            p, q = int(c.p), int(c.q)  # (cheaper than comparing and negating the fmpq)
            sign = " + " if p > 0 else " - "
            p = abs(p)
            if k == 1:
                term = f"{sign}{p}" if q == 1 else f"{sign}{p}/{q}"
            elif q == 1:
                term = f"{sign}sqrt({k})" if p == 1 else f"{sign}{p}*sqrt({k})"
            else:
                term = f"{sign}sqrt({k})/{q}" if p == 1 else f"{sign}{p}*sqrt({k})/{q}"
            known[k] = (c, term)
            parts.append(term)
        first = parts[0]
        parts[0] = first[3:] if first[1] == "+" else "-" + first[3:]
        return "".join(parts)

    def __repr__(self) -> str:
        return f"RadicalSum({self})"

    def latex(self) -> str:
        """The form in LaTeX, terms in the order of its exact string (rational part first)."""
        out = ""
        for key in sorted(self.terms):
            c = self.terms[key]
            sign = ("-" if c < 0 else "") if not out else (" - " if c < 0 else " + ")
            p, q = abs(int(c.p)), int(c.q)
            if key == 1:
                term = str(p) if q == 1 else rf"\frac{{{p}}}{{{q}}}"
            else:
                top = ("" if p == 1 else f"{p} ") + rf"\sqrt{{{key}}}"
                term = top if q == 1 else rf"\frac{{{top}}}{{{q}}}"
            out += sign + term
        return out or "0"


_BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}

_PREC_LOCK = threading.RLock()


class _precision:
    """flint's precision is process-global; hold a lock while it is changed."""

    def __init__(self, prec: int):
        self.prec = prec

    def __enter__(self):
        _PREC_LOCK.acquire()
        self._saved = ctx.prec
        ctx.prec = self.prec

    def __exit__(self, *exc):
        ctx.prec = self._saved
        _PREC_LOCK.release()


def ball_bounds(x: arb) -> tuple[Fraction, Fraction]:
    """The exact rational endpoints of a ball."""
    mid = _arf_fraction(x.mid())
    rad = _arf_fraction(x.rad())
    return mid - rad, mid + rad


def _arf_fraction(x: arb) -> Fraction:
    fman, fexp = x.man_exp()
    man, exp = int(fman), int(fexp)
    return Fraction(man * 2**exp) if exp >= 0 else Fraction(man, 2**-exp)


def round_significant(x: Fraction, digits: int) -> str:
    """``x`` rounded (half to even) to ``digits`` significant digits, as a plain decimal string."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    x = abs(x)
    e = len(str(x.numerator)) - len(str(x.denominator))  # 10^e <= x < 10^(e+1) after adjusting
    if Fraction(10) ** e > x:
        e -= 1
    if Fraction(10) ** (e + 1) <= x:
        e += 1
    mantissa = round(x * Fraction(10) ** (digits - 1 - e))
    if mantissa == 10**digits:
        mantissa //= 10
        e += 1
    s = str(mantissa)
    if e >= digits or e < -7:
        body = s[0] + ("." + s[1:] if digits > 1 else "") + f"e{e:+d}"
    elif e >= 0:
        body = s[: e + 1] + ("." + s[e + 1 :] if e + 1 < digits else "")
    else:
        body = "0." + "0" * (-e - 1) + s
    return sign + body


@dataclass(frozen=True)
class Precision:
    """How hard a :class:`Program` works to certify, honoured by all its methods.

    ``term_budget`` caps the canonical forms (in terms; 0 gives decimals only), ``precision`` is
    the working precision of the balls in bits, and ``max_precision`` the precision at which the
    balls hand a near-tie (or a decimal on a rounding boundary) to the canonical forms.
    """

    term_budget: int = DEFAULT_TERM_BUDGET
    precision: int = DEFAULT_PRECISION
    max_precision: int = DEFAULT_MAX_PRECISION

    def __post_init__(self):
        for name, least in (("term_budget", 0), ("precision", 2), ("max_precision", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise InputError(name, f"must be an integer >= {least}, got {value!r}")
            object.__setattr__(self, name, int(value))


class Program:
    """A straight-line program: node ``i`` is an operation on earlier nodes. Its values are exact.

    ``ball(node, prec)`` evaluates it rigorously at ``prec`` bits; ``form(node, budget)`` gives its
    canonical :class:`RadicalSum` if every intermediate stays within ``budget`` terms. Defaults
    come from the :class:`Precision` context: ``Program(precision=Precision(...))``, or
    ``Program(term_budget)`` for the default precisions.
    """

    def __init__(self, term_budget: int | None = None, *, precision: Precision | None = None):
        if precision is None:
            precision = Precision() if term_budget is None else Precision(term_budget=term_budget)
        elif term_budget is not None:
            raise TypeError("give term_budget or precision, not both")
        self.precision = precision
        self._ops: list[tuple] = []
        self._balls: dict[int, list[arb]] = {}
        self._basis = RadicalBasis()
        self._pending: list[int] = []  # radicands not yet in the base
        self._forms: dict[int, tuple[RadicalSum, int]] = {}  # node -> (form, largest form in its cone)
        self._failed: dict[int, int] = {}  # node -> the budget it exceeded
        self._consts: dict[Fraction, int] = {}
        self._has_log: list[bool] = []  # node -> a logarithm is in its cone (no canonical form)
        self._term_texts: dict[int, tuple[fmpq, str]] = {}  # shared by the exact strings of the forms (RadicalSum.text)

    @property
    def term_budget(self) -> int:
        return self.precision.term_budget

    def __len__(self) -> int:
        return len(self._ops)

    def _push(self, op: tuple) -> int:
        self._ops.append(op)
        kind, has_log = op[0], self._has_log
        has_log.append(kind == "log" if kind in ("const", "sqrt", "log") else has_log[op[1]] or has_log[op[2]])
        return len(self._ops) - 1

    def const(self, q) -> int:
        if type(q) is not Fraction:  # (a Fraction would only be copied)
            q = Fraction(q)
        node = self._consts.get(q)
        if node is None:
            node = self._consts[q] = self._push(("const", _to_fmpq(q)))
        return node

    def sqrt(self, q) -> int:
        q = _to_fmpq(q)
        if q < 0:
            raise InputError("radicand", f"must be non-negative, got {rational_string(q)}")
        self._pending.append(int(q.p) * int(q.q))
        return self._push(("sqrt", q))

    def log(self, a: int) -> int:
        """The natural logarithm of a positive value (certified positive, else InputError)."""
        if self.sign(a) <= 0:
            raise InputError("log", f"argument must be positive, got {_show(self.ball(a))}")
        return self._push(("log", a))

    def has_log(self, node: int) -> bool:
        return self._has_log[node]

    def add(self, a: int, b: int) -> int:
        return self._push(("add", a, b))

    def sub(self, a: int, b: int) -> int:
        return self._push(("sub", a, b))

    def mul(self, a: int, b: int) -> int:
        return self._push(("mul", a, b))

    def div(self, a: int, b: int) -> int:
        return self._push(("div", a, b))

    def sum(self, nodes) -> int:
        nodes = list(nodes)
        if not nodes:
            return self.const(0)
        total = nodes[0]
        for node in nodes[1:]:
            total = self.add(total, node)
        return total

    def value(self, node: int) -> ExactValue:
        return ExactValue(self, node)

    def embed(self, x) -> int:
        """A node of this program equal to ``x``: an :class:`ExactValue` or a rational number.

        A value of another program enters through its canonical form (within that program's
        term budget, else :class:`~limitproc.errors.BudgetExceeded`).
        """
        if isinstance(x, ExactValue):
            if x.program is self:
                return x.node
            form = x.form()
            if form is None:
                raise BudgetExceeded(
                    f"a value of another Program enters this one through its canonical form, which exceeds "
                    f"that program's term budget of {x.program.term_budget}; build both values in one Program",
                    x.program.term_budget,
                )
            return self.sum(self.const(c) if k == 1 else self.mul(self.const(c), self.sqrt(k)) for c, k in form.pairs())
        return self.const(x)

    # -- balls --------------------------------------------------------------------------------
    def ball(self, node: int, prec: int | None = None) -> arb:
        """A rigorous ball around the value, at ``prec`` bits (the context's working precision by default)."""
        prec = self.precision.precision if prec is None else prec
        values = self._balls.setdefault(prec, [])
        if node < len(values):
            return values[node]
        with _precision(prec):
            for op in self._ops[len(values) : node + 1]:
                kind = op[0]
                if kind == "const":
                    v = arb(op[1])
                elif kind == "sqrt":
                    v = arb(op[1]).sqrt()
                elif kind == "log":
                    v = values[op[1]].log()
                else:
                    v = _BINARY[kind](values[op[1]], values[op[2]])
                values.append(v)
        return values[node]

    # -- canonical forms ----------------------------------------------------------------------
    def _sync_basis(self) -> None:
        if not self._pending:
            return
        before = self._basis.version
        for x in self._pending:
            self._basis.add(x)
        self._pending.clear()
        if self._basis.version != before:  # keys of cached forms may no longer be reduced
            self._forms.clear()

    def form(self, node: int, budget: int | None = None) -> RadicalSum | None:
        """The canonical form of ``node``, or None if an intermediate exceeds ``budget`` terms
        (the context's term budget by default)."""
        budget = self.term_budget if budget is None else budget
        self._sync_basis()
        forms, failed = self._forms, self._failed
        stack = [node]
        while stack:
            top = stack[-1]
            if top in forms or failed.get(top, -1) >= budget:  # known
                stack.pop()
                continue
            if self._has_log[top]:  # no canonical form, at any budget
                failed[top] = _NO_FORM
                stack.pop()
                continue
            op = self._ops[top]
            if len(op) == 3:  # an operation on two nodes (a constant or a square root has no operand nodes)
                a, b = op[1], op[2]
                if failed.get(a, -1) >= budget or failed.get(b, -1) >= budget:  # over the budget with its operand
                    failed[top] = budget
                    stack.pop()
                    continue
                if b not in forms or a not in forms:  # one operand at a time: one over the budget ends the node before the next is expanded
                    stack.append(b if b not in forms else a)
                    continue
            stack.pop()
            self._compute_form(top, op, budget)
        if self._failed.get(node, -1) >= budget:
            return None
        form, cone = self._forms[node]
        return form if cone <= budget else None

    def _compute_form(self, node: int, op: tuple, budget: int) -> None:
        kind = op[0]
        form: RadicalSum | None
        if kind == "const":
            form, cone = RadicalSum.rational(op[1]), 1
        elif kind == "sqrt":
            form, cone = RadicalSum.sqrt(op[1], self._basis), 1
        else:
            (x, cx), (y, cy) = self._forms[op[1]], self._forms[op[2]]
            if max(cx, cy) > budget or (kind == "mul" and len(x) * len(y) > budget * budget) or _over(kind, x, y, budget):
                self._failed[node] = budget
                return
            try:
                form = x.divide(y, self._basis.atoms, budget) if kind == "div" else _BINARY[kind](x, y)
            except ZeroDivisionError:  # no value: its ball is not finite either
                form = None
            if form is None:
                self._failed[node] = budget
                return
            cone = max(cx, cy, len(form))
        if cone > budget:
            self._failed[node] = budget
            return
        self._forms[node] = (form, cone)
        self._failed.pop(node, None)

    # -- expressions (values with logarithms) ---------------------------------------------------
    def expression(self, node: int, budget: int | None = None) -> str | None:
        """A sympify-able string of the value: its canonical form, or for a value with logarithms
        the program written out, log-free parts in canonical form. None if the canonical form, or
        the expression's count of terms (radical terms and logarithms), exceeds ``budget``."""
        budget = self.term_budget if budget is None else budget
        if not self._has_log[node]:
            form = self.form(node, budget)
            return None if form is None else form.text(self._term_texts)
        out = _Expression(self, budget).text(node)
        return None if out is None else out[0]

    # -- certified comparison -----------------------------------------------------------------
    def compare(
        self,
        a: int,
        b: int,
        precision: int | None = None,
        max_precision: int | None = None,
        budget: int | None = None,
    ) -> tuple[int, bool]:
        """The sign of ``a - b`` and whether it is certified.

        Balls at growing precision decide unequal values. Past ``max_precision`` the canonical
        forms decide: a zero difference is a certified tie, a non-zero one is separated by
        evaluating the form (which terminates). Over the budget, the answer is an uncertified 0.
        Unset arguments come from the context.
        """
        sign, certified, _ = self._order(a, b, precision, max_precision, budget)
        return sign, certified

    def _order(self, a, b, precision, max_precision, budget) -> tuple[int, bool, int]:
        """:meth:`compare`, with the precision the balls reached."""
        prec = self.precision.precision if precision is None else precision
        max_precision = self.precision.max_precision if max_precision is None else max_precision
        while True:
            x, y = self.ball(a, prec), self.ball(b, prec)
            if x < y:
                return -1, True, prec
            if x > y:
                return 1, True, prec
            if prec >= max_precision:
                break
            prec *= 2
        fa, fb = self.form(a, budget), self.form(b, budget)
        if fa is None or fb is None:
            return 0, False, prec
        diff = fa - fb
        if diff.is_zero():
            return 0, True, prec
        while True:
            d = diff.ball(prec)
            if d > 0:
                return 1, True, prec
            if d < 0:
                return -1, True, prec
            prec *= 2

    def sign(self, node: int) -> int:
        """The certified sign of a value (:class:`~limitproc.errors.Uncertified` if it cannot be)."""
        sign, certified, prec = self._order(node, self.const(0), None, None, None)
        if not certified:
            raise Uncertified(
                f"cannot certify the sign of {_show(self.ball(node, prec))}: its ball contains 0 at {prec} bits "
                f"and its canonical form exceeds the term budget of {self.term_budget}; "
                "raise max_precision or term_budget",
                self.value(node),
                None,
                prec,
                self.term_budget,
            )
        return sign

    # -- certified rounding -------------------------------------------------------------------
    def decimal(self, node: int, digits: int = 30) -> str:
        """``digits`` significant digits, certified: both ends of the ball round the same way."""
        return self.rounded(node, lambda q: round_significant(q, digits), int(digits * 3.33) + 32, f"{digits}-digit decimal")

    def rounded(self, node: int, rounding, bits: int, what: str = "rounding"):
        """``rounding(value)`` for a monotone ``rounding`` of rationals, certified.

        Balls from ``max(bits, working precision)`` bits grow until both ends round alike. A
        rational value on a rounding boundary never separates: past ``max_precision`` (and four
        times the starting bits) its canonical form rounds it exactly; an irrational value is never
        on a boundary, so more bits settle it. Over the term budget that case raises
        :class:`~limitproc.errors.Uncertified`.
        """
        prec = max(bits, self.precision.precision)
        limit = max(self.precision.max_precision, 4 * prec)
        while True:
            x = self.ball(node, prec)
            if x.is_finite():  # (not when a divisor's ball still holds 0: more bits)
                lo, hi = ball_bounds(x)
                r_lo, r_hi = rounding(lo), rounding(hi)
                if r_lo == r_hi:
                    return r_lo
            if prec >= limit:
                form = self.form(node)
                if form is None:
                    raise Uncertified(
                        f"cannot certify the {what} of {_show(x)}: its ball straddles a rounding boundary at "
                        f"{prec} bits and its canonical form exceeds the term budget of {self.term_budget}",
                        self.value(node),
                        None,
                        prec,
                        self.term_budget,
                    )
                q = form.rational_value()
                if q is not None:
                    return rounding(q)
            prec *= 2


def _over(kind: str, x: RadicalSum, y: RadicalSum, budget: int) -> bool:
    """Whether ``x ± y`` certainly has more than ``budget`` terms, told before adding: only keys in
    both can cancel, so at least ``len(x) + len(y) - 2 * shared`` terms remain."""
    if kind not in ("add", "sub") or len(x) + len(y) <= budget:
        return False
    return len(x) + len(y) - 2 * len(x.terms.keys() & y.terms.keys()) > budget


def _show(x: arb) -> str:
    return x.str(15)


_NO_FORM = 2**63  # in Program._failed: a node with a logarithm exceeds every budget
_ATOM, _PRODUCT, _SUM = 3, 2, 1  # binding strength of an expression's top operator


class _Expression:
    """Writes a node with logarithms out as a string, counting terms against a budget.

    Each node's text is cached with its binding strength, so a child is parenthesised only where
    sympy's precedence needs it; adding 0 and multiplying or dividing by 1 are left out.
    """

    def __init__(self, program: Program, budget: int):
        self.program, self.budget, self.size = program, budget, 0
        self._done: dict[int, tuple[str, int, int]] = {}  # node -> (text, strength, terms)

    def text(self, node: int) -> tuple[str, int] | None:
        got = self._node(node)
        return None if got is None else got[:2]

    def _node(self, node: int) -> tuple[str, int, int] | None:
        if node in self._done:
            return self._done[node]
        prog = self.program
        op = prog._ops[node]
        kind = op[0]
        out: tuple[str, int, int] | None
        if not prog._has_log[node]:
            form = prog.form(node, self.budget)
            if form is None:
                return None
            text = form.text(prog._term_texts)
            simple = len(form) <= 1 and not text.startswith("-")
            strength = (_ATOM if re.fullmatch(r"\d+|sqrt\(\d+\)", text) else _PRODUCT) if simple else _SUM
            out = (text, strength, max(len(form), 1))
        elif kind == "log":
            arg = self._node(op[1])
            out = None if arg is None else (f"log({arg[0]})", _ATOM, arg[2] + 1)
        else:
            a, b = self._node(op[1]), self._node(op[2])
            if a is None or b is None:
                return None
            out = self._combine(kind, a, b, self._rational(op[1]), self._rational(op[2]))
        if out is None or out[2] > self.budget:
            return None
        self._done[node] = out
        return out

    def _rational(self, node: int) -> Fraction | None:
        op = self.program._ops[node]
        return _to_fraction(op[1]) if op[0] == "const" else None

    @staticmethod
    def _combine(kind, a, b, qa, qb) -> tuple[str, int, int]:
        terms = a[2] + b[2]
        wrap = lambda x, least: x[0] if x[1] >= least else f"({x[0]})"  # noqa: E731
        if kind == "add":
            if qa == 0 or qb == 0:
                return b if qa == 0 else a
            return f"{a[0]} + {wrap(b, _PRODUCT)}", _SUM, terms
        if kind == "sub":
            if qb == 0:
                return a
            if qa == 0:
                return f"-{wrap(b, _PRODUCT)}", _SUM, b[2]
            return f"{a[0]} - {wrap(b, _PRODUCT)}", _SUM, terms
        if kind == "mul":
            if qa == 1 or qb == 1:
                return b if qa == 1 else a
            return f"{wrap(a, _PRODUCT)}*{wrap(b, _PRODUCT)}", _PRODUCT, terms
        if qb == 1:
            return a
        return f"{wrap(a, _PRODUCT)}/{wrap(b, _ATOM)}", _PRODUCT, terms


class ExactValue:
    """An exact real number of the process, held as a node of its :class:`Program`.

    It behaves like a number. ``+ - * /`` and unary ``-`` combine it with ints, Fractions and
    ExactValues into new nodes of its program (a value of another program enters through its
    canonical form, or raises :class:`~limitproc.errors.BudgetExceeded` over that program's
    budget; floats are refused as inexact). ``==`` and ``< <= > >=`` are certified by balls at
    growing precision, then canonical forms, under the program's :class:`Precision`; when neither
    decides they raise :class:`~limitproc.errors.Uncertified` rather than guess. Floats compare
    by their exact binary value, as with Fraction.

    ``hash`` is that of the canonical form, read independently of the base (a rational value
    hashes as its Fraction); over the term budget hashing raises BudgetExceeded.

    ``exact()`` gives a sympify-able string (None over the term budget), ``decimal(d)`` certified
    digits, ``sympy()`` (and ``sympy.sympify(v)``) the sympy number, ``mpmath.mpf(v)`` the
    correctly rounded mpf, ``float(v)`` the correctly rounded float.
    """

    __slots__ = ("program", "node")

    def __init__(self, program: Program, node: int):
        if not 0 <= node < len(program):
            raise IndexError(f"node {node} is not in the program (of {len(program)} nodes)")
        self.program = program
        self.node = node

    def form(self, budget: int | None = None) -> RadicalSum | None:
        return self.program.form(self.node, budget)

    def exact(self, budget: int | None = None) -> str | None:
        """A sympify-able string (the canonical form, or with logarithms an expression), None over the budget."""
        return self.program.expression(self.node, budget)

    def sympy(self, budget: int | None = None):
        import sympy

        if self.program.has_log(self.node):
            budget = self.program.term_budget if budget is None else budget
            text = self.exact(budget)
            if text is None:
                raise BudgetExceeded(f"a sympy number needs the expression, which exceeds the term budget of {budget}", budget)
            return sympy.sympify(text)
        form = self._form_or_raise(budget, "a sympy number")
        return sympy.Add(*(sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(k) for c, k in form.pairs()))

    def _form_or_raise(self, budget: int | None, purpose: str) -> RadicalSum:
        form = self.form(budget)
        if form is None:
            budget = self.program.term_budget if budget is None else budget
            raise BudgetExceeded(
                f"{purpose} needs the canonical form, which exceeds the term budget of {budget}; "
                "pass a larger budget or raise Precision.term_budget",
                budget,
            )
        return form

    def decimal(self, digits: int = 30) -> str:
        return self.program.decimal(self.node, digits)

    def ball(self, prec: int | None = None) -> arb:
        return self.program.ball(self.node, prec)

    # -- arithmetic ---------------------------------------------------------------------------
    def _operand(self, other, floats: bool = False) -> int | None:
        """``other`` as a node of this program, or None if it is not an exact number."""
        if isinstance(other, ExactValue) or (isinstance(other, numbers.Rational) and not isinstance(other, bool)):
            return self.program.embed(other)
        if floats and isinstance(other, float):
            return self.program.const(Fraction(other))
        return None

    def _apply(self, kind: str, other, reflected: bool = False):
        node = self._operand(other)
        if node is None:
            return NotImplemented
        a, b = (node, self.node) if reflected else (self.node, node)
        if kind == "div" and self.program.sign(b) == 0:
            raise ZeroDivisionError("division by an ExactValue equal to 0")
        return ExactValue(self.program, getattr(self.program, kind)(a, b))

    def __add__(self, other):
        return self._apply("add", other)

    def __radd__(self, other):
        return self._apply("add", other, True)

    def __sub__(self, other):
        return self._apply("sub", other)

    def __rsub__(self, other):
        return self._apply("sub", other, True)

    def __mul__(self, other):
        return self._apply("mul", other)

    def __rmul__(self, other):
        return self._apply("mul", other, True)

    def __truediv__(self, other):
        return self._apply("div", other)

    def __rtruediv__(self, other):
        return self._apply("div", other, True)

    def __neg__(self) -> ExactValue:
        return ExactValue(self.program, self.program.sub(self.program.const(0), self.node))

    def __pos__(self) -> ExactValue:
        return self

    # -- certified comparisons ----------------------------------------------------------------
    def _compare(self, other, op):
        if isinstance(other, float) and not math.isfinite(other):
            return op(0.0, other)  # infinities and nan order every finite number alike
        node = self._operand(other, floats=True)
        if node is None:
            return NotImplemented
        if node == self.node:
            return op(0, 0)
        prog = self.program
        sign, certified, prec = prog._order(self.node, node, None, None, None)
        if not certified:
            raise Uncertified(
                f"cannot certify how {_show(prog.ball(self.node, prec))} and {_show(prog.ball(node, prec))} "
                f"compare: their balls overlap at {prec} bits and a canonical form exceeds the term budget of "
                f"{prog.term_budget}; raise max_precision or term_budget",
                self,
                prog.value(node),
                prec,
                prog.term_budget,
            )
        return op(sign, 0)

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __bool__(self) -> bool:
        return self.program.sign(self.node) != 0

    def __hash__(self) -> int:
        form = self._form_or_raise(None, "hashing")
        q = form.rational_value()
        return hash(q) if q is not None else hash(form.signed_squares())

    # -- conversions --------------------------------------------------------------------------
    def __float__(self) -> float:
        """The nearest float (ties to even), certified."""
        return self.program.rounded(self.node, float, 64, "nearest float")

    def _sympy_(self):
        return self.sympy()

    def _mpmath_(self, prec: int, rounding: str):
        """The mpf at mpmath's ``prec`` and ``rounding``, certified."""
        import mpmath
        from mpmath.libmp import from_rational

        mpf = self.program.rounded(
            self.node, lambda q: from_rational(q.numerator, q.denominator, prec, rounding), prec + 32, f"{prec}-bit mpmath rounding"
        )
        return mpmath.mp.make_mpf(mpf)

    def latex(self, digits: int = 12, budget: int | None = None) -> str:
        """The exact radical in LaTeX (math mode, no delimiters), or ``\\approx`` its certified
        decimal over the term budget."""
        if self.program.has_log(self.node):
            import sympy

            text = self.exact(budget)
            return sympy.latex(sympy.sympify(text)) if text is not None else rf"\approx {self.decimal(digits)}"
        form = self.form(budget)
        return form.latex() if form is not None else rf"\approx {self.decimal(digits)}"

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)

    def __str__(self) -> str:
        """The exact form (sympify-able), or ``≈`` and certified digits over the term budget."""
        text = self.exact()
        return text if text is not None else "≈" + self.decimal(20)

    def __repr__(self) -> str:
        text = self.exact()
        if text is not None and len(text) <= 80:
            return f"ExactValue({text})"
        form = self.form()
        size = "an expression with logarithms" if self.program.has_log(self.node) else None
        size = size or (f"over the term budget of {self.program.term_budget}" if form is None else f"{len(form)} terms")
        return f"ExactValue(≈{self.decimal(15)}, {size})"
