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
    "bfloat16": ("bfloat16", "bfloat16"),
    "mixed_bfloat16": ("float32", "bfloat16"),
}
_TORCH_ONLY = ("bfloat16", "mixed_bfloat16")
"""Policies only the torch layers take: NumPy has no bfloat16."""


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
    def get(cls, identifier: Any, *, bfloat16: bool = False) -> DTypePolicy:
        """Resolves None (float32), a name, a NumPy dtype, a policy or its serialized dict.

        ``bfloat16`` admits ``"bfloat16"`` and ``"mixed_bfloat16"`` (the torch layers).

        Raises:
            ValueError: for a dtype the layers cannot hold (e.g. ``"int32"``; ``"bfloat16"``
                without ``bfloat16``) or a malformed dict.
        """
        if identifier is None:
            return cls("float32")
        if isinstance(identifier, dict):
            identifier = cls._name_in(identifier)
        name = identifier.name if isinstance(identifier, cls) else _dtype_name(identifier)
        allowed = [n for n in _POLICIES if bfloat16 or n not in _TORCH_ONLY]
        if name not in allowed:
            hint = (" (NumPy has no bfloat16: the torch layers, convt.torch, take 'bfloat16' "
                    "and 'mixed_bfloat16')" if name in _TORCH_ONLY else "")
            raise ValueError(
                f"Expected `dtype` to be one of {sorted(allowed)}{hint}. "
                f"Received: dtype={identifier!r}"
            )
        return identifier if isinstance(identifier, cls) else cls(name)

    @staticmethod
    def _name_in(config: dict[str, Any]) -> str:
        """The policy name of a serialized ``DTypePolicy``."""
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
        return inner["name"]


def _dtype_name(identifier: Any) -> str | None:
    if isinstance(identifier, str):
        return identifier
    if type(identifier).__module__ == "torch" and type(identifier).__name__ == "dtype":
        return str(identifier).removeprefix("torch.")  # torch.float32, torch.bfloat16...
    if identifier is float:  # Keras's standardize_dtype: Python's float is float32
        return "float32"
    try:
        return np.dtype(identifier).name
    except (TypeError, ValueError):  # ValueError: a dict or list NumPy reads as a record
        return None
