"""The shared machinery of the building blocks: allow-list registries and configs.

`activations`, `initializers`, `regularizers` and `constraints` each hold one
`Registry`: a dict from accepted names to the module's own functions or
classes. Names and serialized dicts are resolved through that dict alone;
nothing named in a config is ever imported or evaluated. Classes derive from
`Configurable`, whose `from_config` refuses keys the constructor does not take.
Each module exposes its registry's `get`, `serialize` and `deserialize` as its own:
`get` takes None, a name, a serialized dict, a class or a callable; `serialize`
writes Keras 3's form; `deserialize` reads a name, Keras 3's dict
``{"module", "class_name", "config", "registered_name"}`` or the older
``{"class_name", "config"}``.

Example:
    >>> registry = Registry(kind="word", module="demo", objects=[str.upper],
    ...                     aliases={"hello": str.upper})
    >>> registry.get("hello")("hi")
    'HI'
    >>> registry.get({"class_name": "os.system"})
    Traceback (most recent call last):
        ...
    ValueError: Unknown word: expected one of ['hello', 'upper']. Received: identifier='os.system'
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_KERAS_DICT_KEYS = ("module", "class_name", "config", "registered_name")
_ConfigurableT = TypeVar("_ConfigurableT", bound="Configurable")


class Configurable:
    """Base of the objects rebuilt from a JSON config, as ``cls(**config)``.

    Subclasses return their constructor arguments from `get_config`.

    Example:
        >>> class Scale(Configurable):
        ...     def __init__(self, factor=1.0):
        ...         self.factor = factor
        ...     def get_config(self):
        ...         return {"factor": self.factor}
        >>> Scale.from_config({"factor": 2.0})
        Scale(factor=2.0)
    """

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as plain JSON values."""
        return {}

    @classmethod
    def from_config(cls: type[_ConfigurableT], config: Mapping[str, Any]) -> _ConfigurableT:
        """Builds an instance from the output of `get_config`.

        Raises:
            ValueError: if `config` is not a dict or has a key the constructor
                does not take.
        """
        if not isinstance(config, Mapping):
            raise ValueError(
                f"Expected the config of {cls.__name__} to be a dict. Received: config={config!r}"
            )
        accepted = [
            name
            for name, parameter in inspect.signature(cls).parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        ]
        unknown = sorted(set(config) - set(accepted), key=str)
        if unknown:
            raise ValueError(
                f"Unknown keys {unknown} in the config of {cls.__name__}: expected keys among "
                f"{accepted}. Received: config={dict(config)!r}"
            )
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class Registry:
    """Resolves and (de)serializes one kind of object from an allow-list.

    Args:
        kind: what the objects are, for messages (e.g. ``"initializer"``).
        module: the Keras module written into serialized dicts
            (e.g. ``"keras.initializers"``).
        objects: the functions or classes. Each is known by its ``__name__``
            (also its serialized name) and by Keras's snake_case of it
            (``"GlorotUniform"`` -> ``"glorot_uniform"``, ``"L1L2"`` -> ``"l1l2"``).
        aliases: further accepted names, each for one of `objects`.
        argument: the argument name used in messages; defaults to `kind`.
        also_accepted_modules: further `module` values accepted when reading.
        default: what `get(None)` returns.

    Example:
        >>> registry = Registry(kind="case", module="demo", objects=[str.upper],
        ...                     aliases={"shout": str.upper})
        >>> registry.serialize(registry.deserialize({"class_name": "shout"}))
        'upper'
    """

    def __init__(
        self,
        *,
        kind: str,
        module: str,
        objects: Iterable[Any],
        aliases: Mapping[str, Any] | None = None,
        argument: str | None = None,
        also_accepted_modules: tuple[str, ...] = (),
        default: Any = None,
    ) -> None:
        self.kind = kind
        self.argument = argument or kind
        self.module = module
        self.modules = (module, *also_accepted_modules)
        canonical = {obj.__name__: obj for obj in objects}
        snake = {_snake_case(name): obj for name, obj in canonical.items()}
        self.names = {**canonical, **snake, **(aliases or {})}
        self.default = default

    def lookup(self, name: Any) -> Any:
        """Returns the function or class registered under `name`.

        Raises:
            ValueError: if `name` is not an accepted name.
        """
        if isinstance(name, str) and name in self.names:
            return self.names[name]
        raise ValueError(
            f"Unknown {self.kind}: expected one of {sorted(self.names)}. "
            f"Received: identifier={name!r}"
        )

    def canonical_name(self, obj: Any) -> str | None:
        """Returns the serialized name of a registered object (by identity), or None."""
        return next((name for name, known in self.names.items() if known is obj), None)

    def serialize(self, obj: Any) -> str | dict[str, Any] | None:
        """Returns None for None, a registered function's name, or Keras 3's dict.

        Keras can also serialize objects registered with its
        ``register_keras_serializable``; convt has no such registration, so
        user-defined functions and classes are refused.

        Raises:
            ValueError: if `obj` is neither a registered function nor an
                instance of a registered class.

        Example:
            >>> from convt import activations, regularizers
            >>> activations.serialize(activations.swish)
            'silu'
            >>> regularizers.serialize(regularizers.L2(0.5))["config"]
            {'l2': 0.5}
        """
        if obj is None:
            return None
        name = self.canonical_name(obj)
        if name is not None and not inspect.isclass(obj):
            return name
        name = self.canonical_name(type(obj))
        if name is None:
            raise ValueError(
                f"Cannot serialize this {self.kind}: expected one of the built-in ones "
                f"({sorted(self.names)}); user-defined objects have no serialized form. "
                f"Received: {self.argument}={obj!r}"
            )
        return {
            "module": self.module,
            "class_name": name,
            "config": obj.get_config(),
            "registered_name": None,
        }

    def deserialize(self, config: Any) -> Any:
        """Rebuilds an object from a name or a serialized dict; None gives None.

        A dict is Keras's ``{"module", "class_name", "config", "registered_name"}``
        (only `class_name` required), or ``{"class_name": "function", "config":
        name}`` for a plain function.

        Raises:
            ValueError: for an unknown name, module, key or config key.

        Example:
            >>> from convt import initializers
            >>> initializers.deserialize({"class_name": "RandomNormal", "config": {"seed": 1}})
            RandomNormal(seed=1, mean=0.0, stddev=0.05)
        """
        if config is None:
            return None
        if isinstance(config, str):
            return self._build(self.lookup(config), None)
        name, inner_config = self._parse(config)
        return self._build(self.lookup(name), inner_config)

    def get(self, identifier: Any) -> Any:
        """Resolves None (the default), a name, a serialized dict, a class or a callable.

        A name gives an instance with default arguments (or the named function),
        a class is instantiated with no arguments, and an instance or any other
        callable passes through.

        Raises:
            ValueError: if `identifier` is none of these, or fails to deserialize.

        Example:
            >>> from convt import activations, initializers
            >>> initializers.get("he_normal"), initializers.get(None)
            (HeNormal(seed=None, input_axes=None, output_axes=None), None)
            >>> activations.get(None) is activations.linear
            True
        """
        if identifier is None:
            return self.default
        if isinstance(identifier, (str, Mapping)):
            return self.deserialize(identifier)
        if inspect.isclass(identifier):
            return identifier()
        if callable(identifier):
            return identifier
        raise ValueError(
            f"Could not interpret {self.kind} identifier: expected None, a name, a config dict "
            f"or a callable. Received: identifier={identifier!r}"
        )

    def _parse(self, config: Any) -> tuple[Any, Any]:
        """Checks a serialized dict; returns (name, inner config)."""
        if not isinstance(config, Mapping):
            raise ValueError(
                f"Could not interpret {self.kind} identifier: expected a name or a dict with "
                f"a `class_name` key. Received: identifier={config!r}"
            )
        unknown = sorted(set(config) - set(_KERAS_DICT_KEYS), key=str)
        if unknown or "class_name" not in config:
            raise ValueError(
                f"Expected a serialized {self.kind} to have a `class_name` key and no keys "
                f"beyond {list(_KERAS_DICT_KEYS)}. Received: config={dict(config)!r}"
            )
        module = config.get("module")
        if module is not None and module not in self.modules:
            raise ValueError(
                f"Expected the `module` of a serialized {self.kind} to be one of "
                f"{list(self.modules)}. Received: module={module!r}"
            )
        name, inner_config = config["class_name"], config.get("config")
        if name == "function":  # Keras's form of a plain function: its name is the config.
            name, inner_config = inner_config, None
        registered_name = config.get("registered_name")
        if registered_name is not None and registered_name != name:
            raise ValueError(
                f"Expected `registered_name` to be None or {name!r} for a built-in {self.kind}. "
                f"Received: registered_name={registered_name!r}"
            )
        return name, inner_config

    def _build(self, obj: Any, inner_config: Any) -> Any:
        """Instantiates a registered class from its config, or returns a function."""
        if inspect.isclass(obj):
            return obj.from_config({} if inner_config is None else inner_config)
        if inner_config:
            raise ValueError(
                f"Expected no config for the {self.kind} {self.canonical_name(obj)!r}. "
                f"Received: config={inner_config!r}"
            )
        return obj


def _snake_case(name: str) -> str:
    """Keras's snake_case of a class name: a ``_`` before each inner capitalized word."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def float_arg(value: Any, *, name: str, non_negative: bool = False) -> float:
    """Checks that a config value is a finite real number; returns it as a float.

    Args:
        value: the value to check (bools are refused).
        name: the argument name, for the message.
        non_negative: also refuse negative values.

    Raises:
        ValueError: in Keras's form, e.g. ``Invalid value for argument l1:
            expected a non-negative float. Received: l1=-1``.

    Example:
        >>> float_arg(3, name="l2", non_negative=True)
        3.0
    """
    expected = "a non-negative float" if non_negative else "a finite float"
    valid = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and not (non_negative and value < 0)
    )
    if not valid:
        raise ValueError(
            f"Invalid value for argument {name}: expected {expected}. Received: {name}={value!r}"
        )
    return float(value)
