"""Constraints against norms computed here slice by slice, plus names, serialization, errors."""

import itertools
import math

import numpy as np
import pytest

from convt import constraints
from convt.constraints import MaxNorm, MinMaxNorm, NonNeg, UnitNorm

EPSILON = 1e-7
# A transposed convolution kernel (*kernel_size, filters, in_channels), scaled so
# that some slice norms fall below 1 and some above 2.
KERNEL = np.random.default_rng(0).normal(size=(2, 3, 4, 5)) * np.array([0.05, 0.3, 1, 2, 4])


def _slices(shape, axes):
    """Index tuples of every slice that spans `axes` (the others fixed)."""
    kept = [range(n) if i not in axes else [slice(None)] for i, n in enumerate(shape)]
    return itertools.product(*kept)


def _project(w, axes, new_norm):
    """Keras's rule, slice by slice: w * new_norm(norm) / (epsilon + norm)."""
    out = np.empty_like(w)
    for index in _slices(w.shape, axes):
        norm = math.sqrt(math.fsum(float(v) ** 2 for v in np.ravel(w[index])))
        out[index] = w[index] * new_norm(norm) / (EPSILON + norm)
    return out


@pytest.mark.parametrize("axis", [0, 2, [0, 1, 2], (0, 1, 2, 3), -1])
@pytest.mark.parametrize("max_value", [0.0, 1.0, 2.5])
def test_max_norm(axis, max_value):
    axes = {a % KERNEL.ndim for a in np.atleast_1d(axis)}
    expected = _project(KERNEL, axes, lambda n: min(n, max_value))
    got = MaxNorm(max_value, axis=axis)(KERNEL)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("axis", [0, [0, 1, 2]])
def test_min_max_norm(rate, axis):
    axes = set(np.atleast_1d(axis).tolist())
    expected = _project(KERNEL, axes, lambda n: rate * min(max(n, 0.5), 2.0) + (1 - rate) * n)
    got = MinMaxNorm(0.5, 2.0, rate=rate, axis=axis)(KERNEL)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


@pytest.mark.parametrize("axis", [0, 3, [1, 2]])
def test_unit_norm(axis):
    axes = set(np.atleast_1d(axis).tolist())
    expected = _project(KERNEL, axes, lambda n: 1.0)
    np.testing.assert_allclose(UnitNorm(axis=axis)(KERNEL), expected, rtol=1e-13)


def test_non_neg():
    got = NonNeg()(KERNEL)
    np.testing.assert_array_equal(got, np.where(KERNEL < 0, 0.0, KERNEL))


def test_unit_norm_of_a_zero_slice_stays_zero():
    np.testing.assert_array_equal(UnitNorm()(np.zeros((3, 2))), np.zeros((3, 2)))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("constraint", [MaxNorm(1.0), MinMaxNorm(0.5, 1.0), UnitNorm(), NonNeg()])
def test_dtype_is_kept(constraint, dtype):
    w = KERNEL.astype(dtype)
    got = constraint(w)
    assert got.dtype == dtype
    np.testing.assert_allclose(
        got,
        constraint(KERNEL),
        rtol=2e-3 if dtype == "float16" else 1e-6,
        atol=1e-3 if dtype == "float16" else 1e-7,
    )


def test_integer_weights_give_float32():
    assert UnitNorm()(np.array([[3], [4]])).dtype == np.float32
    assert NonNeg()(np.array([-1, 2])).tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MaxNorm(-1), r"argument max_value: expected a non-negative float. "
                              r"Received: max_value=-1"),
        (lambda: MaxNorm("2"), r"Received: max_value='2'"),
        (lambda: MinMaxNorm(2.0, 1.0), r"Expected `min_value` to be at most `max_value`. "
                                       r"Received: min_value=2.0, max_value=1.0"),
        (lambda: MinMaxNorm(rate=math.nan), r"Received: rate=nan"),
        (lambda: UnitNorm(axis=1.5), r"Expected `axis` to be an integer or a list of integers, "
                                     r"each in \[-64, 64\). Received: axis=1.5"),
        (lambda: MaxNorm(axis=["a"]), r"Received: axis=\['a'\]"),
        # beyond any array's dimensions: NumPy would raise OverflowError when applied
        (lambda: MaxNorm(axis=2**64), r"each in \[-64, 64\). Received: axis=18446744073709551616"),
        (lambda: UnitNorm(axis=[0, -65]), r"Received: axis=\[0, -65\]"),
    ],
)  # fmt: skip
def test_argument_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ------------------------------------------------------------------ serialization
# (names, round trips and errors of every registry: see test_initializers.py)


def test_axis_tuples_are_written_as_lists():
    assert UnitNorm(axis=(0, 1)).get_config() == {"axis": [0, 1]}


def test_keras_dict_loads():
    keras_dict = {
        "module": "keras.constraints",
        "class_name": "MinMaxNorm",
        "config": {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": [0, 1, 2]},
        "registered_name": None,
    }
    assert constraints.deserialize(keras_dict).axis == (0, 1, 2)
