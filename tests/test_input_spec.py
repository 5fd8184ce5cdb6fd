"""InputSpec and the layers' read-only input_spec, as Keras 3 reports them."""

from __future__ import annotations

import re

import numpy as np
import pytest

import convt
from convt.layers import InputSpec

LAYERS = [(convt.Conv1DTranspose, 1), (convt.Conv2DTranspose, 2), (convt.Conv3DTranspose, 3)]


@pytest.mark.parametrize(("cls", "rank"), LAYERS)
@pytest.mark.parametrize(("data_format", "axis"), [("channels_last", -1), ("channels_first", 1)])
def test_a_layer_reports_its_rank_then_its_channels_as_keras(cls, rank, data_format, axis):
    layer = cls(4, 2, data_format=data_format)
    assert repr(layer.input_spec) == f"InputSpec(min_ndim={rank + 2})"
    shape = (None, 3, *(5,) * rank) if axis == 1 else (None, *(5,) * rank, 3)
    layer.build(shape)
    assert repr(layer.input_spec) == f"InputSpec(min_ndim={rank + 2}, axes={{{axis}: 3}})"
    assert layer.input_spec.axes == {axis: 3} and layer.input_spec.ndim is None


def test_the_torch_layers_report_the_same():
    torch = pytest.importorskip("torch")
    import convt.torch as ct

    layer = ct.Conv2DTranspose(4, 2, data_format="channels_first")
    assert repr(layer.input_spec) == "InputSpec(min_ndim=4)"
    layer(torch.ones(1, 3, 5, 5))
    assert repr(layer.input_spec) == "InputSpec(min_ndim=4, axes={1: 3})"


def test_a_layers_input_spec_is_read_only():
    layer = convt.Conv2DTranspose(4, 2)
    with pytest.raises(AttributeError):
        layer.input_spec = InputSpec(ndim=4)


def test_the_spec_enforced_is_the_one_reported():
    layer = convt.Conv2DTranspose(4, 2)
    layer.build((None, 5, 5, 3))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer(np.ones((1, 5, 5, 2)))
    with pytest.raises(ValueError, match="expected min_ndim=4, found ndim=3"):
        layer(np.ones((1, 5, 3)))


def test_shape_sets_ndim_and_repr_shows_the_set_fields_in_keras_order():
    spec = InputSpec(dtype="float32", shape=(None, 4), max_ndim=3, min_ndim=1, axes={1: 4})
    assert spec.ndim == 2
    assert repr(spec) == (
        "InputSpec(dtype=float32, shape=(None, 4), ndim=2, max_ndim=3, min_ndim=1, axes={1: 4})")
    assert repr(InputSpec()) == "InputSpec()"


def test_config_round_trip():
    spec = InputSpec(shape=(None, 8, 3), axes={-1: 3}, optional=True)
    config = spec.get_config()
    assert config == {"dtype": None, "shape": (None, 8, 3), "ndim": 3, "max_ndim": None,
                      "min_ndim": None, "axes": {-1: 3}, "optional": True}
    assert InputSpec.from_config(config).get_config() == config


@pytest.mark.parametrize("axes", [{"a": 1}, [1, 2]], ids=["str key", "list"])
def test_axes_must_be_a_dict_with_integer_keys(axes):
    with pytest.raises(TypeError, match=re.escape(
            f"Expected `axes` to be a dict with integer keys. Received: axes={axes!r}")):
        InputSpec(axes=axes)


@pytest.mark.parametrize(("kwargs", "bound"), [({"ndim": 2}, "ndim=2"),
                                               ({"max_ndim": 2}, "max_ndim=2")])
def test_an_axis_past_the_rank_is_refused(kwargs, bound):
    with pytest.raises(ValueError, match=re.escape(
            f"Expected every axis of `axes` to be at most 1 for inputs of {bound}. "
            "Received: axes={2: 3}")):
        InputSpec(axes={2: 3}, **kwargs)


def test_the_class_is_exported_where_keras_exports_it():
    assert convt.InputSpec is InputSpec
