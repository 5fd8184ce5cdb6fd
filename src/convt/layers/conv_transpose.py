"""Keras's transposed convolution layers: one base class and three rank shells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convt import ops
from convt.layers.conv_transpose_config import ConvTransposeConfig, IntOrTuple
from convt.layers.layer import WEIGHTS_LOCK, Layer
from convt.prepared import PreparedKernel


class ConvTranspose(ConvTransposeConfig, Layer):
    """Abstract N-D transposed convolution layer (N = 1, 2, 3).

    Computes ``activation(conv_transpose(inputs, kernel) + bias)`` with the
    kernel laid out ``(*kernel_size, filters, in_channels)``; see
    :func:`convt.ops.conv_transpose` for the exact arithmetic.

    Args:
        rank: number of spatial axes.
        filters: number of output channels, > 0.
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
        self._configure(
            rank, filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel = None
        self.bias = None
        self._prepared: tuple[np.ndarray, PreparedKernel] | None = None
        """(the kernel variable's array it was made from, the prepared kernel)."""
        self._build_from_declared_input()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Creates ``kernel`` ``(*kernel_size, filters, in_channels)`` and ``bias``.

        Raises:
            ValueError: for a wrong rank, an unknown channel dimension or
                ``filters=None``; the layer is left unbuilt.
        """
        kernel_shape = self._kernel_shape(input_shape)
        kernel = self._initial_array("kernel_initializer", kernel_shape, self.dtype)
        bias = self._initial_array("bias_initializer", (self.filters,), self.dtype) if (
            self.use_bias) else None
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

    def call(self, inputs: np.ndarray) -> np.ndarray:
        """``activation(conv_transpose(inputs, kernel) + bias)`` in the compute dtype."""
        with WEIGHTS_LOCK:  # one set of weights, whatever set_weights does meanwhile
            kernel = self._prepared_kernel()
            bias = self.bias.value if self.use_bias else None
        outputs = ops.conv_transpose(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if bias is not None:
            outputs += self._bias_for_broadcast(bias.astype(outputs.dtype, copy=False))
        return np.asarray(self.activation(outputs), dtype=self.compute_dtype)

    def _unbuild(self) -> None:
        """Back to the state before ``build``: no weights, no kernel or bias."""
        super()._unbuild()
        self.kernel = self.bias = None
        self._prepared = None

    def _prepared_kernel(self) -> PreparedKernel:
        """The kernel in the compute dtype, prepared once per value of the variable.

        A variable's array is read-only and :meth:`Variable.assign` puts a new
        one in its place, so the array's identity names its values; what the
        backend derives from the kernel (:class:`PreparedKernel`) is then
        reused until the weights change.
        """
        value = self.kernel.value
        kept = self._prepared
        if kept is None or kept[0] is not value or kept[1].dtype != self.compute_dtype:
            kept = (value, PreparedKernel(value.astype(self.compute_dtype, copy=False)))
            self._prepared = kept
        return kept[1]

    def _bias_for_broadcast(self, bias: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_last":
            return bias
        return bias.reshape((self.filters,) + (1,) * self.rank)

    def get_config(self) -> dict[str, Any]:
        """Keras 3's config of this layer, in plain JSON values."""
        config = super().get_config()
        config.update(self._conv_config())
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
