"""Small calls by a remembered recipe: what a call's shapes decide is worked out once.

A call of a few hundred microseconds (``keras_doc``, ``dcgan_out``) spent about as long in
the op's checks, the backend's choices and overlap-add's set-up as in its GEMM, inside a
loop of calls (docs/architecture.md, "Per-call cost inside a loop"). Everything but the
GEMM and the passes after it depends only on the shapes, dtypes and arguments: per such
key the plans and the algorithm are kept here, and for a one-task overlap-add call its
chunks and zeroing too, so that the call runs its GEMM and pass straight away.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from convt._shapes import are_plain, check_call_fits, image_data_format, remembered_plan
from convt.backends import _threads
from convt.backends import numpy as numpy_backend
from convt.prepared import PreparedKernel

Recipe = Callable[[np.ndarray, np.ndarray], np.ndarray]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def call(inputs: Any, kernel: Any, arguments: dict[str, Any]) -> np.ndarray | None:
    """The op's result by the call's recipe, or None when the call takes the general path.

    Taken by NumPy arrays (the kernel may be a :class:`PreparedKernel`) of one native
    float dtype, C-contiguous, channels_last, whose arguments are plain
    (:func:`convt._shapes.are_plain`) and whose call Winograd would not take.
    ``data_format=None`` in ``arguments`` is resolved in place, as the default stands now.
    """
    prepared = type(kernel) is PreparedKernel
    if prepared:
        kernel = np.asarray(kernel)
    if not (type(inputs) is np.ndarray and type(kernel) is np.ndarray):
        return None
    if not (inputs.flags.c_contiguous and kernel.flags.c_contiguous):
        return None
    if arguments["data_format"] is None:
        arguments["data_format"] = image_data_format()
    if not are_plain((), arguments.values()):
        return None
    recipe = _recipe(inputs.shape, inputs.dtype, kernel.shape, kernel.dtype,
                     tuple(arguments.items()), prepared)
    return None if recipe is None else recipe(inputs, kernel)


def forget() -> None:
    """Drops every remembered recipe and overlap-add layout, so that the next calls decide
    afresh (after the backend's switches have been changed, as the tests and the fuzzer do)."""
    _recipe.cache_clear()
    numpy_backend._scatter_layout.cache_clear()


@functools.lru_cache(maxsize=256)
def _recipe(
    input_shape: tuple[int, ...],
    input_dtype: np.dtype,
    kernel_shape: tuple[int, ...],
    kernel_dtype: np.dtype,
    arguments: tuple[tuple[str, Any], ...],
    prepared: bool,
) -> Recipe | None:
    """The recipe for calls with these shapes, dtypes and arguments, the kernel
    ``prepared`` or not; or None."""
    if input_dtype != kernel_dtype or input_dtype not in _FLOATS:
        return None
    args, output_shape = remembered_plan(input_shape, kernel_shape, **dict(arguments))
    check_call_fits(input_dtype.itemsize, input=input_shape, kernel=kernel_shape,
                    output=output_shape)
    if args.data_format != "channels_last" or _threads.openblas_controls() is None:
        return None
    plans = numpy_backend._axis_plans(args, input_shape[1:-1])
    return numpy_backend.recipe(plans, input_shape, kernel_shape, input_dtype,
                                prepared=prepared)
