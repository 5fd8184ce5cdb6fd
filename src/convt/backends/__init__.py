"""Array backends behind :func:`convt.ops.conv_transpose`.

Each backend module exposes ``conv_transpose(inputs, kernel, args)`` taking
arrays of its own type and normalized :class:`convt._shapes.ConvTransposeArgs`.
"""
