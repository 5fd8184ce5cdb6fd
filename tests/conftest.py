"""Settings shared by every test module."""

from __future__ import annotations

import numpy as np
import pytest

from convt.backends import _recipes
from convt.backends import numpy as numpy_backend
from convt.prepared import forget_recognized


@pytest.fixture(autouse=True)
def _poisoned_outputs(monkeypatch):
    """The NumPy backend's output buffer arrives full of NaN instead of whatever memory held.

    Every algorithm must write every element of it (``uninitialized``); a fresh buffer
    from the OS is zeros, which would hide an element left unwritten where zero is the
    right value. Here such an element is NaN, and every value test fails on it.
    """
    monkeypatch.setattr(numpy_backend, "uninitialized",
                        lambda shape, dtype: np.full(shape, np.nan, dtype))


@pytest.fixture(autouse=True)
def _no_recognized_kernels():
    """Each test starts with no plain kernel kept from another (``convt.prepared.recognize``):
    a test that counts kernel transforms sees only its own."""
    forget_recognized()


@pytest.fixture(autouse=True)
def _no_remembered_recipes():
    """Each test's calls decide afresh (``convt.backends._recipes``): a test that changes a
    switch of the backend must not meet a recipe that an earlier test's calls made."""
    _recipes.forget()


@pytest.fixture
def small_gemm_kernels(monkeypatch):
    """NumPy's OpenBLAS taken to have small-matrix kernels (``_threads.small_gemm``), as on
    the AVX-512 host where the Winograd rule's thresholds were measured: a test of that rule
    then expects the same choices on any host."""
    from convt.backends import _threads

    monkeypatch.setattr(_threads, "small_gemm", lambda: True)
