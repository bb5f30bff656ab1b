"""Leak-free train / validation / test splits of an interaction log.

Every split returns a :class:`Split`: three disjoint sets of unique
``(user, item)`` pairs plus a record of how they were made (kind, seed,
cut time), so that a result can be traced to its data.  Message passing
uses :meth:`Split.graph`, built from the training pairs only.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.data.interactions import Interactions
from pyg_recsys.ops.csr import CSR, isin_sorted
from pyg_recsys.schema import (
    ITEM,
    ITEM_ITEM,
    USER,
    USER_ITEM,
    EdgeType,
    build_graph,
)

log = logging.getLogger(__name__)

PARTS = ('train', 'val', 'test')


@dataclass
class Split:
    """A user-item split, with the side relations that are never held out.

    Attributes:
        num_users: Number of users (ids ``0 .. num_users - 1``).
        num_items: Number of items (ids ``0 .. num_items - 1``).
        train: ``[2, E_train]`` long tensor of (user, item) pairs.
        val: ``[2, E_val]`` pairs held out for model selection.
        test: ``[2, E_test]`` pairs held out for the final score.
        kind: How it was made: ``'random'``, ``'temporal'``,
            ``'leave_one_out'`` or ``'fixed'``.
        seed: The seed used, if any.
        cut_time: The global cut time(s) for temporal splits.
        attrs: Optional per-part edge attributes, e.g.
            ``attrs['train']['rating']`` aligned with ``train``'s columns.
        info: Free-form provenance (dataset name, ratios, files ...).
        ids: Original ids per node type (``ids['user'][u]`` is the raw id
            of user ``u``; also ``'item'`` and ``'entity'`` where present),
            so recommendations map back without the data set.
        x: Node features per node type (``x['item']`` ``[num_items, F]``).
        num_nodes: Sizes of the node types beyond users and items
            (``{'entity': n}`` for a knowledge graph).
        side: Side relations, edge type -> ``[2, E]`` local ids: the
            relations of a knowledge graph, user-user trust
            (:data:`~pyg_recsys.schema.USER_USER`), the item-item
            co-interaction graph (:data:`~pyg_recsys.schema.ITEM_ITEM`,
            built from the training pairs).  Part of :meth:`graph`, never
            part of what is held out; reverse edge types are added there.
        side_attrs: Edge attributes of side relations (``edge_weight`` ...).
        labelled: Click-through rows per part, ``[3, n]`` (user, item,
            label) in the source's order, where the data set comes with
            explicit negatives (Last.FM as KGCN prepares it); the positives
            of a part are also in :attr:`train` / :attr:`val` /
            :attr:`test`, the negatives only here (never in the graph).
    """

    num_users: int
    num_items: int
    train: Tensor
    val: Tensor
    test: Tensor
    kind: str
    seed: int | None = None
    cut_time: Any = None
    attrs: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    x: dict[str, Tensor] = field(default_factory=dict)
    num_nodes: dict[str, int] = field(default_factory=dict)
    side: dict[EdgeType, Tensor] = field(default_factory=dict)
    side_attrs: dict[EdgeType, dict[str, Tensor]] = field(
        default_factory=dict)
    labelled: dict[str, Tensor] = field(default_factory=dict)

    def part(self, name: str) -> Tensor:
        if name not in PARTS:
            raise ValueError(f"Split.part: unknown part '{name}'; use one of "
                             f'{PARTS}')
        return getattr(self, name)

    def node_counts(self) -> dict[str, int]:
        """Node type -> number of nodes, users and items first."""
        return {USER: self.num_users, ITEM: self.num_items,
                **{t: int(n) for t, n in self.num_nodes.items()}}

    def csr(self, name: str) -> CSR:
        """The items of each user in one part, as a :class:`CSR`."""
        cache = self.__dict__.setdefault('_csr_cache', {})
        if name not in cache:
            pairs = self.part(name)
            cache[name] = CSR.from_pairs(pairs[0], pairs[1], self.num_users,
                                         self.num_items)
        return cache[name]

    def targets(self, name: str) -> CSR:
        """Held-out items of each user for ``'val'`` or ``'test'``."""
        return self.csr(name)

    def exclude(self, name: str) -> CSR:
        """Items known before ranking ``name``, masked from its ranking:
        training items for ``'val'``; training and validation items for
        ``'test'`` (and nothing for ``'train'``)."""
        cache = self.__dict__.setdefault('_csr_cache', {})
        key = f'exclude:{name}'
        if key not in cache:
            if name == 'train':
                cache[key] = CSR.from_pairs(torch.empty(0), torch.empty(0),
                                            self.num_users, self.num_items)
            elif name == 'val':
                cache[key] = self.csr('train')
            elif name == 'test':
                cache[key] = CSR.union(self.csr('train'), self.csr('val'))
            else:
                self.part(name)  # raises the error for unknown names
        return cache[key]

    def known(self) -> CSR:
        """Every known item of each user (training, validation and test):
        what a recommendation for a user of the data set leaves out."""
        return CSR.union(self.csr('train'), self.csr('val'), self.csr('test'))

    def add_co_interactions(self, min_count: int = 1,
                            top_k: int | None = None) -> Split:
        """Adds the item-item co-interaction graph of the *training* pairs
        (:func:`co_interactions`, the graph PinSage's walks run on) as the
        side relation :data:`~pyg_recsys.schema.ITEM_ITEM`, its counts as
        ``edge_weight``; returns the split."""
        edge_index, weight = co_interactions(
            self.train, self.num_users, self.num_items, min_count=min_count,
            top_k=top_k)
        self.side[ITEM_ITEM] = edge_index
        self.side_attrs[ITEM_ITEM] = {'edge_weight': weight}
        self.info['co_interactions'] = dict(min_count=min_count,
                                            top_k=top_k,
                                            edges=int(edge_index.size(1)))
        return self

    def graph(self) -> HeteroData:
        """The message-passing graph (:func:`~pyg_recsys.schema.
        build_graph`): the training pairs on ``('user', 'interacts',
        'item')`` and their reverse on ``('item', 'rev_interacts',
        'user')`` (training edge attributes such as ``rating`` and
        ``time`` on both), the side relations with their reverse edge
        types, the node features :attr:`x` and the original ids
        (``graph.orig_ids``).  Held-out pairs are never in it."""
        edges = {USER_ITEM: self.train, **self.side}
        attrs = dict(self.side_attrs)
        if self.attrs.get('train'):
            attrs[USER_ITEM] = self.attrs['train']
        return build_graph(self.node_counts(), edges, attrs, self.x,
                           self.ids)

    def meta(self) -> dict[str, Any]:
        """A JSON-able record of how the split was made and its sizes."""
        cut = self.cut_time
        if isinstance(cut, Tensor):
            cut = cut.tolist()
        out = dict(kind=self.kind, seed=self.seed, cut_time=cut,
                   num_users=self.num_users, num_items=self.num_items,
                   num_train=int(self.train.size(1)),
                   num_val=int(self.val.size(1)),
                   num_test=int(self.test.size(1)))
        if self.num_nodes:
            out['num_nodes'] = dict(self.num_nodes)
        if self.side:
            out['side'] = dict(edge_types=len(self.side),
                               edges=sum(int(e.size(1))
                                         for e in self.side.values()))
        if self.labelled:
            out['labelled'] = {p: int(r.size(1))
                               for p, r in self.labelled.items()}
        return dict(out, **self.info)

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors, lists and numbers, loadable with
        ``torch.load(..., weights_only=True)``."""
        return dict(num_users=self.num_users, num_items=self.num_items,
                    train=self.train, val=self.val, test=self.test,
                    kind=self.kind, seed=self.seed, cut_time=self.cut_time,
                    attrs=self.attrs, info=self.info,
                    ids={t: np.asarray(v).tolist()
                         for t, v in self.ids.items()},
                    x=self.x, num_nodes=self.num_nodes, side=self.side,
                    side_attrs=self.side_attrs, labelled=self.labelled)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        d = dict(d)
        d['ids'] = {t: ids_array(v) for t, v in d.get('ids', {}).items()}
        return cls(**d)

    def audit(self) -> dict[str, Any]:
        """Checks the split is leak-free; see :func:`audit`."""
        return audit(self)


def ids_array(ids: Any) -> np.ndarray:
    """Original ids as an array: int64 for integers, str otherwise."""
    ids = list(ids) if not isinstance(ids, np.ndarray) else ids
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.dtype.kind in 'iu':
        return arr.astype(np.int64)
    return arr.astype(str)


# ---------------------------------------------------------------------------
# Making splits
# ---------------------------------------------------------------------------

_MIN_EVAL = 3  # users with fewer interactions keep them all in train


def _check_ratios(where: str, ratios: Any) -> tuple[float, float, float]:
    try:
        out = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or min(out) < 0 or abs(sum(out) - 1.0) > 1e-6:
        raise ValueError(f'{where}: ratios must be three non-negative '
                         f'numbers (train, val, test) summing to 1, got '
                         f'{ratios!r}')
    return out  # type: ignore[return-value]


def _check_unique(where: str, inter: Interactions) -> None:
    key = inter.user * inter.num_items + inter.item
    if torch.unique(key).numel() != key.numel():
        raise ValueError(f'{where}: the interactions repeat some (user, '
                         f'item) pairs; build them with from_tensors() or '
                         f"read_table() (dedup='last') first")


def _offsets(user: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """Per-user degree and start offset of each user's block once the
    interactions are sorted by user."""
    deg = torch.bincount(user, minlength=num_users)
    start = torch.cumsum(deg, 0) - deg
    return deg, start


def _sort_by_user(user: Tensor, order: Tensor) -> Tensor:
    """Permutation sorting by user, ties kept in the given ``order``."""
    return order[torch.sort(user[order], stable=True).indices]


def _round_half_up(x: Tensor) -> Tensor:
    return torch.floor(x + 0.5).long()


def _make_split(inter: Interactions, part: Tensor, kind: str,
                seed: int | None, cut_time: Any,
                info: dict[str, Any]) -> Split:
    """Builds a :class:`Split` from a part code (0 train, 1 val, 2 test)
    per interaction; pairs of each part are sorted by (user, item)."""
    key = inter.user * inter.num_items + inter.item
    order = torch.argsort(key)
    part_sorted = part[order]
    pairs: dict[str, Tensor] = {}
    attrs: dict[str, dict[str, Tensor]] = {}
    for code, name in enumerate(PARTS):
        idx = order[part_sorted == code]
        pairs[name] = torch.stack([inter.user[idx], inter.item[idx]])
        extra = {attr: getattr(inter, attr)[idx]
                 for attr in ('rating', 'time')
                 if getattr(inter, attr) is not None}
        if extra:
            attrs[name] = extra
    if 'source' in inter.info:
        info = dict(source=inter.info['source'], **info)
    return Split(inter.num_users, inter.num_items, pairs['train'],
                 pairs['val'], pairs['test'], kind=kind, seed=seed,
                 cut_time=cut_time, attrs=attrs, info=info,
                 ids={USER: inter.user_ids, ITEM: inter.item_ids})


def _holdout_counts(deg: Tensor, r_val: float,
                    r_test: float) -> tuple[Tensor, Tensor]:
    """Validation and test counts per user for :func:`random_split`."""
    d = deg.double()
    n_test = _round_half_up(d * r_test)
    n_val = _round_half_up(d * r_val)
    low_test, low_val = int(r_test > 0), int(r_val > 0)
    n_test = n_test.clamp(min=low_test)
    n_val = n_val.clamp(min=low_val)
    # Keep at least one training interaction: take back from test, then
    # from validation, never below the one-item minimum.
    excess = (n_test + n_val - (deg - 1)).clamp(min=0)
    take = torch.minimum(excess, n_test - low_test)
    n_test, excess = n_test - take, excess - take
    n_val = n_val - torch.minimum(excess, n_val - low_val)
    small = deg < _MIN_EVAL
    return n_val.masked_fill(small, 0), n_test.masked_fill(small, 0)


def random_split(inter: Interactions,
                 ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0, per_user: bool = True) -> Split:
    """Random split, per user (default) or over the whole log.

    Per user: each user's interactions are shuffled (a
    :class:`torch.Generator` seeded with ``seed``, so the split is
    reproducible) and cut into train / validation / test.  Counts per user
    with ``n`` interactions: ``n_test = round(n * r_test)`` and
    ``n_val = round(n * r_val)`` rounding half up, each at least 1 when its
    ratio is positive, then reduced (test first) until at least one
    interaction is left for training.  Users with fewer than 3
    interactions keep all of them in train.  Vectorized: one sort by
    (user, random key), ranks from the per-user offsets.

    Over the whole log (``per_user=False``, the rating-prediction protocol
    of GraphRec and most explicit-feedback papers): the interactions are
    shuffled once and the first ``round(E * r_train)`` are training, the
    next ``round(E * r_val)`` validation, the rest test; users and items
    without training interactions (cold start) are counted in ``info``.

    Args:
        inter: The log (unique pairs).
        ratios: ``(train, val, test)`` fractions summing to 1.
        seed: Seed of the shuffle.
        per_user: Cut every user's interactions (``True``) or the whole
            log (``False``).
    """
    where = 'random_split'
    r_train, r_val, r_test = _check_ratios(where, ratios)
    _check_unique(where, inter)
    gen = torch.Generator().manual_seed(int(seed))
    num = len(inter)
    if not per_user:
        order = torch.randperm(num, generator=gen)
        n_train = int(_round_half_up(torch.tensor(num * r_train)))
        n_val = int(_round_half_up(torch.tensor(num * (r_train + r_val))))
        part = torch.empty(num, dtype=torch.long)
        part[order] = torch.where(
            torch.arange(num) < n_train, 0,
            torch.where(torch.arange(num) < n_val, 1, 2))
        info = dict(ratios=list(ratios), per_user=False,
                    **_cold_counts(inter, part))
        return _make_split(inter, part, 'random', int(seed), None, info)
    order = _sort_by_user(inter.user, torch.randperm(num, generator=gen))
    user = inter.user[order]
    deg, start = _offsets(inter.user, inter.num_users)
    n_val, n_test = _holdout_counts(deg, r_val, r_test)
    rank = torch.arange(num) - start[user]
    n_test_u = n_test[user]
    code = torch.where(rank < n_test_u, 2,
                       torch.where(rank < n_test_u + n_val[user], 1, 0))
    part = torch.empty(num, dtype=torch.long)
    part[order] = code
    info = dict(ratios=list(ratios), min_interactions=_MIN_EVAL,
                rounding='half-up; >=1 val/test and >=1 train per user '
                         'with >=3 interactions')
    return _make_split(inter, part, 'random', int(seed), None, info)


def _cold_counts(inter: Interactions, part: Tensor) -> dict[str, int]:
    """Held-out users and items without training interactions, per part
    (``part``: 0 train, 1 val, 2 test per interaction)."""
    train = part == 0
    seen_u = torch.zeros(inter.num_users, dtype=torch.bool)
    seen_i = torch.zeros(inter.num_items, dtype=torch.bool)
    seen_u[inter.user[train]] = True
    seen_i[inter.item[train]] = True
    info = {}
    for code, name in ((1, 'val'), (2, 'test')):
        held = part == code
        users = torch.unique(inter.user[held])
        items = torch.unique(inter.item[held])
        info[f'{name}_cold_users'] = int((~seen_u[users]).sum())
        info[f'{name}_cold_items'] = int((~seen_i[items]).sum())
    return info


def temporal_split(inter: Interactions,
                   ratios: Sequence[float] | None = (0.8, 0.1, 0.1),
                   cut_times: Sequence[float] | None = None) -> Split:
    """Global temporal split.

    Interactions before ``t_val`` are training, those in
    ``[t_val, t_test)`` validation, those at or after ``t_test`` test.
    With ``ratios`` the cuts are the global time quantiles: ``t_val`` is
    the time of the ``round(E * r_train)``-th interaction in time order and
    ``t_test`` that of the ``round(E * (r_train + r_val))``-th (ties at a
    cut go to the later part, so the fractions are approximate).  Held-out
    users and items may have no training interactions (cold start); their
    numbers are recorded in ``info``.

    Args:
        inter: The log, with ``time``.
        ratios: ``(train, val, test)`` fractions, used when ``cut_times`` is
            not given.
        cut_times: Explicit ``(t_val, t_test)`` with ``t_val <= t_test``.
    """
    where = 'temporal_split'
    if inter.time is None:
        raise ValueError(f'{where}: the interactions have no time; pass a '
                         f'time column (or use random_split / '
                         f'leave_one_out)')
    _check_unique(where, inter)
    time = inter.time
    if cut_times is not None:
        if len(cut_times) != 2 or cut_times[0] > cut_times[1]:
            raise ValueError(f'{where}: cut_times must be (t_val, t_test) '
                             f'with t_val <= t_test, got {cut_times!r}')
        cuts = [c.item() if isinstance(c, Tensor) else c
                for c in cut_times]
        info: dict[str, Any] = {'cut_times': list(cuts)}
    else:
        r_train, r_val, _ = _check_ratios(where, ratios)
        sorted_time = torch.sort(time).values
        num = sorted_time.numel()
        cuts = []
        for frac in (r_train, r_train + r_val):
            k = int(_round_half_up(torch.tensor(num * frac)))
            cuts.append(sorted_time[k].item() if k < num else math.inf)
        info = {'ratios': list(ratios)}
    part = torch.where(time < cuts[0], 0, torch.where(time < cuts[1], 1, 2))
    info.update(_cold_counts(inter, part))
    return _make_split(inter, part, 'temporal', None, tuple(cuts), info)


def leave_one_out(inter: Interactions) -> Split:
    """Leave-one-out split per user.

    Each user's interactions are ordered by time (ties, or no time at all:
    by row order of the log, recorded as ``info['order'] = 'file'``); the
    last one is test, the second-to-last validation, the rest train.
    Users with fewer than 3 interactions keep all of them in train.
    """
    where = 'leave_one_out'
    _check_unique(where, inter)
    num = len(inter)
    order = torch.arange(num)
    if inter.time is not None:
        order = torch.sort(inter.time, stable=True).indices
    order = _sort_by_user(inter.user, order)
    user = inter.user[order]
    deg, start = _offsets(inter.user, inter.num_users)
    from_end = (start + deg)[user] - 1 - torch.arange(num)
    eligible = deg[user] >= _MIN_EVAL
    code = torch.where(eligible & (from_end == 0), 2,
                       torch.where(eligible & (from_end == 1), 1, 0))
    part = torch.empty(num, dtype=torch.long)
    part[order] = code
    info = dict(order='file' if inter.time is None else 'time',
                min_interactions=_MIN_EVAL)
    return _make_split(inter, part, 'leave_one_out', None, None, info)


#: the part names a split file may use (``valid`` as RecBole calls it)
FILE_PARTS = {'train': 0, 'val': 1, 'valid': 1, 'test': 2}


def file_split(inter: Interactions, path: str) -> Split:
    """The split written in a file: one ``user<TAB>item<TAB>part`` line
    per interaction, ids as in the raw data (``inter.user_ids`` /
    ``inter.item_ids``), ``part`` one of ``train``, ``val`` (or
    ``valid``) and ``test``; a first line starting with ``user`` is a
    header.  For training on another library's split of the same log
    (``benchmarks/_recbole_split.py`` writes RecBole's).

    Every interaction of the log must be in the file exactly once, and
    every line must be an interaction of the log: anything else is an
    error naming the line.
    """
    import os.path as osp
    where = f'file_split({path})'
    _check_unique('file_split', inter)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}: no such file')

    def index(ids: Any, n: int) -> dict[str, int]:
        if ids is None:
            return {str(i): i for i in range(n)}
        return {str(x): i for i, x in enumerate(np.asarray(ids).tolist())}

    users = index(inter.user_ids, inter.num_users)
    items = index(inter.item_ids, inter.num_items)
    key_of = {int(k): n for n, k in enumerate(
        (inter.user * inter.num_items + inter.item).tolist())}
    part = torch.full((len(inter),), -1, dtype=torch.long)
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            cols = line.rstrip('\n').split('\t')
            if lineno == 1 and cols[0] == 'user':
                continue
            if not line.strip():
                continue
            if len(cols) != 3 or cols[2] not in FILE_PARTS:
                raise ValueError(
                    f'{where}, line {lineno}: expected user<TAB>item<TAB>'
                    f'part with part one of {sorted(FILE_PARTS)}, got '
                    f'{line.rstrip()!r}')
            u, i = users.get(cols[0]), items.get(cols[1])
            n = (None if u is None or i is None
                 else key_of.get(u * inter.num_items + i))
            if n is None:
                raise ValueError(f'{where}, line {lineno}: ({cols[0]}, '
                                 f'{cols[1]}) is not an interaction of the '
                                 f'data set')
            if part[n] >= 0:
                raise ValueError(f'{where}, line {lineno}: ({cols[0]}, '
                                 f'{cols[1]}) is listed twice')
            part[n] = FILE_PARTS[cols[2]]
    missing = int((part < 0).sum())
    if missing:
        n = int((part < 0).nonzero()[0])
        u, i = int(inter.user[n]), int(inter.item[n])
        name_u = u if inter.user_ids is None else inter.user_ids[u]
        name_i = i if inter.item_ids is None else inter.item_ids[i]
        raise ValueError(f'{where}: {missing} interactions of the data set '
                         f'are not in the file (e.g. user {name_u}, item '
                         f'{name_i}); it must assign every one a part')
    info = dict(file=osp.abspath(path))
    return _make_split(inter, part, 'file', None, None, info)


def _check_pairs(where: str, name: str, pairs: Any, num_users: int,
                 num_items: int) -> Tensor:
    pairs = torch.as_tensor(pairs)
    if pairs.dim() != 2 or pairs.size(0) != 2 or pairs.is_floating_point():
        raise ValueError(f'{where}: {name} must be a [2, E] integer tensor '
                         f'of (user, item) pairs, got shape '
                         f'{tuple(pairs.shape)} and dtype {pairs.dtype}')
    pairs = pairs.long()
    for row, kind, size in ((0, 'user', num_users), (1, 'item', num_items)):
        ids = pairs[row]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(f'{where}: {name} {kind} ids must lie in '
                             f'[0, {size}), got [{int(ids.min())}, '
                             f'{int(ids.max())}]')
    return pairs


def fixed_split(train_pairs: Tensor, test_pairs: Tensor, num_users: int,
                num_items: int, val_ratio: float = 0.1,
                seed: int = 0) -> Split:
    """A split given by fixed train / test files (e.g. the LightGCN format).

    Validation is carved from the training pairs per user: a user with
    ``n >= 2`` training pairs gives ``round(n * val_ratio)`` of them
    (rounding half up, at least 1, at most ``n - 1``), chosen at random
    with a :class:`torch.Generator` seeded with ``seed``; users with one
    training pair keep it.  ``val_ratio=0`` carves nothing (``val`` is
    empty).  Repeated pairs within a file are dropped (counted in
    ``info``); a pair in both files is an error.

    Args:
        train_pairs: ``[2, E_train]`` (user, item) pairs.
        test_pairs: ``[2, E_test]`` (user, item) pairs.
        num_users: Number of users.
        num_items: Number of items.
        val_ratio: Fraction of each user's training pairs to validate on.
        seed: Seed of the validation carve.
    """
    where = 'fixed_split'
    if not 0.0 <= val_ratio < 1.0:
        raise ValueError(f'{where}: val_ratio must lie in [0, 1), got '
                         f'{val_ratio!r}')
    info: dict[str, Any] = dict(val_ratio=val_ratio, val_from='train')
    keys = {}
    for name, pairs in (('train', train_pairs), ('test', test_pairs)):
        pairs = _check_pairs(where, name, pairs, num_users, num_items)
        key = pairs[0] * num_items + pairs[1]
        uniq = torch.unique(key)
        info[f'{name}_duplicates'] = key.numel() - uniq.numel()
        keys[name] = uniq
    both = isin_sorted(keys['test'], keys['train'])
    if bool(both.any()):
        k = int(keys['test'][both][0])
        raise ValueError(f'{where}: {int(both.sum())} test pairs are also '
                         f'training pairs (e.g. user {k // num_items}, item '
                         f'{k % num_items}); remove them from one file')
    key = torch.cat([keys['train'], keys['test']])
    user, item = key // num_items, key % num_items
    num_train = keys['train'].numel()
    part = torch.full((key.numel(),), 2, dtype=torch.long)
    part[:num_train] = 0
    if val_ratio > 0:
        gen = torch.Generator().manual_seed(int(seed))
        train_user = user[:num_train]
        order = _sort_by_user(train_user,
                              torch.randperm(num_train, generator=gen))
        deg, start = _offsets(train_user, num_users)
        n_val = _round_half_up(deg.double() * val_ratio)
        n_val = torch.minimum(n_val.clamp(min=1), deg - 1).clamp(min=0)
        rank = torch.arange(num_train) - start[train_user[order]]
        is_val = torch.zeros(num_train, dtype=torch.bool)
        is_val[order] = rank < n_val[train_user[order]]
        part[:num_train][is_val] = 1
    inter = Interactions(user, item, user_ids=torch.arange(num_users),
                         item_ids=torch.arange(num_items))
    return _make_split(inter, part, 'fixed', int(seed), None, info)


# ---------------------------------------------------------------------------
# The item-item co-interaction graph
# ---------------------------------------------------------------------------

def co_interactions(pairs: Tensor, num_users: int, num_items: int,
                    min_count: int = 1, top_k: int | None = None,
                    max_pairs: int = 1 << 24,
                    sources: Tensor | None = None
                    ) -> tuple[Tensor, Tensor]:
    r"""The item-item co-interaction graph of (user, item) ``pairs``:
    an edge :math:`(a, b)`, :math:`a \ne b`, for every two items some user
    interacted with, weighted by the number of such users,

    .. math::
        w_{ab} = |\{u : (u, a) \in \mathcal{R}, (u, b) \in
        \mathcal{R}\}| = (\mathbf{R}^\top \mathbf{R})_{ab}.

    Build it from the training pairs only (:meth:`Split.graph` then holds
    no held-out interaction two hops away).  Computed in blocks of items
    so at most about ``max_pairs`` (item, user, item) paths are held at
    once, whatever the size of the log.

    Args:
        pairs: ``[2, E]`` (user, item) pairs (repeats count once).
        num_users: Number of users.
        num_items: Number of items.
        min_count: Keep edges with :math:`w_{ab} \ge` ``min_count``.
        top_k: Keep, for every item, its ``top_k`` heaviest edges (ties:
            lower item id first); ``None`` keeps all.
        max_pairs: Paths per block (memory bound).
        sources: Only the edges leaving these items (the rows
            :math:`a` of :math:`\mathbf{R}^\top \mathbf{R}`, exact, since
            every user of :math:`a` is seen); ``None`` for all items.  A
            caller that reduces each row at once (e.g.
            :class:`~pyg_recsys.nn.models.ItemKNN`, which keeps the most
            similar items of each item) goes through the items block by
            block and never holds the whole graph.

    Returns:
        ``(edge_index [2, M], weight [M])``, both directions of every edge
        (before ``top_k``, which may keep one direction only; with
        ``sources``, the edges leaving them only), sorted by (source,
        target).
    """
    where = 'co_interactions'
    if min_count < 1 or (top_k is not None and top_k < 1):
        raise ValueError(f'{where}: min_count and top_k must be >= 1, got '
                         f'{min_count} and {top_k}')
    if sources is None:
        sources = torch.arange(num_items)
    else:
        sources = torch.unique(sources.long().view(-1))  # sorted
        if sources.numel() and (int(sources[0]) < 0
                                or int(sources[-1]) >= num_items):
            raise ValueError(f'{where}: sources must lie in [0, '
                             f'{num_items}), got [{int(sources[0])}, '
                             f'{int(sources[-1])}]')
    R = CSR.from_pairs(pairs[0], pairs[1], num_users, num_items)
    Rt = CSR.from_pairs(pairs[1], pairs[0], num_items, num_users)
    user_deg = R.degree()
    # paths a -> u -> b of every item a: sum of its users' degrees
    per_item = torch.zeros(num_items, dtype=torch.long)
    per_item.index_add_(0, R.col, user_deg[R.rows()])
    per_item = per_item[sources]
    none = torch.empty(0, dtype=torch.long)
    out_src, out_dst, out_w = [none], [none], [none]
    start = 0
    while start < sources.numel():
        # the longest block whose paths fit max_pairs (at least one item)
        csum = torch.cumsum(per_item[start:], 0)
        stop = start + max(1, int(torch.searchsorted(
            csum, torch.tensor(max_pairs), right=True)))
        block = sources[start:stop]
        pos, users = Rt.select(block)
        pos2, items = R.select(users)
        src = block[pos[pos2]]
        keep = src != items
        key = src[keep] * num_items + items[keep]
        uniq, count = torch.unique(key, return_counts=True)
        big = count >= min_count
        uniq, count = uniq[big], count[big]
        out_src.append(uniq // num_items)
        out_dst.append(uniq % num_items)
        out_w.append(count)
        start = stop
    src, dst = torch.cat(out_src), torch.cat(out_dst)
    weight = torch.cat(out_w)
    if top_k is not None and src.numel():
        # heaviest first within each source, then lower target id
        order = torch.argsort(dst, stable=True)
        order = order[torch.argsort(-weight[order], stable=True)]
        order = order[torch.argsort(src[order], stable=True)]
        deg = torch.bincount(src, minlength=num_items)
        first = torch.cumsum(deg, 0) - deg
        rank = torch.arange(src.numel()) - first[src[order]]
        keep = order[rank < top_k]
        keep = keep.sort().values
        src, dst, weight = src[keep], dst[keep], weight[keep]
    return torch.stack([src, dst]), weight


# ---------------------------------------------------------------------------
# Auditing
# ---------------------------------------------------------------------------

def _example(key: Tensor, mask: Tensor, num_items: int) -> str:
    k = int(key[mask][0])
    return f'user {k // num_items}, item {k % num_items}'


def audit(split: Split) -> dict[str, Any]:
    """Raises :class:`ValueError` if a split leaks or is malformed, and
    returns a report of what was checked.

    Checks, in order: every part is a ``[2, E]`` tensor with ids in range;
    no pair repeats within a part; the parts are disjoint; no validation
    or test pair is an edge of any user-item edge type of
    :meth:`Split.graph`, in either direction (interactions, their reverse
    and any side relation between users and items); an item-item
    co-interaction relation only joins items that share a training user;
    the explicit negatives of :attr:`Split.labelled` are no positive of
    any part.

    Where the parts carry timestamps (``attrs[part]['time']``), it counts
    the training interactions newer than the earliest held-out one: an
    error for a temporal split (the cut is global, so there must be none),
    a counted note for the others (``report['train_after_first_held_out']``;
    per-user splits mix users' timelines by design).
    """
    where = 'audit'
    nu, ni = split.num_users, split.num_items
    keys = {}
    for name in PARTS:
        pairs = _check_pairs(where, name, split.part(name), nu, ni)
        key = pairs[0] * ni + pairs[1]
        uniq, counts = torch.unique(key, return_counts=True)
        if uniq.numel() != key.numel():
            raise ValueError(
                f'{where}: {int((counts > 1).sum())} pairs repeat within '
                f'{name} (e.g. {_example(uniq, counts > 1, ni)}); each '
                f'(user, item) pair must appear once')
        keys[name] = uniq
    for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        both = isin_sorted(keys[a], keys[b])
        if bool(both.any()):
            raise ValueError(
                f'{where}: {int(both.sum())} pairs are in both {a} and {b} '
                f'(e.g. {_example(keys[a], both, ni)}); parts must be '
                f'disjoint')
    report: dict[str, Any] = {'edge_types': []}
    held = torch.sort(torch.cat([keys['val'], keys['test']])).values
    graph = split.graph()
    for edge_type in graph.edge_types:
        report['edge_types'].append('__'.join(edge_type))
        src, _, dst = edge_type
        edge_index = graph[edge_type].edge_index
        if (src, dst) == (USER, ITEM):
            users, items = edge_index[0], edge_index[1]
        elif (src, dst) == (ITEM, USER):
            users, items = edge_index[1], edge_index[0]
        else:
            continue
        edges = users.long() * ni + items.long()
        leaked = edges[isin_sorted(edges, held)]
        if leaked.numel() == 0:
            continue
        leaked = torch.unique(leaked)
        for name in ('val', 'test'):
            leak = isin_sorted(keys[name], leaked)
            if bool(leak.any()):
                raise ValueError(
                    f'{where}: {int(leak.sum())} {name} pairs are '
                    f'message-passing edges {edge_type} of split.graph() '
                    f'(e.g. {_example(keys[name], leak, ni)}); held-out '
                    f'pairs must never be in the training graph')
    if ITEM_ITEM in split.side:
        _audit_co_interactions(split)
    _audit_labelled(split, keys)
    report.update(_audit_time(split))
    return report


def _audit_co_interactions(split: Split) -> None:
    edges = split.side[ITEM_ITEM]
    ni = split.num_items
    allowed, _ = co_interactions(split.train, split.num_users, ni)
    ok = isin_sorted(edges[0] * ni + edges[1],
                     allowed[0] * ni + allowed[1])
    if not bool(ok.all()):
        bad = edges[:, ~ok]
        raise ValueError(
            f'audit: {int((~ok).sum())} item-item edges {ITEM_ITEM} join '
            f'items that share no training user (e.g. items '
            f'{int(bad[0, 0])} and {int(bad[1, 0])}); build the graph from '
            f'the training pairs only (co_interactions(split.train, ...))')


def _audit_labelled(split: Split, keys: dict[str, Tensor]) -> None:
    ni = split.num_items
    positives = torch.sort(torch.cat(list(keys.values()))).values
    for name, rows in split.labelled.items():
        if rows.dim() != 2 or rows.size(0) != 3:
            raise ValueError(f'audit: labelled[{name!r}] must be a [3, n] '
                             f'tensor of (user, item, label) rows, got '
                             f'shape {list(rows.shape)}')
        neg = rows[:, rows[2] == 0]
        bad = isin_sorted(neg[0] * ni + neg[1], positives)
        if bool(bad.any()):
            k = int((neg[0] * ni + neg[1])[bad][0])
            raise ValueError(
                f'audit: {int(bad.sum())} negatives of labelled[{name!r}] '
                f'are positives of the split (e.g. user {k // ni}, item '
                f'{k % ni}); a pair cannot be both')


def _audit_time(split: Split) -> dict[str, Any]:
    times = {name: split.attrs.get(name, {}).get('time') for name in PARTS}
    held = [t for name, t in times.items()
            if name != 'train' and t is not None and t.numel()]
    if times['train'] is None or not held:
        return {}
    first = min(t.min() for t in held)
    newer = int((times['train'] > first).sum())
    if split.kind == 'temporal' and newer:
        raise ValueError(
            f'audit: {newer} training interactions are newer than the '
            f'earliest held-out one ({first.item()}); a temporal split cuts '
            f'at one global time, so training must end before it')
    if newer:
        log.info('audit: %d training interactions are newer than the '
                 'earliest held-out one (%s split: expected)', newer,
                 split.kind)
    return {'train_after_first_held_out': newer}


def graph_fingerprint(split: Any) -> str:
    """A short hex digest of what a model is built on: the node counts,
    the training edges (``train``: pairs of a :class:`Split`, triples of
    a :class:`~pyg_recsys.data.kg.KGSplit`) with their attributes
    (ratings, times) and the side relations with theirs.  A
    run records it at training time, so loading its weights on another
    graph of the same sizes is refused
    (:func:`pyg_recsys.serving.load_run`)."""
    import hashlib
    digest = hashlib.sha256()
    sizes = {k: getattr(split, k, None) for k in
             ('num_users', 'num_items', 'num_entities', 'num_relations')}
    digest.update(repr(sorted(sizes.items())).encode())
    digest.update(repr(sorted(getattr(split, 'num_nodes', {}).items()))
                  .encode())
    tensors = [('train', split.train)]
    train_attrs = (getattr(split, 'attrs', {}) or {}).get('train', {})
    tensors += [(f'train.{k}', train_attrs[k]) for k in sorted(train_attrs)]
    side = getattr(split, 'side', {}) or {}
    side_attrs = getattr(split, 'side_attrs', {}) or {}
    for t in sorted(side):
        tensors.append((repr(t), side[t]))
        attrs = side_attrs.get(t, {})
        tensors += [(f'{t!r}.{k}', attrs[k]) for k in sorted(attrs)]
    for name, t in tensors:
        digest.update(name.encode() + b'\0')
        digest.update(t.detach().cpu().contiguous().double().numpy()
                      .tobytes())
    return digest.hexdigest()[:16]
