r"""Top-:math:`k` selection over full item rankings with known items masked.

Every recommender's ``recommend()`` and the ranking evaluation
(:func:`pyg_recsys.metrics.evaluate_ranking`) go through these functions,
so that masking, padding and tie handling are the same everywhere.

Performance notes (``benchmarks/eval_speed.py`` measures them; figures in
``benchmarks/results/``): the users :math:`\times` items product and
:func:`torch.topk` dominate; by default users are scored in chunks of
about :math:`2^{22}` scores (16 MiB in float32, e.g. 102 users for 40,981
items), small enough to stay in cache and to be reused by the allocator
instead of being page-faulted in afresh for every chunk.  On a CPU
oversubscribed by other processes the many small chunks fare worse (each
parallel region may wait a scheduler time slice for its threads); there,
pass a larger ``batch_size`` (e.g. 4096) or use fewer threads. The exclusion
entries are looked up once per group of users, and each chunk masks its
scores with a single :meth:`~torch.Tensor.index_fill_` on flat positions,
so the per-chunk work outside ``score_fn`` and :func:`torch.topk` is a few
small operations.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from pyg_recsys.ops.csr import CSR

#: Scores per chunk when ``batch_size`` is left to :obj:`None`.
CHUNK_SCORES = 1 << 22
#: Users per group: exclusion entries are looked up once per group.
GROUP_USERS = 16384


def auto_batch_size(num_items: int) -> int:
    """The default number of users per chunk: about :data:`CHUNK_SCORES`
    scores (16 MiB in float32) per chunk, at least one user."""
    return max(1, CHUNK_SCORES // max(int(num_items), 1))


def _fill_(scores: Tensor, flat: Tensor) -> None:
    """``scores.view(-1)[flat] = -inf`` in place."""
    if flat.numel() == 0:
        return
    flat = flat.to(scores.device)
    if scores.is_contiguous():
        scores.view(-1).index_fill_(0, flat, float('-inf'))
    else:
        num_items = scores.size(1)
        scores.index_put_((flat // num_items, flat % num_items),
                          scores.new_full((), float('-inf')))


def _topk_pad(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    indices.masked_fill_(values == float('-inf'), -1)
    return values, indices


def _check_k(k: int, num_items: int, where: str) -> None:
    if not 1 <= k <= num_items:
        raise ValueError(f'{where}: k={k} must lie in [1, num_items='
                         f'{num_items}]; lower k or score more items')


def _check_exclude(exclude: CSR | None, num_items: int, where: str) -> None:
    if exclude is not None and exclude.num_cols != num_items:
        raise ValueError(f'{where}: exclude has num_cols={exclude.num_cols} '
                         f'but scores has {num_items} items; build exclude '
                         f'over the same item set')


def masked_topk(scores: Tensor, k: int, users: Tensor,
                exclude: CSR | None = None) -> tuple[Tensor, Tensor]:
    r"""Top-:math:`k` items per row of ``scores`` after masking known items.

    ``scores[b]`` holds the scores of user ``users[b]`` against all items.
    The items that ``exclude`` holds for that user (e.g. the training
    items when ranking held-out items) are set to :obj:`-inf` **in place**,
    in one vectorized write (:meth:`CSR.select` then
    :meth:`~torch.Tensor.index_fill_`), and :func:`torch.topk` picks the
    :math:`k` largest of what is left.

    Padding: a row with fewer than :math:`k` scores above :obj:`-inf` (its
    user has almost every item excluded, or the scores themselves are
    :obj:`-inf`) is padded: its remaining entries have value :obj:`-inf`
    and index :obj:`-1`, which never counts as a hit in
    :class:`pyg_recsys.metrics.RankingMetrics`.

    Ties between equal finite scores are broken by the order in which
    :func:`torch.topk` returns them; on CPU that is deterministic for a
    given input (the same tensor gives the same indices on every call), but
    no particular rule (e.g. lower item id first) is promised. NaN scores
    are not supported (:func:`torch.topk` ranks NaN above every number).

    Args:
        scores (torch.Tensor): Scores of shape :obj:`[B, num_items]`,
            overwritten where masked. Pass a fresh tensor, not a view of a
            score matrix you want to keep.
        k (int): Number of items per row, :math:`1 \le k \le`
            :obj:`num_items`.
        users (torch.Tensor): The user of every row, shape :obj:`[B]`.
        exclude (CSR, optional): Items to mask per user
            (:obj:`num_cols == num_items`). (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): ``values`` and ``indices`` of shape
        :obj:`[B, k]`, sorted by descending score within each row.
    """
    if scores.dim() != 2:
        raise ValueError(f'masked_topk: scores must be 2-D [B, num_items], '
                         f'got shape {tuple(scores.shape)}')
    num_items = scores.size(1)
    _check_k(k, num_items, 'masked_topk')
    users = users.view(-1)
    if users.numel() != scores.size(0):
        raise ValueError(f'masked_topk: got {users.numel()} users for '
                         f'{scores.size(0)} score rows; pass one user per '
                         f'row of scores')
    _check_exclude(exclude, num_items, 'masked_topk')
    if exclude is not None:
        pos, col = exclude.select(users)
        _fill_(scores, pos * num_items + col)
    return _topk_pad(scores, k)


class _GroupMask:
    """The exclusion entries of a group of users, looked up once, as flat
    positions ``row_in_group * num_items + item``; :meth:`fill_` masks the
    rows ``start:end`` of the group held in one score chunk."""

    def __init__(self, exclude: CSR, users: Tensor) -> None:
        users = users.to(exclude.device)  # looked up where exclude is
        pos, col = exclude.select(users)
        self.flat = pos * exclude.num_cols + col
        self.ptr = [0] + exclude.degree(users).cumsum(0).tolist()
        self.num_items = exclude.num_cols

    def fill_(self, scores: Tensor, start: int, end: int) -> None:
        lo, hi = self.ptr[start], self.ptr[end]
        if hi > lo:
            if self.flat.device != scores.device:
                self.flat = self.flat.to(scores.device)
            _fill_(scores, self.flat[lo:hi] - start * self.num_items)


def _chunked(score_fn: Callable[[Tensor], Tensor], users: Tensor, k: int,
             exclude: CSR | None, batch_size: int | None,
             num_items: int | None, pad: bool, where: str
             ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yields ``(group_users, values, indices)`` per group of users, scoring
    each group in chunks. With ``pad``, a ``k`` above the number of items is
    met by padding (value -inf, index -1) instead of an error."""
    if num_items is not None and batch_size is None:
        batch_size = auto_batch_size(num_items)
    group_size = max(GROUP_USERS, batch_size or 0)
    for group in users.split(group_size):
        if group.numel() == 0:
            continue
        mask = _GroupMask(exclude, group) if exclude is not None else None
        values, indices = [], []
        start = 0
        while start < group.numel():
            chunk = group[start:start + (batch_size or 64)]
            end = start + chunk.numel()
            scores = score_fn(chunk)
            if (scores.dim() != 2 or scores.size(0) != chunk.numel()
                    or (num_items is not None
                        and scores.size(1) != num_items)):
                items = 'num_items' if num_items is None else (
                    f'num_items={num_items}')
                raise ValueError(f'{where}: score_fn returned shape '
                                 f'{tuple(scores.shape)} for '
                                 f'{chunk.numel()} users; it must return '
                                 f'[B, {items}]')
            if num_items is None:  # no exclude: learn it from the scores
                num_items = scores.size(1)
                if batch_size is None:
                    batch_size = auto_batch_size(num_items)
            if not pad:
                _check_k(k, num_items, where)
            if mask is not None:
                mask.fill_(scores, start, end)
            value, index = _topk_pad(scores, min(k, num_items))
            del scores  # free it before score_fn allocates the next chunk
            values.append(value)
            indices.append(index)
            start = end
        value, index = torch.cat(values), torch.cat(indices)
        if index.size(1) < k:
            value = torch.nn.functional.pad(value, (0, k - index.size(1)),
                                            value=float('-inf'))
            index = torch.nn.functional.pad(index, (0, k - index.size(1)),
                                            value=-1)
        yield group, value, index


def chunked_topk(score_fn: Callable[[Tensor], Tensor], users: Tensor,
                 k: int, exclude: CSR | None = None,
                 batch_size: int | None = None) -> tuple[Tensor, Tensor]:
    r"""Top-:math:`k` recommendation for many users, in chunks of users.

    Calls ``score_fn(chunk)`` on at most ``batch_size`` users at a time and
    keeps only the :obj:`[chunk, k]` result, masked and padded as in
    :func:`masked_topk`, so the full users :math:`\times` items score matrix
    never exists at once (peak memory :math:`O(\text{batch\_size} \cdot
    \text{num\_items})`). Runs under :func:`torch.no_grad`. The result for a
    user does not depend on ``batch_size`` as long as ``score_fn`` scores
    each user independently of the others in its chunk.

    Args:
        score_fn (Callable): Maps a :obj:`[B]` tensor of user ids to a fresh
            :obj:`[B, num_items]` score tensor (it is masked in place).
        users (torch.Tensor): User ids, shape :obj:`[N]`.
        k (int): Number of items per user, at most :obj:`num_items`.
        exclude (CSR, optional): Items to mask per user (e.g. training
            items). (default: :obj:`None`)
        batch_size (int, optional): Users scored per call of ``score_fn``;
            :obj:`None` picks :func:`auto_batch_size` of the number of items
            (about :math:`2^{22}` scores per chunk; the first chunk has 64
            users when ``exclude`` does not give the number of items).
            (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): ``values`` and ``indices`` of shape
        :obj:`[N, k]`, rows in the order of ``users``.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f'chunked_topk: batch_size must be >= 1 (or None '
                         f'for the default), got {batch_size}')
    users = users.view(-1).long()
    num_items = exclude.num_cols if exclude is not None else None
    values, indices = [], []
    with torch.no_grad():
        for _, value, index in _chunked(score_fn, users, k, exclude,
                                        batch_size, num_items, pad=False,
                                        where='chunked_topk'):
            values.append(value)
            indices.append(index)
    if not values:
        return (torch.empty(0, k), torch.empty(0, k, dtype=torch.long))
    return torch.cat(values), torch.cat(indices)
