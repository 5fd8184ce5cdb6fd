"""Doctest collection: convt's torch modules are skipped where torch is not installed.

Every test reads Keras's configuration from an empty ``KERAS_HOME``, so that a developer's
``~/.keras/keras.json`` (which sets convt's default data format) cannot change the results.
"""

import importlib.util
import os
import shutil
import tempfile

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += ["src/convt/backends/torch.py", "src/convt/torch"]


def pytest_configure(config):
    os.environ["KERAS_HOME"] = config.keras_home = tempfile.mkdtemp(prefix="convt-keras-home-")


def pytest_unconfigure(config):
    shutil.rmtree(config.keras_home, ignore_errors=True)
