"""InputSpec: what a layer accepts as input (rank, channel axis), as Keras 3 describes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convt._registry import Configurable


class InputSpec(Configurable):
    """The rank, shape, dtype and fixed axes a layer's input must have, as Keras 3's.

    convt's layers report theirs through ``layer.input_spec`` (read-only: the
    layer's own checks enforce it). ``get_config`` is Keras's, which leaves out
    ``allow_last_axis_squeeze`` and ``name``.

    Args:
        dtype: the expected dtype's name, or None.
        shape: the expected shape (None for any size on an axis); sets ``ndim``.
        ndim: the expected rank.
        max_ndim: the largest rank accepted.
        min_ndim: the smallest rank accepted.
        axes: ``{axis: size}`` for axes of a fixed size.
        allow_last_axis_squeeze: whether a last axis of 1 may be added or dropped.
        name: the input's key when inputs come as a dict.
        optional: whether the input may be None.

    Raises:
        TypeError: for ``axes`` that is not a dict with integer keys.
        ValueError: for an axis past the last one ``ndim`` or ``max_ndim`` allows.

    Example:
        >>> InputSpec(min_ndim=4, axes={-1: 3})
        InputSpec(min_ndim=4, axes={-1: 3})
    """

    def __init__(
        self,
        dtype: str | None = None,
        shape: tuple[int | None, ...] | None = None,
        ndim: int | None = None,
        max_ndim: int | None = None,
        min_ndim: int | None = None,
        axes: Mapping[int, int] | None = None,
        allow_last_axis_squeeze: bool = False,
        name: str | None = None,
        optional: bool = False,
    ) -> None:
        self.dtype = None if dtype is None else str(dtype)
        self.shape = None if shape is None else tuple(shape)
        self.ndim = ndim if shape is None else len(self.shape)
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.axes = _int_keyed(axes)
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name = name
        self.optional = optional
        last = self.ndim if self.ndim is not None else self.max_ndim
        if self.axes and last is not None and max(self.axes) > last - 1:
            raise ValueError(
                f"Expected every axis of `axes` to be at most {last - 1} for inputs of "
                f"{'ndim' if self.ndim is not None else 'max_ndim'}={last}. "
                f"Received: axes={self.axes}"
            )

    def get_config(self) -> dict[str, Any]:
        """Keras 3's config: dtype, shape, ndim, max_ndim, min_ndim, axes, optional."""
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes,
                "optional": self.optional}

    def __repr__(self) -> str:
        """Keras's form: the set fields among dtype, shape, ndim, max_ndim, min_ndim, axes."""
        fields = ("dtype", "shape", "ndim", "max_ndim", "min_ndim", "axes")
        shown = [f"{field}={getattr(self, field)}" for field in fields if getattr(self, field)]
        return f"InputSpec({', '.join(shown)})"


def _int_keyed(axes: Mapping[int, int] | None) -> dict[int, int]:
    """``axes`` with int keys; TypeError naming it otherwise."""
    if axes is None:
        return {}
    try:
        if isinstance(axes, Mapping):
            return {int(key): value for key, value in axes.items()}
    except (TypeError, ValueError):
        pass
    raise TypeError(f"Expected `axes` to be a dict with integer keys. Received: axes={axes!r}")
