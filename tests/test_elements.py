"""Element laws: arrays drawn whole from one byte string (conformance.elements)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from conformance import domains as dom
from conformance.elements import (
    WIDTH,
    Integers,
    Mapped,
    Power10,
    Uniform,
    Values,
    arrays,
    decode,
    mixture,
)

QUIET = settings(max_examples=200, database=None, deadline=None,
                 suppress_health_check=list(HealthCheck))


def test_zero_bytes_decode_to_each_law_s_simplest_value():
    zeros = bytes(3 * WIDTH)
    assert list(decode(Uniform(-8.0, 8.0), (3,), zeros)) == [0.0, 0.0, 0.0]
    assert list(decode(Uniform(1.0, 4.0), (3,), zeros)) == [1.0, 1.0, 1.0]
    assert list(decode(Integers(2, 5), (3,), zeros)) == [2, 2, 2]
    assert list(decode(Values((0.25, 1.0)), (3,), zeros)) == [0.25, 0.25, 0.25]
    assert list(decode(Power10(-3.0, 4.0), (3,), zeros)) == [1e-3, 1e-3, 1e-3]
    assert list(decode(Uniform(-8.0, 8.0) | Values((5.0,)), (3,), zeros)) == [0.0, 0.0, 0.0]


@QUIET
@given(dom.array((4, 5), mixture(Uniform(-2.0, 3.0), Power10(-30.0, -1.0),
                                 Mapped(Power10(-7.0, -1.0), lambda v: 1.0 - v))))
def test_values_stay_within_their_regimes(x):
    assert x.shape == (4, 5) and x.dtype == np.float64
    assert np.all(((x >= -2.0) & (x <= 3.0)) | ((x >= 1e-30) & (x <= 1.0)))


def test_every_regime_is_drawn_with_its_weight():
    seen: list[np.ndarray] = []

    @QUIET
    @given(dom.array((50,), dom.logits()))
    def draw(x):
        seen.append(x)

    draw()
    x = np.concatenate(seen)
    huge, cliffs, ordinary = np.abs(x) > 100, np.isin(x, [17.0, -17.0, 88.5, -88.5]), np.abs(
        x) <= 8
    # Three regimes, a third each: ordinary values (|x| <= 8, as are some log-spaced ones and
    # cliffs), log-spaced magnitudes up to 1e4, and the cliffs (4 of 11 values are these).
    assert 0.33 < ordinary.mean() < 0.8 and huge.mean() > 0.05 and cliffs.mean() > 0.05


def test_positions_use_the_whole_float64_mantissa():
    # Not values float32 holds exactly: a target that rounds its float64 inputs must show it.
    rows = np.array([[0, 0x12, 0x34, 0x56]] * 2, dtype=np.uint8)
    x = decode(Uniform(0.0, 1.0), (2,), rows.tobytes())
    assert x[0] == x[1] and x[0] != np.float32(x[0])


def test_shrinking_walks_toward_simple_arrays():
    found = find(dom.array((5,), dom.logits()), lambda x: bool((np.abs(x) > 100).any()),
                 settings=settings(database=None, max_examples=500))
    assert np.count_nonzero(found) == 1 and 100 < np.max(np.abs(found)) < 200


def test_equal_laws_share_one_strategy():
    assert arrays(dom.logits(), (3,)) is arrays(dom.logits(), (3,))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_and_boolean_arrays(dtype):
    law = Integers(0, 3) if dtype is np.int64 else dom.booleans()
    x = decode(law, (6,), bytes(range(6 * WIDTH)))
    assert x.astype(dtype).dtype == dtype
