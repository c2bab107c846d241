"""A case: a problem with a concrete initialisation, a λ ladder and settings; runs are cached."""

from __future__ import annotations

from dataclasses import dataclass, field

from limitproc import Problem
from limitproc.errors import InputError
from limitproc.flow.simulate import initial_magnitudes, simulate, with_magnitudes
from limitproc.flow.ties import TieResolution, solve_resolved

__all__ = ["Case", "DEFAULT_LAMBDAS", "DEFAULT_SETTINGS"]

DEFAULT_LAMBDAS = (1e-10, 1e-20, 1e-40)

#: settings a claim may read, with their defaults
DEFAULT_SETTINGS = {
    "norm_ratio_bound": 3.0,  # norm-ratio: N / N_min must stay below this
    "mc_trials": 40000,  # probability: Monte Carlo trials
    "mc_z": 4.0,  # probability: z of the Wilson interval (a false alarm once in ~16000 runs)
    "rtol": 1e-8,  # simulator tolerance
}


@dataclass
class Case:
    """``problem`` (magnitudes drawn with ``seed`` if it carries none), ``lambdas`` and ``settings``.

    ``limit`` is ``solve(problem)`` unless given (a check must fail on a wrong one); ``ties`` is the
    engine's resolution of its overlapping ties from the magnitudes (None without one) unless given;
    ``simulation(λ)`` runs the simulator once per λ.
    """

    problem: Problem
    lambdas: tuple = DEFAULT_LAMBDAS
    seed: int = 0
    settings: dict = field(default_factory=dict)
    limit: object = None
    ties: TieResolution | None = None
    simulations: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.lambdas:
            raise InputError("lambdas", "give at least one λ")
        for lam in self.lambdas:
            if not 0 < lam < 1:
                raise InputError("lambdas", f"each λ must lie in (0, 1), got {lam}")
        unknown = set(self.settings) - set(DEFAULT_SETTINGS)
        if unknown and not all(key.startswith("user_") for key in unknown):
            raise InputError("settings", f"unknown {sorted(unknown)} (known: {', '.join(DEFAULT_SETTINGS)}; user keys start with 'user_')")
        self.settings = {**DEFAULT_SETTINGS, **self.settings}
        p = self.problem
        if p.magnitudes is None:
            mags, _ = initial_magnitudes(p, self.seed)
            p = self.problem = with_magnitudes(p, mags, p.a_magnitudes)
        # the simulator always runs against the engine's own limit, so a wrong ``limit`` under
        # test cannot bend the simulation towards itself
        resolved = solve_resolved(p)
        self.reference = resolved.result
        if self.limit is None:
            self.limit = self.reference
        if self.ties is None:
            self.ties = resolved.ties

    @property
    def lambdas_descending(self) -> list[float]:
        return sorted(self.lambdas, reverse=True)

    def simulation(self, lam: float):
        if lam not in self.simulations:
            self.simulations[lam] = simulate(self.problem, lam, result=self.reference, rtol=self.settings["rtol"])
        return self.simulations[lam]

    def ladder(self) -> list:
        """The simulations at every λ, largest λ first."""
        return [self.simulation(lam) for lam in self.lambdas_descending]

    def smallest(self):
        return self.simulation(min(self.lambdas))
