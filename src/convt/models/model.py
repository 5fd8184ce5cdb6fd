"""``Model``: a graph of layers from symbolic inputs to outputs, run on arrays."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from convt._arrays import host_array
from convt._shapes import is_integer
from convt.layers.layer import (
    Layer,
    _check_name,
    assign_weights,
    unique_name,
)
from convt.layers.node_api import refuse_mask
from convt.models import summary as summary_lib
from convt.models.graph import map_graph
from convt.saving import serialization
from convt.symbolic import Node, SymbolicTensor, flatten, pack_like
from convt.variables import Variable

_FUNCTIONAL_KEYS = ("name", "trainable", "layers", "input_layers", "output_layers")


class Model:
    """A functional model: the layers between ``inputs`` and ``outputs``.

    Args:
        inputs: a symbolic tensor from :func:`convt.Input`, or a list or dict
            of them.
        outputs: symbolic tensors made from the inputs by calling layers, as a
            single tensor, a list or a dict.
        name: the model name (unique by default).
        trainable: whether the weights are trainable.

    Calling the model on arrays (laid out as ``inputs``) runs every layer call
    in order and returns arrays laid out as ``outputs``. A layer called several
    times shares its weights across the calls.

    Raises:
        ValueError: if an output does not depend on the inputs alone, or two
            layers share a name.

    Example:
        >>> import numpy as np, convt
        >>> x = convt.Input(shape=(5, 5, 3))
        >>> up = convt.Conv2DTranspose(4, 3, strides=2)
        >>> model = convt.Model(x, up(x))
        >>> model(np.zeros((2, 5, 5, 3))).shape, model.count_params()
        ((2, 11, 11, 4), 112)
    """

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        *,
        name: str | None = None,
        trainable: bool = True,
    ) -> None:
        self.name = _check_name(name) if name is not None else unique_name("functional")
        self._set_graph(inputs, outputs)
        self._trainable = True
        if trainable is not True:
            self.trainable = trainable  # validates, then freezes every layer

    def _set_graph(self, inputs: Any, outputs: Any) -> None:
        """Maps the graph; ``outputs`` is set last (a Sequential model is built once it is)."""
        flat_inputs, flat_outputs = flatten(inputs), flatten(outputs)
        graph = map_graph(flat_inputs, flat_outputs)
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._nodes = [node for node in graph.nodes if not node.is_input]
        self._node_ids = {id(node) for node in graph.nodes}
        self._layers = list(graph.layers)
        self._run_losses: list[Any] = []
        self._last_run_inputs: Any = None
        self.inputs: list[SymbolicTensor] = flat_inputs
        self.outputs: list[SymbolicTensor] = flat_outputs

    # ----------------------------------------------------------------- layers
    @property
    def layers(self) -> list[Layer]:
        """The layers, in Keras's order (inputs first)."""
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or the one at ``index`` of :attr:`layers`, as Keras 3.

        Raises:
            ValueError: for both or neither argument, no such layer or an index out of
                range.
            TypeError: for a name that is not a string or an index that is not an integer.
        """
        if (name is None) == (index is None):
            raise ValueError(
                "Expected exactly one of a layer name and a layer index. "
                f"Received: name={name!r}, index={index!r}"
            )
        if index is not None:
            return self._layer_at(index)
        if not isinstance(name, str):
            raise TypeError(f"Expected `name` to be a string. Received: name={name!r}")
        layers = self.layers
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}."
        )

    def _layer_at(self, index: int) -> Layer:
        layers = self.layers
        if not is_integer(index):
            raise TypeError(f"Expected `index` to be an integer. Received: index={index!r}")
        if not -len(layers) <= index < len(layers):
            raise ValueError(
                f"Was asked to retrieve layer at index {index} but model only has "
                f"{len(layers)} layers."
            )
        return layers[int(index)]

    trainable = Layer.trainable

    def _apply_trainable(self, value: bool) -> None:
        """Sets the flag on every layer too, as Keras 3 does."""
        for layer in self._layers:
            layer.trainable = value

    def _nodes_of(self, layer: Layer) -> list[Node]:
        """The layer's nodes that belong to this model, oldest first."""
        return [node for node in layer._inbound_nodes if id(node) in self._node_ids]

    # ---------------------------------------------------------------- running
    def __call__(self, inputs: Any, *, training: bool | None = None, mask: Any = None) -> Any:
        """Runs the model on arrays laid out as the model's inputs.

        ``training`` is accepted and changes nothing (no convt layer behaves
        differently in training); no mask is supported.

        Raises:
            ValueError: for a wrong number of arrays or an incompatible shape.
            TypeError: for a ``mask`` other than None.
        """
        refuse_mask(self.name, mask)
        if any(isinstance(leaf, SymbolicTensor) for leaf in flatten(inputs)):
            raise TypeError(
                "convt models run on arrays; calling a model on symbolic tensors (nesting "
                f"models) is not supported. Received: inputs={describe_inputs(inputs)}"
            )
        arrays = self._input_arrays(inputs)  # may build a Sequential model first
        values = {
            id(tensor): tensor.history.layer(array) for tensor, array in zip(self.inputs, arrays)
        }
        run_losses: list[Any] = []
        for node in self._nodes:
            output = node.layer(values[id(node.input_tensors[0])])
            values[id(node.output_tensors[0])] = output
            run_losses += node.layer._call_losses
        self._run_losses, self._last_run_inputs = run_losses, inputs
        return pack_like(self._outputs_struct, [values[id(tensor)] for tensor in self.outputs])

    def _input_arrays(self, inputs: Any) -> list[Any]:
        """The arrays for ``self.inputs``, in order, matched as Keras 3 matches them.

        A dict is read by the model's input keys (a dict of inputs) or by its
        inputs' names (a list of them); extra keys are ignored, missing ones
        refused. A list or tuple, nested as the inputs or flat, is taken in
        order, for a list of inputs only; a single array feeds a model of one
        input only.
        """
        keyed = isinstance(self._inputs_struct, Mapping)
        if isinstance(inputs, Mapping):
            keys = list(self._inputs_struct) if keyed else [t.name for t in self.inputs]
            if not all(key in inputs for key in keys):
                raise ValueError(
                    f"Model '{self.name}' expects arrays for the inputs {keys} (by "
                    f"{'key' if keyed else 'input name'}). Received: inputs with keys "
                    f"{list(inputs)}"
                )
            return [inputs[key] for key in keys]
        if len(self.inputs) == 1 and not isinstance(inputs, (list, tuple)):
            return [inputs]
        if keyed:
            raise ValueError(
                f"Model '{self.name}' expects a dict with keys {list(self._inputs_struct)}. "
                f"Received: inputs={describe_inputs(inputs)}"
            )
        arrays = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]  # any nesting
        if len(arrays) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self.inputs)} input(s), but it received "
                f"{len(arrays)} input arrays. Received: inputs={describe_inputs(inputs)}"
            )
        return arrays

    apply = __call__

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto") -> Any:
        """Runs the model batch by batch and joins the outputs along the batch axis.

        Args:
            x: the input arrays, laid out as the model's inputs.
            batch_size: samples per batch (default 32).
            verbose: accepted as Keras's; convt prints no progress.

        Afterwards ``losses`` and ``get_losses_for(x)`` hold the activity
        penalties of all of ``x``, as after ``model(x)``.

        Raises:
            ValueError: for a non-positive ``batch_size`` or inputs whose batch
                sizes differ.

        Example:
            >>> import numpy as np, convt
            >>> model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
            >>> model.predict(np.ones((70, 4, 1)), batch_size=32).shape
            (70, 6, 2)
        """
        batch_size = 32 if batch_size is None else batch_size
        if not is_integer(batch_size) or batch_size <= 0:
            raise ValueError(
                "Expected `batch_size` to be a positive integer. "
                f"Received: batch_size={batch_size!r}"
            )
        arrays = [host_array(array, "x") for array in self._input_arrays(x)]
        samples = {array.shape[0] if array.ndim else None for array in arrays}
        if len(samples) != 1 or None in samples:
            raise ValueError(
                "Expected every input array to have the same number of samples (axis 0). "
                f"Received: input shapes {[array.shape for array in arrays]}"
            )
        count = samples.pop()
        batches, penalties = [], []
        for start in range(0, max(count, 1), batch_size):
            batch = [a[start : start + batch_size] for a in arrays]
            batches.append(flatten(self(pack_like(self._inputs_struct, batch))))
            samples_in_batch = min(batch_size, count - start)
            penalties.append([loss * samples_in_batch for loss in self._run_losses])
        # Each batch's activity penalties are means over its samples: weighted by the batch
        # sizes, they give the whole input's, as one call on it would.
        self._run_losses = [sum(parts) / max(count, 1) for parts in zip(*penalties)]
        self._last_run_inputs = x
        joined = [np.concatenate(parts, axis=0) for parts in zip(*batches)]
        return pack_like(self._outputs_struct, joined)

    # ---------------------------------------------------------------- weights
    @property
    def weights(self) -> list[Variable]:
        """Every layer's weights, layer by layer."""
        return [variable for layer in self._layers for variable in layer.weights]

    @property
    def trainable_weights(self) -> list[Variable]:
        return [variable for layer in self._layers for variable in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [variable for layer in self._layers for variable in layer.non_trainable_weights]

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weight values, layer by layer."""
        return [variable.numpy() for variable in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets every weight, checking the count and all shapes before changing any.

        Raises:
            ValueError: if the count or a shape differs; no weight changes then.
            TypeError: if ``weights`` is not a list of arrays (e.g. None or one array's
                number).
        """
        assign_weights(self.weights, weights, owner="model", name=self.name)

    def count_params(self) -> int:
        """Number of scalars in all weights."""
        return sum(math.prod(variable.shape) for variable in self.weights)

    # ----------------------------------------------------------------- losses
    @property
    def losses(self) -> list[Any]:
        """Activity penalties of the last run, then the weight penalties."""
        return list(self._run_losses) + self.get_losses_for(None)

    def get_losses_for(self, inputs: Any) -> list[Any]:
        """Weight penalties for ``inputs=None``; the last run's activity penalties
        for the inputs it ran on; else an empty list."""
        if inputs is None:
            return [loss for layer in self._layers for loss in layer.get_losses_for(None)]
        return list(self._run_losses) if inputs is self._last_run_inputs else []

    @property
    def updates(self) -> list[Any]:
        """Always empty: these layers have no state updates."""
        return []

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """Keras 3's functional config: layers with their calls, inputs, outputs."""
        reindex = {
            id(node): index
            for layer in self._layers
            for index, node in enumerate(self._nodes_of(layer))
        }

        def reference(tensor: SymbolicTensor) -> list[Any]:
            layer, node_index, tensor_index = tensor.history
            return [layer.name, reindex[id(layer._inbound_nodes[node_index])], tensor_index]

        def serialize_node(node: Node) -> dict[str, Any]:
            tensor = node.input_tensors[0]
            keras_tensor = {
                "shape": list(tensor.shape),
                "dtype": tensor.dtype,
                "keras_history": reference(tensor),
            }
            return {
                "args": [{"class_name": "__keras_tensor__", "config": keras_tensor}],
                "kwargs": {},
            }

        layer_configs = []
        for layer in self._layers:
            nodes = [node for node in self._nodes_of(layer) if not node.is_input]
            data = serialization.serialize_layer(
                layer, input_shape=nodes[0].input_tensors[0].shape if nodes else None
            )
            data.update(name=layer.name, inbound_nodes=[serialize_node(node) for node in nodes])
            layer_configs.append(data)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layer_configs,
            "input_layers": pack_like(self._inputs_struct, [reference(t) for t in self.inputs]),
            "output_layers": pack_like(self._outputs_struct, [reference(t) for t in self.outputs]),
        }

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, budget: serialization.WeightBudget | None = None
    ) -> Model:
        """Rebuilds a functional model from :meth:`get_config`'s output (or Keras 3's).

        Args:
            config: the config dict.
            budget: caps the weights the layers may create (loaders pass one).

        Raises:
            ValueError: for unknown keys or layer classes, code, dangling
                references, or weights beyond the budget.
        """
        serialization.check_keys(config, _FUNCTIONAL_KEYS, "config")
        budget = budget or serialization.WeightBudget()
        layers: dict[str, Layer] = {}
        pending: dict[str, list[Any]] = {}
        for data in _list_of(config.get("layers"), "layers"):
            layer = serialization.deserialize_layer(data, budget=budget, functional=True)
            if data.get("name", layer.name) != layer.name or layer.name in layers:
                raise ValueError(
                    "Expected each layer entry to carry its layer's unique name. "
                    f"Received: name={data.get('name')!r} for a layer named {layer.name!r}"
                )
            layers[layer.name] = layer
            pending[layer.name] = list(_list_of(data.get("inbound_nodes", []), "inbound_nodes"))
        _replay_calls(layers, pending, budget)

        def tensor(ref: Any) -> SymbolicTensor:
            return _resolve(ref, layers)

        return cls(
            _map_references(config.get("input_layers"), tensor),
            _map_references(config.get("output_layers"), tensor),
            name=config.get("name"),
            trainable=config.get("trainable", True),
        )

    # --------------------------------------------------------- summary, files
    def summary(
        self,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
        print_fn: Callable[[str], Any] | None = None,
    ) -> None:
        """Prints the layers, their output shapes and parameter counts (tf.keras 2 style).

        Args:
            line_length: total width (default 65, or 98 with a "Connected to"
                column for models that are not a plain chain).
            positions: right edges of the columns, as fractions or characters.
            print_fn: called with each line (default ``print``).
        """
        summary_lib.print_summary(
            self, line_length=line_length, positions=positions, print_fn=print_fn or print
        )

    def save(self, filepath: Any) -> None:
        """Writes a Keras 3 ``.keras`` archive that ``keras.saving.load_model`` reads."""
        from convt.saving import keras_file

        keras_file.save_model(self, filepath)

    def save_weights(self, filepath: Any) -> None:
        """Writes the weights in Keras 3's ``.weights.h5`` layout."""
        from convt.saving import weights_h5

        weights_h5.save_weights(self, filepath)

    def load_weights(self, filepath: Any) -> None:
        """Reads ``.weights.h5``, ``.keras`` or legacy tf.keras ``.h5`` weights."""
        from convt.saving import weights_h5

        weights_h5.load_weights(self, filepath)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, layers={len(self.layers)}>"


def _list_of(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"Expected `{what}` to be a list. Received: {what}={value!r}")
    return value


def _replay_calls(layers: dict[str, Layer], pending: dict[str, list[Any]], budget: Any) -> None:
    """Calls each layer on its recorded inputs, as soon as those exist, in rounds."""
    while any(pending.values()):
        progressed = False
        for name, calls in pending.items():
            while calls:
                inputs = _node_input(calls[0], layers)
                if inputs is None:
                    break
                layer = layers[name]
                if not layer.built:
                    budget.charge(layer.weight_shapes(inputs.shape))
                layer(inputs)
                calls.pop(0)
                progressed = True
        if not progressed:
            raise ValueError(
                "Invalid functional model configuration: the graph has loops or nodes whose "
                f"inputs never exist. Received: unresolved calls of "
                f"{[name for name, calls in pending.items() if calls]}"
            )


def _node_input(node_data: Any, layers: dict[str, Layer]) -> SymbolicTensor | None:
    """The input tensor of one recorded call, or None when it does not exist yet."""
    serialization.check_keys(node_data, ("args", "kwargs"), "inbound_node")
    args, kwargs = node_data.get("args"), node_data.get("kwargs", {})
    if not (isinstance(args, list) and len(args) == 1) or kwargs:
        raise ValueError(
            "Expected each call of a layer to have one tensor argument and no keyword "
            f"arguments. Received: args={args!r}, kwargs={kwargs!r}"
        )
    serialization.check_keys(args[0], ("class_name", "config"), "argument")
    tensor_config = args[0].get("config")
    serialization.check_keys(tensor_config, ("shape", "dtype", "keras_history"), "tensor")
    if args[0].get("class_name") != "__keras_tensor__":
        raise ValueError(
            "Expected a layer's argument to be a `__keras_tensor__`. "
            f"Received: class_name={args[0].get('class_name')!r}"
        )
    return _resolve(tensor_config.get("keras_history"), layers, wait=True)


def _resolve(ref: Any, layers: dict[str, Layer], *, wait: bool = False) -> Any:
    """The tensor ``[layer_name, node_index, tensor_index]`` names (None if not yet made)."""
    valid = (
        isinstance(ref, list)
        and len(ref) == 3
        and isinstance(ref[0], str)
        and ref[0] in layers
        and is_integer(ref[1])
        and ref[1] >= 0
        and ref[2] == 0
    )
    if not valid:
        raise ValueError(
            "Expected a tensor reference [layer_name, node_index, 0] naming a layer of the "
            f"model. Received: reference={ref!r}"
        )
    nodes = layers[ref[0]]._inbound_nodes
    if ref[1] < len(nodes):
        return nodes[ref[1]].output_tensors[0]
    if wait:
        return None
    raise ValueError(f"The tensor reference names a call that never happens. Received: {ref!r}")


def _map_references(structure: Any, resolve: Callable[[Any], Any]) -> Any:
    """Replaces each ``[name, node, tensor]`` leaf of a nested structure by its tensor."""
    if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
        return resolve(structure)
    if isinstance(structure, Mapping):
        return {key: _map_references(value, resolve) for key, value in structure.items()}
    if isinstance(structure, list) and structure:
        return [_map_references(item, resolve) for item in structure]
    raise ValueError(
        "Expected `input_layers`/`output_layers` to hold [layer_name, node_index, "
        f"tensor_index] references. Received: {structure!r}"
    )


def describe_inputs(inputs: Any) -> str:
    """Model inputs described by their structure and shapes (not their values)."""
    if isinstance(inputs, (list, tuple)):
        return f"{type(inputs).__name__} of {len(inputs)}: {[describe_inputs(i) for i in inputs]}"
    shape = getattr(inputs, "shape", None)
    return f"{type(inputs).__name__} of shape {tuple(shape)}" if shape is not None else repr(
        type(inputs).__name__)
