"""Exception types that keep both the clear type and the one Keras happens to raise.

Keras 3.15 raises ``TypeError`` for a string ``kernel_size`` of a 1-D layer and
``IndexError`` for an input of too high rank, by accident of its code. convt's
errors derive from ``ValueError`` (what the argument check means) and from the
type Keras raises, so code written against either catches them; NumPy's
``AxisError`` does the same.
"""


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type (e.g. a string where ints are expected)."""


class InputRankError(ValueError, IndexError):
    """An input with more axes than the layer takes."""
