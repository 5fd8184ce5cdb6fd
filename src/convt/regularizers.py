"""Keras 3's weight regularizers on NumPy, resolved and serialized by name.

A regularizer maps a weight array to a penalty: a NumPy scalar in the weight's
float dtype (float32 for integer input). Sums are accumulated in float64 and
rounded once.

Names are the class names and their Keras snake_case: ``"l1"``, ``"l2"``,
``"l1l2"`` and ``"orthogonal_regularizer"``. As in Keras 3.15, the string
``"l1_l2"`` is not a name (``l1_l2`` is the class's alias in this module).

Example:
    >>> import numpy as np
    >>> penalty = get("l2")(np.ones((5, 5), dtype=np.float32))
    >>> penalty.dtype, round(float(penalty), 6)
    (dtype('float32'), 0.25)
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convt._registry import Configurable, Registry, float_arg

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "deserialize",
    "get",
    "refuse_for_conv_transpose",
    "serialize",
]

_EPSILON = 1e-7  # keras.backend.epsilon()


def _as_weight(x: ArrayLike) -> tuple[np.ndarray, np.dtype]:
    """Returns `x` in float64 and the dtype of its penalty."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    return x.astype(np.float64), dtype


class Regularizer(Configurable, abc.ABC):
    """Base class: ``regularizer(x)`` returns a scalar penalty for the weight `x`.

    A subclass works in layers but has no serialized form (it is not in the
    allow-list).

    Example:
        >>> class SumOfWeights(Regularizer):
        ...     def __call__(self, x):
        ...         return np.sum(x)
        >>> float(SumOfWeights()(np.ones((2, 2))))
        4.0
    """

    @abc.abstractmethod
    def __call__(self, x: ArrayLike) -> np.floating:
        """Implemented by each subclass."""


class L1L2(Regularizer):
    """Penalty ``l1 * sum(abs(x)) + l2 * sum(square(x))``.

    Both factors default to 0 (also by name: ``get("l1l2")`` penalizes
    nothing), as in Keras 3. None means 0.

    Args:
        l1: non-negative L1 factor.
        l2: non-negative L2 factor.

    Example:
        >>> float(L1L2(l1=0.5, l2=0.25)(np.array([-2.0, 2.0])))
        4.0
    """

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0) -> None:
        self.l1 = float_arg(0.0 if l1 is None else l1, name="l1", non_negative=True)
        self.l2 = float_arg(0.0 if l2 is None else l2, name="l2", non_negative=True)

    def __call__(self, x: ArrayLike) -> np.floating:
        """Returns the penalty; a term whose factor is 0 is skipped, as in Keras."""
        x, dtype = _as_weight(x)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * np.abs(x).sum()
        if self.l2:
            penalty += self.l2 * np.square(x).sum()
        return dtype.type(penalty)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """Penalty ``l1 * sum(abs(x))``: an `L1L2` whose config holds `l1` alone.

    Args:
        l1: non-negative factor; None means the default 0.01.

    Example:
        >>> float(L1(0.5)(np.array([-2.0, 2.0])))
        2.0
    """

    def __init__(self, l1: float | None = 0.01) -> None:
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """Penalty ``l2 * sum(square(x))``: an `L1L2` whose config holds `l2` alone.

    Args:
        l2: non-negative factor; None means the default 0.01.

    Example:
        >>> float(L2(0.5)(np.array([-2.0, 2.0])))
        4.0
    """

    def __init__(self, l2: float | None = 0.01) -> None:
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalizes non-orthogonal rows (or columns) of a rank-2 weight.

    The penalty is ``factor`` times the mean, over pairs of distinct rows
    (``mode="rows"``) or columns (``mode="columns"``), of the absolute cosine
    of their angle. A weight with fewer than two rows (columns) has no pairs
    and a penalty of 0 (Keras divides by zero there).

    Args:
        factor: non-negative factor.
        mode: ``"rows"`` or ``"columns"``.

    Raises:
        ValueError: on call, for a weight of rank other than 2.

    Example:
        >>> round(float(OrthogonalRegularizer(factor=1.0)([[1.0, 0.0], [1.0, 1.0]])), 6)
        0.707107
    """

    def __init__(self, factor: float = 0.01, *, mode: str = "rows") -> None:
        self.factor = float_arg(factor, name="factor", non_negative=True)
        if mode not in ("rows", "columns"):
            raise ValueError(
                "Invalid value for argument `mode`. Expected one of "
                f'{{"rows", "columns"}}. Received: mode={mode!r}'
            )
        self.mode = mode

    def __call__(self, inputs: ArrayLike) -> np.floating:
        x, dtype = _as_weight(inputs)
        if x.ndim != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2. "
                f"Received: inputs.shape={x.shape}"
            )
        vectors = x if self.mode == "rows" else x.T
        size = vectors.shape[0]
        if size < 2:
            return dtype.type(0.0)
        squared_norms = np.sum(np.square(vectors), axis=1, keepdims=True)
        unit = vectors / np.sqrt(np.maximum(squared_norms, _EPSILON**2))
        cosines = np.abs(unit @ unit.T)[~np.eye(size, dtype=bool)]
        return dtype.type(self.factor * cosines.mean())

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


def refuse_for_conv_transpose(regularizer: Regularizer | None, *, name: str) -> None:
    """Raises for a regularizer that cannot penalize a transposed convolution's weights or
    outputs: :class:`OrthogonalRegularizer` needs rank 2, and a transposed convolution's
    kernel has rank 3 to 5, its bias 1, its outputs 3 to 5. Keras accepts it and fails at
    the first penalty; convt refuses it when the layer is made.

    Example:
        >>> refuse_for_conv_transpose(L2(0.01), name="kernel_regularizer")  # applicable
    """
    if isinstance(regularizer, OrthogonalRegularizer):
        raise ValueError(
            "OrthogonalRegularizer penalizes rank-2 weights; the weights and outputs of a "
            f"transposed convolution have other ranks. Received: {name}={regularizer!r}"
        )


_REGISTRY = Registry(
    kind="regularizer",
    module="keras.regularizers",
    also_accepted_modules=("keras.src.regularizers.regularizers",),  # Keras 3.0.0-3.0.1
    objects=[L1, L2, L1L2, OrthogonalRegularizer],
)
get, serialize, deserialize = _REGISTRY.get, _REGISTRY.serialize, _REGISTRY.deserialize

l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer
