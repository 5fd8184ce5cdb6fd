"""Models: ``Model`` (functional), ``Sequential``, and ``load_model`` for Keras files."""

from convt.models.model import Model
from convt.models.sequential import Sequential
from convt.saving.keras_file import load_model

__all__ = ["Model", "Sequential", "load_model"]
