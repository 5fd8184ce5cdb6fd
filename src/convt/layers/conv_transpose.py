"""Keras's transposed convolution layers: one base class and three rank shells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convt import activations, constraints, initializers, ops, regularizers
from convt._shapes import ConvTransposeArgs, check_size, is_integer
from convt.errors import InputRankError
from convt.layers.layer import Layer

IntOrTuple = int | Sequence[int]


class ConvTranspose(Layer):
    """Abstract N-D transposed convolution layer (N = 1, 2, 3).

    Computes ``activation(conv_transpose(inputs, kernel) + bias)`` with the
    kernel laid out ``(*kernel_size, filters, in_channels)``; see
    :func:`convt.ops.conv_transpose` for the exact arithmetic.

    Args:
        rank: number of spatial axes.
        filters: number of output channels, > 0 (None, as Keras allows, fails
            at build).
        kernel_size: int or tuple of ``rank`` ints, > 0.
        strides: int or tuple of ``rank`` ints, > 0.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        output_padding: None, or int/tuple, each value below its stride.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (default).
        dilation_rate: int or tuple; values > 1 need all strides == 1.
        activation: name, config or callable; None means linear.
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: name, config or object.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties.
        kernel_constraint, bias_constraint: projections applied by
            :meth:`apply_constraints` after each optimizer update.
        **kwargs: ``name``, ``trainable``, ``dtype`` and the Keras 2 / R
            arguments ``input_shape``, ``batch_input_shape``, ``batch_size``,
            ``weights`` (see :class:`convt.layers.Layer`).

    Raises:
        ValueError: for any invalid argument, with Keras's message.
    """

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: IntOrTuple,
        strides: IntOrTuple = 1,
        padding: str = "valid",
        output_padding: IntOrTuple | None = None,
        data_format: str | None = None,
        dilation_rate: IntOrTuple = 1,
        *,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        if filters is not None and (not is_integer(filters) or filters <= 0):
            raise ValueError(
                "Invalid value for argument `filters`. Expected a strictly "
                f"positive value. Received filters={filters!r}."
            )
        if not isinstance(use_bias, bool):
            raise ValueError(
                f"Expected `use_bias` to be a boolean. Received: use_bias={use_bias!r}"
            )
        self._args = ConvTransposeArgs.normalize(
            rank,
            kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
        )
        self._args.check_layer_limits()
        self.filters = None if filters is None else int(filters)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer or "glorot_uniform")
        self.bias_initializer = initializers.get(bias_initializer or "zeros")
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel = None
        self.bias = None
        self._build_from_declared_input()

    # The normalized arguments, readable as Keras's attributes.
    rank = property(lambda self: self._args.rank)
    kernel_size = property(lambda self: self._args.kernel_size)
    strides = property(lambda self: self._args.strides)
    padding = property(lambda self: self._args.padding)
    output_padding = property(lambda self: self._args.output_padding)
    data_format = property(lambda self: self._args.data_format)
    dilation_rate = property(lambda self: self._args.dilation_rate)

    def _check_input_shape(self, shape: Sequence[int | None]) -> None:
        """Rank must be ``rank + 2``; once built, channels must match the kernel."""
        shape = tuple(shape)
        expected_ndim = self.rank + 2
        if len(shape) != expected_ndim:
            error = ValueError if len(shape) < expected_ndim else InputRankError
            bound = "min_ndim" if len(shape) < expected_ndim else "max_ndim"
            raise error(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected {bound}={expected_ndim}, found ndim={len(shape)}. "
                f"Full shape received: {shape}"
            )
        if self.built:
            axis = -1 if self.data_format == "channels_last" else 1
            expected = self.kernel.shape[-1]
            if shape[axis] is not None and shape[axis] != expected:
                raise ValueError(
                    f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                    f"expected axis {axis} of input shape to have value {expected}, "
                    f"but received input with shape {shape}"
                )

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Creates ``kernel`` ``(*kernel_size, filters, in_channels)`` and ``bias``.

        Raises:
            ValueError: for a wrong rank, an unknown channel dimension or
                ``filters=None``; the layer is left unbuilt.
        """
        kernel_shape = self.weight_shapes(input_shape)[0]
        check_size(kernel_shape, "kernel")
        kernel = self.kernel_initializer(kernel_shape, dtype=self.dtype)
        bias = self.bias_initializer((self.filters,), dtype=self.dtype) if self.use_bias else None
        self._variables = []
        self.kernel = self.add_weight(
            "kernel",
            kernel,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None if bias is None else self.add_weight(
            "bias", bias, regularizer=self.bias_regularizer, constraint=self.bias_constraint
        )
        self.built = True

    def weight_shapes(self, input_shape: Sequence[int | None]) -> list[tuple[int, ...]]:
        """``[kernel_shape]`` or ``[kernel_shape, bias_shape]`` for ``input_shape``.

        Raises:
            ValueError: for a wrong rank, an unknown channel dimension or
                ``filters=None``.

        Example:
            >>> Conv2DTranspose(32, 2).weight_shapes((None, 10, 8, 128))
            [(2, 2, 32, 128), (32,)]
        """
        _, _, channels = self._args.split_shape(input_shape, "inputs")
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs should be defined. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        kernel_shape = (*self.kernel_size, self.filters, channels)
        if self.filters is None:
            raise ValueError(
                "Shapes used to initialize variables must be fully-defined (no "
                f"`None` dimensions). Received: shape={kernel_shape} for variable "
                f"path='{self.name}/kernel'"
            )
        return [kernel_shape, (self.filters,)] if self.use_bias else [kernel_shape]

    def call(self, inputs: np.ndarray) -> np.ndarray:
        """``activation(conv_transpose(inputs, kernel) + bias)`` in the compute dtype."""
        kernel = self.kernel.value.astype(self.compute_dtype, copy=False)
        outputs = ops.conv_transpose(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs += self._bias_for_broadcast(outputs.dtype)
        return np.asarray(self.activation(outputs), dtype=self.compute_dtype)

    def _bias_for_broadcast(self, dtype: np.dtype) -> np.ndarray:
        bias = self.bias.value.astype(dtype, copy=False)
        if self.data_format == "channels_last":
            return bias
        return bias.reshape((self.filters,) + (1,) * self.rank)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """Output shape for ``input_shape``; ``None`` entries stay ``None``.

        Raises:
            ValueError: if ``input_shape`` does not have rank ``rank + 2``.
        """
        return self._args.output_shape(input_shape, self.filters)

    def get_config(self) -> dict[str, Any]:
        """Keras 3's config of this layer, in plain JSON values."""
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "output_padding": self.output_padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config


class Conv1DTranspose(ConvTranspose):
    """1D transposed convolution layer.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
        dilation_rate, **kwargs: as :class:`ConvTranspose`, with ``rank=1``.

    Input shape:
        ``(batch, steps, channels)`` (channels_last) or ``(batch, channels, steps)``.

    Output shape:
        ``(batch, new_steps, filters)`` or ``(batch, filters, new_steps)`` with
        ``new_steps`` as in :func:`convt.ops.conv_transpose`.

    Example:
        >>> import numpy as np
        >>> layer = Conv1DTranspose(8, 4, strides=2, padding="same")
        >>> layer(np.zeros((2, 50, 3), "float32")).shape
        (2, 100, 8)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrTuple,
        strides: IntOrTuple = 1,
        padding: str = "valid",
        output_padding: IntOrTuple | None = None,
        data_format: str | None = None,
        dilation_rate: IntOrTuple = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            1, filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, **kwargs,
        )


class Conv2DTranspose(ConvTranspose):
    """2D transposed convolution layer.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
        dilation_rate, **kwargs: as :class:`ConvTranspose`, with ``rank=2``.

    Input shape:
        ``(batch, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, rows, cols)``.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` or
        ``(batch, filters, new_rows, new_cols)``, each new length as in
        :func:`convt.ops.conv_transpose`.

    Example:
        >>> import numpy as np
        >>> x = np.random.rand(4, 10, 8, 128)
        >>> Conv2DTranspose(32, 2, 2, activation="relu")(x).shape
        (4, 20, 16, 32)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrTuple,
        strides: IntOrTuple = 1,
        padding: str = "valid",
        output_padding: IntOrTuple | None = None,
        data_format: str | None = None,
        dilation_rate: IntOrTuple = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            2, filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, **kwargs,
        )


class Conv3DTranspose(ConvTranspose):
    """3D transposed convolution layer.

    Keras 3's positional order puts ``data_format`` before ``output_padding``.

    Args:
        filters, kernel_size, strides, padding, data_format, output_padding,
        dilation_rate, **kwargs: as :class:`ConvTranspose`, with ``rank=3``.

    Input shape:
        ``(batch, depth, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, depth, rows, cols)``.

    Output shape:
        ``(batch, new_depth, new_rows, new_cols, filters)`` or
        ``(batch, filters, new_depth, new_rows, new_cols)``.

    Example:
        >>> import numpy as np
        >>> Conv3DTranspose(4, 2, 2)(np.zeros((1, 3, 3, 3, 2), "float32")).shape
        (1, 6, 6, 6, 4)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrTuple,
        strides: IntOrTuple = 1,
        padding: str = "valid",
        data_format: str | None = None,
        output_padding: IntOrTuple | None = None,
        dilation_rate: IntOrTuple = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            3, filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, **kwargs,
        )


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
