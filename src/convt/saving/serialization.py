"""Layers to and from Keras 3's JSON dicts, resolved from an allow-list only.

A serialized layer is ``{"module", "class_name", "config", "registered_name",
"build_config"}`` (functional models add ``"name"`` and ``"inbound_nodes"``).
Reading one: the class comes from :data:`LAYERS` (convt's own classes) and
nothing else; no module named in a file is imported and no code is evaluated
(a Keras ``Lambda`` layer is refused whatever ``safe_mode`` says); unknown keys
are refused; and the weights each layer would create are charged to a
:class:`WeightBudget` before anything is allocated.

Example:
    >>> import convt
    >>> data = serialize_layer(convt.Conv1DTranspose(2, 3, name="up"))
    >>> data["module"], data["class_name"], data["config"]["kernel_size"]
    ('keras.layers', 'Conv1DTranspose', (3,))
    >>> deserialize_layer(data).name
    'up'
    >>> deserialize_layer({"class_name": "Dense", "config": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: Unknown layer class: convt loads only its own layers, ... class_name='Dense'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from convt.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from convt.layers.input_layer import InputLayer
from convt.layers.layer import Layer, batch_input_shape_from

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, InputLayer)
}
"""The layer classes a file may name: convt's own, and nothing else."""

_LAYER_ALIASES = {f"Convolution{rank}DTranspose": f"Conv{rank}DTranspose" for rank in (1, 2, 3)}
_LAYER_MODULES = ("keras.layers", None)
_LAYER_KEYS = ("module", "class_name", "config", "registered_name", "build_config")
_FUNCTIONAL_LAYER_KEYS = (*_LAYER_KEYS, "name", "inbound_nodes")
_DECLARED_INPUT_KEYS = ("input_shape", "batch_input_shape", "batch_size", "input_dim")
_CODE_MARKERS = ("Lambda", "__lambda__", "TFOpLambda", "function_type")


MAX_CONFIG_WEIGHT_ELEMENTS = 2**30
"""The weight elements a config loaded without a file (``from_config``) may declare: 4 GiB
of float32 weights, far more than any model of transposed convolutions holds."""


class WeightBudget:
    """A cap on the weight elements the layers of one load may create.

    Args:
        max_elements: the most elements all weights together may have.
        source: what the cap is, for the error (a file's loader passes what
            its weights can hold).

    Example:
        >>> budget = WeightBudget(10)
        >>> budget.charge([(2, 3)])
        >>> budget.charge([(5,)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: Expected the model's weights to fit ... 11 elements in total
    """

    def __init__(self, max_elements: int = MAX_CONFIG_WEIGHT_ELEMENTS, *,
                 source: str = "the cap of a config") -> None:
        self.max_elements = max_elements
        self.source = source
        self.used = 0

    def charge(self, shapes: Sequence[Sequence[int]]) -> None:
        """Adds the elements of ``shapes``; raises if the total passes the cap."""
        total = self.used + sum(math.prod(shape) for shape in shapes)
        if total > self.max_elements:
            raise ValueError(
                f"Expected the model's weights to fit in {self.source} (at most "
                f"{self.max_elements} elements). Received: weight shapes {list(shapes)}, "
                f"{total} elements in total"
            )
        self.used = total


def refuse_code(value: Any) -> None:
    """Raises if a config holds a Keras ``Lambda`` layer or serialized function.

    Loading those would run code stored in the file, which convt never does.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _CODE_MARKERS or (key == "class_name" and item in _CODE_MARKERS):
                raise ValueError(
                    "Refusing to load code: the file holds a Keras Lambda layer or a "
                    "serialized function, and convt never runs code from a file (with any "
                    f"`safe_mode`). Received: {key}={item!r}"
                )
            refuse_code(item)
    elif isinstance(value, list):
        for item in value:
            refuse_code(item)


def serialize_layer(
    layer: Layer, *, input_shape: Sequence[int | None] | None = None
) -> dict[str, Any]:
    """Keras 3's dict for ``layer``; ``build_config`` when ``input_shape`` is given.

    A declared ``batch_input_shape`` is left out: Keras 3 layers refuse it, and
    the model's InputLayer carries that shape.
    """
    config = layer.get_config()
    config.pop("batch_input_shape", None)
    data: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": type(layer).__name__,
        "config": config,
        "registered_name": None,
    }
    if input_shape is not None and not isinstance(layer, InputLayer):
        data["build_config"] = {"input_shape": list(input_shape)}
    return data


def check_keys(data: Any, allowed: Sequence[str] | None, what: str) -> None:
    """Raises unless ``data`` is a dict whose keys are all in ``allowed`` (any if None)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"Expected {what} to be a dict. Received: {what}={data!r}")
    unknown = [] if allowed is None else sorted(set(data) - set(allowed), key=str)
    if unknown:
        raise ValueError(
            f"Unknown keys {unknown} in {what}: expected keys among {list(allowed)}. "
            f"Received: {what}={dict(data)!r}"
        )


def deserialize_layer(
    data: Any, *, budget: WeightBudget | None = None, functional: bool = False
) -> Layer:
    """A new layer from Keras 3's dict, from the allow-list only.

    Args:
        data: the serialized layer.
        budget: charged with the weights of a layer that declares its input
            shape (and so builds at once); no cap when None.
        functional: accept the ``name`` and ``inbound_nodes`` keys of a
            functional model's layer list.

    Raises:
        ValueError: for an unknown class, module, registered name or key, for
            code (``Lambda``), or for weights beyond the budget.
    """
    check_keys(data, _FUNCTIONAL_LAYER_KEYS if functional else _LAYER_KEYS, "layer_config")
    refuse_code(data)
    cls = _layer_class(data.get("class_name"))
    module, registered_name = data.get("module"), data.get("registered_name")
    if module not in _LAYER_MODULES:
        raise ValueError(
            f"Expected the `module` of a serialized layer to be one of {list(_LAYER_MODULES)}; "
            f"convt never imports modules named in a file. Received: module={module!r}"
        )
    if registered_name not in (None, data["class_name"]):
        raise ValueError(
            "Expected `registered_name` to be None or the class name of a built-in layer. "
            f"Received: registered_name={registered_name!r}"
        )
    config = data.get("config", {})
    check_keys(config, None, "config")
    return cls.from_config(dict(config), budget=budget)


def _layer_class(class_name: Any) -> type[Layer]:
    class_name = _LAYER_ALIASES.get(class_name, class_name) if isinstance(class_name, str) else None
    if class_name not in LAYERS:
        raise ValueError(
            "Unknown layer class: convt loads only its own layers, expected one of "
            f"{sorted(LAYERS)}. Received: class_name={class_name!r}"
        )
    return LAYERS[class_name]


def charge_declared_input(
    cls: type[Layer], config: Mapping[str, Any], budget: WeightBudget
) -> None:
    """A layer that declares its input builds in its constructor: charge it first.

    Raises:
        ValueError: for weights beyond the budget, or as the layer's
            constructor raises for the rest of the config.
    """
    if cls is InputLayer or not any(key in config for key in _DECLARED_INPUT_KEYS):
        return
    declared = batch_input_shape_from(*(config.get(key) for key in _DECLARED_INPUT_KEYS))
    undeclared = {key: value for key, value in config.items() if key not in _DECLARED_INPUT_KEYS}
    if declared is not None:
        budget.charge(cls.from_config(undeclared).weight_shapes(declared))
