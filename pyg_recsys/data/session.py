r"""Item sequences as session graphs, and their batching.

One data path serves the session and sequence recommenders (SR-GNN, TAGNN,
GRU4Rec, SASRec).  A sequence of item ids becomes one :class:`SessionData`
(a :class:`~torch_geometric.data.Data`) per training example; PyG's
:class:`~torch_geometric.data.Batch` (or
:class:`torch_geometric.loader.DataLoader`) batches them; graph models read
``x`` / ``edge_index`` / the edge weights, and GRU4Rec / SASRec read the
same batch as padded ``[B, L]`` sequences through :func:`to_padded`
(:func:`torch_geometric.utils.to_dense_batch` underneath).

The session graph follows SR-GNN's reference implementation
(``pytorch_code/utils.py``, ``Data.get_slice``, Wu et al., AAAI 2019):

* nodes are the **sorted** unique items of the sequence (``np.unique``,
  not order of first appearance);
* a directed edge :math:`u \to v` for every consecutive pair of steps,
  **binary** (a transition seen twice is one edge), with a self-loop where
  an item is repeated consecutively (and no other self-loops);
* with :math:`A \in \{0, 1\}^{N \times N}` the adjacency,
  ``A_in = A / colsum(A)`` and ``A_out = A.T / rowsum(A)`` (zero sums
  replaced by one), and the layer computes ``A_in.T @ h`` and
  ``A_out.T @ h``.  As edge weights of :math:`e = (u \to v)`:

  .. math::
      w^{in}_e = \frac{1}{\deg^{in}(v)}, \qquad
      w^{out}_e = \frac{1}{\deg^{out}(u)},

  so the incoming message of node :math:`v` is
  :math:`\sum_{e = (u \to v)} w^{in}_e \mathbf{h}_u` (mean over its
  predecessors) and the outgoing message of node :math:`u` is
  :math:`\sum_{e = (u \to v)} w^{out}_e \mathbf{h}_v` (mean over its
  successors, i.e. propagate over the flipped ``edge_index``).

The paper's text normalises by out-degree only; the reference code (and
therefore its published numbers) uses the above, and so do we.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

from pyg_recsys.data.loader import EpochSeeded

MODES = ('prefix', 'sequence')


class SessionData(Data):
    """A session graph.

    Attributes:
        x: ``[N]`` item ids of the nodes (sorted unique items).
        edge_index: ``[2, E]`` transitions between consecutive steps, as
            local node indices, deduplicated and sorted by (source,
            target).
        edge_weight_in: ``[E]`` SR-GNN in-weight, ``1 / in-degree(target)``.
        edge_weight_out: ``[E]`` SR-GNN out-weight,
            ``1 / out-degree(source)``.
        alias: ``[L]`` node index of each step (``x[alias] == seq``);
            incremented by the node offset when batched.
        seq: ``[L]`` item id of each step.
        last: ``[1]`` node index of the last step (``alias[-1]``);
            incremented by the node offset when batched.
        length: ``[1]`` number of steps ``L``.
        y: ``[1]`` the next item, or ``[L]`` the next item after every step
            (absent when built without a target).
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key in ('alias', 'last'):
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)


def _as_ids(value: Any, name: str, where: str) -> Tensor:
    """``value`` as a 1-D long tensor, or a clear error."""
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f'{where}: {name} must be integer item ids, '
                            f'could not convert it ({err})') from None
        if value.numel() == 0:  # [] converts to float32
            value = value.long()
    if value.dtype == torch.bool or value.is_floating_point() \
            or value.is_complex():
        raise TypeError(f'{where}: {name} must hold integer item ids, got '
                        f'dtype {value.dtype}; cast it with .long()')
    return value.long()


def _check_range(ids: Tensor, name: str, where: str,
                 num_items: int | None) -> None:
    if ids.numel() == 0:
        return
    low = int(ids.min())
    if low < 0:
        raise ValueError(f'{where}: negative item id {low} in {name}; item '
                         f'ids must be in [0, num_items)')
    if num_items is not None:
        high = int(ids.max())
        if high >= num_items:
            raise ValueError(f'{where}: item id {high} in {name} is >= '
                             f'num_items={num_items}; remap the ids or pass '
                             f'a larger num_items')


def _check_max_len(max_len: int | None, where: str) -> None:
    if max_len is not None and (isinstance(max_len, bool)
                                or not isinstance(max_len, int)
                                or max_len < 1):
        raise ValueError(f'{where}: max_len must be an integer >= 1 (or '
                         f'None for no limit), got {max_len!r}')


def _build(seq: Tensor, y: Tensor | None) -> SessionData:
    """The session graph of a validated, non-empty 1-D long ``seq``."""
    x, alias = torch.unique(seq, sorted=True, return_inverse=True)
    num_nodes = x.numel()
    key = torch.unique(alias[:-1] * num_nodes + alias[1:], sorted=True)
    src, dst = key.div(num_nodes, rounding_mode='floor'), key % num_nodes
    dtype = torch.get_default_dtype()
    deg_in = torch.bincount(dst, minlength=num_nodes).to(dtype)
    deg_out = torch.bincount(src, minlength=num_nodes).to(dtype)
    data = SessionData(
        x=x,
        edge_index=torch.stack([src, dst]),
        edge_weight_in=deg_in[dst].reciprocal(),
        edge_weight_out=deg_out[src].reciprocal(),
        alias=alias,
        seq=seq,
        last=alias[-1:].clone(),
        length=torch.tensor([seq.numel()]),
    )
    if y is not None:
        data.y = y
    return data


def session_graph(
    seq: Tensor | Sequence[int],
    target: Tensor | int | Sequence[int] | None = None,
    num_items: int | None = None,
    max_len: int | None = None,
) -> SessionData:
    """Build the SR-GNN session graph of one item sequence.

    See the module docstring for the exact graph and weights.

    Args:
        seq: ``[L]`` item ids in time order.
        target: ``None``; one item (an ``int`` or a one-element tensor,
            stored as ``y`` of shape ``[1]``: the next item); or ``L`` items
            (``y`` of shape ``[L]``: the next item after every step).
        num_items: If given, every id must be ``< num_items``.
        max_len: Keep only the last ``max_len`` steps (and their targets).

    Returns:
        A :class:`SessionData`.
    """
    where = 'session_graph'
    _check_max_len(max_len, where)
    seq = _as_ids(seq, 'seq', where)
    if seq.dim() != 1:
        raise ValueError(f'{where}: seq must be 1-D, got shape '
                         f'{tuple(seq.shape)}; build one graph per sequence')
    if seq.numel() == 0:
        raise ValueError(f'{where}: seq is empty; drop empty sessions '
                         f'before building graphs')
    _check_range(seq, 'seq', where, num_items)
    y = None
    if target is not None:
        y = _as_ids(target, 'target', where).reshape(-1)
        if y.numel() not in (1, seq.numel()):
            raise ValueError(f'{where}: target has {y.numel()} items but seq '
                             f'has {seq.numel()} steps; give one target or '
                             f'one per step')
        _check_range(y, 'target', where, num_items)
    if max_len is not None and seq.numel() > max_len:
        if y is not None and y.numel() == seq.numel():
            y = y[-max_len:]
        seq = seq[-max_len:]
    return _build(seq, y)


class SessionGraphs(Dataset):
    r"""Training / evaluation examples from item sequences, as session graphs.

    The same builder serves both training modes of the issue:

    * ``mode='prefix'`` (SR-GNN / TAGNN data augmentation): a sequence
      :math:`[s_1, \dots, s_n]` gives :math:`n - 1` examples, the prefix
      :math:`[s_1, \dots, s_k]` with ``y = [s_{k+1}]``, for
      :math:`k = 1 .. n - 1` (shortest prefix first).
    * ``mode='sequence'`` (SASRec / GRU4Rec): one example per sequence, the
      steps :math:`[s_1, \dots, s_{n-1}]` with ``y = [s_2, \dots, s_n]``
      (a target at every position).
    * ``targets`` given (evaluation, or SR-GNN pickles that are already
      augmented): one example per sequence, all of it, with
      ``y = [target]``.

    Sequences shorter than two items give no example in the first two modes
    and are counted in :attr:`num_skipped`.  ``max_len`` keeps the last
    ``max_len`` input steps of every example.  Examples are built lazily in
    :meth:`__getitem__`; feed the dataset to
    :class:`torch_geometric.loader.DataLoader`.

    Args:
        sequences: Item-id sequences (lists or 1-D integer tensors).
        targets: Optional one target item per sequence.
        mode: ``'prefix'`` or ``'sequence'`` (ignored when ``targets`` is
            given, which requires the default ``'prefix'``).
        max_len: Maximum number of input steps per example (``None``: no
            limit).
        num_items: Number of items; ids must be in ``[0, num_items)``.
            Inferred as the largest id plus one when not given.

    Attributes:
        num_items: Number of items.
        num_skipped: Sequences that gave no example.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int] | Tensor],
        targets: Sequence[int] | Tensor | None = None,
        mode: str = 'prefix',
        max_len: int | None = None,
        num_items: int | None = None,
    ) -> None:
        where = 'SessionGraphs'
        if mode not in MODES:
            raise ValueError(f"{where}: unknown mode '{mode}'; use one of "
                             f'{MODES}')
        _check_max_len(max_len, where)
        if targets is not None and mode != 'prefix':
            raise ValueError(f"{where}: targets are given, so every example "
                             f"is a sequence with one target; mode "
                             f"'{mode}' needs targets=None")
        seqs = [_as_ids(s, f'sequence {i}', where)
                for i, s in enumerate(sequences)]
        for i, s in enumerate(seqs):
            if s.dim() != 1:
                raise ValueError(f'{where}: sequence {i} must be 1-D, got '
                                 f'shape {tuple(s.shape)}')
            if s.numel() == 0:
                raise ValueError(f'{where}: sequence {i} is empty; drop '
                                 f'empty sessions first')
        lengths = torch.tensor([s.numel() for s in seqs], dtype=torch.long)
        flat = torch.cat(seqs) if seqs else torch.empty(0, dtype=torch.long)
        _check_range(flat, 'sequences', where, num_items)
        self.targets: Tensor | None = None
        if targets is not None:
            self.targets = _as_ids(targets, 'targets', where).reshape(-1)
            if self.targets.numel() != len(seqs):
                raise ValueError(f'{where}: {self.targets.numel()} targets '
                                 f'for {len(seqs)} sequences; give one '
                                 f'target per sequence')
            _check_range(self.targets, 'targets', where, num_items)
        if num_items is None:
            high = [int(t.max()) for t in (flat, self.targets)
                    if t is not None and t.numel() > 0]
            num_items = max(high) + 1 if high else 0
        self.num_items = num_items
        self.mode = mode
        self.max_len = max_len
        self.flat = flat
        ptr = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        index = torch.arange(len(seqs))
        if self.targets is not None:
            self.ex_seq = index
            stop = ptr[1:]
        elif mode == 'prefix':
            counts = (lengths - 1).clamp(min=0)
            self.ex_seq = index.repeat_interleave(counts)
            first = ptr[:-1].repeat_interleave(counts)
            offset = torch.arange(int(counts.sum())) - (
                counts.cumsum(0) - counts).repeat_interleave(counts)
            stop = first + offset + 1
        else:
            self.ex_seq = index[lengths >= 2]
            stop = ptr[1:][lengths >= 2] - 1
        start = ptr[self.ex_seq]
        if max_len is not None:
            start = torch.maximum(start, stop - max_len)
        self.ex_start, self.ex_stop = start, stop
        self.num_skipped = int((lengths < 2).sum()) \
            if self.targets is None else 0

    def __len__(self) -> int:
        return self.ex_stop.numel()

    def __getitem__(self, idx: int) -> SessionData:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f'SessionGraphs: index {idx} out of range for '
                             f'{n} examples')
        start, stop = int(self.ex_start[idx]), int(self.ex_stop[idx])
        seq = self.flat[start:stop]
        if self.targets is not None:
            y = self.targets[self.ex_seq[idx]].view(1)
        elif self.mode == 'prefix':
            y = self.flat[stop:stop + 1]
        else:
            y = self.flat[start + 1:stop + 1]
        return _build(seq, y)

    def collate(self, index: Tensor | Sequence[int]) -> Batch:
        """The examples ``index`` as one batch, built in a few vectorised
        tensor operations.

        The result equals ``Batch.from_data_list([self[i] for i in
        index])`` field by field (and supports ``get_example`` /
        ``to_data_list``), but costs one ``torch.unique`` over the batch's
        steps instead of one per example: PyG's generic collate of
        per-example graphs is the bottleneck of an epoch otherwise.
        """
        index = torch.as_tensor(index, dtype=torch.long).view(-1)
        n = len(self)
        if index.numel() == 0:
            raise ValueError('SessionGraphs.collate: index is empty; a batch '
                             'needs at least one example')
        if int(index.min()) < -n or int(index.max()) >= n:
            raise IndexError(f'SessionGraphs.collate: index out of range for '
                             f'{n} examples')
        index = index % n
        start, stop = self.ex_start[index], self.ex_stop[index]
        length = stop - start
        num = index.numel()
        graph = torch.arange(num).repeat_interleave(length)  # step -> graph
        step_ptr = torch.cat([length.new_zeros(1), length.cumsum(0)])
        pos = torch.arange(graph.numel()) - step_ptr[graph]
        flat_pos = start[graph] + pos
        seq = self.flat[flat_pos]
        # nodes: sorted unique items per graph, graphs in order
        width = max(self.num_items, 1)
        node_key, alias = torch.unique(graph * width + seq, sorted=True,
                                       return_inverse=True)
        x = node_key % width
        node_graph = node_key.div(width, rounding_mode='floor')
        num_nodes = torch.bincount(node_graph, minlength=num)
        node_ptr = torch.cat([num_nodes.new_zeros(1), num_nodes.cumsum(0)])
        total = int(node_ptr[-1])
        # edges: consecutive steps of the same graph, deduplicated
        same = graph[:-1] == graph[1:]
        edge_key = torch.unique(alias[:-1][same] * total + alias[1:][same],
                                sorted=True)
        src = edge_key.div(total, rounding_mode='floor')
        dst = edge_key % total
        dtype = torch.get_default_dtype()
        deg_in = torch.bincount(dst, minlength=total).to(dtype)
        deg_out = torch.bincount(src, minlength=total).to(dtype)
        num_edges = torch.bincount(node_graph[src], minlength=num)
        edge_ptr = torch.cat([num_edges.new_zeros(1), num_edges.cumsum(0)])
        last = alias[step_ptr[1:] - 1]
        if self.targets is not None:
            y = self.targets[self.ex_seq[index]]
            y_ptr = torch.arange(num + 1)
        elif self.mode == 'prefix':
            y = self.flat[stop]
            y_ptr = torch.arange(num + 1)
        else:
            y = self.flat[flat_pos + 1]
            y_ptr = step_ptr
        out = Batch(_base_cls=SessionData)
        out.x = x
        out.edge_index = torch.stack([src, dst])
        out.edge_weight_in = deg_in[dst].reciprocal()
        out.edge_weight_out = deg_out[src].reciprocal()
        out.alias = alias
        out.seq = seq
        out.last = last
        out.length = length
        out.y = y
        out.batch = node_graph
        out.ptr = node_ptr
        ones = torch.arange(num + 1)
        zeros = torch.zeros(num, dtype=torch.long)
        out._num_graphs = num
        # the longest example, known here on the CPU: padding a batch on
        # a GPU then needs no read-back (see max_length)
        out._max_length = int(length.max())
        out._slice_dict = {
            'x': node_ptr, 'edge_index': edge_ptr,
            'edge_weight_in': edge_ptr, 'edge_weight_out': edge_ptr,
            'alias': step_ptr, 'seq': step_ptr, 'last': ones,
            'length': ones, 'y': y_ptr}
        out._inc_dict = {
            'x': zeros, 'edge_index': node_ptr[:-1], 'edge_weight_in': zeros,
            'edge_weight_out': zeros, 'alias': node_ptr[:-1], 'seq': zeros,
            'last': node_ptr[:-1], 'length': zeros, 'y': zeros}
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, mode={self.mode}, '
                f'num_items={self.num_items})')


class SessionLoader(EpochSeeded):
    """Batches of a :class:`SessionGraphs` dataset: the one loader of the
    session and sequence models.

    Iterating yields :class:`~torch_geometric.data.Batch` objects equal to
    what :class:`torch_geometric.loader.DataLoader` yields for the same
    examples, built by :meth:`SessionGraphs.collate` (vectorised, several
    times faster).  Shuffling draws a permutation from ``seed`` and the
    epoch number (:meth:`set_epoch`, called by the
    :class:`~pyg_recsys.train.Trainer`), so a resumed run sees the same
    batches as an uninterrupted one.

    With ``bucket=k`` (and ``shuffle``), each run of ``k`` consecutive
    batches of the shuffled order is re-cut after sorting its examples by
    length, and the batches are then shuffled again: every batch still holds
    random examples, but of similar length, so models that read padded
    sequences (GRU4Rec, SASRec) compute on far fewer padding steps.  The
    same examples are seen once per epoch either way.

    Args:
        dataset: The examples.
        batch_size: Examples per batch.
        shuffle: Shuffle every epoch.
        drop_last: Drop the last, smaller batch.
        seed: Seed of the shuffling.
        bucket: Batches per length-sorting pool (``None``: no bucketing).
    """

    def __init__(self, dataset: SessionGraphs, batch_size: int = 100,
                 shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, bucket: int | None = None) -> None:
        if not isinstance(dataset, SessionGraphs):
            raise TypeError(f'SessionLoader: dataset must be a SessionGraphs, '
                            f'got {type(dataset).__name__}')
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
                or batch_size < 1:
            raise ValueError(f'SessionLoader: batch_size must be a positive '
                             f'integer, got {batch_size!r}')
        if bucket is not None and (isinstance(bucket, bool)
                                   or not isinstance(bucket, int)
                                   or bucket < 1):
            raise ValueError(f'SessionLoader: bucket must be a positive '
                             f'integer or None, got {bucket!r}')
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self._num_batches(len(self.dataset))

    def _num_examples(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        n = len(self.dataset)
        size = self.batch_size
        if not self.shuffle:
            order = torch.arange(n)
            for i in range(len(self)):
                yield self._collate(order[i * size:(i + 1) * size])
            return
        gen = self.epoch_generator()
        order = torch.randperm(n, generator=gen)
        batches = [order[i * size:(i + 1) * size] for i in range(len(self))]
        if self.bucket is not None and self.bucket > 1:
            length = self.dataset.ex_stop - self.dataset.ex_start
            pool = self.bucket * size
            batches = []
            for start in range(0, len(self) * size, pool):
                chunk = order[start:min(start + pool, len(self) * size)]
                chunk = chunk[torch.sort(length[chunk], stable=True)[1]]
                batches += list(chunk.split(size))
            perm = torch.randperm(len(batches), generator=gen)
            batches = [batches[i] for i in perm.tolist()]
        for index in batches:
            yield self._collate(index)

    def _collate(self, index: Tensor) -> Batch:
        """The batch of examples ``index``, or this process's part of it
        (:meth:`~pyg_recsys.data.loader.EpochSeeded.shard`), with its
        ``loss_scale`` counted in targets (one per example, or one per
        step in ``mode='sequence'``)."""
        if self.world_size == 1:
            return self.dataset.collate(index)
        lo = index.numel() * self.rank // self.world_size
        hi = index.numel() * (self.rank + 1) // self.world_size
        out = self.dataset.collate(index[lo:hi])  # (shard() checked hi > lo)
        if self.dataset.mode == 'sequence':
            if getattr(self, '_length', None) is None:
                self._length = self.dataset.ex_stop - self.dataset.ex_start
            length = self._length
            total, local = length[index].sum(), length[index[lo:hi]].sum()
            scale = float(local) * self.world_size / float(total)
        else:
            scale = (hi - lo) * self.world_size / index.numel()
        out._loss_scale = scale
        out._global_size = index.numel()
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.dataset!r}, '
                f'batch_size={self.batch_size}, shuffle={self.shuffle})')


def step_batch(batch: Data) -> Tensor:
    """``[sum L]`` graph index of every step of a (batched) session graph."""
    length = batch.length
    return torch.arange(length.numel(), device=length.device
                        ).repeat_interleave(length,
                                            output_size=batch.seq.numel())


def max_length(batch: Data) -> int:
    """The number of steps of the longest example of a batch: recorded by
    :meth:`SessionGraphs.collate` (so a batch on a GPU is padded without
    reading a value back from it), computed otherwise."""
    value = getattr(batch, '_max_length', None)
    return int(batch.length.max()) if value is None else value


def to_padded(
    batch: Data,
    key: str = 'seq',
    fill_value: int = 0,
    max_len: int | None = None,
) -> tuple[Tensor, Tensor]:
    """A per-step attribute of a batch of session graphs as ``[B, L]``.

    Steps are left-aligned (padding on the right), in time order, through
    :func:`torch_geometric.utils.to_dense_batch`; the last real step of row
    ``b`` is at column ``batch.length[b] - 1``.

    Args:
        batch: A :class:`~torch_geometric.data.Batch` (or one
            :class:`SessionData`).
        key: The per-step attribute: ``'seq'`` (item ids), ``'alias'``
            (node indices into the batch) or ``'y'`` (in
            ``mode='sequence'``).
        fill_value: Value at padded positions.
        max_len: Width of the output (default: the longest session); longer
            sessions are cut at the end, so prefer truncating with
            ``max_len`` when building the graphs.

    Returns:
        ``(padded, mask)``, both ``[B, L]``; ``mask`` is ``True`` at real
        steps.
    """
    value = batch[key]
    total = batch.seq.numel()  # one entry per step
    if value.size(0) != total:
        raise ValueError(f"to_padded: batch.{key} has {value.size(0)} "
                         f"entries, not one per step ({total}); pass a "
                         f"per-step key such as 'seq' or 'alias'")
    longest = max_length(batch)
    return to_dense_batch(value, step_batch(batch), fill_value=fill_value,
                          max_num_nodes=longest if max_len is None
                          else min(max_len, longest),
                          batch_size=batch.length.numel())


__all__ = [
    'MODES',
    'SessionData',
    'SessionGraphs',
    'SessionLoader',
    'session_graph',
    'max_length',
    'step_batch',
    'to_padded',
]
