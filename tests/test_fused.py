"""The compiled overlap-add (``backends/_fused.py``, optional numba) against the references.

Its loops run here twice: compiled by numba (when installed, as ``make test``
does) and as plain Python, so their logic is tested without numba too. Their
tables are checked against brute force.
"""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt._shapes import axis_plan
from convt.backends import _fused, _threads
from convt.backends import numpy as numpy_backend
from tests import reference
from tests.test_numpy_paths import GEOMETRIES, _arrays, _run

COMPILERS = {
    "python": lambda loop: loop,
    "numba": _fused.compiled,
}


def _fusing(name):
    """Geometries that the compiled loop takes with any number of filters: 2-D and 3-D, and
    1-D kernels of a few taps; no tiles."""
    _, kernel, strides, _, _, dilation = GEOMETRIES[name]
    tiles = kernel == strides and set(dilation) == {1}
    compiled = len(kernel) >= 2 or kernel[0] <= numpy_backend.COMPILED_1D_MAX_KERNEL
    return compiled and not tiles


FUSING = sorted(filter(_fusing, GEOMETRIES))


@pytest.fixture(params=sorted(COMPILERS))
def loops(request, monkeypatch):
    """The backend's compiled loops, as plain Python or compiled (skipped without numba).

    Returns the names of the loops the backend called.
    """
    compiler = COMPILERS[request.param]
    if compiler(_fused._overlap_add_loop) is None:
        pytest.skip("numba is not installed (the optional [fast] extra); the same loops "
                    "run as plain Python in the other parameter")
    monkeypatch.setattr(_fused, "compiled", compiler)
    monkeypatch.setattr(numpy_backend, "ACCELERATE", True)
    calls = []
    for name in ("overlap_add", "add_planes"):
        original = getattr(_fused, name)
        monkeypatch.setattr(_fused, name, functools.partial(_recorded, calls, name, original))
    return calls


def _recorded(calls, name, original, *args, **kwargs):
    calls.append(name)
    return original(*args, **kwargs)


@pytest.mark.parametrize("name", FUSING)
@pytest.mark.parametrize(("filters", "used"), [
    (1, "add_planes"), (3, "add_planes"), (5, "overlap_add"), (40, "overlap_add"),
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_compiled_loops_match_the_reference(loops, name, filters, used, data_format):
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, filters=filters, data_format=data_format)
    _run(x, w, geometry, "scatter", data_format)
    assert set(loops) == {used}


@pytest.mark.parametrize("name", FUSING)
@pytest.mark.parametrize("budget", [1, 300, 2**22])
@pytest.mark.parametrize("tap_split_max_pixels", [0, 10**6])
@pytest.mark.parametrize("filters", [2, 32])
def test_compiled_chunks_on_worker_threads(
        loops, monkeypatch, name, budget, tap_split_max_pixels, filters):
    """Row chunks store their own output rows and add the shared ones under the lock; kernel
    parts add everything under it; tap planes add everything under it."""
    monkeypatch.setattr(numpy_backend, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(numpy_backend, "TAP_SPLIT_MAX_PIXELS", tap_split_max_pixels)
    monkeypatch.setattr(numpy_backend, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    geometry = GEOMETRIES[name]
    x, w = _arrays(geometry, batch=3, filters=filters, seed=5)
    _run(x, w, geometry, "scatter")
    assert loops


@pytest.mark.parametrize(("kernel", "strides", "filters", "compiled_pass"), [
    ((3, 3), (2, 2), 64, "sums"),
    ((3, 3, 3), (2, 2, 2), 32, "sums"),
    ((3,), (2,), 64, "sums"),  # a 1-D kernel of a few taps
    ((8,), (4,), 16, None),  # 1-D keeps the canvas of a longer kernel
    ((8,), (4,), 8, "sums"),  # but not its 64 per-tap planes
    ((16,), (8,), 1, "planes"),
    ((3, 3), (1, 1), 64, "sums"),
    ((2, 2), (2, 2), 64, None),  # tiles
    ((3, 3), (2, 2), 3, "planes"),  # few filters
    ((5, 5, 5), (2, 2, 2), 1, "planes"),
    ((2, 2), (3, 3), 8, "sums"),  # 32 columns
    ((4,), (2,), 1, "planes"),
])
def test_compiled_pass_rule(kernel, strides, filters, compiled_pass):
    plans = axis_plan_tuple(kernel, strides)
    expected = compiled_pass if _fused.available() else None
    assert numpy_backend._compiled_pass(int(np.prod(kernel)) * filters, plans) == expected


def axis_plan_tuple(kernel, strides, dilation=1):
    return tuple(axis_plan(6, k, s, "same", None, dilation) for k, s in zip(kernel, strides))


@pytest.mark.parametrize(("kernel", "strides", "dilation", "filters", "compiled"), [
    ((3, 3), (1, 1), 2, 64, "scatter"),  # dilated
    ((3, 3), (1, 1), 1, 64, "scatter"),  # "same", under ROWS_MIN_FILTERS_COMPILED
    ((3, 3), (1, 1), 1, 128, "rows"),
    ((4, 4), (2, 2), 1, 64, "phases"),  # two taps per phase
    ((5, 5), (2, 2), 1, 64, "scatter"),
    ((4, 4), (2, 2), 2, 64, "scatter"),  # dilated
    ((3, 3, 3), (2, 2, 2), 2, 64, "scatter"),
    ((3,), (1,), 2, 64, "phases"),  # 1-D has no compiled loop
])
def test_with_the_compiled_loops_overlap_add_takes_2d_and_3d_shapes_from_phases(
        monkeypatch, kernel, strides, dilation, filters, compiled):
    monkeypatch.setattr(_fused, "compiled", lambda loop: loop)
    plans = axis_plan_tuple(kernel, strides, dilation)
    channels = filters  # phases' side of the channel rule, and not a small call
    batch = 2**25 // (channels * filters * int(np.prod([6 * k for k in kernel]))) + 1
    assert numpy_backend.multiply_adds(plans, channels, filters, batch) > 2**24
    assert numpy_backend.choose_algorithm(plans, channels, filters, batch) == compiled
    monkeypatch.setattr(_fused, "compiled", lambda loop: None)
    assert numpy_backend.choose_algorithm(plans, channels, filters, batch) == "phases"


def test_without_numba_the_canvas_adds(monkeypatch):
    monkeypatch.setattr(_fused, "compiled", lambda loop: None)
    canvases = []
    original = numpy_backend._overlap_add
    monkeypatch.setattr(numpy_backend, "_overlap_add",
                        lambda *args: canvases.append(1) or original(*args))
    geometry = GEOMETRIES["2d_same"]
    x, w = _arrays(geometry, filters=numpy_backend.PLANAR_MAX_FILTERS + 4)
    _run(x, w, geometry, "scatter")
    assert canvases


@pytest.mark.parametrize("accelerate", [True, False])
def test_plane_adds_read_tap_major_planes_when_compiled(monkeypatch, accelerate):
    """The compiled adds get contiguous planes (each input row's products in a row); NumPy's
    per-tap adds get the pixel-major GEMM's transposed view."""
    monkeypatch.setattr(numpy_backend, "ACCELERATE", accelerate)
    layouts = []
    original = numpy_backend._add_tap_planes

    def recording(out, planes, *args, **kwargs):
        layouts.append(planes.strides[-1] == planes.itemsize)
        return original(out, planes, *args, **kwargs)

    monkeypatch.setattr(numpy_backend, "_add_tap_planes", recording)
    geometry = GEOMETRIES["2d_same"]
    x, w = _arrays(geometry, filters=1)
    _run(x, w, geometry, "scatter")
    assert layouts and set(layouts) == {accelerate and _fused.available()}


def test_import_convt_does_not_import_numba():
    code = "import sys, convt; convt.ops; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _reached(n, k, s, d, padding, op, inputs):
    """{output: sorted (tap, input)} for the given inputs, brute-forced from the reference."""
    crop = reference.keras_crop_left(k, s, padding, op, d)
    length = reference.keras_length(n, k, s, padding, op, d)
    reached = {}
    for m in inputs:
        for tap in range(k):
            output = m * s + tap * d - crop
            if 0 <= output < length:
                reached.setdefault(output, []).append((tap, m))
    return {output: sorted(pairs) for output, pairs in reached.items()}


GEOMETRY = dict(n=st.integers(1, 9), k=st.integers(1, 7), s=st.integers(1, 4),
                d=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]),
                op=st.none() | st.integers(0, 5))


@settings(max_examples=300, deadline=None)
@given(**GEOMETRY, data=st.data())
def test_landing_table_lists_the_taps_landing_on_each_output(n, k, s, d, padding, op, data):
    start = data.draw(st.integers(0, n - 1))
    count = data.draw(st.integers(0, n - start))
    counts, taps, inputs, first = _fused.landing_table(axis_plan(n, k, s, padding, op, d),
                                                       start, count)
    reached = _reached(n, k, s, d, padding, op, range(start, start + count))
    listed = {first + o: sorted((int(t), start + int(i))
                                for t, i in zip(taps[o, :c], inputs[o, :c]))
              for o, c in enumerate(counts) if c}
    assert listed == reached
    if reached:
        assert (first, len(counts)) == (min(reached), max(reached) + 1 - min(reached))


@settings(max_examples=300, deadline=None)
@given(**GEOMETRY, data=st.data())
def test_own_outputs_are_reached_by_no_other_input(n, k, s, d, padding, op, data):
    """And the split of a chunk's table at them keeps every output once, in order."""
    start = data.draw(st.integers(0, n - 1))
    stop = data.draw(st.integers(start + 1, n))
    plan = axis_plan(n, k, s, padding, op, d)
    own = plan.own_outputs(start, stop)
    outside = _reached(n, k, s, d, padding, op, [*range(start), *range(stop, n)])
    assert not set(range(*own)) & set(outside)
    if start == 0 and stop == n:
        assert own == (0, plan.output_length)
    table = _fused.landing_table(plan, start, stop - start)
    mine, (before, after) = _fused.split_rows(table, own)
    pieces = [before, mine, after]
    assert [p[3] + len(p[0]) for p in pieces[:2]] == [p[3] for p in pieces[1:]]
    assert before[3] == table[3]
    assert np.array_equal(np.concatenate([p[0] for p in pieces]), table[0])
    assert set(range(mine[3], mine[3] + len(mine[0]))) <= set(range(*own))
