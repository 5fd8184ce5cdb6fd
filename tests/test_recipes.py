"""The op's remembered recipes (convt.backends._recipes): same values, same errors, taken only
where the shapes decide everything."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convt
from convt import ops
from convt._shapes import plan_conv_transpose
from convt.backends import _recipes
from convt.backends import numpy as numpy_backend
from convt.prepared import PreparedKernel
from tests import reference


def _arrays(x_shape, w_shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)


def _general(x, w, **arguments):
    """The backend's general path, with nothing remembered."""
    args, _ = plan_conv_transpose(x.shape, w.shape, **arguments)
    return numpy_backend.conv_transpose(x, w, args)


def _by_recipe(x, w, **arguments):
    arguments = {"strides": 1, "padding": "valid", "output_padding": None,
                 "data_format": None, "dilation_rate": 1, **arguments}
    return _recipes.call(x, w, arguments)


# (input, kernel, arguments): the overlap-add forms a small call takes (tiles of kernel ==
# stride, compiled planes of few filters, compiled sums, NumPy's canvas on 1-D), a call of
# two workers, tap rows and phases.
CASES = [
    ((4, 10, 8, 16), (2, 2, 8, 16), {"strides": 2}),  # tiles: keras_doc's form
    ((3, 7, 7, 8), (5, 5, 1, 8), {"strides": 2, "padding": "same"}),  # planes: dcgan_out
    ((2, 5, 6, 8), (3, 3, 8, 8), {"strides": 2, "padding": "same"}),  # sums
    ((2, 5, 5, 8), (3, 3, 4, 8), {"strides": 2, "output_padding": 1}),  # zeros past the scatter
    ((2, 6, 5, 8), (3, 3, 8, 8), {"dilation_rate": 2}),
    ((2, 9, 8), (7, 4, 8), {"strides": 3, "padding": "same"}),  # 1-D
    ((1, 4, 4, 3, 4), (2, 3, 2, 2, 4), {"strides": (2, 1, 2)}),  # 3-D
    ((32, 7, 7, 64), (3, 3, 32, 64), {"strides": 2, "padding": "same"}),  # two workers
    ((4, 12, 12, 8), (3, 3, 64, 8), {"padding": "same"}),  # tap rows or phases
    ((8, 9, 9, 32), (3, 3, 64, 32), {"strides": 2, "padding": "same"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "w_shape", "arguments"), CASES)
def test_recipe_gives_the_general_paths_values(x_shape, w_shape, arguments, dtype):
    x, w = _arrays(x_shape, w_shape, dtype)
    expected = _general(x, w, **arguments)
    for _ in range(2):  # built, then remembered
        got = _by_recipe(x, w, **arguments)
        assert got is not None and got.dtype == dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ops.conv_transpose(x, w, **arguments), expected)


@settings(max_examples=60, deadline=None)
@given(
    rank=st.integers(1, 3),
    data=st.data(),
)
def test_recipe_matches_the_direct_loops(rank, data):
    spatial = data.draw(st.tuples(*[st.integers(1, 5)] * rank))
    kernel = data.draw(st.tuples(*[st.integers(1, 4)] * rank))
    strides = data.draw(st.tuples(*[st.integers(1, 3)] * rank))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    channels, filters = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    x, w = _arrays((2, *spatial, channels), (*kernel, filters, channels), np.float64,
                   seed=data.draw(st.integers(0, 2**16)))
    arguments = {"strides": strides, "padding": padding}
    got = ops.conv_transpose(x, w, **arguments)
    np.testing.assert_allclose(got, reference.conv_transpose_loops(x, w, **arguments),
                               rtol=1e-10, atol=1e-10)
    remembered = _by_recipe(x, w, **arguments)
    if remembered is not None:  # the op above took the recipe: the same values again
        np.testing.assert_array_equal(remembered, got)


def test_recipe_writes_every_output_element():
    """The tests' output buffers arrive full of NaN (tests/conftest.py); a recipe that left
    an element unwritten would show it."""
    x, w = _arrays((2, 5, 5, 8), (3, 3, 4, 8))
    assert np.isfinite(_by_recipe(x, w, strides=2, output_padding=1)).all()


@pytest.mark.parametrize(("change", "reason"), [
    (lambda x, w: (x.astype(np.float16), w.astype(np.float16)), "float16 is widened"),
    (lambda x, w: (x, w.astype(np.float64)), "mixed dtypes are promoted"),
    (lambda x, w: (x.astype(">f4"), w.astype(">f4")), "not native byte order"),
    (lambda x, w: (np.asfortranarray(x), w), "not C-contiguous"),
    (lambda x, w: (x.tolist(), w), "not an array"),
    (lambda x, w: (x[:0], w), "empty"),
])
def test_recipe_is_not_taken(change, reason):
    x, w = change(*_arrays((2, 5, 5, 8), (3, 3, 4, 8)))
    assert _by_recipe(x, w, strides=2) is None, reason


@pytest.mark.parametrize("arguments", [
    {"data_format": "channels_first"},
    {"strides": [2, 2]},  # a list: planned afresh each call, never a key
    {"strides": True},
    {"strides": np.int64(2)},
])
def test_recipe_is_not_taken_for_these_arguments(arguments):
    x, w = _arrays((2, 8, 5, 8), (3, 3, 4, 8))
    assert _by_recipe(x, w, **arguments) is None


def test_a_prepared_kernel_takes_the_recipe_unless_winograd_may(monkeypatch):
    x, w = _arrays((3, 7, 7, 8), (5, 5, 1, 8))  # one filter: never Winograd
    kernel = PreparedKernel(w)
    got = _by_recipe(x, kernel, strides=2, padding="same")
    assert got is not None
    np.testing.assert_array_equal(got, _general(x, w, strides=2, padding="same"))
    monkeypatch.setattr(numpy_backend, "_takes_winograd", lambda *a, **k: True)
    _recipes.forget()
    assert _by_recipe(x, kernel, strides=2, padding="same") is None


def test_recipe_is_not_taken_where_winograd_may_be(monkeypatch):
    monkeypatch.setattr(numpy_backend, "choose_algorithm", lambda *a, **k: "winograd")
    x, w = _arrays((2, 5, 5, 8), (3, 3, 4, 8))
    assert _by_recipe(x, w, strides=2) is None


@pytest.mark.parametrize(("strides", "message"), [
    (2.0, "Received: strides=2.0"),
    (0, "Received: strides=0"),
])
def test_an_argument_equal_to_a_remembered_one_still_raises(strides, message):
    """``2.0 == 2`` as a key: the recipe made for ``strides=2`` must not answer it."""
    x, w = _arrays((2, 5, 5, 8), (3, 3, 4, 8))
    ops.conv_transpose(x, w, strides=2)
    with pytest.raises(ValueError, match=message):
        ops.conv_transpose(x, w, strides=strides)


def test_recipe_raises_the_ops_error_for_a_wrong_kernel():
    x, w = _arrays((2, 5, 5, 8), (3, 3, 4, 7))
    with pytest.raises(ValueError, match="Received: input channels=8, kernel input channels=7"):
        ops.conv_transpose(x, w, strides=2)


def test_default_data_format_is_read_on_each_call():
    x, w = _arrays((2, 4, 6, 4), (3, 3, 2, 4))
    before = convt.image_data_format()
    channels_last = ops.conv_transpose(x, w, strides=2)
    try:
        convt.set_image_data_format("channels_first")
        channels_first = ops.conv_transpose(x, w, strides=2)
    finally:
        convt.set_image_data_format(before)
    assert channels_last.shape == (2, 9, 13, 2)
    assert channels_first.shape == (2, 2, 13, 9)  # 4 channels of 6 x 4, then 2 filters


def test_forget_makes_the_next_call_decide_afresh(monkeypatch):
    x, w = _arrays((2, 5, 5, 8), (3, 3, 4, 8))
    assert _by_recipe(x, w, strides=2) is not None
    monkeypatch.setattr(numpy_backend, "choose_algorithm", lambda *a, **k: "winograd")
    assert _by_recipe(x, w, strides=2) is not None  # remembered
    _recipes.forget()
    assert _by_recipe(x, w, strides=2) is None
