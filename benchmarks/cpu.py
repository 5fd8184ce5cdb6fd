"""The processor a run measured: its model, its widest vector instructions, and the kernels
NumPy's OpenBLAS chose for it.

Two hosts of one cloud machine type can carry different processors, and the tables
differ with them: on 2026-11-22 the same two-core machine type ran on an AVX-512 host
(OpenBLAS's SkylakeX kernels, 2048^3 float32 GEMMs at about 200 GFLOP/s) and later on an
AVX2 one (its Haswell kernels, 150-175 GFLOP/s), where TensorFlow's CPU kernels also
refused dilated transposed convolutions. So every run names them.
"""

from __future__ import annotations

CPUINFO_PATH = "/proc/cpuinfo"

_EXTENSIONS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2"))
"""(/proc/cpuinfo flag, name), widest first."""


def describe(cpuinfo_text: str | None = None, blas_core: str | None = None) -> dict[str, str]:
    """The processor's ``model``, ``family`` (x86 family and model numbers), widest
    ``vector`` extension and NumPy's OpenBLAS ``blas_core``; "unknown" for what cannot be
    read (``/proc/cpuinfo`` exists on Linux only).

    ``cpuinfo_text`` is the content of ``/proc/cpuinfo`` (read when None); ``blas_core``
    is OpenBLAS's core name (asked of the library when None).

    Example:
        >>> text = "model name: AMD EPYC\\ncpu family: 25\\nmodel: 1\\nflags: fpu avx avx2\\n"
        >>> describe(text, blas_core="Haswell")
        {'model': 'AMD EPYC', 'family': '25/1', 'vector': 'AVX2', 'blas_core': 'Haswell'}
    """
    fields = _first_processor(_read_cpuinfo() if cpuinfo_text is None else cpuinfo_text)
    flags = set(fields.get("flags", "").split())
    family = fields.get("cpu family"), fields.get("model")
    return {
        "model": fields.get("model name", "unknown"),
        "family": "/".join(family) if all(family) else "unknown",
        "vector": next((name for flag, name in _EXTENSIONS if flag in flags), "unknown"),
        "blas_core": blas_core or _openblas_core() or "unknown",
    }


def summary(description: dict[str, str]) -> str:
    """One line for a report, e.g. ``AMD EPYC (family 25/1, AVX2; OpenBLAS's Haswell kernels)``.

    Example:
        >>> summary({"model": "AMD EPYC", "family": "25/1", "vector": "AVX2",
        ...          "blas_core": "Haswell"})
        "AMD EPYC (family 25/1, AVX2; OpenBLAS's Haswell kernels)"
    """
    return (f"{description['model']} (family {description['family']}, "
            f"{description['vector']}; OpenBLAS's {description['blas_core']} kernels)")


def _read_cpuinfo() -> str:
    try:
        with open(CPUINFO_PATH) as handle:
            return handle.read()
    except OSError:
        return ""


def _first_processor(cpuinfo_text: str) -> dict[str, str]:
    """The ``key: value`` lines of the first processor's block."""
    fields: dict[str, str] = {}
    for line in cpuinfo_text.split("\n\n", 1)[0].splitlines():
        key, separator, value = line.partition(":")
        if separator:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _openblas_core() -> str | None:
    from convt.backends import _threads

    return _threads.openblas_core()
