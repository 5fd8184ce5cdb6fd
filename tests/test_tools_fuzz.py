"""The fuzz tools run and report what they find (the fuzzes themselves are run by hand)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from convt.backends import _threads, _winograd
from convt.backends import numpy as numpy_backend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import fuzz_numpy_op  # noqa: E402
import fuzz_torch_op  # noqa: E402
import fuzzing  # noqa: E402


def test_torch_draws_are_repeatable_and_varied():
    assert fuzz_torch_op.draw(7) == fuzz_torch_op.draw(7)
    draws = [fuzz_torch_op.draw(seed) for seed in range(200)]
    assert {len(d["spatial"]) for d in draws} == {1, 2, 3}
    assert {d["layout"] for d in draws} == {"contiguous", "channels_last_memory", "sliced"}
    assert any(d["train"] for d in draws) and any(max(d["dilation_rate"]) > 1 for d in draws)
    assert {d["dtype"] for d in draws} == set(fuzz_torch_op.TOLERANCES)


def test_torch_draws_agree_with_the_references():
    pytest.importorskip("torch")
    assert [fuzz_torch_op.run_draw(seed) for seed in range(20)] == [None] * 20


def test_numpy_draws_are_repeatable_varied_and_bounded():
    assert fuzz_numpy_op.draw(7) == fuzz_numpy_op.draw(7)
    draws = [fuzz_numpy_op.draw(seed) for seed in range(300)]
    assert {len(d["spatial"]) for d in draws} == {1, 2, 3}
    assert {d["algorithm"] for d in draws} == set(fuzz_numpy_op.ALGORITHMS) == {
        None, "winograd", *numpy_backend.ALGORITHMS}  # a new algorithm is drawn too
    assert {d["kernel_use"] for d in draws} == {"plain", "prepared", "repeated", "changed"}
    assert {d["layout"] for d in draws} == {"contiguous", "sliced", "fortran"}
    assert {d["dtype"] for d in draws} == set(fuzz_numpy_op.TOLERANCES)
    assert {d["workers"] for d in draws} == {1, 2} and {d["threads"] for d in draws} == {1, 2}
    assert any(d["dtype"] != d["kernel_dtype"] for d in draws)
    assert all(d["dtype"] == d["kernel_dtype"] == "float32"
               for d in draws if d["algorithm"] == "winograd")
    assert all(d["threads"] == 1 for d in draws if d["kernel_use"] == "changed")
    for d in draws:
        macs = d["batch"] * d["channels"] * d["filters"] * math.prod(d["spatial"] + d["kernel"])
        assert macs <= fuzz_numpy_op.MAX_MACS


def test_numpy_draws_agree_with_the_reference():
    assert [fuzz_numpy_op.run_draw(seed) for seed in range(30)] == [None] * 30


def test_numpy_draws_report_an_error_raised_by_an_accepted_call(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("broken")

    monkeypatch.setattr(numpy_backend, "conv_transpose", broken)
    assert fuzz_numpy_op.run_draw(0).endswith(" raised ValueError('broken')")


def test_numpy_draws_poison_the_buffers_and_put_the_backend_back():
    import numpy as np

    before = _backend_state()
    args = {**fuzz_numpy_op.draw(0), "accelerate": not numpy_backend.ACCELERATE, "workers": 3,
            "memory_budget": 1024, "pool_always": True, "winograd_splits": True}
    with fuzz_numpy_op.configured(args):
        assert np.isnan(numpy_backend.uninitialized((3,), np.float32)).all()
        assert np.isnan(_threads.scratch(0, (3,), np.dtype(np.float32))).all()
        assert (numpy_backend.ACCELERATE, numpy_backend.MEMORY_BUDGET,
                numpy_backend.PARALLEL_MIN_MACS) == (args["accelerate"], 1024, 0)
        assert _winograd.MEMBER_SPLIT_MIN_BYTES == 0
        assert _winograd.CHUNK_BYTES == fuzz_numpy_op.WINOGRAD_SPLITS["CHUNK_BYTES"]
        assert _threads.workers() == (3 if _threads.openblas_controls() else 1)
    assert _backend_state() == before


def _backend_state() -> tuple:
    """What :func:`fuzz_numpy_op.configured` changes."""
    return (numpy_backend.ACCELERATE, numpy_backend.MEMORY_BUDGET,
            numpy_backend.PARALLEL_MIN_MACS, numpy_backend.uninitialized, _threads.scratch,
            _threads.workers(), *(getattr(_winograd, name)
                                  for name in fuzz_numpy_op.WINOGRAD_SPLITS))


def test_a_wrong_result_is_reported(capsys):
    fuzzing.worker(lambda seed: "the message" if seed == 3 else None, 2, 5)
    assert capsys.readouterr().out.splitlines() == [
        "start 2", "start 3", "wrong 3 the message", "start 4"]


def test_a_batch_that_dies_is_reported(capsys):
    assert fuzz_numpy_op.main(["--draws", "1", "--timeout", "0.001"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("died 0 {") and "(timed out)" in out
    assert out.splitlines()[-1] == "1 draws from seed 0: 0 wrong, 1 batches died"


@pytest.mark.parametrize("tool", [fuzz_numpy_op, fuzz_torch_op])
def test_a_clean_run_returns_zero(tool, capsys):
    if tool is fuzz_torch_op:
        pytest.importorskip("torch")
    assert tool.main(["--draws", "3", "--batch", "3"]) == 0
    assert capsys.readouterr().out == "3 draws from seed 0: 0 wrong, 0 batches died\n"
