"""Host arrays of real numbers: the one check that an argument read by NumPy holds them."""

from __future__ import annotations

from typing import Any

import numpy as np


def real_array(values: Any, name: str, *, copy: bool = False) -> np.ndarray:
    """``values`` read by NumPy (a new array with ``copy``), or TypeError naming ``name``.

    Example:
        >>> real_array([1, 2], "kernel").dtype.kind
        'i'
        >>> real_array(["a"], "kernel")
        Traceback (most recent call last):
        ...
        TypeError: Expected `kernel` to be an array of real numbers (float, int or bool). \
Received: kernel.dtype=<U1
    """
    array = np.array(values, copy=True) if copy else np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected `{name}` to be an array of real numbers (float, int or bool). "
            f"Received: {name}.dtype={array.dtype}"
        )
    return array
