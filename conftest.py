"""Doctest collection: convt's torch modules are skipped where torch is not installed."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += ["src/convt/backends/torch.py", "src/convt/torch"]
