"""The processor named in every benchmark report (benchmarks.cpu)."""

from __future__ import annotations

import pytest

from benchmarks import cpu

AVX512_HOST = """processor\t: 0
model name\t: AMD EPYC
cpu family\t: 25
model\t\t: 17
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw

processor\t: 1
model name\t: another model
"""


@pytest.mark.parametrize(("flags", "vector"), [
    ("fpu sse2 avx avx2 avx512f", "AVX-512"),
    ("fpu sse2 avx avx2 fma", "AVX2"),
    ("fpu sse2 avx", "AVX"),
    ("fpu sse2", "SSE2"),
    ("fpu", "unknown"),
])
def test_the_widest_vector_extension_is_named(flags, vector):
    assert cpu.describe(f"flags\t: {flags}\n", blas_core="Zen")["vector"] == vector


def test_the_first_processor_is_described():
    assert cpu.describe(AVX512_HOST, blas_core="SkylakeX") == {
        "model": "AMD EPYC", "family": "25/17", "vector": "AVX-512", "blas_core": "SkylakeX"}


def test_what_cannot_be_read_is_unknown(monkeypatch):
    monkeypatch.setattr(cpu, "_openblas_core", lambda: None)
    assert cpu.describe("") == {
        "model": "unknown", "family": "unknown", "vector": "unknown", "blas_core": "unknown"}


def test_the_summary_names_every_part():
    line = cpu.summary(cpu.describe(AVX512_HOST, blas_core="SkylakeX"))
    assert line == "AMD EPYC (family 25/17, AVX-512; OpenBLAS's SkylakeX kernels)"


def test_this_machine_is_described():
    """On Linux with NumPy's bundled OpenBLAS, every part is read."""
    described = cpu.describe()
    if "unknown" in described.values():
        pytest.skip("this machine has no /proc/cpuinfo (Linux only) or NumPy has no bundled "
                    f"OpenBLAS to ask: {described}")
    assert described["blas_core"] and described["vector"] in {"AVX-512", "AVX2", "AVX", "SSE2"}
