"""The training benchmark runs every case at tiny size with its correctness check (no timing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import torch_train  # noqa: E402


def test_every_tiny_case_checks_and_reports(tmp_path, capsys):
    out = tmp_path / "records.json"
    table = tmp_path / "table.md"
    records = torch_train.main(["--tiny", "--repeat", "1", "--impl", "convt", "--impl",
                                "convt_keras", "--impl", "torch", "--json", str(out),
                                "--markdown", str(table)])
    assert {r["case"] for r in records} == set(torch_train.CASES)
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in records)
    assert {r["mode"] for r in records} == {"train", "forward"}
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] and len(saved["records"]) == len(records)
    assert "vs torch" in capsys.readouterr().out
    lines = table.read_text().splitlines()
    assert lines[0] == ("| case | convt forward | convt_keras forward | torch forward "
                        "| convt train | convt_keras train | torch train |")
    assert len(lines) == 2 + len(torch_train.CASES) + 2
    assert lines[-1].startswith("Measured on ") and (" threads; during the run, steal time "
                                                      in lines[-1])
    assert saved["machine"]["cpu"] in lines[-1] and saved["machine"]["torch_cpu"] in lines[-1]
    assert "stolen_share" in saved
    assert saved["pacing"] == {"settle_seconds": 0.0, "warm_seconds": 0.0}  # --tiny: no pauses
    assert lines[2].startswith("| keras_doc | ") and lines[2].count("x |") == 4


def test_absent_frameworks_are_reported(monkeypatch):
    def absent(*_):
        raise ImportError("not installed")

    monkeypatch.setitem(torch_train.BUILDERS, "jax", absent)
    case = torch_train.CASES["conv_ae"].tiny()
    records = torch_train.run_case(case, ["jax"], ["train"], 1, "float64")
    assert records == [dict(case=case.name, impl="jax", mode="train", status="absent")]


def test_a_peer_that_fails_is_reported_and_convt_failing_stops_the_run(monkeypatch):
    def results():
        raise ValueError("no dilation on this CPU\nsecond line")

    def failing(*_):
        return torch_train.Runner(None, None, results)

    case = torch_train.CASES["dilated"].tiny()
    monkeypatch.setitem(torch_train.BUILDERS, "tensorflow", failing)
    records = torch_train.run_case(case, ["tensorflow"], ["train", "forward"], 1, "float64")
    assert [r["status"] for r in records] == ["failed: ValueError: no dilation on this CPU"] * 2
    assert "| failed |" in torch_train.markdown_table(records)
    monkeypatch.setitem(torch_train.BUILDERS, "convt", failing)
    with pytest.raises(ValueError, match="no dilation"):
        torch_train.run_case(case, ["convt"], ["train"], 1, "float64")


def test_a_wrong_gradient_is_caught():
    case = torch_train.CASES["outpad"].tiny()
    x, w = case.arrays(dtype="float64")
    g = np.ones(case.output_shape)
    reference = torch_train._torch(case, x, w, g)
    wrong = torch_train._torch(case, x, w * 2, g)
    with pytest.raises(AssertionError, match="differs"):
        torch_train.check(reference, wrong, 1e-9)


def test_each_round_starts_one_implementation_later(monkeypatch):
    """Whichever implementation is sampled first after the last one of a round was measured
    to pay for that one's spinning threads; rotating the order spreads that cost."""
    started = []

    def sample(call, calls, pacing):
        started.append(call())
        return 1.0

    monkeypatch.setattr(torch_train, "paced_sample", sample)
    calls = {name: (lambda name=name: name) for name in ("a", "b", "c")}
    medians = torch_train._interleaved_medians(calls, 4, torch_train.NO_PACING)
    assert medians == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert started == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
