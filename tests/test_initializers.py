"""Initializers: fan rules, draw statistics, seeds, names, serialization and every error.

The end of the file checks the allow-list behaviour shared by all four registries
(activations, initializers, regularizers, constraints) on hostile configs.
"""

import builtins
import contextlib
import importlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import convt
from convt import activations, constraints, initializers, regularizers
from convt.initializers import (
    STFT,
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

# A transposed convolution kernel: (*kernel_size, filters, in_channels).
KERNEL = (3, 3, 16, 8)
FAN_IN, FAN_OUT = 9 * 16, 9 * 8
BIG_KERNEL = (3, 3, 64, 48)  # 82944 draws for the statistics
BIG_FAN_IN, BIG_FAN_OUT = 9 * 64, 9 * 48
TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _truncated_std():
    """The standard deviation of N(0, 1) truncated to [-2, 2], from its density."""
    density = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return math.sqrt(1 - 2 * 2 * density / mass)


def test_truncation_constant_is_the_truncated_normal_std():
    assert _truncated_std() == pytest.approx(TRUNCATED_STD, rel=1e-15)


# ------------------------------------------------------------------------------- fans


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((5, 3), (5, 3)),
        ((4, 5, 3), (20, 12)),
        (KERNEL, (FAN_IN, FAN_OUT)),
        ((2, 3, 4, 5, 6), (2 * 3 * 4 * 5, 2 * 3 * 4 * 6)),
        ((0, 3), (0, 3)),
    ],
)
def test_compute_fans_follows_keras(shape, fans):
    assert initializers.compute_fans(shape) == fans


def test_compute_fans_with_axes_multiplies_those_dimensions():
    shape = (2, 3, 5, 7)
    assert initializers.compute_fans(shape, input_axes=[0, 2], output_axes=[1, 3]) == (10, 21)
    assert initializers.compute_fans(shape, input_axes=[0]) == (3 * 2 * 5, 3 * 2 * 7)
    assert initializers.compute_fans(shape, input_axes=[-4], output_axes=[-1]) == (2, 7)
    with pytest.raises(ValueError, match=r"Expected `output_axes` to index the 4 dimensions of "
                                         r"the weight. Received: output_axes=\[8\] for "
                                         r"shape=\(2, 3, 5, 7\)"):
        initializers.compute_fans(shape, input_axes=[0], output_axes=[8])


def test_initializer_axes_outside_the_kernel_refuse_the_build():
    initializer = initializers.GlorotUniform(input_axes=[7], output_axes=[8])
    layer = convt.Conv2DTranspose(2, 3, kernel_initializer=initializer)
    with pytest.raises(ValueError, match=r"Expected `input_axes` to index the 4 dimensions"):
        layer(np.ones((1, 4, 4, 1)))
    assert not layer.built and layer.weights == []


@pytest.mark.parametrize(
    ("cls", "limit"),
    [
        (GlorotUniform, math.sqrt(6 / (FAN_IN + FAN_OUT))),
        (HeUniform, math.sqrt(6 / FAN_IN)),
        (LecunUniform, math.sqrt(3 / FAN_IN)),
    ],
)
def test_uniform_presets_reach_their_limit_on_a_transposed_kernel(cls, limit):
    values = cls(seed=3)(KERNEL, dtype="float64")
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit


@pytest.mark.parametrize(
    ("init", "variance"),
    [
        (GlorotUniform(seed=1), 2 / (BIG_FAN_IN + BIG_FAN_OUT)),
        (GlorotNormal(seed=1), 2 / (BIG_FAN_IN + BIG_FAN_OUT)),
        (HeUniform(seed=1), 2 / BIG_FAN_IN),
        (HeNormal(seed=1), 2 / BIG_FAN_IN),
        (LecunUniform(seed=1), 1 / BIG_FAN_IN),
        (LecunNormal(seed=1), 1 / BIG_FAN_IN),
        (VarianceScaling(3.0, mode="fan_out", distribution="untruncated_normal", seed=1),
         3 / BIG_FAN_OUT),
        (VarianceScaling(0.5, mode="fan_avg", distribution="normal", seed=1),
         0.5 / ((BIG_FAN_IN + BIG_FAN_OUT) / 2)),
        (VarianceScaling(2.0, mode="fan_out", distribution="uniform", seed=1), 2 / BIG_FAN_OUT),
    ],
)  # fmt: skip
def test_variance_scaling_draws_have_the_promised_variance(init, variance):
    values = init(BIG_KERNEL, dtype="float64")
    # 82944 draws: the sample variance is within 2% with overwhelming probability.
    assert values.var() == pytest.approx(variance, rel=0.02)
    assert abs(values.mean()) < 5 * math.sqrt(variance / values.size)


@pytest.mark.parametrize("cls", [GlorotNormal, HeNormal, LecunNormal])
def test_truncated_presets_stay_within_two_untruncated_stddevs(cls):
    init = cls(seed=0)
    values = init(BIG_KERNEL, dtype="float64")
    fan = {"fan_in": BIG_FAN_IN, "fan_avg": (BIG_FAN_IN + BIG_FAN_OUT) / 2}[init.mode]
    bound = 2 * math.sqrt(init.scale / fan) / TRUNCATED_STD
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.999 * bound


def test_fans_below_one_are_treated_as_one():
    values = VarianceScaling(4.0, distribution="uniform", seed=0)((0, 5))
    assert values.shape == (0, 5)
    assert np.abs(VarianceScaling(4.0, distribution="uniform", seed=0)(())) <= math.sqrt(12)


def test_input_and_output_axes_set_the_fans_and_the_config():
    init = VarianceScaling(
        1.0, mode="fan_out", distribution="uniform", seed=0, input_axes=[0], output_axes=[1, 2]
    )
    assert np.abs(init((4, 2, 3))).max() <= math.sqrt(3 / 6)
    assert np.abs(init((4, 2, 3))).max() > 0.9 * math.sqrt(3 / 6)
    assert init.get_config()["output_axes"] == [1, 2]
    assert VarianceScaling().get_config()["input_axes"] is None  # Keras 3.15 writes None
    glorot = GlorotUniform(seed=2, input_axes=(0,), output_axes=(1,))
    assert glorot.get_config() == {"seed": 2, "input_axes": [0], "output_axes": [1]}


# ---------------------------------------------------------------------- distributions


def test_random_uniform_range_and_moments():
    values = RandomUniform(-1.0, 3.0, seed=0)((200, 200), dtype="float64")
    assert values.min() >= -1.0 and values.max() < 3.0
    assert values.mean() == pytest.approx(1.0, abs=0.02)
    assert values.var() == pytest.approx(16 / 12, rel=0.02)


def test_random_normal_moments():
    values = RandomNormal(2.0, 0.5, seed=0)((200, 200), dtype="float64")
    assert values.mean() == pytest.approx(2.0, abs=0.01)
    assert values.std() == pytest.approx(0.5, rel=0.02)


def test_truncated_normal_bounds_and_moments():
    values = TruncatedNormal(1.0, 0.5, seed=0)((200, 200), dtype="float64")
    assert values.min() >= 0.0 and values.max() <= 2.0
    assert values.mean() == pytest.approx(1.0, abs=0.01)
    assert values.std() == pytest.approx(0.5 * TRUNCATED_STD, rel=0.02)


def test_constant_zeros_ones_identity_values():
    assert Zeros()((2, 3)).tolist() == [[0.0] * 3] * 2
    assert Ones()((2,), dtype="int8").tolist() == [1, 1]
    assert Constant(2.5)((2, 2), dtype="float16").tolist() == [[2.5, 2.5], [2.5, 2.5]]
    assert Constant(-3)((1,), dtype="int32").tolist() == [-3]
    assert Identity()((2, 2)).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert Identity(gain=3.0)((3, 2)).tolist() == [[3.0, 0.0], [0.0, 3.0], [0.0, 0.0]]


@pytest.mark.parametrize(
    ("shape", "gram_axis"), [((5, 5), 0), ((3, 7), 1), ((8, 3), 0), ((2, 3, 4, 6), 0)]
)
def test_orthogonal_gives_orthonormal_rows_or_columns(shape, gram_axis):
    values = Orthogonal(gain=2.0, seed=0)(shape, dtype="float64")
    matrix = values.reshape(-1, shape[-1])
    gram = matrix.T @ matrix if gram_axis == 0 else matrix @ matrix.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-12)


def test_orthogonal_is_unbiased_in_sign():
    # With the sign of R's diagonal folded in, column signs are not all positive.
    first_entries = [Orthogonal(seed=s)((4, 4))[0, 0] for s in range(40)]
    assert 5 < sum(v > 0 for v in first_entries) < 35


# ------------------------------------------------------------------------ seeds, dtypes

RANDOM_CLASSES = [
    RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling, GlorotUniform, GlorotNormal,
    HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal,
]  # fmt: skip


@pytest.mark.parametrize("cls", RANDOM_CLASSES)
def test_seeds_reproduce_and_none_draws_afresh(cls):
    first = cls(seed=7)(KERNEL)
    np.testing.assert_array_equal(first, cls(seed=7)(KERNEL))
    np.testing.assert_array_equal(first, cls(seed=7)(KERNEL))
    assert not np.array_equal(first, cls(seed=8)(KERNEL))
    unseeded = cls()
    assert not np.array_equal(unseeded(KERNEL), unseeded(KERNEL))


@pytest.mark.parametrize("cls", RANDOM_CLASSES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", None, np.float32])
def test_random_dtypes(cls, dtype):
    values = cls(seed=0)(KERNEL, dtype=dtype)
    assert values.dtype == np.dtype(dtype or "float32")
    assert np.isfinite(values).all()


def test_seeds_reproduce_across_processes():
    # Fixed values pin the generator: np.random.default_rng(seed).uniform.
    expected = np.random.default_rng(5).uniform(-0.05, 0.05, (2, 2)).astype(np.float32)
    np.testing.assert_array_equal(RandomUniform(seed=5)((2, 2)), expected)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, [1]])
def test_invalid_seeds_are_refused(seed):
    with pytest.raises(
        ValueError,
        match=r"`seed` argument should be a non-negative integer "
        r"or None. Received: seed=",
    ):
        RandomNormal(seed=seed)


@pytest.mark.parametrize("dtype", ["int32", "bool", "complex64", "nonsense", object])
def test_random_initializers_need_a_float_dtype(dtype):
    with pytest.raises(ValueError, match=r"Expected `dtype` to be a floating-point dtype. "):
        GlorotUniform()((2, 2), dtype=dtype)


def test_constant_initializers_refuse_non_numeric_dtypes():
    with pytest.raises(ValueError, match=r"a numeric dtype. Received: dtype='U3'"):
        Zeros()((2,), dtype="U3")


@pytest.mark.parametrize("shape", [5, "ab", (2, -1), (2.0, 3), None, (True, "x")])
def test_invalid_shapes_are_refused(shape):
    with pytest.raises(ValueError, match=r"Expected `shape` to be a tuple of non-negative "):
        Ones()(shape)


def test_identity_needs_rank_two():
    with pytest.raises(
        ValueError,
        match=r"Identity matrix initializer can only be used for 2D matrices. "
        r"Received: shape=\(2, 2, 2\) of rank 3.",
    ):
        Identity()((2, 2, 2))


def test_orthogonal_needs_rank_two_or_more():
    with pytest.raises(
        ValueError,
        match=r"must be at least two-dimensional. Received: shape=\(4,\) of rank 1.",
    ):
        Orthogonal()((4,))


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize("scale", [0, -1.0, math.inf, math.nan, "1", True])
def test_variance_scaling_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match=r"Argument `scale` must be positive float. Received"):
        VarianceScaling(scale)


def test_variance_scaling_distribution_aliases():
    assert VarianceScaling(distribution="normal").distribution == "truncated_normal"
    assert VarianceScaling(distribution="Uniform").distribution == "uniform"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RandomNormal(stddev=-1.0), r"argument stddev: expected a non-negative float. "
                                            r"Received: stddev=-1.0"),
        (lambda: RandomNormal(mean=math.nan), r"argument mean: expected a finite float"),
        (lambda: RandomUniform("a"), r"Received: minval='a'"),
        (lambda: RandomUniform(1.0, 0.0), r"Expected `minval` to be at most `maxval`. "
                                          r"Received: minval=1.0, maxval=0.0"),
        (lambda: Constant([1, 2]), r"Received: value=\[1, 2\]"),
        (lambda: Identity(gain=None), r"Received: gain=None"),
        (lambda: Orthogonal(gain=math.inf), r"Received: gain=inf"),
        (lambda: VarianceScaling(input_axes=3), r"Expected `input_axes` to be None or a list"),
        (lambda: VarianceScaling(mode="fan"), r"Invalid `mode` argument: expected one of "
                                              r".*Received: mode='fan'"),
        (lambda: VarianceScaling(distribution="gaussian"),
         r"Invalid `distribution` argument: expected one of .*Received: distribution='gaussian'"),
        (lambda: VarianceScaling(distribution=3), r"Received: distribution=3"),
    ],
)  # fmt: skip
def test_argument_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ------------------------------------------------------ initializer serialization


@pytest.mark.parametrize(
    "keras_dict",
    [
        {"module": "keras.initializers", "class_name": "VarianceScaling",
         "config": {"seed": None, "scale": 2.0, "mode": "fan_out",
                    "distribution": "untruncated_normal"}, "registered_name": None},
        {"module": "keras.initializers", "class_name": "HeNormal",
         "config": {"seed": 3, "input_axes": None, "output_axes": None}, "registered_name": None},
        {"class_name": "RandomUniform", "config": {"minval": -1, "maxval": 1, "seed": None}},
        {"class_name": "Constant", "config": {"value": 0.25}},
        {"class_name": "Zeros", "config": {}},
        {"class_name": "Orthogonal", "config": None},
    ],
)  # fmt: skip
def test_dicts_written_by_keras_load(keras_dict):
    init = initializers.deserialize(keras_dict)
    assert type(init).__name__ == keras_dict["class_name"]
    assert init((4, 4)).shape == (4, 4)


def test_preset_configs_refuse_the_variance_scaling_keys():
    with pytest.raises(ValueError, match=r"Unknown keys \['mode'\] in the config of HeNormal"):
        initializers.deserialize({"class_name": "HeNormal", "config": {"mode": "fan_out"}})


def test_from_config_refuses_a_non_dict():
    with pytest.raises(ValueError, match=r"config of Constant to be a dict. Received: config=2"):
        initializers.deserialize({"class_name": "Constant", "config": 2})


class _Custom(initializers.Initializer):
    def _generate(self, shape):
        return np.zeros(shape)


def test_user_subclasses_work_but_cannot_be_serialized():
    assert _Custom()((2,)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"Cannot serialize this initializer: .*initializer="):
        initializers.serialize(_Custom())


def test_repr_shows_the_config():
    assert repr(VarianceScaling(seed=1)) == (
        "VarianceScaling(seed=1, scale=1.0, mode='fan_in', distribution='truncated_normal', "
        "input_axes=None, output_axes=None)"
    )


# ---------------------------------- registry behaviour, checked for all four modules

MODULES = {
    "activations": activations,
    "initializers": initializers,
    "regularizers": regularizers,
    "constraints": constraints,
}
KIND = {
    "activations": ("activation function", "activation"),
    "initializers": ("initializer", "initializer"),
    "regularizers": ("regularizer", "regularizer"),
    "constraints": ("constraint", "constraint"),
}
# Every accepted name of every class: the class name, then Keras's other names.
CLASS_NAMES = {
    "initializers": {
        Zeros: ["zeros", "zero"],
        Ones: ["ones", "one"],
        Constant: ["constant"],
        Identity: ["identity", "IdentityInitializer"],
        RandomUniform: ["random_uniform", "uniform"],
        RandomNormal: ["random_normal", "normal"],
        TruncatedNormal: ["truncated_normal"],
        VarianceScaling: ["variance_scaling"],
        GlorotUniform: ["glorot_uniform"],
        GlorotNormal: ["glorot_normal"],
        HeUniform: ["he_uniform"],
        HeNormal: ["he_normal"],
        LecunUniform: ["lecun_uniform"],
        LecunNormal: ["lecun_normal"],
        Orthogonal: ["orthogonal", "OrthogonalInitializer"],
        STFT: ["stft", "STFTInitializer"],
    },
    "regularizers": {
        regularizers.L1: ["l1"],
        regularizers.L2: ["l2"],
        regularizers.L1L2: ["l1l2", "L1L2"],
        regularizers.OrthogonalRegularizer: ["orthogonal_regularizer"],
    },
    "constraints": {
        constraints.MaxNorm: ["max_norm"],
        constraints.MinMaxNorm: ["min_max_norm"],
        constraints.NonNeg: ["non_neg"],
        constraints.UnitNorm: ["unit_norm"],
    },
}
ALL_CLASSES = [(m, cls) for m, table in CLASS_NAMES.items() for cls in table]
NON_DEFAULT = {
    "initializers": [
        Zeros(), Ones(), Constant(1.5), Identity(gain=0.5), RandomUniform(-1.0, 2.0, seed=1),
        RandomNormal(1.0, 2.0, seed=2), TruncatedNormal(0.5, 0.1, seed=3),
        VarianceScaling(2.0, mode="fan_avg", distribution="uniform", seed=4),
        GlorotUniform(seed=5), GlorotNormal(seed=6), HeUniform(seed=7), HeNormal(seed=8),
        LecunUniform(seed=9), LecunNormal(seed=10), Orthogonal(gain=3.0, seed=11),
    ],
    "regularizers": [
        regularizers.L1(0.2), regularizers.L2(0.3), regularizers.L1L2(0.1, 0.4),
        regularizers.OrthogonalRegularizer(0.5, mode="columns"),
    ],
    "constraints": [
        constraints.MaxNorm(3.0, axis=[0, 1]), constraints.MinMaxNorm(0.1, 0.9, rate=0.5, axis=-1),
        constraints.NonNeg(), constraints.UnitNorm(axis=(0, 1)),
    ],
}  # fmt: skip
WEIGHT = np.random.default_rng(0).normal(size=(3, 4))


def _apply(module_name, obj):
    """What the object makes: values of a (3, 4) weight, or a penalty/projection of one."""
    return obj((3, 4)) if module_name == "initializers" else obj(WEIGHT)


@pytest.mark.parametrize(("module_name", "cls"), ALL_CLASSES)
def test_every_name_gives_a_default_instance(module_name, cls):
    module = MODULES[module_name]
    for name in [cls.__name__, *CLASS_NAMES[module_name][cls]]:
        for obj in (module.get(name), module.deserialize(name)):
            assert type(obj) is cls
            assert obj.get_config() == cls().get_config()


@pytest.mark.parametrize(
    ("module_name", "obj"),
    [(m, obj) for m, objs in NON_DEFAULT.items() for obj in objs],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_serialize_round_trips_in_both_dict_forms(module_name, obj):
    module = MODULES[module_name]
    data = module.serialize(obj)
    assert data == {
        "module": f"keras.{module_name}",
        "class_name": type(obj).__name__,
        "config": obj.get_config(),
        "registered_name": None,
    }
    for form in (data, {"class_name": data["class_name"], "config": data["config"]}):
        again = module.deserialize(form)
        assert type(again) is type(obj) and again.get_config() == obj.get_config()
    np.testing.assert_array_equal(_apply(module_name, module.get(data)), _apply(module_name, obj))


@pytest.mark.parametrize(("module_name", "cls"), ALL_CLASSES)
def test_from_config_refuses_unknown_keys(module_name, cls):
    config = {**cls().get_config(), "stddevv": 1.0}
    with pytest.raises(
        ValueError,
        match=rf"Unknown keys \['stddevv'\] in the config of "
        rf"{cls.__name__}: expected keys among",
    ):
        MODULES[module_name].deserialize({"class_name": cls.__name__, "config": config})


def _custom(x, dtype=None):
    return x


@pytest.mark.parametrize("module_name", list(MODULES))
def test_get_resolves_none_instances_and_callables(module_name):
    module = MODULES[module_name]
    assert module.get(None) is (activations.linear if module is activations else None)
    assert module.serialize(None) is None and module.deserialize(None) is None
    assert module.get(_custom) is _custom and module.get(np.tanh) is np.tanh
    kind, argument = KIND[module_name]
    for user_callable in (_custom, np.tanh):
        with pytest.raises(
            ValueError,
            match=rf"Cannot serialize this {kind}: expected one of "
            rf".*Received: {argument}=",
        ):
            module.serialize(user_callable)


@pytest.mark.parametrize(("module_name", "cls"), ALL_CLASSES)
def test_get_instantiates_classes_and_passes_instances_through(module_name, cls):
    module = MODULES[module_name]
    assert type(module.get(cls)) is cls
    instance = cls()
    assert module.get(instance) is instance


BAD_IDENTIFIERS = [
    *[
        (x, "Could not interpret {kind} identifier: expected ")
        for x in (5, 0.1, [1], b"l1", ("l1",))
    ],
    *[(x, "Unknown {kind}: expected one of [") for x in ("nope", "Relu", "GLOROT_UNIFORM", "")],
]


@pytest.mark.parametrize("module_name", list(MODULES))
@pytest.mark.parametrize(("identifier", "start"), BAD_IDENTIFIERS)
def test_get_refuses_unknown_names_and_other_types(module_name, identifier, start):
    message = start.format(kind=KIND[module_name][0])
    pattern = f"^{re.escape(message)}.*Received: identifier={re.escape(repr(identifier))}$"
    with pytest.raises(ValueError, match=pattern):
        MODULES[module_name].get(identifier)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (GlorotUniform(), {"module": "keras.initializers", "class_name": "GlorotUniform",
                           "config": {"seed": None, "input_axes": None, "output_axes": None},
                               "registered_name": None}),
        (regularizers.L2(), {"module": "keras.regularizers", "class_name": "L2",
                             "config": {"l2": 0.01}, "registered_name": None}),
        (constraints.MaxNorm(), {"module": "keras.constraints", "class_name": "MaxNorm",
                                 "config": {"max_value": 2.0, "axis": 0},
                                 "registered_name": None}),
    ],
)  # fmt: skip
def test_defaults_serialize_exactly_as_keras_3(obj, expected):
    module = {GlorotUniform: initializers, regularizers.L2: regularizers}.get(
        type(obj), constraints
    )
    assert module.serialize(obj) == expected


HOSTILE = [
    ({"class_name": "Lambda", "config": {"function": "os.system('true')"}}, "Unknown"),
    ({"class_name": "os.system", "config": {}}, "Unknown"),
    ({"class_name": "__lambda__", "config": {"value": "gASV"}}, "Unknown"),
    ({"class_name": "function", "config": "system", "module": "os"}, "module='os'"),
    ({"class_name": "function", "config": "eval", "module": "builtins"}, "module='builtins'"),
    ({"class_name": "Zeros", "module": "builtins"}, "module='builtins'"),
    ({"class_name": "function", "config": "__import__"}, "Unknown"),
    ({"class_name": "eval"}, "Unknown"),
    ({"class_name": ["relu"]}, "Unknown"),
    ({"class_name": "Dense", "module": "keras.layers", "config": {}}, "module='keras.layers'"),
    ("__import__('os')", "Unknown"),
    (["relu"], "expected a name or a dict"),
]


@contextlib.contextmanager
def _imports_refused():
    """Makes any import inside the block fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"import attempted: {args[:1]}")

    saved = builtins.__import__, importlib.import_module
    builtins.__import__ = importlib.import_module = refuse
    try:
        yield
    finally:
        builtins.__import__, importlib.import_module = saved


@pytest.mark.parametrize("module_name", list(MODULES))
@pytest.mark.parametrize(("config", "message"), HOSTILE)
def test_hostile_configs_are_refused_without_importing(module_name, config, message):
    deserialize = MODULES[module_name].deserialize
    with pytest.raises(ValueError, match=re.escape(message)), _imports_refused():
        deserialize(config)


def test_the_import_guard_works():
    with pytest.raises(AssertionError, match="import attempted"), _imports_refused():
        importlib.import_module("json")


def test_configs_written_by_keras_3_0_name_their_classes_own_modules():
    # Keras 3.0.0-3.0.1 wrote each class's defining module and its name as registered_name.
    written = [
        (initializers, "keras.src.initializers.random_initializers", "GlorotUniform",
         {"seed": None}),
        (initializers, "keras.src.initializers.constant_initializers", "Zeros", {}),
        (regularizers, "keras.src.regularizers.regularizers", "L2", {"l2": 0.01}),
        (constraints, "keras.src.constraints.constraints", "MaxNorm", {"max_value": 2, "axis": 0}),
    ]
    for family, module, name, config in written:
        obj = family.get({"module": module, "class_name": name, "config": config,
                          "registered_name": name})
        assert type(obj).__name__ == name
    with pytest.raises(ValueError, match="Received: module='os.path'"):
        initializers.get({"module": "os.path", "class_name": "Zeros", "config": {}})


STFT_GOLDEN = Path(__file__).parent / "fixtures" / "golden_stft.npz"


def _stft_cases():
    with np.load(STFT_GOLDEN) as golden:
        count = sum(key.startswith("args_") for key in golden.files)
        return [(json.loads(str(golden[f"args_{i}"])), tuple(int(n) for n in golden[f"shape_{i}"]),
                 golden[f"values_{i}"]) for i in range(count)]


@pytest.mark.parametrize(("args", "shape", "expected"), _stft_cases(),
                         ids=lambda value: json.dumps(value) if isinstance(value, dict) else "")
def test_stft_matches_keras(args, shape, expected):
    """Keras 3.15.1's values asked for in float64 (tools/make_stft_golden.py): every window
    convt computes, a SciPy one (flattop), window values, both sides, every scaling, periodic
    or not. Keras's angles carry a float32 pi even then (errors up to 1.6e-6 here, at angles
    up to 22); convt's are exact (the next test)."""
    if args["window"] == "flattop":
        pytest.importorskip("scipy")
    initializer = STFT(**args)
    expected = np.broadcast_to(expected, shape)  # Keras gives one channel, whatever the shape
    np.testing.assert_allclose(initializer(shape, dtype="float64"), expected, rtol=0,
                               atol=3e-6)
    values = initializer(shape, dtype="float64")
    assert values.flags.writeable and values.flags.c_contiguous  # a new array, as all give
    again = initializers.deserialize(initializers.serialize(initializer))
    np.testing.assert_array_equal(again(shape, dtype="float32"), initializer(shape))


@pytest.mark.parametrize("side", ["real", "imag"])
def test_stft_values_are_the_exact_dft_basis(side):
    """Against angles reduced exactly (integers modulo the DFT length) before the cosine."""
    frame, bins = 1024, 513
    values = STFT(side, window=None, scaling=None)((frame, 1, bins), dtype="float64")[:, 0]
    length = 2 * (bins - 1)
    turns = np.outer(np.arange(frame), np.arange(bins)) % length
    angles = -2 * np.pi * turns / length
    expected = np.cos(angles) if side == "real" else np.sin(angles)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)


def test_stft_sums_frequency_channels_back_into_frames_in_a_transposed_convolution():
    """A one-filter Conv1DTranspose with the real STFT kernel (no window) turns one frame's
    real spectrum (the bins of a cosine) back into its samples, as an inverse DFT."""
    import convt

    frame, bins = 8, 5
    layer = convt.Conv1DTranspose(1, frame, strides=frame, use_bias=False,
                                  kernel_initializer=STFT("real", window=None, scaling=None))
    spectrum = np.zeros((1, 1, bins), np.float64)
    spectrum[0, 0, 1] = 1.0  # one cosine of one period per frame
    samples = layer(spectrum.astype(np.float32))[0, :, 0]
    np.testing.assert_allclose(samples, np.cos(2 * np.pi * np.arange(frame) / frame), atol=1e-6)
    assert layer.get_config()["kernel_initializer"]["class_name"] == "STFT"


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(side="both"), "Expected `side` to be one of 'real', 'imag'. Received: side='both'"),
    (dict(scaling="l2"), "Expected `scaling` to be one of 'density', 'spectrum' or None. "
                         "Received: scaling='l2'"),
    (dict(periodic=1), "Expected `periodic` to be a boolean. Received: periodic=1"),
    (dict(window=[[1.0, 2.0]]), "Expected `window` to be a window name, None, or a 1-D "
                                "sequence of finite numbers. Received: window=[[1.0, 2.0]]"),
    (dict(window=[1.0, float("nan")]), "Received: window=[1.0, nan]"),
    (dict(window=b"hann"), "Received: window=b'hann'"),
    (dict(window=[1.0, [2.0, 3.0]]), "Received: window=[1.0, [2.0, 3.0]]"),
    (dict(window=["1", "2"]), "Received: window=['1', '2']"),
])
def test_stft_argument_errors(arguments, message):
    with pytest.raises(ValueError) as raised:
        STFT(**arguments)
    assert message in str(raised.value)


def test_stft_window_names_with_and_without_scipy(monkeypatch):
    pytest.importorskip("scipy")
    with pytest.raises(ValueError) as raised:
        STFT(window="kaiser")  # needs a parameter: no window by that name alone
    assert str(raised.value).startswith("Expected `window` to name a window of "
                                        "scipy.signal.windows (")
    assert str(raised.value).endswith("Received: window='kaiser'")
    monkeypatch.setitem(__import__("sys").modules, "scipy", None)  # as if not installed
    assert STFT(window="hamm")((3, 1, 2)).shape == (3, 1, 2)
    with pytest.raises(ValueError) as raised:
        STFT(window="flattop")
    assert str(raised.value) == (
        "Expected `window` to be one of ['bartlett', 'blackman', 'boxcar', 'hamming', 'hann', "
        "'triang'] (or an alias SciPy gives them), None or an array of values; other windows "
        "of scipy.signal.windows need SciPy installed. Received: window='flattop'")


@pytest.mark.parametrize(("shape", "window", "message"), [
    ((4, 1), "hann", "Received: shape=(4, 1)"),
    ((4, 1, 1), "hann", "with at least 2 bins. Received: shape=(4, 1, 1)"),
    ((4, 1, 3), [1.0, 2.0], "Expected `window` values for each of the frame_length=4 samples. "
                            "Received: 2 values"),
])
def test_stft_shape_errors(shape, window, message):
    with pytest.raises(ValueError) as raised:
        STFT(window=window)(shape)
    assert message in str(raised.value)


# ------------------------------------------------------------ arrays as initializers
def test_get_of_an_array_gives_its_values_cast_to_the_dtype_asked():
    values = np.arange(6.0).reshape(2, 3)
    init = initializers.get(values)
    assert isinstance(init, initializers.ArrayValues)
    got = init((2, 3), dtype="int32")
    assert got.dtype == np.int32 and got.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert init((2, 3)).dtype == np.float32  # Keras's default dtype, as every initializer


def test_an_array_initializer_keeps_its_own_copy_and_returns_new_arrays():
    values = np.ones((2,))
    init = initializers.get(values)
    values[:] = 5.0
    first = init((2,))
    first[:] = 7.0
    np.testing.assert_array_equal(init((2,)), [1.0, 1.0])


@pytest.mark.parametrize("shape", [(3, 2), (6,), (2, 3, 1)])
def test_an_array_initializer_refuses_another_shape(shape):
    init = initializers.get(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=re.escape(
            f"Expected `shape` to be (2, 3), the shape of the array given as the initializer. "
            f"Received: shape={shape}")):
        init(shape)


def test_scalars_and_tensors_are_arrays_too():
    assert initializers.get(np.float32(2.0))(()) == 2.0
    torch = pytest.importorskip("torch")
    tensor = torch.ones(2, 2, requires_grad=True)
    got = initializers.get(tensor)((2, 2), dtype="float64")
    np.testing.assert_array_equal(got, np.ones((2, 2)))
    halves = torch.full((2,), 0.5, dtype=torch.bfloat16)
    np.testing.assert_array_equal(initializers.get(halves)((2,)), [0.5, 0.5])


@pytest.mark.parametrize("values", [np.array(["a", "b"]), np.array([1j])], ids=["str", "complex"])
def test_an_array_of_other_than_real_numbers_is_refused(values):
    with pytest.raises(TypeError, match=re.escape(
            f"Expected `initializer` to be an array of real numbers (float, int or bool). "
            f"Received: initializer.dtype={values.dtype}")):
        initializers.get(values)


def test_a_layer_takes_an_array_as_its_kernel_initializer_but_cannot_serialize_it():
    from convt.layers import Conv1DTranspose

    kernel = np.arange(12.0).reshape(3, 2, 2)
    layer = Conv1DTranspose(2, 3, kernel_initializer=kernel)
    layer.build((None, 4, 2))
    np.testing.assert_array_equal(layer.get_weights()[0], kernel)
    with pytest.raises(ValueError, match="Cannot serialize this initializer"):
        layer.get_config()


def test_lists_are_not_arrays_as_in_keras():
    with pytest.raises(ValueError, match="Could not interpret initializer identifier"):
        initializers.get([1.0, 2.0])
