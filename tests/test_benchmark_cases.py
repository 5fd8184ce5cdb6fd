"""Every benchmark case, at tiny size, computes Keras's values (so the registry cannot rot)."""

import numpy as np
import pytest

from benchmarks.cases import CASES
from convt import ops
from tests import reference


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiny_case_matches_reference(name):
    case = CASES[name].tiny()
    x, w = case.arrays(dtype="float64")
    out = ops.conv_transpose(x, w, **case.op_kwargs)
    assert out.shape == case.output_shape
    np.testing.assert_allclose(out, reference.conv_transpose_loops(x, w, **case.op_kwargs),
                               rtol=1e-10, atol=1e-10)
