"""The entry point of a model: ``InputLayer`` and ``Input``, as Keras has them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convt._shapes import check_size
from convt.layers.layer import Layer, batch_input_shape_from
from convt.symbolic import Node, SymbolicTensor


class InputLayer(Layer):
    """The layer that holds a model's symbolic input; it has no weights.

    Give either ``shape`` (without the batch axis, with ``batch_size``) or
    ``batch_shape``. ``batch_input_shape`` and ``input_shape`` are the older
    names tf.keras 2.x configs use.

    Args:
        shape: the shape of one sample; entries are ints or None.
        batch_size: a fixed batch size, or None.
        dtype: a float dtype name (default ``"float32"``).
        batch_shape: the full shape, batch axis first.
        name: the layer name (unique by default).
        sparse, ragged, optional: Keras 3 config keys; convt supports only False.

    Raises:
        ValueError: for a missing or invalid shape, a non-float dtype, or a
            True ``sparse``/``ragged``/``optional``.

    Example:
        >>> layer = InputLayer(shape=(8, 3))
        >>> layer.output.shape, layer.batch_shape
        ((None, 8, 3), (None, 8, 3))
    """

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        dtype: Any = None,
        *,
        batch_shape: Sequence[int | None] | None = None,
        name: str | None = None,
        sparse: bool = False,
        ragged: bool = False,
        optional: bool = False,
        **kwargs: Any,
    ) -> None:
        for flag, value in (("sparse", sparse), ("ragged", ragged), ("optional", optional)):
            if value is not False:
                raise ValueError(
                    f"convt's InputLayer supports only dense, required inputs. "
                    f"Received: {flag}={value!r}"
                )
        shape = kwargs.pop("input_shape", shape)
        batch_shape = kwargs.pop("batch_input_shape", batch_shape)
        for other, value in (("shape", shape), ("batch_size", batch_size)):
            if value is not None and batch_shape is not None:
                raise ValueError(
                    f"You cannot pass both `{other}` and `batch_shape` at the same time. "
                    f"Received: {other}={value!r}, batch_shape={batch_shape!r}"
                )
        batch_shape = batch_input_shape_from(shape, batch_shape, batch_size, None)
        if batch_shape is None:
            raise ValueError(
                "You must pass a `shape` argument (or `batch_shape`) to InputLayer. "
                f"Received: shape={shape!r}, batch_shape={batch_shape!r}"
            )
        check_size(batch_shape, "input")
        super().__init__(dtype=_float_dtype(dtype), name=name, **kwargs)
        self.batch_shape = batch_shape
        tensor = SymbolicTensor(batch_shape, self.compute_dtype, name=self.name)
        Node.record(self, (tensor,), (tensor,))
        self.built = True

    def _check_input_shape(self, shape: Sequence[int | None]) -> None:
        """Rank and every known entry must agree with ``batch_shape``."""
        shape = tuple(shape)
        agree = len(shape) == len(self.batch_shape) and all(
            want is None or got is None or want == got for want, got in zip(self.batch_shape, shape)
        )
        if not agree:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                f"expected shape={self.batch_shape}, found shape={shape}"
            )

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create: an InputLayer has no weights."""
        self.built = True

    def call(self, inputs: np.ndarray) -> np.ndarray:
        """The inputs, unchanged (already cast to the dtype)."""
        return inputs

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        """Keras 3's InputLayer config."""
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.compute_dtype,
            "sparse": False,
            "ragged": False,
            "name": self.name,
            "optional": False,
        }


def _float_dtype(dtype: Any) -> str:
    try:
        name = np.dtype("float32" if dtype is None else dtype).name
    except (TypeError, ValueError):  # NumPy raises ValueError for some dicts and tuples
        name = None
    if name not in ("float16", "float32", "float64"):
        raise ValueError(
            "Expected `dtype` to be one of 'float16', 'float32', 'float64'. "
            f"Received: dtype={dtype!r}"
        )
    return name


def Input(  # noqa: N802 - Keras's name
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    *,
    batch_shape: Sequence[int | None] | None = None,
) -> SymbolicTensor:
    """A symbolic input: the start of a functional model.

    Args:
        shape: the shape of one sample (no batch axis); entries are ints or None.
        batch_size: a fixed batch size, or None.
        dtype: ``"float32"`` (default), ``"float16"`` or ``"float64"``.
        name: the name of the input (and of its InputLayer).
        batch_shape: the full shape instead of ``shape`` and ``batch_size``.

    Returns:
        A :class:`~convt.symbolic.SymbolicTensor` with shape ``(batch_size, *shape)``.

    Raises:
        ValueError: as :class:`InputLayer`.

    Example:
        >>> import convt
        >>> x = convt.Input(shape=(10, 8, 128))
        >>> convt.Conv2DTranspose(32, 2, 2, activation="relu")(x).shape
        (None, 20, 16, 32)
    """
    layer = InputLayer(shape, batch_size, dtype, batch_shape=batch_shape, name=name)
    return layer.output
