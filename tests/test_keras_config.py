"""The default data format comes from Keras's keras.json, as the seed pages say."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import convt
from convt import _shapes, keras_config


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty KERAS_HOME, and a default that is read again from it."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(_shapes, "_default_data_format", None)
    return tmp_path


def _write_config(home, config) -> None:
    (home / "keras.json").write_text(json.dumps(config))


def test_without_a_file_the_default_is_channels_last(keras_home):
    assert convt.image_data_format() == "channels_last"
    assert not (keras_home / "keras.json").exists()  # convt never writes the file


def test_the_file_sets_the_default_of_layers_ops_and_configs(keras_home):
    _write_config(keras_home, {"floatx": "float32", "image_data_format": "channels_first"})
    layer = convt.Conv2DTranspose(3, 2, strides=2, use_bias=False)
    assert layer.get_config()["data_format"] == "channels_first"
    x = np.ones((1, 4, 5, 5), np.float32)  # channels first: 4 channels, 5 x 5
    assert layer(x).shape == (1, 3, 10, 10)
    assert convt.ops.conv_transpose(x, np.ones((2, 2, 3, 4)), strides=2).shape == (1, 3, 10, 10)


def test_set_image_data_format_wins_over_the_file(keras_home):
    _write_config(keras_home, {"image_data_format": "channels_first"})
    convt.set_image_data_format("channels_last")
    assert convt.Conv1DTranspose(2, 3).data_format == "channels_last"


def test_the_file_is_read_once(keras_home):
    _write_config(keras_home, {"image_data_format": "channels_first"})
    assert convt.image_data_format() == "channels_first"
    _write_config(keras_home, {"image_data_format": "channels_last"})
    assert convt.image_data_format() == "channels_first"


def test_a_file_without_the_key_keeps_channels_last(keras_home):
    _write_config(keras_home, {"backend": "jax"})
    assert convt.image_data_format() == "channels_last"


def test_an_invalid_value_raises_with_the_path_and_the_value(keras_home):
    _write_config(keras_home, {"image_data_format": "channels_middle"})
    path = os.path.join(str(keras_home), "keras.json")
    expected = (f"The `image_data_format` of the Keras configuration file {path} must be one "
                "of 'channels_last', 'channels_first'. Received: "
                "image_data_format='channels_middle'")
    with pytest.raises(ValueError) as raised:
        convt.Conv2DTranspose(2, 3)
    assert str(raised.value) == expected
    _write_config(keras_home, {"image_data_format": "channels_last"})  # fixed: read again
    assert convt.image_data_format() == "channels_last"


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "it is not JSON"),
    (b"\xff\xfe", "it is not JSON"),
    (b'["channels_first"]', "it holds a list, not a JSON object"),
    (b" " * (keras_config.MAX_FILE_BYTES + 1), "it is not a regular file of at most 65536 bytes"),
])
def test_an_unreadable_file_is_ignored_with_a_warning(keras_home, content, reason):
    (keras_home / "keras.json").write_bytes(content)
    with pytest.warns(UserWarning, match="was ignored: " + reason) as warned:
        assert convt.image_data_format() == "channels_last"
    assert str(keras_home / "keras.json") in str(warned[0].message)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_place_of_the_file_does_not_block(keras_home):
    os.mkfifo(keras_home / "keras.json")  # nobody writes: opening it to read would wait
    with pytest.warns(UserWarning, match="not a regular file"):
        assert convt.image_data_format() == "channels_last"


def test_a_directory_in_place_of_the_file_is_ignored(keras_home):
    (keras_home / "keras.json").mkdir()
    with pytest.warns(UserWarning, match="was ignored: it cannot be read"):
        assert convt.image_data_format() == "channels_last"


def test_the_path_follows_keras(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert keras_config.config_path() == str(tmp_path / "home" / "keras.json")
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keras_config.config_path() == str(tmp_path / ".keras" / "keras.json")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a home it cannot write
    assert keras_config.config_path() == os.path.join("/tmp", ".keras", "keras.json")


@pytest.mark.parametrize("value", [None, "NCHW", 1])
def test_set_image_data_format_refuses_other_values(keras_home, value):
    with pytest.raises(ValueError) as raised:
        convt.set_image_data_format(value)
    assert str(raised.value) == (
        "The `data_format` argument must be one of 'channels_last', 'channels_first'. "
        f"Received: data_format={value!r}")
    assert convt.image_data_format() == "channels_last"
