"""R-style composition, as keras3 for R defines it: ``layer_conv_2d_transpose(object, ...)``.

``object`` decides what comes back:

- an array or a symbolic tensor: the layer's output on it;
- a :class:`convt.Sequential`: the model, with the layer added;
- ``None``: the layer itself.

``filters``, ``kernel_size``, ``strides`` and ``padding`` may be given by
position (as R's examples do); every other argument is keyword-only, so
``padding`` and ``output_padding`` can never be swapped by position. The R
arguments ``input_shape``, ``batch_input_shape``, ``batch_size``, ``dtype``,
``name``, ``trainable`` and ``weights`` are accepted; R's ``trainable = NULL``
(None) means the default, True.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from convt.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from convt.layers.layer import Layer
from convt.models.model import Model
from convt.models.sequential import Sequential

_EXAMPLES = {
    1: '>>> layer_conv_1d_transpose(np.random.rand(2, 50, 3), 8, 4, 2, "same").shape\n'
    "        (2, 100, 8)",
    2: ">>> x = np.random.rand(4, 10, 8, 128)\n"
    '        >>> layer_conv_2d_transpose(x, 32, 2, 2, activation="relu").shape\n'
    "        (4, 20, 16, 32)",
    3: ">>> model = layer_conv_3d_transpose(convt.Sequential(), 4, 2, 2,\n"
    "        ...                                 input_shape=(3, 3, 3, 2))\n"
    "        >>> model.outputs[0].shape\n"
    "        (None, 6, 6, 6, 4)",
}


def compose(
    layer_class: type[Layer],
    object: Any,  # noqa: A002 - the R argument name
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    **kwargs: Any,
) -> Any:
    """Makes ``layer_class(filters, kernel_size, ...)`` and composes it with ``object``.

    Raises:
        TypeError: for an ``object`` that is a layer or a model other than Sequential.
    """
    if isinstance(object, (Layer, Model)) and not isinstance(object, Sequential):
        raise TypeError(
            "Expected `object` to be None, an array, a symbolic tensor or a convt.Sequential "
            f"model. Received: object of type {type(object).__name__}"
        )
    if "trainable" in kwargs and kwargs["trainable"] is None:
        del kwargs["trainable"]
    layer = layer_class(filters, kernel_size, strides=strides, padding=padding, **kwargs)
    if object is None:
        return layer
    if isinstance(object, Sequential):
        object.add(layer)
        return object
    return layer(object)


def _r_function(layer_class: type[Layer], rank: int) -> Callable[..., Any]:
    """One named function binding :func:`compose` to ``layer_class``."""

    def layer_conv_transpose(
        object: Any = None,  # noqa: A002 - missing in R: the layer itself
        filters: int | None = None,
        kernel_size: int | Sequence[int] | None = None,
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        **kwargs: Any,
    ) -> Any:
        return compose(layer_class, object, filters, kernel_size, strides, padding, **kwargs)

    layer_conv_transpose.__name__ = layer_conv_transpose.__qualname__ = (
        f"layer_conv_{rank}d_transpose"
    )
    layer_conv_transpose.__doc__ = f"""{rank}D transposed convolution composed with ``object``.

    Args:
        object: an array or symbolic tensor (returns the layer's output on it),
            a :class:`convt.Sequential` (returns the model with the layer
            added) or None, the default, as a missing R ``object`` (returns the
            layer).
        filters: number of output channels.
        kernel_size: int or tuple of {rank} ints.
        strides: int or tuple of {rank} ints.
        padding: ``"valid"`` or ``"same"``.
        **kwargs: keyword-only: every other argument of
            :class:`convt.{layer_class.__name__}` (``output_padding``,
            ``data_format``, ``dilation_rate``, ``activation``, ...), and the R
            arguments ``input_shape``, ``batch_input_shape``, ``batch_size``,
            ``dtype``, ``name``, ``trainable``, ``weights``.

    Returns:
        The output, the model, or the layer, as ``object`` decides.

    Raises:
        ValueError: for invalid arguments, with Keras's messages.
        TypeError: for an ``object`` that is a layer or a functional model.

    Example:
        >>> import numpy as np, convt
        {_EXAMPLES[rank]}
    """
    return layer_conv_transpose


layer_conv_1d_transpose = _r_function(Conv1DTranspose, 1)
layer_conv_2d_transpose = _r_function(Conv2DTranspose, 2)
layer_conv_3d_transpose = _r_function(Conv3DTranspose, 3)
