"""Keras 3's ``.keras`` archive: ``metadata.json``, ``config.json``, ``model.weights.h5``.

Saving writes what ``keras.saving.load_model`` reads. Loading checks the
archive (:func:`convt.saving.safety.check_archive`), parses the config as plain
JSON, rebuilds the model from convt's own classes only (charging every weight
to a budget derived from the weights member's size before it is created), and
reads the weights after checking the HDF5 file.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

from convt.saving import safety, serialization, weights_h5

_MODEL_KEYS = (
    "module",
    "class_name",
    "config",
    "registered_name",
    "build_config",
    "compile_config",
)
_WEIGHTS = "model.weights.h5"
_FORMAT_VERSION = "3.0.0"
"""The Keras version written to metadata.json: the first with this format."""


def save_model(model: Any, filepath: Any) -> None:
    """Writes ``model`` as a ``.keras`` archive.

    Raises:
        ValueError: if ``filepath`` does not end in ``.keras``.
    """
    path = os.fspath(filepath)
    if not str(path).endswith(".keras"):
        raise ValueError(
            f"The filepath must end in `.keras` (Keras 3's format). Received: filepath={filepath}"
        )
    config = json.dumps(serialize_model(model))  # first: a model that cannot be saved
    metadata = {                                   # leaves an existing file as it was
        "keras_version": _FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", config)
        archive.writestr(_WEIGHTS, weights_h5.weights_bytes(model))
    with open(path, "wb") as file:
        file.write(archive_bytes.getvalue())


def serialize_model(model: Any) -> dict[str, Any]:
    """Keras 3's top-level dict for a Sequential or functional model."""
    from convt.models import Sequential

    if isinstance(model, Sequential):
        shape = list(model.inputs[0].shape) if model.built else None
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": model.get_config(),
            "registered_name": None,
            "build_config": {"input_shape": shape},
            "compile_config": None,
        }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": model.get_config(),
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": None,
    }


def model_from_config(data: Any, *, budget: serialization.WeightBudget | None = None) -> Any:
    """A Sequential or functional model from Keras 3's top-level dict.

    ``compile_config`` is accepted and ignored: convt does not train.

    Raises:
        ValueError: for any other class, unknown keys, code, or as the
            models' ``from_config`` raise.
    """
    from convt.models import Model, Sequential

    serialization.check_keys(data, _MODEL_KEYS, "model_config")
    serialization.refuse_code(data)
    classes = {"Sequential": Sequential, "Functional": Model, "Model": Model}
    class_name = data.get("class_name")
    if (not isinstance(class_name, str) or class_name not in classes
            or data.get("registered_name") not in (None, class_name)):
        raise ValueError(
            f"Unknown model class: convt loads only {sorted(classes)} models. "
            f"Received: class_name={class_name!r}, "
            f"registered_name={data.get('registered_name')!r}"
        )
    return classes[class_name].from_config(data.get("config"), budget=budget)


def load_model(
    filepath: Any,
    custom_objects: Mapping[str, Any] | None = None,
    compile: bool = True,  # noqa: A002 - Keras's argument name
    safe_mode: bool = True,
) -> Any:
    """Loads a ``.keras`` file saved by Keras 3 or convt.

    Args:
        filepath: the archive.
        custom_objects: must be empty: convt resolves only its own classes.
        compile: ignored (convt does not train).
        safe_mode: ignored: convt never runs code from a file, even with
            ``safe_mode=False``.

    Returns:
        A :class:`convt.Sequential` or :class:`convt.Model` with the saved weights.

    Raises:
        ValueError: for a file that is not a safe ``.keras`` archive of
            convt's layers, naming what is wrong.
        ImportError: if h5py is missing.

    Example:
        >>> import numpy as np, convt, tempfile, os
        >>> model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
        >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
        >>> model.save(path)
        >>> loaded = convt.models.load_model(path)
        >>> x = np.ones((1, 4, 1))
        >>> bool(np.array_equal(loaded(x), model(x)))
        True
    """
    if custom_objects:
        raise ValueError(
            "convt resolves only its own layer classes and never custom objects. "
            f"Received: custom_objects={dict(custom_objects)!r}"
        )
    safety.require_h5py()
    path = os.fspath(filepath)
    with safety.open_archive(path) as archive:
        safety.check_archive(archive)
        weights_bytes = safety.member_bytes(archive, _WEIGHTS, os.path.getsize(path))
        model = model_from_config(
            safety.read_json_member(archive, "config.json"),
            budget=serialization.WeightBudget(weights_bytes // 2,
                                              source="what the file can hold"),
        )
        _read_archive_weights(model, archive, weights_bytes)
    return model


def load_weights_from_archive(model: Any, filepath: Any) -> None:
    """Sets ``model``'s weights from the weights member of a ``.keras`` archive."""
    path = os.fspath(filepath)
    with safety.open_archive(path) as archive:
        safety.check_archive(archive)
        weights_bytes = safety.member_bytes(archive, _WEIGHTS, os.path.getsize(path))
        _read_archive_weights(model, archive, weights_bytes)


def _read_archive_weights(model: Any, archive: zipfile.ZipFile, weights_bytes: int) -> None:
    h5py = safety.require_h5py()
    with safety.malformed_as_value_error(f"archive member '{_WEIGHTS}'"), \
            archive.open(_WEIGHTS) as member, h5py.File(member, "r") as h5file:
        weights_h5.read_weights(model, h5file, weights_bytes)
