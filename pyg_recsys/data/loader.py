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
    rank: int = 0
    world_size: int = 1

    def set_epoch(self, epoch: int) -> None:
        """Selects the random stream of ``epoch``."""
        self.epoch = epoch

    def epoch_generator(self, device: torch.device | str = 'cpu'
                        ) -> torch.Generator:
        """A generator on ``device`` seeded from ``seed`` and the current
        epoch."""
        return torch.Generator(device=device).manual_seed(
            self.seed * 1_000_003 + self.epoch)

    def shard(self, rank: int, world_size: int) -> EpochSeeded:
        """Makes this loader yield the part of every batch that process
        ``rank`` of ``world_size`` trains on (in place; returns ``self``).

        Every process draws the same global batches (same seed, same
        epoch) and keeps the contiguous slice ``[n * rank // world_size,
        n * (rank + 1) // world_size)`` of each; the batch's
        ``loss_scale`` is ``len(slice) * world_size / n``, so that the mean
        of the scaled per-process losses, which is what
        ``DistributedDataParallel`` averages gradients over, is the loss of
        the whole batch.
        """
        name = type(self).__name__
        if not 0 <= rank < world_size:
            raise ValueError(f'{name}.shard: rank must lie in [0, '
                             f'{world_size}), got {rank}')
        n = self._num_examples()
        sizes = {min(self.batch_size, n)}
        if not self.drop_last and n % self.batch_size:
            sizes.add(n % self.batch_size)
        if min(sizes) < world_size:
            raise ValueError(f'{name}.shard: a batch of {min(sizes)} '
                             f'examples leaves nothing to some of the '
                             f'{world_size} processes; use a batch size '
                             f'of at least {world_size} or drop_last=True')
        self.rank, self.world_size = rank, world_size
        return self

    def _num_examples(self) -> int:
        """Examples per epoch (what the batches cut)."""
        raise NotImplementedError

    def _local(self, n: int) -> tuple[slice, float]:
        """This process's slice of a global batch of ``n`` examples and
        its loss scale."""
        lo = n * self.rank // self.world_size
        hi = n * (self.rank + 1) // self.world_size
        return slice(lo, hi), (hi - lo) * self.world_size / max(n, 1)

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
    loss_scale: float = 1.0

    def __len__(self) -> int:  # type: ignore[override]
        return self.user.numel()


class ColumnLoader(EpochSeeded):
    """Batches of the columns of one ``[C, n]`` long tensor (triples,
    labelled rows), shuffled every epoch from ``(seed, epoch)`` on the
    tensor's device; subclasses turn a batch's columns into their batch
    type (:meth:`_batches` yields the column indices and the generator).

    Args:
        rows: ``[C, n]``.
        batch_size: Columns per batch.
        shuffle: Shuffle every epoch.
        drop_last: Drop the last partial batch.
        seed: Seed of the per-epoch streams.
        device: Where batches are made (default: where ``rows`` are).
    """

    #: rows of the tensor, and how error messages name it
    width: int = 3
    what: str = 'rows'

    def __init__(self, rows: Tensor, batch_size: int, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        name = type(self).__name__
        if rows.dim() != 2 or rows.size(0) != self.width or \
                rows.size(1) == 0:
            raise ValueError(f'{name}: {self.what} must have shape '
                             f'[{self.width}, n] with n > 0, got '
                             f'{list(rows.shape)}')
        if batch_size <= 0:
            raise ValueError(f'{name}: batch_size must be positive, got '
                             f'{batch_size}')
        self.rows = rows.long()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        if device is not None:
            self.to(device)

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def to(self, device: torch.device | str) -> ColumnLoader:
        """Makes batches on ``device`` from now on (in place)."""
        self.rows = self.rows.to(device)
        return self

    def __len__(self) -> int:
        return self._num_batches(self.rows.size(1))

    def _num_examples(self) -> int:
        return self.rows.size(1)

    def _batches(self) -> Iterator[tuple[Tensor, torch.Generator]]:
        """``(column indices, generator)`` of every batch of the epoch."""
        device = self.rows.device
        gen = self.epoch_generator(device)
        n = self.rows.size(1)
        order = (torch.randperm(n, generator=gen, device=device)
                 if self.shuffle else torch.arange(n, device=device))
        size = self.batch_size
        for b in range(len(self)):
            yield order[b * size:(b + 1) * size], gen


class PairLoader(ColumnLoader):
    """Iterates over shuffled training pairs with fresh negatives each epoch.

    Randomness comes from a generator seeded by ``(seed, epoch)``: call
    :meth:`set_epoch` before iterating, and a resumed run sees exactly the
    batches an uninterrupted one would.  A sampler with a ``set_epoch``
    method (:class:`~pyg_recsys.sampling.CurriculumSampler`) is given the
    loader's epoch at the start of every pass.

    Everything happens on the loader's device (:meth:`to`): the pairs, the
    shuffle, the negatives, and the generator.  Per-pair negatives
    (:class:`~pyg_recsys.sampling.NegativeSampler`) are drawn for many
    batches at once (about :attr:`DRAW_CHUNK` entries), so that the
    rejection of known positives, whose number of rounds is read on the
    host, waits for the device once per chunk and not once per step; every
    negative is still never a known positive.

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
        device: Where batches are made (default: the CPU).
    """

    #: Negatives drawn per round of the per-pair samplers.
    DRAW_CHUNK = 1 << 21

    width = 2
    what = 'pairs'

    def __init__(self, pairs: Tensor, sampler: Sampler,
                 batch_size: int = 2048, num_neg: int = 1,
                 shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        self.sampler = sampler
        self.num_neg = num_neg
        super().__init__(pairs, batch_size, shuffle, drop_last, seed,
                         device)

    @property
    def pairs(self) -> Tensor:
        """The ``[2, E]`` (user, item) training pairs."""
        return self.rows

    def to(self, device: torch.device | str) -> PairLoader:
        """Makes batches on ``device`` from now on (in place; returns
        ``self``); the sampler moves along when it has a ``to``."""
        super().to(device)
        if hasattr(self.sampler, 'to'):
            self.sampler.to(device)
        return self

    def shard(self, rank: int, world_size: int) -> PairLoader:
        """:meth:`EpochSeeded.shard`, for samplers that draw negatives per
        pair.  Shared and in-batch negatives are refused with several
        processes: a slice of the batch would score the whole batch's
        negatives, so the masked mean and the negatives' L2 term would
        differ from the single-process loss."""
        if world_size > 1 and isinstance(self.sampler,
                                         (SharedSampler, InBatchSampler)):
            raise ValueError(
                f'PairLoader.shard: {type(self.sampler).__name__} shares '
                f'its negatives across the batch, which several processes '
                f'cannot split exactly; train it in one process or use '
                f'per-pair negatives (UniformSampler, PopularitySampler, '
                f'PPRHardSampler, CurriculumSampler)')
        super().shard(rank, world_size)
        return self

    def _per_pair(self) -> bool:
        """Whether the sampler draws each pair's negatives on its own (and
        can therefore draw many batches at once)."""
        return (isinstance(self.sampler, NegativeSampler)
                and type(self.sampler).negatives
                is NegativeSampler.negatives)

    def __iter__(self) -> Iterator[PairBatch]:
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(self.epoch)
        device = self.pairs.device
        gen = self.epoch_generator(device)
        n = self.pairs.size(1)
        order = (torch.randperm(n, generator=gen, device=device)
                 if self.shuffle else torch.arange(n, device=device))
        num_batches, size = len(self), self.batch_size
        step = (max(1, self.DRAW_CHUNK // (size * max(self.num_neg, 1)))
                if self._per_pair() else 1)
        for first in range(0, num_batches, step):
            last = min(first + step, num_batches)
            idx = order[first * size:last * size]
            user, pos = self.pairs[0, idx], self.pairs[1, idx]
            if self._per_pair():
                neg = self.sampler.sample(user, self.num_neg, gen)
                for b in range(last - first):
                    part = slice(b * size, (b + 1) * size)
                    yield self._shard(PairBatch(user[part], pos[part],
                                                neg[part]))
            elif hasattr(self.sampler, 'negatives'):
                yield self._shard(PairBatch(user, pos, *self.sampler.negatives(
                    user, pos, self.num_neg, generator=gen)))
            else:
                yield self._shard(PairBatch(user, pos, self.sampler.sample(
                    user, self.num_neg, generator=gen)))

    def _shard(self, batch: PairBatch) -> PairBatch:
        """This process's part of a global batch (:meth:`shard`)."""
        if self.world_size == 1:
            return batch
        part, scale = self._local(batch.user.numel())
        # (per-pair negatives only: shard() refuses shared ones)
        mask = batch.neg_mask
        return PairBatch(batch.user[part], batch.pos[part], batch.neg[part],
                         None if mask is None else mask[part], batch.shared,
                         scale)


class TripleBatch(NamedTuple):
    """A batch of knowledge-graph triples: ``head``, ``relation``,
    ``tail`` ``[B]``; ``neg_head`` and ``neg_tail`` ``[B, N]`` corrupted
    heads and tails per triple, ``[N]`` shared by the batch, or ``None``
    for in-batch negatives (the batch's own heads and tails)."""

    head: Tensor
    relation: Tensor
    tail: Tensor
    neg_head: Tensor | None = None
    neg_tail: Tensor | None = None
    loss_scale: float = 1.0

    def __len__(self) -> int:  # type: ignore[override]
        return self.head.numel()


class TripleLoader(ColumnLoader):
    """Shuffled knowledge-graph triples with negatives that corrupt their
    heads and tails.

    Every epoch (:meth:`set_epoch`) shuffles the triples and draws, per
    triple, ``num_neg`` heads and ``num_neg`` tails uniformly over all
    entities, from a generator on the triples' device seeded by ``(seed,
    epoch)``: a resumed run sees the batches of an uninterrupted one, on
    any device.  As in LibKGE and PyG, negatives are not filtered against
    the known triples (with thousands of entities a drawn corruption is
    rarely true).  ``shared=True`` draws ``num_neg`` heads and tails per
    *batch*, scored for every triple of it (one distance matrix instead
    of ``B * num_neg`` gathered embeddings).  ``num_neg=0`` draws none:
    the model takes the batch's own heads and tails as negatives
    (in-batch).

    Args:
        triples: ``[3, T]`` (head, relation, tail) training triples.
        num_entities: Entities to draw from.
        batch_size: Triples per batch.
        num_neg: Negative heads and tails per triple (0: in-batch).
        shared: Draw the negatives once per batch.
        shuffle, drop_last, seed, device: As :class:`ColumnLoader`.
    """

    what = 'triples'

    def __init__(self, triples: Tensor, num_entities: int,
                 batch_size: int = 1024, num_neg: int = 256,
                 shared: bool = False, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        super().__init__(triples, batch_size, shuffle, drop_last, seed)
        if num_neg < 0:
            raise ValueError(f'TripleLoader: num_neg must be >= 0, got '
                             f'{num_neg}')
        ent = self.rows[[0, 2]]
        if int(ent.min()) < 0 or int(ent.max()) >= num_entities:
            raise ValueError(f'TripleLoader: entity ids must lie in [0, '
                             f'{num_entities}), got {int(ent.min())} .. '
                             f'{int(ent.max())}')
        self.num_entities = num_entities
        self.num_neg = num_neg
        self.shared = shared
        if device is not None:
            self.to(device)

    @property
    def triples(self) -> Tensor:
        """The ``[3, T]`` training triples."""
        return self.rows

    def shard(self, rank: int, world_size: int) -> TripleLoader:
        """:meth:`EpochSeeded.shard`; in-batch and shared negatives are
        refused with several processes (a slice would rank against the
        whole batch's, not the single-process loss)."""
        if world_size > 1 and (self.num_neg == 0 or self.shared):
            raise ValueError('TripleLoader.shard: in-batch and shared '
                             'negatives cannot be split among processes '
                             'exactly; train in one process or draw '
                             'negatives per triple')
        super().shard(rank, world_size)
        return self

    def __iter__(self) -> Iterator[TripleBatch]:
        num = self.num_neg
        for idx, gen in self._batches():
            h, r, t = self.rows[:, idx]
            neg_h = neg_t = None
            if num:
                shape = (2, num) if self.shared else (2, idx.numel(), num)
                neg = torch.randint(self.num_entities, shape,
                                    generator=gen, device=idx.device)
                neg_h, neg_t = neg[0], neg[1]
            if self.world_size > 1:
                part, scale = self._local(idx.numel())
                yield TripleBatch(h[part], r[part], t[part], neg_h[part],
                                  neg_t[part], scale)
            else:
                yield TripleBatch(h, r, t, neg_h, neg_t)


class ClickBatch(NamedTuple):
    """A batch of labelled (user, item) rows: ``user``, ``item`` ``[B]``
    and ``label`` ``[B]`` float (1 clicked, 0 not)."""

    user: Tensor
    item: Tensor
    label: Tensor
    loss_scale: float = 1.0

    def __len__(self) -> int:  # type: ignore[override]
        return self.user.numel()


class ClickLoader(ColumnLoader):
    """Shuffled labelled rows (click-through data with explicit negatives,
    e.g. :attr:`~pyg_recsys.data.split.Split.labelled`; or rated pairs,
    the labels then the ratings), reshuffled per epoch from ``(seed,
    epoch)``.

    Args:
        rows: ``[3, n]`` (user, item, label), or ``[2, n]`` (user, item)
            with ``labels``.
        batch_size: Rows per batch.
        shuffle, seed, device: As :class:`ColumnLoader`.
        drop_last: Drop the last partial batch (KGCN's training loop
            does).
        labels: ``[n]`` float labels (e.g. ratings) of ``[2, n]`` rows.
    """

    def __init__(self, rows: Tensor, batch_size: int = 128,
                 shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0,
                 device: torch.device | str | None = None,
                 labels: Tensor | None = None) -> None:
        self.width = 3 if labels is None else 2
        self.what = ('rows (user, item, label)' if labels is None else
                     'rows (user, item) with labels')
        self.labels = None
        if labels is not None:
            labels = torch.as_tensor(labels).float().view(-1)
            if rows.dim() == 2 and labels.numel() != rows.size(-1):
                raise ValueError(f'ClickLoader: one label per row: '
                                 f'{rows.size(-1)} rows, {labels.numel()} '
                                 f'labels')
            self.labels = labels.to(rows.device)
        super().__init__(rows, batch_size, shuffle, drop_last, seed, device)

    def to(self, device: torch.device | str) -> ClickLoader:
        super().to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    def __iter__(self) -> Iterator[ClickBatch]:
        for idx, _ in self._batches():
            u, i = self.rows[0, idx], self.rows[1, idx]
            y = (self.rows[2, idx].float() if self.labels is None
                 else self.labels[idx])
            scale = 1.0
            if self.world_size > 1:
                part, scale = self._local(idx.numel())
                u, i, y = u[part], i[part], y[part]
            yield ClickBatch(u, i, y, scale)


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

    def shard(self, rank: int, world_size: int) -> LinkNeighborPairLoader:
        """Not supported: PyG's sampler draws each subgraph whole."""
        raise ValueError('LinkNeighborPairLoader cannot be sharded over '
                         'processes (PyG samples each batch as one '
                         'subgraph); train sage/gat without --minibatch '
                         'under torchrun, or in one process')

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


class Blocks(NamedTuple):
    """The multi-hop importance neighbourhoods of a set of seed items
    (:meth:`NeighborhoodSampler.blocks`), outermost hop first.

    ``nodes[l]`` are the global item ids whose representation layer ``l``
    computes (``nodes[0]`` the inputs, ``nodes[-1]`` the seeds), each
    ``nodes[l + 1]`` a prefix of ``nodes[l]``; ``edges[l]`` ``[2, E_l]``
    holds (source position in ``nodes[l]``, destination position in
    ``nodes[l + 1]``) with the visit counts ``weights[l]`` ``[E_l]``."""

    nodes: list[Tensor]
    edges: list[Tensor]
    weights: list[Tensor]


class NeighborhoodSampler:
    r"""PinSage's importance neighbourhoods over the bipartite user-item
    training graph, built per mini-batch.

    A hop gives every item its ``num_neighbors`` most visited items by
    ``num_walks`` walks item -> user -> item that stop with probability
    ``restart_prob`` on each item
    (:func:`~pyg_recsys.ops.random_walk.importance_neighbors`); :meth:`blocks`
    repeats it ``num_layers`` times outward from the seeds.  Work and
    memory are proportional to the items of the batch and their hops, never
    to the size of the graph (the graph itself is read, not copied).

    Args:
        pairs: ``[2, E]`` (user, item) training pairs.
        num_users: Number of users.
        num_items: Number of items.
        num_layers: Hops.
        num_neighbors: :math:`T`, neighbours per item.
        num_walks: Walks per item and hop.
        restart_prob: Stop probability on an item.
    """

    def __init__(self, pairs: Tensor, num_users: int, num_items: int,
                 num_layers: int = 2, num_neighbors: int = 10,
                 num_walks: int = 50, restart_prob: float = 0.5) -> None:
        from pyg_recsys.ops.csr import CSR
        name = 'NeighborhoodSampler'
        if num_layers < 1 or num_neighbors < 1 or num_walks < 1:
            raise ValueError(f'{name}: num_layers, num_neighbors and '
                             f'num_walks must be >= 1, got {num_layers}, '
                             f'{num_neighbors} and {num_walks}')
        if not 0 < restart_prob < 1:
            raise ValueError(f'{name}: restart_prob must lie in (0, 1), got '
                             f'{restart_prob}')
        pairs = pairs.long().cpu()
        # the bipartite graph, users 0 .. U-1 then items U .. U+I-1: the
        # rows of R (items shifted by U) then the rows of R^T
        R = CSR.from_pairs(pairs[0], pairs[1], num_users, num_items)
        Rt = CSR.from_pairs(pairs[1], pairs[0], num_items, num_users)
        self.rowptr = torch.cat([R.rowptr, R.nnz + Rt.rowptr[1:]])
        self.col = torch.cat([R.col + num_users, Rt.col])
        del R, Rt
        self.is_item = torch.arange(num_users + num_items) >= num_users
        self.num_users, self.num_items = num_users, num_items
        self.num_layers = num_layers
        self.num_neighbors = num_neighbors
        self.num_walks = num_walks
        self.restart_prob = restart_prob

    def user_items(self) -> tuple[Tensor, Tensor]:
        """``(rowptr [U + 1], col)``: every user's training items (the
        user rows of the walked graph, items numbered from 0)."""
        U = self.num_users
        rowptr = self.rowptr[:U + 1]
        return rowptr, self.col[:int(rowptr[-1])] - U

    def to(self, device: torch.device | str) -> NeighborhoodSampler:
        """Walks on ``device`` from now on (in place; returns ``self``)."""
        self.rowptr = self.rowptr.to(device)
        self.col = self.col.to(device)
        self.is_item = self.is_item.to(device)
        return self

    def hop(self, items: Tensor, generator: torch.Generator | None = None
            ) -> tuple[Tensor, Tensor]:
        """``(neighbors, weight)`` ``[len(items), T]``: item ids (``-1``
        padding) and visit counts."""
        from pyg_recsys.ops.random_walk import importance_neighbors
        U = self.num_users
        nbr, w = importance_neighbors(
            self.rowptr, self.col, items.to(self.rowptr.device) + U,
            self.num_neighbors, self.num_walks, self.restart_prob,
            generator, count=self.is_item, stop_at=self.is_item)
        return torch.where(nbr >= 0, nbr - U, nbr), w

    def blocks(self, seeds: Tensor, generator: torch.Generator | None = None
               ) -> Blocks:
        """The ``num_layers``-hop neighbourhoods of distinct ``seeds``."""
        nodes, edges, weights = [seeds], [], []
        for _ in range(self.num_layers):
            dst = nodes[0]
            nbr, w = self.hop(dst, generator)
            ok = nbr >= 0
            rows = torch.arange(dst.numel(), device=dst.device).view(
                -1, 1).expand_as(nbr)[ok]
            src_ids, w = nbr[ok], w[ok]
            new = torch.unique(src_ids)
            new = new[~torch.isin(new, dst)]
            src_nodes = torch.cat([dst, new])
            # positions of the neighbours among src_nodes
            sorted_ids, perm = torch.sort(src_nodes)
            src = perm[torch.searchsorted(sorted_ids, src_ids)]
            nodes.insert(0, src_nodes)
            edges.insert(0, torch.stack([src, rows]))
            weights.insert(0, w)
        return Blocks(nodes, edges, weights)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(layers={self.num_layers}, '
                f'neighbors={self.num_neighbors}, walks={self.num_walks}, '
                f'restart_prob={self.restart_prob})')


class ItemPairBatch(NamedTuple):
    """A batch of PinSage's item-to-item training examples.

    ``seeds`` are the distinct items the batch embeds and ``blocks`` their
    neighbourhoods; ``query``, ``pos`` ``[B]``, ``neg`` ``[N]`` (shared by
    the batch) and ``hard`` ``[B, h]`` are positions in ``seeds``;
    ``valid`` ``[B]`` is ``False`` where no positive other than the query
    could be drawn (the pair is left out of the loss)."""

    seeds: Tensor
    blocks: Blocks
    query: Tensor
    pos: Tensor
    neg: Tensor
    hard: Tensor
    valid: Tensor

    @property
    def batch_size(self) -> int:
        return self.query.numel()

    def __len__(self) -> int:  # type: ignore[override]
        return self.query.numel()


class _ItemPairs(torch.utils.data.Dataset):
    """Batch ``b`` of one epoch of :class:`ItemPairLoader`, built from
    ``(seed, epoch, b)`` alone, so that any number of worker processes
    yields what one process would."""

    def __init__(self, loader: ItemPairLoader) -> None:
        self.loader = loader
        self.epoch = loader.epoch
        self._order: Tensor | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def __getitem__(self, b: int) -> ItemPairBatch:
        if self._order is None:
            self._order = self.loader.epoch_order()
        return self.loader.make_batch(self._order, b)


class ItemPairLoader(EpochSeeded):
    r"""Item-to-item training batches for PinSage (Ying et al., KDD 2018),
    built by worker processes while the model trains.

    One pass goes over the training (user, item) pairs in a random order:
    a pair :math:`(u, q)` gives the query item :math:`q` and a positive
    :math:`i`, another item of :math:`u` drawn uniformly (the item -> user
    -> item co-occurrence of the DGL example; a user with a single item
    gives no positive and the pair is masked out).  Each batch has
    ``num_neg`` negatives drawn uniformly over all items and shared by all
    its queries, and, with a ``hard`` sampler (e.g.
    :class:`~pyg_recsys.sampling.PPRHardSampler` with ``of='items'``),
    :math:`\min(n - 1, \text{max\_hard})` hard negatives per query at
    epoch :math:`n` (the paper's curriculum).  It then draws the
    neighbourhoods of all the batch's items through ``sampler``
    (:class:`NeighborhoodSampler`).

    With ``num_workers > 0`` the batches come from a
    :class:`torch.utils.data.DataLoader` whose workers run the walks
    (producer) while the main process trains (consumer).  Every batch is
    drawn from a generator seeded by ``(seed, epoch, batch)``, so the
    batches do not depend on the number of workers and a resumed run sees
    what an uninterrupted one would.

    Args:
        pairs: ``[2, E]`` (user, item) training pairs.
        sampler: The neighbourhood sampler.
        batch_size: Queries per batch.
        num_neg: Shared uniform negatives per batch.
        hard: Hard-negative sampler over item queries, or ``None``.
        max_hard: Most hard negatives per query.
        num_workers: Producer processes (0: build batches in the loop).
        seed: Base seed.
        max_batches: Batches per epoch at most (``None``: one pass).
    """

    def __init__(self, pairs: Tensor, sampler: NeighborhoodSampler,
                 batch_size: int = 512, num_neg: int = 500,
                 hard: NegativeSampler | None = None, max_hard: int = 4,
                 num_workers: int = 0, seed: int = 0,
                 max_batches: int | None = None) -> None:
        name = 'ItemPairLoader'
        if pairs.dim() != 2 or pairs.size(0) != 2 or pairs.size(1) == 0:
            raise ValueError(f'{name}: pairs must have shape [2, E] with '
                             f'E > 0, got {list(pairs.shape)}')
        if batch_size < 1 or num_neg < 1 or max_hard < 0 or \
                num_workers < 0:
            raise ValueError(f'{name}: need batch_size >= 1, num_neg >= 1, '
                             f'max_hard >= 0, num_workers >= 0; got '
                             f'{batch_size}, {num_neg}, {max_hard}, '
                             f'{num_workers}')
        self.pairs = pairs.long().cpu()
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_neg = num_neg
        self.hard = hard
        self.max_hard = max_hard
        self.num_workers = num_workers
        self.seed = seed
        self.max_batches = max_batches

    def _num_examples(self) -> int:
        return self.pairs.size(1)

    def __len__(self) -> int:
        n = self._num_batches(self.pairs.size(1))
        return n if self.max_batches is None else min(n, self.max_batches)

    def shard(self, rank: int, world_size: int) -> ItemPairLoader:
        """Not supported: several processes would each need the whole
        neighbourhood of their queries."""
        if world_size > 1:
            raise ValueError('ItemPairLoader cannot be sharded over '
                             'processes; train PinSage in one process')
        return self

    def num_hard(self) -> int:
        """Hard negatives per query at the current epoch."""
        if self.hard is None:
            return 0
        return min(max(self.epoch - 1, 0), self.max_hard)

    def epoch_order(self) -> Tensor:
        """The pairs' order of the current epoch."""
        return torch.randperm(self.pairs.size(1),
                              generator=self.epoch_generator())

    def make_batch(self, order: Tensor, b: int) -> ItemPairBatch:
        """Batch ``b`` of the epoch whose pair order is ``order``."""
        gen = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch) * 1_000_033 + b)
        idx = order[b * self.batch_size:(b + 1) * self.batch_size]
        user, query = self.pairs[0, idx], self.pairs[1, idx]
        # the user's row of the walked graph: its items, shifted by U
        rowptr, col, U = (self.sampler.rowptr, self.sampler.col,
                          self.sampler.num_users)
        start = rowptr[user]
        deg = rowptr[user + 1] - start
        # another item of the user: a uniform draw among the deg - 1 others
        off = (torch.rand(user.numel(), generator=gen, dtype=torch.float64)
               * (deg - 1).clamp(min=1)).long()
        pos = col[start + off] - U
        pos = torch.where(pos == query, col[start + deg - 1] - U, pos)
        valid = (deg > 1) & (pos != query)
        neg = torch.randint(self.sampler.num_items, (self.num_neg,),
                            generator=gen)
        h = self.num_hard()
        hard = (self.hard.sample(query, h, gen).view(-1, h) if h > 0 else
                torch.empty(query.numel(), 0, dtype=torch.long))
        seeds, inv = torch.unique(torch.cat([query, pos, neg,
                                             hard.reshape(-1)]),
                                  return_inverse=True)
        B, N = query.numel(), neg.numel()
        blocks = self.sampler.blocks(seeds, gen)
        return ItemPairBatch(seeds, blocks, inv[:B], inv[B:2 * B],
                             inv[2 * B:2 * B + N],
                             inv[2 * B + N:].view(B, h), valid)

    def __iter__(self) -> Iterator[ItemPairBatch]:
        data = _ItemPairs(self)
        if self.num_workers == 0:
            for b in range(len(data)):
                yield data[b]
            return
        loader = torch.utils.data.DataLoader(
            data, batch_size=None, shuffle=False,
            num_workers=self.num_workers, prefetch_factor=4,
            persistent_workers=False)
        yield from loader
