"""Activations against scalar float64 formulas written here with `math`, plus names and errors."""

import math

import numpy as np
import pytest

from convt import activations

GRID = np.concatenate([np.linspace(-8.0, 8.0, 161), [-1e-9, 0.0, 1e-9, -0.46875, 4.0]])

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


# One independent scalar definition per elementwise activation (Keras's docstrings).
SCALAR = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "leaky_relu": lambda v: v if v >= 0 else 0.2 * v,
    "relu6": lambda v: min(max(v, 0.0), 6.0),
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "tanh": math.tanh,
    "gelu": lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))),
    "elu": lambda v: v if v > 0 else math.expm1(v),
    "selu": lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v)),
    "softplus": _softplus,
    "softsign": lambda v: v / (1 + abs(v)),
    "silu": lambda v: v / (1 + math.exp(-v)),
    "hard_sigmoid": lambda v: min(max(v + 3, 0.0), 6.0) / 6,
    "hard_silu": lambda v: v * min(max(v + 3, 0.0), 6.0) / 6,
    "hard_tanh": lambda v: min(max(v, -1.0), 1.0),
    "exponential": math.exp,
    "mish": lambda v: v * math.tanh(_softplus(v)),
    "tanh_shrink": lambda v: v - math.tanh(v),
    "celu": lambda v: max(v, 0.0) + min(0.0, math.expm1(v)),
    "log_sigmoid": lambda v: -_softplus(-v),
    "sparse_sigmoid": lambda v: 0.0 if v <= -1 else 1.0 if v >= 1 else (v + 1) / 2,
    "sparse_plus": lambda v: 0.0 if v <= -1 else v if v >= 1 else (v + 1) ** 2 / 4,
    "squareplus": lambda v: (v + math.sqrt(v * v + 4)) / 2,
    "soft_shrink": lambda v: v - 0.5 if v > 0.5 else v + 0.5 if v < -0.5 else 0.0,
    "hard_shrink": lambda v: v if abs(v) > 0.5 else 0.0,
}
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
AXIS_FUNCTIONS = ["softmax", "log_softmax", "glu"]
ALL_NAMES = [*SCALAR, *AXIS_FUNCTIONS, *ALIASES]


def _reference(name, x):
    return np.array([SCALAR[name](float(v)) for v in np.ravel(x)]).reshape(np.shape(x))


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_float64_matches_scalar_formula(name):
    got = getattr(activations, name)(GRID)
    np.testing.assert_allclose(got, _reference(name, GRID), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(set(SCALAR) - {"linear"}))
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_low_precision_keeps_dtype_and_accuracy(name, dtype):
    x = GRID.astype(dtype)
    got = getattr(activations, name)(x)
    assert got.dtype == dtype
    reference = _reference(name, x.astype(np.float64)).astype(dtype)
    tolerance = 2e-3 if dtype == "float16" else 2e-6
    np.testing.assert_allclose(got.astype(np.float64), reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", sorted(set(SCALAR) - {"linear"}) + ["softmax", "log_softmax"])
def test_integer_input_gives_float32(name):
    assert getattr(activations, name)(np.array([[-2, 0, 3]])).dtype == np.float32


def test_linear_returns_its_input_unchanged():
    x = np.array([1, 2])
    assert activations.linear(x) is x


def test_exact_gelu_matches_math_erfc_far_into_both_tails():
    x = np.concatenate([np.linspace(-40, 40, 4001), np.geomspace(1e-300, 1e3, 200)])
    x = np.concatenate([x, -x])
    expected = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(activations.gelu(x), expected, rtol=1e-12, atol=0)


def test_gelu_tanh_approximation():
    x = GRID
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(activations.gelu(x, approximate=True), expected, rtol=1e-12)
    assert np.max(np.abs(activations.gelu(x, approximate=True) - activations.gelu(x))) < 1e-3


def test_gelu_of_nan_and_infinity():
    got = activations.gelu(np.array([np.nan, np.inf]))
    assert np.isnan(got[0]) and got[1] == np.inf


def _keras_relu(v, negative_slope, max_value, threshold):
    """Keras's ReLU.static_call, one value at a time."""
    out = v if v > threshold else 0.0
    if max_value is not None:
        out = min(max(out, 0.0), max_value)
    return out - negative_slope * max(threshold - v, 0.0)


@pytest.mark.parametrize("negative_slope", [0.0, 0.3])
@pytest.mark.parametrize("max_value", [None, 6.0, 2.5])
@pytest.mark.parametrize("threshold", [0.0, 1.5, -1.0])
def test_relu_options_follow_keras(negative_slope, max_value, threshold):
    got = activations.relu(
        GRID, negative_slope=negative_slope, max_value=max_value, threshold=threshold
    )
    expected = [_keras_relu(float(v), negative_slope, max_value, threshold) for v in GRID]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_relu_keras_docstring_examples():
    x = [-10.0, -5.0, 0.0, 5.0, 10.0]
    assert activations.relu(x).tolist() == [0, 0, 0, 5, 10]
    assert activations.relu(x, negative_slope=0.5).tolist() == [-5, -2.5, 0, 5, 10]
    assert activations.relu(x, max_value=5.0).tolist() == [0, 0, 0, 5, 5]
    assert activations.relu(x, threshold=5.0).tolist() == [0, 0, 0, 0, 10]


def test_options_are_keyword_only_where_swappable():
    with pytest.raises(TypeError):
        activations.relu([1.0], 0.5)
    with pytest.raises(TypeError):
        activations.gelu([1.0], True)


def test_parameters_of_elu_celu_leaky_relu_and_shrinks():
    x = GRID
    np.testing.assert_allclose(activations.elu(x, 0.5), np.where(x > 0, x, 0.5 * np.expm1(x)))
    np.testing.assert_allclose(
        activations.celu(x, alpha=2.0),
        [max(v, 0.0) + min(0.0, 2.0 * math.expm1(v / 2.0)) for v in x],
    )
    np.testing.assert_allclose(activations.leaky_relu(x, 0.01), np.where(x >= 0, x, 0.01 * x))
    np.testing.assert_allclose(activations.hard_shrink(x, 2.0), np.where(abs(x) > 2, x, 0))
    np.testing.assert_allclose(
        activations.soft_shrink(x, threshold=2.0), np.sign(x) * np.maximum(abs(x) - 2, 0)
    )
    np.testing.assert_allclose(activations.squareplus(x, b=1.0), (x + np.sqrt(x * x + 1)) / 2)


def _softmax_reference(rows):
    out = []
    for row in rows:
        exps = [math.exp(v - max(row)) for v in row]
        out.append([e / math.fsum(exps) for e in exps])
    return np.array(out)


def test_softmax_and_log_softmax_along_each_axis():
    x = np.random.default_rng(0).normal(size=(3, 5)) * 10
    for axis in (0, 1, -1):
        rows = np.moveaxis(x, axis, -1)
        expected = np.moveaxis(_softmax_reference(rows), -1, axis)
        np.testing.assert_allclose(activations.softmax(x, axis=axis), expected, rtol=1e-12)
        np.testing.assert_allclose(
            activations.log_softmax(x, axis), np.log(expected), rtol=1e-12, atol=1e-12
        )


def test_softmax_is_stable_for_huge_logits():
    got = activations.softmax(np.array([1000.0, 1001.0, -1000.0], dtype=np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [1 / (1 + math.e), math.e / (1 + math.e), 0.0], rtol=1e-6)
    assert np.isfinite(activations.log_softmax(np.array([1e4, -1e4]))).all()


def test_glu_gates_the_first_half_with_the_second():
    x = np.random.default_rng(1).normal(size=(2, 6))
    expected = x[:, :3] / (1 + np.exp(-x[:, 3:]))
    np.testing.assert_allclose(activations.glu(x), expected, rtol=1e-12)
    np.testing.assert_allclose(activations.glu(x.T, axis=0), expected.T, rtol=1e-12)


def test_glu_refuses_an_odd_axis():
    with pytest.raises(
        ValueError, match=r"divisible by 2. Received: x.shape=\(2, 3\) with axis=-1"
    ):
        activations.glu(np.ones((2, 3)))


def test_stability_at_extremes_without_warnings():
    x = np.array([-1e4, -100.0, 100.0, 1e4])
    tiny = math.exp(-100) / (1 + math.exp(-100))
    assert np.array_equal(activations.sigmoid(x), [0.0, tiny, 1.0, 1.0])
    np.testing.assert_allclose(activations.softplus(x), [0.0, math.exp(-100), 100.0, 1e4])
    np.testing.assert_allclose(activations.elu(x)[:2], [-1.0, -1.0])
    np.testing.assert_allclose(activations.mish(x)[2:], x[2:])


# ------------------------------------------------------------------ names and serialization
# (errors shared by every registry: see test_initializers.py)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_name_round_trips(name):
    fn = activations.get(name)
    assert fn is getattr(activations, name)
    canonical = ALIASES.get(name, name)
    assert activations.serialize(fn) == canonical
    assert activations.deserialize(canonical) is fn
    assert activations.deserialize({"class_name": name}) is fn
    keras_dict = {
        "module": "keras.src.activations.activations",
        "class_name": "function",
        "config": canonical,
        "registered_name": canonical,
    }
    assert activations.get(keras_dict) is fn
    assert activations.deserialize({**keras_dict, "module": "keras.activations"}) is fn


def test_swish_and_hard_swish_are_the_silu_functions():
    assert activations.swish is activations.silu
    assert activations.hard_swish is activations.hard_silu


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"class_name": "relu", "config": {"alpha": 1.0}}, r"Expected no config .*'relu'"),
        ({"class_name": "relu", "shared_object_id": 3}, r"no keys beyond"),
        ({"config": "relu"}, r"`class_name` key"),
        ({"class_name": "function", "config": "relu", "registered_name": "x>relu"},
         r"Received: registered_name='x>relu'"),
        ({"class_name": "function", "config": {"name": "relu"}}, r"Unknown activation function"),
        ({"class_name": "relu", "module": "keras.layers"}, r"Received: module='keras.layers'"),
    ],
)  # fmt: skip
def test_malformed_dicts_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        activations.deserialize(config)
