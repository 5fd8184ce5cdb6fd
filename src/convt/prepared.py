"""A kernel prepared once for many calls: what the op derives from it is kept.

Inference engines prepare their weights when a model is loaded (ONNX
Runtime's initializers, oneDNN's reordered weights) and reuse them on every
call. :class:`PreparedKernel` does the same for :func:`convt.ops.conv_transpose`:
it holds a private, read-only copy of the kernel, so what the NumPy backend
derives from it (Winograd's transformed taps) stays valid for as long as the
object lives, and is computed on the first call that needs it. No cache is
keyed on an array the caller can still write to.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from convt._arrays import real_array

MAX_DERIVED = 8
"""Derived arrays kept per prepared kernel, least recently used dropped first.

One is kept per group of sub-pixel phases and dtype, which the layer's arguments
fix; a kernel used with many different arguments keeps only the latest."""


class PreparedKernel:
    """A kernel for repeated calls of :func:`convt.ops.conv_transpose` (NumPy inputs).

    Pass it where the op takes ``kernel``; the values are the same as with the
    array. The copy it holds cannot be written to (``np.asarray`` gives a
    read-only array), so the transformed taps it keeps cannot go stale. With
    numba installed, shapes whose Winograd tiles pay without the per-call kernel
    transform then run in those tiles (:mod:`convt.backends._winograd`);
    the layers of :mod:`convt.layers` prepare their kernel this way.

    Args:
        kernel: array ``(*kernel_size, filters, in_channels)`` of real numbers.

    Raises:
        TypeError: if ``kernel`` is not an array of real numbers.

    Example:
        >>> import numpy as np
        >>> from convt import ops
        >>> kernel = PreparedKernel(np.ones((3, 1, 1), "float32"))
        >>> ops.conv_transpose(np.ones((1, 3, 1), "float32"), kernel, strides=2)[0, :, 0]
        array([1., 1., 2., 1., 2., 1., 1.], dtype=float32)
    """

    def __init__(self, kernel: Any) -> None:
        array = real_array(kernel, "kernel", copy=True)
        array.flags.writeable = False
        self._array = array
        self._derived: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    def numpy(self) -> np.ndarray:
        """A writable copy of the kernel."""
        return self._array.copy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == self._array.dtype:
            return self._array.copy() if copy else self._array
        return self._array.astype(dtype)

    def derived(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array kept under ``key``, or ``compute()``'s, kept read-only from then on.

        ``key`` must name everything ``compute`` reads besides the kernel.
        """
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
        value = compute()
        value.flags.writeable = False
        with self._lock:
            self._derived[key] = value
            while len(self._derived) > MAX_DERIVED:
                self._derived.popitem(last=False)
        return value

    def __reduce__(self) -> tuple:
        """Copies and pickles hold the kernel only; what was derived is derived again."""
        return PreparedKernel, (self._array,)

    def __repr__(self) -> str:
        return f"<PreparedKernel shape={self.shape}, dtype={self.dtype.name}>"
