"""Regularizers against loops written here in float64, plus names, serialization and errors."""

import itertools
import math
import re

import numpy as np
import pytest

from convt import regularizers
from convt.regularizers import L1, L1L2, L2, OrthogonalRegularizer

WEIGHT = np.random.default_rng(0).normal(size=(3, 3, 4, 2))


def _l1(w):
    return math.fsum(abs(float(v)) for v in np.ravel(w))


def _l2(w):
    return math.fsum(float(v) ** 2 for v in np.ravel(w))


@pytest.mark.parametrize(
    ("regularizer", "expected"),
    [
        (L1(), 0.01 * _l1(WEIGHT)),
        (L1(0.3), 0.3 * _l1(WEIGHT)),
        (L2(), 0.01 * _l2(WEIGHT)),
        (L2(l2=2.0), 2.0 * _l2(WEIGHT)),
        (L1L2(), 0.0),
        (L1L2(l1=0.1, l2=0.2), 0.1 * _l1(WEIGHT) + 0.2 * _l2(WEIGHT)),
        (L1L2(None, 0.5), 0.5 * _l2(WEIGHT)),
    ],
)
def test_penalties_match_their_formula(regularizer, expected):
    penalty = regularizer(WEIGHT)
    assert isinstance(penalty, np.float64)
    assert float(penalty) == pytest.approx(expected, rel=1e-13, abs=0.0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("regularizer", [L1(), L2(), L1L2(0.1, 0.1), OrthogonalRegularizer()])
def test_penalty_is_a_scalar_of_the_weight_dtype(regularizer, dtype):
    penalty = regularizer(WEIGHT.reshape(9, 8).astype(dtype))
    assert penalty.dtype == dtype and np.ndim(penalty) == 0


def test_integer_weights_give_a_float32_penalty():
    assert L2(1.0)(np.array([1, 2])) == np.float32(5.0)
    assert L2(1.0)(np.array([1, 2])).dtype == np.float32


def test_keras_docstring_example():
    assert float(L2(2.0)(np.ones((5, 5)))) == 50.0


def test_zero_factors_skip_their_term_as_keras_does():
    assert L1L2(l1=0.0, l2=1.0)(np.array([np.inf])) == np.inf
    assert L1L2(l1=1.0, l2=0.0)(np.array([-np.inf])) == np.inf


def test_none_means_the_default():
    assert L1(None).l1 == 0.01 and L2(None).l2 == 0.01
    assert L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


@pytest.mark.parametrize(
    ("build", "name", "value"),
    [
        (lambda: L1(-1), "l1", "-1"),
        (lambda: L2(math.inf), "l2", "inf"),
        (lambda: L1L2(l1=math.nan), "l1", "nan"),
        (lambda: L1L2(l2="0.1"), "l2", "'0.1'"),
        (lambda: L2(True), "l2", "True"),
        (lambda: OrthogonalRegularizer(-0.5), "factor", "-0.5"),
    ],
)
def test_factors_must_be_finite_non_negative_floats(build, name, value):
    message = rf"Invalid value for argument {name}: expected a non-negative float. "
    with pytest.raises(ValueError, match=message + rf"Received: {name}={value}$"):
        build()


def _orthogonal_reference(w, factor, mode):
    """Mean |cosine| over pairs of distinct rows (or columns), times the factor."""
    vectors = w if mode == "rows" else w.T
    units = [v / max(math.sqrt(_l2(v)), 1e-7) for v in vectors]
    pairs = list(itertools.combinations(units, 2))
    return factor * math.fsum(abs(float(np.dot(a, b))) for a, b in pairs) / len(pairs)


@pytest.mark.parametrize("mode", ["rows", "columns"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_orthogonal_regularizer_matches_pairwise_cosines(mode, shape):
    w = np.random.default_rng(1).normal(size=shape)
    got = OrthogonalRegularizer(factor=0.7, mode=mode)(w)
    assert float(got) == pytest.approx(_orthogonal_reference(w, 0.7, mode), rel=1e-12)


def test_orthogonal_regularizer_is_zero_for_orthogonal_rows_and_handles_zero_rows():
    assert float(OrthogonalRegularizer(1.0)(np.eye(3))) == 0.0
    with_zero_row = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    assert float(OrthogonalRegularizer(1.0)(with_zero_row)) == pytest.approx(math.sqrt(0.5) / 3)


def test_orthogonal_regularizer_without_pairs_is_zero():
    assert float(OrthogonalRegularizer(1.0)(np.ones((1, 4)))) == 0.0
    assert float(OrthogonalRegularizer(1.0, mode="columns")(np.ones((4, 1)))) == 0.0


def test_orthogonal_regularizer_mode_must_be_rows_or_columns():
    expected = 'Invalid value for argument `mode`. Expected one of {"rows", "columns"}. '
    with pytest.raises(ValueError, match=re.escape(expected + "Received: mode='cols'")):
        OrthogonalRegularizer(mode="cols")


def test_orthogonal_regularizer_needs_rank_two():
    expected = "Inputs to OrthogonalRegularizer must have rank 2. "
    with pytest.raises(ValueError, match=re.escape(expected + "Received: inputs.shape=(2, 2, 2)")):
        OrthogonalRegularizer()(np.ones((2, 2, 2)))


# ------------------------------------------------------------------ serialization
# (names, round trips and errors of every registry: see test_initializers.py)


def test_l1l2_by_name_penalizes_nothing_as_in_keras_3():
    assert regularizers.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}


def test_l1_l2_is_an_alias_not_a_name_as_in_keras_3_15():
    assert regularizers.l1_l2(l1=0.1).get_config() == {"l1": 0.1, "l2": 0.0}
    with pytest.raises(ValueError, match="Received: identifier='l1_l2'"):
        regularizers.get("l1_l2")
