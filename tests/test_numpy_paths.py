"""Each NumPy algorithm, forced on the same cases, against the direct-loop reference.

``convt.ops`` lets the backend choose; here every algorithm has to compute
every geometry (also the ones it would never be chosen for), whole and in
chunks over the batch and over rows. These tests run the NumPy passes, with
the compiled loops switched off; ``test_fused.py`` runs those loops.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt._shapes import axis_plan, plan_conv_transpose
from convt.backends import _threads
from convt.backends import numpy as numpy_backend
from tests import reference

ALGORITHMS = sorted(numpy_backend.ALGORITHMS)


@pytest.fixture(autouse=True)
def _numpy_passes(monkeypatch):
    """Overlap-add's NumPy passes, not the compiled loops that replace them when numba is
    installed (as ``make test`` installs it)."""
    monkeypatch.setattr(numpy_backend, "ACCELERATE", False)

# (input spatial, kernel, strides, padding, output_padding, dilation)
GEOMETRIES = {
    "1d_stride_above_kernel": ((5,), (2,), (3,), "valid", None, (1,)),
    "1d_same_big_kernel": ((4,), (8,), (2,), "same", None, (1,)),
    "1d_dilated_strided": ((5,), (3,), (2,), "same", None, (2,)),
    "1d_dilation_above_stride": ((4,), (3,), (2,), "valid", (1,), (3,)),
    "1d_output_padding_beyond": ((3,), (2,), (2,), "valid", (4,), (1,)),
    "2d_kernel_equals_stride": ((3, 4), (2, 2), (2, 2), "valid", None, (1, 1)),
    "2d_kernel_equals_stride_same_op": ((3, 4), (2, 3), (2, 3), "same", (0, 1), (1, 1)),
    "2d_same": ((4, 3), (3, 3), (2, 2), "same", None, (1, 1)),
    "2d_output_padding": ((3, 3), (3, 3), (2, 2), "valid", (1, 1), (1, 1)),
    "2d_stride1_same": ((4, 5), (3, 3), (1, 1), "same", None, (1, 1)),
    "2d_dilated": ((5, 4), (3, 2), (1, 1), "valid", None, (2, 3)),
    "2d_mixed_axes": ((3, 4), (5, 1), (3, 1), "same", (2, 0), (1, 1)),
    "2d_stride_above_kernel": ((3, 2), (2, 3), (4, 5), "same", None, (1, 1)),
    # rows between two inputs' taps that no input reaches, at every cut between row chunks
    "2d_stride_above_kernel_output_padding": ((6, 3), (2, 2), (3, 3), "same", (2, 1), (1, 1)),
    "3d_same": ((2, 3, 2), (3, 2, 3), (2, 2, 1), "same", None, (1, 1, 1)),
    "3d_kernel_equals_stride": ((2, 2, 3), (2, 2, 2), (2, 2, 2), "valid", None, (1, 1, 1)),
    "1d_kernel_two_strides": ((5,), (16,), (8,), "same", None, (1,)),
    "2d_even_kernel_dilated": ((4, 3), (4, 3), (2, 1), "same", None, (2, 1)),
    "3d_even_kernel_output_padding": ((2, 3, 2), (4, 3, 2), (3, 2, 1), "valid", (1, 0, 0),
                                      (1, 1, 1)),
}


def _run(x, w, geometry, algorithm, data_format="channels_last"):
    _, kernel, strides, padding, output_padding, dilation = geometry
    kwargs = dict(strides=strides, padding=padding, output_padding=output_padding,
                  data_format=data_format, dilation_rate=dilation)
    args, shape = plan_conv_transpose(x.shape, w.shape, **kwargs)
    got = numpy_backend.conv_transpose(x, w, args, algorithm=algorithm)
    expected = reference.conv_transpose_loops(x, w, **kwargs)
    assert got.shape == expected.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def _arrays(geometry, batch=2, channels=3, filters=2, data_format="channels_last", seed=0):
    spatial, kernel = geometry[0], geometry[1]
    rng = np.random.default_rng(seed)
    x_shape = ((batch, *spatial, channels) if data_format == "channels_last"
               else (batch, channels, *spatial))
    return rng.standard_normal(x_shape), rng.standard_normal((*kernel, filters, channels))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("filters", [2, numpy_backend.PLANAR_MAX_FILTERS + 1])
@pytest.mark.parametrize("plane_max_adds", [0, 10**6])
@pytest.mark.parametrize("phase_max_segments", [0, 10**6])
def test_algorithm_matches_reference(monkeypatch, algorithm, name, data_format, filters,
                                     plane_max_adds, phase_max_segments):
    """Few filters and more filters (overlap-add lays its GEMM out differently), with the
    taps summed on a canvas and added plane by plane into the output; phases in whole
    axes (columns gathered with zeros) and in exact blocks (one strided view)."""
    monkeypatch.setattr(numpy_backend, "PLANE_MAX_ADDS", plane_max_adds)
    monkeypatch.setattr(numpy_backend, "PHASE_MAX_SEGMENTS", phase_max_segments)
    numpy_backend._phase_blocks.cache_clear()
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, filters=filters, data_format=data_format)
    _run(x, w, geometry, algorithm, data_format)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
@pytest.mark.parametrize("budget", [1, 200, 2000])
@pytest.mark.parametrize("plane_max_adds", [0, 10**6])
@pytest.mark.parametrize("phase_max_segments", [0, 10**6])
def test_chunked_algorithm_matches_reference(monkeypatch, algorithm, name, budget,
                                             plane_max_adds, phase_max_segments):
    """Budgets that force one row, a few rows, or a few samples per chunk."""
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(numpy_backend, "PLANE_MAX_ADDS", plane_max_adds)
    monkeypatch.setattr(numpy_backend, "PHASE_MAX_SEGMENTS", phase_max_segments)
    numpy_backend._phase_blocks.cache_clear()
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, batch=3, seed=1)
    _run(x, w, geometry, algorithm)


@pytest.mark.parametrize(
    "phase_max_segments,windows,gathers",
    [(numpy_backend.PHASE_MAX_SEGMENTS, True, True), (10**6, True, False)],
)
def test_phases_gather_exact_blocks_as_views_and_the_rest_with_zeros(
    monkeypatch, phase_max_segments, windows, gathers
):
    """Over the geometries, which column builders the phases use at each segment limit.

    Exact blocks read only inputs that exist, so with no limit nothing is zero-filled.
    """
    monkeypatch.setattr(numpy_backend, "PHASE_MAX_SEGMENTS", phase_max_segments)
    numpy_backend._phase_blocks.cache_clear()
    used = {"_windows": False, "_gather": False}
    for name in used:
        original = getattr(numpy_backend, name)
        monkeypatch.setattr(numpy_backend, name, lambda *a, _f=original, _n=name: (
            used.__setitem__(_n, True), _f(*a))[1])
    for geometry in GEOMETRIES.values():
        _run(*_arrays(geometry), geometry, "phases")
    numpy_backend._phase_blocks.cache_clear()
    assert used == {"_windows": windows, "_gather": gathers}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_read_only_arrays(algorithm):
    """The phases read the input through a view of its buffer; a read-only input is fine."""
    geometry = GEOMETRIES["2d_stride1_same"]
    x, w = _arrays(geometry)
    x.flags.writeable = w.flags.writeable = False
    _run(x, w, geometry, algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape", [(0, 4, 3, 2), (2, 0, 3, 2), (2, 4, 0, 2)])
def test_empty_inputs(algorithm, x_shape):
    geometry = GEOMETRIES["2d_same"]
    w = np.ones((*geometry[1], 5, 2))
    _run(np.zeros(x_shape), w, geometry, algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_keeps_float32(algorithm):
    geometry = GEOMETRIES["2d_same"]
    x, w = _arrays(geometry)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    got = numpy_backend.conv_transpose(x.astype("float32"), w.astype("float32"), args,
                                       algorithm=algorithm)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference.conv_transpose_loops(x, w, strides=2, padding="same"),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "batch,channels,filters,kernel,strides,expected",
    [
        (64, 64, 64, (3, 3), (2, 2), "phases"),
        (64, 64, 1, (5, 5), (2, 2), "scatter"),
        (64, 64, 64, (2, 2), (2, 2), "scatter"),
        (64, 64, 64, (2, 2), (2, 1), "phases"),
        (1, 16, 16, (3, 3), (2, 2), "scatter"),
        (64, 64, 32, (3, 3), (1, 1), "rows"),
        (64, 64, 32, (3, 3), (1, 2), "scatter"),
        (64, 64, 15, (3, 3), (1, 1), "scatter"),
        (64, 64, 33, (3, 3), (1, 1), "phases"),
        (1, 16, 16, (3, 3), (1, 1), "rows"),
        (64, 64, 64, (1, 1), (1, 1), "scatter"),
    ],
)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_choose_algorithm_rule(batch, channels, filters, kernel, strides, expected, padding):
    """Tiling, a channel ratio of 2 and a small call pick overlap-add, on a canvas or in tap
    rows (two or more spatial axes, stride 1, the first axis cropped, enough filters); the
    rest phases. "valid" crops nothing, so it never picks tap rows. (Without the compiled
    loops: with them, 2-D and 3-D shapes never go to phases, see test_fused.py.)"""
    args, _ = plan_conv_transpose((batch, 32, 32, channels), (*kernel, filters, channels),
                                  strides=strides, padding=padding)
    if padding == "valid" and expected == "rows":
        expected = "scatter"
    plans = args.axis_plans((32, 32))
    assert numpy_backend.choose_algorithm(plans, channels, filters, batch) == expected


@pytest.mark.parametrize("spatial,expected", [((500,), "scatter"), ((12, 12, 12), "rows")])
def test_tap_rows_need_two_spatial_axes(spatial, expected):
    """1-D inputs keep the canvas at stride 1 "same"; 3-D ones take tap rows like 2-D."""
    kernel = (3,) * len(spatial)
    args, _ = plan_conv_transpose((8, *spatial, 64), (*kernel, 32, 64), padding="same")
    plans = args.axis_plans(spatial)
    assert numpy_backend.choose_algorithm(plans, 64, 32, 8) == expected


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_correlation_padding_restates_keras_padding(name):
    """The padded-correlation view of each axis gives the reference's lengths and crops."""
    spatial, kernel, strides, padding, output_padding, dilation = GEOMETRIES[name]
    args, _ = plan_conv_transpose((1, *spatial, 1), (*kernel, 1, 1), strides=strides,
                                  padding=padding, output_padding=output_padding,
                                  dilation_rate=dilation)
    for axis, plan in enumerate(args.axis_plans(spatial)):
        left, right = plan.correlation_padding
        op = None if output_padding is None else output_padding[axis]
        k, s, d = kernel[axis], strides[axis], dilation[axis]
        effective = (k - 1) * d + 1
        assert (spatial[axis] - 1) * s + 1 + left + right - effective + 1 == reference.keras_length(
            spatial[axis], k, s, padding, op, d)
        assert effective - 1 - left == reference.keras_crop_left(k, s, padding, op, d)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), op=st.none() | st.integers(0, 5))
def test_phase_segments_are_exactly_the_taps_with_an_input(n, k, s, d, padding, op):
    """Every phase output lies in the segment listing exactly the taps that reach it from an
    existing input (counted by brute force from the reference's crop), or in none if none do."""
    plan = axis_plan(n, k, s, padding, op, d)
    crop = reference.keras_crop_left(k, s, padding, op, d)
    length = reference.keras_length(n, k, s, padding, op, d)
    for phase in range(s):
        segments = plan.phase_segments(phase)
        assert all(a < b <= c for (a, b, _), (c, _, _) in zip(segments, segments[1:]))
        for m, output in enumerate(range(phase, length, s)):
            reaching = sorted(j for j in range(k) for i in range(n)
                              if i * s + j * d - crop == output)
            inside = [taps for a, b, taps in segments if a <= m < b]
            assert [[j for j, _ in taps] for taps in inside] == ([reaching] if reaching else [])


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), op=st.none() | st.integers(0, 5),
       data=st.data())
def test_a_kernel_part_lands_its_taps_where_the_whole_kernel_does(n, k, s, d, padding, op, data):
    """Tap ``j`` of the part that starts at tap ``first`` reaches the inputs and outputs that tap
    ``first + j`` of the whole kernel reaches."""
    plan = axis_plan(n, k, s, padding, op, d)
    first = data.draw(st.integers(0, k - 1))
    stop = data.draw(st.integers(first + 1, k))
    part = plan.kernel_part(first, stop)
    assert part.kernel_size == stop - first
    for tap in range(first, stop):
        assert part.tap_reach(tap - first, 0, n) == plan.tap_reach(tap, 0, n)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), op=st.none() | st.integers(0, 5),
       data=st.data())
def test_tap_reach_is_exactly_the_inputs_landing_in_the_outputs(n, k, s, d, padding, op, data):
    """For any inputs ``start .. start + count - 1`` and output range (the whole window by
    default), the inputs that tap_reach lists are those whose tap lands there, brute-forced."""
    plan = axis_plan(n, k, s, padding, op, d)
    crop = reference.keras_crop_left(k, s, padding, op, d)
    length = reference.keras_length(n, k, s, padding, op, d)
    start = data.draw(st.integers(0, n - 1))
    count = data.draw(st.integers(0, n - start))
    low = data.draw(st.integers(0, length))
    outputs = data.draw(st.none() | st.just((low, data.draw(st.integers(low, length)))))
    low, high = outputs or (0, length)
    for tap in range(k):
        first, stop, output = plan.tap_reach(tap, start, count, outputs=outputs)
        landing = [i - start for i in range(start, start + count)
                   if low <= i * s + tap * d - crop < high]
        assert list(range(first, stop)) == landing
        if landing:
            assert output == (start + first) * s + tap * d - crop


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", ["2d_same", "1d_same_big_kernel", "3d_kernel_equals_stride",
                                  "2d_output_padding", "2d_stride1_same"])
@pytest.mark.parametrize("budget", [1, 300, 2**22])
@pytest.mark.parametrize("tap_split_max_pixels", [0, 10**6])
def test_worker_threads_give_the_same_values(monkeypatch, algorithm, name, budget,
                                             tap_split_max_pixels):
    """Chunks spread over three worker threads (row chunks overlap in the output)."""
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(numpy_backend, "TAP_SPLIT_MAX_PIXELS", tap_split_max_pixels)
    monkeypatch.setattr(numpy_backend, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_threads, "workers", lambda: 3)
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, batch=4, seed=2)
    _run(x, w, geometry, algorithm)


SPLIT_GEOMETRIES = sorted(
    name for name, (_, kernel, strides, _, _, dilation) in GEOMETRIES.items()
    if kernel[0] % 2 == 0 and (kernel, dilation) != (strides, (1,) * len(kernel))
)


@pytest.mark.parametrize("name", SPLIT_GEOMETRIES)
@pytest.mark.parametrize("filters", [2, numpy_backend.PLANAR_MAX_FILTERS + 1])
@pytest.mark.parametrize("plane_max_adds", [0, 10**6])
@pytest.mark.parametrize("budget", [1, 2**22])
def test_kernel_parts_on_two_workers_give_the_same_values(monkeypatch, name, filters,
                                                          plane_max_adds, budget):
    """Overlap-add with the first axis's taps shared by two workers, parts adding into the
    same outputs (also in row chunks, and for parts whose taps tile the output)."""
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(numpy_backend, "PLANE_MAX_ADDS", plane_max_adds)
    monkeypatch.setattr(numpy_backend, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, batch=3, filters=filters, seed=4)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=geometry[2], padding=geometry[3],
                                  output_padding=geometry[4], dilation_rate=geometry[5])
    plans = numpy_backend._axis_plans(args, geometry[0])
    assert numpy_backend._splits_taps(x.shape, w.shape, plans, 2)
    _run(x, w, geometry, "scatter")


@pytest.mark.parametrize(("kernel", "strides", "pixels", "workers", "split"), [
    ((16,), (8,), 200, 2, True),  # MelGAN's upsampler
    ((4, 4), (2, 2), 512, 2, True),
    ((4, 4), (2, 2), 513, 2, False),  # enough pixels for chunks of rows
    ((3, 3), (2, 2), 49, 2, False),  # parts of one and two taps would not balance
    ((2, 2), (2, 2), 49, 2, False),  # tiles: written straight into the output
    ((16,), (8,), 200, 1, False),
])
def test_kernel_parts_rule(kernel, strides, pixels, workers, split):
    x = np.zeros((1, pixels, *(1,) * (len(kernel) - 1), 8), np.float32)
    w = np.zeros((*kernel, 4, 8), np.float32)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=strides, padding="same")
    plans = numpy_backend._axis_plans(args, x.shape[1:-1])
    assert numpy_backend._splits_taps(x.shape, w.shape, plans, workers) is split


def test_without_blas_control_chunks_run_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(_threads, "openblas_controls", lambda: None)
    assert _threads.workers() == 1
    threads = []
    _threads.run([lambda: threads.append(threading.get_ident())] * 3)
    assert threads == [threading.get_ident()] * 3


@pytest.mark.skipif(_threads.openblas_controls() is None, reason="NumPy's BLAS is not OpenBLAS")
def test_the_calling_thread_works_beside_the_pool(monkeypatch):
    """Two tasks that wait for each other finish only if two threads run them at once."""
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    meeting = threading.Barrier(2, timeout=10)
    threads = []

    def meet():
        threads.append(threading.get_ident())
        meeting.wait()

    _threads.run([meet, meet])
    assert threading.get_ident() in threads and len(set(threads)) == 2


@pytest.mark.skipif(_threads.openblas_controls() is None, reason="NumPy's BLAS is not OpenBLAS")
def test_every_task_runs_when_one_fails(monkeypatch):
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    done = []

    def fails():
        raise ValueError("first task failed")

    with pytest.raises(ValueError, match="first task failed"):
        _threads.run([fails] + [lambda: done.append(1)] * 5)
    assert done == [1] * 5


@pytest.mark.skipif(_threads.openblas_controls() is None, reason="NumPy's BLAS is not OpenBLAS")
def test_blas_thread_count_is_restored_even_after_an_error():
    get, _ = _threads.openblas_controls()
    before = get()
    seen = []

    def fails():
        seen.append(get())
        raise RuntimeError("task failed")

    with pytest.raises(RuntimeError, match="task failed"):
        _threads.run([fails, fails])
    assert seen and set(seen) == {1}
    assert get() == before
    assert _threads.workers() == before


def test_scratch_is_reused_per_slot_and_released():
    first = _threads.scratch(0, (4, 8), np.dtype(np.float32))
    again = _threads.scratch(0, (2, 3), np.dtype(np.float64))
    other = _threads.scratch(1, (4, 8), np.dtype(np.float32))
    assert np.shares_memory(first, again) and not np.shares_memory(first, other)
    assert again.shape == (2, 3) and again.dtype == np.float64
    _threads.release_scratch()
    assert not np.shares_memory(first, _threads.scratch(0, (4, 8), np.dtype(np.float32)))


def test_scratch_beyond_the_kept_size_is_fresh(monkeypatch):
    monkeypatch.setattr(_threads, "SCRATCH_KEEP_BYTES", 16)
    first = _threads.scratch(0, (8,), np.dtype(np.float32))
    assert not np.shares_memory(first, _threads.scratch(0, (8,), np.dtype(np.float32)))


@pytest.mark.parametrize(("batch", "rows", "row_bytes", "pieces", "budget"), [
    (16, 7, 100, 2, 4200),   # 6 samples fit: 3 chunks of 6, 6, 4 become 4 of 4
    (8, 32, 100, 2, 3200),   # one sample per chunk already
    (5, 4, 10, 2, 10**6),    # small call: half of it per worker at most, 4 chunks of 1 or 2
    (1, 10, 100, 2, 300),    # rows: 4 chunks of 3, 3, 3, 1 become 4 of 2 or 3
    (2, 9, 50, 3, 200),      # rows, three workers
    (3, 2, 100, 1, 50),      # one row already beyond the budget
])
def test_chunks_cover_the_work_once_in_equal_shares(monkeypatch, batch, rows, row_bytes, pieces,
                                                    budget):
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
    chunks = list(numpy_backend._chunks(batch, rows, row_bytes, pieces))
    covered = np.zeros((batch, rows), int)
    for samples, row_slice in chunks:
        covered[samples, row_slice] += 1
    assert (covered == 1).all()
    whole_samples = all(r == slice(0, rows) for _, r in chunks)
    shares = [s.stop - s.start if whole_samples else r.stop - r.start for s, r in chunks]
    assert max(shares) - min(shares) <= 1
    assert len(chunks) % pieces == 0 or len(chunks) == batch * rows
    assert all((s.stop - s.start) * (r.stop - r.start) * row_bytes <= max(budget, row_bytes)
               for s, r in chunks)


def test_chunks_of_the_dcgan_batch_are_four_of_four(monkeypatch):
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", 4200)
    chunks = list(numpy_backend._chunks(16, 7, 100, 2))
    assert [(s.start, s.stop) for s, _ in chunks] == [(0, 4), (4, 8), (8, 12), (12, 16)]
