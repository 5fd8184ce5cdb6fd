"""Keras 3's weight constraints on NumPy, resolved and serialized by name.

A constraint maps a weight array to its projection, an array of the weight's
float dtype (float32 for integer input; float16 is computed in float32).

Names are the class names and Keras's snake_case ones (``"max_norm"``...).

Example:
    >>> import numpy as np
    >>> get("non_neg")(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import abc
import operator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convt._registry import Configurable, Registry, float_arg

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "serialize",
]

_EPSILON = 1e-7  # keras.backend.epsilon()


_MAX_DIMENSIONS = 64  # NumPy's limit on an array's dimensions


def _check_axis(axis: Any) -> int | tuple[int, ...]:
    """Returns `axis` as an int or a tuple of ints, each in [-64, 64), or raises ValueError."""
    several = isinstance(axis, (list, tuple))
    try:
        axes = tuple(operator.index(a) for a in (axis if several else [axis]))
    except TypeError:
        axes = None
    if axes is None or not all(-_MAX_DIMENSIONS <= a < _MAX_DIMENSIONS for a in axes):
        raise ValueError(
            "Expected `axis` to be an integer or a list of integers, each in "
            f"[-{_MAX_DIMENSIONS}, {_MAX_DIMENSIONS}). Received: axis={axis!r}"
        )
    return axes if several else axes[0]


def _as_float(w: ArrayLike) -> tuple[np.ndarray, np.dtype]:
    """Returns `w` as an array and its float dtype (float32 for integer input)."""
    w = np.asarray(w)
    return w, w.dtype if w.dtype.kind == "f" else np.dtype(np.float32)


def _rescale_norms(
    w: ArrayLike, axis: int | tuple[int, ...], *, min_value: float, max_value: float, rate: float
) -> np.ndarray:
    """Keras's norm projection: ``w * desired / (epsilon + norms)`` along `axis`.

    ``desired = rate * clip(norms, min_value, max_value) + (1 - rate) * norms``.
    """
    w, dtype = _as_float(w)
    w = w.astype(np.promote_types(dtype, np.float32), copy=False)
    norms = np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))
    desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    return (w * desired / (_EPSILON + norms)).astype(dtype, copy=False)


class Constraint(Configurable, abc.ABC):
    """Base class: ``constraint(w)`` returns the projected weight.

    Subclasses override `__call__` (and `get_config` when they take
    arguments); they work in layers but, being outside the allow-list, cannot
    be serialized.

    Example:
        >>> isinstance(get("unit_norm"), Constraint)
        True
    """

    @abc.abstractmethod
    def __call__(self, w: ArrayLike) -> np.ndarray:
        """Implemented by each subclass."""


class MaxNorm(Constraint):
    """Scales each slice along `axis` down to a norm of at most `max_value`.

    Args:
        max_value: the largest norm, non-negative.
        axis: the axis (or list of axes) the norms are taken over; for a
            transposed convolution kernel ``(*kernel_size, filters, in_channels)``
            use all but the last axis to bound each input channel's filter.

    Example:
        >>> MaxNorm(1.0)(np.array([[3.0], [4.0]])).round(6).tolist()
        [[0.6], [0.8]]
    """

    def __init__(self, max_value: float = 2, *, axis: int | list[int] = 0) -> None:
        self.max_value = float_arg(max_value, name="max_value", non_negative=True)
        self.axis = _check_axis(axis)

    def __call__(self, w: ArrayLike) -> np.ndarray:
        return _rescale_norms(w, self.axis, min_value=0.0, max_value=self.max_value, rate=1.0)

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": _axis_config(self.axis)}


class MinMaxNorm(Constraint):
    """Moves each slice's norm along `axis` toward ``[min_value, max_value]``.

    The new norm is ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``:
    ``rate=1`` enforces the bounds, a smaller rate moves part of the way.

    Args:
        min_value: the smallest norm, non-negative.
        max_value: the largest norm, at least `min_value`.
        rate: how far to move, non-negative.
        axis: the axis (or list of axes) the norms are taken over.

    Example:
        >>> MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]])).round(6).tolist()
        [[0.6], [0.8]]
    """

    def __init__(
        self,
        min_value: float = 0.0,
        max_value: float = 1.0,
        *,
        rate: float = 1.0,
        axis: int | list[int] = 0,
    ) -> None:
        self.min_value = float_arg(min_value, name="min_value", non_negative=True)
        self.max_value = float_arg(max_value, name="max_value", non_negative=True)
        if self.min_value > self.max_value:
            raise ValueError(
                "Expected `min_value` to be at most `max_value`. "
                f"Received: min_value={min_value!r}, max_value={max_value!r}"
            )
        self.rate = float_arg(rate, name="rate", non_negative=True)
        self.axis = _check_axis(axis)

    def __call__(self, w: ArrayLike) -> np.ndarray:
        return _rescale_norms(
            w, self.axis, min_value=self.min_value, max_value=self.max_value, rate=self.rate
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": _axis_config(self.axis),
        }


class UnitNorm(Constraint):
    """Scales each slice along `axis` to norm 1: ``w / (epsilon + norm)``.

    Args:
        axis: the axis (or list of axes) the norms are taken over.

    Example:
        >>> UnitNorm()(np.array([[3.0], [4.0]])).round(6).tolist()
        [[0.6], [0.8]]
    """

    def __init__(self, axis: int | list[int] = 0) -> None:
        self.axis = _check_axis(axis)

    def __call__(self, w: ArrayLike) -> np.ndarray:
        return _rescale_norms(w, self.axis, min_value=1.0, max_value=1.0, rate=1.0)

    def get_config(self) -> dict[str, Any]:
        return {"axis": _axis_config(self.axis)}


class NonNeg(Constraint):
    """Sets negative weights to 0.

    Example:
        >>> NonNeg()(np.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    def __call__(self, w: ArrayLike) -> np.ndarray:
        w, dtype = _as_float(w)
        return np.maximum(w, 0).astype(dtype, copy=False)


def _axis_config(axis: int | tuple[int, ...]) -> int | list[int]:
    """`axis` as a JSON value: an int or a list."""
    return list(axis) if isinstance(axis, tuple) else axis


_REGISTRY = Registry(
    kind="constraint", module="keras.constraints", objects=[MaxNorm, MinMaxNorm, NonNeg, UnitNorm],
    also_accepted_modules=("keras.src.constraints.constraints",),  # Keras 3.0.0-3.0.1
)
get, serialize, deserialize = _REGISTRY.get, _REGISTRY.serialize, _REGISTRY.deserialize
