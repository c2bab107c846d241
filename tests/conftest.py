"""Hypothesis profiles: "ci" (the default) is reproducible, "dev" explores; pick one with HYPOTHESIS_PROFILE.

No profile has a deadline: a test never depends on the wall clock. Shared helpers are in helpers.py.
"""

import os

import mpmath
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _mpmath_precision():
    """Some references set mpmath's global precision: restore it, so no test sees another's setting."""
    prec = mpmath.mp.prec
    yield
    mpmath.mp.prec = prec
