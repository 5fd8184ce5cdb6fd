"""Both benchmark programs' sampling: rotated rounds, and a pause and warm-up per sample."""

from __future__ import annotations

import doctest

from benchmarks import pacing


def test_the_module_examples_hold():
    assert doctest.testmod(pacing).failed == 0


def test_rounds_rotate_and_none_are_made_without_keys():
    assert list(pacing.rotated_rounds(["a", "b"], 3)) == ["a", "b", "b", "a", "a", "b"]
    assert list(pacing.rotated_rounds([], 3)) == []


def test_a_sample_pauses_then_warms_up_before_its_timed_calls(monkeypatch):
    events = []
    monkeypatch.setattr(pacing.time, "sleep", lambda seconds: events.append(("sleep", seconds)))

    def call():
        events.append("call")

    seconds = pacing.paced_sample(call, 3, pacing.Pacing(settle_seconds=0.5, warm_seconds=0.0))
    assert events == [("sleep", 0.5), "call", "call", "call", "call"]  # one warm-up call
    assert seconds >= 0.0
