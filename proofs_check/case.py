"""A case: a problem with a concrete initialisation, a λ ladder and settings; runs are cached.

The default ladder is ``"auto"``: chosen from the case's *asymptotic margin* (:class:`Margin`), so
that at its smallest λ the finite-λ corrections are well below the claims' tolerances. Finite λ
sees the limit from afar in three ways: two jumps close in τ (their transitions, each a few escape
times ``1/μ`` wide and shifted by the offsets ``δ_k``, must fit inside ``Δτ · log(1/λ)``), a neuron
that never escapes but comes close (at its closest it has size ``λ^g``, which must be negligible),
and slow rates (wide transitions). A claim that fails at a λ not deep enough is *inconclusive*,
with the reason, not failed.

A case with a step ``lr`` is about gradient descent (theory §11): its limit is the ``ρ`` process
``solve(problem, lr=lr)``, its simulations run the exact descent map (``method="gd"``), and its
margin uses the rates ``ρ``. Descent has no offset prediction (that chain integrates the flow), so
its margin counts the escape widths only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from limitproc import Problem, solve
from limitproc.errors import InputError
from limitproc.exact import parse_rational
from limitproc.flow.simulate import float_labels, initial_magnitudes, parse_lambda, simulate, with_magnitudes
from limitproc.flow.ties import TieResolution, resolve_ties, solve_resolved

__all__ = ["Case", "DEFAULT_LAMBDAS", "DEFAULT_SETTINGS", "ESCAPE_TIMES", "Margin", "Requirement", "growth_rates", "margin"]

#: ``"auto"``: the ladder is chosen from the case's margin
DEFAULT_LAMBDAS = "auto"

#: settings a claim may read, with their defaults
DEFAULT_SETTINGS = {
    "norm_ratio_bound": None,  # norm-ratio: a bound on N / N_min (default: the theorem's sqrt(J))
    "mc_trials": 40000,  # probability: Monte Carlo trials
    "mc_z": 4.0,  # probability: z of the Wilson interval (a false alarm once in ~16000 runs)
    "rtol": 1e-8,  # simulator tolerance
    "deepest_digits": 400,  # the auto ladder goes no deeper than λ = 10^-deepest_digits (cost grows like log(1/λ))
    "shallowest_digits": 20,  # ... and starts no shallower than λ = 10^-shallowest_digits
}
#: a transition is taken as over ``ESCAPE_TIMES`` escape times ``1/μ`` from its middle (e^-12 ≈ 6e-6)
ESCAPE_TIMES = 12.0
#: the auto ladder: the needed depth times these factors
LADDER_FACTORS = (1.0, 1.5, 2.0)
#: the log-scale simulator accepts any λ; the ladder stops here
DEEPEST_DIGITS = 10000


@dataclass(frozen=True)
class Requirement:
    """``log(1/λ)`` must exceed ``log_inv_lambda`` for the finite-λ effect ``what`` to be negligible."""

    log_inv_lambda: float
    what: str

    def reason(self) -> str:
        return f"{self.what}: needs λ below 1e-{_digits(self.log_inv_lambda)}"


@dataclass(frozen=True)
class Margin:
    """How far the case is from the finite-λ troubles (floats, from the exact limit and the predicted offsets).

    ``jump_gap``: the smallest ``(τ_{k+1} − τ_k) · μ`` over consecutive jumps (and ``τ_1 μ_1`` from the
    start): escape times per unit of ``log(1/λ)`` between two transitions (None without jumps).
    ``near_escape``: ``1 − S_j`` for the never-escaped neuron whose exponent came closest to 1
    (None if none came near: no never-escaped neuron with a positive rate). ``smallest_rate``: the
    smallest escape rate ``μ``. ``requirements``: what each effect asks of ``log(1/λ)``.
    """

    jump_gap: float | None
    near_escape: float | None
    near_neuron: int | None
    smallest_rate: float | None
    requirements: tuple[Requirement, ...]

    @property
    def needed(self) -> float:
        """The ``log(1/λ)`` every requirement asks for (0 when there is none)."""
        return max((r.log_inv_lambda for r in self.requirements), default=0.0)

    def shortfall(self, log_inv_lambda: float) -> list[str]:
        """The reasons ``λ = e^-log_inv_lambda`` is not deep enough (empty if it is)."""
        return [r.reason() for r in self.requirements if r.log_inv_lambda > log_inv_lambda]

    def to_dict(self) -> dict:
        return {
            "jump_gap": self.jump_gap,
            "near_escape": self.near_escape,
            "near_neuron": self.near_neuron,
            "smallest_rate": self.smallest_rate,
            "needs_lambda_below": f"1e-{_digits(self.needed)}" if self.requirements else None,
        }

    def describe(self) -> str:
        parts = []
        if self.jump_gap is not None:
            parts.append(f"smallest jump gap {self.jump_gap:.3g} escape times per unit log(1/λ)")
        if self.near_escape is not None:
            parts.append(f"neuron {self.near_neuron} came within {self.near_escape:.3g} of escaping")
        if self.smallest_rate is not None:
            parts.append(f"smallest rate {self.smallest_rate:.3g}")
        return "; ".join(parts) or "no jump"


def _digits(log_inv_lambda: float) -> int:
    return max(1, math.ceil(log_inv_lambda / math.log(10)))


def growth_rates(mu, lr: float | None):
    """The rates at which small neurons grow: ``μ`` under gradient flow, ``ρ = log(1 + η μ)/η`` under
    gradient descent with step ``η = lr`` (theory §11); floats or arrays."""
    return mu if lr is None else np.log1p(lr * np.asarray(mu, dtype=float)) / lr


def exponents(result, lr: float | None = None) -> tuple[list[dict[int, float]], dict[int, float]]:
    """Float exponents ``S_j(τ_k)`` of the neurons not yet escaped, at each jump (before it), and each
    never-escaped neuron's final exponent; recomputed from the problem and the jumps' blocks
    (``μ_j = 2c ||y ⊙ ||x|| ||`` over ``A_j`` minus the fitted samples; ``ρ_j`` of it with a step ``lr``)."""
    p = result.problem
    y, q = float_labels(p), np.array([float(x) for x in p.sq_norms])
    two_c = 2 * float(p.loss_factor)
    aligned = p.aligned_matrix()
    fitted = np.zeros(p.n, bool)
    S = np.zeros(p.m)
    live = set(range(p.m))
    tau, at_jumps = 0.0, []
    for jump in result.jumps:
        rates = growth_rates(two_c * np.sqrt(((y**2 * q)[None, :] * (aligned & ~fitted[None, :])).sum(axis=1)), lr)
        S += rates * (float(jump.tau) - tau)
        tau = float(jump.tau)
        at_jumps.append({j: float(S[j]) for j in sorted(live)})
        live -= set(jump.neurons)
        fitted[jump.samples] = True
    return at_jumps, {j: float(S[j]) for j in result.never_escaped if aligned[j].any()}


def margin(result, offsets, lr: float | None = None) -> Margin:
    """The :class:`Margin` of ``result`` with the predicted offsets ``δ_k`` (escape rates ``ρ`` with a step ``lr``)."""
    jumps = result.jumps
    reqs: list[Requirement] = []
    rate = [float(growth_rates(min(float(r) for r in j.rates.values()), lr)) for j in jumps]
    gap = None
    previous = (0, 0.0, 0.0, math.inf)  # the start: k, τ, δ, μ
    for jump, delta, mu in zip(jumps, offsets, rate):
        k0, tau0, delta0, mu0 = previous
        dtau = float(jump.tau) - tau0
        if dtau > 0:
            # the midpoint between the transitions must be ESCAPE_TIMES escape times from both
            width = max(delta0 + ESCAPE_TIMES / mu0, -delta + ESCAPE_TIMES / mu)
            what = f"jumps {k0} and {jump.k}" if k0 else f"the start and jump {jump.k}"
            reqs.append(Requirement(2 * width / dtau, f"{what} are {dtau:.3g} apart in τ and their offsets differ by {delta - delta0:.3g}"))
            gap = min(gap if gap is not None else math.inf, dtau * min(mu, mu0))
        previous = (jump.k, float(jump.tau), delta, mu)
    _, final = exponents(result, lr)
    near, near_neuron = None, None
    for j, S in final.items():
        if S > 0 and (near is None or 1 - S < near):
            near, near_neuron = 1 - S, j
    if near is not None and near > 0:
        reqs.append(Requirement(ESCAPE_TIMES / near, f"neuron {near_neuron} never escapes but its exponent reaches {1 - near:.4g}"))
    return Margin(gap, near, near_neuron, min(rate, default=None), tuple(reqs))


def auto_ladder(needed: float, settings: dict) -> tuple[str, ...]:
    """Three λ (strings) from the depth ``needed`` (a ``log(1/λ)``), within the settings' bounds."""
    deepest = min(int(settings["deepest_digits"]), DEEPEST_DIGITS)
    first = max(_digits(needed), int(settings["shallowest_digits"]))
    first = min(first, int(deepest / LADDER_FACTORS[-1]))
    return tuple(f"1e-{round(first * f)}" for f in LADDER_FACTORS)


@dataclass
class Case:
    """``problem`` (magnitudes drawn with ``seed`` if it carries none), ``lambdas``, ``settings`` and
    the step ``lr`` of gradient descent (an exact rational as :func:`limitproc.solve` takes it; None
    or 0: gradient flow; after construction a Fraction or None, its float in :attr:`step`).

    ``lambdas``: floats or strings (``"1e-400"``, parsed by :func:`limitproc.flow.simulate.parse_lambda`),
    or ``"auto"`` (the default): three λ from the case's :attr:`margin`. ``limit`` is
    ``solve(problem, lr=lr)`` unless given (a check must fail on a wrong one); ``ties`` is the engine's
    resolution of its overlapping ties from the magnitudes (None without one, and under descent:
    it integrates the flow) unless given; ``prediction`` is the chain's resolution of every jump
    (offsets; None under descent); ``simulation(λ)`` runs the simulator (or the descent map) once per λ.
    """

    problem: Problem
    lambdas: tuple | str = DEFAULT_LAMBDAS
    seed: int = 0
    settings: dict = field(default_factory=dict)
    limit: object = None
    ties: TieResolution | None = None
    simulations: dict = field(default_factory=dict)
    lr: object = None

    def __post_init__(self):
        unknown = set(self.settings) - set(DEFAULT_SETTINGS)
        if unknown and not all(key.startswith("user_") for key in unknown):
            raise InputError("settings", f"unknown {sorted(unknown)} (known: {', '.join(DEFAULT_SETTINGS)}; user keys start with 'user_')")
        self.settings = {**DEFAULT_SETTINGS, **self.settings}
        auto = isinstance(self.lambdas, str) and self.lambdas == "auto"
        if not auto:
            if isinstance(self.lambdas, (str, float, int)):
                raise InputError("lambdas", f"give a sequence of λ or 'auto', got {self.lambdas!r}")
            if not self.lambdas:
                raise InputError("lambdas", "give at least one λ")
            self._parsed = {text: L for L, text in (parse_lambda(lam, "lambdas") for lam in self.lambdas)}
        p = self.problem
        if p.magnitudes is None:
            mags, _ = initial_magnitudes(p, self.seed)
            p = self.problem = with_magnitudes(p, mags, p.a_magnitudes)
        # the simulator always runs against the engine's own limit, so a wrong ``limit`` under
        # test cannot bend the simulation towards itself
        if self.lr is not None and parse_rational(self.lr, "lr") == 0:
            self.lr = None  # 0 is gradient flow (not solved twice)
        descent = None if self.lr is None else solve(p, lr=self.lr)
        self.lr = None if descent is None else descent.lr
        if descent is None or self.lr is None:
            resolved = solve_resolved(p)
            self.reference = resolved.result
            if self.ties is None:
                self.ties = resolved.ties
            self.prediction: TieResolution | None = resolve_ties(self.reference, p.magnitudes, p.a_magnitudes)
            offsets = self.prediction.offsets
        else:
            self.reference, self.prediction = descent, None
            offsets = [0.0] * len(descent.jumps)
        if self.limit is None:
            self.limit = self.reference
        self.margin = margin(self.reference, offsets, self.step)
        if auto:
            self.lambdas = auto_ladder(self.margin.needed, self.settings)
            self._parsed = {text: L for L, text in (parse_lambda(lam) for lam in self.lambdas)}
        self.lambdas = tuple(self._parsed)

    @property
    def step(self) -> float | None:
        """The step ``η`` as a float (the descent map's), None for gradient flow."""
        return None if self.lr is None else float(self.lr)

    @property
    def lambdas_descending(self) -> list[str]:
        """The ladder as strings, largest λ first."""
        return sorted(self._parsed, key=self._parsed.get)

    def simulation(self, lam, **options):
        """The run at ``lam`` (cached; ``options`` such as ``coordinates`` or ``rtol`` make a separate run);
        under descent, of the descent map with the case's step."""
        L, text = parse_lambda(lam, "lambdas")
        key = text if not options else (text, tuple(sorted(options.items())))
        if key not in self.simulations:
            options = {"rtol": self.settings["rtol"], **options} | ({"method": "gd", "lr": self.step} if self.lr else {})
            self.simulations[key] = simulate(self.problem, log_inv_lambda=L, result=self.reference, **options)
        return self.simulations[key]

    def ladder(self) -> list:
        """The simulations at every λ, largest λ first."""
        return [self.simulation(lam) for lam in self.lambdas_descending]

    def smallest(self):
        return self.simulation(self.lambdas_descending[-1])

    @property
    def deepest(self) -> float:
        """``log(1/λ)`` of the smallest λ."""
        return max(self._parsed.values())

    def shortfall(self) -> list[str]:
        """Why the smallest λ is not deep enough for this case (empty if it is)."""
        return self.margin.shortfall(self.deepest)
