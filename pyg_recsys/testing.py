"""Helpers for the test suite (imported by tests only; needs pytest)."""
from __future__ import annotations

import importlib.util


def needs(*packages: str):
    """A ``pytest`` mark that skips a test unless every one of
    ``packages`` is importable (like ``torch_geometric.testing
    .withPackage``): the suite passes without the optional extras."""
    import pytest
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f'needs {", ".join(missing)} (optional extra)')
