"""Running claims on a case and rendering the report (text, Markdown, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from limitproc.errors import InputError
from limitproc.io.tables import Table
from limitproc.progress import progress_bar

from .registry import FAILED, INCONCLUSIVE, PASSED, Outcome, claims

__all__ = ["Report", "json_safe", "run"]


@dataclass
class Report:
    """The outcome of each claim, the case's λ ladder, its asymptotic margin (a dict, or None) and its
    step of gradient descent (the exact rational as a string; None for gradient flow)."""

    rows: list[tuple[str, Outcome]]
    lambdas: tuple = ()
    margin: dict | None = field(default=None)
    lr: str | None = None

    @property
    def passed(self) -> bool:
        """Every claim passed."""
        return all(o.status == PASSED for _, o in self.rows)

    @property
    def failed(self) -> bool:
        """Some claim failed (an inconclusive one is no failure)."""
        return any(o.status == FAILED for _, o in self.rows)

    @property
    def status(self) -> str:
        return FAILED if self.failed else PASSED if self.passed else INCONCLUSIVE

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for _, o in self.rows) for s in (PASSED, INCONCLUSIVE, FAILED)}

    def to_dict(self) -> dict:
        return json_safe(
            {
                "claims": [
                    {
                        "id": cid,
                        "status": o.status,
                        "passed": o.passed,
                        "measured": o.measured,
                        "tolerance": o.tolerance,
                        "detail": o.detail,
                    }
                    for cid, o in self.rows
                ],
                "status": self.status,
                "passed": self.passed,
                "lambdas": list(self.lambdas),
                "margin": self.margin,
                "lr": self.lr,
            }
        )

    def render(self, fmt: str = "text") -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=1) + "\n"
        table = Table(
            ["claim", "result", "measured", "tolerance", "detail"],
            [
                [
                    cid,
                    {PASSED: "pass", FAILED: "FAIL", INCONCLUSIVE: "inconclusive"}[o.status],
                    _short(o.measured),
                    _short(o.tolerance),
                    o.detail,
                ]
                for cid, o in self.rows
            ],
        )
        counts = self.counts()
        summary = f"\n{counts[PASSED]}/{len(self.rows)} claims passed, {counts[INCONCLUSIVE]} inconclusive, {counts[FAILED]} failed"
        if self.lambdas:
            summary += f"; λ = {', '.join(map(str, self.lambdas))}"
        if self.lr is not None:
            summary += f"; gradient descent, η = {self.lr}"
        return table.render("markdown" if fmt == "md" else "text") + summary + "\n"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def json_safe(value):
    """``value`` with numpy scalars and arrays as Python numbers and lists, tuples as lists, and
    non-finite floats as strings: what ``json.dumps`` accepts (the one place the report is made so)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def run(case, ids=None, progress: bool = False) -> Report:
    """Check the claims ``ids`` (all registered ones by default) on ``case``."""
    registry = claims()
    ids = list(registry) if not ids else list(ids)
    rows = []
    with progress_bar(total=len(ids), desc="claims", enabled=progress) as bar:
        for cid in ids:
            try:
                outcome = registry[cid].check(case)
            except InputError:
                raise
            except Exception as exc:  # a check that breaks is a failed claim, reported, not a crash
                outcome = Outcome(False, "error", "n/a", f"{type(exc).__name__}: {exc}")
            rows.append((cid, outcome))
            bar.update(1)
    margin = getattr(case, "margin", None)
    lr = getattr(case, "lr", None)
    return Report(
        rows,
        tuple(getattr(case, "lambdas", ())),
        margin.to_dict() | {"summary": margin.describe()} if margin else None,
        None if lr is None else str(lr),
    )
