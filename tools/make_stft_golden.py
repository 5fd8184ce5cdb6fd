"""Make tests/fixtures/golden_stft.npz: Keras 3's STFT initializer, for tests/test_initializers.py.

Regenerate (from the repository root, in an environment with keras and scipy; convt is
not needed)::

    /work/kerasenv/bin/python tools/make_stft_golden.py

Keras runs on its NumPy backend so that float64 stays float64: each case's values are
Keras's ``keras.initializers.STFT(**args)(shape, dtype="float64")``. The arguments of
case ``i`` are in ``args_<i>`` (a JSON string), its shape in ``shape_<i>``, its values in
``values_<i>``. Made with Keras 3.15.1, SciPy 1.17.1, NumPy 2.4.6.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

os.environ["KERAS_BACKEND"] = "numpy"

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden_stft.npz"
WINDOWS = ["hann", "hamming", "blackman", "bartlett", "triang", "boxcar", "ham", "flattop",
           None, [0.25, 1.0, 0.5, 2.0, 1.5, 0.75, 1.0]]
SHAPES = [(7, 1, 5), (8, 2, 4), (1, 1, 2)]


def cases():
    for index, (window, side, scaling, periodic) in enumerate(itertools.product(
            WINDOWS, ("real", "imag"), ("density", "spectrum", None), (False, True))):
        shapes = [(7, 1, 5)] if isinstance(window, list) else SHAPES
        yield {"side": side, "window": window, "scaling": scaling,
               "periodic": periodic}, shapes[index % len(shapes)]


def main() -> None:
    arrays = {}
    for number, (args, shape) in enumerate(cases()):
        values = keras.initializers.STFT(**args)(shape, dtype="float64")
        arrays[f"args_{number}"] = np.array(json.dumps(args))
        arrays[f"shape_{number}"] = np.array(shape)
        arrays[f"values_{number}"] = np.asarray(values, np.float64)
    arrays["versions"] = np.array(json.dumps({"keras": keras.__version__}))
    np.savez_compressed(OUT, **arrays)
    print(f"{number + 1} cases written to {OUT}")


if __name__ == "__main__":
    main()
