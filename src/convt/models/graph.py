"""The graph between a model's inputs and outputs: nodes to run, layers in Keras's order.

Keras orders a functional model's layers by depth (distance to the outputs,
deepest first), ties broken by the order a depth-first walk from the outputs
first meets them. Weights files name layers by position in that order, so
convt follows it exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from convt.symbolic import Node, SymbolicTensor


@dataclass(frozen=True)
class Graph:
    """The nodes of a model in an order they can run in, and its layers."""

    nodes: tuple[Node, ...]
    layers: tuple[Any, ...]


def map_graph(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> Graph:
    """Walks back from ``outputs`` to ``inputs``.

    Raises:
        ValueError: if an output does not depend on the inputs alone ("Graph
            disconnected"), or two layers share a name.
    """
    ordered_nodes, first_seen = _depth_first(inputs, outputs)
    layer_depths = _layer_depths(ordered_nodes)
    for tensor in inputs:  # inputs no output uses still belong to the model
        node = _producer(tensor)
        if node.layer not in first_seen:
            first_seen[node.layer] = -1
            layer_depths[node.layer] = 0
            ordered_nodes.insert(0, node)
    layers = sorted(layer_depths, key=lambda layer: (-layer_depths[layer], first_seen[layer]))
    _check_connected(inputs, ordered_nodes)
    _check_unique_names(layers)
    return Graph(nodes=tuple(ordered_nodes), layers=tuple(layers))


def _producer(tensor: SymbolicTensor) -> Node:
    if not isinstance(tensor, SymbolicTensor) or tensor.history is None:
        raise ValueError(
            "Expected the inputs and outputs of a model to be symbolic tensors made from "
            f"`convt.Input` by calling layers. Received: tensor={tensor!r}"
        )
    layer, node_index, _ = tensor.history
    return layer._inbound_nodes[node_index]


def _depth_first(
    inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]
) -> tuple[list[Node], dict[Any, int]]:
    """Nodes in post-order (inputs first) and each layer's first-visit index.

    The walk keeps its own stack, so a chain of any length needs no recursion.
    """
    ordered: list[Node] = []
    finished: set[int] = set()
    on_path: set[int] = set()
    first_seen: dict[Any, int] = {}
    input_ids = {id(tensor) for tensor in inputs}

    def enter(tensor: SymbolicTensor) -> tuple[Node, Iterator[SymbolicTensor]] | None:
        """The frame of the tensor's node, or None when the node is already done."""
        node = _producer(tensor)
        if id(node) in finished:
            return None
        if id(node) in on_path:
            raise ValueError(f"Tensor {tensor} is part of a cycle.")
        first_seen.setdefault(node.layer, len(first_seen))
        on_path.add(id(node))
        stops = node.is_input or id(tensor) in input_ids
        return node, iter(() if stops else node.input_tensors)

    for tensor in outputs:
        stack = [frame] if (frame := enter(tensor)) else []
        while stack:
            node, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                on_path.discard(id(node))
                finished.add(id(node))
                ordered.append(node)
            elif frame := enter(parent):
                stack.append(frame)
    return ordered, first_seen


def _layer_depths(ordered_nodes: list[Node]) -> dict[Any, int]:
    """Each layer's depth: 0 for the last nodes, parents one deeper than children.

    A shared layer takes the greatest depth of its nodes.
    """
    in_graph = set(map(id, ordered_nodes))
    depths: dict[Node, int] = {}
    layer_depths: dict[Any, int] = {}
    for node in reversed(ordered_nodes):
        depth = max(depths.setdefault(node, 0), layer_depths.get(node.layer, 0))
        layer_depths[node.layer] = depth
        depths[node] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                depths[parent] = max(depth + 1, depths.get(parent, 0))
    return layer_depths


def _check_connected(inputs: list[SymbolicTensor], ordered_nodes: list[Node]) -> None:
    computable = {id(tensor) for tensor in inputs}
    for node in ordered_nodes:
        if node.is_input:
            continue
        for tensor in node.input_tensors:
            if id(tensor) not in computable:
                raise ValueError(
                    f"Graph disconnected: cannot find parent for tensor {tensor} at layer "
                    f"'{node.layer.name}'. Expected every output to depend only on the "
                    "model's inputs."
                )
        computable.update(id(tensor) for tensor in node.output_tensors)


def _check_unique_names(layers: list[Any]) -> None:
    for name, count in Counter(layer.name for layer in layers).items():
        if count != 1:
            raise ValueError(
                f'The name "{name}" is used {count} times in the model. '
                "All layer names should be unique."
            )
