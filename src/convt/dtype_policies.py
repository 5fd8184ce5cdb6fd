"""Dtype policies: the dtype a layer keeps its weights in and the one it computes in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_POLICIES = {
    "float16": ("float16", "float16"),
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_float16": ("float32", "float16"),
}


@dataclass(frozen=True)
class DTypePolicy:
    """A named pair (variable dtype, compute dtype), as Keras 3's ``DTypePolicy``.

    Example:
        >>> DTypePolicy.get("mixed_float16").compute_dtype
        'float16'
    """

    name: str

    @property
    def variable_dtype(self) -> str:
        return _POLICIES[self.name][0]

    @property
    def compute_dtype(self) -> str:
        return _POLICIES[self.name][1]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def serialize(self) -> dict[str, Any]:
        """Keras 3's serialized form of a dtype policy."""
        return {
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": self.get_config(),
            "registered_name": None,
        }

    @classmethod
    def get(cls, identifier: Any) -> DTypePolicy:
        """Resolves None (float32), a name, a NumPy dtype, a policy or its serialized dict.

        Raises:
            ValueError: for a dtype NumPy layers cannot hold (e.g. ``"int32"``,
                ``"bfloat16"``) or a malformed dict.
        """
        if identifier is None:
            return cls("float32")
        if isinstance(identifier, cls):
            return identifier
        if isinstance(identifier, dict):
            return cls._from_dict(identifier)
        name = _dtype_name(identifier)
        if name not in _POLICIES:
            raise ValueError(
                f"Expected `dtype` to be one of {sorted(_POLICIES)}. "
                f"Received: dtype={identifier!r}"
            )
        return cls(name)

    @classmethod
    def _from_dict(cls, config: dict[str, Any]) -> DTypePolicy:
        inner = config.get("config")
        if (
            config.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy")
            or not isinstance(inner, dict)
            or set(inner) != {"name"}
        ):
            raise ValueError(
                "Expected a serialized DTypePolicy such as {'class_name': "
                f"'DTypePolicy', 'config': {{'name': 'float32'}}}}. Received: dtype={config!r}"
            )
        return cls.get(inner["name"])


def _dtype_name(identifier: Any) -> str | None:
    if isinstance(identifier, str):
        return identifier
    if identifier is float:  # Keras's standardize_dtype: Python's float is float32
        return "float32"
    try:
        return np.dtype(identifier).name
    except TypeError:
        return None
