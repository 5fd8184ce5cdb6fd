"""The benchmark program runs every case at tiny size and verifies it (timings are not tested)."""

from __future__ import annotations

import doctest
import importlib.util
import json

import numpy as np
import pytest

from benchmarks import conv_transpose, cpu, peers, stolen_time
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
    assert "; steal time " in table


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


@pytest.mark.parametrize("case", ["dcgan_s2", "unet_same"])  # direct loops; spot checks
def test_a_wrong_reference_times_nothing(monkeypatch, case):
    """convt's float64 result is the reference, so it is itself checked independently: at full
    size too (unet_same is past the direct loops' limit), and a failure times no one."""
    real = conv_transpose.ops.conv_transpose

    def off_by_one(x, w, **kwargs):
        out = real(x, w, **kwargs)
        return out + 1 if out.dtype == np.float64 else out

    monkeypatch.setattr(conv_transpose.ops, "conv_transpose", off_by_one)
    monkeypatch.setattr(conv_transpose, "SPOT_CHECKS", 8)
    result = conv_transpose.time_case(CASES[case] if case == "unet_same" else CASES[case].tiny(),
                                      ["convt", "convt_prepared"], 1)
    assert not result.verified
    for timing in result.timings.values():
        assert timing.status.startswith("unverified: convt's float64 reference failed its "
                                        "direct check (max error")
        assert timing.median_ms is None


def test_missing_framework_is_absent(monkeypatch):
    def missing(case, x, w):
        raise ImportError("No module named 'nothing'")

    monkeypatch.setitem(peers.IMPLEMENTATIONS, "torch", missing)
    runner, status = peers.build("torch", CASES["keras_doc"].tiny(), None, None)
    assert runner is None and status == "absent"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeat", "0"], "argument --repeat: must be at least 1. Received: 0"),
        (["--json", "missing/report.json"], "--json is in a directory that does not exist"),
        (["--markdown", "."], "--markdown names a directory. Received: --markdown='.'"),
    ],
)
def test_bad_arguments_are_refused_before_the_run(capsys, argv, message):
    with pytest.raises(SystemExit):
        conv_transpose.main(["--tiny", "--case", "keras_doc", *argv])
    assert message in capsys.readouterr().err


def test_tiny_report_says_how_it_was_paced(tmp_path):
    markdown = tmp_path / "table.md"
    argv = ["--tiny", "--repeat", "1", "--case", "keras_doc", "--impl", "convt",
            "--markdown", str(markdown)]
    assert conv_transpose.main(argv) == 0
    table = markdown.read_text()
    assert "after a 0 s pause (so no thread pool still spins) and 0 s of warm-up" in table
    assert "(the tiny sizes CI runs to check every value; these times compare nothing)" in table


@pytest.mark.parametrize("stat_text, expected", [
    ("cpu  10 0 5 80 0 0 0 5 0 0\ncpu0 5 0 2 40 0 0 0 3 0 0\n", (5, 100)),
    ("cpu  1 2 3 4 5 6 7\n", None),  # a kernel that does not count steal time
    ("intr 5 0\n", None),
    ("", None),
])
def test_steal_time_is_read_from_the_first_line_of_proc_stat(stat_text, expected):
    assert stolen_time.counters(stat_text) == expected


@pytest.mark.parametrize("before, after, expected", [
    ((5, 100), (55, 300), 0.25),
    ((5, 100), (5, 100), None),  # no tick between the readings
    (None, (5, 100), None),
])
def test_stolen_share_and_its_clause(before, after, expected):
    share = stolen_time.stolen_share(before, after)
    assert share == expected
    assert stolen_time.describe(share) == (
        "steal time unknown (no /proc/stat, or no tick between its readings)"
        if expected is None else
        "steal time 25%: the host ran other machines for that share of the CPUs' time")


@pytest.mark.parametrize("module", [cpu, stolen_time])
def test_the_examples_in_the_docstrings_hold(module):
    """``make test`` collects doctests under src/ only; the benchmarks' are run here."""
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
