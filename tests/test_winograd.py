"""Winograd's tiles (convt.backends._winograd) against direct sums and the direct-loop reference.

``test_numpy_paths.py`` also forces the algorithm on every geometry there (float64,
compiled loops when numba is installed). Here: the transforms exactly, the axis grids
against brute force, the plain-Python loops, float32 accuracy, and the rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt._shapes import axis_plan, plan_conv_transpose
from convt.backends import _fused, _threads, _winograd
from convt.backends import numpy as numpy_backend
from convt.prepared import PreparedKernel
from tests import reference


@pytest.mark.parametrize("taps", range(1, 8))
def test_transforms_compute_the_correlation(taps):
    outputs = _winograd.tile_outputs(taps)
    at, g, bt = _winograd.transforms(outputs, taps)
    assert at.shape == (outputs, outputs + taps - 1)
    rng = np.random.default_rng(taps)
    d, kernel = rng.standard_normal(outputs + taps - 1), rng.standard_normal(taps)
    direct = [d[i:i + taps] @ kernel for i in range(outputs)]
    np.testing.assert_allclose(at @ ((g @ kernel) * (bt @ d)), direct, rtol=1e-12, atol=1e-12)


def test_tiles_are_at_most_six_inputs_long():
    assert [_winograd.tile_outputs(r) for r in range(1, 8)] == [6, 5, 4, 3, 2, 1, 1]


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(1, 9), kernel=st.integers(1, 6), stride=st.integers(1, 4),
    dilation=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]),
    output_padding=st.integers(0, 3),
)
def test_axis_classes_give_every_output_its_landing_taps(
    length, kernel, stride, dilation, padding, output_padding
):
    """Brute force: output o receives tap j of input i when i * s + j * d - crop == o; the
    grids moved into classes that share their tiles still give each output its taps."""
    if output_padding >= max(stride, dilation):
        output_padding = None
    plan = axis_plan(length, kernel, stride, padding, output_padding, dilation)
    expected = {o: set() for o in range(plan.output_length)}
    for i in range(length):
        for j in range(kernel):
            o = i * stride + j * dilation - plan.crop_left
            if 0 <= o < plan.output_length:
                expected[o].add((j, i))
    got = {o: set() for o in range(plan.output_length)}
    covered = []
    classes = _winograd.axis_classes(plan, _winograd.MAX_TILE_INPUTS)
    for members in classes:
        assert len({(g.in_origin, g.in_step, g.outputs, len(g.taps)) for g in members}) == 1
    for grid in (grid for members in classes for grid in members):
        for q in range(grid.skip, grid.count):
            o = grid.out_origin + grid.out_step * q
            covered.append(o)
            inputs = (grid.in_origin + grid.in_step * (q + u) for u in range(len(grid.taps)))
            got[o] = {(tap, i) for tap, i in zip(grid.taps, inputs) if 0 <= i < length}
    assert len(covered) == len(set(covered)), "an output belongs to two grids"
    assert got == expected


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "padding", "dilation"), [
    ((2, 9, 8, 3), (3, 3), 1, "same", 1),
    ((1, 7, 6, 2), (5, 4), 2, "same", 1),
    ((1, 8, 7, 2), (3, 2), (1, 3), "valid", (2, 1)),
    ((1, 4, 5, 3, 2), (3, 2, 3), (2, 1, 1), "same", 1),
    ((1, 5, 4, 5, 2), (4, 2, 4), (2, 1, 2), "same", 1),  # 3-D groups of moved phases
    ((2, 11, 3), (4,), 2, "same", 1),
    ((1, 9, 2), (8,), 2, "valid", 1),  # 1-D, four taps per phase: one group
])
def test_plain_python_loops_match_the_reference(monkeypatch, x_shape, kernel, strides, padding,
                                                dilation):
    """The loops as plain Python (what runs without numba), chunks on three workers."""
    monkeypatch.setattr(_fused, "compiled", lambda loop: None)
    monkeypatch.setattr(_winograd, "MIN_CHUNK_TILES", 1)
    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(_threads, "workers", lambda: 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((*kernel, 3, x_shape[-1]))
    kwargs = dict(strides=strides, padding=padding, dilation_rate=dilation)
    args, _ = plan_conv_transpose(x.shape, w.shape, **kwargs)
    got = numpy_backend.conv_transpose(x, w, args, algorithm="winograd")
    np.testing.assert_allclose(got, reference.conv_transpose_loops(x, w, **kwargs),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "filters", "prepared", "chosen"), [
    ((8, 2000, 32), 3, 1, 32, True, True),  # estimates 0.63 with 2-D's transform cost, 1.14
    ((1, 2000, 32), 5, 1, 32, True, True),
    ((8, 256, 32), 8, 4, 32, True, True),
    ((1, 200, 512), 16, 8, 256, False, False),  # melgan_up: its kernel transform
    ((8, 512, 256), 2, 2, 128, True, False),  # one tap per phase: nothing to save
    ((1, 500, 256), 16, 8, 128, False, False),
])
def test_1d_tiles_cost_less_to_transform(x_shape, kernel, strides, filters, prepared, chosen):
    args, _ = plan_conv_transpose(x_shape, (kernel, filters, x_shape[-1]), strides=strides,
                                  padding="same")
    plans = args.axis_plans(x_shape[1:-1])
    algorithm = numpy_backend.choose_algorithm(plans, x_shape[-1], filters, x_shape[0],
                                               prepared=prepared)
    assert (algorithm == "winograd") is (chosen and _fused.available())


@pytest.mark.parametrize("dilation", [1, 2, 3, 4])
@pytest.mark.parametrize("strides", range(1, 9))
@pytest.mark.parametrize("kernel", range(1, 9))
def test_one_tap_phases_as_the_phases_say(kernel, strides, dilation):
    plan = axis_plan(9, kernel, strides, "valid", None, dilation)
    every_phase = all(len(plan.phase_taps(phase)) <= 1 for phase in range(strides))
    assert numpy_backend._one_tap_phases((plan,)) is every_phase


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "filters", "packed_only"), [
    ((16, 7, 7, 128), 5, 2, 64, False),  # dcgan_s2: estimate 0.98
    ((4, 8, 8, 256), 4, 2, 128, False),  # 1.30, measured 1.90x slower with Winograd
    ((4, 200, 128), 4, 2, 64, False),  # 1-D: 1.37, measured 1.12-1.20x
    ((4, 32, 32, 128), 4, 2, 64, True),  # 1.60
    ((1, 200, 512), 16, 8, 256, True),  # melgan_up: 1.58
    ((8, 16, 16, 64), 4, 2, 64, True),  # as many channels as filters: 0.99
    ((16, 7, 7, 256), 5, 1, 128, True),  # stride 1 (dcgan_s1): 1.04
])
@pytest.mark.parametrize("small_gemm", [True, False])
def test_strided_narrowing_calls_need_a_larger_gain_without_small_gemm_kernels(
        monkeypatch, x_shape, kernel, strides, filters, packed_only, small_gemm):
    """On OpenBLAS's packed kernels (AVX2), :data:`WINOGRAD_MIN_GAIN_NARROWING` applies to
    strided calls with more channels than filters; elsewhere every shape here is Winograd's."""
    monkeypatch.setattr(_threads, "small_gemm", lambda: small_gemm)
    rank = len(x_shape) - 2
    args, _ = plan_conv_transpose(x_shape, (*(kernel,) * rank, filters, x_shape[-1]),
                                  strides=strides, padding="same")
    plans = args.axis_plans(x_shape[1:-1])
    chosen = numpy_backend.choose_algorithm(plans, x_shape[-1], filters, x_shape[0],
                                            prepared=True)
    assert (chosen == "winograd") is ((small_gemm or packed_only) and _fused.available())


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "filters", "bound"), [
    ((1, 8, 8, 512), 4, 2, 256, True),  # 4 tiles of a 72 MiB transformed kernel
    ((1, 16, 512), 16, 8, 256, True),  # MelGAN's upsampler on a 16-step chunk: 4 tiles, 24 MiB
    ((1, 64, 512), 16, 8, 256, False),  # 13 tiles
    ((1, 16, 512), 8, 4, 256, False),  # 12 MiB
    ((1, 16, 256), 8, 4, 128, False),  # 3 MiB: in cache
])
@pytest.mark.usefixtures("small_gemm_kernels")
def test_few_tiles_of_a_large_transformed_kernel_leave_winograd(
        x_shape, kernel, strides, filters, bound):
    rank = len(x_shape) - 2
    args, _ = plan_conv_transpose(x_shape, (*(kernel,) * rank, filters, x_shape[-1]),
                                  strides=strides, padding="same")
    plans = args.axis_plans(x_shape[1:-1])
    assert _winograd.kernel_bound(plans, x_shape[-1], filters, x_shape[0]) is bound
    chosen = numpy_backend.choose_algorithm(plans, x_shape[-1], filters, x_shape[0],
                                            prepared=True)
    assert (chosen == "winograd") is (not bound and _fused.available())


@pytest.mark.parametrize(("x_shape", "kernel", "strides"), [
    ((2, 16, 16, 32), 3, 1),
    ((1, 20, 20, 16), 4, 2),
    ((2, 12, 12, 16), 5, 1),
    ((1, 6, 6, 6, 8), 3, 1),
    ((1, 10, 10, 10, 48), 3, 1),  # 3-D: six-input tiles erred by 2.4e-5 here
    ((1, 12, 12, 12, 96), 4, 2),  # and by 4.7e-5 here (four-input: 5e-7)
])
def test_float32_error_stays_near_the_direct_sum(x_shape, kernel, strides):
    """Largest error at most 2e-5 of the largest output (the direct GEMMs: about 3e-7;
    measured on the benchmark's float32 cases: 9e-6 for 3x3 stride-1 "same")."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    rank = len(x_shape) - 2
    w = (rng.standard_normal((*(kernel,) * rank, 24, x_shape[-1]))
         / np.sqrt(kernel**rank * x_shape[-1])).astype(np.float32)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=strides, padding="same")
    got = numpy_backend.conv_transpose(x, w, args, algorithm="winograd")
    expected = reference.conv_transpose_loops(x.astype(np.float64), w.astype(np.float64),
                                              strides=strides, padding="same")
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 2e-5 * np.abs(expected).max()


@pytest.mark.skipif(not _fused.available(), reason="Winograd's tiles need numba")
@pytest.mark.parametrize("where", ["inputs", "kernel"])
def test_inf_and_nan_reach_only_the_outputs_they_touch(where):
    """Winograd's tiles mix neighbouring values: an inf and a NaN in the inputs of this
    layer-like call (prepared kernel, Winograd chosen) made 1,536 outputs non-finite where
    576 are, in the kernel 1,024 where 960 are. Such calls now take another algorithm,
    whose outputs are non-finite exactly where the direct loops' are, and equal elsewhere."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 16, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 32)) / 17).astype(np.float32)
    args, _ = plan_conv_transpose(x.shape, w.shape, padding="same")
    plans = args.axis_plans(x.shape[1:-1])
    assert numpy_backend.choose_algorithm(plans, 32, 32, 2, prepared=True) == "winograd"
    changed = x if where == "inputs" else w
    changed[0, 1, 7, 3], changed[1, 2, 9, 10] = np.inf, np.nan
    kernel = PreparedKernel(w)
    for _ in range(2):  # the second call asks the kernel's kept answer
        got = numpy_backend.conv_transpose(x, kernel, args)
        expected = reference.conv_transpose_loops(x.astype(np.float64), w.astype(np.float64),
                                                  padding="same")
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize(("kernel_size", "strides"), [((5, 3), (1, 2)), ((4, 4, 4), (2, 2, 2)),
                                                        ((6,), (2,))])
def test_transformed_taps_are_g_times_the_taps(monkeypatch, dtype, split, kernel_size, strides):
    """Each member's taps transformed along every axis (``G g G^T``), computed in the kernel's
    dtype whether the filters are shared out among workers (each part a strided slice of the
    group's array) or not."""
    if split:
        monkeypatch.setattr(_winograd, "KERNEL_SPLIT_TAPS", 1)
    rng = np.random.default_rng(5)
    rank = len(kernel_size)
    kernel = rng.standard_normal((*kernel_size, 5, 3)).astype(dtype)
    args, _ = plan_conv_transpose((1, *(9,) * rank, 3), kernel.shape, strides=strides,
                                  padding="same")
    groups = _winograd.tile_groups(args.axis_plans((9,) * rank))
    kernel3 = kernel.reshape(*_winograd._on_three_axes(kernel_size, 1), 5, 3)
    got = _winograd._transformed_kernels(kernel3, groups, pieces=2)
    for members, group in zip(groups, got):
        assert group.dtype == dtype
        for grids, transformed in zip(members, group):
            expected = kernel3.astype(np.float64)[np.ix_(*(g.taps for g in grids))]
            for axis, grid in enumerate(grids):
                g = _winograd.transforms(grid.outputs, len(grid.taps))[1]
                expected = np.moveaxis(np.tensordot(g, expected, axes=(1, axis)), 0, axis)
            expected = expected.reshape(-1, 5, 3).swapaxes(1, 2)
            tolerance = 1e-6 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(transformed, expected, rtol=0,
                                       atol=tolerance * np.abs(expected).max())


def _plans(x_shape, kernel, strides, padding="same"):
    rank = len(x_shape) - 2
    args, _ = plan_conv_transpose(x_shape, (*(kernel,) * rank, 64, x_shape[-1]),
                                  strides=strides, padding=padding)
    return args.axis_plans(x_shape[1:-1])


@pytest.mark.parametrize(("x_shape", "kernel", "strides", "expected"), [
    ((8, 32, 32, 64), 3, 1, "winograd"),  # 3x3 stride 1: 4x4 tiles
    ((4, 64, 64, 64), 4, 2, "winograd"),  # kernel 4 stride 2: 2x2 taps per phase, 5x5 tiles
    ((8, 32, 32, 64), 5, 2, "winograd"),  # kernel 5 stride 2: 3x3 and 2x2 taps, 4x4 and 5x5
    ((16, 7, 7, 64), 5, 1, None),  # 7x7 images: tiles of 2 cut 8 outputs, kernel transform
    ((8, 32, 32, 64), 3, 2, None),  # phases of 2 and 1 taps
    ((1, 16, 16, 16, 64), 3, 2, None),
    ((2, 16, 16, 16, 64), 3, 1, "winograd"),  # 3-D in tiles of four inputs: 0.70x
    ((16, 256, 128), 3, 1, "winograd"),  # 1-D: 0.67x
    ((1, 200, 512), 16, 8, None),  # MelGAN: the kernel transform outweighs one sample
])
def test_winograd_rule(monkeypatch, x_shape, kernel, strides, expected):
    plans = _plans(x_shape, kernel, strides)
    channels, batch = x_shape[-1], x_shape[0]
    chosen = numpy_backend.choose_algorithm(plans, channels, 64, batch)
    if _fused.available():
        assert (chosen == "winograd") == (expected == "winograd")
    assert numpy_backend.choose_algorithm(plans, channels, 64, batch,
                                          dtype=np.dtype(np.float64)) != "winograd"
    monkeypatch.setattr(_fused, "compiled", lambda loop: None)
    assert numpy_backend.choose_algorithm(plans, channels, 64, batch) != "winograd"


@pytest.mark.parametrize(("inputs", "channels", "filters", "small_gemm", "dtype", "expected"), [
    (36, 256, 128, True, np.float32, 30),  # DCGAN 5x5 stride 1: 30 x 256 x 128 <= 10^6
    (36, 256, 128, False, np.float32, 256),  # no small-matrix kernels: the byte rule
    (36, 256, 128, True, np.float64, 256),  # measured for float32 only
    (64, 128, 128, True, np.float32, 61),  # 3-D tiles of 4 x 4 x 4
    (36, 512, 512, True, np.float32, 256),  # 3 tiles would fit: fewer than 8
    (36, 32, 32, True, np.float32, 256),  # 976 would fit: more than the byte rule's 256
    (6, 256, 128, True, np.float32, 256),  # 1-D: six GEMMs of 10^6 are too little per chunk
])
def test_chunks_fit_small_gemms_where_they_pay(monkeypatch, inputs, channels, filters, small_gemm,
                                               dtype, expected):
    monkeypatch.setattr(_threads, "small_gemm", lambda: small_gemm)
    assert _winograd.chunk_tiles(inputs, channels, filters, np.dtype(dtype)) == expected


def test_small_gemm_chunks_give_the_same_values(monkeypatch):
    """With chunks cut for small GEMMs (here 8 tiles of 32 x 64 channels, one worker),
    every tile is still transformed and written once."""
    monkeypatch.setattr(_threads, "small_gemm", lambda: True)
    monkeypatch.setattr(_threads, "workers", lambda: 1)
    monkeypatch.setattr(_winograd, "SMALL_GEMM_MACS", 8 * 64 * 32)
    monkeypatch.setattr(_winograd, "SMALL_CHUNK_MIN_MACS", 0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 7, 64)).astype(np.float32)
    w = rng.standard_normal((5, 5, 32, 64)).astype(np.float32)
    kwargs = dict(strides=1, padding="same")
    args, _ = plan_conv_transpose(x.shape, w.shape, **kwargs)
    plans = args.axis_plans(x.shape[1:-1])
    out = np.full((2, 7, 7, 32), np.nan, np.float32)
    counts = [task.args[6] for task in _winograd.tasks(x, w, plans, out, 1)]
    assert counts == [8, 8, 8, 8]  # 2 samples x 4 x 4 tiles of two outputs
    got = numpy_backend.conv_transpose(x, w, args, algorithm="winograd")
    want = reference.conv_transpose_loops(x.astype(np.float64), w.astype(np.float64), **kwargs)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())


@pytest.mark.parametrize(("kernel_shape", "tiles", "pieces", "expected"), [
    ((4, 36, 512, 256), 32, 2, 2),  # a 75 MB transformed kernel, 32 tiles: members split
    ((4, 36, 512, 256), 512, 2, 1),  # enough tiles for a full chunk per worker
    ((4, 36, 256, 128), 32, 2, 1),  # 19 MB: the kernel stays in cache
    ((4, 36, 256, 192), 32, 2, 2),  # 27 MB: past three quarters of the 32 MiB cache
    ((8, 6, 512, 256), 40, 2, 2),  # 24 MB: MelGAN's 1-D upsampler, eight phases
    ((1, 36, 1024, 1024), 32, 2, 1),  # one member
    ((4, 36, 512, 256), 32, 1, 1),  # one worker
    ((4, 36, 512, 256), 32, 4, 4),
    ((2, 36, 512, 256), 32, 4, 1),  # fewer members than workers
])
def test_members_are_shared_out_when_their_kernel_is_past_the_cache(
        kernel_shape, tiles, pieces, expected):
    assert _winograd.member_parts(kernel_shape, tiles, np.dtype(np.float32), pieces) == expected


@pytest.mark.parametrize(("x_shape", "kernel", "strides"), [
    ((2, 3, 5, 6), (4, 4, 5, 6), 2),  # four members of a 4x4 kernel, stride 2
    ((1, 3, 4, 3, 4), (4, 4, 4, 3, 4), 2),  # eight members in 3-D
])
def test_members_shared_out_give_the_same_values(monkeypatch, x_shape, kernel, strides):
    """With the byte limit at zero every group of several members is cut by members: each
    task holds some members' transformed kernels, all tiles, and writes only their outputs."""
    monkeypatch.setattr(_winograd, "MEMBER_SPLIT_MIN_BYTES", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(kernel).astype(np.float32)
    kwargs = dict(strides=strides, padding="same")
    args, _ = plan_conv_transpose(x.shape, w.shape, **kwargs)
    plans = args.axis_plans(x.shape[1:-1])
    out = np.full((x.shape[0], *(p.output_length for p in plans), w.shape[-2]), np.nan, np.float32)
    tasks = list(_winograd.tasks(x, w, plans, out, 2))
    members = len(_winograd.tile_groups(plans)[0])
    assert [task.args[1].shape[0] for task in tasks] == [members // 2] * 2  # two halves
    _threads.run(tasks)
    want = reference.conv_transpose_loops(x.astype(np.float64), w.astype(np.float64), **kwargs)
    np.testing.assert_allclose(out, want, rtol=0, atol=2e-5 * np.abs(want).max())
