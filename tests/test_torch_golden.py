"""The golden Keras cases (tests/fixtures/golden_ops.*) through the torch path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convt import ops  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
OP_ARGS = ("strides", "padding", "output_padding", "data_format", "dilation_rate")

CASES = json.loads((FIXTURES / "golden_ops.json").read_text())["cases"]
with np.load(FIXTURES / "golden_ops.npz") as _data:
    ARRAYS = dict(_data)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_torch_path_matches_keras(case):
    x, w, expected = (ARRAYS[f"{case['id']}_{name}"] for name in "xwy")
    kwargs = {name: _tuples(case[name]) for name in OP_ARGS}
    got = ops.conv_transpose(torch.from_numpy(x), torch.from_numpy(w), **kwargs)
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == expected.shape
    tolerance = 1e-10 if case["dtype"] == "float64" else 1e-5
    np.testing.assert_allclose(got.numpy(), expected, rtol=tolerance, atol=tolerance)
