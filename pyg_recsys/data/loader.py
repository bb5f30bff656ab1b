"""Mini-batches of (user, positive, negatives) for pairwise training."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from pyg_recsys.sampling import (
    CurriculumSampler,
    InBatchSampler,
    NegativeSampler,
    SharedSampler,
)

Sampler = (NegativeSampler | SharedSampler | InBatchSampler |
           CurriculumSampler)


class PairBatch(NamedTuple):
    """A batch of training pairs: ``user`` and ``pos`` are ``[B]``, ``neg``
    is ``[B]`` (one negative each) or ``[B, N]``.

    Two optional fields (see :class:`pyg_recsys.sampling.Negatives`):
    ``shared=True`` makes ``neg`` ``[N]`` items scored by every user of the
    batch (:class:`~pyg_recsys.sampling.SharedSampler`,
    :class:`~pyg_recsys.sampling.InBatchSampler`); ``neg_mask``, a bool
    tensor shaped like the scores (``[B]``, ``[B, N]``), is ``False`` for
    the (user, negative) pairs the loss leaves out."""

    user: Tensor
    pos: Tensor
    neg: Tensor
    neg_mask: Tensor | None = None
    shared: bool = False

    def __len__(self) -> int:  # type: ignore[override]
        return self.user.numel()


class PairLoader:
    """Iterates over shuffled training pairs with fresh negatives each epoch.

    Randomness comes from a generator seeded by ``(seed, epoch)``: call
    :meth:`set_epoch` before iterating, and a resumed run sees exactly the
    batches an uninterrupted one would.  A sampler with a ``set_epoch``
    method (:class:`~pyg_recsys.sampling.CurriculumSampler`) is given the
    loader's epoch at the start of every pass.

    Args:
        pairs: ``[2, E]`` (user, item) training pairs.
        sampler: Negative sampler: anything with ``negatives(user, pos,
            num, generator)`` returning
            :class:`~pyg_recsys.sampling.Negatives` (every sampler of
            :mod:`pyg_recsys.sampling`) or, for other objects,
            ``sample(user, num, generator)``.
        batch_size: Pairs per batch.
        num_neg: Negatives per pair (shared negatives per batch for
            :class:`~pyg_recsys.sampling.SharedSampler`; must be 1 for
            :class:`~pyg_recsys.sampling.InBatchSampler`).
        shuffle: Shuffle pairs each epoch.
        drop_last: Drop a last, smaller batch.
        seed: Base seed.
    """

    def __init__(self, pairs: Tensor, sampler: Sampler,
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
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(self.epoch)
        gen = torch.Generator().manual_seed(
            self.seed * 1_000_003 + self.epoch)
        n = self.pairs.size(1)
        order = (torch.randperm(n, generator=gen) if self.shuffle
                 else torch.arange(n))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            user, pos = self.pairs[0, idx], self.pairs[1, idx]
            if hasattr(self.sampler, 'negatives'):
                yield PairBatch(user, pos, *self.sampler.negatives(
                    user, pos, self.num_neg, generator=gen))
            else:
                yield PairBatch(user, pos, self.sampler.sample(
                    user, self.num_neg, generator=gen))
