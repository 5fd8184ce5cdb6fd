"""Symbolic tensors and nodes: the graph a functional model is made of.

A :class:`SymbolicTensor` stands for an array not yet given: it has a shape
(unknown entries are ``None``) and a dtype, and no data. Calling a layer on one
records a :class:`Node` (the layer, its input tensors, its output tensors) in
the layer's ``_inbound_nodes`` and returns a new symbolic tensor whose
``history`` points back at that node. Models walk these links.

Example:
    >>> import convt
    >>> x = convt.Input(shape=(5, 5, 3), name="picture")
    >>> x
    <SymbolicTensor shape=(None, 5, 5, 3), dtype=float32, name=picture>
    >>> layer, node_index, tensor_index = x.history
    >>> layer.name, node_index, tensor_index
    ('picture', 0, 0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class History(NamedTuple):
    """Where a symbolic tensor comes from: ``layer._inbound_nodes[node_index]``."""

    layer: Any
    node_index: int
    tensor_index: int


class SymbolicTensor:
    """A placeholder for an array: its shape and dtype, no data.

    Args:
        shape: the full shape, batch axis first; entries are ints or None.
        dtype: the dtype name of the array it stands for.
        name: a name for messages (the ``Input`` name, or the producing layer's).

    """

    def __init__(self, shape: tuple[int | None, ...], dtype: str, *, name: str) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self.history: History | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        raise TypeError(
            "A symbolic tensor has no values: build a `convt.Model(inputs, outputs)` "
            f"and call it on arrays. Received: tensor={self!r}"
        )

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


@dataclass(frozen=True, eq=False)
class Node:
    """One call of a layer on symbolic tensors.

    An ``InputLayer``'s node has its own tensor as both input and output, as in
    tf.keras.
    """

    layer: Any
    input_tensors: tuple[SymbolicTensor, ...]
    output_tensors: tuple[SymbolicTensor, ...]

    @classmethod
    def record(
        cls,
        layer: Any,
        input_tensors: tuple[SymbolicTensor, ...],
        output_tensors: tuple[SymbolicTensor, ...],
    ) -> Node:
        """Appends a node to ``layer._inbound_nodes`` and points the outputs at it."""
        node = cls(layer, input_tensors, output_tensors)
        node_index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(node)
        for tensor_index, tensor in enumerate(output_tensors):
            tensor.history = History(layer, node_index, tensor_index)
        return node

    @property
    def is_input(self) -> bool:
        """True for the node of an ``InputLayer``."""
        return self.input_tensors == self.output_tensors

    @property
    def input_shapes(self) -> list[tuple[int | None, ...]]:
        return [tensor.shape for tensor in self.input_tensors]

    @property
    def output_shapes(self) -> list[tuple[int | None, ...]]:
        return [tensor.shape for tensor in self.output_tensors]

    @property
    def parent_nodes(self) -> list[Node]:
        """The nodes that produced this node's inputs (none for an input node)."""
        if self.is_input:
            return []
        return [
            tensor.history.layer._inbound_nodes[tensor.history.node_index]
            for tensor in self.input_tensors
        ]


def flatten(structure: Any) -> list[Any]:
    """The leaves of nested lists, tuples and dicts (dicts in key order), in order.

    Example:
        >>> flatten({"b": [1, 2], "a": 3})
        [1, 2, 3]
    """
    if isinstance(structure, Mapping):
        return [leaf for key in structure for leaf in flatten(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def pack_like(structure: Any, leaves: list[Any]) -> Any:
    """The inverse of :func:`flatten`: ``leaves`` laid out as ``structure``.

    Example:
        >>> pack_like({"b": [0, 0], "a": 0}, [1, 2, 3])
        {'b': [1, 2], 'a': 3}
    """
    remaining = iter(leaves)

    def rebuild(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {key: rebuild(value) for key, value in item.items()}
        if isinstance(item, (list, tuple)):
            return type(item)(rebuild(value) for value in item)
        return next(remaining)

    return rebuild(structure)
