"""The benchmark's report: a markdown table and a PNG of the time ratios."""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks import stolen_time
from benchmarks.peers import OWN

TARGET_GEMM_FRACTION = 0.85
"""Compute-bound cases should reach this fraction of the GEMM rate."""

COMPUTE_BOUND_CHANNELS = 4096
"""A case is compute-bound when C_in * C_out is at least this."""

SMALL_FLOPS = 10**8
"""Cases under this many useful FLOPs are judged by per-call overhead against ONNX Runtime."""


def _ms(timing: dict[str, Any]) -> str:
    if timing["status"] != "ok":
        return timing["status"].split(":")[0]
    return f"{timing['median_ms']:.3f}"


def _best_peer(result: dict[str, Any]) -> dict[str, Any] | None:
    ran = [t for name, t in result["timings"].items() if name not in OWN and t["status"] == "ok"]
    return min(ran, key=lambda t: t["median_ms"], default=None)


def _ratios(results: list[dict[str, Any]], own: str) -> dict[str, float]:
    """Per case, ``own``'s median time over the fastest peer's, where both ran."""
    ratios = {}
    for result in results:
        best, timing = _best_peer(result), result["timings"].get(own, {})
        if best and timing.get("median_ms"):
            ratios[result["case"]] = timing["median_ms"] / best["median_ms"]
    return ratios


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "no peer ran"
    if ratio <= 1.0:
        return "convt fastest"
    return f"**not reached: convt {ratio:.2f}x the best peer's time**"


def table(report: dict[str, Any]) -> list[str]:
    """The markdown lines of the per-case table."""
    impls = list(report["results"][0]["timings"]) if report["results"] else []
    others = [name for name in impls if name != "convt"]  # the peers, and convt_prepared
    header = ["case", "arguments", "convt ms (min-max)", "convt GFLOP/s", "% of GEMM",
              *(f"{name} ms" for name in others), "best peer", "convt / best",
              "peak extra MiB (output MiB)", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in report["results"]:
        own = result["timings"].get("convt", {"status": "absent"})
        best = _best_peer(result)
        ratio = own["median_ms"] / best["median_ms"] if best and own["status"] == "ok" else None
        if own["status"] == "ok":
            timing = f"{own['median_ms']:.3f} ({own['min_ms']:.3f}-{own['max_ms']:.3f})"
            rate = f"{own['gflops']:.1f}"
            fraction = f"{100 * own['gemm_fraction']:.0f}%"
        else:
            timing, rate, fraction = own["status"], "", ""
        memory = ("" if result["peak_extra_mib"] is None
                  else f"{result['peak_extra_mib']:.1f} ({result['output_mib']:.1f})")
        cells = [result["case"], f"`{result['description']}`", timing, rate, fraction,
                 *(_ms(result["timings"][name]) for name in others),
                 best["impl"] if best else "-", f"{ratio:.2f}" if ratio else "-",
                 memory, _verdict(ratio)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(report: dict[str, Any]) -> list[str]:
    """The markdown lines saying, target by target, what this run reached."""
    results = [r for r in report["results"] if r["timings"].get("convt", {}).get("median_ms")]
    ratios = _ratios(results, "convt")
    slower = [f"{name} {ratio:.2f}" for name, ratio in ratios.items() if ratio > 1.0]
    compute_bound = [
        (r["case"], r["timings"]["convt"]["gemm_fraction"]) for r in results
        if r["channel_product"] >= COMPUTE_BOUND_CHANNELS
    ]
    below = [f"{name} {100 * f:.0f}%" for name, f in compute_bound if f < TARGET_GEMM_FRACTION]
    small = [
        f"{r['case']} {r['timings']['convt']['median_ms']:.3f} vs "
        f"{_ms(r['timings'].get('onnxruntime', {'status': 'absent'}))}"
        for r in results if r["useful_flops"] < SMALL_FLOPS
    ]
    geomean = report["summary"]["geomean_speedup"]
    memory_ok = report["summary"]["memory_within_target"] and all(
        row["within_target"] for row in report["memory_by_batch"])
    return [
        "## Targets in this run",
        "",
        f"- convt's median no more than the fastest peer's: {len(ratios) - len(slower)} of "
        f"{len(ratios)} cases. Not reached (convt / fastest peer): {', '.join(slower) or 'none'}.",
        f"- geometric mean of (fastest peer / convt) above 1: "
        f"{'-' if geomean is None else f'{geomean:.2f}'} "
        f"({'met' if geomean and geomean > 1 else 'not met'}).",
        f"- compute-bound cases (C_in * C_out >= {COMPUTE_BOUND_CHANNELS}) at >= "
        f"{100 * TARGET_GEMM_FRACTION:.0f}% of the GEMM rate: "
        f"{len(compute_bound) - len(below)} of {len(compute_bound)}. Below: "
        f"{', '.join(below) or 'none'}.",
        f"- small cases (< {SMALL_FLOPS:.0e} FLOPs), convt ms vs ONNX Runtime ms: "
        f"{', '.join(small) or 'none'}.",
        f"- peak extra memory below output + 64 MiB on every case and batch: "
        f"{'met' if memory_ok else 'not met'}.",
        *_prepared_line(results),
        "",
    ]


def _prepared_line(results: list[dict[str, Any]]) -> list[str]:
    """The targets again for the op given a prepared kernel, when that row ran."""
    ratios = _ratios(results, "convt_prepared")
    if not ratios:
        return []
    slower = [f"{name} {ratio:.2f}" for name, ratio in ratios.items() if ratio > 1.0]
    geomean = math.exp(-statistics.fmean(map(math.log, ratios.values())))
    return [
        f"- the op given a kernel prepared before timing (`convt_prepared`: "
        f"`convt.ops.PreparedKernel`, as ONNX Runtime's session prepares its weights and "
        f"convt's layers their kernel): fastest on {len(ratios) - len(slower)} of "
        f"{len(ratios)} cases, geometric mean of (fastest peer / convt_prepared) "
        f"{geomean:.2f}. Not reached: {', '.join(slower) or 'none'}.",
    ]


def _protocol_line(report: dict[str, Any]) -> str:
    pacing = report["pacing"]
    return (
        "- measured on a shared machine (other engineers were running tests at the same "
        "time): implementations were interleaved sample by sample, each round starting one "
        "implementation later than the one before, each sample after a "
        f"{pacing['settle_seconds']:g} s pause (so no thread pool still spins) and "
        f"{pacing['warm_seconds']:g} s of warm-up calls; compare the ratios within a row rather "
        "than absolute times across runs; "
        f"{stolen_time.describe(report.get('stolen_share'))}"
    )


def write_markdown(report: dict[str, Any], path: str) -> None:
    """Writes the machine, the command, the GEMM rate, the table and the summary."""
    machine = report["machine"]
    summary = report["summary"]
    geomean = summary["geomean_speedup"]
    lines = [
        "# Benchmarks: convt.ops.conv_transpose side by side with its peers",
        "",
        f"- date: {report['date']}",
        f"- machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"NumPy {machine['numpy']} with {machine['blas']}; {machine['threads']} threads for "
        "every implementation; convt's compiled overlap-add (optional): "
        f"{machine.get('accelerator', 'none')}",
        _protocol_line(report),
        f"- command: `{report['command']}` " + (
            "(the tiny sizes CI runs to check every value; these times compare nothing)"
            if report["tiny"] else
            "(what `make bench` runs, in its own `.venv-bench` with the peers installed)"),
        f"- float32 GEMM rate of this run (NumPy, 2048^3, best of 10 before and 10 after "
        "the cases): "
        f"{report['gemm_gflops']:.1f} GFLOP/s; \"% of GEMM\" is convt's rate over it",
        f"- keras: `keras.ops.conv_transpose` on its default backend in this process, "
        f"`{report['keras_backend']}`",
        f"- samples per implementation: {report['repeat']}, median shown; times in ms",
        "",
        *table(report),
        "",
        *targets(report),
        f"Geometric mean of (fastest peer / convt): "
        f"{'-' if geomean is None else f'{geomean:.2f}'}. Cases where convt is not the fastest: "
        f"{', '.join(summary['cases_convt_not_fastest']) or 'none'}.",
        "",
        "## Memory as the batch grows",
        "",
        "| case | batch | output MiB | convt peak extra MiB | below output + 64 MiB |",
        "|---|---|---|---|---|",
        *(f"| {row['case']} | {row['batch']} | {row['output_mib']:.1f} | "
          f"{row['peak_extra_mib']:.1f} | {'yes' if row['within_target'] else '**no**'} |"
          for row in report["memory_by_batch"]),
        "",
        "Peak extra memory is tracemalloc's peak during one convt call (NumPy reports its "
        "allocations to tracemalloc), the returned output included. Peers receive inputs "
        "already in their own layout (NCHW for torch and ONNX Runtime); that conversion is "
        "not timed. `convt` is the op given the same plain kernel array on every call: "
        "where Winograd's tiles take a prepared kernel, the op recognizes it by comparing "
        "its bits with a copy kept from an earlier call (`convt.prepared.recognize`), and "
        "that comparison is timed on every call. Every peer's output was checked against "
        "convt's float64 result before its time counted; a peer shown as failed or "
        "mismatch did not produce Keras's values.",
        "",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


def write_plot(report: dict[str, Any], path: str) -> None:
    """Bars per case: each implementation's median time over convt's (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report["results"] if r["timings"].get("convt", {}).get("median_ms")]
    impls = [name for name in results[0]["timings"] if name != "convt"] if results else []
    figure, axes = plt.subplots(figsize=(14, 5))
    width = 0.8 / max(1, len(impls))
    for index, name in enumerate(impls):
        heights = [
            (r["timings"][name]["median_ms"] or float("nan")) / r["timings"]["convt"]["median_ms"]
            if r["timings"][name]["status"] == "ok" else float("nan")
            for r in results
        ]
        axes.bar([i + index * width for i in range(len(results))], heights, width, label=name)
    axes.axhline(1.0, color="black", linewidth=1)
    axes.set_yscale("log")
    axes.set_ylabel("peer time / convt time (above 1: convt faster)")
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(results))])
    axes.set_xticklabels([r["case"] for r in results], rotation=45, ha="right")
    axes.legend(ncol=len(impls))
    axes.set_title(f"Transposed convolution, median times relative to convt "
                   f"({report['machine']['cpu']}, {report['machine']['threads']} threads)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
