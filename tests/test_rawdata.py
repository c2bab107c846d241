"""The Gram check of raw arrays: the float32 path (the data's own dtype) gives the float64 verdict."""

import numpy as np
import pytest

from limitproc import InputError
from limitproc.io.rawdata import GRAM_BLOCK, _float32_chunk, check_orthogonal

TOL32 = float(np.finfo(np.float32).eps) ** 0.5


def _orthogonal(n: int, d: int, seed: int) -> np.ndarray:
    """Dense float32 rows, orthogonal to float32 rounding (rows of a random orthogonal matrix, scaled)."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0][:n]
    return (q * rng.uniform(0.5, 2.0, n)[:, None]).astype(np.float32)


def _verdict(X, tol, float64):
    try:
        check_orthogonal(X, tol, float64=float64)
    except InputError as exc:
        return exc.problem
    return "ok"


def test_chunks_follow_the_tolerance():
    assert _float32_chunk(np.zeros((1, 1), np.float32), TOL32) == 1024  # 1024 · 2^-24 = 6.1e-5 <= tol/4
    assert _float32_chunk(np.zeros((1, 1), np.float32), 1e-6) is None  # too tight for float32 sums: float64
    assert _float32_chunk(np.zeros((1, 1), np.float64), 0.1) is None  # float64 data is not held in float32


@pytest.mark.parametrize("factor", [0.5, 0.999, 1.001, 2.0])
def test_float32_path_gives_the_float64_verdict_near_the_tolerance(factor):
    """A pair of rows with <x_i, x_k>/(||x_i|| ||x_k||) at factor × tol (computed in float64, after rounding
    to float32): both paths accept it below the tolerance and refuse it, with the same message, above."""
    n, d = 300, 2100  # three chunks of at most 1024 coordinates
    X = _orthogonal(n, d, seed=1)
    i, k = 7, 250
    u = X[k].astype(np.float64) / np.linalg.norm(X[k].astype(np.float64))
    X[i] = (X[i] + factor * TOL32 * np.linalg.norm(X[i]) * u).astype(np.float32)
    x64 = X.astype(np.float64)
    cosine = x64[i] @ x64[k] / np.linalg.norm(x64[i]) / np.linalg.norm(x64[k])
    assert abs(cosine / TOL32 - factor) < 1e-3 * factor  # the injected defect, as the data hold it
    fast, exact = _verdict(X, TOL32, False), _verdict(X, TOL32, True)
    assert fast == exact
    assert (fast == "ok") == (abs(cosine) <= TOL32)
    if fast != "ok":
        assert fast.startswith(f"rows {i} and {k} are not orthogonal")


def test_a_violation_past_the_first_block_is_found():
    n = GRAM_BLOCK + 200
    X = np.eye(n, dtype=np.float32)
    X[GRAM_BLOCK + 100] = X[GRAM_BLOCK + 5]  # the only parallel pair, in the second block of rows
    with pytest.raises(InputError, match=rf"rows {GRAM_BLOCK + 5} and {GRAM_BLOCK + 100} are not orthogonal: .* = 1 beyond"):
        check_orthogonal(X, TOL32)
    check_orthogonal(np.eye(n, dtype=np.float32), TOL32)


def test_underflow_and_overflow_in_float32_fall_back_to_float64():
    X = _orthogonal(40, 1200, seed=2)
    # at 1e-25 the float32 products (1e-50) underflow to 0: the underflow term sends the block to float64
    tiny = (X.astype(np.float64) * 1e-25).astype(np.float32)
    tiny[3] = tiny[5]
    with pytest.raises(InputError, match="rows 3 and 5 are not orthogonal"):
        check_orthogonal(tiny, TOL32)
    # at 1e20 they overflow (inf): judged in float64, where these rows are orthogonal
    huge = (X.astype(np.float64) * 1e20).astype(np.float32)
    check_orthogonal(huge, TOL32)
    huge[3] = huge[5]
    with pytest.raises(InputError, match="rows 3 and 5 are not orthogonal"):
        check_orthogonal(huge, TOL32)


def _balanced_init(n: int, seed: int, scale: float = 1e-20):
    """n = d float32 inputs (a scaled orthogonal basis) and a float32 initialisation with a_j = ±||w_j||
    computed in float32: balanced up to float32 rounding (subnormal squares at this scale)."""
    rng = np.random.default_rng(seed)
    X = _orthogonal(n, n, seed)
    W = (scale / np.sqrt(n) * rng.standard_normal((6, n))).astype(np.float32)
    a = (np.sign(rng.standard_normal(6)) * np.sqrt((W * W).sum(axis=1, dtype=np.float32))).astype(np.float32)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    return X, y, W, a


def test_a_float32_balanced_start_with_n_equal_d_is_accepted_and_an_unbalanced_one_refused():
    from limitproc import Problem
    from limitproc.io.rawdata import problem_from_raw_arrays

    X, y, W, a = _balanced_init(400, seed=4)
    problem = problem_from_raw_arrays(Problem, X, y, W, a)
    # with n = d the magnitudes carry all of ||w_j||: the lifted |a_j| moved by rounding only
    w = np.linalg.norm(W.astype(np.float64), axis=1)
    assert np.all(np.abs(problem.a_magnitudes / w - 1) < 1e-2) and np.all(problem.a_magnitudes >= np.abs(a.astype(np.float64)))
    with pytest.raises(InputError, match=r"a\[2\]: \|a_j\|"):
        problem_from_raw_arrays(Problem, X, y, W, np.where(np.arange(6) == 2, a * np.float32(0.9), a))
    # forced: warned (by the raw data's balance check and by the problem's sign-flip check), and built
    with pytest.warns(UserWarning, match=r"^a\[2\]"), pytest.warns(UserWarning, match=r"^a_magnitudes\[2\]"):
        problem_from_raw_arrays(Problem, X, y, W, np.where(np.arange(6) == 2, a * np.float32(0.9), a), allow_sign_flip=True)
