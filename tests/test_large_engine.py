"""The engine on packed words (issue 13): its sets and rates against the boolean-matrix definitions,
the fast JSON writer against ``json.dumps``, and a shared :class:`LabelContext` against none.

Sizes cross the 64-sample word boundary (and the writer's 256-entry threshold), so padding bits,
partial words and both the dense and the sparse word paths are exercised.
"""

import json
from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import InputError, Problem, generate, solve
from limitproc.io.results import result_dict
from limitproc.process import LabelContext


@st.composite
def problems(draw, max_n=200, max_m=7):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    weighted = draw(st.booleans())
    labels = [
        Fraction(draw(st.integers(-9, 9).filter(bool)), draw(st.integers(1, 4))) if weighted else draw(st.sampled_from([1, -1]))
        for _ in range(n)
    ]
    sq_norms = [Fraction(draw(st.integers(1, 5)), draw(st.integers(1, 3))) for _ in range(n)] if draw(st.booleans()) else None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.02, 0.5, 0.95]))  # sparse and dense aligned sets
    active = rng.random((m, n)) < density
    signs = [draw(st.sampled_from([1, -1])) for _ in range(m)]
    return Problem(labels=labels, signs=signs, active=active, sq_norms=sq_norms)


@settings(max_examples=60)
@given(problems())
def test_sets_and_rates_follow_the_boolean_definitions(problem):
    check_sets_and_rates(problem)


@pytest.mark.parametrize("scale", [2**20, 2**40, 10**30])
def test_large_weights_are_summed_exactly(scale):
    """Rate weights of many 24-bit limbs (and past int64) are summed exactly, dense and sparse."""
    rng = np.random.default_rng(scale % 1000)
    n, m = 300, 6
    labels = [int(rng.integers(1, 1000)) * scale * (1 if rng.random() < 0.5 else -1) + 1 for _ in range(n)]
    sq_norms = [Fraction(int(rng.integers(1, 50)), int(rng.integers(1, 7))) for _ in range(n)]
    check_sets_and_rates(Problem(labels=labels, signs=[1, -1, 1, -1, 1, -1], active=rng.random((m, n)) < 0.6, sq_norms=sq_norms))


def check_sets_and_rates(problem):
    """Each jump's blocks are ``A_j \\ F`` of the unpacked aligned matrix, the union and the shared
    samples follow, and at every saddle ``mu_j² = (2c)² Σ_{A_j \\ F} y_i² q_i`` exactly."""
    result = solve(problem)
    aligned = problem.aligned_matrix()
    y, q = problem.labels, problem.sq_norms
    fitted = np.zeros(problem.n, dtype=bool)
    for saddle, jump in zip(result.saddles, [None, *result.jumps]):
        if jump is not None:
            counts = np.zeros(problem.n, dtype=int)
            for j in jump.neurons:
                expected = np.flatnonzero(aligned[j] & ~fitted)
                assert jump.blocks[j].tolist() == expected.tolist()
                counts[expected] += 1
            assert jump.samples.tolist() == np.flatnonzero(counts).tolist()
            assert jump.shared.tolist() == np.flatnonzero(counts > 1).tolist()
            fitted |= counts > 0
        for j, mu in saddle.unstable.items():
            R = sum((y[i] ** 2 * q[i] for i in np.flatnonzero(aligned[j] & ~fitted).tolist()), Fraction(0))
            square = (2 * problem.loss_factor) ** 2 * R
            assert sympy.expand(sympy.sympify(mu.exact()) ** 2) == sympy.Rational(square.numerator, square.denominator)
    assert result.uncovered.tolist() == np.flatnonzero(~fitted).tolist()


@settings(max_examples=30)
@given(st.integers(1, 600), st.integers(1, 6), st.sampled_from(["pm1", "gauss"]), st.integers(0, 10**6))
def test_fast_json_is_json_dumps(n, m, labels, seed):
    """``to_json`` writes long index arrays with numpy: the text is exactly ``json.dumps`` of ``to_dict``."""
    result = solve(generate(n, m, labels=labels, seed=seed))
    assert result.to_json() == json.dumps(result_dict(result))


@settings(max_examples=20)
@given(problems(max_n=80))
def test_shared_context_gives_the_same_result(problem):
    context = LabelContext(problem)
    assert solve(problem, context=context).to_json() == solve(problem).to_json()
    other = Problem.from_arrays(
        problem.y.num, problem.y.den, problem.q.num, problem.q.den, problem.signs[::-1], problem.packed_active[::-1]
    )
    assert solve(other, context=context).to_json() == solve(other).to_json()


def test_tied_classes_on_other_samples_reuse_the_norm_interval():
    # neurons {0,1,2} and {1,2,3} tie (equal rates) and share {1, 2}: N lies in an interval. The same
    # layout four samples on is another component of the same shape, so the context computes its
    # interval once; each run still gets exactly what solving it alone gives
    labels = [1] * 8
    context = LabelContext(Problem(labels=labels, signs=[1], active=[[0]]))
    for shift in (0, 4):
        problem = Problem(labels=labels, signs=[1, 1], active=[[shift, shift + 1, shift + 2], [shift + 1, shift + 2, shift + 3]])
        result = solve(problem, context=context)
        assert result.sq_norm_interval is not None
        assert result.to_json() == solve(problem).to_json()
    assert len(context._intervals) == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sets(st.integers(0, 5), min_size=1), min_size=2, max_size=4),
    st.lists(st.permutations(range(8)), max_size=4),
    st.sampled_from([[1] * 8, [1, 1, 1, 1, 2, 2, -1, -1]]),
)
def test_runs_through_one_context_are_their_runs_solved_alone(sets, perms, labels):
    # an ensemble's runs share one context: the same aligned sets moved to other samples meet the
    # norm intervals it keeps by layout, and must still give exactly their own solve's result
    context = LabelContext(Problem(labels=labels, signs=[1], active=[[0]]))
    for perm in [list(range(8)), *perms]:
        problem = Problem(labels=labels, signs=[1] * len(sets), active=[sorted(perm[i] for i in s) for s in sets])
        assert solve(problem, context=context).to_json() == solve(problem).to_json()


def test_context_of_other_labels_is_refused():
    context = LabelContext(generate(10, 2, seed=1))
    with pytest.raises(InputError, match="^context: "):
        solve(generate(10, 2, labels="gauss", seed=1), context=context)


@pytest.mark.parametrize("n", [130, 5000])  # (5000: rows of 625 bytes take the one-call-per-row branch)
def test_aligned_words_are_the_padded_bits(n):
    p = generate(n, 5, seed=4)
    words = p.aligned_words()
    assert words.dtype == np.uint64 and words.shape == (5, -(-n // 64))
    bits = np.unpackbits(words.view(np.uint8), axis=1)
    # theory §3 from its definition: active, and s_j y_i > 0
    aligned = p.active_matrix() & ((p.signs[:, None] > 0) == p.positive_labels[None, :])
    assert np.array_equal(bits[:, :n].astype(bool), aligned)
    assert not bits[:, n:].any()
