"""Host arrays of real numbers: the one check that an argument read by NumPy holds them."""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np


def host_array(values: Any, name: str, *, copy: bool = False) -> np.ndarray:
    """``values`` read by NumPy (a new array with ``copy``), or ValueError naming ``name``
    when nested sequences are ragged (NumPy's own message names neither).

    Example:
        >>> host_array([[1.0, 2.0], [3.0]], "inputs")
        Traceback (most recent call last):
        ...
        ValueError: Expected `inputs` to be a rectangular array (nested sequences of equal \
lengths). Received: inputs=[[1.0, 2.0], [3.0]]
    """
    try:
        return np.array(values, copy=True) if copy else np.asarray(values)
    except ValueError as error:
        raise ValueError(
            f"Expected `{name}` to be a rectangular array (nested sequences of equal lengths). "
            f"Received: {name}={reprlib.repr(values)}"
        ) from error
    except TypeError as error:  # e.g. a sparse or bfloat16 torch tensor, which NumPy cannot hold
        raise TypeError(
            f"Expected `{name}` to be an array that NumPy can read. Received: {name} of type "
            f"{type(values).__name__}, which could not be read ({error})"
        ) from error


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
    array = host_array(values, name, copy=copy)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected `{name}` to be an array of real numbers (float, int or bool). "
            f"Received: {name}.dtype={array.dtype}"
        )
    return array
