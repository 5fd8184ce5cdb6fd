"""The stateful shell every convt layer shares: weights, build, call, config, losses."""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import reprlib
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from convt import regularizers
from convt._arrays import host_array
from convt._shapes import is_integer
from convt.dtype_policies import DTypePolicy
from convt.layers.node_api import NodeAPI, refuse_mask
from convt.symbolic import Node, SymbolicTensor, flatten
from convt.variables import Variable

_name_counts: Counter[str] = Counter()


def to_snake_case(name: str) -> str:
    """``"Conv2DTranspose"`` -> ``"conv2d_transpose"``, as Keras names layers."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``, ... for each new object."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(
            "Argument `name` must be a non-empty string and cannot contain "
            f"character `/`. Received: name={name!r} (of type {type(name).__name__})"
        )
    return name


def checked_trainable(value: Any) -> bool:
    """``value`` if it is a bool, else the ValueError a ``trainable`` flag raises."""
    if not isinstance(value, bool):
        raise ValueError(
            "Expected `trainable` to be a boolean. "
            f"Received: trainable={value!r} (of type {type(value).__name__})"
        )
    return value


def batch_input_shape_from(
    input_shape: Sequence[int | None] | None,
    batch_input_shape: Sequence[int | None] | None,
    batch_size: int | None,
    input_dim: int | None,
) -> tuple[int | None, ...] | None:
    """The Keras 2 / R keyword arguments that declare a first layer's input.

    ``batch_input_shape`` wins; else ``(batch_size, *input_shape)``; else
    ``(batch_size, input_dim)``.
    """
    if batch_size is not None and not (is_integer(batch_size) and batch_size > 0):
        raise ValueError(
            f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size!r}"
        )
    if batch_input_shape is not None:
        return _shape_tuple(batch_input_shape, "batch_input_shape")
    if input_shape is None and input_dim is not None:
        input_shape = (input_dim,)
    if input_shape is None:
        return None
    if is_integer(input_shape):
        input_shape = (input_shape,)
    return (batch_size, *_shape_tuple(input_shape, "input_shape"))


WEIGHTS_LOCK = threading.RLock()
"""Held while a list of weights is assigned or read and while a call reads its weights, so
that a call or ``get_weights`` beside ``set_weights`` in another thread sees the old set or
the new one, never a mix (kernel of one, bias of the other)."""

_build_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_build_locks_guard = threading.Lock()


def build_lock(layer: Any) -> threading.RLock:
    """The lock one layer (or Sequential model) builds under: one each, since an initializer
    may build another layer."""
    with _build_locks_guard:
        return _build_locks.setdefault(layer, threading.RLock())


def _reset_locks_in_forked_child() -> None:
    """After ``fork`` a lock held by a thread of the parent would never be released."""
    global _build_locks, _build_locks_guard
    WEIGHTS_LOCK._at_fork_reinit()
    _build_locks, _build_locks_guard = weakref.WeakKeyDictionary(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_forked_child)


def assign_weights(
    variables: Sequence[Variable], weights: Sequence[Any], *, owner: str, name: str
) -> None:
    """Checks the count and every shape, then assigns each value: all or nothing.

    Args:
        variables: the variables to set.
        weights: one array-like per variable.
        owner: ``"layer"`` or ``"model"``, for the messages.
        name: the owner's name, for the messages.

    Raises:
        TypeError: for ``weights`` that is not a list (or another iterable) of arrays.
        ValueError: for a count or a shape that differs, or values that are not real numbers.
    """
    if isinstance(weights, (str, bytes, Mapping)) or not isinstance(weights, Iterable):
        raise TypeError(
            f"Expected `weights` to be a list of arrays, one per weight of the {owner}. "
            f"Received: weights={reprlib.repr(weights)}"
        )
    weights = list(weights)
    if len(weights) != len(variables):
        raise ValueError(
            f"You called `set_weights(weights)` on {owner} '{name}' with a "
            f"weight list of length {len(weights)}, but the {owner} was "
            f"expecting {len(variables)} weights."
        )
    arrays = [_weight_value(w) for w in weights]
    for variable, array in zip(variables, arrays):
        if variable.shape != tuple(array.shape):
            raise ValueError(
                f"{owner.capitalize()} {name} weight shape {variable.shape} is not "
                f"compatible with provided weight shape {tuple(array.shape)}."
            )
        if not _holds_real_numbers(array):
            raise ValueError(
                f"Expected weight '{variable.name}' of {owner} '{name}' to hold real numbers "
                f"(float, int or bool). Received: dtype={array.dtype}"
            )
    with WEIGHTS_LOCK:
        for variable, array in zip(variables, arrays):
            variable.assign(array)


def _holds_real_numbers(array: Any) -> bool:
    """True for an array of floats, ints or bools, and for a tensor that is not complex."""
    if isinstance(array, np.ndarray):
        return array.dtype.kind in "biuf"
    return not array.is_complex()


def _weight_value(weight: Any) -> Any:
    """An array, or a tensor as a NumPy layer can read it too (detached from autograd,
    bfloat16 widened), so that every check runs before any weight changes."""
    if not hasattr(weight, "detach"):
        return weight if hasattr(weight, "shape") else host_array(weight, "weights")
    weight = weight.detach()
    return weight.float() if str(weight.dtype) == "torch.bfloat16" else weight


def _shape_tuple(shape: Any, name: str) -> tuple[int | None, ...]:
    try:  # text is not a shape, though bytes iterate as ints
        dims = None if isinstance(shape, (str, bytes)) else tuple(shape)
    except TypeError:
        dims = None
    if dims is None or not all(d is None or (is_integer(d) and d >= 0) for d in dims):
        raise ValueError(
            f"Expected `{name}` to be a tuple of non-negative integers or None. "
            f"Received: {name}={shape!r}"
        )
    return tuple(None if d is None else int(d) for d in dims)


def _weight_list(weights: Any) -> list[Any]:
    """The ``weights`` argument as a list, or a ValueError unless it is a sequence of arrays."""
    if not isinstance(weights, (list, tuple)):
        raise ValueError(
            "Expected `weights` to be a list of arrays (the kernel, then the bias). "
            f"Received: weights={weights!r} (of type {type(weights).__name__})"
        )
    return list(weights)


class Layer(NodeAPI):
    """Base class: owns weights, the dtype policy, losses, the config and nodes.

    Subclasses implement ``build(input_shape)``, ``call(inputs)``,
    ``compute_output_shape(input_shape)``, ``_check_input_shape(shape)``,
    ``weight_shapes(input_shape)`` and extend ``get_config()``.

    Called on an array, a layer computes; called on a
    :class:`~convt.symbolic.SymbolicTensor` (from :func:`convt.Input`), it
    builds from the symbolic shape, records a node and returns a symbolic
    output (see :class:`~convt.layers.node_api.NodeAPI`).

    Args:
        activity_regularizer: regularizer applied to the output of each call.
        trainable: whether the weights are trainable.
        dtype: dtype policy name (``"float32"``, ``"float64"``, ``"float16"``,
            ``"mixed_float16"``; the torch layers also ``"bfloat16"``,
            ``"mixed_bfloat16"``), a NumPy or torch dtype, or a serialized ``DTypePolicy``.
        name: layer name; unique by default.
        input_shape, batch_input_shape, batch_size, input_dim: the Keras 2 / R
            way to declare the input of a first layer; when the shape is known
            the layer builds at once.
        weights: initial weights (as ``set_weights`` takes), set when built.
    """

    _holds_bfloat16 = False
    """Whether the ``"bfloat16"`` and ``"mixed_bfloat16"`` policies are taken: not in NumPy,
    which has no bfloat16 (the torch layers take them)."""

    def __init__(
        self,
        *,
        activity_regularizer: Any = None,
        trainable: bool = True,
        dtype: Any = None,
        name: str | None = None,
        input_shape: Sequence[int | None] | None = None,
        batch_input_shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        input_dim: int | None = None,
        weights: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise ValueError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.trainable = trainable
        self.dtype_policy = DTypePolicy.get(dtype, bfloat16=self._holds_bfloat16)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.batch_input_shape = batch_input_shape_from(
            input_shape, batch_input_shape, batch_size, input_dim
        )
        self._initial_weights = None if weights is None else _weight_list(weights)
        self.name = _check_name(name) if name is not None else unique_name(
            to_snake_case(type(self).__name__)
        )
        self.built = False
        self._variables: list[Variable] = []
        self._call_losses: list[Any] = []
        self._last_call_inputs: Any = None
        self._inbound_nodes: list[Node] = []

    # ----------------------------------------------------------------- dtypes
    @property
    def dtype(self) -> str:
        """The dtype of the weights."""
        return self.dtype_policy.variable_dtype

    @property
    def compute_dtype(self) -> str:
        """The dtype inputs are cast to and outputs come in."""
        return self.dtype_policy.compute_dtype

    # ---------------------------------------------------------------- weights
    def add_weight(
        self,
        name: str,
        value: np.ndarray,
        *,
        regularizer: Any = None,
        constraint: Any = None,
        trainable: bool = True,
    ) -> Variable:
        """Registers a weight holding ``value`` (cast to the variable dtype)."""
        variable = Variable(
            np.asarray(value, dtype=self.dtype),
            name=name,
            path=f"{self.name}/{name}",
            trainable=trainable,
            regularizer=regularizer,
            constraint=constraint,
        )
        self._variables.append(variable)
        return variable

    @property
    def weights(self) -> list[Variable]:
        """All weights, in creation order."""
        return list(self._variables)

    @property
    def trainable(self) -> bool:
        """Whether the layer's weights are trained (its trainable variables listed as such).

        Setting it checks the value, then calls ``_apply_trainable``: models pass
        the flag to their layers, torch layers to their parameters' ``requires_grad``.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = checked_trainable(value)
        self._apply_trainable(self._trainable)

    def _apply_trainable(self, value: bool) -> None:
        """What else setting :attr:`trainable` changes: nothing for a NumPy layer, whose
        weight lists read the flag."""

    @property
    def trainable_weights(self) -> list[Variable]:
        return [v for v in self._variables if v.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return list(self._variables)
        return [v for v in self._variables if not v.trainable]

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weight values, in Keras's order (one set, see ``WEIGHTS_LOCK``)."""
        with WEIGHTS_LOCK:
            return [v.numpy() for v in self._variables]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets every weight from a list of arrays, checking count and shapes first.

        Raises:
            ValueError: if the count or any shape differs; no weight changes then.
            TypeError: if ``weights`` is not a list of arrays (e.g. None or one array's
                number).
        """
        assign_weights(self._variables, weights, owner="layer", name=self.name)

    def count_params(self) -> int:
        """Number of scalars in all weights.

        Raises:
            ValueError: if the layer is not built yet.
        """
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but "
                "the layer isn't built. You can build it manually via: "
                "`layer.build(input_shape)`."
            )
        return sum(math.prod(v.shape) for v in self._variables)

    # ----------------------------------------------------- losses, constraints
    @property
    def losses(self) -> list[Any]:
        """Activity penalties of the last call, then the penalties of trainable weights."""
        return list(self._call_losses) + self._weight_losses()

    def _weight_losses(self) -> list[Any]:
        return [
            v.regularizer(v.value) for v in self.trainable_weights if v.regularizer is not None
        ]

    def apply_constraints(self) -> None:
        """Projects each trainable weight through its constraint, in place.

        Call it after every optimizer update, as Keras's optimizers do.
        """
        for variable in self.trainable_weights:
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable.value))

    def get_losses_for(self, inputs: Any) -> list[Any]:
        """The losses that depend on ``inputs``, as tf.keras 2.x's ``get_losses_for``.

        Args:
            inputs: None for the unconditional losses (the weight penalties), or
                the array(s) the layer was last called on for the activity
                penalties of that call.

        Returns:
            A list of penalties; empty for inputs the last call did not use.
        """
        if inputs is None:
            return self._weight_losses()
        last = self._last_call_inputs
        if inputs is last or any(x is last for x in flatten(inputs)):  # a list given whole
            return list(self._call_losses)
        return []

    # ------------------------------------------------------------------- call
    def __call__(self, inputs: Any, *, training: bool | None = None, mask: Any = None) -> Any:
        """Builds on first use from ``inputs.shape``, then runs ``call``.

        On a symbolic tensor, records a node and returns the symbolic output.
        ``training`` is accepted as Keras's layers accept it; these layers
        compute the same in training and inference. They support no mask.

        Raises:
            TypeError: for a ``mask`` other than None.
        """
        refuse_mask(self.name, mask)
        if isinstance(inputs, SymbolicTensor):
            return self._call_symbolic(inputs)
        x = self._convert_input(inputs)
        self._check_input_shape(x.shape)
        self._build_once(x.shape)
        outputs = self.call(x)
        self._call_losses = self._activity_losses(outputs)
        self._last_call_inputs = inputs
        return outputs

    def apply(self, inputs: Any, *, training: bool | None = None, mask: Any = None) -> Any:
        """Alias of ``__call__``, as tf.keras 2.x has."""
        return self(inputs, training=training, mask=mask)

    def _call_symbolic(self, inputs: SymbolicTensor) -> SymbolicTensor:
        """Builds from the symbolic shape and records a node; computes nothing."""
        self._check_input_shape(inputs.shape)
        self._build_once(inputs.shape)
        output = SymbolicTensor(
            self.compute_output_shape(inputs.shape), self.compute_dtype, name=self.name
        )
        Node.record(self, (inputs,), (output,))
        return output

    def weight_shapes(self, input_shape: Sequence[int | None]) -> list[tuple[int, ...]]:
        """The shapes ``build(input_shape)`` would give the weights, allocating nothing.

        Loaders check these against their size limits before building.
        """
        return []

    def _convert_input(self, inputs: Any) -> np.ndarray:
        x = host_array(inputs, "inputs")
        if x.dtype.kind not in "biuf":
            raise TypeError(
                f"Layer '{self.name}' expects real-valued numeric inputs. "
                f"Received: inputs.dtype={x.dtype}"
            )
        return x.astype(self.compute_dtype, copy=False)

    def _activity_losses(self, outputs: np.ndarray) -> list[Any]:
        if self.activity_regularizer is None:
            return []
        penalty = self.activity_regularizer(outputs)
        batch = outputs.shape[0] if outputs.ndim else 0
        return [penalty / batch if batch else penalty * 0]

    def _build_once(self, input_shape: Sequence[int | None]) -> None:
        """Builds for ``input_shape`` unless built: once, whatever threads call at once.

        A layer counts as built here only once its ``weights=`` are set too
        (``build`` marks it built before they are): until then other threads wait.
        """
        if self.built and self._initial_weights is None:
            return
        with build_lock(self):
            if not self.built:
                self._build_and_set_initial_weights(input_shape)

    def _build_and_set_initial_weights(self, input_shape: Sequence[int | None]) -> None:
        """``build``, then the ``weights=`` argument; on any error, stays unbuilt."""
        self.build(input_shape)
        if self._initial_weights is None:
            return
        try:
            self.set_weights(self._initial_weights)
        except (ValueError, TypeError):
            self._unbuild()
            raise
        self._initial_weights = None

    def _unbuild(self) -> None:
        """Back to the state before ``build`` (after a build whose ``weights=`` failed)."""
        self._variables = []
        self.built = False

    def _build_from_declared_input(self) -> None:
        """Builds at once when ``input_shape``/``batch_input_shape`` was given."""
        if self.batch_input_shape is not None:
            self._check_input_shape(self.batch_input_shape)
            self._build_and_set_initial_weights(self.batch_input_shape)

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values."""
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.serialize(),
        }
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], *, budget: Any = None) -> Layer:
        """A new layer from :meth:`get_config`'s output, built when the config declares
        its input shape, once its weights fit ``budget``.

        Args:
            config: the config dict.
            budget: a :class:`convt.saving.serialization.WeightBudget` (loaders
                pass one); by default one of
                :data:`~convt.saving.serialization.MAX_CONFIG_WEIGHT_ELEMENTS`.

        Raises:
            ValueError: for keys the constructor does not know or a required one
                missing, or weights beyond the budget (refused before any is created).
        """
        if not isinstance(config, dict):
            raise ValueError(
                f"Expected `config` to be a dict. Received: config={config!r}"
            )
        missing = [name for name in _required_arguments(cls) if name not in config]
        if missing:  # Python's TypeError otherwise; loaders document ValueError
            raise ValueError(
                f"Expected `config` to hold the arguments {missing} of {cls.__name__}. "
                f"Received: config={config!r}"
            )
        from convt.saving import serialization  # late: saving imports the layers

        serialization.charge_declared_input(cls, config, budget or serialization.WeightBudget())
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


@functools.cache
def _required_arguments(cls: type) -> tuple[str, ...]:
    """The constructor arguments of ``cls`` that have no default."""
    parameters = inspect.signature(cls).parameters.values()
    return tuple(p.name for p in parameters if p.default is p.empty
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
