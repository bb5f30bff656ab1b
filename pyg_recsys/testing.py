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


def fit_batch(model, batch, steps: int = 20,
              lr: float = 0.05) -> tuple[float, float]:
    """Takes ``steps`` Adam steps on ``model.loss(batch)``; returns the
    loss before and after (for "training lowers the loss" tests)."""
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = model.loss(batch).item()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    return first, model.loss(batch).item()
