"""Problem files, generation and raw data: exact reading, validation, round trips."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import InputError, Problem, generate
from limitproc.problem import RationalArray


def test_decimals_and_fractions_are_read_exactly(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        '{"labels": ["0.1", "-3/2", 0.25, "1e-3"], "sq_norms": [1, "2", "0.5", 3], "signs": [1], "active": [[0]], "loss": "mean"}'
    )
    p = Problem.from_file(path)
    assert p.labels == [Fraction(1, 10), Fraction(-3, 2), Fraction(1, 4), Fraction(1, 1000)]
    assert p.sq_norms == [1, 2, Fraction(1, 2), 3] and p.loss == "mean" and p.loss_factor == Fraction(1, 4)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip(tmp_path, suffix):
    p = generate(37, 5, labels="gauss", norms="uniform", seed=3, decimals=4, loss="half-sum")
    path = tmp_path / f"p{suffix}"
    p.to_file(path)
    back = Problem.from_file(path)
    assert back.labels == p.labels and back.sq_norms == p.sq_norms and back.loss == "half-sum"
    assert np.array_equal(back.signs, p.signs) and back.active_sets() == p.active_sets()


def test_npz_layout_is_the_documented_one(tmp_path):
    p = generate(13, 3, seed=1)
    p.to_file(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as z:
        assert z["active"].dtype == np.uint8 and z["active"].shape == (3, 2)
        assert np.array_equal(np.unpackbits(z["active"], axis=1, count=13).astype(bool), p.active_matrix())
        assert z["labels_num"].dtype == np.int64 and z["signs"].dtype == np.int8 and str(z["loss"]) == "half-mean"


def test_generate_is_deterministic_and_bernoulli():
    a, b = generate(4000, 50, seed=11), generate(4000, 50, seed=11)
    assert np.array_equal(a.packed_active, b.packed_active) and a.labels == b.labels
    assert not np.array_equal(generate(4000, 50, seed=12).packed_active, a.packed_active)
    # 200000 fair coins: the active fraction is within 5 standard deviations (0.0011) of 1/2
    assert abs(a.active_matrix().mean() - 0.5) < 5 * 0.5 / np.sqrt(200000)
    assert set(a.labels) == {1, -1} and set(a.signs.tolist()) == {1, -1}


def test_generated_decimals_are_exact_and_nonzero():
    p = generate(500, 2, labels="uniform", norms="uniform", decimals=2, seed=5)
    assert all(v != 0 and (v * 100).denominator == 1 and -1 <= v <= 1 for v in p.labels)
    assert all(Fraction(1, 2) <= q <= Fraction(3, 2) and (q * 100).denominator == 1 for q in p.sq_norms)


def test_rational_array_overflow_falls_back_to_python_ints():
    big = RationalArray(np.array([2**40, 3], dtype=np.int64), np.array([1, 2**40], dtype=np.int64))
    ints, D = (big * big * big).scaled_integers()
    assert ints.dtype == object
    assert [Fraction(int(k), D) for k in ints] == [Fraction(2**120), Fraction(27, 2**120)]


RAW = {"inputs": [[1, 1, 0], [1, -1, 0], [0, 0, 2]], "init": {"W": [[1, 0, 1], [-1, 0, 0]], "a": [2, -1]}, "labels": [1, -1, "1/2"]}


def test_raw_data_exact():
    p = Problem.from_raw(RAW)
    assert p.sq_norms == [2, 2, 4] and p.signs.tolist() == [1, -1]
    # <w_0, x> = 1, 1, 2 ; <w_1, x> = -1, -1, 0
    assert p.active_sets() == [[0, 1, 2], []]
    assert p.magnitudes.tolist()[0] == [1.0, 1.0, 2.0]


def test_raw_float_inputs_use_the_tolerance():
    h = 0.7071067811865476  # 1/sqrt(2) rounded: orthogonal only up to rounding
    data = {"inputs": [[h, h], [h, -h]], "init": {"W": [[1.0, 0.0]], "a": [1.0]}, "labels": [1, 1]}
    text = json.dumps(data)
    from limitproc.io.files import parse_json

    p = Problem.from_raw(parse_json(text))
    assert p.active_sets() == [[0, 1]]
    skew = json.loads(text)
    skew["inputs"][1] = [h, -0.7071]  # <x_0, x_1> = 5e-6, beyond the default 1e-9
    with pytest.raises(InputError, match="not orthogonal"):
        Problem.from_raw(parse_json(json.dumps(skew)))


BAD = [
    ({"labels": [1, 0], "signs": [1], "active": [[0]]}, "labels[1]: zero label"),
    ({"labels": [1, 2], "sq_norms": [1, -1], "signs": [1], "active": [[0]]}, "sq_norms[1]: squared norm must be positive"),
    ({"labels": [1, 2], "sq_norms": [1, 0], "signs": [1], "active": [[0]]}, "sq_norms[1]: squared norm must be positive"),
    ({"labels": [1, 2], "sq_norms": [1], "signs": [1], "active": [[0]]}, "sq_norms: has 1 entries but there are 2 labels"),
    ({"labels": [1, 2], "signs": [1, -1], "active": [[0]]}, "active: has 1 sets but there are 2 signs"),
    ({"labels": [1, 2], "signs": [1], "active": [[0, 2]]}, "active[0]: index 2 out of range for n = 2"),
    ({"labels": [1, 2], "signs": [1], "active": [["a"]]}, "active[0]: index 'a' is not an integer"),
    ({"labels": [1, 2], "signs": [0], "active": [[0]]}, "signs[0]: must be +1 or -1"),
    ({"labels": [1, 2], "signs": [2], "active": [[0]]}, "signs[0]: must be +1 or -1"),
    ({"labels": [1, "x"], "signs": [1], "active": [[0]]}, "labels[1]: not an exact number"),
    ({"labels": [1, "1/0"], "signs": [1], "active": [[0]]}, "labels[1]: zero denominator"),
    ({"labels": [1], "signs": [1], "active": [[0]], "loss": "l1"}, "loss: unknown convention 'l1'"),
    ({"labels": [1], "signs": [1], "active": [[0]], "lables": [1]}, "lables: unknown field"),
    ({"labels": [1], "signs": [1]}, "active: missing"),
    ({"labels": [], "signs": [], "active": []}, "labels: no samples"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m for _, m in BAD])
def test_bad_problem(data, message):
    with pytest.raises(InputError) as info:
        Problem.from_dict(data)
    assert str(info.value).startswith(message)


def test_raw_bad_inputs():
    not_orth = dict(RAW, inputs=[[1, 1, 0], [1, 0, 0], [0, 0, 2]])
    with pytest.raises(InputError, match=r"^inputs: rows 0 and 1 are not orthogonal \(exactly\)"):
        Problem.from_raw(not_orth)
    flip = dict(RAW, init={"W": [[1, 0, 1], [-1, 0, 0]], "a": [1, -1]})  # |a_0| = 1 < ||w_0|| = sqrt(2)
    with pytest.raises(InputError, match=r"^init\.a\[0\]: .*can flip"):
        Problem.from_raw(flip)
    with pytest.warns(UserWarning, match="can flip"):
        assert Problem.from_raw(flip, allow_sign_flip=True).m == 2
    with pytest.raises(InputError, match=r"^labels: must be a list of 3"):
        Problem.from_raw(dict(RAW, labels=[1, 1]))
    with pytest.raises(InputError, match=r"^ortho_tol: must be in \[0, 1\)"):
        Problem.from_raw(RAW, ortho_tol=-1)
    with pytest.raises(InputError, match=r"^init\.a\[1\]: zero output weight"):
        Problem.from_raw(dict(RAW, init={"W": [[1, 0, 1], [-1, 0, 0]], "a": [2, 0]}))


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_same_seed_gives_the_same_file(tmp_path, suffix):
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    generate(300, 7, labels="gauss", seed=9).to_file(a)
    generate(300, 7, labels="gauss", seed=9).to_file(b)
    assert a.read_bytes() == b.read_bytes()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(2**1100), 2**1100).filter(bool), st.integers(1, 2**1100)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([2**40, 2**53, 2**62]),
)
def test_floats_are_the_correctly_rounded_fractions(pairs, bound):
    """``RationalArray.floats`` is ``float(Fraction)`` entry by entry (int64 fast path or not), ±inf past float64."""
    pairs = [((abs(p) % bound or 1) * (1 if p > 0 else -1), q % bound or 1) for p, q in pairs] if bound < 2**62 else pairs
    num, den = [p for p, _ in pairs], [q for _, q in pairs]
    small = all(abs(v) < 2**62 for v in num + den)
    values = RationalArray(np.array(num, dtype=np.int64 if small else object), np.array(den, dtype=np.int64 if small else object))

    def expected(p, q):
        try:
            return float(Fraction(p, q))
        except OverflowError:
            return math.inf if p > 0 else -math.inf

    assert values.floats().tolist() == [expected(p, q) for p, q in pairs]


def test_floats_at_the_edges_of_the_fast_path():
    """Just past the fast path (2^53 + 1 is not a float64): each quotient is rounded once, ties to even.
    Dividing the rounded numerator instead would round twice: for p / q below, float(p) / float(q)
    misses the correctly rounded p / q by one ulp."""
    p, q = 2004793020646064781, 636946
    assert float(p) / float(q) != p / q
    values = RationalArray(np.array([2**53 + 1, 2**53 + 3, 1, p, -p], dtype=np.int64), np.array([1, 1, 3, q, q], dtype=np.int64))
    assert values.floats().tolist() == [float(2**53), float(2**53 + 4), 1 / 3, p / q, -p / q]
