"""convt: Keras-exact transposed convolutions on NumPy.

Example:
    >>> import numpy as np
    >>> import convt
    >>> x = np.random.rand(4, 10, 8, 128)
    >>> convt.Conv2DTranspose(32, 2, 2, activation="relu")(x).shape
    (4, 20, 16, 32)
"""

from convt import activations, constraints, initializers, layers, models, ops, regularizers
from convt._shapes import image_data_format, set_image_data_format
from convt.layers import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
    Input,
    InputLayer,
    InputSpec,
    Layer,
)
from convt.models import Model, Sequential
from convt.r_style import (
    layer_conv_1d_transpose,
    layer_conv_2d_transpose,
    layer_conv_3d_transpose,
)
from convt.variables import Variable

__version__ = "0.1.0"

__all__ = [
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "Input",
    "InputLayer",
    "InputSpec",
    "Layer",
    "Model",
    "Sequential",
    "Variable",
    "__version__",
    "activations",
    "constraints",
    "image_data_format",
    "initializers",
    "layer_conv_1d_transpose",
    "layer_conv_2d_transpose",
    "layer_conv_3d_transpose",
    "layers",
    "models",
    "ops",
    "regularizers",
    "set_image_data_format",
]
