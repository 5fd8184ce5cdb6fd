"""Symbolic inputs and the tf.keras 2.x node surface of every layer, with its messages."""

import numpy as np
import pytest

import convt
from convt.symbolic import SymbolicTensor


def test_input_gives_a_symbolic_tensor_with_batch_axis_and_dtype():
    x = convt.Input(shape=(5, None, 3), batch_size=2, dtype="float64", name="pic")
    assert isinstance(x, SymbolicTensor)
    assert (x.shape, x.dtype, x.name) == ((2, 5, None, 3), "float64", "pic")
    assert isinstance(x.history.layer, convt.InputLayer)


def test_input_refuses_missing_shape_non_float_dtype_and_absurd_size():
    with pytest.raises(ValueError, match="You must pass a `shape` argument"):
        convt.Input()
    with pytest.raises(ValueError, match="Received: dtype='int32'"):
        convt.Input((3,), dtype="int32")
    with pytest.raises(ValueError, match="more than 1099511627776 elements"):
        convt.Input((2**30, 2**30, 3))
    with pytest.raises(ValueError, match="Received: sparse=True"):
        convt.InputLayer(shape=(3,), sparse=True)
    with pytest.raises(ValueError, match=r"You cannot pass both `shape` and `batch_shape` at the "
                                         r"same time. Received: shape=\(3,\), batch_shape="):
        convt.Input((3,), batch_shape=(None, 3))  # as Keras 3: neither silently wins
    with pytest.raises(ValueError, match=r"You cannot pass both `batch_size` and `batch_shape`"):
        convt.Input(batch_size=2, batch_shape=(None, 3))
    policy = {"class_name": "DTypePolicy", "config": {"name": "float32"}}
    with pytest.raises(ValueError, match=r"Received: dtype=\{'class_name': 'DTypePolicy'"):
        convt.Input((3,), dtype=policy)  # NumPy raises ValueError, not TypeError, for it


def test_symbolic_call_infers_shape_keeps_unknown_dims_and_builds():
    layer = convt.Conv2DTranspose(4, 3, strides=2)
    y = layer(convt.Input(shape=(None, 7, 3)))
    assert y.shape == (None, None, 15, 4)
    assert layer.built and layer.kernel.shape == (3, 3, 4, 3)
    with pytest.raises(TypeError, match="A symbolic tensor has no values"):
        np.asarray(y)


def test_symbolic_call_needs_the_channel_dimension():
    layer = convt.Conv1DTranspose(2, 3)
    with pytest.raises(ValueError, match="The channel dimension of the inputs should be defined"):
        layer(convt.Input(shape=(5, None)))
    assert not layer.built and layer.inbound_nodes == []


def test_single_call_defines_input_output_and_shapes():
    layer = convt.Conv2DTranspose(4, 3, strides=2, name="up")
    x = convt.Input(shape=(5, 5, 3))
    y = layer(x)
    assert layer.input is x and layer.output is y
    assert layer.get_input_at(0) is x and layer.get_output_at(0) is y
    assert layer.input_shape == (None, 5, 5, 3) == layer.get_input_shape_at(0)
    assert layer.output_shape == (None, 11, 11, 4) == layer.get_output_shape_at(0)
    assert layer.input_mask is None and layer.output_mask is None
    assert layer.get_input_mask_at(0) is None and layer.get_output_mask_at(0) is None


def test_never_called_layer_raises_tf_keras_errors():
    layer = convt.Conv2DTranspose(4, 3, name="lonely")
    with pytest.raises(
        AttributeError, match="^Layer lonely is not connected, no input to return.$"
    ):
        _ = layer.input
    with pytest.raises(AttributeError, match="^Layer lonely has no inbound nodes.$"):
        _ = layer.output
    with pytest.raises(
        AttributeError,
        match="^The layer has never been called and thus has no defined input shape.$",
    ):
        _ = layer.input_shape
    with pytest.raises(AttributeError, match="thus has no defined output shape.$"):
        _ = layer.output_shape
    with pytest.raises(
        RuntimeError, match="^The layer has never been called and thus has no defined input.$"
    ):
        layer.get_input_at(0)
    with pytest.raises(AttributeError, match="not connected"):
        _ = layer.input_mask


def test_calls_on_arrays_record_no_node():
    layer = convt.Conv1DTranspose(2, 3, name="eager")
    layer(np.zeros((1, 4, 1)))
    assert layer.inbound_nodes == []
    with pytest.raises(AttributeError, match="Layer eager is not connected"):
        _ = layer.input


def test_layer_called_twice_has_two_nodes_and_ill_defined_input():
    layer = convt.Conv2DTranspose(3, 3, padding="same", name="twice")
    x = convt.Input(shape=(5, 5, 3))
    y = layer(x)
    z = layer(y)
    assert layer.get_input_at(1) is y and layer.get_output_at(1) is z
    with pytest.raises(AttributeError) as error:
        _ = layer.input
    assert str(error.value) == (
        'Layer twice has multiple inbound nodes, hence the notion of "layer input" is '
        "ill-defined. Use `get_input_at(node_index)` instead."
    )
    with pytest.raises(
        AttributeError, match='notion of "layer output" is ill-defined. Use `get_output_at'
    ):
        _ = layer.output
    with pytest.raises(AttributeError, match="has multiple inbound nodes"):
        _ = layer.output_mask
    # Same shapes on both calls: the shape is well defined.
    assert layer.input_shape == (None, 5, 5, 3)
    assert layer.output_shape == (None, 5, 5, 3)


def test_calls_with_different_shapes_make_input_shape_ill_defined():
    layer = convt.Conv1DTranspose(2, 3, name="varied")
    layer(convt.Input(shape=(4, 1)))
    layer(convt.Input(shape=(6, 1)))
    with pytest.raises(AttributeError) as error:
        _ = layer.input_shape
    assert str(error.value) == (
        'The layer "varied" has multiple inbound nodes, with different input shapes. Hence '
        'the notion of "input shape" is ill-defined for the layer. Use '
        "`get_input_shape_at(node_index)` instead."
    )
    with pytest.raises(AttributeError, match='notion of "output shape" is ill-defined'):
        _ = layer.output_shape
    assert layer.get_output_shape_at(1) == (None, 8, 2)


@pytest.mark.parametrize(
    "method, attribute",
    [
        ("get_input_at", "input"),
        ("get_output_at", "output"),
        ("get_input_shape_at", "input shape"),
        ("get_output_shape_at", "output shape"),
        ("get_input_mask_at", "input"),
        ("get_output_mask_at", "output"),
    ],
)
def test_node_index_out_of_range_is_a_value_error(method, attribute):
    layer = convt.Conv1DTranspose(2, 3)
    layer(convt.Input(shape=(4, 1)))
    for index in (3, -2, -(10**20)):  # -10**20 raised Python's IndexError
        with pytest.raises(ValueError) as error:
            getattr(layer, method)(index)
        assert str(error.value) == (
            f"Asked to get {attribute} at node {index}, but the layer has only 1 inbound nodes."
        )
    assert getattr(layer, method)(-1) == getattr(layer, method)(0)
    for index in (None, 1.0, True):  # None: Python's "'>' not supported"
        with pytest.raises(TypeError, match=r"Expected `node_index` to be an integer. "
                                            rf"Received: node_index={index}"):
            getattr(layer, method)(index)


def test_compute_mask_returns_none_and_refuses_a_mask():
    layer = convt.Conv2DTranspose(2, 2, name="nomask")
    assert layer.compute_mask(np.zeros((1, 2, 2, 1))) is None
    assert layer.compute_mask(np.zeros((1, 2, 2, 1)), [None, None]) is None
    with pytest.raises(TypeError) as error:
        layer.compute_mask(np.zeros((1, 2, 2, 1)), mask=True)
    assert str(error.value) == (
        "Layer nomask does not support masking, but was passed an input_mask: True"
    )


def test_updates_are_empty_and_apply_is_call():
    layer = convt.Conv1DTranspose(2, 3, kernel_initializer="ones")
    x = np.ones((1, 4, 1), "float32")
    assert layer.updates == [] and layer.get_updates_for(x) == []
    np.testing.assert_array_equal(layer.apply(x), layer(x))


def test_get_losses_for_splits_activity_from_weight_penalties():
    layer = convt.Conv1DTranspose(
        2, 3, kernel_initializer="ones", kernel_regularizer="l2", activity_regularizer="l1"
    )
    x = np.ones((2, 4, 1), "float32")
    layer(x)
    activity = layer.get_losses_for(x)
    weights = layer.get_losses_for(None)
    assert len(activity) == 1 and len(weights) == 1
    assert float(activity[0]) == pytest.approx(0.01 * float(np.abs(layer(x)).sum()) / 2)
    assert float(weights[0]) == pytest.approx(0.01 * 6)  # l2 of a (3, 2, 1) kernel of ones
    assert layer.get_losses_for(np.ones((2, 4, 1))) == []
    listed = np.ones((2, 4, 1)).tolist()
    layer(listed)
    assert len(layer.get_losses_for(listed)) == 1  # the very list the call was given
