"""Makes tests/fixtures/keras_files/ with real Keras 3; the tests then need no Keras.

Run with an environment that has Keras 3 and h5py (e.g. /work/kerasenv):

    /work/kerasenv/bin/python tools/make_keras_files.py

(a) Keras -> convt: builds small Sequential and functional Keras models of the
    transposed convolutions, gives them random weights and biases, and writes
    for each ``<name>.keras``, ``<name>.weights.h5``, ``<name>_legacy.h5``
    (tf.keras 2.x's layout, written with h5py as tf.keras did) and
    ``<name>_io.npz`` (inputs and Keras's outputs).
(b) convt -> Keras: builds the same kinds of models with convt (imported from
    ``src/``), saves ``convt_<name>.keras`` and ``convt_<name>_io.npz``, loads
    each archive with ``keras.saving.load_model``, runs it, and records the
    largest difference from convt's outputs in ``convt_saved_roundtrip.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "keras_files"
sys.path.insert(0, str(ROOT / "src"))

import convt  # noqa: E402

RNG = np.random.default_rng(20240607)


def keras_models() -> dict[str, tuple[keras.Model, list[np.ndarray]]]:
    """name -> (Keras model, input arrays)."""
    sequential_2d = keras.Sequential(
        [
            keras.Input((5, 4, 3)),
            keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(2, (2, 3), strides=(1, 2), output_padding=(0, 1)),
        ],
        name="sequential_2d",
    )
    sequential_1d = keras.Sequential(
        [
            keras.Input((7, 2)),
            keras.layers.Conv1DTranspose(3, 3, dilation_rate=2, use_bias=False),
            keras.layers.Conv1DTranspose(2, 4, strides=3, data_format="channels_first"),
        ],
        name="sequential_1d",
    )
    image = keras.Input((4, 4, 2), name="image")
    volume = keras.Input((2, 3, 3, 1), name="volume")
    shared = keras.layers.Conv2DTranspose(2, 3, padding="same", name="shared")
    twice = shared(shared(image))
    upsampled = keras.layers.Conv2DTranspose(3, 2, strides=2, name="up")(twice)
    volume_out = keras.layers.Conv3DTranspose(2, 2, strides=(1, 2, 2), name="vol")(volume)
    functional = keras.Model([image, volume], [upsampled, volume_out], name="functional_mixed")
    models = {
        "sequential_2d": (sequential_2d, [RNG.normal(size=(2, 5, 4, 3))]),
        "sequential_1d": (sequential_1d, [RNG.normal(size=(3, 7, 2))]),
        "functional_mixed": (
            functional,
            [RNG.normal(size=(2, 4, 4, 2)), RNG.normal(size=(2, 2, 3, 3, 1))],
        ),
    }
    for model, _ in models.values():
        model.set_weights([RNG.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return {
        name: (model, [x.astype("float32") for x in xs]) for name, (model, xs) in models.items()
    }


def write_legacy_h5(model: keras.Model, path: Path, *, whole_model: bool) -> None:
    """tf.keras 2.x's HDF5 layout: layer groups by name, ``<layer>/<weight>:0`` datasets."""
    with h5py.File(path, "w") as h5file:
        root = h5file.create_group("model_weights") if whole_model else h5file
        if whole_model:
            h5file.attrs["model_config"] = json.dumps({"class_name": model.__class__.__name__})
        root.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.15.0"
        for layer in sorted(model.layers, key=lambda layer: layer.name):
            group = root.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [name.encode("utf8") for name in names]
            for name, weight in zip(names, layer.weights):
                group.create_dataset(name, data=np.asarray(weight.numpy()))


def make_keras_side() -> None:
    for name, (model, inputs) in keras_models().items():
        outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        model.save(OUT / f"{name}.keras")
        model.save_weights(OUT / f"{name}.weights.h5")
        write_legacy_h5(model, OUT / f"{name}_legacy.h5", whole_model=name.startswith("functional"))
        arrays = {f"input_{i}": x for i, x in enumerate(inputs)}
        arrays.update({f"output_{i}": np.asarray(y) for i, y in enumerate(outputs)})
        np.savez(OUT / f"{name}_io.npz", **arrays)


def convt_models() -> dict[str, tuple[object, list[np.ndarray]]]:
    sequential = convt.Sequential(
        [
            convt.Conv2DTranspose(3, 3, strides=2, activation="tanh", input_shape=(4, 5, 2)),
            convt.Conv2DTranspose(2, 2, padding="same", data_format="channels_last"),
        ],
        name="convt_sequential",
    )
    a = convt.Input((6, 2), name="signal")
    b = convt.Input((3, 3, 3, 1), name="cube")
    shared = convt.Conv1DTranspose(2, 3, padding="same", name="shared_1d")
    signal_out = convt.Conv1DTranspose(4, 2, strides=2, name="up_1d")(shared(shared(a)))
    cube_out = convt.Conv3DTranspose(2, 2, strides=2, padding="same", name="up_3d")(b)
    functional = convt.Model([a, b], [signal_out, cube_out], name="convt_functional")
    models = {
        "convt_sequential": (sequential, [RNG.normal(size=(2, 4, 5, 2))]),
        "convt_functional": (
            functional,
            [RNG.normal(size=(2, 6, 2)), RNG.normal(size=(2, 3, 3, 3, 1))],
        ),
    }
    for model, _ in models.values():
        model.set_weights([RNG.normal(size=w.shape) for w in model.get_weights()])
    return {
        name: (model, [x.astype("float32") for x in xs]) for name, (model, xs) in models.items()
    }


def make_convt_side() -> None:
    report = {"keras_version": keras.__version__, "backend": keras.backend.backend(), "models": {}}
    for name, (model, inputs) in convt_models().items():
        path = OUT / f"{name}.keras"
        model.save(path)
        ours = model.predict(inputs if len(inputs) > 1 else inputs[0])
        ours = ours if isinstance(ours, list) else [ours]
        loaded = keras.saving.load_model(path)
        theirs = loaded.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        theirs = theirs if isinstance(theirs, list) else [theirs]
        arrays = {f"input_{i}": x for i, x in enumerate(inputs)}
        arrays.update({f"output_{i}": y for i, y in enumerate(ours)})
        np.savez(OUT / f"{name}_io.npz", **arrays)
        report["models"][name] = {
            "keras_class": type(loaded).__name__,
            "layers": [layer.name for layer in loaded.layers],
            "max_abs_diff": max(
                float(np.max(np.abs(np.asarray(t) - o))) for t, o in zip(theirs, ours)
            ),
        }
    (OUT / "convt_saved_roundtrip.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_keras_side()
    make_convt_side()
    print(json.dumps(json.loads((OUT / "convt_saved_roundtrip.json").read_text()), indent=2))
    print(f"{sum(p.stat().st_size for p in OUT.iterdir())} bytes in {OUT}")
