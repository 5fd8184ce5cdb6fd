"""The compiled polling loop of :mod:`convt.backends._spin` (imports numba; imported on first use).

An atomic load and an atomic add on an int64 array's element and x86's
``pause`` are numba intrinsics (LLVM instructions), so that the loop reads
memory that another thread writes, holds no GIL, and compiles to numba's
on-disk cache.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _atomic_load(typingctx, word):
    """``word[0]`` read as one atomic load, never hoisted out of a loop."""
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_first(context, builder, signature, args), "seq_cst", 8)
    return types.int64(word), codegen


@intrinsic
def _atomic_add(typingctx, word, amount):
    """Adds ``amount`` to ``word[0]`` atomically."""
    def codegen(context, builder, signature, args):
        builder.atomic_rmw("add", _first(context, builder, signature, args), args[1], "seq_cst")
        return context.get_dummy_value()
    return types.void(word, amount), codegen


def _first(context, builder, signature, args):
    """The address of the first element of the array that is the first argument."""
    view = context.make_array(signature.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, signature.args[0], view,
                                    [context.get_constant(types.intp, 0)])


@intrinsic
def _pause(typingctx):
    """x86's ``pause``: a spin-wait hint that frees the core's shared resources meanwhile."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(function, [])
        return context.get_dummy_value()
    return types.void(), codegen


_WORD = types.int64[::1]


@numba.njit(types.boolean(_WORD, types.int64, types.int64, _WORD, types.int64),
            nogil=True, cache=True)
def wait_while(word, value, polls, counter, amount):
    """Adds ``amount`` to ``counter[0]``, then polls ``word[0]`` up to ``polls`` times
    while it equals ``value``; True when it changed."""
    _atomic_add(counter, amount)
    for _ in range(polls):
        if _atomic_load(word) != value:
            return True
        _pause()
    return _atomic_load(word) != value
