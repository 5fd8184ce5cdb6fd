"""The tf.keras 2.x node surface every layer has: ``input``, ``output``, shapes, masks.

Each call of a layer on a symbolic tensor records a node (see
:mod:`convt.symbolic`); these properties read them, with tf.keras 2.x's errors.
Calls on arrays record no node, as eager calls in tf.keras record none.

Example:
    >>> import convt
    >>> layer = convt.Conv2DTranspose(4, 3, strides=2)
    >>> y = layer(convt.Input(shape=(5, 5, 3)))
    >>> layer.input_shape, layer.output_shape
    ((None, 5, 5, 3), (None, 11, 11, 4))
    >>> layer.get_output_at(0) is y
    True
"""

from __future__ import annotations

from typing import Any

from convt._shapes import is_integer
from convt.symbolic import Node, flatten


class NodeAPI:
    """Mixin of :class:`convt.layers.Layer`: the node properties of tf.keras 2.x."""

    name: str
    _inbound_nodes: list[Node]

    @property
    def inbound_nodes(self) -> list[Node]:
        """The nodes recorded by calls on symbolic tensors, oldest first."""
        return list(self._inbound_nodes)

    def _node_attribute(self, node_index: int, attribute: str, attribute_name: str) -> Any:
        """One node's tensors or shapes: a single value, or a list when several."""
        if not self._inbound_nodes:
            raise RuntimeError(
                f"The layer has never been called and thus has no defined {attribute_name}."
            )
        count = len(self._inbound_nodes)
        if not is_integer(node_index):  # Python's comparison or index error otherwise
            raise TypeError(
                f"Expected `node_index` to be an integer. Received: node_index={node_index!r}")
        if not -count <= node_index < count:
            raise ValueError(
                f"Asked to get {attribute_name} at node {node_index}, but the layer has "
                f"only {count} inbound nodes."
            )
        values = getattr(self._inbound_nodes[int(node_index)], attribute)
        return values[0] if len(values) == 1 else list(values)

    def _only_node_attribute(self, attribute: str, kind: str, getter: str) -> Any:
        """The attribute of the single node; AttributeError for none or several."""
        if not self._inbound_nodes:
            detail = (
                "is not connected, no input to return"
                if kind == "input"
                else ("has no inbound nodes")
            )
            raise AttributeError(f"Layer {self.name} {detail}.")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(
                f"Layer {self.name} has multiple inbound nodes, hence the notion of "
                f'"layer {kind}" is ill-defined. Use `{getter}(node_index)` instead.'
            )
        return self._node_attribute(0, attribute, kind)

    def _common_shape(self, attribute: str, kind: str) -> Any:
        """The shape all nodes share; AttributeError when none or when they differ.

        As tf.keras 2.x's node shapes: one shape for one tensor, except for an
        ``InputLayer``'s node, whose shapes stay a list (``[(None, 8, 8, 3)]``).
        """
        if not self._inbound_nodes:
            raise AttributeError(
                f"The layer has never been called and thus has no defined {kind} shape."
            )
        if len({str(getattr(node, attribute)) for node in self._inbound_nodes}) > 1:
            raise AttributeError(
                f'The layer "{self.name}" has multiple inbound nodes, with different {kind} '
                f'shapes. Hence the notion of "{kind} shape" is ill-defined for the layer. '
                f"Use `get_{kind}_shape_at(node_index)` instead."
            )
        node = self._inbound_nodes[0]
        shapes = getattr(node, attribute)
        return list(shapes) if node.is_input or len(shapes) != 1 else shapes[0]

    @property
    def input(self) -> Any:
        """The symbolic input of the layer's only call.

        Raises:
            AttributeError: if the layer was never called on a symbolic tensor,
                or was called on several.
        """
        return self._only_node_attribute("input_tensors", "input", "get_input_at")

    @property
    def output(self) -> Any:
        """The symbolic output of the layer's only call.

        Raises:
            AttributeError: if the layer has no inbound node, or several.
        """
        return self._only_node_attribute("output_tensors", "output", "get_output_at")

    @property
    def input_shape(self) -> Any:
        """The input shape all calls share; AttributeError if none or they differ."""
        return self._common_shape("input_shapes", "input")

    @property
    def output_shape(self) -> Any:
        """The output shape all calls share; AttributeError if none or they differ."""
        return self._common_shape("output_shapes", "output")

    def get_input_at(self, node_index: int) -> Any:
        """The input tensor of call ``node_index`` (0 is the first call).

        Raises:
            RuntimeError: if the layer was never called on a symbolic tensor.
            ValueError: if there is no such call.
        """
        return self._node_attribute(node_index, "input_tensors", "input")

    def get_output_at(self, node_index: int) -> Any:
        """The output tensor of call ``node_index``; raises as :meth:`get_input_at`."""
        return self._node_attribute(node_index, "output_tensors", "output")

    def get_input_shape_at(self, node_index: int) -> Any:
        """The input shape of call ``node_index``; raises as :meth:`get_input_at`."""
        return self._node_attribute(node_index, "input_shapes", "input shape")

    def get_output_shape_at(self, node_index: int) -> Any:
        """The output shape of call ``node_index``; raises as :meth:`get_input_at`."""
        return self._node_attribute(node_index, "output_shapes", "output shape")

    # Masks: convt's tensors carry none, and these layers do not support masking.
    @property
    def input_mask(self) -> None:
        """None once :attr:`input` exists (raises as :attr:`input` does)."""
        self.input  # noqa: B018 - raises tf.keras's AttributeError when ill-defined
        return None

    @property
    def output_mask(self) -> None:
        """None once :attr:`output` exists (raises as :attr:`output` does)."""
        self.output  # noqa: B018
        return None

    def get_input_mask_at(self, node_index: int) -> None:
        """None for an existing call; raises as :meth:`get_input_at`."""
        self.get_input_at(node_index)
        return None

    def get_output_mask_at(self, node_index: int) -> None:
        """None for an existing call; raises as :meth:`get_output_at`."""
        self.get_output_at(node_index)
        return None

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        """Always None: these layers do not support masking.

        Raises:
            TypeError: if any mask is given, as tf.keras raises for layers that
                do not support masking.
        """
        refuse_mask(self.name, mask)
        return None

    @property
    def updates(self) -> list[Any]:
        """Always empty: these layers have no state updates."""
        return []

    def get_updates_for(self, inputs: Any) -> list[Any]:
        """Always empty: these layers have no state updates."""
        return []


def refuse_mask(name: str, mask: Any) -> None:
    """Raises tf.keras's error when any mask is given to a layer or model that supports none."""
    if any(m is not None for m in flatten(mask)):
        raise TypeError(
            f"Layer {name} does not support masking, but was passed an input_mask: {mask}"
        )
