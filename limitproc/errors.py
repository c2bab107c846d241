"""The errors limitproc raises on purpose, all under one base class :class:`Error`.

Each also derives from the built-in exception it refines, so ``except ValueError`` and
``except ArithmeticError`` keep catching them.
"""

__all__ = ["BudgetExceeded", "Error", "InputError", "IntegrationError", "Uncertified"]


class Error(Exception):
    """Base class of every error limitproc raises on purpose."""


class IntegrationError(Error, FloatingPointError):
    """An approximate path could not integrate: step-size underflow, a window that does not settle."""


class InputError(Error, ValueError):
    """Bad input, reported as one line: ``field: problem``.

    The CLI prints it without a traceback and exits with status 2.
    """

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Uncertified(Error, ArithmeticError):
    """A sign, comparison or rounding that neither balls nor canonical forms could certify.

    Raised instead of guessing. ``left`` and ``right`` are the values compared (``right`` is None
    when the sign or the rounding of ``left`` alone was asked), ``precision`` the bits the balls
    reached and ``term_budget`` the budget the canonical forms exceeded; raising either settles it.
    """

    def __init__(self, message: str, left, right, precision: int, term_budget: int):
        super().__init__(message)
        self.left = left
        self.right = right
        self.precision = precision
        self.term_budget = term_budget


class BudgetExceeded(Error, ArithmeticError):
    """A canonical radical form was asked for but has more terms than the term budget allows."""

    def __init__(self, message: str, term_budget: int):
        super().__init__(message)
        self.term_budget = term_budget
