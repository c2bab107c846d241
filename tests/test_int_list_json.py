"""The JSON writers of index arrays and results (``limitproc.io.results``) are ``json.dumps`` byte for byte.

It writes four digits at a time into rows of one width, so the values drawn cluster around the
powers of ten (where the width changes) and cover every width from 1 to 20 digits, in both the
uint32 and the uint64 paths, and in int and uint dtypes.
"""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from limitproc import generate, solve
from limitproc.io.results import int_list_json, result_dict, result_json_parts

near_powers = st.builds(lambda e, d: max(0, min(10**e + d, 2**64 - 1)), st.integers(0, 19), st.integers(-3, 3))
values = st.one_of(st.integers(0, 10**5), near_powers, st.integers(0, 2**32 + 5), st.integers(0, 2**64 - 1))


@given(st.lists(values, max_size=60), st.sampled_from([np.int64, np.uint64, np.uint32, np.int32]))
def test_sorted_arrays_are_written_as_json_dumps(entries, dtype):
    info = np.iinfo(dtype)
    array = np.array(sorted(v for v in entries if v <= info.max), dtype=dtype)
    assert int_list_json(array) == json.dumps(array.tolist())


def test_every_width_and_its_boundaries():
    edges = sorted({v for e in range(20) for v in (10**e - 1, 10**e, 10**e + 1)} | {2**32 - 1, 2**32, 2**64 - 1})
    for array in (np.array(edges, dtype=np.uint64), np.arange(0, 10**6, 7), np.array([5])):
        assert int_list_json(array) == json.dumps(array.tolist())


@given(st.lists(st.integers(-5, 10**6), min_size=2, max_size=40))
def test_unsorted_or_negative_arrays_fall_back_to_json_dumps(entries):
    array = np.array(entries, dtype=np.int64)
    assert int_list_json(array) == json.dumps(array.tolist())


@settings(max_examples=15)
@given(st.integers(256, 3000), st.integers(1, 6), st.integers(0, 10**6))
def test_result_bytes_are_the_json_of_the_result(n, m, seed):
    """What ``limitproc solve --format json`` writes: ``json.dumps`` of the result's dict, then ``end``."""
    result = solve(generate(n, m, seed=seed))
    assert b"".join(result_json_parts(result, end=b"\n")) == (json.dumps(result_dict(result)) + "\n").encode()
