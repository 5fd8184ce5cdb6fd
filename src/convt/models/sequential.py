"""``Sequential``: a plain stack of layers, each fed by the one before."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from convt.layers.input_layer import InputLayer
from convt.layers.layer import (
    Layer,
    _check_name,
    batch_input_shape_from,
    build_lock,
    unique_name,
)
from convt.models.model import Model, describe_inputs
from convt.saving import serialization
from convt.symbolic import SymbolicTensor

_SEQUENTIAL_KEYS = ("name", "trainable", "dtype", "layers", "build_input_shape")


class Sequential(Model):
    """A stack of layers; builds once the input shape is known.

    The input shape comes from an :class:`~convt.layers.InputLayer` (or
    :func:`convt.Input`) added first, from the first layer's ``input_shape`` /
    ``batch_input_shape``, from :meth:`build`, or from the first call.

    Args:
        layers: layers to :meth:`add`, in order.
        name: the model name (unique by default).
        trainable: whether the weights are trainable.

    Raises:
        TypeError: for ``layers`` that is not a list (or another iterable) of layers.
        ValueError: as :meth:`add` raises for one of them.

    Example:
        >>> import convt
        >>> model = convt.Sequential([convt.Conv2DTranspose(4, 3, input_shape=(5, 5, 3))])
        >>> model.add(convt.Conv2DTranspose(2, 2, strides=2))
        >>> model.outputs[0].shape, len(model.layers), model.count_params()
        ((None, 14, 14, 2), 2, 146)
    """

    def __init__(
        self,
        layers: Sequence[Any] | None = None,
        *,
        name: str | None = None,
        trainable: bool = True,
    ) -> None:
        self.name = _check_name(name) if name is not None else unique_name("sequential")
        self._trainable = True
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._unbuilt()
        if layers is not None and (isinstance(layers, (str, bytes, Mapping))
                                   or not isinstance(layers, Iterable)):
            raise TypeError(
                f"Expected `layers` to be a list of layers. Received: layers={layers!r}")
        for layer in layers if layers is not None else []:
            self.add(layer)
        if trainable is not True:
            self.trainable = trainable  # validates, then freezes every layer

    def _unbuilt(self) -> None:
        self._inputs_struct = self._outputs_struct = None
        self.inputs, self.outputs, self._nodes, self._node_ids = [], [], [], set()
        self._layers, self._run_losses, self._last_run_inputs = [], [], None

    @property
    def built(self) -> bool:
        return bool(self.outputs)

    @property
    def layers(self) -> list[Layer]:
        """The stacked layers (an InputLayer is not listed, as in Keras)."""
        return list(self._stack)

    def add(self, layer: Any) -> None:
        """Appends ``layer``; an InputLayer or ``Input`` tensor is only allowed first.

        Raises:
            ValueError: for a non-layer, a second input, or a layer name
                already in the model.
        """
        if isinstance(layer, SymbolicTensor):
            layer = layer.history.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(
                    "An InputLayer (or `Input`) can only be the first layer of a Sequential "
                    f"model. Received: layer={layer.name!r} after {len(self._stack)} layer(s)"
                )
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise ValueError(
                "Only instances of `convt.layers.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. "
                f'Name "{layer.name}" '
                "is already the name of a layer in this model. Update the `name` argument "
                "to pass a unique name."
            )
        if self.built:
            output = layer(self.outputs[0])
            self._stack.append(layer)
            self._set_graph(self.inputs[0], output)
            return
        self._stack.append(layer)
        if self._declared_input_shape() is not None:
            try:
                self.build(self._declared_input_shape())
            except ValueError:
                self._stack.pop()
                raise

    def pop(self) -> Layer:
        """Removes the last layer (and the call that linked it) and returns it.

        Raises:
            TypeError: if the model has no layers.
        """
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        if self.built:
            node = self._nodes_of(layer)[0]
            if layer._inbound_nodes[-1] is node:  # earlier nodes keep their indices
                layer._inbound_nodes.pop()
            output = self._nodes_of(self._stack[-1])[0] if self._stack else None
            self._set_graph(self.inputs[0], output.output_tensors[0] if output else self.inputs[0])
        return layer

    def _declared_input_shape(self) -> tuple[int | None, ...] | None:
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        return self._stack[0].batch_input_shape if self._stack else None

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Calls each layer in turn on a symbolic input of ``input_shape``.

        Raises:
            ValueError: if no input shape is known, if it differs from the declared
                input's, or if a layer refuses it (the model then stays unbuilt, and
                a later build may give another shape).
        """
        shape = batch_input_shape_from(None, input_shape, None, None)
        declared = self._input_layer is not None
        if declared and shape is not None and shape != self._input_layer.batch_shape:
            raise ValueError(
                f"Sequential model '{self.name}' has already been configured to use input "
                f"shape {self._input_layer.batch_shape}. You cannot build it with input_shape "
                f"{shape}"
            )
        if self.built:
            return
        if not declared:
            if shape is None:
                raise ValueError(
                    "You must provide an `input_shape` argument (the Sequential model has no "
                    f"declared input). Received: input_shape={input_shape!r}"
                )
            dtype = self._stack[0].compute_dtype if self._stack else None
            self._input_layer = InputLayer(batch_shape=shape, dtype=dtype)
        node_counts = [len(layer._inbound_nodes) for layer in self._stack]
        try:
            tensor = output = self._input_layer.output
            for layer in self._stack:
                output = layer(output)
        except (ValueError, TypeError):
            for layer, count in zip(self._stack, node_counts):  # no call of this build stays
                del layer._inbound_nodes[count:]
            if not declared:
                self._input_layer = None
            raise
        self._set_graph(tensor, output)

    def _set_graph(self, inputs: Any, outputs: Any) -> None:
        super()._set_graph(inputs, outputs)
        self._layers = list(self._stack)

    def _input_arrays(self, inputs: Any) -> list[Any]:
        """As Model's; an unbuilt model first builds from the array's shape."""
        if not self.built and self._stack and hasattr(inputs, "shape"):
            with build_lock(self):  # threads making the first call at once build once
                if not self.built:
                    self.build((None, *inputs.shape[1:]))
        if not self.built:
            raise ValueError(
                f"Sequential model '{self.name}' has no layers or no input shape to run on. "
                f"Received: inputs={describe_inputs(inputs)}"
            )
        return super()._input_arrays(inputs)

    def count_params(self) -> int:
        """Number of scalars in all weights.

        Raises:
            ValueError: if the model is not built yet.
        """
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on {self.name}, but the layer isn't "
                f"built. You can build it manually via: `{self.name}.build(batch_input_shape)`."
            )
        return super().count_params()

    def get_config(self) -> dict[str, Any]:
        """Keras 3's Sequential config: the InputLayer first when built."""
        input_shape = self.inputs[0].shape if self.built else None
        layers = [serialization.serialize_layer(self._input_layer)] if self.built else []
        for layer in self._stack:
            nodes = self._nodes_of(layer)
            shape = nodes[0].input_tensors[0].shape if nodes else None
            layers.append(serialization.serialize_layer(layer, input_shape=shape))
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "layers": layers}
        if input_shape is not None:
            config["build_input_shape"] = list(input_shape)
        return config

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, budget: serialization.WeightBudget | None = None
    ) -> Sequential:
        """Rebuilds a Sequential model from its config (convt's or Keras 3's).

        Raises:
            ValueError: for unknown keys or classes, code, or weights beyond
                the budget (charged before any layer is built).
        """
        serialization.check_keys(config, _SEQUENTIAL_KEYS, "config")
        budget = budget or serialization.WeightBudget()
        layer_data = config.get("layers")
        if not isinstance(layer_data, list):
            raise ValueError(f"Expected `layers` to be a list. Received: layers={layer_data!r}")
        layers = [serialization.deserialize_layer(data, budget=budget) for data in layer_data]
        input_shape = _first_input_shape(layers, config.get("build_input_shape"))
        _charge_stack(layers, input_shape, budget)
        model = cls(layers, name=config.get("name"), trainable=config.get("trainable", True))
        if not model.built and input_shape is not None:
            model.build(input_shape)
        return model


def _first_input_shape(layers: list[Layer], build_input_shape: Any) -> Any:
    if layers and isinstance(layers[0], InputLayer):
        return layers[0].batch_shape
    if layers and layers[0].batch_input_shape is not None:
        return layers[0].batch_input_shape
    return batch_input_shape_from(None, build_input_shape, None, None)


def _charge_stack(layers: list[Layer], input_shape: Any, budget: Any) -> None:
    """Charges every layer's weights along the stack before any is built."""
    if input_shape is None:
        return
    shape = tuple(input_shape)
    for layer in layers:
        if isinstance(layer, InputLayer):
            continue
        layer._check_input_shape(shape)
        if not layer.built:
            budget.charge(layer.weight_shapes(shape))
        shape = layer.compute_output_shape(shape)
