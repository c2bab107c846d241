"""limitproc: the exact small-initialisation limit of two-layer ReLU gradient flow on orthogonal data.

>>> import limitproc
>>> result = limitproc.solve(limitproc.Problem(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)]))
>>> [(j.tau.exact(), j.neurons, j.samples.tolist()) for j in result.jumps]
[('5*sqrt(3)/3', (1,), [2, 3, 4]), ('5*sqrt(2)/2', (0,), [0, 1])]
"""

from .errors import InputError
from .exact import ExactValue
from .flow.ties import Resolved, TieResolution, solve_resolved
from .problem import Problem, generate
from .process import EscapeDirection, Jump, Result, Saddle, solve

__version__ = "0.1.0"

__all__ = ["EscapeDirection", "ExactValue", "InputError", "Jump", "Problem", "Result", "Saddle", "generate", "solve", "__version__"]
__all__ += ["Resolved", "TieResolution", "solve_resolved"]
