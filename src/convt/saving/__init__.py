"""Keras files in and out: ``.keras`` archives, ``.weights.h5`` and legacy ``.h5`` weights."""
