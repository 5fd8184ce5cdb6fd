"""The three rank shells of :class:`convt.torch.ConvTranspose`.

Each takes the positional order of its NumPy twin in :mod:`convt.layers`
(``Conv3DTranspose`` puts ``data_format`` before ``output_padding``, as
Keras 3 does): the signature is read from the twin, not restated.
"""

from __future__ import annotations

import inspect
from typing import Any

from convt import layers
from convt.torch.layers import ConvTranspose


def _rank_shell(rank: int, twin: type, doc: str) -> type[ConvTranspose]:
    """A ConvTranspose subclass with ``rank`` fixed and ``twin``'s constructor signature."""
    signature = inspect.signature(twin.__init__)

    def __init__(self: ConvTranspose, *args: Any, **kwargs: Any) -> None:
        arguments = signature.bind(self, *args, **kwargs).arguments
        arguments.pop("self")
        extra = arguments.pop("kwargs", {})
        ConvTranspose.__init__(self, rank, **arguments, **extra)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    namespace = {"__init__": __init__, "__doc__": doc, "__module__": __name__,
                 "__qualname__": twin.__name__}
    return type(twin.__name__, (ConvTranspose,), namespace)


Conv1DTranspose = _rank_shell(1, layers.Conv1DTranspose, """1D transposed convolution module.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
        dilation_rate, **kwargs: as :class:`convt.layers.Conv1DTranspose`.

    Input shape:
        ``(batch, steps, channels)`` (channels_last) or ``(batch, channels, steps)``.

    Output shape:
        ``(batch, new_steps, filters)`` or ``(batch, filters, new_steps)``.

    Example:
        >>> import torch
        >>> Conv1DTranspose(8, 4, strides=2, padding="same")(torch.zeros(2, 50, 3)).shape
        torch.Size([2, 100, 8])
    """)

Conv2DTranspose = _rank_shell(2, layers.Conv2DTranspose, """2D transposed convolution module.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
        dilation_rate, **kwargs: as :class:`convt.layers.Conv2DTranspose`.

    Input shape:
        ``(batch, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, rows, cols)``.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` or ``(batch, filters, new_rows, new_cols)``.

    Example:
        >>> import torch
        >>> layer = Conv2DTranspose(32, 2, 2, activation="relu", data_format="channels_first")
        >>> layer(torch.rand(4, 128, 10, 8)).shape
        torch.Size([4, 32, 20, 16])
    """)

Conv3DTranspose = _rank_shell(3, layers.Conv3DTranspose, """3D transposed convolution module.

    Keras 3's positional order puts ``data_format`` before ``output_padding``.

    Args:
        filters, kernel_size, strides, padding, data_format, output_padding,
        dilation_rate, **kwargs: as :class:`convt.layers.Conv3DTranspose`.

    Input shape:
        ``(batch, depth, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, depth, rows, cols)``.

    Output shape:
        ``(batch, new_depth, new_rows, new_cols, filters)`` or
        ``(batch, filters, new_depth, new_rows, new_cols)``.

    Example:
        >>> import torch
        >>> Conv3DTranspose(4, 2, 2)(torch.zeros(1, 3, 3, 3, 2)).shape
        torch.Size([1, 6, 6, 6, 4])
    """)

Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
