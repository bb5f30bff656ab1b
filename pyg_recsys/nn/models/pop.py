r"""Most-popular baseline: every user gets the items with the most training
interactions."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_recsys.nn.models.base import check_pairs
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import chunked_topk


class Popularity(torch.nn.Module):
    r"""Scores :math:`\hat{y}_{ui} = |\{v : (v, i) \in \mathcal{R}\}|`, the
    number of training interactions of item :math:`i`, the same for every
    user.  It has no parameters and needs no training; it is the floor a
    personalised recommender must beat (training tests check every model
    against it).

    Args:
        num_users: Number of users.
        num_items: Number of items.
        edge_index: ``[2, E]`` (user, item) training pairs.
    """

    def __init__(self, num_users: int, num_items: int,
                 edge_index: Tensor) -> None:
        super().__init__()
        items = check_pairs('Popularity', edge_index, num_users,
                            num_items)[1]
        self.num_users = num_users
        self.num_items = num_items
        count = torch.bincount(items, minlength=num_items).float().to(
            edge_index.device)
        self.register_buffer('count', count)

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """Item counts, ``[len(users), num_items]`` or ``[len(users), n]``
        for ``items`` of shape ``[n]`` or ``[len(users), n]``."""
        # a real copy per user: callers mask scores in place
        n = users.numel()
        if items is None:
            return self.count.repeat(n, 1)
        if items.dim() == 1:
            return self.count[items].repeat(n, 1)
        return self.count[items]

    @torch.no_grad()
    def item_scores(self, items: Tensor) -> Tensor:
        """Item-to-item scores of the query items ``items`` ``[n]``: the
        item counts for every query, ``[n, num_items]`` (a fresh copy per
        query, like :meth:`score`)."""
        if items.dim() != 1:
            raise ValueError(f'{type(self).__name__}.item_scores: items '
                             f'must be [n] item ids, got shape '
                             f'{list(items.shape)}')
        return self.count.repeat(items.numel(), 1)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None,
                  batch_size: int = 4096) -> tuple[Tensor, Tensor]:
        """Top-``k`` most popular items per user, never an ``exclude``
        item."""
        return chunked_topk(self.score, users, k, exclude, batch_size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items)')
