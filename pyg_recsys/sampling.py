"""Negative samplers shared by every model.

A sampler draws items for a batch of users.  Every sampler here takes an
explicit :class:`torch.Generator`, so that a training run is reproducible
and resumes exactly (the loader reseeds it per epoch).
"""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_recsys.ops.csr import CSR


class NegativeSampler:
    """Base class: items for ``users`` that are, where ``exclude`` is set,
    never among the user's known positives."""

    def __init__(self, num_items: int, exclude: CSR | None = None,
                 max_rounds: int = 100) -> None:
        if num_items <= 0:
            raise ValueError(f'{type(self).__name__}: num_items must be '
                             f'positive, got {num_items}')
        self.num_items = num_items
        self.exclude = exclude
        self.max_rounds = max_rounds
        self._keys = exclude.keys() if exclude is not None else None
        if exclude is not None:
            if exclude.num_cols != num_items:
                raise ValueError(
                    f'{type(self).__name__}: exclude has {exclude.num_cols} '
                    f'item columns but num_items is {num_items}')
            full = exclude.degree() >= num_items
            if bool(full.any()):
                user = int(full.nonzero()[0])
                raise ValueError(
                    f'{type(self).__name__}: user {user} has interacted with '
                    f'every item, so no negative exists; drop such users '
                    f'before training')

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def sample(self, users: Tensor, num: int = 1,
               generator: torch.Generator | None = None) -> Tensor:
        """Negatives of shape ``[len(users)]`` (``num == 1``) or
        ``[len(users), num]``.

        Rejection sampling: entries that hit a known positive are redrawn,
        only those, until none is left.  Exact for any positive density; the
        expected number of rounds is ``1 / (1 - density)``.
        """
        users = users.long().view(-1)
        out = self._draw(users.numel() * num, generator).view(-1, num)
        if self.exclude is not None:
            rows = users.view(-1, 1).expand(-1, num)
            bad = self.exclude.contains(rows, out, self._keys)
            rounds = 0
            while bool(bad.any()):
                rounds += 1
                if rounds > self.max_rounds:
                    raise RuntimeError(
                        f'{type(self).__name__}: could not draw negatives '
                        f'after {self.max_rounds} rounds; a user has almost '
                        f'every item as a positive')
                idx = bad.nonzero(as_tuple=True)
                new = self._draw(idx[0].numel(), generator)
                out[idx] = new
                bad[idx] = self.exclude.contains(rows[idx], new, self._keys)
        return out.view(-1) if num == 1 else out


class UniformSampler(NegativeSampler):
    """Items drawn uniformly, known positives excluded exactly."""

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        return torch.randint(0, self.num_items, (n,), generator=generator)


class PopularitySampler(NegativeSampler):
    r"""Items drawn with probability :math:`\propto \text{count}_i^\alpha`
    (word2vec-style, :math:`\alpha = 0.75` by default), known positives
    excluded.

    Args:
        item_count: ``[num_items]`` interaction counts (training part).
        alpha: Popularity exponent; 0 gives uniform sampling.
        exclude: Known positives to avoid.
    """

    def __init__(self, item_count: Tensor, alpha: float = 0.75,
                 exclude: CSR | None = None, max_rounds: int = 100) -> None:
        super().__init__(item_count.numel(), exclude, max_rounds)
        weight = item_count.double().clamp(min=0).pow(alpha)
        if not bool(weight.sum() > 0):
            raise ValueError('PopularitySampler: item_count has no positive '
                             'entry; pass the training interaction counts')
        self.alpha = alpha
        self.prob = weight / weight.sum()
        self._cdf = torch.cumsum(self.prob, 0)
        self._cdf[-1] = 1.0

    def log_prob(self, items: Tensor) -> Tensor:
        """Log sampling probability of ``items`` (for log-Q correction)."""
        return self.prob[items].log().float()

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.searchsorted(self._cdf, u).clamp_(max=self.num_items - 1)
