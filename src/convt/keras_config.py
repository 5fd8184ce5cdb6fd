"""Keras's configuration file, ``keras.json``: where the default ``data_format`` comes from.

Keras reads ``keras.json`` in ``$KERAS_HOME``, else in ``~/.keras`` (``/tmp/.keras`` when
the home directory is not writable), and its ``"image_data_format"`` becomes the
``data_format`` of every layer and op given ``data_format=None``. convt reads the same
file, the first time that default is needed (:func:`convt.image_data_format`), so that a
Keras user's setting holds here too. It never writes the file, and reads nothing else
from it (``floatx``, ``backend`` and ``epsilon`` mean nothing to convt).

Reading runs no code: the file is JSON, and only a regular file of at most
:data:`MAX_FILE_BYTES` is read (a FIFO or device at that path would otherwise block or
never end). A file that cannot be read as a JSON object is ignored with a warning, as
Keras ignores one that is not JSON; a value other than ``"channels_last"`` or
``"channels_first"`` raises, as it does in Keras.
"""

from __future__ import annotations

import json
import os
import stat
import warnings

from convt._shapes import DATA_FORMATS

MAX_FILE_BYTES = 2**16
"""Larger files are not read (Keras writes about 120 bytes)."""


def config_path() -> str:
    """Where Keras keeps ``keras.json``.

    Example:
        >>> import os
        >>> os.path.basename(config_path())
        'keras.json'
    """
    if "KERAS_HOME" in os.environ:
        directory = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        directory = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(os.path.join(directory, "keras.json"))


def configured_image_data_format() -> str | None:
    """The ``"image_data_format"`` of ``keras.json``, or None when the file or the key is absent
    or the file cannot be read as a JSON object (then with a warning).

    Raises:
        ValueError: the file gives a value other than ``"channels_last"`` or
            ``"channels_first"``.
    """
    path = config_path()
    config = _read_object(path)
    if config is None or "image_data_format" not in config:
        return None
    value = config["image_data_format"]
    if value not in DATA_FORMATS:
        raise ValueError(
            f"The `image_data_format` of the Keras configuration file {path} must be one of "
            f"'channels_last', 'channels_first'. Received: image_data_format={value!r}"
        )
    return value


def _read_object(path: str) -> dict | None:
    """The JSON object in ``path``; None when there is no file, or with a warning when it is
    not a small regular file holding a JSON object."""
    try:
        with open(path, "rb", opener=_open_without_blocking) as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                _ignore(path, f"it is not a regular file of at most {MAX_FILE_BYTES} bytes")
                return None
            text = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        _ignore(path, f"it cannot be read ({error.strerror or error})")
        return None
    try:
        config = json.loads(text)
    except ValueError as error:  # not JSON, or not UTF-8
        _ignore(path, f"it is not JSON ({error})")
        return None
    if not isinstance(config, dict):
        _ignore(path, f"it holds a {type(config).__name__}, not a JSON object")
        return None
    return config


def _open_without_blocking(path: str, flags: int) -> int:
    """Opens without waiting for a FIFO's writer (the file is then refused as not regular)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _ignore(path: str, reason: str) -> None:
    warnings.warn(
        f"The Keras configuration file {path} was ignored: {reason}. The default data format "
        "is 'channels_last' (set another with convt.set_image_data_format).",
        stacklevel=4,
    )
