"""Claims, their outcomes, and the registry users add to (by decorator or entry point)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Claim", "ENTRY_POINT_GROUP", "FAILED", "INCONCLUSIVE", "Outcome", "PASSED", "REGISTRY", "claim", "claims", "load_entry_points"]

#: entry-point group through which installed packages contribute claims
ENTRY_POINT_GROUP = "proofs_check.claims"


PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"


@dataclass(frozen=True)
class Outcome:
    """The verdict of one check: ``measured`` is compared with ``tolerance`` (how is in ``detail``).

    ``inconclusive``: the check could not decide (λ not small enough for this case, say); ``detail``
    says why. An inconclusive outcome is neither passed nor failed.
    """

    passed: bool
    measured: float | int | str
    tolerance: float | int | str
    detail: str = ""
    inconclusive: bool = False

    @property
    def status(self) -> str:
        """``"passed"``, ``"failed"`` or ``"inconclusive"``."""
        return INCONCLUSIVE if self.inconclusive else PASSED if self.passed else FAILED


@dataclass(frozen=True)
class Claim:
    """A statement of the theory (one paragraph, words and formula), its section of docs/theory.md, its check."""

    id: str
    statement: str
    section: str
    check: Callable  # Case -> Outcome


REGISTRY: dict[str, Claim] = {}


def claim(id: str, statement: str, section: str):
    """Decorator: register ``check(case) -> Outcome`` as the claim ``id``.

    >>> @claim("demo-positive-n", "Every problem has at least one sample: n ≥ 1.", "§1")
    ... def _check(case):
    ...     return Outcome(case.problem.n >= 1, case.problem.n, ">= 1")
    >>> "demo-positive-n" in REGISTRY
    True
    >>> _ = REGISTRY.pop("demo-positive-n")
    """

    def register(check: Callable) -> Callable:
        if id in REGISTRY and REGISTRY[id].check is not check:
            raise ValueError(f"claim {id!r} is already registered")
        REGISTRY[id] = Claim(id, " ".join(statement.split()), section, check)
        return check

    return register


def load_entry_points() -> list[str]:
    """Import the claims of installed plugins (group ``proofs_check.claims``); returns their names.

    An entry point may name a module (whose import registers claims with :func:`claim`) or a
    :class:`Claim` object.
    """
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, Claim):
            REGISTRY.setdefault(obj.id, obj)
        loaded.append(ep.name)
    return loaded


def claims() -> dict[str, Claim]:
    """All registered claims: the built-in ones (registered when the package is imported), the
    plugins', and any registered in this process."""
    load_entry_points()
    return REGISTRY
