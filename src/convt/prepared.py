"""A kernel prepared once for many calls: what the op derives from it is kept.

Inference engines prepare their weights when a model is loaded (ONNX
Runtime's initializers, oneDNN's reordered weights) and reuse them on every
call. :class:`PreparedKernel` does the same for :func:`convt.ops.conv_transpose`:
it holds a private, read-only copy of the kernel, so what the NumPy backend
derives from it (Winograd's transformed taps) stays valid for as long as the
object lives, and is computed on the first call that needs it. No cache is
keyed on an array the caller can still write to: a plain array is recognized
(:func:`recognize`) only by comparing every bit of it with a kept copy.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from convt._arrays import real_array

MAX_DERIVED = 8
"""Derived arrays kept per prepared kernel, least recently used dropped first.

One is kept per group of sub-pixel phases and dtype, which the layer's arguments
fix, and one per dtype saying whether every value is finite (Winograd's tiles take
only finite kernels); a kernel used with many different arguments keeps only the
latest."""

RECOGNIZED_KERNELS = 4
"""Plain kernel arrays the NumPy backend keeps prepared (:func:`recognize`), least
recently used dropped first: enough for the Winograd layers of a small generator."""

RECOGNIZED_MAX_BYTES = 4 * 2**20
"""Larger kernels are not kept: each kept kernel holds a copy and its transformed taps
(about 1.4-2.3 times the kernel), so the four keep at most about 50 MiB."""


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


_recognized: list[PreparedKernel] = []
_recognized_lock = threading.Lock()


def recognize(kernel: np.ndarray) -> tuple[PreparedKernel, bool]:
    """A prepared copy of ``kernel``, and whether it was kept from an earlier call.

    The op given a plain array cannot keep what it derives from it under the
    array's identity: the caller may write to the array between calls. It
    keeps the last :data:`RECOGNIZED_KERNELS` kernels instead, each as a
    private copy, and a call whose kernel has the same shape, dtype and bits
    as one of them (signed zeros and NaN payloads included) gets that one back,
    with its transformed taps. Otherwise the kernel is copied and kept in place
    of the least recently used one. The comparison reads both arrays once (80
    us for DCGAN's 3.2 MiB 5x5 kernel, against 1.4-2.0 ms for its transform).

    Example:
        >>> kernel = np.ones((3, 1, 1), "float32")
        >>> forget_recognized()
        >>> [recognize(kernel)[1], recognize(kernel.copy())[1]]
        [False, True]
    """
    bits = _bits(kernel)
    with _recognized_lock:
        for index, kept in enumerate(_recognized):
            if kept.shape == kernel.shape and kept.dtype == kernel.dtype and np.array_equal(
                    _bits(kept._array), bits):
                _recognized.append(_recognized.pop(index))
                return kept, True
    prepared = PreparedKernel(kernel)
    with _recognized_lock:
        _recognized.append(prepared)
        del _recognized[:-RECOGNIZED_KERNELS]
    return prepared, False


def forget_recognized() -> None:
    """Drops the kernels :func:`recognize` keeps (and the memory they hold)."""
    with _recognized_lock:
        _recognized.clear()


def _bits(array: np.ndarray) -> np.ndarray:
    """The array's elements as unsigned integers of the same width, flat (a view when
    it is contiguous): equal bits, not equal values (``-0.0 != 0.0``, NaN == NaN)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.dtype(f"u{flat.dtype.itemsize}"))


def _forget_in_forked_child() -> None:
    """A child starts with one thread: a fresh lock, and none of the parent's kernels
    (whose own locks another parent thread may have held at the fork)."""
    global _recognized_lock
    _recognized_lock = threading.Lock()
    _recognized.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)
