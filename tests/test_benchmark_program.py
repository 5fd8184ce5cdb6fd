"""The benchmark program runs every case at tiny size and verifies it (timings are not tested)."""

from __future__ import annotations

import importlib.util
import json

from benchmarks import conv_transpose, peers
from benchmarks.cases import CASES

INSTALLED = ["convt", "convt_prepared"] + [
    name for name, module in [("torch", "torch"), ("jax", "jax"), ("onnxruntime", "onnxruntime")]
    if importlib.util.find_spec(module) is not None
]


def test_tiny_run_verifies_every_case(tmp_path):
    report_path = tmp_path / "report.json"
    markdown_path = tmp_path / "table.md"
    argv = ["--tiny", "--repeat", "1", "--json", str(report_path), "--markdown", str(markdown_path)]
    for name in INSTALLED:
        argv += ["--impl", name]
    assert conv_transpose.main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["summary"]["cases_verified"] == len(CASES) == 15
    assert [r["case"] for r in report["results"]] == list(CASES)
    assert report["summary"]["memory_within_target"]
    assert len(report["memory_by_batch"]) == 6
    for result in report["results"]:
        assert result["verified"]
        assert result["peak_extra_mib"] is not None
        assert result["timings"]["convt"]["gemm_fraction"] > 0
        for name in INSTALLED:
            assert result["timings"][name]["status"] == "ok", (result["case"], name)
    table = markdown_path.read_text()
    assert all(f"| {name} |" in table for name in CASES)
    assert "the op given a kernel prepared before timing (`convt_prepared`" in table


def test_convt_prepared_is_not_a_peer():
    """convt's prepared-kernel row is its own, never the "best peer" convt is compared with."""
    result = conv_transpose.time_case(CASES["keras_doc"].tiny(), ["convt", "convt_prepared"], 1)
    assert result.best_peer() is None and result.ratio() is None
    assert result.timings["convt_prepared"].status == "ok"


def test_a_wrong_peer_is_reported_as_mismatch(monkeypatch):
    """The correctness check can fail: a peer returning wrong values is not timed."""
    def wrong(case, x, w):
        return peers.Runner(lambda: peers.ops.conv_transpose(x, w, **case.op_kwargs) + 1,
                            lambda out: out)

    monkeypatch.setitem(peers.IMPLEMENTATIONS, "convt", wrong)
    result = conv_transpose.time_case(CASES["dcgan_s2"].tiny(), ["convt"], 1)
    assert result.timings["convt"].status.startswith("mismatch")
    assert not result.verified
    assert result.timings["convt"].median_ms is None


def test_missing_framework_is_absent(monkeypatch):
    def missing(case, x, w):
        raise ImportError("No module named 'nothing'")

    monkeypatch.setitem(peers.IMPLEMENTATIONS, "torch", missing)
    runner, status = peers.build("torch", CASES["keras_doc"].tiny(), None, None)
    assert runner is None and status == "absent"
