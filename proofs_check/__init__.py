"""proofs_check: the theory's claims as executable checks against the finite-λ gradient flow.

A claim has an id, a statement, the section of docs/theory.md it comes from, and a check ``case -> Outcome``.
Register your own with :func:`claim` or through the ``proofs_check.claims`` entry-point group.
"""

from . import builtin  # noqa: F401  (registers the built-in claims)
from .case import Case
from .registry import ENTRY_POINT_GROUP, Claim, Outcome, claim, claims
from .report import Report, run

__all__ = ["Case", "Claim", "ENTRY_POINT_GROUP", "Outcome", "Report", "claim", "claims", "run"]
