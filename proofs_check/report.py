"""Running claims on a case and rendering the report (text, Markdown, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from limitproc.errors import InputError
from limitproc.io.tables import Table
from limitproc.progress import progress_bar

from .registry import Outcome, claims

__all__ = ["Report", "run"]


@dataclass
class Report:
    rows: list[tuple[str, Outcome]]

    @property
    def passed(self) -> bool:
        return all(outcome.passed for _, outcome in self.rows)

    def to_dict(self) -> dict:
        return {
            "claims": [
                {"id": cid, "passed": o.passed, "measured": o.measured, "tolerance": o.tolerance, "detail": o.detail}
                for cid, o in self.rows
            ],
            "passed": self.passed,
        }

    def render(self, fmt: str = "text") -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=1) + "\n"
        table = Table(
            ["claim", "result", "measured", "tolerance", "detail"],
            [[cid, "pass" if o.passed else "FAIL", _short(o.measured), _short(o.tolerance), o.detail] for cid, o in self.rows],
        )
        summary = f"\n{sum(o.passed for _, o in self.rows)}/{len(self.rows)} claims passed\n"
        return table.render("markdown" if fmt == "md" else "text") + summary


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
    return Report(rows)
