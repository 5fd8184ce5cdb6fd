"""Array-in, array-out transposed convolution with Keras 3's semantics."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from convt._arrays import host_array
from convt._shapes import check_call_fits, conv_transpose_output_shape, remembered_plan
from convt.backends import _recipes
from convt.backends import numpy as numpy_backend
from convt.prepared import PreparedKernel

__all__ = ["PreparedKernel", "conv_transpose", "conv_transpose_output_shape"]


def conv_transpose(
    inputs: Any,
    kernel: Any,
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    output_padding: int | Sequence[int] | None = None,
    data_format: str | None = None,
    dilation_rate: int | Sequence[int] = 1,
) -> Any:
    """N-D transposed convolution (1, 2 or 3 spatial axes), exactly as Keras 3.

    Per spatial axis, input element ``n`` and kernel tap ``j`` contribute to
    index ``n * strides + j * dilation_rate`` of the full scatter, of length
    ``(i - 1) * strides + (k - 1) * dilation_rate + 1``; the result is Keras's
    window of it (for ``"same"``, the odd element is cut on the right; with
    ``output_padding``, zeros are appended where the window runs past the
    scatter). The kernel is not flipped. Unlike the layers, the op accepts
    ``strides > 1`` together with ``dilation_rate > 1`` and any
    ``output_padding >= 0``.

    Args:
        inputs: array of rank 3, 4 or 5.
        kernel: array ``(*kernel_size, filters, in_channels)``, or a
            :class:`~convt.prepared.PreparedKernel` of one for repeated calls
            (the NumPy backend then keeps Winograd's transformed taps; a plain
            array with the same bits as a recent one gets them too, see
            :func:`convt.prepared.recognize`).
        strides: int or tuple of ints, one per spatial axis.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        output_padding: None (Keras infers it), an int or a tuple of ints.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ints.

    Input shape:
        ``(batch, *spatial, in_channels)`` (channels_last) or
        ``(batch, in_channels, *spatial)`` (channels_first).

    Output shape:
        Same layout with ``filters`` channels and, per axis,
        ``valid``: ``(i - 1) * s + K + output_padding`` where
        ``K = (k - 1) * d + 1`` and ``output_padding`` defaults to
        ``max(K, s) - K``; ``same``: ``i * s`` when ``output_padding`` is None,
        else ``(i - 1) * s + K % 2 + output_padding``.

    Raises:
        ValueError: for invalid arguments (as ``conv_transpose_output_shape``),
            or an input, kernel or output that does not fit twice in the machine's
            memory (an argument may be a broadcast view of far more elements than it
            holds).
        TypeError: for arguments that are not real numbers.

    Returns:
        The output, float32/float64 as the inputs (float16 is computed in
        float32 and returned as float16; an integer argument takes the
        other's float dtype, two integer ones give float32). A
        NumPy array for array inputs; a torch tensor on the same device when
        either argument is a torch tensor (see :mod:`convt.backends.torch`).

    Example:
        >>> import numpy as np
        >>> x = np.ones((1, 3, 1), dtype="float32")
        >>> w = np.ones((3, 1, 1), dtype="float32")
        >>> conv_transpose(x, w, strides=2)[0, :, 0]
        array([1., 1., 2., 1., 2., 1., 1.], dtype=float32)
    """
    arguments = {"strides": strides, "padding": padding, "output_padding": output_padding,
                 "data_format": data_format, "dilation_rate": dilation_rate}
    remembered = _recipes.call(inputs, kernel, arguments)
    if remembered is not None:
        return remembered
    prepared = isinstance(kernel, PreparedKernel)
    if _is_torch_tensor(inputs) or _is_torch_tensor(kernel):
        from convt.backends import torch as torch_backend

        return torch_backend.op(inputs, kernel.numpy() if prepared else kernel, strides,
                                padding, output_padding, data_format, dilation_rate)
    inputs = host_array(inputs, "inputs")
    kernel = kernel if prepared else host_array(kernel, "kernel")
    args, output_shape = remembered_plan(
        tuple(inputs.shape),
        tuple(kernel.shape),
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
    )
    itemsize = max(4, inputs.dtype.itemsize, kernel.dtype.itemsize)  # of the copies made
    check_call_fits(itemsize, input=inputs.shape, kernel=kernel.shape, output=output_shape)
    return numpy_backend.conv_transpose(inputs, kernel, args)


def _is_torch_tensor(array: Any) -> bool:
    """True for a ``torch.Tensor`` or a subclass; torch is never imported here (without it
    loaded, no tensor exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(array, torch.Tensor)

