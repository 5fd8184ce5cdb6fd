"""``model.summary()``: tf.keras 2.x's table of layers, output shapes and parameter counts.

A plain chain (one input, one output, no shared layer) gets three columns,
65 characters wide; other graphs get a fourth, "Connected to", 98 wide. Cells
too long for their column wrap onto the next line, preferably after ``),``
and similar, and a blank line follows each layer, as tf.keras 2.9-2.12 print
it (without the memory sizes 2.13 added).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from convt._shapes import is_integer

_CHAIN = (65, (0.45, 0.85, 1.0), ["Layer (type)", "Output Shape", "Param #"])
_GRAPH = (98, (0.33, 0.55, 0.67, 1.0), ["Layer (type)", "Output Shape", "Param #", "Connected to"])
_BREAKS = ("),", "},", "],", "',")


MAX_LINE_LENGTH = 10_000
"""The widest table printed: wider, Python cannot repeat a rule's character (2**63 raised
OverflowError) or the line fills memory."""


def print_summary(
    model: Any,
    *,
    line_length: int | None,
    positions: Sequence[float] | None,
    print_fn: Callable[[str], Any],
) -> None:
    """Prints ``model``'s summary table through ``print_fn``, one line per call.

    Raises:
        ValueError: for a Sequential model not built yet, a ``line_length``
            that is not a positive integer up to :data:`MAX_LINE_LENGTH`, or
            ``positions`` that are not one increasing positive number per column
            (nothing is printed).
    """
    if not getattr(model, "built", True):
        raise ValueError(
            "This model has not yet been built. Build the model first by calling `build()` "
            "or by calling the model on a batch of data."
        )
    chain = _is_chain(model)
    default_length, default_positions, headers = _CHAIN if chain else _GRAPH
    line_length = default_length if line_length is None else line_length
    if not is_integer(line_length) or not 0 < line_length <= MAX_LINE_LENGTH:
        raise ValueError(
            f"Expected `line_length` to be a positive integer of at most {MAX_LINE_LENGTH}. "
            f"Received: line_length={line_length!r}"
        )
    positions = _checked_positions(default_positions if positions is None else positions,
                                   len(headers))
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    _print_row(headers, positions, print_fn)
    print_fn("=" * line_length)
    for layer in model.layers:
        _print_row(_layer_fields(model, layer, with_connections=not chain), positions, print_fn)
        print_fn(" " * line_length)
    print_fn("=" * line_length)
    trainable = sum(v.value.size for v in model.trainable_weights)
    non_trainable = sum(v.value.size for v in model.non_trainable_weights)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)


def _checked_positions(positions: Any, columns: int) -> list[float]:
    """``positions`` as a list: one increasing positive number per column (the end of each,
    as a fraction of the line when the last is at most 1)."""
    values = list(positions) if isinstance(positions, (list, tuple)) else None
    if not (values and len(values) == columns
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            and all(a < b for a, b in zip([0, *values], values))):
        raise ValueError(
            f"Expected `positions` to be {columns} increasing positive numbers, the end of "
            f"each column. Received: positions={positions!r}"
        )
    return values


def _is_chain(model: Any) -> bool:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    return all(len(model._nodes_of(layer)) == 1 for layer in model.layers)


def _layer_fields(model: Any, layer: Any, *, with_connections: bool) -> list[str]:
    nodes = model._nodes_of(layer)
    try:
        shape = str(layer.output_shape)
    except AttributeError:  # calls of different output shapes
        shape = "multiple"
    fields = [f"{layer.name} ({type(layer).__name__})", shape, str(layer.count_params())]
    if with_connections:
        connections = [
            f"{tensor.history.layer.name}[{tensor.history.node_index}][{tensor.history.tensor_index}]"
            for node in nodes
            if not node.is_input
            for tensor in node.input_tensors
        ]
        fields.append(str(connections))
    return fields


def _print_row(fields: list[str], positions: list[int], print_fn: Callable[[str], Any]) -> None:
    """One table row, wrapped over as many lines as its longest cell needs."""
    left = list(fields)
    while any(left):
        line = ""
        for column, text in enumerate(left):
            start = positions[column - 1] if column else 0
            last = column == len(positions) - 1
            space = 0 if last else 2
            cutoff = positions[column] - start - space - (0 if last else 1)  # the leading space
            cutoff = max(cutoff, 1)  # a column too narrow still shows a character per line
            piece = text[:cutoff]
            breaks = [piece.find(mark) + len(mark) for mark in _BREAKS if piece.find(mark) >= 0]
            if breaks:
                cutoff = min(breaks)
                piece = piece[:cutoff]
            line += (" " if column == 0 else "") + piece + " " * space
            left[column] = text[cutoff:]
            line += " " * (positions[column] - len(line))
        print_fn(line)
