"""Model weights in HDF5: Keras 3's ``.weights.h5`` layout, and tf.keras 2.x's legacy ``.h5``.

Keras 3 keys each layer by its class, not its name: the model's ``layers``
in order become ``layers/<snake_case_class>``, then ``..._1``, ``..._2`` for
the next of the same class, each holding ``vars/0``, ``vars/1``... (kernel,
bias). A Sequential model lists no InputLayer; a functional one does (as an
empty group). The legacy layout keys layers by name instead:
``[model_weights/]<layer_name>/<weight_name>`` with ``layer_names`` and
``weight_names`` attributes, and pairs saved and model layers by order.

Every file is checked by :mod:`convt.saving.safety` first, and every dataset's
shape is compared with its variable's before its data is read; nothing changes
unless all weights load.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from convt.layers.layer import Layer, to_snake_case
from convt.saving import safety


def layer_paths(model: Any) -> Iterator[tuple[str, Layer]]:
    """``("layers/conv2d_transpose", layer)``, ... in Keras 3's naming."""
    used: Counter[str] = Counter()
    for layer in model.layers:
        base = to_snake_case(type(layer).__name__)
        count = used[base]
        used[base] += 1
        yield f"layers/{base}" if count == 0 else f"layers/{base}_{count}", layer


def write_weights(model: Any, h5file: Any) -> None:
    """Writes ``model``'s weights into an open, empty ``h5py.File`` in Keras 3's layout."""
    h5file.create_group("vars").attrs["name"] = model.name
    for path, layer in layer_paths(model):
        group = h5file.create_group(path).create_group("vars")
        group.attrs["name"] = layer.name
        for index, variable in enumerate(layer.weights):
            group.create_dataset(str(index), data=variable.numpy())


def read_weights(model: Any, h5file: Any, file_bytes: int) -> None:
    """Sets ``model``'s weights from an open file in Keras 3's layout.

    Raises:
        ValueError: for an unsafe file, a missing or extra variable, or a shape
            that differs; the model is unchanged then.
    """
    with safety.malformed_as_value_error("the weights file"):
        values = _keras3_values(model, h5file, file_bytes)
    model.set_weights(values)


def _keras3_values(model: Any, h5file: Any, file_bytes: int) -> list[np.ndarray]:
    safety.check_h5_tree(h5file, file_bytes)
    values = []
    for path, layer in layer_paths(model):
        group = h5file.get(f"{path}/vars")
        names = sorted(group, key=str) if group is not None else []
        expected = [str(index) for index in range(len(layer.weights))]
        if sorted(names) != sorted(expected):
            raise ValueError(
                f"Layer '{layer.name}' expected {len(expected)} variables, but received "
                f"{len(names)} variables during loading. Expected: "
                f"{[variable.name for variable in layer.weights]}. Received: '{path}/vars' "
                f"holding {names}"
            )
        values += [
            _read_dataset(group[name], variable) for name, variable in zip(expected, layer.weights)
        ]
    return values


def read_legacy_weights(model: Any, h5file: Any, file_bytes: int) -> None:
    """Sets ``model``'s weights from a tf.keras 2.x ``.h5`` file (weights or whole model).

    Raises:
        ValueError: for an unsafe file or a layer count, weight count or shape
            that differs; the model is unchanged then.
    """
    with safety.malformed_as_value_error("the weights file"):
        values = _legacy_values(model, h5file, file_bytes)
    model.set_weights(values)


def _legacy_values(model: Any, h5file: Any, file_bytes: int) -> list[np.ndarray]:
    safety.check_h5_tree(h5file, file_bytes)
    root = h5file["model_weights"] if "model_weights" in h5file else h5file
    saved = [
        (name, safety.read_string_list_attribute(root[name], "weight_names"))
        for name in safety.read_string_list_attribute(root, "layer_names")
        if name in root
    ]
    saved = [(name, weight_names) for name, weight_names in saved if weight_names]
    layers = [layer for layer in model.layers if layer.weights]
    if len(saved) != len(layers):
        raise ValueError(
            "Layer count mismatch when loading weights from file. Model expected "
            f"{len(layers)} layers, found {len(saved)} saved layers."
        )
    values = []
    for index, (layer, (name, weight_names)) in enumerate(zip(layers, saved)):
        if not hasattr(root[name], "keys"):
            raise ValueError(
                f"Expected saved layer '{name}' to be an HDF5 group of weights. "
                f"Received: {type(root[name]).__name__} at '{root[name].name}'"
            )
        if len(weight_names) != len(layer.weights):
            raise ValueError(
                f"Weight count mismatch for layer #{index} (named {layer.name} in the current "
                f"model, {name} in the save file). Layer expects {len(layer.weights)} "
                f"weight(s). Received {len(weight_names)} saved weight(s)"
            )
        values += [
            _read_dataset(root[name][weight_name], variable)
            for weight_name, variable in zip(weight_names, layer.weights)
        ]
    return values


def _read_dataset(dataset: Any, variable: Any) -> np.ndarray:
    """The dataset's values, after checking its shape and dtype against ``variable``."""
    if not hasattr(dataset, "shape") or tuple(dataset.shape) != variable.shape:
        raise ValueError(
            f"Expected the saved value of '{variable.path}' to have shape {variable.shape}. "
            f"Received: {getattr(dataset, 'shape', dataset)!r} at '{dataset.name}'"
        )
    if dataset.dtype.kind != "f":
        raise ValueError(
            f"Expected the saved value of '{variable.path}' to be floating point. "
            f"Received: dtype={dataset.dtype} at '{dataset.name}'"
        )
    return np.asarray(dataset[()])


def save_weights(model: Any, filepath: Any) -> None:
    """Writes ``model``'s weights to ``filepath`` (which must end in ``.weights.h5``).

    Raises:
        ValueError: for another file name ending.
    """
    path = os.fspath(filepath)
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
    data = weights_bytes(model)  # complete before the file is opened, so a failure
    with open(path, "wb") as file:  # leaves an existing file as it was
        file.write(data)


def weights_bytes(model: Any) -> bytes:
    """``model``'s weights as the bytes of an HDF5 file in Keras 3's layout."""
    h5py = safety.require_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5file:
        write_weights(model, h5file)
    return buffer.getvalue()


def load_weights(model: Any, filepath: Any) -> None:
    """Reads weights from a ``.weights.h5``, a ``.keras`` or a legacy ``.h5``/``.hdf5`` file.

    Raises:
        ValueError: for another file name ending, or as the readers raise.
    """
    path = os.fspath(filepath)
    name = str(path)
    if name.endswith(".keras"):
        from convt.saving import keras_file

        keras_file.load_weights_from_archive(model, path)
        return
    if not name.endswith((".weights.h5", ".h5", ".hdf5")):
        raise ValueError(
            "File format not supported: expected a filename ending in `.weights.h5`, "
            f"`.keras`, `.h5` or `.hdf5`. Received: filepath={filepath}"
        )
    reader = read_weights if name.endswith(".weights.h5") else read_legacy_weights
    with safety.open_h5(path) as h5file:
        reader(model, h5file, os.path.getsize(path))
