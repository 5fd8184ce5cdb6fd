"""Hostile argument values for the property tests of the public entry points.

Fuzzes of about 39,000 constructor and op calls with such values (2026-11-22) found a
process killed by the OOM killer and errors that named nothing; the property tests
keep drawing from the same values so that such a call cannot come back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

HOSTILE_VALUES = [
    None, True, False, 0, -1, 1, 2, 3, 2**31, 2**63, 10**30, -(10**20), 1.5, 2.0,
    float("nan"), float("inf"), "", "2", "same", "SAME", "full", "causal", "channels_first",
    "channels_last", "relu", "zeros", "l2", "max_norm", "float64", "bfloat16", "int32",
    (), (1,), (2, 2), (1, 2, 3), (1, 2, 3, 4), [2, 2], (2, None), (True, 2), (2.0, 2), (0, 0),
    (-1, 2), (10**9, 10**9), 10**9, np.int64(2), np.int8(-3), np.float32(2.0), np.array(2),
    np.array([2, 2]), np.array([[2]]), {}, {"a": 1}, {"class_name": "L2", "config": {"l2": 0.1}},
    {"class_name": "os.system", "config": {}}, b"valid", 1 + 2j, ...,
]
"""Values of every kind an argument may wrongly receive (no callables: those are user code)."""

LAYER_ARGUMENTS = [
    "filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
    "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer",
    "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "bias_constraint", "name", "trainable", "dtype", "input_shape", "batch_size",
    "batch_input_shape",
]
"""The layers' constructor arguments, Keras's and R's."""

OP_ARGUMENTS = ["strides", "padding", "output_padding", "data_format", "dilation_rate"]

_NAMED = re.compile(r"received|Unrecognized keyword arguments passed to", re.IGNORECASE)
"""What a clear refusal says: convt's messages end with ``Received: ...`` (the input
spec's, as Keras's, with ``but received input with shape``); Keras's message for
unknown keywords lists them."""


def result_or_clear_refusal(call: Callable[[], Any]) -> Any:
    """``call()``, or None when it raises ValueError or TypeError with a clear message;
    any other exception, or an unclear message, fails the test."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        assert _NAMED.search(str(error)), f"{type(error).__name__} names nothing: {error}"
        return None


def build_and_call(layer_class: type, rank: int, arguments: dict[str, Any],
                   make_input: Callable[[tuple[int, ...]], Any]) -> None:
    """A layer of ``rank`` from ``arguments`` over valid defaults, called on an input of
    3 channels made by ``make_input``: each step works or is refused clearly."""
    layer = result_or_clear_refusal(lambda: layer_class(**{"filters": 2, "kernel_size": 2,
                                                            **arguments}))
    if layer is not None:
        spatial = (4,) * rank
        first = layer.data_format == "channels_first"
        shape = (2, 3, *spatial) if first else (2, *spatial, 3)
        result_or_clear_refusal(lambda: layer(make_input(shape)))
