"""R-style composition: layer_conv_*_transpose(object, ...) as keras3 for R defines it."""

import numpy as np
import pytest

import convt


def test_keras3_r_example_reproduces():
    x = np.random.default_rng(0).uniform(size=(4, 10, 8, 128))
    y = convt.layer_conv_2d_transpose(x, 32, 2, 2, activation="relu")
    assert y.shape == (4, 20, 16, 32) and y.min() >= 0


def test_object_none_returns_the_layer():
    layer = convt.layer_conv_1d_transpose(None, 8, 4, 2, "same", name="up", trainable=None)
    assert isinstance(layer, convt.Conv1DTranspose)
    assert (layer.name, layer.strides, layer.padding, layer.trainable) == ("up", (2,), "same", True)


def test_symbolic_tensor_returns_the_symbolic_output():
    y = convt.layer_conv_3d_transpose(convt.Input(shape=(3, 3, 3, 2)), 4, 2, strides=2)
    assert y.shape == (None, 6, 6, 6, 4)


def test_sequential_gets_the_layer_added_and_is_returned():
    model = convt.Sequential()
    returned = convt.layer_conv_2d_transpose(
        model, 4, 3, batch_input_shape=(None, 5, 5, 3), dtype="float64", name="first"
    )
    returned = convt.layer_conv_2d_transpose(returned, 2, 2, output_padding=None, trainable=False)
    assert returned is model and [layer.name for layer in model.layers][0] == "first"
    assert model.outputs[0].shape == (None, 8, 8, 2)
    assert model.layers[0].dtype == "float64" and not model.layers[1].trainable


def test_r_arguments_weights_and_input_shape():
    kernel, bias = np.ones((2, 1, 1)), np.array([0.5])
    layer = convt.layer_conv_1d_transpose(None, 1, 2, input_shape=(3, 1), weights=[kernel, bias])
    assert layer.built
    np.testing.assert_array_equal(layer(np.ones((1, 3, 1)))[0, :, 0], [1.5, 2.5, 2.5, 1.5])


def test_arguments_past_padding_are_keyword_only():
    with pytest.raises(TypeError):
        convt.layer_conv_2d_transpose(None, 2, 3, 1, "valid", 1)


def test_each_function_has_its_own_name_and_docstring():
    names = [
        f.__name__
        for f in (
            convt.layer_conv_1d_transpose,
            convt.layer_conv_2d_transpose,
            convt.layer_conv_3d_transpose,
        )
    ]
    assert names == [
        "layer_conv_1d_transpose",
        "layer_conv_2d_transpose",
        "layer_conv_3d_transpose",
    ]
    assert "3D transposed convolution" in convt.layer_conv_3d_transpose.__doc__
    assert "convt.Conv3DTranspose" in convt.layer_conv_3d_transpose.__doc__


def test_a_missing_object_gives_the_layer_and_models_or_layers_are_refused():
    layer = convt.layer_conv_2d_transpose(filters=3, kernel_size=2)
    assert isinstance(layer, convt.Conv2DTranspose) and layer.filters == 3
    x = convt.Input((4, 4, 1))
    functional = convt.Model(x, convt.Conv2DTranspose(2, 3)(x))
    for wrong in (functional, convt.Conv2DTranspose(1, 2)):
        with pytest.raises(TypeError, match="Expected `object` to be None, an array, a symbolic "
                                            "tensor or a convt.Sequential model. Received: "
                                            f"object of type {type(wrong).__name__}"):
            convt.layer_conv_2d_transpose(wrong, 3, 2)
