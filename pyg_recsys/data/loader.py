"""Mini-batches of (user, positive, negatives) for pairwise training."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.sampling import (
    CurriculumSampler,
    InBatchSampler,
    NegativeSampler,
    SharedSampler,
)
from pyg_recsys.schema import USER_ITEM

Sampler = (NegativeSampler | SharedSampler | InBatchSampler |
           CurriculumSampler)


class EpochSeeded:
    """Loaders that draw a fresh random stream per epoch.

    :meth:`set_epoch` (called by :class:`~pyg_recsys.train.Trainer` before
    every epoch) selects the epoch; :meth:`epoch_generator` is seeded from
    ``seed`` and that epoch only, so a resumed run sees the same batches as
    an uninterrupted one.  Subclasses set ``seed``, ``batch_size`` and
    ``drop_last``.
    """

    seed: int = 0
    epoch: int = 0
    batch_size: int
    drop_last: bool = False

    def set_epoch(self, epoch: int) -> None:
        """Selects the random stream of ``epoch``."""
        self.epoch = epoch

    def epoch_generator(self) -> torch.Generator:
        """A generator seeded from ``seed`` and the current epoch."""
        return torch.Generator().manual_seed(
            self.seed * 1_000_003 + self.epoch)

    def _num_batches(self, n: int) -> int:
        """Batches of ``batch_size`` over ``n`` examples."""
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)


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


class PairLoader(EpochSeeded):
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

    def __len__(self) -> int:
        return self._num_batches(self.pairs.size(1))

    def __iter__(self) -> Iterator[PairBatch]:
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(self.epoch)
        gen = self.epoch_generator()
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


class LinkNeighborPairLoader(EpochSeeded):
    """Mini-batches of sampled subgraphs around (user, positive, negative)
    triples, for training message-passing recommenders on graphs that do
    not fit a full-graph pass.

    A thin wrapper of PyG's
    :class:`~torch_geometric.loader.LinkNeighborLoader` in ``'triplet'``
    negative-sampling mode (it needs ``pyg-lib`` or ``torch-sparse``): each
    batch is a :class:`~torch_geometric.data.HeteroData` subgraph of
    ``graph`` with the sampled neighbourhoods of ``batch_size`` supervision
    pairs, global node ids in ``batch[t].n_id``, the pairs' local indices
    in ``batch['user'].src_index`` and ``batch['item'].dst_pos_index``
    ``[B]`` and the negatives' in ``batch['item'].dst_neg_index`` (``[B]``
    or ``[B, num_neg]``); ``batch.batch_size`` is ``B``.  Negatives are
    drawn uniformly over all items by PyG's sampler and, unlike
    :class:`UniformSampler`, not filtered against the user's positives.

    Randomness (shuffle, neighbour and negative sampling) runs on a private
    copy of torch's global CPU generator seeded by ``(seed, epoch)`` and
    never touches the global state: call :meth:`set_epoch` before
    iterating, and a resumed run sees exactly the batches an uninterrupted
    one would.

    Args:
        graph: The message-passing graph, e.g.
            :meth:`pyg_recsys.data.split.Split.graph` (training edges only).
        pairs: ``[2, E]`` supervision (user, item) pairs, usually the
            training pairs.
        num_neighbors: Neighbours sampled per node and hop (``-1``: all),
            one entry per layer, or a dict per edge type.
        batch_size: Pairs per batch.
        num_neg: Negatives per pair.
        shuffle: Shuffle pairs each epoch.
        drop_last: Drop a last, smaller batch.
        seed: Base seed.
        edge_type: The supervised edge type of ``graph``.
        **kwargs: More arguments of
            :class:`~torch_geometric.loader.LinkNeighborLoader` (e.g.
            ``subgraph_type``).
    """

    def __init__(self, graph: HeteroData, pairs: Tensor,
                 num_neighbors: list[int] | dict,
                 batch_size: int = 2048, num_neg: int = 1,
                 shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0,
                 edge_type: tuple[str, str, str] = USER_ITEM,
                 **kwargs) -> None:
        import warnings

        from torch_geometric.loader import LinkNeighborLoader
        from torch_geometric.sampler import NegativeSampling
        name = 'LinkNeighborPairLoader'
        if pairs.dim() != 2 or pairs.size(0) != 2:
            raise ValueError(f'{name}: pairs must have shape [2, E], got '
                             f'{list(pairs.shape)}')
        if batch_size <= 0 or num_neg < 1:
            raise ValueError(f'{name}: batch_size and num_neg must be '
                             f'positive, got {batch_size} and {num_neg}')
        if tuple(edge_type) not in getattr(graph, 'edge_types', []):
            raise ValueError(f'{name}: graph has no edge type {edge_type}; '
                             f'pass a HeteroData such as Split.graph()')
        self.pairs = pairs.long()
        self.edge_type = tuple(edge_type)
        self.batch_size = batch_size
        self.num_neg = num_neg
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        with warnings.catch_warnings():
            # PyG warns that torch-sparse sampling (without pyg-lib) is
            # deprecated; it is the supported fallback here.
            warnings.filterwarnings('ignore', message='.*pyg-lib.*')
            self.loader = LinkNeighborLoader(
                graph, num_neighbors=num_neighbors,
                edge_label_index=(tuple(edge_type), self.pairs),
                neg_sampling=NegativeSampling('triplet', amount=num_neg),
                batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                **kwargs)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[HeteroData]:
        state = self.epoch_generator().get_state()
        it = None
        while True:
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(state)
                if it is None:
                    it = iter(self.loader)
                batch = next(it, None)
                state = torch.get_rng_state()
            if batch is None:
                return
            batch.batch_size = int(
                batch[self.edge_type[0]].src_index.numel())
            yield batch
