"""convt against golden values recorded from real Keras 3 (no Keras needed here).

The fixtures in tests/fixtures/ were made by tools/make_golden.py (its
docstring says how to regenerate them and with which versions):

* golden_ops: ``keras.ops.conv_transpose`` outputs and shapes;
* golden_layers: Conv{1,2,3}DTranspose configs, output shapes, errors,
  parameter counts, outputs and regularization losses.

Layer arguments that are Keras objects are stored as
``{"__object__": "initializers.RandomNormal", "config": {...}}`` and built here
from ``convt.initializers``, ``convt.regularizers``, ``convt.constraints``.
"""

from __future__ import annotations

import builtins
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import convt
from convt import ops

FIXTURES = Path(__file__).parent / "fixtures"
OP_ARGS = ("strides", "padding", "output_padding", "data_format", "dilation_rate")
UNCOMPARED_CONFIG_KEYS = ("name", "dtype")


def load_json(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def load_arrays(name):
    with np.load(FIXTURES / f"{name}.npz") as data:
        return dict(data)


OPS = load_json("golden_ops")
OP_ARRAYS = load_arrays("golden_ops")
LAYERS = load_json("golden_layers")
LAYER_ARRAYS = load_arrays("golden_layers")


def cases(records):
    """pytest parameters from a list of records or a dict keyed by case id."""
    if isinstance(records, dict):
        records = [{"id": key, **value} for key, value in records.items()]
    return [pytest.param(record, id=record["id"]) for record in records]


def tolerance(dtype):
    """The closeness to ask of a result Keras computed in `dtype`."""
    if dtype == "float64":
        return {"rtol": 1e-10, "atol": 1e-10}
    return {"rtol": 1e-5, "atol": 1e-6}


def as_tuples(value):
    """JSON lists back to the tuples a Python caller would pass."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    return value


def op_kwargs(case):
    return {name: as_tuples(case[name]) for name in OP_ARGS}


# --------------------------------------------------------------------------
# keras.ops.conv_transpose
# --------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(OPS["cases"]))
def test_conv_transpose_matches_keras(case):
    x, w, expected = (OP_ARRAYS[f"{case['id']}_{name}"] for name in "xwy")
    got = np.asarray(ops.conv_transpose(x, w, **op_kwargs(case)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **tolerance(case["dtype"]))


@pytest.mark.parametrize("case", cases(OPS["cases"]))
def test_conv_transpose_output_shape_matches_keras(case):
    got = ops.conv_transpose_output_shape(
        tuple(case["input_shape"]), tuple(case["kernel_shape"]), **op_kwargs(case)
    )
    assert tuple(got) == tuple(case["output_shape"])


def test_keras_backends_agreed_on_every_op_case():
    """A regenerated fixture where TensorFlow and JAX differ needs a look first."""
    disagreeing = [c["id"] for c in OPS["cases"] if c["backends_agree"] is False]
    assert disagreeing == []
    assert OPS["unrunnable"] == []


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


def resolve(value):
    """Build the convt objects the JSON markers name; lists become tuples."""
    if isinstance(value, dict) and "__object__" in value:
        module, name = value["__object__"].split(".")
        cls = getattr(importlib.import_module(f"convt.{module}"), name)
        return cls(**value["config"])
    if isinstance(value, dict):
        return {key: resolve(v) for key, v in value.items()}
    return as_tuples(value)


def make_layer(spec):
    cls = getattr(convt, spec["class"])
    return cls(*[resolve(arg) for arg in spec["args"]], **resolve(spec["kwargs"]))


def canonical(value):
    """JSON form with floats rounded to float32.

    Keras keeps some regularizer factors as float32 tensors, so its configs say
    l1=0.05000000074505806 where a plain float says 0.05; both mean 0.05.
    """
    if isinstance(value, dict):
        return {key: canonical(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float):
        return float(np.float32(value))
    return value


def comparable_config(config):
    config = canonical(json.loads(json.dumps(config)))
    return {k: v for k, v in config.items() if k not in UNCOMPARED_CONFIG_KEYS}


@pytest.mark.parametrize("case", cases(LAYERS["configs"]))
def test_get_config_matches_keras(case):
    got = make_layer(case["layer"]).get_config()
    assert comparable_config(got) == comparable_config(case["config"])


@pytest.mark.parametrize("case", cases(LAYERS["configs"]))
def test_get_config_dtype_matches_keras(case):
    got = make_layer(case["layer"]).get_config()["dtype"]
    assert json.loads(json.dumps(got)) == case["config"]["dtype"]


@pytest.mark.parametrize("case", cases(LAYERS["shapes"]))
def test_compute_output_shape_matches_keras(case):
    got = make_layer(case["layer"]).compute_output_shape(tuple(case["input_shape"]))
    assert list(got) == case["output_shape"]


def attempt(case):
    """Construct, build and call as the error case says."""
    layer = make_layer(case["layer"])
    if case["build_shape"]:
        layer.build(tuple(case["build_shape"]))
    if case["call_shape"]:
        layer(np.zeros(case["call_shape"], dtype="float32"))


def error_cases(raises):
    records = {
        k: v for k, v in LAYERS["errors"].items() if (v["error_type"] != "no error") == raises
    }
    return cases(records)


@pytest.mark.parametrize("case", error_cases(raises=True))
def test_error_matches_keras(case):
    with pytest.raises(Exception) as info:
        attempt(case)
    allowed = tuple(getattr(builtins, name) for name in [case["error_type"], *case["also_accept"]])
    assert isinstance(info.value, allowed), f"Keras: {case['error_message']}"
    assert case["message_must_contain"].lower() in str(info.value).lower()


@pytest.mark.parametrize("case", error_cases(raises=False))
def test_accepted_like_keras(case):
    attempt(case)


@pytest.mark.parametrize("case", cases(LAYERS["counts"]))
def test_count_params_and_weight_shapes_match_keras(case):
    layer = make_layer(case["layer"])
    layer.build(tuple(case["build_shape"]))
    assert layer.count_params() == case["count_params"]
    assert [list(np.shape(w)) for w in layer.get_weights()] == case["weight_shapes"]


def called_layer(case):
    """The case's layer with Keras's weights set, and its output on Keras's input."""
    arrays = {name: LAYER_ARRAYS.get(f"{case['id']}_{name}") for name in ("x", "kernel", "bias")}
    layer = make_layer(case["layer"])
    layer.build(arrays["x"].shape)
    layer.set_weights([arrays[n] for n in ("kernel", "bias") if arrays[n] is not None])
    return layer, np.asarray(layer(arrays["x"]))


@pytest.mark.parametrize("case", cases(LAYERS["outputs"]))
def test_layer_output_matches_keras(case):
    _, got = called_layer(case)
    expected = LAYER_ARRAYS[f"{case['id']}_y"]
    assert str(got.dtype) == case["output_dtype"]
    np.testing.assert_allclose(got, expected, **tolerance(case["output_dtype"]))


@pytest.mark.parametrize("case", cases(LAYERS["outputs"]))
def test_layer_losses_match_keras(case):
    """Order: activity (divided by the batch size), kernel, bias regularizer.

    Compared to float32 precision whatever the layer dtype: Keras (TensorFlow)
    casts the Python-float factor through float32, so a float64 layer's
    0.01 * sum(w**2) is really float32(0.01) * sum(w**2).
    """
    layer, _ = called_layer(case)
    got = [float(np.asarray(loss)) for loss in layer.losses]
    assert len(got) == len(case["losses"])
    np.testing.assert_allclose(got, case["losses"], **tolerance("float32"))
    layer(LAYER_ARRAYS[f"{case['id']}_x"])
    assert len(layer.losses) == case["losses_len_after_second_call"]
