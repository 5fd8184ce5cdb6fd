"""Keras files in and out, against fixtures made by real Keras (tools/make_keras_files.py)."""

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convt

h5py = pytest.importorskip("h5py")

FIXTURES = Path(__file__).parent / "fixtures" / "keras_files"
KERAS_MADE = ["sequential_2d", "sequential_1d", "functional_mixed"]
CONVT_MADE = ["convt_sequential", "convt_functional"]


def _io(name):
    arrays = np.load(FIXTURES / f"{name}_io.npz")
    inputs = [arrays[key] for key in sorted(arrays) if key.startswith("input_")]
    outputs = [arrays[key] for key in sorted(arrays) if key.startswith("output_")]
    return inputs if len(inputs) > 1 else inputs[0], outputs


def _assert_outputs(model, name):
    inputs, expected = _io(name)
    got = model.predict(inputs)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for array, want in zip(got, expected):
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(array, want, rtol=1e-5, atol=1e-6 * scale)


def _zeroed(model):
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("name", KERAS_MADE + CONVT_MADE)
def test_load_model_reproduces_saved_outputs(name):
    _assert_outputs(convt.models.load_model(FIXTURES / f"{name}.keras"), name)


def test_loaded_models_have_keras_classes_names_and_order():
    sequential = convt.models.load_model(FIXTURES / "sequential_2d.keras")
    assert isinstance(sequential, convt.Sequential) and sequential.name == "sequential_2d"
    assert [layer.name for layer in sequential.layers] == ["conv2d_transpose", "conv2d_transpose_1"]
    functional = convt.models.load_model(FIXTURES / "functional_mixed.keras")
    assert type(functional) is convt.Model
    assert [layer.name for layer in functional.layers] == ["image", "shared", "volume", "up", "vol"]
    assert len(functional.get_layer("shared").inbound_nodes) == 2


@pytest.mark.parametrize("name", KERAS_MADE)
@pytest.mark.parametrize("suffix", [".weights.h5", "_legacy.h5", ".keras"])
def test_load_weights_from_keras_files(name, suffix):
    model = _zeroed(convt.models.load_model(FIXTURES / f"{name}.keras"))
    model.load_weights(FIXTURES / f"{name}{suffix}")
    _assert_outputs(model, name)


def test_hand_built_models_load_keras_weights_in_keras_layer_order():
    sequential = convt.Sequential(
        [
            convt.Input(shape=(5, 4, 3)),
            convt.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
            convt.Conv2DTranspose(2, (2, 3), strides=(1, 2), output_padding=(0, 1)),
        ]
    )
    sequential.load_weights(FIXTURES / "sequential_2d.weights.h5")
    _assert_outputs(sequential, "sequential_2d")
    image, volume = convt.Input(shape=(4, 4, 2)), convt.Input(shape=(2, 3, 3, 1))
    shared = convt.Conv2DTranspose(2, 3, padding="same")
    up = convt.Conv2DTranspose(3, 2, strides=2)(shared(shared(image)))
    vol = convt.Conv3DTranspose(2, 2, strides=(1, 2, 2))(volume)
    functional = convt.Model([image, volume], [up, vol])
    functional.load_weights(FIXTURES / "functional_mixed.weights.h5")
    _assert_outputs(functional, "functional_mixed")


def test_real_keras_loaded_convt_files_to_float32_tolerance():
    report = json.loads((FIXTURES / "convt_saved_roundtrip.json").read_text())
    assert sorted(report["models"]) == sorted(CONVT_MADE)
    assert report["keras_version"].startswith("3.")
    assert report["models"]["convt_functional"]["keras_class"] == "Functional"
    for entry in report["models"].values():
        assert entry["max_abs_diff"] < 1e-4


def test_saved_archive_has_keras_3_layout(tmp_path):
    x = convt.Input(shape=(4, 1), name="x")
    model = convt.Model(x, convt.Conv1DTranspose(2, 2, name="up")(x), name="tiny")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
        archive.extract("model.weights.h5", tmp_path)
    assert (config["class_name"], config["registered_name"]) == ("Functional", "Functional")
    with h5py.File(tmp_path / "model.weights.h5") as h5file:
        assert h5file["vars"].attrs["name"] == "tiny"
        assert h5file["layers/input_layer/vars"].attrs["name"] == "x"
        assert h5file["layers/conv1d_transpose/vars/0"].shape == (2, 2, 1)
        assert h5file["layers/conv1d_transpose/vars/1"].shape == (2,)


def test_save_and_load_round_trip_in_convt(tmp_path):
    model = convt.Sequential(
        [convt.Conv2DTranspose(3, 3, strides=2, input_shape=(4, 4, 2)), convt.Conv2DTranspose(1, 2)]
    )
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    loaded = convt.models.load_model(tmp_path / "m.keras")
    data = np.random.default_rng(1).normal(size=(2, 4, 4, 2))
    np.testing.assert_array_equal(loaded(data), model(data))
    _zeroed(loaded).load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(loaded(data), model(data))


def test_file_name_endings_are_checked(tmp_path):
    model = convt.Sequential([convt.Conv1DTranspose(1, 1, input_shape=(2, 1))])
    with pytest.raises(ValueError, match="The filepath must end in `.keras`"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="The filename must end in `.weights.h5`. Received"):
        model.save_weights(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="File format not supported"):
        model.load_weights(tmp_path / "m.txt")


def test_weight_mismatches_name_the_layer_and_change_nothing():
    model = convt.Sequential(
        [convt.Conv2DTranspose(4, 3, input_shape=(5, 4, 3)), convt.Conv2DTranspose(2, 2)]
    )
    before = model.get_weights()
    with pytest.raises(ValueError, match="Expected the saved value of 'conv2d_transpose.*/kernel'"):
        model.load_weights(FIXTURES / "sequential_2d.weights.h5")
    with pytest.raises(
        ValueError,
        match="Layer count mismatch when loading weights from file. "
        "Model expected 2 layers, found 3 saved layers.",
    ):
        model.load_weights(FIXTURES / "functional_mixed_legacy.h5")
    single = convt.Sequential([convt.Conv1DTranspose(3, 3, input_shape=(7, 2), use_bias=True)])
    with pytest.raises(ValueError, match="expected 2 variables, but received 1 variables"):
        single.load_weights(FIXTURES / "sequential_1d.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_missing_h5py_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = convt.Sequential([convt.Conv1DTranspose(1, 1, input_shape=(2, 1))])
    with pytest.raises(ImportError, match="pip install h5py"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(ImportError, match="pip install h5py"):
        convt.models.load_model(FIXTURES / "sequential_1d.keras")
