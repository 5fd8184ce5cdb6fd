"""convt's layers."""

from convt.layers.conv_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
    ConvTranspose,
)
from convt.layers.input_layer import Input, InputLayer
from convt.layers.input_spec import InputSpec
from convt.layers.layer import Layer

__all__ = [
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "ConvTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "Input",
    "InputLayer",
    "InputSpec",
    "Layer",
]
