"""Leak-free train / validation / test splits of an interaction log.

Every split returns a :class:`Split`: three disjoint sets of unique
``(user, item)`` pairs plus a record of how they were made (kind, seed,
cut time), so that a result can be traced to its data.  Message passing
uses :meth:`Split.graph`, built from the training pairs only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.data.interactions import Interactions
from pyg_recsys.ops.csr import CSR, isin_sorted

PARTS = ('train', 'val', 'test')


@dataclass
class Split:
    """A user-item split.

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

    def part(self, name: str) -> Tensor:
        if name not in PARTS:
            raise ValueError(f"Split.part: unknown part '{name}'; use one of "
                             f'{PARTS}')
        return getattr(self, name)

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

    def graph(self) -> HeteroData:
        """The message-passing graph: training pairs only, both directions.

        ``('user', 'interacts', 'item')`` holds the training pairs and
        ``('item', 'rev_interacts', 'user')`` their reverse; training edge
        attributes (``rating``, ``time``) are copied to both.
        """
        data = HeteroData()
        data['user'].num_nodes = self.num_users
        data['item'].num_nodes = self.num_items
        fwd = data['user', 'interacts', 'item']
        rev = data['item', 'rev_interacts', 'user']
        fwd.edge_index = self.train
        rev.edge_index = self.train.flip(0)
        for key, value in self.attrs.get('train', {}).items():
            fwd[key] = value
            rev[key] = value
        return data

    def meta(self) -> dict[str, Any]:
        """A JSON-able record of how the split was made and its sizes."""
        cut = self.cut_time
        if isinstance(cut, Tensor):
            cut = cut.tolist()
        return dict(kind=self.kind, seed=self.seed, cut_time=cut,
                    num_users=self.num_users, num_items=self.num_items,
                    num_train=int(self.train.size(1)),
                    num_val=int(self.val.size(1)),
                    num_test=int(self.test.size(1)), **self.info)

    def to_dict(self) -> dict[str, Any]:
        return dict(num_users=self.num_users, num_items=self.num_items,
                    train=self.train, val=self.val, test=self.test,
                    kind=self.kind, seed=self.seed, cut_time=self.cut_time,
                    attrs=self.attrs, info=self.info)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        return cls(**d)

    def audit(self) -> None:
        """Checks the split is leak-free; see :func:`audit`."""
        audit(self)


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
                 cut_time=cut_time, attrs=attrs, info=info)


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
                 seed: int = 0) -> Split:
    """Per-user random split.

    Each user's interactions are shuffled (a :class:`torch.Generator`
    seeded with ``seed``, so the split is reproducible) and cut into
    train / validation / test.  Counts per user with ``n`` interactions:
    ``n_test = round(n * r_test)`` and ``n_val = round(n * r_val)``
    rounding half up, each at least 1 when its ratio is positive, then
    reduced (test first) until at least one interaction is left for
    training.  Users with fewer than 3 interactions keep all of them in
    train.  Vectorized: one sort by (user, random key), ranks from the
    per-user offsets.

    Args:
        inter: The log (unique pairs).
        ratios: ``(train, val, test)`` fractions summing to 1.
        seed: Seed of the shuffle.
    """
    where = 'random_split'
    _, r_val, r_test = _check_ratios(where, ratios)
    _check_unique(where, inter)
    gen = torch.Generator().manual_seed(int(seed))
    num = len(inter)
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
    train = part == 0
    seen_u = torch.zeros(inter.num_users, dtype=torch.bool)
    seen_i = torch.zeros(inter.num_items, dtype=torch.bool)
    seen_u[inter.user[train]] = True
    seen_i[inter.item[train]] = True
    for code, name in ((1, 'val'), (2, 'test')):
        held = part == code
        users = torch.unique(inter.user[held])
        items = torch.unique(inter.item[held])
        info[f'{name}_cold_users'] = int((~seen_u[users]).sum())
        info[f'{name}_cold_items'] = int((~seen_i[items]).sum())
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
# Auditing
# ---------------------------------------------------------------------------

def _example(key: Tensor, mask: Tensor, num_items: int) -> str:
    k = int(key[mask][0])
    return f'user {k // num_items}, item {k % num_items}'


def audit(split: Split) -> None:
    """Raises :class:`ValueError` if a split leaks or is malformed.

    Checks, in order: every part is a ``[2, E]`` tensor with ids in range;
    no pair repeats within a part; the parts are disjoint; no validation
    or test pair is a message-passing edge of :meth:`Split.graph` in
    either direction (``('user', ., 'item')`` or ``('item', ., 'user')``).
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
    held = torch.sort(torch.cat([keys['val'], keys['test']])).values
    graph = split.graph()
    for edge_type in graph.edge_types:
        src, _, dst = edge_type
        edge_index = graph[edge_type].edge_index
        if (src, dst) == ('user', 'item'):
            users, items = edge_index[0], edge_index[1]
        elif (src, dst) == ('item', 'user'):
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
