"""The JSON of results: the public contract of ``limitproc solve`` and :meth:`Result.to_dict` (field names are stable)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..exact import rational_string

__all__ = ["result_dict", "result_json"]

if TYPE_CHECKING:
    from ..process import Result


def result_dict(result: Result, digits: int = 30, escape_directions: bool = False) -> dict:
    """The jumps, final state and norms of ``result``: exact strings, decimals to ``digits`` digits."""
    p = result.problem
    jumps = []
    for jump in result.jumps:
        record = {
            "k": jump.k,
            "tau": jump.tau.exact(),
            "tau_decimal": jump.tau.decimal(digits),
            "neurons": list(jump.neurons),
            "samples": jump.samples.tolist(),
            "plateau_loss": rational_string(jump.plateau_loss),
            "tie": jump.tie,
            "shared": jump.shared.tolist(),
        }
        if jump.tie:
            record["tie_certified"] = jump.tie_certified
            record["tie_certificate"] = jump.tie_certificate
            record["blocks"] = {str(j): b.tolist() for j, b in jump.blocks.items()}
        if escape_directions:
            record["escape_directions"] = [jump.escape_direction(j).to_dict() for j in jump.neurons]
        jumps.append(record)
    out = {
        "n": p.n,
        "m": p.m,
        "loss": p.loss,
        "jumps": jumps,
        "interpolates": result.interpolates,
        "uncovered": result.uncovered.tolist(),
        "final_loss": rational_string(result.final_loss),
        "sq_norm": None if result.sq_norm is None else result.norm_exact(result.sq_norm),
        "sq_norm_decimal": None if result.sq_norm is None else result.sq_norm.decimal(digits),
        "sq_norm_undetermined": result.sq_norm_reason,
        "sq_norm_resolved": None,  # filled by a tie resolution (limitproc.flow.ties.TieResolution.annotate)
        "min_sq_norm": result.norm_exact(result.min_sq_norm),
        "min_sq_norm_decimal": result.min_sq_norm.decimal(digits),
        "never_escaped": result.never_escaped,
        "term_budget": result.program.term_budget,
    }
    if result.lr is not None:  # gradient descent (theory §11); absent for gradient flow
        out["lr"] = rational_string(result.lr)
    if p.scaling != "standard":  # losses and norms are in the user's units (theory, conventions)
        out["scaling"] = p.scaling
    return out


def result_json(result: Result, digits: int = 30, escape_directions: bool = False, indent: int | None = None) -> str:
    return json.dumps(result_dict(result, digits, escape_directions), indent=indent)
