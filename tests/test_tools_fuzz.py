"""tools/fuzz_torch_op.py runs and reports what it finds (the fuzz itself is run by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

TOOL = Path(__file__).resolve().parent.parent / "tools" / "fuzz_torch_op.py"
spec = importlib.util.spec_from_file_location("fuzz_torch_op", TOOL)
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)


def test_draws_are_repeatable_and_varied():
    assert fuzz.draw(7) == fuzz.draw(7)
    draws = [fuzz.draw(seed) for seed in range(200)]
    assert {len(d["spatial"]) for d in draws} == {1, 2, 3}
    assert {d["layout"] for d in draws} == {"contiguous", "channels_last_memory", "sliced"}
    assert any(d["train"] for d in draws) and any(max(d["dilation_rate"]) > 1 for d in draws)
    assert {d["dtype"] for d in draws} == set(fuzz.TOLERANCES)


def test_draws_agree_with_the_references():
    assert [fuzz.run_draw(seed) for seed in range(20)] == [None] * 20


def test_a_wrong_result_is_reported(monkeypatch, capsys):
    monkeypatch.setattr(fuzz, "run_draw", lambda seed: "the message" if seed == 3 else None)
    fuzz.worker(2, 5)
    assert capsys.readouterr().out.splitlines() == [
        "start 2", "start 3", "wrong 3 the message", "start 4"]


def test_a_batch_that_dies_is_reported(capsys):
    assert fuzz.main(["--draws", "1", "--timeout", "0.001"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("died 0 {") and "(timed out)" in out
    assert out.splitlines()[-1] == "1 draws from seed 0: 0 wrong, 1 batches died"


def test_a_clean_run_returns_zero(capsys):
    assert fuzz.main(["--draws", "3", "--batch", "3"]) == 0
    assert capsys.readouterr().out == "3 draws from seed 0: 0 wrong, 0 batches died\n"
