"""A layer weight: a NumPy array with a name, a trainable flag, a regularizer and a constraint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convt._arrays import host_array


class Variable:
    """A named, shape-checked holder of one weight array.

    ``np.asarray(variable)`` gives the current value, a read-only array;
    :meth:`assign` replaces it with a new one after checking the shape, casting
    to the variable's dtype. A value is never changed in place, so whatever is
    derived from it (a layer's prepared kernel) stays valid while it is current.

    Example:
        >>> v = Variable(np.zeros((2,), "float32"), name="bias", path="layer/bias")
        >>> v.assign([1.0, 2.0])
        >>> v.numpy()
        array([1., 2.], dtype=float32)
    """

    def __init__(
        self,
        value: np.ndarray,
        *,
        name: str,
        path: str,
        trainable: bool = True,
        regularizer: Callable[[np.ndarray], Any] | None = None,
        constraint: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self._value = _read_only(np.array(value))
        self.name = name
        self.path = path
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def value(self) -> np.ndarray:
        """The array itself (not a copy), read-only."""
        return self._value

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> str:
        return self._value.dtype.name

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        return self._value.copy()

    def assign(self, value: Any) -> None:
        """Replaces the value; the shape must stay the same.

        Raises:
            ValueError: if ``value`` has another shape.
        """
        new = host_array(value, "value")
        if new.shape != self.shape:
            raise ValueError(
                f"Variable '{self.path}' has shape {self.shape}; the assigned value "
                f"must have the same shape. Received: value.shape={new.shape}"
            )
        self._value = _read_only(new.astype(self._value.dtype, copy=True))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == self._value.dtype:
            return self._value.copy() if copy else self._value
        return self._value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
