"""Every implementation the benchmark times, each reaching Keras's output window.

A builder takes a case and its channels_last float32 arrays and returns a
:class:`Runner`: ``call()`` computes (inputs already in the framework's own
layout, so layout conversion is not timed) and ``fetch`` turns the result
into a channels_last NumPy array for the correctness check (not timed).
Frameworks are imported inside their builder; a missing one is "absent".
Every window position comes from ``convt._shapes``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.cases import Case
from convt import ops
from convt._shapes import AxisPlan, plan_conv_transpose


@dataclass
class Runner:
    """A ready-to-time implementation of one case."""

    call: Callable[[], Any]
    fetch: Callable[[Any], np.ndarray]


def failure(error: Exception) -> str:
    """The status of a peer that raised on a case (reported, not fatal): its error's
    type and first line."""
    return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"


def axis_plans(case: Case) -> tuple[AxisPlan, ...]:
    """The per-axis window of the case, from convt's one owner of shapes."""
    args, _ = plan_conv_transpose(case.input_shape, case.kernel_shape, **case.op_kwargs)
    return args.axis_plans(case.input_shape[1:-1])


def _to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def _from_channels_first(array: Any) -> np.ndarray:
    return np.moveaxis(np.asarray(array), 1, -1)


def _channels_first_kernel(w: np.ndarray, rank: int) -> np.ndarray:
    """Keras ``(*k, filters, in)`` to torch/ONNX ``(in, filters, *k)``; no flip."""
    return np.ascontiguousarray(w.transpose(rank + 1, rank, *range(rank)))


def _convt(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    return Runner(lambda: ops.conv_transpose(x, w, **case.op_kwargs), np.asarray)


def _convt_prepared(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """The op given a :class:`~convt.prepared.PreparedKernel`, prepared before timing, as
    ONNX Runtime's session prepares its initializers and convt's layers their kernel."""
    kernel = ops.PreparedKernel(w)
    return Runner(lambda: ops.conv_transpose(x, kernel, **case.op_kwargs), np.asarray)


def _torch(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """``conv_transpose{1,2,3}d``: symmetric padding where it reaches Keras's window.

    Torch crops ``padding`` from both ends of the full scatter and appends
    ``output_padding < max(stride, dilation)``; whatever that cannot express
    is sliced (or zero-padded) afterwards.
    """
    import torch
    import torch.nn.functional as functional

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    plans = axis_plans(case)
    padding = [max(0, min(p.crop_left, p.crop_right)) for p in plans]
    extra = [
        min(max(0, p.crop_left + p.output_length - (p.full_length - pad)),
            max(p.stride, p.dilation) - 1)
        for p, pad in zip(plans, padding)
    ]
    window = [(p.crop_left - pad, p.crop_left - pad + p.output_length)
              for p, pad in zip(plans, padding)]
    conv = getattr(functional, f"conv_transpose{case.rank}d")
    inputs = torch.from_numpy(_to_channels_first(x))
    kernel = torch.from_numpy(_channels_first_kernel(w, case.rank))

    def call() -> Any:
        with torch.inference_mode():
            out = conv(inputs, kernel, stride=case.strides, padding=padding,
                       output_padding=extra, dilation=case.dilation_rate)
            return _torch_window(functional, out, window)

    return Runner(call, lambda out: _from_channels_first(out.numpy()))


def _torch_window(functional: Any, out: Any, window: list[tuple[int, int]]) -> Any:
    """Slices the spatial axes to ``window``, zero-padding past their end."""
    lengths = out.shape[2:]
    if all(start == 0 and stop == n for (start, stop), n in zip(window, lengths)):
        return out
    pads = []
    for (_, stop), n in reversed(list(zip(window, lengths))):
        pads += [0, max(0, stop - n)]
    if any(pads):
        out = functional.pad(out, pads)
    return out[(slice(None), slice(None), *(slice(a, b) for a, b in window))]


def _tensorflow(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """``tf.nn.conv_transpose`` with Keras's output shape, as Keras's TF backend calls it."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["OMP_NUM_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _, output_shape = plan_conv_transpose(x.shape, w.shape, **case.op_kwargs)
    inputs, kernel = tf.constant(x), tf.constant(w)
    function = tf.function(lambda: tf.nn.conv_transpose(
        inputs, kernel, output_shape, strides=case.strides, padding=case.padding.upper(),
        dilations=case.dilation_rate))
    return Runner(function, lambda out: out.numpy())


def _jax(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """``jax.lax.conv_transpose`` under ``jax.jit`` with Keras's explicit padding."""
    import jax

    spatial = "DHW"[3 - case.rank:]
    numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    padding = [p.correlation_padding for p in axis_plans(case)]
    function = jax.jit(lambda a, b: jax.lax.conv_transpose(
        a, b, (case.strides,) * case.rank, padding, rhs_dilation=(case.dilation_rate,) * case.rank,
        dimension_numbers=numbers, transpose_kernel=True))
    inputs, kernel = jax.device_put(x), jax.device_put(w)
    return Runner(lambda: function(inputs, kernel).block_until_ready(), np.asarray)


def _onnxruntime(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """ONNX Runtime's ConvTranspose with explicit pads cropping Keras's window.

    ONNX pads may differ per side; a window running past the scatter is
    reached with ``output_padding``.
    """
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    plans = axis_plans(case)
    kernel = _channels_first_kernel(w, case.rank)
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"],
        strides=[p.stride for p in plans], dilations=[p.dilation for p in plans],
        kernel_shape=[p.kernel_size for p in plans],
        pads=[p.crop_left for p in plans] + [max(0, p.crop_right) for p in plans],
        output_padding=[max(0, -p.crop_right) for p in plans],
    )
    inputs = _to_channels_first(x)
    _, output_shape = plan_conv_transpose(inputs.shape, w.shape, data_format="channels_first",
                                          **case.op_kwargs)
    graph = helper.make_graph(
        [node], "conv_transpose",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, inputs.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        [onnx.numpy_helper.from_array(kernel, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(os.environ["OMP_NUM_THREADS"])
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    feed = {"x": inputs}
    return Runner(lambda: session.run(None, feed)[0], _from_channels_first)


def keras_backend_name() -> str | None:
    """The backend Keras uses in this process (KERAS_BACKEND or its default), if installed."""
    try:
        import keras
    except ImportError:
        return None
    return keras.backend.backend()


def _keras(case: Case, x: np.ndarray, w: np.ndarray) -> Runner:
    """``keras.ops.conv_transpose`` on the backend this process runs (eager call)."""
    import keras

    inputs, kernel = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(w)
    return Runner(
        lambda: keras.ops.conv_transpose(inputs, kernel, **case.op_kwargs),
        keras.ops.convert_to_numpy,
    )


OWN = ("convt", "convt_prepared")
"""convt's own rows: never counted as peers."""

IMPLEMENTATIONS: dict[str, Callable[[Case, np.ndarray, np.ndarray], Runner]] = {
    "convt": _convt,
    "convt_prepared": _convt_prepared,
    "torch": _torch,
    "tensorflow": _tensorflow,
    "jax": _jax,
    "onnxruntime": _onnxruntime,
    "keras": _keras,
}


def build(name: str, case: Case, x: np.ndarray, w: np.ndarray) -> tuple[Runner | None, str]:
    """(runner, "ok"), or (None, "absent") when the framework is not installed."""
    try:
        return IMPLEMENTATIONS[name](case, x, w), "ok"
    except ImportError:
        return None, "absent"
    except Exception as error:  # a peer that cannot express the case is reported, not fatal
        return None, f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
