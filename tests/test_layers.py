"""The layer contract of the seeds: build, call, shapes, config, weights, losses, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convt
from convt import constraints, regularizers
from tests import hostile, reference

LAYERS = {1: convt.Conv1DTranspose, 2: convt.Conv2DTranspose, 3: convt.Conv3DTranspose}


def _input(rank, batch=2, spatial=3, channels=4, data_format="channels_last", seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, *(spatial,) * rank, channels) if data_format == "channels_last" else (
        batch, channels, *(spatial,) * rank)
    return rng.standard_normal(shape).astype("float32")


def test_seed_example():
    x = np.random.rand(4, 10, 8, 128)
    y = convt.Conv2DTranspose(32, 2, 2, activation="relu")(x)
    assert y.shape == (4, 20, 16, 32)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert (y >= 0).all()


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_call_equals_reference_plus_bias_and_activation(rank, data_format, padding):
    layer = LAYERS[rank](5, 3, strides=2, padding=padding, data_format=data_format,
                         activation="tanh", bias_initializer="random_normal")
    x = _input(rank, data_format=data_format)
    y = layer(x)
    kernel, bias = layer.get_weights()
    expected = reference.conv_transpose_loops(x, kernel, strides=2, padding=padding,
                                              data_format=data_format)
    bias_shape = (5,) if data_format == "channels_last" else (5,) + (1,) * rank
    np.testing.assert_allclose(y, np.tanh(expected + bias.reshape(bias_shape)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_build_creates_keras_layout_weights(rank):
    layer = LAYERS[rank](6, 2)
    assert not layer.built and layer.weights == []
    layer.build((None, *(7,) * rank, 3))
    assert layer.built
    assert layer.kernel.shape == (*(2,) * rank, 6, 3)
    assert layer.bias.shape == (6,)
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert layer.count_params() == 2**rank * 6 * 3 + 6
    assert layer.variables == layer.weights == layer.trainable_weights


def test_use_bias_false():
    layer = convt.Conv1DTranspose(2, 3, use_bias=False)
    layer.build((1, 4, 5))
    assert layer.bias is None and len(layer.weights) == 1
    assert layer.count_params() == 3 * 2 * 5


def test_count_params_unbuilt():
    layer = convt.Conv2DTranspose(2, 3, name="up")
    with pytest.raises(ValueError, match="call `count_params` on layer 'up', but the layer "
                                         "isn't built"):
        layer.count_params()


@pytest.mark.parametrize(
    "rank,kwargs,shape,expected",
    [
        (1, dict(strides=2), (None, 10, 3), (None, 21, 4)),
        (1, dict(strides=2, padding="same"), (None, None, 3), (None, None, 4)),
        (2, dict(strides=(2, 3), padding="same"), (8, 5, 7, 3), (8, 10, 21, 4)),
        (2, dict(strides=2, output_padding=1), (None, 5, 5, 3), (None, 12, 12, 4)),
        (2, dict(data_format="channels_first", strides=2), (1, 3, 5, 6), (1, 4, 11, 13)),
        (3, dict(strides=2, padding="same", output_padding=1), (2, 4, 4, 4, 3), (2, 8, 8, 8, 4)),
        (3, dict(dilation_rate=2), (None, 4, None, 4, 3), (None, 8, None, 8, 4)),
    ],
)
def test_compute_output_shape(rank, kwargs, shape, expected):
    layer = LAYERS[rank](4, 3, **kwargs)
    assert layer.compute_output_shape(shape) == expected
    assert isinstance(layer.compute_output_shape(shape), tuple)


def test_compute_output_shape_wrong_rank():
    with pytest.raises(ValueError, match=r"Received: inputs_shape=\(1, 2, 3\)"):
        convt.Conv2DTranspose(4, 3).compute_output_shape((1, 2, 3))


CONFIG_VARIANTS = [
    dict(),
    dict(strides=2, padding="SAME"),
    dict(strides=(2, 3), output_padding=(1, 0)),
    dict(data_format="channels_first"),
    dict(dilation_rate=(2, 1)),
    dict(activation="relu"),
    dict(activation="leaky_relu", use_bias=False),
    dict(kernel_initializer="he_normal", bias_initializer="ones"),
    dict(kernel_initializer={"class_name": "RandomUniform",
                             "config": {"minval": -1.0, "maxval": 1.0, "seed": 3}}),
    dict(kernel_regularizer="l2", bias_regularizer=regularizers.L1L2(l1=0.1, l2=0.2)),
    dict(activity_regularizer=regularizers.L1(0.5)),
    dict(kernel_constraint="non_neg", bias_constraint=constraints.MaxNorm(3.0)),
    dict(name="decoder_up", trainable=False, dtype="float64"),
    dict(input_shape=(5, 6, 3)),
]


@pytest.mark.parametrize("kwargs", CONFIG_VARIANTS)
def test_config_round_trip(kwargs):
    layer = convt.Conv2DTranspose(7, (3, 2), **kwargs)
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == json.loads(json.dumps(config))
    clone = convt.Conv2DTranspose.from_config(json.loads(json.dumps(config)))
    again = clone.get_config()
    assert json.dumps(again, sort_keys=True) == json.dumps(config, sort_keys=True)


def test_config_contents_match_keras():
    config = convt.Conv2DTranspose(8, 3, strides=2, padding="same", name="t").get_config()
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2)
    assert config["padding"] == "same" and config["output_padding"] is None
    assert config["data_format"] == "channels_last" and config["dilation_rate"] == (1, 1)
    assert config["activation"] == "linear" and config["use_bias"] is True
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["bias_initializer"]["class_name"] == "Zeros"
    assert config["dtype"]["config"] == {"name": "float32"}
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "bias_constraint"):
        assert config[key] is None


def test_from_config_refuses_unknown_keys():
    config = convt.Conv1DTranspose(2, 3).get_config()
    config["module_path"] = "os.system"
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to "
                                         "Conv1DTranspose: {'module_path': 'os.system'}"):
        convt.Conv1DTranspose.from_config(config)


def test_integer_filters_of_numpy_are_ints():
    for filters in (np.int64(3), np.array(3), np.array(3, np.uint8)):
        layer = convt.Conv2DTranspose(filters, 2)
        assert layer.filters == 3 and type(layer.filters) is int
        assert layer.get_config()["filters"] == 3


def test_ragged_inputs_are_named():
    layer = convt.Conv1DTranspose(2, 3)
    with pytest.raises(ValueError, match=r"Expected `inputs` to be a rectangular array \(nested "
                                         r"sequences of equal lengths\). Received: inputs=\[\[\["):
        layer([[[1.0], [2.0]], [[1.0]]])
    assert not layer.built
    layer.build((None, 4, 1))
    kernel, bias = layer.get_weights()
    with pytest.raises(ValueError, match=r"Expected `weights` to be a rectangular array .*"
                                         r"Received: weights=\[\[1, 2\], \[3\]\]"):
        layer.set_weights([kernel, [[1, 2], [3]]])
    np.testing.assert_array_equal(layer.get_weights()[0], kernel)


def test_weights_round_trip_and_checks():
    layer = convt.Conv2DTranspose(3, 2, name="w")
    layer.build((None, 4, 4, 2))
    kernel = np.arange(2 * 2 * 3 * 2, dtype="float32").reshape(2, 2, 3, 2)
    layer.set_weights([kernel, np.ones(3)])
    got = layer.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    assert got[1].dtype == np.float32
    got[0][...] = -1  # copies: the layer must not change
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
    with pytest.raises(ValueError, match="weight list of length 1, but the layer was "
                                         "expecting 2 weights"):
        layer.set_weights([kernel])
    with pytest.raises(ValueError, match=r"Layer w weight shape \(3,\) is not compatible "
                                         r"with provided weight shape \(4,\)"):
        layer.set_weights([kernel * 0, np.zeros(4)])
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)  # nothing half-set
    with pytest.raises(ValueError, match="Expected weight 'bias' of layer 'w' to hold real "
                                         r"numbers \(float, int or bool\). Received: dtype=<U1"):
        layer.set_weights([kernel * 0, np.array(["a", "b", "c"])])
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)  # nor by a later bad dtype
    for weights in (None, 3, "ab", {"kernel": kernel}):  # Python's "not iterable" before
        with pytest.raises(TypeError, match=r"Expected `weights` to be a list of arrays, one "
                                            r"per weight of the layer. Received: weights="):
            layer.set_weights(weights)


def test_trainable_false_moves_weights():
    layer = convt.Conv1DTranspose(2, 2)
    layer.build((None, 3, 1))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert layer.trainable_variables == [] and layer.non_trainable_variables == layer.weights
    with pytest.raises(ValueError, match=r"Expected `trainable` to be a boolean. "
                                         r"Received: trainable='no' \(of type str\)"):
        layer.trainable = "no"  # a setter too: its config would not load again
    assert layer.trainable is False


@pytest.mark.parametrize("value", [None, ["a", "b"], np.ones(1), np.ones((2, 1))])
def test_initializer_returning_other_than_its_shape_builds_nothing(value):
    layer = convt.Conv1DTranspose(2, 3, bias_initializer=lambda shape, dtype=None: value)
    with pytest.raises(ValueError, match=r"Expected `bias_initializer` to return numbers of "
                                         r"shape \(2,\). Received: "):
        layer(np.ones((1, 4, 1)))
    assert not layer.built and layer.weights == [] and layer.kernel is None
    layer.bias_initializer = convt.initializers.get("zeros")
    assert layer(np.ones((1, 4, 1))).shape == (1, 6, 2)


def test_from_config_refuses_absurd_weights_before_allocating():
    config = dict(filters=1, kernel_size=[100000, 100000], batch_input_shape=[None, 4, 4, 1])
    with pytest.raises(ValueError, match=r"Expected the model's weights to fit in the cap of a "
                                         r"config \(at most 1073741824 elements\). Received: "
                                         r"weight shapes \[\(100000, 100000, 1, 1\), \(1,\)\]"):
        convt.Conv2DTranspose.from_config(config)
    config["kernel_size"] = [3, 3]
    assert convt.Conv2DTranspose.from_config(config).kernel.shape == (3, 3, 1, 1)


def test_names_are_unique_and_checked():
    first, second = convt.Conv3DTranspose(1, 1), convt.Conv3DTranspose(1, 1)
    assert first.name.startswith("conv3d_transpose") and first.name != second.name
    assert convt.Convolution2DTranspose(1, 1).name.startswith("conv2d_transpose")
    with pytest.raises(ValueError, match="cannot contain character `/`. Received: name='a/b'"):
        convt.Conv2DTranspose(1, 1, name="a/b")


@pytest.mark.parametrize("argument", ["kernel_regularizer", "bias_regularizer",
                                      "activity_regularizer"])
def test_a_rank_two_regularizer_is_refused_when_the_layer_is_made(argument):
    """OrthogonalRegularizer needs rank-2 weights: Keras fails at the first penalty, convt's
    layers (NumPy and torch alike: the torch test checks its message too) at once."""
    with pytest.raises(ValueError) as raised:
        convt.Conv1DTranspose(2, 3, **{argument: "orthogonal_regularizer"})
    assert str(raised.value) == (
        "OrthogonalRegularizer penalizes rank-2 weights; the weights and outputs of a "
        f"transposed convolution have other ranks. Received: {argument}="
        "OrthogonalRegularizer(factor=0.01, mode='rows')")


def test_losses():
    layer = convt.Conv1DTranspose(
        2, 2, kernel_regularizer=regularizers.L2(0.1), bias_regularizer=regularizers.L1(0.2),
        activity_regularizer=regularizers.L1(0.3), bias_initializer="ones",
    )
    x = _input(1, batch=4, channels=3)
    y = layer(x)
    kernel, bias = layer.get_weights()
    activity, kernel_loss, bias_loss = layer.losses
    np.testing.assert_allclose(activity, 0.3 * np.abs(y).sum() / 4, rtol=1e-5)
    np.testing.assert_allclose(kernel_loss, 0.1 * (kernel**2).sum(), rtol=1e-5)
    np.testing.assert_allclose(bias_loss, 0.2 * np.abs(bias).sum(), rtol=1e-5)
    layer.trainable = False
    assert len(layer.losses) == 1  # weight penalties only for trainable weights


def test_apply_constraints():
    layer = convt.Conv2DTranspose(2, 2, kernel_constraint="non_neg",
                                  bias_constraint=constraints.MaxNorm(1.0))
    layer.build((None, 2, 2, 2))
    layer.set_weights([-np.ones((2, 2, 2, 2)), np.full(2, 3.0)])
    layer.apply_constraints()
    kernel, bias = layer.get_weights()
    assert (kernel == 0).all()
    np.testing.assert_allclose(np.linalg.norm(bias), 1.0, rtol=1e-5)


def test_keras2_and_r_keyword_arguments():
    weights = [np.ones((3, 3, 4, 2), "float32"), np.arange(4, dtype="float32")]
    layer = convt.Conv2DTranspose(4, 3, input_shape=(5, 5, 2), batch_size=8, weights=weights,
                                  dtype="float64", name="first", trainable=False)
    assert layer.built and layer.batch_input_shape == (8, 5, 5, 2)
    assert layer.kernel.dtype == "float64"
    np.testing.assert_array_equal(layer.get_weights()[1], np.arange(4))
    assert layer.trainable_weights == []
    out = layer(np.ones((8, 5, 5, 2)))
    assert out.dtype == np.float64 and out.shape == (8, 7, 7, 4)
    batch_layer = convt.Conv1DTranspose(2, 2, batch_input_shape=(None, 6, 3))
    assert batch_layer.kernel.shape == (2, 2, 3)


def test_weights_argument_is_applied_at_first_call():
    layer = convt.Conv1DTranspose(1, 2, weights=[np.ones((2, 1, 1)), np.zeros(1)])
    out = layer(np.ones((1, 2, 1)))
    np.testing.assert_array_equal(out[0, :, 0], [1, 2, 1])


@pytest.mark.parametrize(
    "weights,message",
    [
        ([np.ones((3, 1, 1)), np.zeros(1)], "not compatible with provided weight shape"),
        ([np.ones((2, 1, 1))], "weight list of length 1"),
        ([np.ones((2, 1, 1)), np.array([{}])], "to hold real numbers"),
    ],
)
def test_wrong_weights_argument_leaves_layer_unbuilt(weights, message):
    layer = convt.Conv1DTranspose(1, 2, weights=weights)
    for _ in range(2):  # the error stays: nothing is half-applied by the first call
        with pytest.raises(ValueError, match=message):
            layer(np.ones((1, 2, 1)))
        assert not layer.built and layer.weights == []
        assert layer.kernel is None and layer.bias is None


def test_conv3d_positional_order_puts_data_format_before_output_padding():
    layer = convt.Conv3DTranspose(2, 3, 2, "same", "channels_first", 1)
    assert layer.data_format == "channels_first" and layer.output_padding == (1, 1, 1)
    layer2d = convt.Conv2DTranspose(2, 3, 2, "same", 1, "channels_first")
    assert layer2d.data_format == "channels_first" and layer2d.output_padding == (1, 1)


def test_aliases():
    assert convt.Convolution1DTranspose is convt.Conv1DTranspose
    assert convt.layers.Convolution3DTranspose is convt.Conv3DTranspose


@pytest.mark.parametrize("dtype,expected", [("float64", np.float64), ("float16", np.float16),
                                            ("mixed_float16", np.float16)])
def test_dtype_policies(dtype, expected):
    layer = convt.Conv1DTranspose(2, 3, dtype=dtype)
    out = layer(np.ones((1, 4, 2)))
    assert out.dtype == expected
    assert layer.kernel.dtype == ("float32" if dtype == "mixed_float16" else dtype)


def test_python_float_is_float32_and_every_keras_policy_dict_is_read():
    # Keras's standardize_dtype makes Python's float float32 (NumPy would say float64).
    assert convt.Conv1DTranspose(2, 3, dtype=float).dtype == "float32"
    for class_name in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        policy = {"module": "keras", "class_name": class_name, "config": {"name": "float64"},
                  "registered_name": None}
        assert convt.Conv1DTranspose(2, 3, dtype=policy).dtype == "float64"


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(filters=0), ValueError, r"Expected a strictly positive value. Received filters=0"),
        (dict(filters=-1), ValueError, r"Received filters=-1"),
        (dict(filters=2.5), ValueError, r"Received filters=2.5"),
        (dict(filters=np.array(True)), ValueError, r"Received filters=array\(True\)"),
        (dict(filters=np.array([2])), ValueError, r"Received filters=array\(\[2\]\)"),
        (dict(kernel_size=0), ValueError, r"Received: kernel_size=0"),
        (dict(kernel_size=(2, 0)), ValueError, r"Received: kernel_size=\(2, 0\)"),
        (dict(kernel_size=(2, 2, 2)), ValueError, r"tuple of 2 integers. Received: kernel_size"),
        (dict(kernel_size="3"), ValueError, r"Received: kernel_size='3'"),
        (dict(strides=0), ValueError, r"Received: strides=0"),
        (dict(strides=(1, 0)), ValueError, r"Received: strides=\(1, 0\)"),
        (dict(strides=2, output_padding=2), ValueError,
         r"`output_padding` must be strictly less than `strides`.*Received: "
         r"output_padding=\(2, 2\), strides=\(2, 2\)"),
        (dict(output_padding=1), ValueError, r"At dimension 0, `output_padding` is 1"),
        (dict(padding="causal"), ValueError, r"Received: padding='causal'"),
        (dict(padding="full"), ValueError, r"Received: padding='full'"),
        (dict(strides=2, dilation_rate=2), ValueError,
         r"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
         r"Received: strides=\(2, 2\) and dilation_rate=\(2, 2\)"),
        (dict(data_format="NCHW"), ValueError, r"Received: data_format='NCHW'"),
        (dict(activation="no_such_fn"), ValueError, r"no_such_fn"),
        (dict(kernel_initializer="no_such_init"), ValueError, r"no_such_init"),
        (dict(kernel_initializer=""), ValueError, r"Received: identifier=''"),
        (dict(bias_initializer=0), ValueError, r"Received: .*0"),
        (dict(use_bias="yes"), ValueError, r"Received: use_bias='yes'"),
        (dict(trainable=1), ValueError, r"Received: trainable=1"),
        (dict(dtype="int32"), ValueError, r"Received: dtype='int32'"),
        (dict(foo=1), ValueError, r"Unrecognized keyword arguments passed to "
                                  r"Conv2DTranspose: {'foo': 1}"),
        (dict(input_shape=(5, -1, 3)), ValueError, r"Received: input_shape=\(5, -1, 3\)"),
        (dict(input_shape=(5, 3)), ValueError, r"expected min_ndim=4, found ndim=3"),
        (dict(batch_size=0), ValueError, r"Received: batch_size=0"),
        (dict(batch_input_shape=b"same"), ValueError, r"Expected `batch_input_shape` to be a "
                                                      r"tuple .* Received: batch_input_shape="),
        (dict(weights=5), ValueError, r"Expected `weights` to be a list of arrays \(the kernel, "
                                      r"then the bias\). Received: weights=5 \(of type int\)"),
        (dict(weights="same"), ValueError, r"Received: weights='same' \(of type str\)"),
    ],
)
def test_constructor_errors(kwargs, error, message):
    arguments = dict(filters=4, kernel_size=3) | kwargs
    with pytest.raises(error, match=message):
        convt.Conv2DTranspose(**arguments)


def test_wrong_input_rank_at_call():
    layer = convt.Conv2DTranspose(2, 3, name="up2")
    with pytest.raises(ValueError, match=r"Input 0 of layer 'up2' is incompatible with the "
                                         r"layer: expected min_ndim=4, found ndim=3. Full shape "
                                         r"received: \(2, 3, 4\)"):
        layer(np.ones((2, 3, 4)))
    assert not layer.built


def test_channel_mismatch_after_build():
    layer = convt.Conv1DTranspose(2, 3, name="up1")
    layer(np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3, "
                                         r"but received input with shape \(1, 4, 5\)"):
        layer(np.ones((1, 4, 5)))


def test_unknown_channels_cannot_build():
    layer = convt.Conv2DTranspose(2, 3)
    with pytest.raises(ValueError, match="channel dimension of the inputs should be defined"):
        layer.build((None, 4, 4, None))
    assert not layer.built


def test_non_numeric_input():
    with pytest.raises(TypeError, match="Received: inputs.dtype=<U1"):
        convt.Conv1DTranspose(1, 1)(np.array([[["a"]]]))


def test_empty_batch():
    out = convt.Conv2DTranspose(3, 2, 2, activity_regularizer="l2")(np.zeros((0, 4, 4, 2)))
    assert out.shape == (0, 8, 8, 3)


def test_too_high_rank_is_both_value_and_index_error_as_keras_raises_index_error():
    layer = convt.Conv2DTranspose(2, 3, name="up5")
    with pytest.raises(IndexError, match=r"expected max_ndim=4, found ndim=5"):
        layer(np.ones((1, 2, 3, 4, 5)))
    with pytest.raises(ValueError):
        layer(np.ones((1, 2, 3, 4, 5)))
    assert not layer.built


@pytest.mark.parametrize("kernel_size", ["3", ("3", 2), b"3"])
@pytest.mark.parametrize("layer_class", [convt.Conv1DTranspose, convt.Conv2DTranspose])
def test_string_kernel_size_is_both_type_and_value_error(layer_class, kernel_size):
    with pytest.raises(TypeError, match="Received: kernel_size="):
        layer_class(4, kernel_size)
    with pytest.raises(ValueError, match="Received: kernel_size="):
        layer_class(4, kernel_size)


def test_filters_none_is_accepted_until_build_as_in_keras():
    layer = convt.Conv1DTranspose(None, 3, name="nofilters")
    assert layer.compute_output_shape((2, 5, 3)) == (2, 7, None)
    with pytest.raises(ValueError, match=r"fully-defined \(no `None` dimensions\). Received: "
                                         r"shape=\(3, None, 3\) for variable "
                                         r"path='nofilters/kernel'"):
        layer.build((2, 5, 3))
    assert not layer.built and layer.weights == []


def test_training_is_accepted_and_masks_are_refused_as_tf_keras_does():
    layer = convt.Conv1DTranspose(2, 3, name="up")
    x = np.ones((1, 4, 1))
    np.testing.assert_array_equal(layer(x, training=True), layer.apply(x, training=False))
    model = convt.Sequential([layer])
    np.testing.assert_array_equal(model(x, training=False), model.predict(x, verbose=0))
    for call in (lambda: layer(x, mask=np.ones((1, 4), bool)),
                 lambda: model(x, mask=np.ones((1, 4), bool))):
        with pytest.raises(TypeError, match="does not support masking, but was passed an "
                                            "input_mask"):
            call()


@settings(max_examples=300, deadline=None)
@given(rank=st.integers(1, 3), arguments=st.dictionaries(
    st.sampled_from(hostile.LAYER_ARGUMENTS), st.sampled_from(hostile.HOSTILE_VALUES), max_size=3))
def test_hostile_arguments_build_a_working_layer_or_are_refused_clearly(rank, arguments):
    layer_class = {1: convt.Conv1DTranspose, 2: convt.Conv2DTranspose, 3: convt.Conv3DTranspose}
    hostile.build_and_call(layer_class[rank], rank, arguments, lambda s: np.ones(s, "float32"))
