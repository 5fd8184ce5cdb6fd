"""PreparedKernel (convt.prepared): the same values as the array, its derived taps kept safely.

The values are checked against the direct-loop reference; the rule's use of a
prepared kernel in ``test_winograd.py``'s style; the layers' use of it here; plain
kernel arrays recognized by their bits (``recognize``), never by their identity.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import threading

import numpy as np
import pytest

from convt import layers, ops
from convt import prepared as prepared_module
from convt._shapes import plan_conv_transpose
from convt.backends import _fused, _winograd
from convt.backends import numpy as numpy_backend
from convt.prepared import (
    MAX_DERIVED,
    RECOGNIZED_KERNELS,
    PreparedKernel,
    forget_recognized,
    recognize,
)
from tests import reference


def _arrays(x_shape, kernel, filters, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    rank = len(x_shape) - 2
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((*(kernel,) * rank, filters, x_shape[-1]))
         / np.sqrt(kernel**rank * x_shape[-1])).astype(dtype)
    return x, w


@pytest.fixture
def transform_calls(monkeypatch):
    """How many groups of phases had their taps transformed."""
    calls = []
    transform = _winograd._transformed_kernels

    def counted(kernel, groups, pieces):
        calls.append(len(groups))
        return transform(kernel, groups, pieces)

    monkeypatch.setattr(_winograd, "_transformed_kernels", counted)
    return calls


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "padding", "data_format"), [
    ((2, 7, 7, 16), 5, 2, "same", "channels_last"),
    ((2, 9, 8, 16), 3, 1, "same", "channels_first"),
    ((1, 20, 8), 16, 8, "same", "channels_last"),
    ((1, 5, 4, 6, 8), 3, 2, "valid", "channels_last"),
])
@pytest.mark.parametrize("algorithm", [None, "winograd"])
def test_prepared_kernel_gives_the_reference_values(x_shape, kernel, strides, padding,
                                                    data_format, algorithm):
    x, w = _arrays(x_shape, kernel, 12, dtype=np.float64)
    expected = reference.conv_transpose_loops(x, w, strides=strides, padding=padding)
    if data_format == "channels_first":
        x, expected = np.moveaxis(x, -1, 1), np.moveaxis(expected, -1, 1)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=strides, padding=padding,
                                  data_format=data_format)
    prepared = PreparedKernel(w)
    for _ in range(2):  # the second call reads the kept taps
        got = numpy_backend.conv_transpose(x, prepared, args, algorithm=algorithm)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        ops.conv_transpose(x, prepared, strides=strides, padding=padding,
                           data_format=data_format), expected, rtol=1e-10, atol=1e-10)


def test_winograd_transforms_a_prepared_kernel_once(transform_calls):
    x, w = _arrays((2, 8, 8, 8), 4, 6)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    prepared = PreparedKernel(w)
    for _ in range(3):
        numpy_backend.conv_transpose(x, prepared, args, algorithm="winograd")
    assert transform_calls == [1]  # one group (four phases sharing tiles), transformed once
    for _ in range(2):
        numpy_backend.conv_transpose(x, w, args, algorithm="winograd")
    assert transform_calls == [1, 1, 1]  # a plain array: every call


def test_prepared_kernel_is_a_private_read_only_copy():
    x, w = _arrays((1, 6, 6, 4), 3, 5)
    prepared = PreparedKernel(w)
    before = ops.conv_transpose(x, prepared, strides=2)
    w[...] = 0  # the caller's array: not the one prepared
    np.testing.assert_array_equal(ops.conv_transpose(x, prepared, strides=2), before)
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(prepared)[0] = 1
    copied = prepared.numpy()
    copied[...] = 0  # a writable copy
    np.testing.assert_array_equal(ops.conv_transpose(x, prepared, strides=2), before)
    assert (prepared.shape, prepared.dtype, prepared.ndim) == ((3, 3, 5, 4), np.float32, 4)
    assert repr(prepared) == "<PreparedKernel shape=(3, 3, 5, 4), dtype=float32>"


def test_prepared_kernel_rejects_non_real_values():
    message = (r"Expected `kernel` to be an array of real numbers \(float, int or bool\)\. "
               r"Received: kernel.dtype=complex128")
    with pytest.raises(TypeError, match=message):
        PreparedKernel(np.ones((3, 1, 1), complex))
    with pytest.raises(TypeError, match="Received: kernel.dtype=<U1"):
        PreparedKernel(np.array([["a"]]))


def test_prepared_kernel_keeps_at_most_max_derived_arrays():
    prepared = PreparedKernel(np.ones((2, 1, 1)))
    made = []
    for key in range(MAX_DERIVED + 3):
        made.append(prepared.derived(key, lambda: np.zeros(2)))
    assert len(prepared._derived) == MAX_DERIVED
    assert list(prepared._derived) == list(range(3, MAX_DERIVED + 3))  # the oldest dropped
    assert prepared.derived(MAX_DERIVED + 2, lambda: pytest.fail("kept")) is made[-1]
    assert not made[0].flags.writeable


def test_copies_and_pickles_hold_the_kernel_and_derive_again():
    x, w = _arrays((1, 6, 6, 4), 4, 5)
    prepared = PreparedKernel(w)
    expected = ops.conv_transpose(x, prepared, strides=2, padding="same")
    for other in (copy.deepcopy(prepared), pickle.loads(pickle.dumps(prepared))):
        assert not other._derived
        np.testing.assert_array_equal(np.asarray(other), w)
        np.testing.assert_array_equal(
            ops.conv_transpose(x, other, strides=2, padding="same"), expected)


def test_prepared_kernel_with_torch_inputs():
    torch = pytest.importorskip("torch")
    x, w = _arrays((1, 6, 6, 4), 3, 5, dtype=np.float64)
    got = ops.conv_transpose(torch.from_numpy(x), PreparedKernel(w), strides=2)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), ops.conv_transpose(x, w, strides=2), atol=1e-12)


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "filters", "raw", "prepared"), [
    ((16, 7, 7, 128), 5, 2, 64, False, True),  # DCGAN: the kernel transform tipped it
    ((1, 200, 512), 16, 8, 256, False, True),  # MelGAN's upsampler
    ((8, 32, 32, 64), 3, 1, 64, True, True),
    ((8, 32, 32, 128), 3, 2, 64, False, False),  # phases of 2 and 1 taps: never
    ((1, 224, 1026), 1024, 256, 1, False, False),  # one filter: GEMVs (3.9x measured)
])
@pytest.mark.usefixtures("small_gemm_kernels")
def test_rule_with_a_prepared_kernel(x_shape, kernel, strides, filters, raw, prepared):
    rank = len(x_shape) - 2
    args, _ = plan_conv_transpose(x_shape, (*(kernel,) * rank, filters, x_shape[-1]),
                                  strides=strides, padding="same")
    plans = args.axis_plans(x_shape[1:-1])
    channels, batch = x_shape[-1], x_shape[0]
    chosen = [numpy_backend.choose_algorithm(plans, channels, filters, batch, prepared=kept)
              == "winograd" for kept in (False, True)]
    assert chosen == ([raw, prepared] if _fused.available() else [False, False])


def test_layer_prepares_its_kernel_once_per_value(transform_calls, monkeypatch):
    monkeypatch.setattr(numpy_backend, "choose_algorithm", lambda *a, **k: "winograd")
    layer = layers.Conv2DTranspose(6, 4, strides=2, padding="same", use_bias=False)
    x, w = _arrays((2, 8, 8, 8), 4, 6)
    layer(x)
    layer.set_weights([w])
    expected = ops.conv_transpose(x, w, strides=2, padding="same")
    for _ in range(3):
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert transform_calls == [1, 1, 1]  # built, set_weights, then kept (the direct call: 1)
    layer.set_weights([2 * w])  # a new value: prepared again, never stale
    np.testing.assert_allclose(layer(x), 2 * expected, rtol=1e-5, atol=1e-5)
    assert transform_calls == [1, 1, 1, 1]


def test_layer_kernel_cannot_be_changed_in_place():
    layer = layers.Conv1DTranspose(2, 3)
    layer.build((None, 5, 4))
    with pytest.raises(ValueError, match="read-only"):
        layer.kernel.value[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(layer.kernel)[0] = 1.0
    layer.kernel.assign(np.ones(layer.kernel.shape))  # the way to change it
    np.testing.assert_array_equal(layer.get_weights()[0], np.ones(layer.kernel.shape))


NEEDS_NUMBA = pytest.mark.skipif(not _fused.available(), reason="Winograd needs numba")


def _dcgan_arrays(seed=0):
    """DCGAN's stride-2 layer at a quarter of its batch: Winograd's once its kernel is kept."""
    x, w = _arrays((4, 7, 7, 128), 5, 64, seed=seed)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    return x, w, args


@NEEDS_NUMBA
@pytest.mark.usefixtures("small_gemm_kernels")
def test_a_plain_kernel_seen_again_runs_as_the_prepared_one(transform_calls):
    x, w, args = _dcgan_arrays()
    plans = args.axis_plans(x.shape[1:-1])
    assert [numpy_backend.choose_algorithm(plans, 128, 64, 4, prepared=kept)
            for kept in (False, True)] == ["scatter", "winograd"]
    once = [1] * len(_winograd.tile_groups(plans))  # each group of phases transformed once
    expected = numpy_backend.conv_transpose(x, w, args, algorithm="scatter")
    forget_recognized()
    for calls in ([], once, once):  # first seen (kept, not worth transforming), then Winograd
        got = ops.conv_transpose(x, w.copy(), strides=2, padding="same")
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        assert transform_calls == calls
    w[1, 2, 3, 4] += 1  # written in place: other bits, so a kernel of its own
    expected = numpy_backend.conv_transpose(x, w, args, algorithm="scatter")
    for calls in (once, once * 2):
        np.testing.assert_allclose(ops.conv_transpose(x, w, strides=2, padding="same"),
                                   expected, rtol=1e-4, atol=1e-4)
        assert transform_calls == calls
    assert len(prepared_module._recognized) == 2


@pytest.mark.parametrize(("x_shape", "kernel_size", "strides", "filters", "recognized"), [
    ((16, 7, 7, 256), 5, 1, 128, True),  # dcgan_s1: a 3.2 MiB kernel still pays its comparison
    ((1, 16, 512), 8, 4, 256, False),  # a vocoder's 16-step chunk, 4 MiB kernel, does not
    ((1, 64, 512), 8, 4, 256, False),
    ((1, 8, 8, 128), 3, 1, 128, True),  # a kernel compared from the cache
])
@pytest.mark.usefixtures("small_gemm_kernels")
def test_a_plain_kernel_is_kept_only_where_its_comparison_pays(
        x_shape, kernel_size, strides, filters, recognized):
    rank = len(x_shape) - 2
    w = np.zeros((*(kernel_size,) * rank, filters, x_shape[-1]), np.float32)
    args, _ = plan_conv_transpose(x_shape, w.shape, strides=strides, padding="same")
    plans = args.axis_plans(x_shape[1:-1])
    assert numpy_backend.choose_algorithm(plans, x_shape[-1], filters, x_shape[0],
                                          prepared=True) == "winograd" or not _fused.available()
    assert numpy_backend._recognizable(w.shape, w.dtype, plans, x_shape[0]) == (
        recognized and _fused.available())


def test_recognize_compares_bits_not_values():
    forget_recognized()
    w = np.zeros((3, 2, 2), np.float32)
    w[0, 0, 0] = np.nan
    first, seen = recognize(w)
    assert not seen
    assert recognize(w.copy()) == (first, True)  # the same NaN bits
    negative = w.copy()
    negative[1, 1, 1] = -0.0  # equal values, other bits
    assert not recognize(negative)[1]
    assert not recognize(w.astype(np.float64))[1]  # another dtype
    assert not recognize(w.reshape(3, 4, 1))[1]  # another shape
    assert recognize(np.asfortranarray(w))[0] is first  # any memory layout
    w[2, 0, 1] = 5  # in place: the kept copy is not the caller's array
    assert not recognize(w)[1]


def test_recognize_keeps_the_last_few_kernels():
    forget_recognized()
    kept = [recognize(np.full((2, 1, 1), float(value)))[0]
            for value in range(RECOGNIZED_KERNELS + 1)]
    assert prepared_module._recognized == kept[1:]  # the oldest dropped
    assert recognize(np.full((2, 1, 1), 1.0)) == (kept[1], True)
    assert prepared_module._recognized[-1] is kept[1]  # now the most recently used
    forget_recognized()
    assert not prepared_module._recognized


@NEEDS_NUMBA
@pytest.mark.usefixtures("small_gemm_kernels")
def test_large_kernels_and_forced_algorithms_are_not_kept(monkeypatch):
    x, w, args = _dcgan_arrays()
    forget_recognized()
    numpy_backend.conv_transpose(x, w, args, algorithm="winograd")
    assert not prepared_module._recognized
    monkeypatch.setattr(numpy_backend, "RECOGNIZED_MAX_BYTES", w.nbytes - 1)
    numpy_backend.conv_transpose(x, w, args)
    assert not prepared_module._recognized
    monkeypatch.setattr(numpy_backend, "RECOGNIZED_MAX_BYTES", w.nbytes)
    numpy_backend.conv_transpose(x, w, args)
    assert len(prepared_module._recognized) == 1


@NEEDS_NUMBA
@pytest.mark.usefixtures("small_gemm_kernels")
def test_threads_with_kernels_of_one_shape_get_their_own_values():
    forget_recognized()
    cases = [_dcgan_arrays(seed) for seed in range(RECOGNIZED_KERNELS + 2)]  # more than kept
    expected = [numpy_backend.conv_transpose(x, w, args, algorithm="scatter")
                for x, w, args in cases]
    failures = []

    def run(index):
        x, w, _ = cases[index]
        for _ in range(6):
            got = ops.conv_transpose(x, w, strides=2, padding="same")
            if not np.allclose(got, expected[index], rtol=1e-4, atol=1e-4):
                failures.append(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_with_no_recognized_kernels():
    forget_recognized()
    recognize(np.ones((2, 1, 1)))
    pid = os.fork()
    if pid == 0:  # the child reports by exit status only
        signal.alarm(30)
        ok = not prepared_module._recognized and not recognize(np.ones((2, 1, 1)))[1]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert recognize(np.ones((2, 1, 1)))[1]  # the parent's is still there
