"""Exact arithmetic for the limit process (theory §8).

Every number of the process lives in Q(sqrt r_1, ..., sqrt r_k) for the rates' radicands r_i.
Three layers, as theory §8 lays out:

* :class:`Program`, a straight-line program over the rationals and square roots of rationals.
  It *is* the exact value, at any size.
* :class:`RadicalSum`, the canonical form ``sum c_k sqrt(k)``. The keys are products of
  distinct atoms of a coprime base of the radicands (:class:`RadicalBasis`), so distinct keys
  are linearly independent over Q and a form is zero iff it has no terms. Forms are produced
  lazily and only within a term budget, because they can double in size per jump.
* Balls (``flint.arb``): rigorous intervals at any precision, which certify orderings and
  give certified decimals.
"""

from __future__ import annotations

import operator
import re
import threading
from fractions import Fraction
from math import gcd, isqrt

from flint import arb, ctx, fmpq

from .errors import InputError

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
    raise InputError(field, f"not an exact number: {value!r} (use an int or a string like \"3/2\" or \"0.25\")")


def rational_string(q) -> str:
    """A sympify-able string of a rational: ``"3"``, ``"-3/2"``."""
    q = Fraction(int(q.p), int(q.q)) if isinstance(q, fmpq) else Fraction(q)
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def _to_fmpq(q) -> fmpq:
    if isinstance(q, fmpq):
        return q
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


_SMALL_PRIMES = [p for p in range(2, 1000) if all(p % d for d in range(2, isqrt(p) + 1))]


def sqrt_string(q) -> str:
    """``sqrt(q)`` of a rational ``q >= 0`` as a sympify-able string, square factors taken out."""
    q = _to_fmpq(q)
    basis = RadicalBasis()
    basis.add(int(q.p) * int(q.q))
    return str(RadicalSum.sqrt(q, basis))


def _is_square(x: int) -> bool:
    r = isqrt(x)
    return r * r == x


class NotAMonomial(ArithmeticError):
    pass


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
            # multiplying by one monomial permutes the keys (atoms are toggled), so no terms collide
            terms = {}
            for k1, c1 in self.terms.items():
                g = gcd(k1, k2)  # the atoms common to both keys
                terms[(k1 // g) * (k2 // g)] = c1 * c2 * g
            total = RadicalSum(terms) if total is None else total + RadicalSum(terms)
        return total if total is not None else RadicalSum({})

    def __truediv__(self, other: RadicalSum) -> RadicalSum:
        """Division by a single non-zero term: ``1/(c sqrt(k)) = sqrt(k)/(c k)``."""
        if len(other.terms) != 1:
            raise NotAMonomial("a canonical form divides only by a single term")
        ((k, c),) = other.terms.items()
        return self * RadicalSum({k: 1 / (c * k)})

    def is_zero(self) -> bool:
        return not self.terms

    def rational_value(self) -> Fraction | None:
        """The value if it is rational, else None."""
        if any(k != 1 for k in self.terms):
            return None
        c = self.terms.get(1, fmpq(0))
        return Fraction(int(c.p), int(c.q))

    def ball(self, prec: int) -> arb:
        with _precision(prec):
            total = arb(0)
            for k, c in self.terms.items():
                total += arb(c) * arb(k).sqrt()
            return total

    def __str__(self) -> str:
        """A string that ``sympy.sympify`` parses to exactly this number."""
        if not self.terms:
            return "0"
        out = ""
        for k in sorted(self.terms):
            c = self.terms[k]
            negative = c < 0
            a = -c if negative else c
            p, q = int(a.p), int(a.q)
            if k == 1:
                term = rational_string(a)
            else:
                term = ("" if p == 1 else f"{p}*") + f"sqrt({k})" + ("" if q == 1 else f"/{q}")
            if not out:
                out = ("-" if negative else "") + term
            else:
                out += (" - " if negative else " + ") + term
        return out

    def __repr__(self) -> str:
        return f"RadicalSum({self})"


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


class Program:
    """A straight-line program: node ``i`` is an operation on earlier nodes. Its values are exact.

    ``ball(node, prec)`` evaluates it rigorously at ``prec`` bits; ``form(node, budget)`` gives its
    canonical :class:`RadicalSum` if every intermediate stays within ``budget`` terms.
    """

    def __init__(self, term_budget: int = DEFAULT_TERM_BUDGET):
        self.term_budget = term_budget
        self._ops: list[tuple] = []
        self._balls: dict[int, list[arb]] = {}
        self._basis = RadicalBasis()
        self._pending: list[int] = []  # radicands not yet in the base
        self._forms: dict[int, tuple[RadicalSum, int]] = {}  # node -> (form, largest form in its cone)
        self._failed: dict[int, int] = {}  # node -> the budget it exceeded
        self._consts: dict[Fraction, int] = {}

    def __len__(self) -> int:
        return len(self._ops)

    def _push(self, op: tuple) -> int:
        self._ops.append(op)
        return len(self._ops) - 1

    def const(self, q) -> int:
        q = Fraction(q)
        node = self._consts.get(q)
        if node is None:
            node = self._consts[q] = self._push(("const", _to_fmpq(q)))
        return node

    def sqrt(self, q) -> int:
        q = _to_fmpq(q)
        if q < 0:
            raise ValueError("square root of a negative number")
        self._pending.append(int(q.p) * int(q.q))
        return self._push(("sqrt", q))

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

    # -- balls --------------------------------------------------------------------------------
    def ball(self, node: int, prec: int = DEFAULT_PRECISION) -> arb:
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
        budget = self.term_budget if budget is None else budget
        self._sync_basis()
        stack = [node]
        while stack:
            top = stack[-1]
            if self._known(top, budget):
                stack.pop()
                continue
            op = self._ops[top]
            missing = [a for a in op[1:] if op[0] not in ("const", "sqrt") and not self._known(a, budget)]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            self._compute_form(top, op, budget)
        if self._failed.get(node, -1) >= budget:
            return None
        form, cone = self._forms[node]
        return form if cone <= budget else None

    def _known(self, node: int, budget: int) -> bool:
        if node in self._forms:
            return True
        return self._failed.get(node, -1) >= budget

    def _compute_form(self, node: int, op: tuple, budget: int) -> None:
        kind = op[0]
        if kind == "const":
            form, cone = RadicalSum.rational(op[1]), 1
        elif kind == "sqrt":
            form, cone = RadicalSum.sqrt(op[1], self._basis), 1
        else:
            if any(self._failed.get(a, -1) >= budget for a in op[1:]):
                self._failed[node] = budget
                return
            (x, cx), (y, cy) = self._forms[op[1]], self._forms[op[2]]
            if max(cx, cy) > budget or (kind in ("mul",) and len(x) * len(y) > budget * budget):
                self._failed[node] = budget
                return
            try:
                form = _BINARY[kind](x, y)
            except NotAMonomial:  # division by a sum is never needed by the process
                self._failed[node] = budget
                return
            cone = max(cx, cy, len(form))
        if cone > budget:
            self._failed[node] = budget
            return
        self._forms[node] = (form, cone)
        self._failed.pop(node, None)

    # -- certified comparison -----------------------------------------------------------------
    def compare(
        self,
        a: int,
        b: int,
        precision: int = DEFAULT_PRECISION,
        max_precision: int = DEFAULT_MAX_PRECISION,
        budget: int | None = None,
    ) -> tuple[int, bool]:
        """The sign of ``a - b`` and whether it is certified.

        Balls at growing precision decide unequal values. Past ``max_precision`` the canonical
        forms decide: a zero difference is a certified tie, a non-zero one is separated by
        evaluating the form (which terminates). Over the budget, the answer is an uncertified 0.
        """
        prec = precision
        while True:
            x, y = self.ball(a, prec), self.ball(b, prec)
            if x < y:
                return -1, True
            if x > y:
                return 1, True
            if prec >= max_precision:
                break
            prec *= 2
        fa, fb = self.form(a, budget), self.form(b, budget)
        if fa is None or fb is None:
            return 0, False
        diff = fa - fb
        if diff.is_zero():
            return 0, True
        while True:
            d = diff.ball(prec)
            if d > 0:
                return 1, True
            if d < 0:
                return -1, True
            prec *= 2

    def decimal(self, node: int, digits: int = 30) -> str:
        """``digits`` significant digits, certified: both ends of the ball round the same way."""
        prec = int(digits * 3.33) + 32
        while True:
            lo, hi = ball_bounds(self.ball(node, prec))
            s_lo, s_hi = round_significant(lo, digits), round_significant(hi, digits)
            if s_lo == s_hi:
                return s_lo
            if prec >= 4 * DEFAULT_MAX_PRECISION:
                # a rational on a rounding boundary never separates; its form settles it
                form = self.form(node)
                q = form.rational_value() if form is not None else None
                if q is not None:
                    return round_significant(q, digits)
            prec *= 2


class ExactValue:
    """An exact real number of the process, held as a node of its :class:`Program`.

    ``exact()`` gives a sympify-able string (None over the term budget), ``decimal(d)`` certified
    digits, ``sympy()`` the sympy number.
    """

    __slots__ = ("program", "node")

    def __init__(self, program: Program, node: int):
        self.program = program
        self.node = node

    def form(self, budget: int | None = None) -> RadicalSum | None:
        return self.program.form(self.node, budget)

    def exact(self, budget: int | None = None) -> str | None:
        form = self.form(budget)
        return None if form is None else str(form)

    def sympy(self, budget: int | None = None):
        import sympy

        text = self.exact(budget)
        if text is None:
            raise ValueError("over the term budget; pass a larger budget")
        return sympy.sympify(text)

    def decimal(self, digits: int = 30) -> str:
        return self.program.decimal(self.node, digits)

    def ball(self, prec: int = DEFAULT_PRECISION) -> arb:
        return self.program.ball(self.node, prec)

    def __float__(self) -> float:
        return float(self.decimal(20))

    def __repr__(self) -> str:
        text = self.exact()
        return f"ExactValue({text if text is not None else '≈' + self.decimal(20)})"

    def _repr_latex_(self) -> str:
        from .display import value_latex

        return f"${value_latex(self)}$"
