"""convt.ops.conv_transpose against the direct-loop reference and the adjoint identity."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convt
from convt import _shapes, ops
from convt._shapes import plan_conv_transpose, remembered_plan
from convt.backends import numpy as numpy_backend
from tests import hostile, reference


def _random_case(rng, rank, spatial, kernel_size, channels, filters, data_format, batch=2):
    x_shape = (batch, *spatial, channels) if data_format == "channels_last" else (
        batch, channels, *spatial)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((*kernel_size, filters, channels))
    return x, w


def _check_against_reference(x, w, **kwargs):
    expected = reference.conv_transpose_loops(x, w, **kwargs)
    got = ops.conv_transpose(x, w, **kwargs)
    assert got.shape == expected.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


# Every combination of padding, stride, output_padding and data format for a
# grid of input/kernel lengths, per rank: the bulk of the parametrized cases.
GRID_1D = [
    (length, k, s, padding, op, fmt)
    for length, k, s in itertools.product((1, 2, 5), (1, 2, 3, 5), (1, 2, 3, 4))
    for padding in ("valid", "same")
    for op in (None, s - 1)
    for fmt in ("channels_last", "channels_first")
]


@pytest.mark.parametrize("length,k,s,padding,op,fmt", GRID_1D)
def test_rank1_grid(length, k, s, padding, op, fmt):
    rng = np.random.default_rng(length * 100 + k * 10 + s)
    x, w = _random_case(rng, 1, (length,), (k,), 3, 2, fmt)
    _check_against_reference(x, w, strides=s, padding=padding, output_padding=op, data_format=fmt)


GRID_2D = [
    (spatial, kernel, strides, padding, op, fmt)
    for spatial, kernel, strides in [
        ((3, 4), (2, 2), (2, 2)),
        ((3, 4), (3, 3), (2, 2)),
        ((4, 3), (3, 2), (1, 3)),
        ((2, 5), (1, 4), (4, 1)),
        ((1, 1), (2, 3), (4, 4)),
        ((5, 2), (5, 5), (3, 2)),
        ((3, 3), (4, 4), (2, 2)),
        ((2, 2), (2, 2), (3, 3)),
    ]
    for padding in ("valid", "same")
    for op in (None, (0, 0), tuple(s - 1 for s in strides))
    for fmt in ("channels_last", "channels_first")
]


@pytest.mark.parametrize("spatial,kernel,strides,padding,op,fmt", GRID_2D)
def test_rank2_grid(spatial, kernel, strides, padding, op, fmt):
    rng = np.random.default_rng(sum(spatial) + 7 * sum(kernel))
    x, w = _random_case(rng, 2, spatial, kernel, 2, 3, fmt)
    _check_against_reference(
        x, w, strides=strides, padding=padding, output_padding=op, data_format=fmt
    )


GRID_3D = [
    (spatial, kernel, strides, padding, op, fmt)
    for spatial, kernel, strides in [
        ((2, 3, 2), (2, 2, 2), (2, 2, 2)),
        ((2, 2, 3), (3, 2, 1), (1, 2, 3)),
        ((3, 2, 2), (3, 3, 3), (2, 1, 2)),
    ]
    for padding in ("valid", "same")
    for op in (None, tuple(s - 1 for s in strides))
    for fmt in ("channels_last", "channels_first")
]


@pytest.mark.parametrize("spatial,kernel,strides,padding,op,fmt", GRID_3D)
def test_rank3_grid(spatial, kernel, strides, padding, op, fmt):
    rng = np.random.default_rng(sum(spatial) * sum(kernel))
    x, w = _random_case(rng, 3, spatial, kernel, 2, 2, fmt)
    _check_against_reference(
        x, w, strides=strides, padding=padding, output_padding=op, data_format=fmt
    )


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("dilation", [2, 3])
@pytest.mark.parametrize("strides", [1, 2])
def test_dilation(rank, padding, dilation, strides):
    """Dilation, also combined with strides > 1 (the op computes it; layers refuse it)."""
    rng = np.random.default_rng(rank + dilation)
    x, w = _random_case(rng, rank, (4,) * rank, (3,) * rank, 2, 2, "channels_last")
    _check_against_reference(x, w, strides=strides, padding=padding, dilation_rate=dilation)


@pytest.mark.parametrize("output_padding", [2, 3, 5])
def test_output_padding_beyond_stride_zero_extends(output_padding):
    rng = np.random.default_rng(0)
    x, w = _random_case(rng, 1, (3,), (2,), 1, 1, "channels_last")
    out = ops.conv_transpose(x, w, strides=2, output_padding=output_padding)
    np.testing.assert_allclose(out, reference.conv_transpose_loops(
        x, w, strides=2, output_padding=output_padding))
    assert np.all(out[:, 6:] == 0)


def test_same_puts_the_extra_element_on_the_right():
    # stride 2, kernel 4: full scatter of length 2*3 + 2 = 8, output 6; crop 1 left, 1 right.
    # stride 1, kernel 2: full scatter 4 + 1 = 5, output 4; crop 0 left, 1 right.
    x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    w = np.array([1.0, 10.0]).reshape(2, 1, 1)
    out = ops.conv_transpose(x, w, padding="same")[0, :, 0]
    np.testing.assert_array_equal(out, [1.0, 12.0, 23.0, 34.0])


def test_no_kernel_flip():
    x = np.zeros((1, 3, 1))
    x[0, 1, 0] = 1.0
    w = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    out = ops.conv_transpose(x, w)[0, :, 0]
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0, 3.0, 0.0])


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_adjoint_identity(rank, padding, fmt):
    """<conv_transpose(x, W), y> == <x, conv(y, W)> with an independent direct conv."""
    rng = np.random.default_rng(rank)
    spatial = (3, 4, 2)[:rank]
    strides = (2, 3, 1)[:rank]
    x, w = _random_case(rng, rank, spatial, (3, 2, 4)[:rank], 3, 2, fmt)
    out = ops.conv_transpose(x, w, strides=strides, padding=padding, data_format=fmt)
    y = rng.standard_normal(out.shape)
    back = reference.conv_loops(y, w, spatial, strides=strides, padding=padding, data_format=fmt)
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, back), rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_dtypes(dtype):
    rng = np.random.default_rng(1)
    x, w = _random_case(rng, 2, (5, 4), (3, 3), 4, 3, "channels_last")
    out = ops.conv_transpose(x.astype(dtype), w.astype(dtype), strides=2, padding="same")
    assert out.dtype == np.dtype(dtype)
    expected = reference.conv_transpose_loops(
        x.astype(dtype), w.astype(dtype), strides=2, padding="same")
    tolerance = {"float16": (1e-2, 1e-2), "float32": (1e-5, 1e-6), "float64": (1e-12, 1e-12)}
    rtol, atol = tolerance[dtype]
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=rtol, atol=atol)


def test_integer_inputs_are_computed_in_float32():
    out = ops.conv_transpose(np.ones((1, 2, 1), "int32"), np.ones((2, 1, 1), "int64"))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :, 0], [1, 2, 1])


def test_complex_inputs_are_refused():
    with pytest.raises(TypeError, match="Received: inputs.dtype=complex128"):
        ops.conv_transpose(np.ones((1, 2, 1), complex), np.ones((2, 1, 1)))


@pytest.mark.parametrize("ragged", ["inputs", "kernel"])
def test_ragged_arguments_are_named(ragged):
    arguments = {"inputs": np.ones((1, 2, 1)), "kernel": np.ones((2, 1, 1))}
    arguments[ragged] = [[[1.0], [2.0]], [[1.0]]]
    with pytest.raises(ValueError, match=rf"Expected `{ragged}` to be a rectangular array "
                                         rf"\(nested sequences of equal lengths\). "
                                         rf"Received: {ragged}=\[\[\[1.0\], \[2.0\]\], "
                                         rf"\[\[1.0\]\]\]"):
        ops.conv_transpose(**arguments)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="longdouble is float64 here")
def test_extended_precision_is_refused_by_name():
    # The compiled loops know float32 and float64 only; Keras has no wider float.
    with pytest.raises(TypeError, match=r"\(float16, float32, float64, int or bool\). "
                                        r"Received: inputs.dtype=float128"):
        ops.conv_transpose(np.ones((1, 4, 4, 2), np.longdouble), np.ones((3, 3, 2, 2)), 2)


@pytest.mark.parametrize(
    "x_shape,expected",
    [
        ((0, 4, 3), (0, 9, 2)),
        ((2, 0, 3), (2, 0, 2)),
        ((0, 0, 3), (0, 0, 2)),
    ],
)
def test_empty_inputs(x_shape, expected):
    out = ops.conv_transpose(np.zeros(x_shape), np.ones((3, 2, 3)), strides=2)
    assert out.shape == expected


def test_empty_spatial_axis_in_2d_same():
    out = ops.conv_transpose(np.zeros((1, 3, 0, 2)), np.ones((3, 3, 4, 2)), 2, "same")
    assert out.shape == (1, 6, 0, 4)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_chunking_gives_the_same_values(monkeypatch, fmt):
    """Force chunks over the batch and over rows: values must not change."""
    rng = np.random.default_rng(3)
    x, w = _random_case(rng, 2, (7, 5), (3, 3), 4, 3, fmt, batch=3)
    kwargs = dict(strides=2, padding="same", data_format=fmt)
    whole = ops.conv_transpose(x, w, **kwargs)
    for budget in (5 * 9 * 3 * 8 * 2, 9 * 3 * 8 * 5, 1):
        monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
        np.testing.assert_allclose(ops.conv_transpose(x, w, **kwargs), whole, rtol=1e-12)


@pytest.mark.parametrize("padding,op", [("valid", None), ("valid", 1), ("same", None), ("same", 1)])
def test_kernel_equal_stride_path(monkeypatch, padding, op):
    """The depth-to-space path, chunked over rows as well, matches the reference."""
    rng = np.random.default_rng(4)
    x, w = _random_case(rng, 2, (5, 3), (2, 2), 3, 2, "channels_last")
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", 3 * 4 * 2 * 8)
    _check_against_reference(x, w, strides=2, padding=padding, output_padding=op)


@settings(max_examples=60, deadline=None)
@given(
    rank=st.integers(1, 3),
    data=st.data(),
)
def test_property_matches_reference(rank, data):
    spatial = data.draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank))
    kernel = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    strides = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    dilation = data.draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    padding = data.draw(st.sampled_from(["valid", "same", "SAME"]))
    op = data.draw(st.none() | st.just([data.draw(st.integers(0, s - 1)) for s in strides]))
    fmt = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    channels, filters, batch = data.draw(st.tuples(*(st.integers(1, 3),) * 2, st.integers(0, 2)))
    rng = np.random.default_rng(0)
    x, w = _random_case(rng, rank, spatial, kernel, channels, filters, fmt, batch=batch)
    kwargs = dict(strides=strides, padding=padding.lower(), output_padding=op,
                  data_format=fmt, dilation_rate=dilation)
    expected = reference.conv_transpose_loops(x, w, **kwargs)
    got = ops.conv_transpose(x, w, **{**kwargs, "padding": padding})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert ops.conv_transpose_output_shape(x.shape, w.shape, **kwargs) == got.shape
    # the tap-at-a-time reference (tools/fuzz_numpy_op.py's) is itself the loops
    np.testing.assert_allclose(reference.conv_transpose_taps(x, w, **kwargs), expected,
                               rtol=1e-12, atol=1e-12)


def test_output_shape_keeps_none():
    shape = ops.conv_transpose_output_shape((None, None, 8, 3), (3, 3, 5, 3), strides=2,
                                            padding="same")
    assert shape == (None, None, 16, 5)


def test_output_shape_channels_first():
    shape = ops.conv_transpose_output_shape((2, 3, 4, 5), (2, 3, 6, 3), strides=(2, 3),
                                            data_format="channels_first")
    assert shape == (2, 6, 8, 15)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(strides=0), r"`strides` argument must be a tuple of 1 integers.*Received: strides=0"),
        (dict(strides=(1, 2)), r"Received: strides=\(1, 2\)"),
        (dict(strides=1.5), r"Received: strides=1.5"),
        (dict(padding="causal"), r"one of 'valid', 'same'.*Received: padding='causal'"),
        (dict(padding=3), r"Received: padding=3"),
        (dict(data_format="NHWC"), r"Received: data_format='NHWC'"),
        (dict(dilation_rate=0), r"Received: dilation_rate=0"),
        (dict(output_padding=-1), r"`value >= 0`.*Received: output_padding=-1"),
        (dict(output_padding="1"), r"Received: output_padding='1'"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ops.conv_transpose(np.ones((1, 3, 2)), np.ones((2, 4, 2)), **kwargs)


@pytest.mark.parametrize(
    "x_shape,w_shape,message",
    [
        ((3, 2), (2, 4, 2), r"rank 3, 4 or 5.*Received: inputs.shape=\(3, 2\)"),
        ((1, 2, 2, 2, 2, 2, 2), (2,) * 7, r"Received: inputs.shape="),
        ((1, 3, 2), (2, 2, 4, 2), r"rank of `inputs` \(3\).*Received: kernel.shape=\(2, 2, 4, 2\)"),
        ((1, 3, 5), (2, 4, 2), r"Received: input channels=5, kernel input channels=2"),
        ((1, 5, 3), (2, 4, 2), r"Received: input channels=3, kernel input channels=2"),
        ((1, 3, 2), (0, 4, 2), r"Received: kernel_size=\(0,\)"),
    ],
)
def test_shape_errors(x_shape, w_shape, message):
    with pytest.raises(ValueError, match=message):
        ops.conv_transpose(np.ones(x_shape), np.ones(w_shape))


@pytest.mark.parametrize(
    ("name", "value", "plain"),
    [("strides", 2.0, 2), ("strides", True, 1), ("strides", (2.0,), (2,)),
     ("dilation_rate", (True,), (1,)), ("output_padding", 1.0, 1),
     ("output_padding", (1.0,), (1,))],
)
def test_a_remembered_plan_never_accepts_an_equal_non_int(name, value, plain):
    x, w = np.ones((1, 3, 1)), np.ones((3, 1, 1))
    kwargs = {"strides": 2} if name == "output_padding" else {}
    ops.conv_transpose(x, w, **kwargs, **{name: plain})
    with pytest.raises(ValueError, match=re.escape(f"Received: {name}={value!r}")):
        ops.conv_transpose(x, w, **kwargs, **{name: value})


@pytest.mark.parametrize(("plain", "dimension"), [(3, 3.0), (1, True)], ids=["float", "bool"])
def test_a_remembered_plan_never_accepts_an_equal_non_int_dimension(plain, dimension):
    remembered_plan((1, plain, 1), (plain, 1, 1))
    with pytest.raises(ValueError, match=re.escape(f"inputs_shape=(1, {dimension!r}, 1)")):
        remembered_plan((1, dimension, 1), (plain, 1, 1))
    with pytest.raises(ValueError, match="non-negative integers"):
        remembered_plan((1, plain, 1), (dimension, 1, 1))


def test_a_remembered_plan_follows_the_default_data_format():
    x, w = np.ones((1, 3, 2)), np.ones((3, 1, 2))
    assert ops.conv_transpose(x, w).shape == (1, 5, 1)
    convt.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="data_format='channels_first'"):
            ops.conv_transpose(x, w)
    finally:
        convt.set_image_data_format("channels_last")


def test_channels_first_channel_check():
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        ops.conv_transpose(np.ones((1, 3, 5)), np.ones((2, 4, 2)), data_format="channels_first")


def test_zero_d_integer_arguments_count_as_ints():
    x, w = np.ones((1, 3, 1)), np.ones((3, 1, 1))
    expected = ops.conv_transpose(x, w, strides=2, dilation_rate=1, output_padding=1)
    got = ops.conv_transpose(x, w, strides=np.array(2), dilation_rate=np.int8(1),
                             output_padding=[np.array(1)])
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"Received: strides=array\(2.5\)"):
        ops.conv_transpose(x, w, strides=np.array(2.5))


@pytest.mark.parametrize(
    "shapes,message",
    [
        ((None, (3, 1, 1)), r"Expected `inputs` shape to be a sequence of dimensions. "
                            r"Received: inputs.shape=None"),
        (((1, 3, 1), 3), r"Expected `kernel` shape to be a sequence of dimensions. "
                         r"Received: kernel.shape=3"),
    ],
)
def test_output_shape_of_non_sequences_is_a_value_error(shapes, message):
    with pytest.raises(ValueError, match=message):
        ops.conv_transpose_output_shape(*shapes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_no_tap_reaches_gives_zeros(dtype):
    # Stride 2 with dilation 2: both taps land outside the one-element "same" window.
    x, w = np.ones((1, 1, 1), dtype), np.ones((2, 2, 1), dtype)
    out = ops.conv_transpose(x, w, strides=2, padding="same", output_padding=0, dilation_rate=2)
    np.testing.assert_array_equal(out, np.zeros((1, 1, 2), dtype))


@pytest.mark.parametrize("rank", [1, 2])
def test_huge_stride_is_answered_without_walking_its_phases(rank):
    # 10**9 phases per axis; an algorithm that walked them would not return for minutes.
    x, w = np.ones((1,) * (rank + 1) + (2,), np.float32), np.ones((3,) * rank + (2, 2), np.float32)
    out = ops.conv_transpose(x, w, strides=10**9, output_padding=0)
    np.testing.assert_array_equal(out, np.full((1,) + (3,) * rank + (2,), 2, np.float32))
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=10**9, output_padding=0)
    plans = args.axis_plans((1,) * rank)
    assert numpy_backend.choose_algorithm(plans, 2, 2, 1) == "scatter"


def test_absurd_output_is_refused_before_allocation():
    with pytest.raises(ValueError, match="would have more than"):
        ops.conv_transpose_output_shape((2**20, 2**20, 2**20, 1), (1, 1, 1, 1),
                                        strides=2**10)
    # no element at all, but an axis NumPy cannot make ("Maximum allowed dimension exceeded")
    with pytest.raises(ValueError, match=r"would have more than 1099511627776 elements \(or an "
                                         r"axis longer than that\). Received: output_shape="
                                         r"\(0, 9223372036854775814, 2\)"):
        ops.conv_transpose(np.ones((0, 4, 3)), np.ones((3, 2, 3)), output_padding=2**63)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_batch_and_channels_of_one(rank, padding):
    rng = np.random.default_rng(rank)
    x, w = _random_case(rng, rank, (3,) * rank, (2,) * rank, 1, 1, "channels_last", batch=1)
    _check_against_reference(x, w, strides=3, padding=padding)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_the_point_reference_is_the_loops_at_each_point(rank, padding):
    # reference.conv_transpose_at checks the benchmark's large cases; it must itself be right.
    rng = np.random.default_rng(rank)
    x, w = _random_case(rng, rank, (3,) * rank, (3,) * rank, 2, 3, "channels_first")
    kwargs = dict(strides=2, padding=padding, output_padding=1, data_format="channels_first",
                  dilation_rate=1)
    full = np.moveaxis(reference.conv_transpose_loops(x, w, **kwargs), 1, -1)
    positions = list(itertools.product(range(2), *(range(n) for n in full.shape[1:-1])))
    at = reference.conv_transpose_at(x, w, positions, **kwargs)
    np.testing.assert_allclose(at, np.stack([full[p] for p in positions]), rtol=1e-12)


def test_an_output_larger_than_the_machine_is_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(_shapes, "PHYSICAL_MEMORY", 2**34)
    x, w = np.ones((1, 3, 3, 2), "float32"), np.ones((2, 2, 4, 2), "float32")
    with pytest.raises(ValueError, match=r"Expected an output that fits twice in this machine's "
                                         r"17179869184 bytes of memory. Received: output_shape="
                                         r"\(1, 300000, 300000, 4\), 1440000000000 bytes"):
        ops.conv_transpose(x, w, strides=10**5)
    broadcast = np.broadcast_to(np.float32(1), (2**12, 2**10, 2**10, 2))  # 4 bytes held
    with pytest.raises(ValueError, match=r"Expected an input that fits twice in this machine's "
                                         r"17179869184 bytes of memory. Received: input_shape="
                                         r"\(4096, 1024, 1024, 2\), 34359738368 bytes"):
        ops.conv_transpose(broadcast, w)
    kernel = np.broadcast_to(np.float32(1), (2**20, 2**12, 1, 2))  # found by the property test
    with pytest.raises(ValueError, match=r"Expected a kernel that fits twice in this machine's "
                                         r"17179869184 bytes of memory. Received: kernel_shape="
                                         r"\(1048576, 4096, 1, 2\), 34359738368 bytes"):
        ops.conv_transpose(np.ones((0, 4, 4, 2), "float32"), kernel)
    monkeypatch.setattr(_shapes, "PHYSICAL_MEMORY", None)  # a system that does not say
    assert ops.conv_transpose(x, w, strides=2).shape == (1, 6, 6, 4)


@pytest.mark.parametrize(("x_dtype", "w_dtype", "expected"), [
    ("int32", "float32", "float32"), ("int64", "float16", "float16"),
    ("bool", "float64", "float64"), ("int8", "int16", "float32"),
])
def test_integers_take_the_float_dtype_of_the_other_argument(x_dtype, w_dtype, expected):
    """An integer array does not widen a float one (NumPy's rule would make int32 with
    float32 float64); the torch backend returns the same dtypes."""
    got = ops.conv_transpose(np.ones((1, 3, 2), x_dtype), np.ones((3, 1, 2), w_dtype))
    assert got.dtype == expected


def test_inputs_without_a_common_type_are_a_type_error():
    with pytest.raises(TypeError, match=r"Expected real-valued `inputs` and `kernel` .* "
                                        r"Received: inputs.dtype=datetime64\[s\]"):
        ops.conv_transpose(np.ones((1, 3, 2), "datetime64[s]"), np.ones((3, 1, 2)))


HOSTILE_ARRAYS = [
    np.ones((1, 4, 3), "float32"), np.ones((2, 3, 3, 2)), np.ones((1, 2, 2, 2, 1), "float16"),
    np.ones((0, 4, 3)), np.ones((1, 4, 0), "float32"), np.ones(3), np.ones(()),
    np.ones((1, 4, 3), complex), np.ones((1, 4, 3), object), np.full((1, 4, 3), "a"),
    np.ones((1, 4, 3), bool), np.ones((1, 4, 3), np.int64), np.full((1, 4, 3), np.nan),
    np.ones((1, 4, 3), np.longdouble), np.ones((1, 4, 3), "m8[s]"), [[[1.0, 2.0, 3.0]]], "x",
    None, np.ones((1, 4, 3), "float32")[:, ::-1],
    np.broadcast_to(np.float32(1), (2**20, 2**12, 3)), np.ones((3, 2, 3), "float32"),
    np.ones((2, 2, 1, 2)), np.ones((3, 0, 3)), np.ones((2**16, 2, 3), "float32"),
]
"""Inputs and kernels of every kind, valid ones among them so that arguments get checked."""


@settings(max_examples=300, deadline=None)
@given(inputs=st.sampled_from(HOSTILE_ARRAYS), kernel=st.sampled_from(HOSTILE_ARRAYS),
       arguments=st.dictionaries(st.sampled_from(hostile.OP_ARGUMENTS),
                                 st.sampled_from(hostile.HOSTILE_VALUES), max_size=3))
def test_hostile_op_calls_compute_or_are_refused_clearly(inputs, kernel, arguments):
    hostile.result_or_clear_refusal(lambda: ops.conv_transpose(inputs, kernel, **arguments))
