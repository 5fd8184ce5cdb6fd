"""Make the golden fixtures in tests/fixtures/ from real Keras 3.

Regenerate (from the repository root, in an environment with keras,
tensorflow-cpu and jax installed; convt itself is not needed)::

    /work/kerasenv/bin/python tools/make_golden.py

The fixtures were made with Keras 3.15.1, TensorFlow 2.21.0, JAX 0.10.2 and
NumPy 2.4.6 (the exact versions are also stored in each fixture's json).

How it works: Keras picks its backend once per process, so this script
launches itself twice, once with ``KERAS_BACKEND=tensorflow`` and once with
``KERAS_BACKEND=jax`` (``JAX_ENABLE_X64=1``, so float64 stays float64), telling
each child what to do through ``GOLDEN_WORKER``. Both children compute every
case in float64; TensorFlow's float64 CPU kernels refuse ``dilation_rate > 1``,
``channels_first`` and some ``"same"`` + ``output_padding`` shapes, and then
TensorFlow is asked again in float32 (its oneDNN kernels run most of those).
The golden answer is TensorFlow's float64 one, else JAX's float64 one, else a
float32 one; the json records which, what each backend said, and whether the
two backends agreed (within the tolerance of the less precise one).

XLA aborts the whole process (a failed CHECK in its algebraic simplifier) on at
least one valid shape; the parent then relaunches the worker without that case
and runs it alone with ``XLA_FLAGS=--xla_disable_hlo_passes=algsimp``, saying
so in the case's status.

Files written:

* ``golden_ops.json`` / ``golden_ops.npz``: ``keras.ops.conv_transpose`` cases;
  arrays ``<id>_x``, ``<id>_w`` (kernel ``(*kernel_size, filters, in_channels)``)
  and ``<id>_y``.
* ``golden_layers.json`` / ``golden_layers.npz``: Conv{1,2,3}DTranspose layer
  facts (configs, output shapes, errors, parameter counts, outputs, losses);
  arrays ``<id>_x``, ``<id>_kernel``, ``<id>_bias``, ``<id>_y``.

JSON specs of layer arguments write Keras objects (initializers, regularizers,
constraints) as ``{"__object__": "initializers.RandomNormal", "config": {...}}``;
tests/test_golden.py builds the same objects from ``convt.initializers`` etc.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SEED = 20240611
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BACKENDS = ("tensorflow", "jax")
PADDINGS = ("valid", "same")
LENGTHS = (3, 4, 5, 6, 7)
LENGTHS_3D = (3, 4, 3, 5)
CHANNELS = (1, 2, 3, 4)
XLA_WORKAROUND = "--xla_disable_hlo_passes=algsimp"


# --------------------------------------------------------------------------
# Op cases: plain dicts of arguments, made deterministic by their position.
# --------------------------------------------------------------------------


def spec(
    kernel,
    strides=1,
    padding="valid",
    output_padding=None,
    dilation_rate=1,
    data_format="channels_last",
    spatial=None,
    batch=None,
    in_channels=None,
    filters=None,
):
    """One op case before its defaults are filled in (None = pick by position)."""
    return dict(
        kernel=tuple(kernel),
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation_rate,
        data_format=data_format,
        spatial=spatial,
        batch=batch,
        in_channels=in_channels,
        filters=filters,
    )


def rank1_sweep():
    """Every kernel size 1..5 with every stride 1..4, valid and same."""
    for k in range(1, 6):
        for s in range(1, 5):
            for padding in PADDINGS:
                yield spec((k,), strides=s, padding=padding)


def output_padding_sweep():
    """Every output_padding 0..s-1 for strides 1..4, kernel sizes cycling."""
    for s in range(1, 5):
        for op in range(s):
            for padding in PADDINGS:
                k = (s + op + (padding == "same")) % 5 + 1
                yield spec((k,), strides=s, padding=padding, output_padding=op)


def output_padding_variants(strides, rank):
    """None, 0 and the largest per-axis value (strides - 1)."""
    per_axis = (strides,) * rank if isinstance(strides, int) else strides
    return (None, 0, tuple(s - 1 for s in per_axis))


def rank2_cases():
    kernels = ((2, 3), (1, 4), (5, 2), (3, 3), (4, 1), (2, 2))
    strides = ((1, 3), (2, 1), (3, 2), (4, 4), (2, 2), 1)
    for i, (kernel, stride) in enumerate(zip(kernels, strides)):
        data_format = "channels_first" if i % 3 == 2 else "channels_last"
        for padding in PADDINGS:
            for op in output_padding_variants(stride, 2):
                yield spec(
                    kernel,
                    strides=stride,
                    padding=padding,
                    output_padding=op,
                    data_format=data_format,
                )


def rank3_cases():
    kernels = ((1, 2, 3), (3, 3, 3), (2, 2, 2), (4, 1, 2))
    strides = ((1, 2, 3), 2, (3, 1, 1), 1)
    for i, (kernel, stride) in enumerate(zip(kernels, strides)):
        data_format = "channels_first" if i == 1 else "channels_last"
        for padding in PADDINGS:
            for op in output_padding_variants(stride, 3)[::2]:
                yield spec(
                    kernel,
                    strides=stride,
                    padding=padding,
                    output_padding=op,
                    data_format=data_format,
                )


def dilation_cases():
    """dilation_rate 2-3 with strides 1 (the layers allow only this)."""
    for d in (2, 3):
        for k in (2, 3):
            for padding in PADDINGS:
                yield spec((k,), padding=padding, dilation_rate=d)
    for d, kernel in (((2, 3), (3, 2)), ((3, 1), (2, 2))):
        for padding in PADDINGS:
            yield spec(kernel, padding=padding, dilation_rate=d)
    for padding in PADDINGS:
        yield spec((2, 2, 2), padding=padding, dilation_rate=2)
        yield spec((3, 2), padding=padding, dilation_rate=2, output_padding=0)


def strided_dilation_cases():
    """strides > 1 with dilation_rate > 1: only the op accepts it (JAX answers)."""
    for s, d, k in ((2, 2, 3), (3, 2, 2), (2, 3, 4)):
        for padding in PADDINGS:
            yield spec((k,), strides=s, padding=padding, dilation_rate=d)
    for padding in PADDINGS:
        yield spec((3,), strides=2, padding=padding, dilation_rate=2, output_padding=1)
        yield spec((3, 3), strides=(2, 1), padding=padding, dilation_rate=(1, 2))
    yield spec((2, 2, 2), strides=2, padding="same", dilation_rate=(2, 1, 3))


def edge_cases():
    """channels_first in 1D, batch 1, single channels, stride > input length."""
    for k, s, padding in ((3, 2, "valid"), (2, 3, "same"), (4, 1, "same"), (1, 4, "valid")):
        yield spec((k,), strides=s, padding=padding, data_format="channels_first")
    yield spec((3,), strides=4, spatial=(3,), batch=1, in_channels=1, filters=1)
    yield spec(
        (2, 3), strides=(4, 5), padding="same", spatial=(3, 4), batch=1, in_channels=1, filters=1
    )
    yield spec((5,), strides=1, padding="same", spatial=(3,), in_channels=1, filters=4)
    yield spec((1, 1), strides=(3, 2), spatial=(2, 3), batch=1, in_channels=4, filters=1)


def op_specs():
    groups = (
        rank1_sweep,
        output_padding_sweep,
        rank2_cases,
        rank3_cases,
        dilation_cases,
        strided_dilation_cases,
        edge_cases,
    )
    return [s for group in groups for s in group()]


def pick(options, index):
    return options[index % len(options)]


def fill_defaults(raw, index):
    """Turn a spec into a case record with full input and kernel shapes."""
    rank = len(raw["kernel"])
    lengths = LENGTHS_3D if rank == 3 else LENGTHS
    spatial = raw["spatial"] or tuple(pick(lengths, index + a) for a in range(rank))
    batch = raw["batch"] or (1 if index % 5 == 4 else 2)
    in_channels = raw["in_channels"] or pick(CHANNELS, index)
    filters = raw["filters"] or pick(CHANNELS, index + 1 + index // 4)
    if raw["data_format"] == "channels_last":
        input_shape = (batch, *spatial, in_channels)
    else:
        input_shape = (batch, in_channels, *spatial)
    return {
        "id": f"op{index:03d}_{rank}d",
        "rank": rank,
        "input_shape": list(input_shape),
        "kernel_shape": [*raw["kernel"], filters, in_channels],
        "strides": jsonable(raw["strides"]),
        "padding": raw["padding"],
        "output_padding": jsonable(raw["output_padding"]),
        "data_format": raw["data_format"],
        "dilation_rate": jsonable(raw["dilation_rate"]),
    }


def jsonable(value):
    """Tuples become lists, as json.dumps would make them."""
    return json.loads(json.dumps(value))


def as_tuples(value):
    """Lists back to tuples (the form a Python caller would pass)."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    return value


def op_cases():
    return [fill_defaults(raw, i) for i, raw in enumerate(op_specs())]


def op_inputs(cases):
    rng = np.random.default_rng(SEED)
    arrays = {}
    for case in cases:
        arrays[case["id"] + "_x"] = rng.standard_normal(case["input_shape"])
        arrays[case["id"] + "_w"] = rng.standard_normal(case["kernel_shape"])
    return arrays


def op_kwargs(case):
    names = ("strides", "padding", "output_padding", "data_format", "dilation_rate")
    return {name: as_tuples(case[name]) for name in names}


# --------------------------------------------------------------------------
# Layer cases. Arguments that are Keras objects are written as markers.
# --------------------------------------------------------------------------


def obj(path, **config):
    return {"__object__": path, "config": config}


def layer(cls, *args, **kwargs):
    return {"class": cls, "args": list(args), "kwargs": kwargs}


CONFIG_CASES = {
    "cfg_1d_defaults": layer("Conv1DTranspose", 4, 3),
    "cfg_1d_relu_same_op": layer(
        "Conv1DTranspose", 2, 5, strides=2, padding="same", output_padding=1, activation="relu"
    ),
    "cfg_2d_init_names_l2": layer(
        "Conv2DTranspose",
        3,
        (2, 3),
        strides=(1, 2),
        kernel_initializer="he_normal",
        bias_initializer="ones",
        kernel_regularizer="l2",
        bias_regularizer="l1l2",
    ),
    "cfg_2d_objects": layer(
        "Conv2DTranspose",
        2,
        3,
        kernel_initializer=obj("initializers.RandomNormal", mean=0.0, stddev=0.02, seed=7),
        bias_initializer=obj("initializers.Constant", value=0.5),
        kernel_regularizer=obj("regularizers.L1L2", l1=0.01, l2=0.001),
        bias_regularizer=obj("regularizers.L2", l2=0.1),
        activity_regularizer=obj("regularizers.L1", l1=0.05),
    ),
    "cfg_2d_cf_nobias_upper_same": layer(
        "Conv2DTranspose", 8, 3, use_bias=False, data_format="channels_first", padding="SAME"
    ),
    "cfg_2d_dilation_constraints": layer(
        "Conv2DTranspose",
        4,
        3,
        dilation_rate=2,
        kernel_constraint=obj("constraints.MaxNorm", max_value=2.0, axis=0),
        bias_constraint="non_neg",
    ),
    "cfg_2d_lists": layer(
        "Conv2DTranspose",
        5,
        [3, 3],
        strides=[2, 2],
        output_padding=[1, 0],
        kernel_constraint="max_norm",
    ),
    "cfg_3d_per_axis": layer(
        "Conv3DTranspose",
        2,
        (1, 2, 3),
        strides=(1, 2, 3),
        output_padding=(0, 1, 2),
        activity_regularizer="l1l2",
        activation="sigmoid",
    ),
    "cfg_3d_positional": layer("Conv3DTranspose", 4, 3, 2, "same", "channels_first", 1),
    "cfg_1d_named_frozen": layer(
        "Conv1DTranspose", 1, 1, activation="linear", trainable=False, name="my_layer"
    ),
    "cfg_1d_float64": layer(
        "Conv1DTranspose",
        3,
        2,
        dtype="float64",
        kernel_initializer=obj("initializers.GlorotUniform", seed=3),
    ),
}

SHAPE_LAYERS = {
    "c1": layer("Conv1DTranspose", 4, 3, strides=2),
    "c1_same": layer("Conv1DTranspose", 2, 4, strides=3, padding="same"),
    "c1_cf_op": layer(
        "Conv1DTranspose", 3, 2, strides=3, output_padding=2, data_format="channels_first"
    ),
    "c2_same_op": layer(
        "Conv2DTranspose", 5, (3, 2), strides=(2, 3), padding="same", output_padding=(1, 0)
    ),
    "c2_dilated": layer("Conv2DTranspose", 2, 3, dilation_rate=(2, 3)),
    "c3": layer("Conv3DTranspose", 6, (1, 2, 3), strides=(1, 2, 4)),
    "c3_cf_same": layer(
        "Conv3DTranspose", 2, 2, strides=2, padding="same", data_format="channels_first"
    ),
}

SHAPE_INPUTS = {
    "c1": ((2, 5, 3), (None, 5, 3), (None, None, 3), (1, 1, 1), (4, 7, 2)),
    "c1_same": ((2, 5, 3), (None, 6, 1), (3, None, 2), (2, 1, 1)),
    "c1_cf_op": ((2, 3, 5), (None, 3, None), (1, 1, 4)),
    "c2_same_op": (
        (2, 4, 5, 3),
        (None, 4, 5, 3),
        (None, None, None, 3),
        (1, 1, 1, 1),
        (2, 3, None, 2),
    ),
    "c2_dilated": ((2, 5, 5, 1), (None, 6, 3, 2), (2, None, 4, 3), (1, 1, 1, 1)),
    "c3": ((2, 3, 4, 5, 2), (None, 3, 4, 5, 2), (None, None, None, None, 1), (1, 1, 1, 1, 1)),
    "c3_cf_same": ((2, 2, 3, 4, 5), (None, 2, None, 4, None), (1, 1, 1, 1, 1), (2, 3, 2, 2, 2)),
}


def error_case(spec_, expect, build_shape=None, call_shape=None, quirk=None):
    """`expect`: a word the message must contain (case-insensitive), usually the argument.

    `quirk` explains a Keras error that is an accident of its code (an
    IndexError, a TypeError from a comparison); there a ValueError is accepted too.
    """
    return {
        "layer": spec_,
        "build_shape": build_shape,
        "call_shape": call_shape,
        "message_must_contain": expect,
        "keras_quirk": quirk,
        "also_accept": ["ValueError"] if quirk else [],
    }


ERROR_CASES = {
    "err_filters_zero": error_case(layer("Conv2DTranspose", 0, 3), "filters"),
    "err_filters_negative": error_case(layer("Conv2DTranspose", -1, 3), "filters"),
    "err_filters_none_build": error_case(
        layer("Conv1DTranspose", None, 3), "None", build_shape=(2, 5, 3)
    ),
    "err_kernel_size_zero": error_case(layer("Conv2DTranspose", 4, 0), "kernel_size"),
    "err_kernel_size_has_zero": error_case(layer("Conv2DTranspose", 4, (2, 0)), "kernel_size"),
    "err_kernel_size_negative": error_case(layer("Conv1DTranspose", 4, -2), "kernel_size"),
    "err_kernel_size_too_long": error_case(layer("Conv1DTranspose", 4, (3, 3)), "kernel_size"),
    "err_kernel_size_too_short": error_case(layer("Conv3DTranspose", 4, (3, 3)), "kernel_size"),
    "err_kernel_size_float": error_case(layer("Conv2DTranspose", 4, 2.5), "kernel_size"),
    "err_kernel_size_str": error_case(
        layer("Conv1DTranspose", 4, "3"),
        "",
        quirk="tuple('3') passes the int() check, then '3' <= 0 raises TypeError",
    ),
    "err_kernel_size_float_in_tuple": error_case(
        layer("Conv2DTranspose", 4, (2.5, 3)),
        "2.5",
        call_shape=(1, 4, 4, 2),
        quirk="int(2.5) passes the element check, so the float is stored",
    ),
    "err_strides_zero": error_case(layer("Conv2DTranspose", 4, 3, strides=0), "strides"),
    "err_strides_has_zero": error_case(layer("Conv2DTranspose", 4, 3, strides=(1, 0)), "strides"),
    "err_output_padding_eq_strides": error_case(
        layer("Conv2DTranspose", 4, 3, strides=2, output_padding=2), "output_padding"
    ),
    "err_output_padding_per_axis": error_case(
        layer("Conv2DTranspose", 4, 3, strides=(1, 3), output_padding=(0, 3)), "output_padding"
    ),
    "err_output_padding_stride1": error_case(
        layer("Conv1DTranspose", 4, 3, output_padding=1), "output_padding"
    ),
    "err_output_padding_negative": error_case(
        layer("Conv1DTranspose", 4, 3, strides=2, output_padding=-1), "output_padding"
    ),
    "err_padding_causal": error_case(layer("Conv1DTranspose", 4, 3, padding="causal"), "padding"),
    "err_padding_full": error_case(layer("Conv2DTranspose", 4, 3, padding="full"), "padding"),
    "err_strides_and_dilation": error_case(
        layer("Conv2DTranspose", 4, 3, strides=2, dilation_rate=2), "dilation_rate"
    ),
    "err_strides_and_dilation_other_axes": error_case(
        layer("Conv2DTranspose", 4, 3, strides=(1, 2), dilation_rate=(2, 1)), "dilation_rate"
    ),
    "err_dilation_zero": error_case(
        layer("Conv1DTranspose", 4, 3, dilation_rate=0), "dilation_rate"
    ),
    "err_data_format": error_case(
        layer("Conv2DTranspose", 4, 3, data_format="channels_middle"), "data_format"
    ),
    "err_activation_unknown": error_case(
        layer("Conv2DTranspose", 4, 3, activation="nonexistent"), "activation"
    ),
    "err_initializer_unknown": error_case(
        layer("Conv2DTranspose", 4, 3, kernel_initializer="nope"), "initializer"
    ),
    "err_regularizer_name_l1_l2": error_case(
        layer("Conv2DTranspose", 4, 3, kernel_regularizer="l1_l2"), "regularizer"
    ),
    "err_call_rank_too_low": error_case(
        layer("Conv2DTranspose", 4, 3), "input", call_shape=(2, 5, 3)
    ),
    "err_call_rank_too_high": error_case(
        layer("Conv2DTranspose", 4, 3),
        "",
        call_shape=(2, 3, 5, 5, 3),
        quirk="InputSpec checks only min_ndim; the backend then indexes past the kernel",
    ),
    "err_call_channels_mismatch": error_case(
        layer("Conv2DTranspose", 4, 3), "input", build_shape=(2, 5, 5, 3), call_shape=(2, 5, 5, 4)
    ),
    "err_call_channels_mismatch_cf": error_case(
        layer("Conv1DTranspose", 4, 3, data_format="channels_first"),
        "input",
        build_shape=(2, 3, 5),
        call_shape=(2, 2, 5),
    ),
    "ok_conv3d_positional_data_format": error_case(
        layer("Conv3DTranspose", 4, 3, 2, "same", "channels_first", 1),
        "",
        call_shape=(1, 2, 3, 3, 3),
    ),
    "err_conv3d_positional_output_padding_slot": error_case(
        layer("Conv3DTranspose", 4, 3, 2, "same", 1), "data_format"
    ),
    "ok_conv2d_positional_output_padding": error_case(
        layer("Conv2DTranspose", 4, 3, 2, "same", 1), "", call_shape=(1, 3, 3, 2)
    ),
    "ok_stride_larger_than_input": error_case(
        layer("Conv1DTranspose", 2, 2, strides=9), "", call_shape=(1, 2, 1)
    ),
}

COUNT_CASES = {
    "count_1d": (layer("Conv1DTranspose", 4, 3), (2, 5, 3)),
    "count_2d_nobias": (layer("Conv2DTranspose", 8, (2, 3), use_bias=False), (None, 5, 5, 3)),
    "count_2d_cf": (layer("Conv2DTranspose", 2, 3, data_format="channels_first"), (None, 6, 4, 4)),
    "count_3d": (layer("Conv3DTranspose", 5, (1, 2, 3)), (1, 3, 3, 3, 2)),
    "count_3d_cf_nobias": (
        layer("Conv3DTranspose", 1, 2, use_bias=False, data_format="channels_first"),
        (None, 4, None, 3, 3),
    ),
}

OUTPUT_CASES = {
    "out_1d_relu_f64": (
        layer("Conv1DTranspose", 3, 3, strides=2, activation="relu", dtype="float64"),
        (2, 5, 2),
    ),
    "out_2d_tanh_same_f32": (
        layer("Conv2DTranspose", 2, (2, 3), strides=(2, 1), padding="same", activation="tanh"),
        (2, 4, 5, 3),
    ),
    "out_2d_cf_sigmoid_op_f64": (
        layer(
            "Conv2DTranspose",
            4,
            3,
            strides=2,
            padding="same",
            output_padding=1,
            data_format="channels_first",
            activation="sigmoid",
            dtype="float64",
        ),
        (2, 3, 4, 3),
    ),
    "out_3d_relu_f64": (
        layer(
            "Conv3DTranspose", 2, (2, 2, 3), strides=(1, 2, 2), activation="relu", dtype="float64"
        ),
        (2, 3, 3, 4, 2),
    ),
    "out_1d_dilated_nobias_f32": (
        layer("Conv1DTranspose", 2, 3, dilation_rate=2, use_bias=False, padding="same"),
        (2, 6, 3),
    ),
    "out_2d_regularizer_names_f64": (
        layer(
            "Conv2DTranspose",
            3,
            3,
            strides=2,
            activation="relu",
            kernel_regularizer="l2",
            bias_regularizer="l1l2",
            activity_regularizer="l2",
            dtype="float64",
        ),
        (2, 3, 4, 2),
    ),
    "out_1d_regularizer_objects_f32": (
        layer(
            "Conv1DTranspose",
            2,
            2,
            strides=2,
            kernel_regularizer=obj("regularizers.L1L2", l1=0.01, l2=0.02),
            bias_regularizer=obj("regularizers.L1", l1=0.5),
            activity_regularizer=obj("regularizers.L1", l1=0.1),
        ),
        (4, 3, 2),
    ),
}


# --------------------------------------------------------------------------
# Worker side: runs inside one Keras backend.
# --------------------------------------------------------------------------


def resolve(value, keras):
    """Replace object markers by Keras objects; lists become tuples."""
    if isinstance(value, dict) and "__object__" in value:
        module, name = value["__object__"].split(".")
        return getattr(getattr(keras, module), name)(**value["config"])
    if isinstance(value, dict):
        return {k: resolve(v, keras) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(resolve(v, keras) for v in value)
    return value


def make_layer(keras, layer_spec):
    cls = getattr(keras.layers, layer_spec["class"])
    args = [resolve(a, keras) for a in layer_spec["args"]]
    return cls(*args, **resolve(layer_spec["kwargs"], keras))


def error_text(exc):
    return f"{type(exc).__name__}: {exc}"


class Progress:
    """Tells the parent which case a worker is in, and which ones crashed before.

    XLA aborts the whole process on some shapes (a failed CHECK, not an
    exception); the parent then relaunches the worker with that case skipped.
    """

    def __init__(self, workdir, backend):
        self.marker = workdir / f"{backend}.current"
        self.crashed = read_json(workdir / f"{backend}.crashed", {})

    def enter(self, case_id):
        """The reason to skip `case_id`, or None after marking it as running."""
        self.marker.write_text(case_id)
        return self.crashed.get(case_id)


def read_json(path, default):
    return json.loads(path.read_text()) if path.exists() else default


def dtypes_to_try(backend):
    """float64 first; TF's float32 CPU kernels (oneDNN) run shapes its float64 ones refuse."""
    return ("float64", "float32") if backend == "tensorflow" else ("float64",)


def run_op_case(keras, case, x, w, dtypes):
    """(output or None, {dtype: "ok" or the error}) trying each dtype until one runs."""
    status = {}
    for dtype in dtypes:
        try:
            y = keras.ops.conv_transpose(x.astype(dtype), w.astype(dtype), **op_kwargs(case))
        except Exception as exc:  # the refusal is the fact we record
            status[dtype] = error_text(exc)[:300]
            continue
        status[dtype] = "ok"
        return keras.ops.convert_to_numpy(y), status
    return None, status


def run_op_cases(keras, cases, inputs, progress, dtypes):
    outputs, status = {}, {}
    for case in cases:
        crashed = progress.enter(case["id"])
        if crashed:
            status[case["id"]] = {dtypes[0]: crashed}
            continue
        x, w = inputs[case["id"] + "_x"], inputs[case["id"] + "_w"]
        y, status[case["id"]] = run_op_case(keras, case, x, w, dtypes)
        if y is not None:
            outputs[case["id"]] = y
    return outputs, status


def type_names(config):
    return {key: type(value).__name__ for key, value in config.items()}


def config_facts(keras):
    facts = {}
    for case_id, layer_spec in CONFIG_CASES.items():
        config = make_layer(keras, layer_spec).get_config()
        facts[case_id] = {
            "layer": jsonable(layer_spec),
            "config": jsonable(config),
            "python_types": type_names(config),
        }
    return facts


def shape_facts(keras):
    facts = {}
    for layer_id, shapes in SHAPE_INPUTS.items():
        layer_spec = SHAPE_LAYERS[layer_id]
        for i, shape in enumerate(shapes):
            result = make_layer(keras, layer_spec).compute_output_shape(shape)
            facts[f"shape_{layer_id}_{i}"] = {
                "layer": jsonable(layer_spec),
                "input_shape": list(shape),
                "output_shape": jsonable(result),
                "python_type": type(result).__name__,
            }
    return facts


def attempt(keras, case):
    """Construct, build, call as the case says; return (stage, exception or None)."""
    stage = "init"
    try:
        obj_ = make_layer(keras, case["layer"])
        if case["build_shape"]:
            stage = "build"
            obj_.build(tuple(case["build_shape"]))
        if case["call_shape"]:
            stage = "call"
            obj_(np.zeros(case["call_shape"], dtype="float32"))
    except Exception as exc:  # the exception is the fact we record
        return stage, exc
    return None, None


def error_facts(keras):
    facts = {}
    for case_id, case in ERROR_CASES.items():
        stage, exc = attempt(keras, case)
        facts[case_id] = {
            **jsonable(case),
            "stage": stage,
            "error_type": "no error" if exc is None else type(exc).__name__,
            "error_message": "" if exc is None else str(exc),
        }
    return facts


def count_facts(keras):
    facts = {}
    for case_id, (layer_spec, shape) in COUNT_CASES.items():
        obj_ = make_layer(keras, layer_spec)
        obj_.build(shape)
        facts[case_id] = {
            "layer": jsonable(layer_spec),
            "build_shape": list(shape),
            "count_params": obj_.count_params(),
            "weight_names": [v.name for v in obj_.weights],
            "weight_shapes": [list(v.shape) for v in obj_.weights],
            "trainable_weights": len(obj_.trainable_weights),
        }
    return facts


def seeded_weights(obj_, index):
    rng = np.random.default_rng(SEED + 1000 + index)
    return [rng.standard_normal(tuple(v.shape)) for v in obj_.weights]


def undivided_activity_penalty(keras, obj_, y):
    if obj_.activity_regularizer is None:
        return None
    return float(keras.ops.convert_to_numpy(obj_.activity_regularizer(y)))


def run_output_case(keras, layer_spec, x, index):
    """Call a layer with seeded weights; return (facts, arrays)."""
    obj_ = make_layer(keras, layer_spec)
    obj_.build(x.shape)
    weights = [w.astype(obj_.dtype) for w in seeded_weights(obj_, index)]
    obj_.set_weights(weights)
    y = keras.ops.convert_to_numpy(obj_(x))
    losses = [float(keras.ops.convert_to_numpy(v)) for v in obj_.losses]
    obj_(x)
    facts = {
        "layer_dtype": obj_.dtype,
        "output_dtype": str(y.dtype),
        "output_shape": list(y.shape),
        "losses": losses,
        "losses_order": "activity, then kernel, then bias regularizer",
        "activity_penalty_before_batch_division": undivided_activity_penalty(keras, obj_, y),
        "losses_len_after_second_call": len(obj_.losses),
    }
    names = ("kernel", "bias")[: len(weights)]
    return facts, {"x": x, "y": y, **dict(zip(names, weights))}


def output_facts(keras, progress):
    facts, arrays = {}, {}
    for index, (case_id, (layer_spec, shape)) in enumerate(OUTPUT_CASES.items()):
        crashed = progress.enter(case_id)
        if crashed:
            facts[case_id] = {"status": crashed}
            continue
        x = np.random.default_rng(SEED + 2000 + index).standard_normal(shape)
        try:
            record, case_arrays = run_output_case(keras, layer_spec, x, index)
        except Exception as exc:  # a backend refusal is recorded
            facts[case_id] = {"status": error_text(exc)[:300]}
            continue
        arrays.update({f"{case_id}_{name}": a for name, a in case_arrays.items()})
        facts[case_id] = {
            "status": "ok",
            "layer": jsonable(layer_spec),
            "input_shape": list(shape),
            **record,
        }
    return facts, arrays


def dtype_facts(keras):
    names = (None, "float64", "mixed_float16", "bfloat16")
    return {
        str(name): jsonable(keras.layers.Conv1DTranspose(2, 3, dtype=name).get_config()["dtype"])
        for name in names
    }


def worker(backend, tag, workdir):
    import keras  # imported only in the child with its backend set

    assert keras.backend.backend() == backend
    cases = json.loads((workdir / "cases.json").read_text())
    inputs = dict(np.load(workdir / "inputs.npz"))
    progress = Progress(workdir, tag)
    op_outputs, op_status = run_op_cases(keras, cases, inputs, progress, dtypes_to_try(backend))
    out_facts, out_arrays = output_facts(keras, progress)
    progress.enter("layer facts")
    facts = {
        "keras_version": keras.__version__,
        "backend_version": importlib.import_module(backend).__version__,
        "op_status": op_status,
        "configs": config_facts(keras),
        "shapes": shape_facts(keras),
        "errors": error_facts(keras),
        "counts": count_facts(keras),
        "outputs": out_facts,
        "dtype_config": dtype_facts(keras),
    }
    np.savez(workdir / f"{tag}_ops.npz", **op_outputs)
    np.savez(workdir / f"{tag}_layers.npz", **out_arrays)
    (workdir / f"{tag}.json").write_text(json.dumps(facts))


def retry_worker(backend, tag, workdir):
    """Run again, alone, the op cases that crashed `backend`'s main worker."""
    import keras  # imported only in the child with its backend set

    crashed = read_json(workdir / f"{backend}.crashed", {})
    cases = [c for c in json.loads((workdir / "cases.json").read_text()) if c["id"] in crashed]
    inputs = dict(np.load(workdir / "inputs.npz"))
    outputs, status = run_op_cases(
        keras, cases, inputs, Progress(workdir, tag), dtypes_to_try(backend)
    )
    np.savez(workdir / f"{tag}_ops.npz", **outputs)
    (workdir / f"{tag}.json").write_text(json.dumps({"op_status": status}))


# --------------------------------------------------------------------------
# Parent side: launch the workers, merge, write the fixtures.
# --------------------------------------------------------------------------


def launch(backend, workdir, tag=None, extra_env=None):
    tag = tag or backend
    env = {
        **os.environ,
        "GOLDEN_WORKER": backend,
        "GOLDEN_TAG": tag,
        "GOLDEN_DIR": str(workdir),
        "KERAS_BACKEND": backend,
        "JAX_ENABLE_X64": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONHASHSEED": "0",
        **(extra_env or {}),
    }
    while True:
        code = subprocess.run([sys.executable, __file__], env=env, check=False).returncode
        if code == 0:
            return
        record_crash(workdir, tag, code)


def record_crash(workdir, tag, code):
    """Remember the case a worker died in, so that the next launch skips it."""
    case_id = (workdir / f"{tag}.current").read_text()
    path = workdir / f"{tag}.crashed"
    crashed = read_json(path, {})
    if case_id in crashed or case_id == "layer facts":
        raise RuntimeError(f"{tag} worker failed (exit {code}) in {case_id}")
    crashed[case_id] = f"process aborted (exit code {code}): XLA failed a CHECK"
    print(f"{tag} worker crashed in {case_id}; relaunching without it")
    path.write_text(json.dumps(crashed))


def retry_crashes(backend, workdir, results):
    """Rerun crashed cases with XLA's algebraic simplifier off; fold them into results."""
    if not (workdir / f"{backend}.crashed").exists():
        return
    tag = backend + "_retry"
    launch(backend, workdir, tag, {"XLA_FLAGS": XLA_WORKAROUND})
    facts, outputs, _ = results
    outputs.update(np.load(workdir / f"{tag}_ops.npz"))
    for case_id, status in read_json(workdir / f"{tag}.json", {})["op_status"].items():
        first = facts["op_status"][case_id]
        facts["op_status"][case_id] = {
            dtype: f"{outcome} with XLA_FLAGS={XLA_WORKAROUND} (default flags: {first[dtype]})"
            for dtype, outcome in status.items()
        }


def load_results(workdir, backend):
    """(facts, op outputs, layer arrays) of one backend, crashed cases retried."""
    facts = json.loads((workdir / f"{backend}.json").read_text())
    results = (
        facts,
        dict(np.load(workdir / f"{backend}_ops.npz")),
        dict(np.load(workdir / f"{backend}_layers.npz")),
    )
    retry_crashes(backend, workdir, results)
    return results


def versions(facts):
    packages = {"keras": facts["tensorflow"]["keras_version"]}
    packages.update({b: facts[b]["backend_version"] for b in BACKENDS})
    packages["numpy"] = np.__version__
    return packages


def tolerance(dtype):
    return 1e-10 if dtype == np.float64 else 1e-5


def agreement(results, key):
    """Max abs difference between the backends' outputs and whether they agree.

    They agree when close within the tolerance of the less precise of the two
    (rtol = atol = 1e-10 for float64, 1e-5 for float32).
    """
    arrays = [r.get(key) for r in results.values()]
    if any(a is None for a in arrays):
        return {"max_abs_diff": None, "backends_agree": None}
    tol = max(tolerance(a.dtype) for a in arrays)
    a, b = (x.astype(np.float64) for x in arrays)
    return {
        "max_abs_diff": float(np.max(np.abs(a - b), initial=0.0)),
        "backends_agree": bool(np.allclose(a, b, rtol=tol, atol=tol)),
        "compared_dtypes": [str(x.dtype) for x in arrays],
    }


def chosen_backend(results, key):
    """TensorFlow, then JAX, preferring a float64 answer to a float32 one."""
    ranked = [
        (results[b][key].dtype != np.float64, i, b)
        for i, b in enumerate(BACKENDS)
        if key in results[b]
    ]
    return min(ranked)[2] if ranked else None


def merge_ops(cases, inputs, facts, outputs):
    """Golden records and arrays, plus the cases that no backend could run."""
    records, unrunnable, arrays = [], [], {}
    for case in cases:
        status = {b: facts[b]["op_status"][case["id"]] for b in BACKENDS}
        backend = chosen_backend(outputs, case["id"])
        if backend is None:
            unrunnable.append({**case, "status": status})
            continue
        y = outputs[backend][case["id"]]
        records.append(
            {
                **case,
                "backend": backend,
                "keras_version": facts[backend]["keras_version"],
                "output_shape": list(y.shape),
                "dtype": str(y.dtype),
                **agreement(outputs, case["id"]),
                "status": status,
            }
        )
        arrays.update(
            {f"{case['id']}_{n}": inputs[f"{case['id']}_{n}"].astype(y.dtype) for n in "xw"}
        )
        arrays[case["id"] + "_y"] = y
    return records, unrunnable, arrays


def same_facts(facts, section):
    """Per case of a section: does JAX give the same record as TensorFlow?"""
    merged = {}
    for case_id, record in facts["tensorflow"][section].items():
        other = facts["jax"][section][case_id]
        merged[case_id] = {**record, "jax_agrees": record == other}
        if record != other:
            merged[case_id]["jax_record"] = other
    return merged


def merge_outputs(facts, arrays):
    merged, kept = {}, {}
    for case_id in OUTPUT_CASES:
        backend = chosen_backend(arrays, f"{case_id}_y")
        per_backend = {b: facts[b]["outputs"][case_id] for b in BACKENDS}
        record = {
            **per_backend[backend],
            "backend": backend,
            **agreement(arrays, f"{case_id}_y"),
            "status": {b: r["status"] for b, r in per_backend.items()},
            "losses_by_backend": {b: r.get("losses") for b, r in per_backend.items()},
        }
        merged[case_id] = record
        kept.update({k: v for k, v in arrays[backend].items() if k.startswith(case_id + "_")})
    return merged, kept


def write_json(path, data):
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def main():
    cases = op_cases()
    inputs = op_inputs(cases)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_json(workdir / "cases.json", cases)
        np.savez(workdir / "inputs.npz", **inputs)
        for backend in BACKENDS:
            launch(backend, workdir)
        loaded = {b: load_results(workdir, b) for b in BACKENDS}
    facts = {b: loaded[b][0] for b in BACKENDS}
    meta = {"generator": "tools/make_golden.py", "seed": SEED, "versions": versions(facts)}
    records, unrunnable, op_arrays = merge_ops(
        cases, inputs, facts, {b: loaded[b][1] for b in BACKENDS}
    )
    outputs, layer_arrays = merge_outputs(facts, {b: loaded[b][2] for b in BACKENDS})
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_json(FIXTURES / "golden_ops.json", {**meta, "cases": records, "unrunnable": unrunnable})
    np.savez_compressed(FIXTURES / "golden_ops.npz", **op_arrays)
    layers = {
        **meta,
        "dtype_config": facts["tensorflow"]["dtype_config"],
        **{s: same_facts(facts, s) for s in ("configs", "shapes", "errors", "counts")},
        "outputs": outputs,
    }
    write_json(FIXTURES / "golden_layers.json", layers)
    np.savez_compressed(FIXTURES / "golden_layers.npz", **layer_arrays)
    summarize(records, unrunnable, layers)


def summarize(records, unrunnable, layers):
    by_backend = {b: sum(r["backend"] == b for r in records) for b in BACKENDS}
    disagree = [r["id"] for r in records if r["backends_agree"] is False]
    print(f"{len(records)} op cases, golden backend counts {by_backend}")
    print(f"no backend could run: {[c['id'] for c in unrunnable] or 'none'}")
    print(f"TF/JAX disagreements: {disagree or 'none'}")
    for section in ("configs", "shapes", "errors", "counts"):
        odd = [k for k, v in layers[section].items() if not v["jax_agrees"]]
        print(f"{section}: {len(layers[section])} cases, JAX differs on {odd or 'none'}")
    for case_id, case in layers["errors"].items():
        if case["message_must_contain"].lower() not in case["error_message"].lower():
            print(f"WARNING {case_id}: message lacks {case['message_must_contain']!r}")


if __name__ == "__main__":
    if "GOLDEN_WORKER" in os.environ:
        tag = os.environ["GOLDEN_TAG"]
        run = retry_worker if tag.endswith("_retry") else worker
        run(os.environ["GOLDEN_WORKER"], tag, Path(os.environ["GOLDEN_DIR"]))
    else:
        main()
