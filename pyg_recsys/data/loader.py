"""Mini-batches of (user, positive, negatives) for pairwise training."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from pyg_recsys.sampling import NegativeSampler


class PairBatch(NamedTuple):
    """A batch of training pairs: ``user`` and ``pos`` are ``[B]``, ``neg``
    is ``[B]`` (one negative each) or ``[B, N]``."""

    user: Tensor
    pos: Tensor
    neg: Tensor

    def __len__(self) -> int:  # type: ignore[override]
        return self.user.numel()


class PairLoader:
    """Iterates over shuffled training pairs with fresh negatives each epoch.

    Randomness comes from a generator seeded by ``(seed, epoch)``: call
    :meth:`set_epoch` before iterating, and a resumed run sees exactly the
    batches an uninterrupted one would.

    Args:
        pairs: ``[2, E]`` (user, item) training pairs.
        sampler: Negative sampler (e.g. :class:`UniformSampler`).
        batch_size: Pairs per batch.
        num_neg: Negatives per pair.
        shuffle: Shuffle pairs each epoch.
        drop_last: Drop a last, smaller batch.
        seed: Base seed.
    """

    def __init__(self, pairs: Tensor, sampler: NegativeSampler,
                 batch_size: int = 2048, num_neg: int = 1,
                 shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0) -> None:
        if pairs.dim() != 2 or pairs.size(0) != 2:
            raise ValueError(f'PairLoader: pairs must have shape [2, E], got '
                             f'{list(pairs.shape)}')
        if batch_size <= 0:
            raise ValueError(f'PairLoader: batch_size must be positive, got '
                             f'{batch_size}')
        self.pairs = pairs.long()
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_neg = num_neg
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.pairs.size(1)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[PairBatch]:
        gen = torch.Generator().manual_seed(
            self.seed * 1_000_003 + self.epoch)
        n = self.pairs.size(1)
        order = (torch.randperm(n, generator=gen) if self.shuffle
                 else torch.arange(n))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            user, pos = self.pairs[0, idx], self.pairs[1, idx]
            neg = self.sampler.sample(user, self.num_neg, generator=gen)
            yield PairBatch(user, pos, neg)
