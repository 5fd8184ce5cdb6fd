"""Window functions by name, with ``scipy.signal.get_window``'s names and values.

Keras's STFT initializer (:class:`convt.initializers.STFT`) windows its kernel with
SciPy's windows. The six common ones are computed here, by SciPy's formulas, so that
convt needs no SciPy for them: ``hann``, ``hamming``, ``blackman``, ``bartlett``,
``triang`` and ``boxcar``, under SciPy's aliases. Any other name SciPy knows (``flattop``,
``nuttall``...) is computed by SciPy when it is installed.

Example:
    >>> get_window("hann", 5, periodic=False).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> get_window("hann", 4, periodic=True).tolist()
    [0.0, 0.5, 1.0, 0.5]
"""

from __future__ import annotations

import numpy as np

_COSINE_TERMS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46), "blackman": (0.42, 0.5, 0.08)}

_ALIASES = {
    **dict.fromkeys(("hann", "han"), "hann"),
    **dict.fromkeys(("hamming", "hamm", "ham"), "hamming"),
    **dict.fromkeys(("blackman", "black", "blk"), "blackman"),
    **dict.fromkeys(("bartlett", "bart", "brt"), "bartlett"),
    **dict.fromkeys(("triangle", "triang", "tri"), "triang"),
    **dict.fromkeys(("boxcar", "box", "ones", "rect", "rectangular"), "boxcar"),
}
"""SciPy's names of the windows computed here."""


def get_window(name: str, length: int, *, periodic: bool) -> np.ndarray:
    """The window ``name`` of ``length`` samples (float64), as SciPy's
    ``get_window(name, length, fftbins=periodic)`` gives it.

    A periodic window is the symmetric one of ``length + 1`` samples without its
    last sample (for spectral analysis).

    Raises:
        ValueError: for a name that is neither computed here nor known to an
            installed SciPy.
    """
    check_window_name(name)
    window = _ALIASES.get(name)
    if window is None:
        import scipy.signal

        return np.asarray(scipy.signal.get_window(name, length, fftbins=periodic), np.float64)
    if length <= 1:
        return np.ones(length)
    size = length + 1 if periodic else length
    values = _symmetric(window, size)
    return values[:length]


def check_window_name(name: str) -> None:
    """Raises ValueError unless ``name`` is a window computed here or by an installed SciPy."""
    if name in _ALIASES:
        return
    try:
        import scipy.signal
    except ImportError:
        raise ValueError(
            f"Expected `window` to be one of {sorted(set(_ALIASES.values()))} (or an alias "
            "SciPy gives them), None or an array of values; other windows of "
            f"scipy.signal.windows need SciPy installed. Received: window={name!r}"
        ) from None
    try:
        scipy.signal.get_window(name, 1)
    except ValueError as error:
        raise ValueError(
            f"Expected `window` to name a window of scipy.signal.windows ({error}). "
            f"Received: window={name!r}"
        ) from None


def _symmetric(window: str, size: int) -> np.ndarray:
    """The symmetric window of ``size >= 2`` samples."""
    if window in _COSINE_TERMS:
        angles = np.linspace(-np.pi, np.pi, size)
        return sum(term * np.cos(k * angles) for k, term in enumerate(_COSINE_TERMS[window]))
    n = np.arange(size, dtype=np.float64)
    if window == "bartlett":
        return np.where(n <= (size - 1) / 2.0, 2.0 * n / (size - 1), 2.0 - 2.0 * n / (size - 1))
    if window == "triang":
        half = np.arange(1, (size + 1) // 2 + 1, dtype=np.float64)
        if size % 2 == 0:
            rising = (2 * half - 1.0) / size
            return np.concatenate([rising, rising[::-1]])
        rising = 2 * half / (size + 1.0)
        return np.concatenate([rising, rising[-2::-1]])
    return np.ones(size)  # boxcar
