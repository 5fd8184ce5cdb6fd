"""Variable and DTypePolicy: the small pieces the layers stand on."""

import numpy as np
import pytest

from convt.dtype_policies import DTypePolicy
from convt.variables import Variable


def test_variable_assign_checks_shape_and_keeps_dtype():
    v = Variable(np.zeros((2, 3), "float32"), name="kernel", path="up/kernel")
    v.assign(np.ones((2, 3), "float64"))
    assert v.dtype == "float32" and v.numpy().sum() == 6
    with pytest.raises(ValueError, match=r"Variable 'up/kernel' has shape \(2, 3\).*Received: "
                                         r"value.shape=\(3, 2\)"):
        v.assign(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"Expected `value` to be a rectangular array .*"
                                         r"Received: value=\[\[1, 2, 3\], \[4, 5\]\]"):
        v.assign([[1, 2, 3], [4, 5]])
    assert np.asarray(v).shape == (2, 3) and np.asarray(v, dtype="float64").dtype == np.float64
    assert "up/kernel" in repr(v)


@pytest.mark.parametrize("identifier,variable,compute", [
    (None, "float32", "float32"),
    ("float64", "float64", "float64"),
    (np.float16, "float16", "float16"),
    ("mixed_float16", "float32", "float16"),
    ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"},
      "registered_name": None}, "float64", "float64"),
])
def test_dtype_policy_resolution(identifier, variable, compute):
    policy = DTypePolicy.get(identifier)
    assert (policy.variable_dtype, policy.compute_dtype) == (variable, compute)
    assert DTypePolicy.get(policy.serialize()) == policy


@pytest.mark.parametrize("identifier,message", [
    ("int32", r"Received: dtype='int32'"),
    ("bfloat16", r"Received: dtype='bfloat16'"),
    (object(), r"Received: dtype=<object"),
    ({"class_name": "Lambda", "config": {"name": "float32"}}, r"serialized DTypePolicy"),
    ({"class_name": "DTypePolicy", "config": {"name": "float32", "x": 1}}, r"Received: dtype="),
])
def test_dtype_policy_errors(identifier, message):
    with pytest.raises(ValueError, match=message):
        DTypePolicy.get(identifier)
