"""convt's windows against SciPy's (scipy comes with scikit-learn in the test environment)."""

from __future__ import annotations

import numpy as np
import pytest

from convt import windows

scipy_signal = pytest.importorskip("scipy.signal")


@pytest.mark.parametrize("name", sorted(windows._ALIASES))
@pytest.mark.parametrize("periodic", [False, True])
def test_windows_computed_here_are_scipys(name, periodic):
    for length in range(1, 34):
        np.testing.assert_allclose(
            windows.get_window(name, length, periodic=periodic),
            scipy_signal.get_window(name, length, fftbins=periodic), rtol=0, atol=4e-16)


def test_other_names_are_scipys():
    np.testing.assert_array_equal(windows.get_window("nuttall", 9, periodic=True),
                                  scipy_signal.get_window("nuttall", 9, fftbins=True))
