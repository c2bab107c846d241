"""limitproc: the exact small-initialisation limit of two-layer ReLU gradient flow on orthogonal data.

>>> import limitproc
>>> result = limitproc.solve(limitproc.Problem(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)]))
>>> [(j.tau.exact(), j.neurons, j.samples.tolist()) for j in result.jumps]
[('5*sqrt(3)/3', (1,), [2, 3, 4]), ('5*sqrt(2)/2', (0,), [0, 1])]

The solver is imported here; the approximate paths (``limitproc.flow``), the graph tools, the bias
and the probabilities are loaded on first use of their names, so ``import limitproc`` stays light.
"""

from importlib import import_module

from .errors import BudgetExceeded, Error, InputError, IntegrationError, Uncertified
from .exact import ExactValue, Precision
from .problem import Problem, generate
from .process import Jump, Result, solve
from .saddles import EscapeDirection, Saddle

__version__ = "0.1.0"

# name -> module, imported on first access (PEP 562)
_LAZY = {
    "Bias": "limitproc.bias",
    "interpolation_probability": "limitproc.probability",
    "simulate": "limitproc.flow.simulate",
    "Simulation": "limitproc.flow.simulate",
    "extrapolate": "limitproc.flow.simulate",
    "predict": "limitproc.flow.predict",
    "Prediction": "limitproc.flow.predict",
    "resolve_ties": "limitproc.flow.ties",
    "solve_resolved": "limitproc.flow.ties",
    "Resolved": "limitproc.flow.ties",
    "TieResolution": "limitproc.flow.ties",
    "transition_graph": "limitproc.graph",
    "ensemble_graph": "limitproc.graph",
    "read_graph": "limitproc.io.graphs",
    "write_graph": "limitproc.io.graphs",
}

__all__ = [
    "Bias",
    "BudgetExceeded",
    "Error",
    "EscapeDirection",
    "ExactValue",
    "InputError",
    "IntegrationError",
    "Jump",
    "Precision",
    "Problem",
    "Result",
    "Saddle",
    "Uncertified",
    "generate",
    "interpolation_probability",
    "solve",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'limitproc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
