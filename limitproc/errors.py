"""The one error type users see for bad input."""


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
