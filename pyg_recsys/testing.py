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


def clustered_split(num_users: int = 80, num_items: int = 60,
                    num_clusters: int = 4, per_user: int = 12,
                    noise: float = 0.1, seed: int = 0):
    """A tiny user-item log with community structure, split 8/1/1 per user.

    Users and items fall into ``num_clusters`` groups; each user picks
    ``per_user`` distinct items, from its own group with probability
    ``1 - noise``.  Item popularity is about flat, so the most-popular
    baseline (:class:`pyg_recsys.nn.models.Popularity`) is weak while any
    model that learns the groups ranks held-out items well: the data of
    the "training beats popularity" tests.
    """
    import torch

    from pyg_recsys.data.interactions import from_tensors
    from pyg_recsys.data.split import random_split
    gen = torch.Generator().manual_seed(seed)
    u_group = torch.arange(num_users) % num_clusters
    i_group = torch.arange(num_items) % num_clusters
    users, items = [], []
    for u in range(num_users):
        own = (i_group == u_group[u]).float()
        weight = own * (1 - noise) / own.sum() + (1 - own) * noise / (
            (1 - own).sum())
        picked = torch.multinomial(weight, per_user, generator=gen)
        users += [u] * per_user
        items += picked.tolist()
    inter = from_tensors(torch.tensor(users), torch.tensor(items))
    return random_split(inter, seed=seed)


def popularity_metrics(split, ks=(10, 20)) -> dict[str, float]:
    """Test metrics of the most-popular baseline on ``split``."""
    from pyg_recsys.nn.models.pop import Popularity
    from pyg_recsys.train import RankingEvaluator
    pop = Popularity(split.num_users, split.num_items, split.train)
    return RankingEvaluator(split, ks=ks)(pop, 'test')
