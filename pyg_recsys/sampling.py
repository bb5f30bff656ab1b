"""Negative samplers shared by every model.

A sampler draws items for a batch of users.  Every sampler here takes an
explicit :class:`torch.Generator`, so that a training run is reproducible
and resumes exactly (the loader reseeds it per epoch).

:class:`~pyg_recsys.data.loader.PairLoader` asks a sampler for
:meth:`negatives` of a batch of (user, positive) pairs and gets a
:class:`Negatives`: per-pair negatives ``[B]`` / ``[B, N]``
(:class:`UniformSampler`, :class:`PopularitySampler`,
:class:`PPRHardSampler`, :class:`CurriculumSampler`), or ``N`` items
shared by the whole batch with a ``[B, N]`` mask of the pairs that count
(:class:`SharedSampler`, :class:`InBatchSampler`), which
:meth:`~pyg_recsys.nn.models.EmbeddingRecommender.loss` scores as one
``[B, d] x [d, N]`` product.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyg_recsys.ops.csr import CSR

log = logging.getLogger(__name__)


class Negatives(NamedTuple):
    """Negatives of a batch of ``B`` (user, positive) pairs.

    Attributes:
        neg: ``[B]`` or ``[B, N]`` item ids per pair, or, with ``shared``,
            ``[N]`` item ids scored by every user of the batch.
        neg_mask: Optional bool mask shaped like the scores (``[B]``,
            ``[B, N]``; ``[B, N]`` when shared): ``True`` where the pair
            (user, negative) counts, ``False`` where it is left out of the
            loss (a known positive of that user).
        shared: Whether ``neg`` is shared by the whole batch.
    """

    neg: Tensor
    neg_mask: Tensor | None = None
    shared: bool = False


class NegativeSampler:
    """Base class: items for ``users`` that are, where ``exclude`` is set,
    never among the user's known positives."""

    def __init__(self, num_items: int, exclude: CSR | None = None,
                 max_rounds: int = 100) -> None:
        self._device = (exclude.device if exclude is not None
                        else torch.device('cpu'))
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

    @property
    def device(self) -> torch.device:
        """Where this sampler draws."""
        return self._device

    def to(self, device: torch.device | str) -> NegativeSampler:
        """Moves the known positives to ``device`` (in place, returns
        ``self``): draws then happen there, with a generator of that
        device."""
        if self.exclude is not None:
            self.exclude = self.exclude.to(device)
            self._keys = self._keys.to(device)
        self._device = torch.device(device)
        return self

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def negatives(self, user: Tensor, pos: Tensor, num: int = 1,
                  generator: torch.Generator | None = None) -> Negatives:
        """The loader's entry point: :meth:`sample` for ``user`` (``pos``
        is not used here; batch-level samplers need it)."""
        return Negatives(self.sample(user, num, generator))

    def sample(self, users: Tensor, num: int = 1,
               generator: torch.Generator | None = None) -> Tensor:
        """Negatives of shape ``[len(users)]`` (``num == 1``) or
        ``[len(users), num]``.

        Rejection sampling: entries that hit a known positive are redrawn,
        only those, until none is left.  Exact for any positive density; the
        expected number of rounds is ``1 / (1 - density)``.
        """
        users = users.long().view(-1).to(self.device)
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
        return torch.randint(0, self.num_items, (n,), generator=generator,
                             device=self.device)


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

    def to(self, device: torch.device | str) -> PopularitySampler:
        super().to(device)
        self.prob = self.prob.to(device)
        self._cdf = self._cdf.to(device)
        return self

    def log_prob(self, items: Tensor) -> Tensor:
        """Log sampling probability of ``items`` (for log-Q correction)."""
        return self.prob[items].log().float()

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64,
                       device=self.device)
        return torch.searchsorted(self._cdf, u).clamp_(max=self.num_items - 1)


def _known_mask(exclude: CSR | None, keys: Tensor | None, user: Tensor,
                pos: Tensor, items: Tensor) -> Tensor:
    """``[B, N]`` bool: ``True`` where item ``items[j]`` is neither the
    positive of pair ``b`` nor a known positive of ``user[b]``."""
    mask = items.view(1, -1) != pos.view(-1, 1)
    if exclude is not None:
        grid = items.view(1, -1).expand(user.numel(), -1)
        mask &= ~exclude.contains(user.view(-1), grid, keys)
    return mask


class SharedSampler:
    r"""``num`` items per batch, drawn by ``base`` and scored by every user
    of the batch (Chen et al., "On Sampling Strategies for Neural
    Network-based Collaborative Filtering", KDD 2017).

    One ``[B, d] x [d, N]`` product replaces ``B * N`` gathered item
    embeddings, so a batch can afford many more negatives.  Items are drawn
    with replacement from ``base``'s distribution (uniform or popularity)
    without its rejection step; instead the loss leaves out, through
    :attr:`Negatives.neg_mask`, every (user, item) pair where the item is
    the pair's positive or a known positive of the user
    (``base.exclude``).

    Args:
        base: The sampler whose distribution and ``exclude`` are used
            (e.g. ``UniformSampler(num_items, exclude=split.csr('train'))``).
    """

    def __init__(self, base: NegativeSampler) -> None:
        if not isinstance(base, NegativeSampler):
            raise TypeError(f'SharedSampler: base must be a NegativeSampler '
                            f'(e.g. UniformSampler), got '
                            f'{type(base).__name__}')
        self.base = base

    def to(self, device: torch.device | str) -> SharedSampler:
        self.base.to(device)
        return self

    def negatives(self, user: Tensor, pos: Tensor, num: int = 1,
                  generator: torch.Generator | None = None) -> Negatives:
        if num <= 0:
            raise ValueError(f'SharedSampler: num must be positive, got '
                             f'{num}')
        items = self.base._draw(num, generator)
        mask = _known_mask(self.base.exclude, self.base._keys, user, pos,
                           items)
        return Negatives(items, mask, True)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.base!r})'


class InBatchSampler:
    r"""In-batch negatives: the positives of the other pairs of the batch
    are each user's negatives (as in two-tower retrieval, Yi et al.,
    RecSys 2019).

    Returns ``neg = pos`` shared by the batch and a ``[B, B]`` mask that is
    ``False`` on the diagonal, wherever another pair's positive is the same
    item, and wherever it is a known positive of the user (``exclude``).
    The loss reuses the positives' embeddings for these negatives.  Items
    come with the batch's (popularity-skewed) frequency; pair it with
    ``pair_loss='softmax'`` for the sampled-softmax objective of the
    paper (without its log-Q correction).

    Args:
        exclude: Known positives to mask (usually the training items).
    """

    def __init__(self, exclude: CSR | None = None) -> None:
        self.exclude = exclude
        self._keys = exclude.keys() if exclude is not None else None

    def to(self, device: torch.device | str) -> InBatchSampler:
        if self.exclude is not None:
            self.exclude = self.exclude.to(device)
            self._keys = self._keys.to(device)
        return self

    def negatives(self, user: Tensor, pos: Tensor, num: int = 1,
                  generator: torch.Generator | None = None) -> Negatives:
        if num != 1:
            raise ValueError(f'InBatchSampler: num must be 1, got {num}; '
                             f'the other pairs of the batch are the '
                             f'negatives, so set num_neg=1 and choose the '
                             f'batch size instead')
        pos = pos.long().view(-1)
        return Negatives(pos, _known_mask(self.exclude, self._keys, user,
                                          pos, pos), True)

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


def _chunks(n: int, chunk: int, desc: str, unit: str,
            progress: bool | None) -> Iterator[Tensor]:
    """``arange(n)`` in pieces of ``chunk``, with a progress bar
    (``progress=None``: from 10,000 rows)."""
    if progress is None:
        progress = n >= 10_000
    with tqdm(total=n, desc=desc, unit=unit, disable=not progress,
              leave=False) as bar:
        for start in range(0, n, chunk):
            rows = torch.arange(start, min(start + chunk, n))
            yield rows
            bar.update(rows.numel())


def _bipartite_csr(train: CSR) -> tuple[Tensor, Tensor]:
    """Symmetric user-item graph (users, then items) of ``train``."""
    from pyg_recsys.ops.adj import NormAdj
    adj = NormAdj.from_edge_index(torch.stack([train.rows(), train.col]),
                                  train.num_rows, train.num_cols)
    return adj.rowptr.long(), adj.col.long()


def ppr_candidates(train: CSR, rank_range: tuple[int, int] = (10, 100),
                   num_walks: int = 1000, restart_prob: float = 0.15,
                   exclude: CSR | None = None,
                   generator: torch.Generator | None = None,
                   max_walkers: int = 2**19,
                   progress: bool | None = None) -> CSR:
    r"""Per user, the items at ranks ``[lo, hi)`` of personalised PageRank
    from the user over the training graph, known positives left out.

    Items are ranked by the visits of ``num_walks`` random walks with
    restart from the user (:func:`~pyg_recsys.ops.random_walk.rwr_visits`,
    an unbiased estimate of PPR) over the bipartite graph of ``train``;
    items in ``exclude`` are dropped before ranking, ties are broken at
    random, and items never visited are not ranked (a user may get fewer
    than ``hi - lo`` candidates, or none).  Users are processed in chunks
    of ``max_walkers // num_walks`` (memory about ``max_walkers /
    restart_prob`` visits), each chunk with a few tensor operations per
    walk step, never a loop over users.

    Args:
        train: Training items of each user (the graph walked on).
        rank_range: ``(lo, hi)``: skip the ``lo`` top-ranked items (likely
            unobserved positives), keep ranks up to ``hi`` (exclusive).
        num_walks: Walks per user.
        restart_prob: Restart probability :math:`\alpha`.
        exclude: Items never to return; defaults to ``train``.
        generator: Random generator (the result depends on it and on
            ``max_walkers``).
        max_walkers: Walkers per chunk.
        progress: Show a progress bar; ``None`` shows it from 10,000 users.

    Returns:
        A :class:`CSR` of the candidates of each user.
    """
    lo, hi = rank_range
    if not 0 <= lo < hi:
        raise ValueError(f'ppr_candidates: rank_range must be (lo, hi) with '
                         f'0 <= lo < hi, got {rank_range}')
    if num_walks <= 0:
        raise ValueError(f'ppr_candidates: num_walks must be positive, got '
                         f'{num_walks}')
    from pyg_recsys.ops.random_walk import rank_visits, rwr_visits
    exclude = train if exclude is None else exclude
    U, num_items = train.num_rows, train.num_cols
    if exclude.num_rows != U or exclude.num_cols != num_items:
        raise ValueError(f'ppr_candidates: exclude is {exclude.num_rows} x '
                         f'{exclude.num_cols} but train is {U} x '
                         f'{num_items}; pass known positives of the same '
                         f'users and items')
    t0 = time.perf_counter()
    rowptr, col = _bipartite_csr(train)
    is_item = torch.arange(U + num_items) >= U
    keys = exclude.keys()
    rows, cols = [], []
    for users in _chunks(U, max(1, max_walkers // num_walks),
                         'PPR candidates', 'user', progress):
        (pos, node), cnt = rwr_visits(rowptr, col, users, num_walks,
                                      restart_prob, generator,
                                      count=is_item)
        keep = ~exclude.contains(users[pos], node - U, keys)
        pos, item, cnt = pos[keep], node[keep] - U, cnt[keep]
        user = users[pos]
        # rank within each user: visits descending, ties at random
        order, rank = rank_visits(pos, cnt, users.numel(),
                                  random_ties=True, generator=generator)
        sel = order[(rank >= lo) & (rank < hi)]
        rows.append(user[sel])
        cols.append(item[sel])
    out = CSR.from_pairs(torch.cat(rows), torch.cat(cols), U, num_items)
    empty = int((out.degree() == 0).sum())
    log.info('ppr_candidates: %d users, %d walks each, ranks [%d, %d): '
             '%.1f candidates per user, %d users without any, %.2f s',
             U, num_walks, lo, hi, out.nnz / U, empty,
             time.perf_counter() - t0)
    return out


def item_ppr_candidates(train: CSR, rank_range: tuple[int, int] = (10, 100),
                        num_walks: int = 1000, restart_prob: float = 0.15,
                        generator: torch.Generator | None = None,
                        max_walkers: int = 2**19,
                        progress: bool | None = None) -> CSR:
    r"""Per item, the other items at ranks ``[lo, hi)`` of personalised
    PageRank from the item: PinSage's hard negatives of an item query.

    The walks run item -> user -> item over the bipartite graph of
    ``train`` and stop with probability ``restart_prob`` on items
    (:func:`~pyg_recsys.ops.random_walk.importance_neighbors`, ties to the
    lower id); the item itself is never its own candidate.  Items are
    processed in chunks of ``max_walkers // num_walks``.

    Returns:
        An items x items :class:`CSR` of the candidates of each item.
    """
    lo, hi = rank_range
    if not 0 <= lo < hi:
        raise ValueError(f'item_ppr_candidates: rank_range must be (lo, hi) '
                         f'with 0 <= lo < hi, got {rank_range}')
    from pyg_recsys.ops.random_walk import importance_neighbors
    t0 = time.perf_counter()
    U, num_items = train.num_rows, train.num_cols
    rowptr, col = _bipartite_csr(train)
    is_item = torch.arange(U + num_items) >= U
    rows, cols = [], []
    for items in _chunks(num_items, max(1, max_walkers // num_walks),
                         'item PPR candidates', 'item', progress):
        nbr, _ = importance_neighbors(rowptr, col, items + U, hi,
                                      num_walks, restart_prob, generator,
                                      count=is_item, stop_at=is_item)
        nbr = nbr[:, lo:]
        ok = nbr >= 0
        rows.append(items.view(-1, 1).expand_as(nbr)[ok])
        cols.append(nbr[ok] - U)
    out = CSR.from_pairs(torch.cat(rows), torch.cat(cols), num_items,
                         num_items)
    log.info('item_ppr_candidates: %d items, %d walks each, ranks [%d, %d): '
             '%.1f candidates per item, %.2f s', num_items, num_walks, lo,
             hi, out.nnz / max(num_items, 1), time.perf_counter() - t0)
    return out


class PPRHardSampler(NegativeSampler):
    r"""Hard negatives: items ranked high, but not too high, by
    personalised PageRank from the user (the hard negatives of PinSage,
    Ying et al., KDD 2018, which samples items at PPR ranks 2000-5000).

    Each user gets a fixed pool of candidates, the items at ranks
    ``rank_range`` among the items that are not known positives
    (:func:`ppr_candidates`, built once at construction); :meth:`sample`
    draws uniformly from the user's pool.  Items ranked above ``lo`` are
    skipped as likely unobserved positives.  Users whose pool is empty
    (fewer than ``lo + 1`` items reached by the walks) get uniform
    negatives instead (:class:`UniformSampler`), so every draw is still
    never a known positive.

    Building the pools takes time linear in ``num_walks`` and the number
    of users; fewer walks rank more noisily (the candidates drift from
    the exact PPR window).

    Args:
        train: Training items of each user (``split.csr('train')``).
        rank_range: ``(lo, hi)`` rank window.
        num_walks: Walks with restart per user.
        restart_prob: Restart probability.
        exclude: Known positives; defaults to ``train``.
        seed: Seed of the walks.
        max_walkers: Walkers per chunk of the build.
        progress: Progress bar for the build (default: from 10,000 users).
        of: ``'users'``: pools of users (rows of ``train``);
            ``'items'``: pools of item queries, the items at the PPR ranks
            of walks from the item (:func:`item_ppr_candidates`; PinSage's
            item-to-item training), each item excluding only itself.

    Attributes:
        pool: The candidates of every user, a :class:`CSR`.
    """

    def __init__(self, train: CSR, rank_range: tuple[int, int] = (10, 100),
                 num_walks: int = 1000, restart_prob: float = 0.15,
                 exclude: CSR | None = None, seed: int = 0,
                 max_walkers: int = 2**19,
                 progress: bool | None = None, of: str = 'users') -> None:
        if of not in ('users', 'items'):
            raise ValueError(f"PPRHardSampler: of must be 'users' or "
                             f"'items', got {of!r}")
        gen = torch.Generator().manual_seed(seed)
        if of == 'items':
            if exclude is not None:
                raise ValueError('PPRHardSampler: exclude applies to user '
                                 'queries; an item query only ever '
                                 'excludes itself')
            n = train.num_cols
            eye = torch.arange(n)
            exclude = CSR.from_pairs(eye, eye, n, n)
        exclude = train if exclude is None else exclude
        super().__init__(train.num_cols, exclude)
        self.of = of
        self.rank_range = tuple(rank_range)
        self.num_walks = num_walks
        self.restart_prob = restart_prob
        if of == 'items':
            self.pool = item_ppr_candidates(
                train, self.rank_range, num_walks, restart_prob, gen,
                max_walkers, progress)
        else:
            self.pool = ppr_candidates(
                train, self.rank_range, num_walks, restart_prob, exclude,
                gen, max_walkers, progress)
        self.fallback = UniformSampler(self.num_items, exclude)

    def to(self, device: torch.device | str) -> PPRHardSampler:
        super().to(device)
        self.pool = self.pool.to(device)
        self.fallback.to(device)
        return self

    def sample(self, users: Tensor, num: int = 1,
               generator: torch.Generator | None = None) -> Tensor:
        """Hard negatives ``[len(users)]`` (``num == 1``) or
        ``[len(users), num]``, drawn uniformly from each user's pool."""
        users = users.long().view(-1).to(self.device)
        deg = self.pool.degree(users).view(-1, 1)
        u = torch.rand(users.numel(), num, generator=generator,
                       dtype=torch.float64, device=self.device)
        off = torch.minimum((u * deg).long(), (deg - 1).clamp(min=0))
        out = self.pool.rowptr[users].view(-1, 1) + off
        if self.pool.nnz > 0:
            out = self.pool.col[out.clamp_(max=self.pool.nnz - 1)]
        empty = (deg == 0).view(-1)
        if bool(empty.any()):
            out[empty] = self.fallback.sample(users[empty], num,
                                              generator).view(-1, num)
        return out.view(-1) if num == 1 else out

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(rank_range={self.rank_range}, '
                f'num_walks={self.num_walks}, '
                f'{self.pool.nnz / max(self.pool.num_rows, 1):.1f} '
                f'candidates per {self.of[:-1]})')


class CurriculumSampler:
    r"""Easy negatives first, harder ones added as training goes: at epoch
    :math:`n` each pair gets the loader's ``num`` negatives from ``easy``
    plus :math:`h_n = \min(n - 1, \text{max\_hard})` from ``hard``, so
    ``neg`` is ``[B, num + h_n]``.

    The epoch comes from :meth:`set_epoch`, which
    :class:`~pyg_recsys.data.loader.PairLoader` calls at the start of
    every pass with its own epoch, so a resumed run draws what an
    uninterrupted one would.  Epochs count from 1 as in
    :class:`~pyg_recsys.train.Trainer` (epoch 1: no hard negative).

    Args:
        easy: Sampler of the easy negatives (e.g. :class:`UniformSampler`).
        hard: Sampler of the hard ones (e.g. :class:`PPRHardSampler`).
        max_hard: Most hard negatives per pair.
    """

    def __init__(self, easy: NegativeSampler, hard: NegativeSampler,
                 max_hard: int = 4) -> None:
        if max_hard < 0:
            raise ValueError(f'CurriculumSampler: max_hard must be >= 0, '
                             f'got {max_hard}')
        self.easy = easy
        self.hard = hard
        self.max_hard = max_hard
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def to(self, device: torch.device | str) -> CurriculumSampler:
        self.easy.to(device)
        self.hard.to(device)
        return self

    def num_hard(self, epoch: int | None = None) -> int:
        """Hard negatives per pair at ``epoch`` (default: the current)."""
        epoch = self.epoch if epoch is None else epoch
        return min(max(epoch - 1, 0), self.max_hard)

    def negatives(self, user: Tensor, pos: Tensor, num: int = 1,
                  generator: torch.Generator | None = None) -> Negatives:
        B = user.numel()
        neg = self.easy.sample(user, num, generator).view(B, num)
        h = self.num_hard()
        if h > 0:
            hard = self.hard.sample(user, h, generator).view(B, h)
            neg = torch.cat([neg, hard], dim=1)
        return Negatives(neg)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(easy={self.easy!r}, '
                f'hard={self.hard!r}, max_hard={self.max_hard})')
