"""The Keras arguments of a transposed convolution layer, shared by every framework's shell.

:class:`convt.layers.ConvTranspose` (NumPy) and :class:`convt.torch.ConvTranspose`
(a ``torch.nn.Module``) both mix this in: one place validates and stores the
constructor arguments, checks inputs, derives the kernel shape and the output
shape, and writes the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convt import activations, constraints, initializers, regularizers
from convt._shapes import ConvTransposeArgs, check_fits_in_memory, check_size, integer_value
from convt.errors import InputRankError
from convt.layers.input_spec import InputSpec

IntOrTuple = int | Sequence[int]


class ConvTransposeConfig:
    """Mixin: the arguments of Keras's ``Conv{1,2,3}DTranspose`` and what follows from them.

    The class it is mixed into provides ``name``, ``built``, ``kernel`` (with
    a ``shape``) and ``activity_regularizer``.
    """

    def _configure(
        self,
        rank: int,
        filters: int | None,
        kernel_size: IntOrTuple,
        strides: IntOrTuple,
        padding: str,
        output_padding: IntOrTuple | None,
        data_format: str | None,
        dilation_rate: IntOrTuple,
        *,
        activation: Any,
        use_bias: bool,
        kernel_initializer: Any,
        bias_initializer: Any,
        kernel_regularizer: Any,
        bias_regularizer: Any,
        activity_regularizer: Any,
        kernel_constraint: Any,
        bias_constraint: Any,
    ) -> None:
        """Validates the arguments with Keras's messages and stores them resolved
        (``activity_regularizer`` is only checked: the layer's base class stores it).

        Raises:
            ValueError: for any invalid argument.
        """
        count = None if filters is None else integer_value(filters)
        if filters is not None and (count is None or count <= 0):
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
        self.filters = count
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(
            "glorot_uniform" if kernel_initializer is None else kernel_initializer)
        self.bias_initializer = initializers.get(
            "zeros" if bias_initializer is None else bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        for name, value in (("kernel_regularizer", self.kernel_regularizer),
                            ("bias_regularizer", self.bias_regularizer),
                            ("activity_regularizer", regularizers.get(activity_regularizer))):
            regularizers.refuse_for_conv_transpose(value, name=name)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

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
        expected, axis = self._known_in_channels(), self._channel_axis
        if expected is not None and shape[axis] is not None and shape[axis] != expected:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected axis {axis} of input shape to have value {expected}, "
                f"but received input with shape {shape}"
            )

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    @property
    def input_spec(self) -> InputSpec:
        """What the layer accepts, as Keras 3's ``input_spec``: ``min_ndim = rank + 2`` and,
        once built, the channel axis's size. Read-only: the layer's input checks enforce it
        (and refuse ranks above ``rank + 2`` too).

        Example:
            >>> from convt.layers import Conv2DTranspose
            >>> layer = Conv2DTranspose(4, 3)
            >>> layer.input_spec
            InputSpec(min_ndim=4)
            >>> layer.build((None, 8, 8, 3))
            >>> layer.input_spec
            InputSpec(min_ndim=4, axes={-1: 3})
        """
        channels = self._known_in_channels()
        axes = None if channels is None else {self._channel_axis: channels}
        return InputSpec(min_ndim=self.rank + 2, axes=axes)

    def _known_in_channels(self) -> int | None:
        """The input channels the kernel was made for; None before it exists."""
        return self.kernel.shape[-1] if self.built else None

    def _kernel_shape(self, input_shape: Sequence[int | None]) -> tuple[int, ...]:
        """``(*kernel_size, filters, in_channels)`` for inputs of ``input_shape``.

        Raises:
            ValueError: for a wrong rank, an unknown channel dimension or
                ``filters=None`` (which Keras, too, accepts until the build).
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
        check_size(kernel_shape, "kernel")
        return kernel_shape

    def _initial_array(self, name: str, shape: tuple[int, ...], dtype: Any, *,
                       initializer: Any = None) -> np.ndarray:
        """What the initializer ``name`` (``"kernel_initializer"``...) returns for
        ``shape``, as an array of ``dtype``; ``initializer`` stands in for the
        attribute when given (a seeded copy of it).

        Raises:
            ValueError: unless it returned numbers of that shape (a custom
                initializer may not), or if its float64 values would not fit twice
                in the machine's memory; the layers ask before creating any weight.
        """
        check_fits_in_memory(shape, initializers.SAMPLE_ITEMSIZE, name.removesuffix("_initializer"))
        value = (initializer or getattr(self, name))(shape, dtype=dtype)
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            array = None
        if array is None or array.shape != tuple(shape):
            raise ValueError(
                f"Expected `{name}` to return numbers of shape {tuple(shape)}. "
                f"Received: {type(value).__name__} of shape {getattr(value, 'shape', None)}"
            )
        return array

    def weight_shapes(self, input_shape: Sequence[int | None]) -> list[tuple[int, ...]]:
        """``[kernel_shape]`` or ``[kernel_shape, bias_shape]`` for ``input_shape``.

        Loaders check these against their size limits before anything is built.

        Raises:
            ValueError: as :meth:`_kernel_shape`.

        Example:
            >>> from convt import Conv2DTranspose
            >>> Conv2DTranspose(32, 2).weight_shapes((None, 10, 8, 128))
            [(2, 2, 32, 128), (32,)]
        """
        kernel_shape = self._kernel_shape(input_shape)
        return [kernel_shape, (self.filters,)] if self.use_bias else [kernel_shape]

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """Output shape for ``input_shape``; ``None`` entries stay ``None``.

        Raises:
            ValueError: if ``input_shape`` does not have rank ``rank + 2``.
        """
        return self._args.output_shape(input_shape, self.filters)

    def _conv_config(self) -> dict[str, Any]:
        """The layer-specific part of Keras 3's config, in plain JSON values."""
        return {
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
