"""Implicit bias of the limit network (theory §5): its squared norm against the minimal one, exactly.

``N = 2 sum_j sqrt(Q_j)`` over the escaped neurons and ``N_min = 2 (||ỹ_+|| + ||ỹ_-||)`` are sums
of square roots of rationals. Everything here is built in a small exact
:class:`~limitproc.exact.Program` from their canonical forms (read from a result's values, or
parsed from the strings of a result file), so the ratio ``N / N_min`` (a radical sum: the
program divides by a sum through its conjugates), the smallest constant
``N / sqrt(n)`` and the certificates ``N_min <= N <= C sqrt(n)`` are exact: a sign is decided by
balls at growing precision, and an equality by canonical forms, never by a float tolerance.

The ``sqrt(n)`` heuristic of theory §5 is derived symbolically by :func:`asymptotic_ratio`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import BudgetExceeded, InputError
from .exact import ExactValue, Program, parse_rational

__all__ = ["Bias", "Certificate", "asymptotic_ratio", "asymptotic_sqrt_n_constant"]


def _radical_terms(value: ExactValue | str, field: str, budget: int | None) -> list[tuple[Fraction, int]]:
    """``sum c_k sqrt(r_k)`` (rational ``c_k``, integer ``r_k``) as its terms ``(c_k, r_k)``."""
    if isinstance(value, ExactValue):
        form = value.form(budget)
        if form is None:
            budget = value.program.term_budget if budget is None else budget
            raise BudgetExceeded(f"{field}: the canonical form exceeds the term budget of {budget}", budget)
        return form.pairs()
    return _parse_radical_sum(value, field)


def _parse_radical_sum(text: str, field: str) -> list[tuple[Fraction, int]]:
    """The terms of a sympify-able string ``sum c_k sqrt(r_k)`` (the strings of a result file)."""
    import sympy

    try:
        expr = sympy.sympify(text, rational=True)
    except (sympy.SympifyError, TypeError, SyntaxError):
        raise InputError(field, f"not an exact number: {text!r}") from None
    terms = []
    for term in sympy.Add.make_args(expr):
        c, rest = term.as_coeff_Mul()
        if rest == 1:
            radicand = 1
        elif rest.is_Pow and rest.exp == sympy.Rational(1, 2) and rest.base.is_Integer and rest.base > 0:
            radicand = int(rest.base)
        else:
            raise InputError(field, f"not a sum of rational multiples of square roots: {text!r}")
        if not c.is_Rational:
            raise InputError(field, f"not a sum of rational multiples of square roots: {text!r}")
        terms.append((Fraction(int(c.p), int(c.q)), radicand))
    return terms


@dataclass(frozen=True)
class Certificate:
    """Whether an inequality holds, decided exactly (``certified`` is False only over the term budget)."""

    holds: bool
    certified: bool


class Bias:
    """``N``, ``N_min``, their ratio and the ``sqrt(n)`` constant of one run, as exact values.

    ``sq_norm`` and ``min_sq_norm`` are :class:`~limitproc.exact.ExactValue` (their canonical forms
    are read within ``budget`` terms, their program's term budget by default) or sympify-able
    strings. ``sq_norm``, ``ratio`` and ``sqrt_n_constant`` are None when ``N`` is undetermined
    (an overlapping tie, theory §6); ``reason`` then says why, and ``sq_norm_interval`` (exact
    ``(lo, hi)``, as from ``Result.sq_norm_interval``) gives ``ratio_interval`` for ``N/N_min``.
    """

    def __init__(
        self,
        n: int,
        sq_norm: ExactValue | str | None,
        min_sq_norm: ExactValue | str,
        reason: str | None = None,
        interpolates: bool | None = None,
        *,
        budget: int | None = None,
        sq_norm_interval=None,
    ):
        if n < 1:
            raise InputError("n", f"must be at least 1, got {n}")
        self.n = n
        self.reason = reason
        self.interpolates = interpolates
        n_terms = _radical_terms(min_sq_norm, "min_sq_norm", budget)
        if not 1 <= len(n_terms) <= 2:
            raise InputError("min_sq_norm", f"expected one or two square roots (one per label sign), got {min_sq_norm!r}")
        N_terms = None if sq_norm is None else _radical_terms(sq_norm, "sq_norm", budget)
        self.program = prog = Program(term_budget=max(512, 4 * len(N_terms or ()) + 16))
        self._min = prog.sum(self._node(t) for t in n_terms)
        self._sqrt_n = prog.sqrt(n)
        self.min_sq_norm = prog.value(self._min)
        self.sq_norm_interval = self.ratio_interval = None
        if sq_norm_interval is not None:
            ends = [prog.sum(self._node(t) for t in _radical_terms(v, "sq_norm_interval", budget)) for v in sq_norm_interval]
            self.sq_norm_interval = tuple(prog.value(e) for e in ends)
            self.ratio_interval = tuple(prog.value(prog.div(e, self._min)) for e in ends)
        if N_terms is None:
            self._N = None
            self.sq_norm = self.ratio = self.sqrt_n_constant = None
            return
        self._N = prog.sum(self._node(t) for t in N_terms)
        self.sq_norm = prog.value(self._N)
        self.ratio = prog.value(prog.div(self._N, self._min))
        self.sqrt_n_constant = prog.value(prog.div(self._N, self._sqrt_n))

    def _node(self, term: tuple[Fraction, int]) -> int:
        c, radicand = term
        return self.program.mul(self.program.const(c), self.program.sqrt(radicand))

    @classmethod
    def of_result(cls, result) -> Bias:
        """From a :class:`~limitproc.process.Result`."""
        budget = max(result.program.term_budget, result.problem.m + 2)  # norms are sums of m + 1 roots: always fit (theory §8)
        return cls(
            result.problem.n,
            result.sq_norm,
            result.min_sq_norm,
            result.sq_norm_reason,
            result.interpolates,
            budget=budget,
            sq_norm_interval=result.sq_norm_interval,
        )

    @classmethod
    def from_file(
        cls, path, allow_sign_flip: bool = False, ortho_tol: float | None = None, balance_tol: float | None = None, **solver
    ) -> Bias:
        """From a result JSON (``Result.to_json``), or from a problem file, which is then solved.

        ``allow_sign_flip``, ``ortho_tol`` and ``balance_tol`` go to :meth:`Problem.from_file`, ``solver`` to :func:`solve`.
        """
        from .io.files import read_json
        from .problem import Problem
        from .process import solve

        if str(path).endswith(".json"):
            data = read_json(path, "problem")
            if isinstance(data, dict) and "jumps" in data and "min_sq_norm" in data:
                return cls.of_result_dict(data)
        return cls.of_result(
            solve(Problem.from_file(path, allow_sign_flip=allow_sign_flip, ortho_tol=ortho_tol, balance_tol=balance_tol), **solver)
        )

    @classmethod
    def of_result_dict(cls, data: dict) -> Bias:
        """From the JSON written by ``limitproc solve --format json``."""
        for key in ("n", "min_sq_norm", "sq_norm"):
            if key not in data:
                raise InputError(key, "missing from the result JSON")
        if data["sq_norm"] is None and not data.get("sq_norm_undetermined"):
            raise InputError("sq_norm", "is null but the result gives no reason (sq_norm_undetermined)")
        return cls(
            int(data["n"]),
            data["sq_norm"],
            data["min_sq_norm"],
            data.get("sq_norm_undetermined"),
            data.get("interpolates"),
            sq_norm_interval=data.get("sq_norm_interval"),
        )

    def _compare(self, a: int, b: int) -> tuple[int, bool]:
        return self.program.compare(a, b)

    def lower_bound(self) -> Certificate | None:
        """``N_min <= N`` (it can fail only if the network does not interpolate)."""
        if self._N is None:
            return None
        sign, certified = self._compare(self._min, self._N)
        return Certificate(sign <= 0, certified)

    def upper_bound(self, C) -> Certificate | None:
        """``N <= C sqrt(n)`` for a rational ``C >= 0``."""
        C = parse_rational(C, "C")
        if C < 0:
            raise InputError("C", f"must be non-negative, got {C}")
        if self._N is None:
            return None
        bound = self.program.mul(self.program.const(C), self._sqrt_n)
        sign, certified = self._compare(self._N, bound)
        return Certificate(sign <= 0, certified)

    def to_dict(self, digits: int = 30, C=None, rho=Fraction(1, 2)) -> dict:
        """The ``limitproc bound --format json`` contract: exact values as sympify-able strings."""

        def pair(value: ExactValue | None, key: str) -> dict:
            if value is None:
                return {key: None, f"{key}_decimal": None}
            return {key: value.exact(), f"{key}_decimal": value.decimal(digits)}

        out: dict = {"n": self.n, "interpolates": self.interpolates}
        out |= pair(self.sq_norm, "sq_norm")
        out["sq_norm_undetermined"] = self.reason if self.sq_norm is None else None
        out |= pair(self.min_sq_norm, "min_sq_norm")
        out |= pair(self.ratio, "ratio")
        out |= pair(self.sqrt_n_constant, "sqrt_n_constant")
        for key, ends in (("sq_norm_interval", self.sq_norm_interval), ("ratio_interval", self.ratio_interval)):
            out[key] = None if ends is None else [v.exact() for v in ends]
            out[f"{key}_decimal"] = None if ends is None else [v.decimal(digits) for v in ends]
        lower = self.lower_bound()
        out["min_sq_norm_le_sq_norm"] = None if lower is None else lower.holds
        if C is not None:
            upper = self.upper_bound(C)
            out["C"] = str(parse_rational(C, "C"))
            out["sq_norm_le_C_sqrt_n"] = None if upper is None else upper.holds
        rho = parse_rational(rho, "rho")
        out["rho"] = str(rho)
        out["asymptotic_ratio"] = str(asymptotic_ratio(rho))
        out["asymptotic_sqrt_n_constant"] = str(asymptotic_sqrt_n_constant(rho))
        return out

    def explain(self, digits: int = 12, C=None, rho=Fraction(1, 2)) -> str:
        """A short human explanation (``limitproc bound``)."""
        d = self.to_dict(digits, C, rho)
        lines = [
            f"n = {self.n}"
            + (
                ""
                if self.interpolates is None
                else f"; the limit network {'interpolates' if self.interpolates else 'does NOT interpolate'}"
            )
        ]
        lines.append(f"minimal squared norm of an interpolator  N_min = {d['min_sq_norm']} ≈ {d['min_sq_norm_decimal']}")
        if self.sq_norm is None:
            lines.append(f"squared norm of the limit network  N: undetermined ({_short(self.reason, 160)})")
            if self.sq_norm_interval is not None:
                lo, hi = d["sq_norm_interval_decimal"]
                rlo, rhi = d["ratio_interval_decimal"]
                lines.append(f"N lies in the exact interval [{lo}, {hi}], so N/N_min lies in [{rlo}, {rhi}]")
            lines.append("N/N_min and N/sqrt(n) are undetermined; give the initial magnitudes to resolve the tie")
        else:
            lines.append(f"squared norm of the limit network  N = {_short(d['sq_norm'])} ≈ {d['sq_norm_decimal']}")
            lines.append(f"implicit-bias ratio  N/N_min = {_short(d['ratio'])} ≈ {d['ratio_decimal']}")
            lower = "holds" if d["min_sq_norm_le_sq_norm"] else "FAILS (the network does not interpolate, so N_min does not bound it)"
            lines.append(f"N_min <= N: {lower} (certified exactly)")
            lines.append(
                f"smallest C with N <= C*sqrt(n):  C = N/sqrt(n) = {_short(d['sqrt_n_constant'])} ≈ {d['sqrt_n_constant_decimal']}"
            )
            if C is not None:
                lines.append(f"N <= {d['C']}*sqrt(n): {'holds' if d['sq_norm_le_C_sqrt_n'] else 'FAILS'} (certified exactly)")
        lines.append(
            f"idealised process (±1 labels, unit norms, blocks shrinking by rho = {d['rho']}): "
            f"N/N_min -> {d['asymptotic_ratio']}, N/sqrt(n) -> {d['asymptotic_sqrt_n_constant']} for balanced classes"
        )
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        from .display import bias_html

        return bias_html(self)

    def _repr_latex_(self) -> str:
        from .display import bias_latex

        return bias_latex(self)


def _short(text: str | None, width: int = 100) -> str:
    if text is None:
        return "(over the term budget)"
    return text if len(text) <= width else text[: width - 5] + " ..."


def _idealised_norms(rho):
    """``(N, N_min)`` of the idealised process as sympy expressions in ``n_+``, ``n_-``.

    Each class is fitted by blocks shrinking by ``rho``: the k-th block holds ``(1 - rho) rho^(k-1)``
    of the class (so the blocks cover it; ``rho = 1/2`` gives ``n/2, n/4, ...`` of theory §5). With
    ``±1`` labels and unit norms a block ``B`` costs ``2 sqrt(|B|)``.
    """
    import sympy

    rho = sympy.nsimplify(rho) if not isinstance(rho, Fraction) else sympy.Rational(rho.numerator, rho.denominator)
    if not 0 < rho < 1:
        raise InputError("rho", f"must be strictly between 0 and 1, got {rho}")
    k = sympy.Symbol("k", integer=True, positive=True)
    n_pos, n_neg = sympy.symbols("n_pos n_neg", positive=True)
    # the k-th block costs 2 sqrt((1 - rho) size) r^(k-1) with r = sqrt(rho): a geometric series, summed
    # for a symbol r and then evaluated (summing in rho itself left an unevaluated Sum for rho = 99/100)
    r = sympy.Symbol("r", positive=True)
    geometric = sympy.summation(r ** (k - 1), (k, 1, sympy.oo)).subs(r, sympy.sqrt(rho))
    blocks = [2 * sympy.sqrt((1 - rho) * size) * geometric for size in (n_pos, n_neg)]
    return sum(blocks), 2 * (sympy.sqrt(n_pos) + sympy.sqrt(n_neg)), (n_pos, n_neg)


def asymptotic_ratio(rho=Fraction(1, 2)):
    """``N / N_min`` of the idealised process with shrink factor ``rho``, derived from the series.

    It is ``sqrt(1 - rho) / (1 - sqrt(rho))`` whatever the class sizes; ``1 + sqrt(2)`` at ``rho = 1/2``.
    """
    import sympy

    N, N_min, _ = _idealised_norms(rho)
    return sympy.radsimp(sympy.simplify(N / N_min))


def asymptotic_sqrt_n_constant(rho=Fraction(1, 2)):
    """``lim N / sqrt(n)`` of the idealised process for balanced classes ``n_+ = n_- = n/2``."""
    import sympy

    N, _, (n_pos, n_neg) = _idealised_norms(rho)
    n = sympy.Symbol("n", positive=True)
    return sympy.radsimp(sympy.simplify(N.subs({n_pos: n / 2, n_neg: n / 2}) / sympy.sqrt(n)))
