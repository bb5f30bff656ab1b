"""The one training loop: fit, evaluate, early stop, checkpoint and resume.

:class:`Trainer` only talks to the model contract
(:mod:`pyg_recsys.nn.models.contract`): it calls ``model.loss(batch)`` on
whatever the training loader yields (or, for a model whose epoch alternates
objectives over several loaders, ``model.loss(batch, objective)``), and
hands the model to an *evaluator* (``evaluator(model, part) -> {metric:
value}``) for model selection on ``'val'`` and one final score on
``'test'``.  The same loop therefore trains pairwise user-item rankers
(:class:`RankingEvaluator`; item-to-item, one query item per user:
:class:`ItemToItemEvaluator`), rating regressors
(:class:`RatingEvaluator`) and next-item models over session batches
(:class:`NextItemEvaluator`); each evaluator checks the model against its
task's contract.

Every epoch ends with an atomic checkpoint (model, optimizer, RNG states,
history, early-stopping state) in ``out_dir/last.pt``; the best model so far
is kept in ``out_dir/best.pt``.  Checkpoints hold tensors and plain values
only and are read with ``torch.load(..., weights_only=True)``, so a crafted
file cannot run code.  ``fit(resume=True)`` continues from ``last.pt`` and,
the loaders being reseeded per epoch, ends with exactly the result of an
uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pyg_recsys.data.split import Split
from pyg_recsys.io import atomic_save, atomic_write_text, safe_load
from pyg_recsys.nn.models.contract import (
    ClickThroughPredictor,
    ItemToItemRanker,
    MultiObjective,
    NextItemRecommender,
    PairwiseRanker,
    RatingPredictor,
    Recommender,
    TripleScorer,
    check_contract,
)
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.device import all_reduce_sum, dist_info, resolve_device

log = logging.getLogger(__name__)

DEFAULT_KS = (10, 20)
#: Scores per chunk of the ranking evaluation on a GPU (256 MiB in float32).
GPU_CHUNK_SCORES = 1 << 26
#: How a :class:`Trainer` with several loaders orders their batches.
SCHEDULES = ('sequential', 'interleave')
_DONE = object()


class Evaluator(Protocol):
    def __call__(self, model: nn.Module, part: str) -> dict[str, float]:
        ...


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and torch (every CUDA device included).

    Args:
        seed: The seed.
        deterministic: Also ask torch for deterministic kernels where it
            has them (``torch.use_deterministic_algorithms``, a
            process-wide switch, so it is off unless asked for).  CPU runs
            are bit-reproducible either way; on CUDA, scatter-adds and
            sparse products are deterministic only with it, at some speed
            (and cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the
            environment).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def adam(params: Iterable[Tensor], lr: float = 1e-3,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam, fused (one kernel over all parameters) where torch has it for
    the parameters' device, else torch's default implementation; the
    updates are the same.  Make it after moving the model."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay,
                                fused=True)
    except (RuntimeError, TypeError):  # no fused Adam for this device
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _rng_state() -> dict[str, Any]:
    """The random states, as tensors and plain values (``weights_only``
    loadable): Python, NumPy, torch's CPU generator and, once CUDA is in
    use, that of every CUDA device."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = dict(torch=torch.get_rng_state(),
                 numpy=[kind, torch.from_numpy(keys.astype(np.int64)),
                        int(pos), int(has_gauss), float(gauss)],
                 python=[version, list(internal), gauss_next])
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restores :func:`_rng_state` (and the NumPy tuple of checkpoints
    written before the states were stored as tensors).  CUDA states are
    restored when the machine has as many devices; a run resumed on
    another machine (or on the CPU) goes on with fresh CUDA streams, so
    only the CPU-side randomness is then exact."""
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda')
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([c.cpu() for c in cuda])
        else:
            log.warning('checkpoint has CUDA random states of %d devices, '
                        'this machine has %d: they are not restored',
                        len(cuda), torch.cuda.device_count())
    kind, keys, pos, has_gauss, gauss = state['numpy']
    if isinstance(keys, Tensor):
        keys = keys.numpy()
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos,
                         has_gauss, gauss))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))


def _to_device(batch: Any, device: torch.device | str | None) -> Any:
    """``batch`` on ``device``: tensors, PyG data, named tuples, lists and
    mappings of them.  From the CPU to a GPU, tensors are pinned first and
    copied without blocking the host, so the copy overlaps the work
    already queued on the device."""
    if device is None:
        return batch
    device = torch.device(device)
    if isinstance(batch, Tensor):
        if batch.device == device:
            return batch
        if device.type == 'cuda' and batch.device.type == 'cpu':
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if hasattr(batch, 'to') and not isinstance(batch, tuple):  # PyG data
        on_cpu = not getattr(batch, 'is_cuda', False)
        if device.type == 'cuda' and on_cpu and hasattr(batch,
                                                        'pin_memory'):
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, '_fields'):
        return type(batch)(*(_to_device(b, device) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _loss_scale(batch: Any) -> float:
    """The factor of a sharded batch's loss
    (:meth:`~pyg_recsys.data.loader.EpochSeeded.shard`); 1 otherwise."""
    scale = getattr(batch, 'loss_scale', None)
    if scale is None:
        scale = getattr(batch, '_loss_scale', None)
    return 1.0 if scale is None else float(scale)


def _batch_weight(batch: Any, world_size: int) -> float:
    """A batch's weight in the epoch's mean loss: its number of examples;
    for a shard, the whole batch's divided by the number of processes (so
    that the scaled losses of the shards add up to the whole batch's)."""
    total = getattr(batch, '_global_size', None)
    if total is not None:
        return total / world_size
    scale = _loss_scale(batch)
    n = _batch_size(batch)
    return n / scale if scale != 1.0 else float(n)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (the CPU for a
    model without either)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device('cpu')


def _batch_size(batch: Any) -> int:
    for attr in ('batch_size', 'num_graphs', 'user', 'y'):
        value = getattr(batch, attr, None)
        if isinstance(value, int):
            return value
        if isinstance(value, Tensor):
            return value.size(0)
    if isinstance(batch, Tensor):
        return batch.size(0)
    if isinstance(batch, (list, tuple)) and batch and isinstance(
            batch[0], Tensor):
        return batch[0].size(0)
    return 1


# Evaluators ##################################################################


def _chunk_users(batch_size: int | None, device: torch.device,
                 num_items: int) -> int | None:
    """Users per chunk of a full-ranking evaluation: ``batch_size``, or on
    a GPU without one, few large chunks (one launch per chunk)."""
    if batch_size is None and device.type == 'cuda':
        return max(1, GPU_CHUNK_SCORES // num_items)
    return batch_size


class RankingEvaluator:
    """Full-ranking top-K evaluation of a user-item recommender.

    Ranks all items for every user with held-out items in ``part``, masking
    known positives (training items for ``'val'``, training and validation
    items for ``'test'``), through ``model.score(users)`` in user chunks,
    on the model's device (masks, top-K and metrics included).

    Args:
        split: The split whose parts are scored.
        ks: Cut-offs.
        metrics: Metric names (see :mod:`pyg_recsys.metrics`).
        batch_size: Users per chunk (results do not depend on it);
            ``None`` sizes chunks to about 4M scores, which keeps them in
            cache (:func:`pyg_recsys.ops.topk.auto_batch_size`).
    """

    def __init__(self, split: Split, ks: Iterable[int] = DEFAULT_KS,
                 metrics: Iterable[str] | None = None,
                 batch_size: int | None = None) -> None:
        self.split = split
        self.ks = tuple(ks)
        self.metrics = tuple(metrics) if metrics is not None else None
        self.batch_size = batch_size
        self._sets: dict[tuple[str, torch.device], tuple[CSR, CSR]] = {}

    def item_sets(self, part: str, device: torch.device
                  ) -> tuple[CSR, CSR]:
        """``(targets, exclude)`` of ``part`` on ``device``, copied there
        once."""
        key = (part, device)
        if key not in self._sets:
            self._sets[key] = (self.split.targets(part).to(device),
                               self.split.exclude(part).to(device))
        return self._sets[key]

    @torch.no_grad()
    def __call__(self, model: PairwiseRanker, part: str) -> dict[str, float]:
        from pyg_recsys.metrics import evaluate_ranking
        check_contract(model, PairwiseRanker, 'RankingEvaluator')
        model.eval()
        kwargs = {} if self.metrics is None else dict(metrics=self.metrics)
        device = model_device(model)
        batch_size = _chunk_users(self.batch_size, device,
                                  self.split.num_items)
        targets, exclude = self.item_sets(part, device)
        return evaluate_ranking(model.score, targets, exclude, ks=self.ks,
                                batch_size=batch_size,
                                distributed=dist_info()[1] > 1, **kwargs)


class ItemToItemEvaluator:
    r"""Item-to-item full-ranking evaluation: the protocol of the PinSage
    example of DGL (``examples/pytorch/pinsage``, ``evaluation.py``), where
    a user is represented by one item.

    Every user :math:`u` with held-out items in ``part`` is given a query
    item :math:`q_u`, the user's *latest training item*: the training pair
    with the largest ``split.attrs['train']['time']`` (ties: the later
    column of ``split.train``), or, where the split has no training times,
    the user's last column of ``split.train`` (:attr:`query_order` says
    which: ``'time'`` or ``'file'``; the splits of
    :mod:`pyg_recsys.data.split` store each part sorted by (user, item),
    so without times the query is the user's highest item id: give the
    split times for a meaningful query).  All items are scored by
    ``model.item_scores(q)``, the items known before ``part`` are masked
    (``split.exclude(part)``: the training items, the query among them,
    and for ``'test'`` the validation items) and the ranking is measured
    against ``split.targets(part)`` by
    :func:`~pyg_recsys.metrics.evaluate_ranking`, the code
    :class:`RankingEvaluator` uses: ``'hit@10'`` is DGL's HITS@10, the
    fraction of users with a held-out item among their top 10,

    .. math::
        \mathrm{HR@}K = \frac{1}{|\mathcal{U}'|} \sum_{u \in \mathcal{U}'}
        \mathbb{1}\big[\mathrm{top}_K(\mathbf{s}_{q_u} \setminus
        \mathcal{K}_u) \cap \mathcal{T}_u \ne \emptyset\big],

    with :math:`\mathbf{s}_{q}` the item scores of query :math:`q`,
    :math:`\mathcal{K}_u` the known and :math:`\mathcal{T}_u` the held-out
    items of :math:`u`.  A user without a training item has no query: it
    is left out of :math:`\mathcal{U}'` (neither a hit nor a miss, so the
    average runs over the users with a query) and counted in
    :attr:`skipped` per part (also logged).

    Args:
        split: The split whose parts are scored.
        ks: Cut-offs.
        metrics: Metric names (see :mod:`pyg_recsys.metrics`).
        batch_size: Users per chunk (results do not depend on it);
            ``None`` as in :class:`RankingEvaluator`.
    """

    def __init__(self, split: Split, ks: Iterable[int] = (10, ),
                 metrics: Iterable[str] | None = None,
                 batch_size: int | None = None) -> None:
        time = split.attrs.get('train', {}).get('time')
        if time is not None and time.numel() != split.train.size(1):
            raise ValueError(
                f"ItemToItemEvaluator: split.attrs['train']['time'] has "
                f'{time.numel()} values for {split.train.size(1)} training '
                f'pairs; give one time per training pair (or none)')
        self.split = split
        self.ks = tuple(ks)
        self.metrics = tuple(metrics) if metrics is not None else None
        self.batch_size = batch_size
        #: Users of each evaluated part left out for lack of a query.
        self.skipped: dict[str, int] = {}
        self._query: Tensor | None = None
        self._sets: dict[tuple[str, torch.device],
                         tuple[Tensor, CSR, CSR]] = {}

    @property
    def query_order(self) -> str:
        """``'time'`` when the query is the latest training item by
        time, ``'file'`` when it is the last training pair of the user in
        the order of ``split.train``."""
        has_time = self.split.attrs.get('train', {}).get('time') is not None
        return 'time' if has_time else 'file'

    def query_items(self) -> Tensor:
        """The query item of every user, ``[num_users]``, ``-1`` for a
        user without a training item (computed once)."""
        if self._query is None:
            user, item = self.split.train[0], self.split.train[1]
            order = torch.arange(user.numel())
            if self.query_order == 'time':
                time = self.split.attrs['train']['time']
                order = torch.sort(time, stable=True).indices
            # by user, then time (or column), then column: last is latest
            order = order[torch.sort(user[order], stable=True).indices]
            deg = torch.bincount(user, minlength=self.split.num_users)
            last = torch.cumsum(deg, 0) - 1
            query = torch.full((self.split.num_users, ), -1,
                               dtype=torch.long)
            has = deg > 0
            query[has] = item[order[last[has]]]
            self._query = query
        return self._query

    def item_sets(self, part: str, device: torch.device
                  ) -> tuple[Tensor, CSR, CSR]:
        """``(query, targets, exclude)`` of ``part`` on ``device``, copied
        there once."""
        key = (part, device)
        if key not in self._sets:
            self._sets[key] = (self.query_items().to(device),
                               self.split.targets(part).to(device),
                               self.split.exclude(part).to(device))
        return self._sets[key]

    @torch.no_grad()
    def __call__(self, model: ItemToItemRanker, part: str
                 ) -> dict[str, float]:
        from pyg_recsys.metrics import evaluate_ranking
        check_contract(model, ItemToItemRanker, 'ItemToItemEvaluator')
        model.eval()
        kwargs = {} if self.metrics is None else dict(metrics=self.metrics)
        device = model_device(model)
        batch_size = _chunk_users(self.batch_size, device,
                                  self.split.num_items)
        query, targets, exclude = self.item_sets(part, device)
        held = targets.degree() > 0
        users = (held & (query >= 0)).nonzero().view(-1)
        self.skipped[part] = int(held.sum()) - users.numel()
        if self.skipped[part]:
            log.info('ItemToItemEvaluator: %d users of %r have no training '
                     'item to query with; left out', self.skipped[part],
                     part)

        def score_fn(chunk: Tensor) -> Tensor:
            return model.item_scores(query[chunk])

        return evaluate_ranking(score_fn, targets, exclude, ks=self.ks,
                                batch_size=batch_size, users=users,
                                distributed=dist_info()[1] > 1, **kwargs)


class RatingEvaluator:
    """MAE / RMSE of ``model.predict(users, items)`` against held-out
    ratings (:class:`~pyg_recsys.nn.models.contract.RatingPredictor`).

    Args:
        parts: ``{part: (users, items, ratings)}`` tensors per part.
        batch_size: Pairs per forward call.
    """

    def __init__(self, parts: Mapping[str, tuple[Tensor, Tensor, Tensor]],
                 batch_size: int = 65536) -> None:
        self.parts = dict(parts)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, model: RatingPredictor, part: str
                 ) -> dict[str, float]:
        from pyg_recsys.metrics import rating_metrics
        if part not in self.parts:
            raise KeyError(f"RatingEvaluator: no part '{part}'; have "
                           f'{sorted(self.parts)}')
        check_contract(model, RatingPredictor, 'RatingEvaluator')
        model.eval()
        device = model_device(model)
        users, items, target = self.parts[part]
        rank, world = dist_info()
        if world > 1:  # each process a part; the errors summed over all
            users, items = users[rank::world], items[rank::world]
            target = target[rank::world]
        if world == 1:
            pred = torch.cat([
                model.predict(users[i:i + self.batch_size].to(device),
                              items[i:i + self.batch_size].to(device))
                for i in range(0, users.numel(), self.batch_size)
            ])
            return rating_metrics(pred, target.to(pred.device))
        err = torch.zeros(3, dtype=torch.float64, device=device)
        for i in range(0, users.numel(), self.batch_size):
            pred = model.predict(users[i:i + self.batch_size].to(device),
                                 items[i:i + self.batch_size].to(device))
            diff = (pred.double().view(-1)
                    - target[i:i + self.batch_size].to(device).double())
            err += torch.stack([diff.abs().sum(), diff.pow(2).sum(),
                                diff.new_tensor(float(diff.numel()))])
        err = all_reduce_sum(err)
        n = float(err[2])
        return {'mae': float(err[0]) / n, 'rmse': math.sqrt(float(err[1]) / n)}


class ClickThroughEvaluator:
    """Click-through evaluation (KGCN's protocol) of
    ``model.predict(users, items)`` logits over labelled rows
    (:attr:`~pyg_recsys.data.split.Split.labelled`): ``auc`` and ``f1``
    over all rows of the part and, as the reference code computes them,
    ``auc_batches`` / ``f1_batches`` (the mean over mini-batches of
    ``batch_size`` rows, the last partial one dropped; see
    :func:`~pyg_recsys.metrics.click_through_metrics`); with ``ranking``,
    that evaluator's full-ranking metrics next to them.

    Args:
        parts: Part -> ``[3, n]`` (user, item, label) rows, or ``{}``
            (ranking only).
        batch_size: Rows per reference mini-batch (KGCN: the training
            batch size).
        ranking: A :class:`RankingEvaluator` of the same split, or
            ``None``.
        chunk: Rows per ``predict`` call.
    """

    def __init__(self, parts: Mapping[str, Tensor], batch_size: int = 128,
                 ranking: RankingEvaluator | None = None,
                 chunk: int = 65536) -> None:
        self.parts = dict(parts)
        self.batch_size = batch_size
        self.ranking = ranking
        self.chunk = chunk

    @torch.no_grad()
    def __call__(self, model: nn.Module, part: str) -> dict[str, float]:
        from pyg_recsys.metrics import click_through_metrics
        out: dict[str, float] = {}
        if self.parts:
            check_contract(model, ClickThroughPredictor,
                           'ClickThroughEvaluator')
            model.eval()
            device = model_device(model)
            rows = self.parts[part].to(device)
            logits = torch.cat([
                model.predict(rows[0, i:i + self.chunk],
                              rows[1, i:i + self.chunk])
                for i in range(0, rows.size(1), self.chunk)])
            out.update(click_through_metrics(logits.cpu(), rows[2].cpu(),
                                             self.batch_size))
        if self.ranking is not None:
            out.update(self.ranking(model, part))
        return out


class KGEvaluator:
    """Filtered link prediction over a knowledge-graph completion split
    (:class:`~pyg_recsys.data.kg.KGSplit`): for every triple of the part,
    every entity is scored as its tail (``model.score_tails(h, r)``) and
    as its head (``model.score_heads(r, t)``; where the model has them,
    ``ranking_tails`` / ``ranking_heads``, the same order per row computed
    more cheaply), the other known true
    triples (train, validation and test) are masked, and the true entity
    ranked (:func:`~pyg_recsys.metrics.filtered_ranks`).  Metrics are the
    means over both directions: ``mrr``, ``mr`` and ``hits@K``, and the
    MRR of each direction (``mrr_tail``, ``mrr_head``).  Triples whose
    entities never occur in training are ranked and counted like the
    others.  Runs on the model's device, a batch of triples at a time;
    with several processes each takes every ``world``-th batch and the
    sums are reduced.

    Args:
        split: The benchmark.
        ks: Cut-offs of ``hits@K``.
        batch_size: Triples per batch (default: about 2^24 scores per
            direction).
    """

    def __init__(self, split: Any, ks: Iterable[int] = (1, 3, 10),
                 batch_size: int | None = None) -> None:
        self.split = split
        self.ks = tuple(ks)
        self.batch_size = batch_size or max(
            1, (1 << 24) // max(split.num_entities, 1))
        self._filter: dict[torch.device, tuple[CSR, CSR]] = {}

    def filter_index(self, device: torch.device) -> tuple[CSR, CSR]:
        """The split's filter index on ``device``, copied there once."""
        if device not in self._filter:
            tails, heads = self.split.filter_index()
            self._filter[device] = (tails.to(device), heads.to(device))
        return self._filter[device]

    @torch.no_grad()
    def __call__(self, model: TripleScorer, part: str) -> dict[str, float]:
        from pyg_recsys.metrics import filtered_ranks, link_prediction_metrics
        check_contract(model, TripleScorer, 'KGEvaluator')
        model.eval()
        # a model may rank through a cheaper form in the same order
        rank_tails = getattr(model, 'ranking_tails', model.score_tails)
        rank_heads = getattr(model, 'ranking_heads', model.score_heads)
        device = model_device(model)
        triples = self.split.part(part).to(device)
        tails, heads = self.filter_index(device)
        R = self.split.num_relations
        rank, world = dist_info()
        n = triples.size(1)
        sums: dict[str, Tensor] = {}
        for b, i in enumerate(range(0, n, self.batch_size)):
            if b % world != rank:
                continue
            h, r, t = triples[:, i:i + self.batch_size]
            tail_rank = filtered_ranks(rank_tails(h, r), t, tails, h * R + r)
            head_rank = filtered_ranks(rank_heads(r, t), h, heads, t * R + r)
            both = link_prediction_metrics(
                torch.cat([tail_rank, head_rank]), self.ks)
            both['mrr_tail'] = (1.0 / tail_rank.double()).sum() * 2
            both['mrr_head'] = (1.0 / head_rank.double()).sum() * 2
            for key, value in both.items():
                sums[key] = sums.get(key, 0) + value
        keys = ['mrr', 'mr', *(f'hits@{k}' for k in self.ks), 'mrr_tail',
                'mrr_head']
        total = torch.stack([
            torch.as_tensor(sums.get(k, 0.0), dtype=torch.float64,
                            device=device) for k in keys])
        if world > 1:
            total = all_reduce_sum(total)
        total = total.cpu() / max(2 * n, 1)
        return dict(zip(keys, total.tolist()))


_MASK63 = (1 << 63) - 1


def _mix(x: Tensor) -> Tensor:
    """A 64-bit finaliser (splitmix64's, on the low 63 bits, with int64
    products wrapping): equal inputs give equal outputs, near inputs
    unrelated ones."""
    x = x & _MASK63
    x = ((x ^ (x >> 31)) * 0x5851F42D4C957F2D) & _MASK63
    x = ((x ^ (x >> 29)) * 0x14057B7EF767814F) & _MASK63
    return x ^ (x >> 32)


def _hash_draw(seed: int, example: Tensor, slot: Tensor, attempt: int,
               width: int) -> Tensor:
    """A value in ``[0, width)`` per ``(seed, example, slot, attempt)``:
    draws that depend on an example's position alone, not on the batch it
    is in (the modulo bias is below ``width / 2**63``)."""
    h = _mix(torch.full_like(example, seed) * 1_000_003 + attempt)
    h = _mix(h * 1_000_033 + example)
    h = _mix(h * 1_000_037 + slot)
    return h % width


class NextItemEvaluator:
    """Full-ranking next-item evaluation over batches of sequences/sessions.

    ``model.score(batch)`` returns ``[B, num_items]`` scores for the next
    item of each example and ``batch.y`` holds the target item
    (:class:`~pyg_recsys.nn.models.contract.NextItemRecommender`).  Nothing is
    masked, as in the session-recommendation protocol (SR-GNN) and RecBole's
    sequential evaluation: an item seen earlier in the session may be the
    next one.

    With ``num_negatives`` set, each example is also ranked against that
    many items drawn uniformly among those absent from its input sequence
    and target (SASRec's protocol, with replacement as its code), scored
    through ``model.score(batch, items)``; those metrics carry the prefix
    ``sampled{N}_`` (e.g. ``sampled100_hit@10``) so they are never mistaken
    for full-ranking figures.  The negatives of an example depend only on
    ``seed`` and its position in the part (:meth:`sample_negatives`), so
    every evaluation of a part uses the same ones, whatever the
    evaluation batch size.

    Args:
        loaders: ``{part: iterable of batches}``.
        num_items: Number of items.
        ks: Cut-offs.
        num_negatives: Sampled negatives per example (``None``: full
            ranking only).
        seed: Seed of the sampled negatives.
    """

    def __init__(self, loaders: Mapping[str, Iterable[Any]], num_items: int,
                 ks: Iterable[int] = DEFAULT_KS,
                 num_negatives: int | None = None, seed: int = 0) -> None:
        self.loaders = dict(loaders)
        self.num_items = num_items
        self.ks = tuple(ks)
        if num_negatives is not None and not (
                0 < num_negatives < num_items):
            raise ValueError(f'NextItemEvaluator: num_negatives must be in '
                             f'[1, {num_items - 1}] (or None), got '
                             f'{num_negatives}')
        self.num_negatives = num_negatives
        self.seed = seed

    def sample_negatives(self, batch: Any, first: int = 0) -> Tensor:
        """``[B, num_negatives]`` items, none in the example's input
        sequence or equal to its target.  Example ``b`` of the batch is
        example ``first + b`` of its part; its negatives depend only on
        :attr:`seed` and that position (a counter-based hash,
        :func:`_hash_draw`), so they are the same whatever the batch size
        and however the batches are shared among processes."""
        from pyg_recsys.data.session import step_batch
        y = batch.y.view(-1).cpu()
        n, width = y.numel(), self.num_items
        rows = torch.cat([step_batch(batch).cpu(), torch.arange(n)])
        seen = torch.unique(rows * width + torch.cat([batch.seq.cpu(), y]))
        example = (first + torch.arange(n)).unsqueeze(1).expand(
            n, self.num_negatives)
        slot = torch.arange(self.num_negatives).expand(n, -1)
        neg = _hash_draw(self.seed, example, slot, 0, width)
        if n and int(torch.bincount(seen // width, minlength=n).max()) \
                >= width:
            raise ValueError('NextItemEvaluator: an example holds every '
                             'item, so no negative can be sampled for it')
        row_key = torch.arange(n).unsqueeze(1) * width
        attempt = 0
        while True:
            bad = torch.isin(row_key + neg, seen)
            if not bool(bad.any()):
                return neg
            attempt += 1
            neg[bad] = _hash_draw(self.seed, example[bad], slot[bad],
                                  attempt, width)

    @torch.no_grad()
    def __call__(self, model: NextItemRecommender, part: str
                 ) -> dict[str, float]:
        from pyg_recsys.metrics import RankingMetrics, sampled_rank_metrics
        from pyg_recsys.ops.topk import masked_topk
        check_contract(model, NextItemRecommender, 'NextItemEvaluator')
        model.eval()
        device = model_device(model)
        rank, world = dist_info()
        acc = RankingMetrics(ks=self.ks)
        sampled: dict[str, Tensor] = {}
        count = 0
        first = 0  # position of the batch's first example in the part
        for i, batch in enumerate(self.loaders[part]):
            first, start = first + batch.y.view(-1).numel(), first
            if i % world != rank:  # every process a share of the batches
                continue
            batch = _to_device(batch, device)
            scores = model.score(batch)
            y = batch.y.view(-1)
            rows = torch.arange(y.numel(), device=device)
            if self.num_negatives is not None:
                neg = self.sample_negatives(batch, start).to(device)
                cand = model.score(batch, torch.cat([y.view(-1, 1), neg], 1))
                for key, value in sampled_rank_metrics(
                        cand[:, 0], cand[:, 1:], self.ks).items():
                    total = value.sum().cpu()
                    sampled[key] = sampled[key] + total if key in sampled \
                        else total
                count += y.numel()
            _, top = masked_topk(scores, max(self.ks), rows, None)
            rows, y = rows.cpu(), y.cpu()
            acc.update(top, rows,
                       CSR.from_pairs(rows, y, y.numel(), self.num_items))
        out = acc.compute(distributed=world > 1)
        if self.num_negatives is not None:
            keys = sorted(sampled_rank_metrics(
                torch.zeros(1), torch.zeros(1, 1), self.ks))
            sums = torch.stack([sampled.get(k, torch.zeros((),
                                                           dtype=torch.float64))
                                for k in keys]
                               + [torch.tensor(float(count),
                                               dtype=torch.float64)])
            if world > 1:
                sums = all_reduce_sum(sums)
            prefix = f'sampled{self.num_negatives}_'
            n = max(float(sums[-1]), 1.0)
            out.update({prefix + k: float(v) / n
                        for k, v in zip(keys, sums[:-1])})
        return out


# The loop ####################################################################


def shutdown_distributed() -> None:
    """Leaves the process group of :func:`init_distributed`, if any (after
    freeing what still refers to it)."""
    import gc

    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


class _Objective(nn.Module):
    """``model.loss(batch[, objective])`` as a module's ``forward``, the
    call :class:`~torch.nn.parallel.DistributedDataParallel` wraps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, objective: str | None = None) -> Tensor:
        if objective is None:
            return self.model.loss(batch)
        return self.model.loss(batch, objective)


def init_distributed(device: torch.device | str | None = 'auto'
                     ) -> torch.device:
    """Joins the process group ``torchrun`` describes in the environment
    (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``):
    NCCL on GPUs, gloo on CPUs.  Returns the device of this process, the
    GPU ``LOCAL_RANK`` of its node on a GPU machine.  Without ``torchrun``
    (``WORLD_SIZE`` unset or 1) it only resolves ``device``."""
    import os

    import torch.distributed as dist
    world = int(os.environ.get('WORLD_SIZE', '1'))
    device = resolve_device(device)
    if world == 1 or (dist.is_available() and dist.is_initialized()):
        return device
    if device.type == 'cuda':
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
        torch.cuda.set_device(device)
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return device


class Trainer:
    """Trains a model through its ``loss(batch)`` and selects it on
    validation.

    One loader: every batch is a step on ``model.loss(batch)``
    (:class:`~pyg_recsys.nn.models.contract.Recommender`).  Several
    loaders, a mapping ``{objective: loader}``: the model alternates
    objectives within each epoch
    (:class:`~pyg_recsys.nn.models.contract.MultiObjective`, e.g. KGAT's
    BPR over interactions and TransR over triples), each batch a step on
    ``model.loss(batch, objective)``; ``schedule='sequential'`` runs every
    batch of the first loader, then of the next (KGAT's epoch),
    ``'interleave'`` takes one batch of each in turn until all are spent.
    Each objective may have its own optimizer; the epoch record holds the
    mean loss of each (``losses``) and their sum (``loss``).

    Args:
        model: A recommender following the model contract.
        train_loader: Iterable of training batches, or a mapping objective
            name -> iterable (in the order of the epoch).  A loader with
            ``set_epoch(epoch)`` has it called before each epoch (loaders
            that reseed per epoch make resumed runs exact); so does a
            model with ``set_epoch``.
        evaluator: ``evaluator(model, part) -> {metric: value}``.
        optimizer: Defaults to Adam (:func:`adam`, fused where torch has
            it) with ``lr`` over the model's parameters; with several
            loaders also a mapping objective -> optimizer.
        schedule: ``'sequential'`` or ``'interleave'`` (several loaders).
        lr: Learning rate of the default optimizer.
        epochs: Maximum number of epochs.
        eval_every: Validate every this many epochs (and after the last).
        monitor: Validation metric for model selection, e.g. ``'ndcg@20'``.
        mode: ``'max'`` or ``'min'`` for ``monitor``.
        patience: Stop after this many validations without improvement
            (``None``: never stop early).
        out_dir: Folder for ``last.pt``, ``best.pt`` and ``metrics.json``;
            ``None`` keeps everything in memory (no resume).
        progress: Show a tqdm bar per epoch.
        device: Where to train and evaluate: ``'auto'`` (CUDA when
            available), ``'cpu'``, ``'cuda'``, ``'cuda:N'``, a
            :class:`torch.device`, or ``None`` for wherever the model is.
            The model is moved there (before the default optimizer is
            made), loaders with a ``to`` method
            (:class:`~pyg_recsys.data.loader.PairLoader`) make their
            batches there, and other batches are copied there (pinned,
            without blocking).  Evaluators run on the model's device.
        grad_clip: Optional max gradient norm.
        on_epoch_end: Optional callback ``f(trainer, record)`` after each
            epoch's checkpoint was written.
        lr_step: Step decay of the learning rate (SR-GNN's ``StepLR``):
            epoch :math:`e` (from 1) runs at
            ``lr * lr_gamma ** ((e - 1) // lr_step)``, computed from the
            epoch number so resumed runs follow the same schedule.
            ``None``: constant.
        lr_gamma: Factor of each decay step.
        check_every: Check that the loss is finite every this many steps
            (and at the end of each epoch).  The check reads a value back
            from the device, so it is not done every step; a non-finite
            loss stops training at the next check.  With several
            processes, only the epoch's reduced loss is checked (all of
            them stop together).

    Several processes: when a ``torch.distributed`` process group is
    initialised (``torchrun``; :func:`init_distributed`), the model is
    wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, every
    loader is sharded (``loader.shard(rank, world_size)``: each process
    takes its part of the same global batches, and the loss of a part is
    scaled so that the averaged gradient is that of the whole batch), the
    evaluators split their users or batches among the processes and
    reduce the metrics, and only rank 0 writes ``out_dir``.
    """

    def __init__(self, model: nn.Module,
                 train_loader: Iterable[Any] | Mapping[str, Iterable[Any]],
                 evaluator: Evaluator, *,
                 optimizer: torch.optim.Optimizer
                 | Mapping[str, torch.optim.Optimizer] | None = None,
                 schedule: str = 'sequential',
                 lr: float = 1e-3, epochs: int = 100, eval_every: int = 1,
                 monitor: str = 'ndcg@20', mode: str = 'max',
                 patience: int | None = None,
                 out_dir: str | Path | None = None, progress: bool = True,
                 device: torch.device | str | None = None,
                 grad_clip: float | None = None,
                 on_epoch_end: Callable[[Trainer, dict], None] | None = None,
                 lr_step: int | None = None, lr_gamma: float = 0.1,
                 check_every: int = 100,
                 ) -> None:
        if mode not in ('max', 'min'):
            raise ValueError(f"Trainer: mode must be 'max' or 'min', got "
                             f"'{mode}'")
        if epochs < 1 or eval_every < 1:
            raise ValueError(f'Trainer: epochs and eval_every must be >= 1, '
                             f'got epochs={epochs}, eval_every={eval_every}')
        if schedule not in SCHEDULES:
            raise ValueError(f'Trainer: schedule must be one of '
                             f'{SCHEDULES}, got {schedule!r}')
        if check_every < 1:
            raise ValueError(f'Trainer: check_every must be >= 1, got '
                             f'{check_every}')
        self.device = (model_device(model) if device is None
                       else resolve_device(device))
        self.model = model.to(self.device)
        self.loaders = self._objectives(model, train_loader)
        self.rank, self.world_size = dist_info()
        for loader in self.loaders.values():
            if hasattr(loader, 'to'):
                loader.to(self.device)
            if self.world_size > 1:
                if not hasattr(loader, 'shard'):
                    raise ValueError(
                        f'Trainer: {type(loader).__name__} cannot be '
                        f'sharded over {self.world_size} processes; use a '
                        f'loader with shard(rank, world_size) such as '
                        f'PairLoader or SessionLoader')
                loader.shard(self.rank, self.world_size)
        self.schedule = schedule
        self.evaluator = evaluator
        self.optimizer = optimizer or adam(model.parameters(), lr=lr)
        self.check_every = check_every
        # the DistributedDataParallel wrapper, made by train_epoch and
        # dropped at the end of fit (see _wrap)
        self._ddp: nn.Module | None = None
        if isinstance(self.optimizer, Mapping):
            unknown = set(self.optimizer) - set(self.loaders)
            missing = set(self.loaders) - set(self.optimizer)
            if self.loaders.keys() == {None} or unknown or missing:
                raise ValueError(
                    f'Trainer: a mapping of optimizers needs one per '
                    f'objective {sorted(k for k in self.loaders if k)}, got '
                    f'{sorted(self.optimizer)}')
        self.epochs = epochs
        self.eval_every = eval_every
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress and self.rank == 0
        self.grad_clip = grad_clip
        self.on_epoch_end = on_epoch_end
        if lr_step is not None and lr_step < 1:
            raise ValueError(f'Trainer: lr_step must be >= 1 (or None), got '
                             f'{lr_step}')
        self.lr_step = lr_step
        self.lr_gamma = lr_gamma
        self.last_losses: dict[str | None, float] = {}
        self.last_steps = 0
        self._reset_state()

    @staticmethod
    def _objectives(model: nn.Module, loader: Any
                    ) -> dict[str | None, Iterable[Any]]:
        """``{objective: loader}``; ``{None: loader}`` for one loader."""
        if not isinstance(loader, Mapping):
            check_contract(model, Recommender, 'Trainer')
            return {None: loader}
        if not loader:
            raise ValueError('Trainer: the mapping of loaders is empty')
        check_contract(model, MultiObjective, 'Trainer')
        unknown = [k for k in loader if k not in model.objectives]
        if unknown:
            raise ValueError(f'Trainer: loaders {unknown} name no objective '
                             f'of {type(model).__name__} (its objectives: '
                             f'{list(model.objectives)})')
        return dict(loader)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        opt = self.optimizer
        return list(opt.values()) if isinstance(opt, Mapping) else [opt]

    def _reset_state(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_val: dict[str, float] | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.bad_evals = 0
        self.stopped_early = False
        self.test: dict[str, float] | None = None

    # checkpoint ##############################################################

    @property
    def last_path(self) -> Path | None:
        return self.out_dir / 'last.pt' if self.out_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.out_dir / 'best.pt' if self.out_dir else None

    def _rng_states(self) -> dict[str, Any]:
        """This process's random states; with several processes, also
        every process's under ``'ranks'`` (a collective: every process
        must call it)."""
        own = _rng_state()
        if self.world_size == 1:
            return own
        import torch.distributed as dist
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, own)
        return dict(own, ranks=states)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint (with several processes a collective: see
        :meth:`_rng_states`)."""
        opt = self.optimizer
        return dict(model=self.model.state_dict(),
                    optimizer=({k: o.state_dict() for k, o in opt.items()}
                               if isinstance(opt, Mapping)
                               else opt.state_dict()), epoch=self.epoch,
                    history=self.history, best_epoch=self.best_epoch,
                    best_value=self.best_value, best_val=self.best_val,
                    bad_evals=self.bad_evals,
                    stopped_early=self.stopped_early, test=self.test,
                    rng=self._rng_states())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state['model'])
        if isinstance(self.optimizer, Mapping):
            for k, o in self.optimizer.items():
                o.load_state_dict(state['optimizer'][k])
        else:
            self.optimizer.load_state_dict(state['optimizer'])
        self.epoch = state['epoch']
        self.history = state['history']
        self.best_epoch = state['best_epoch']
        self.best_value = state['best_value']
        self.best_val = state['best_val']
        self.bad_evals = state['bad_evals']
        self.stopped_early = state['stopped_early']
        self.test = state['test']
        rng = state['rng']
        ranks = rng.get('ranks')
        if ranks is not None and len(ranks) == self.world_size:
            rng = ranks[self.rank]  # each process its own streams
        _set_rng_state(rng)

    def _checkpoint(self, model_state: dict[str, Tensor] | None = None
                    ) -> None:
        if self.out_dir is None:
            return
        state = self.state_dict()  # (every process: a collective)
        if self.rank != 0:
            return
        if model_state is not None:
            state['model'] = model_state
        atomic_save(state, self.last_path)
        atomic_write_text(json.dumps(self.result(), indent=2),
                          self.out_dir / 'metrics.json')

    # loop ####################################################################

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == 'max':
            return value > self.best_value
        return value < self.best_value

    def _set_lr(self) -> None:
        if self.lr_step is None:
            return
        factor = self.lr_gamma ** ((self.epoch - 1) // self.lr_step)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group['lr'] = group.setdefault('initial_lr',
                                               group['lr']) * factor

    def _batches(self) -> Iterator[tuple[str | None, Any]]:
        """``(objective, batch)`` pairs of one epoch, in schedule order."""
        if self.schedule == 'sequential' or len(self.loaders) == 1:
            for name, loader in self.loaders.items():
                for batch in loader:
                    yield name, batch
            return
        iters = {name: iter(loader) for name, loader in self.loaders.items()}
        while iters:
            for name in list(iters):
                batch = next(iters[name], _DONE)
                if batch is _DONE:
                    del iters[name]
                else:
                    yield name, batch

    def _num_batches(self) -> int | None:
        try:
            return sum(len(loader) for loader in self.loaders.values())
        except TypeError:
            return None

    def train_epoch(self) -> float:
        """One pass over the training loader(s); returns the mean loss (the
        sum of the objectives' means, each in :attr:`last_losses`).

        A step never reads a value back from the device: losses are summed
        there and read once per epoch, and their finiteness is checked
        every :attr:`check_every` steps."""
        self.model.train()
        # the loaders' streams, and a model's per-epoch state (KGCN's
        # resampled neighbourhoods), follow the epoch: a resumed run sees
        # what an uninterrupted one would
        if hasattr(self.model, 'set_epoch'):
            self.model.set_epoch(self.epoch)
        for loader in self.loaders.values():
            if hasattr(loader, 'set_epoch'):
                loader.set_epoch(self.epoch)
        if self.world_size > 1 and self._ddp is None:
            self._ddp = self._wrap()
        device = self.device
        total = {name: torch.zeros((), dtype=torch.float64, device=device)
                 for name in self.loaders}
        count: dict[str | None, float] = dict.fromkeys(self.loaders, 0.0)
        bar = tqdm(self._batches(), desc=f'epoch {self.epoch}',
                   total=self._num_batches(), disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        step = 0
        for name, batch in bar:
            batch = _to_device(batch, device)
            opt = (self.optimizer[name] if isinstance(self.optimizer,
                                                      Mapping)
                   else self.optimizer)
            opt.zero_grad(set_to_none=True)
            if self._ddp is not None:
                loss = self._ddp(batch, name)
            else:
                loss = (self.model.loss(batch) if name is None
                        else self.model.loss(batch, name))
            scale = _loss_scale(batch)
            (loss * scale if scale != 1.0 else loss).backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(),
                                         self.grad_clip)
            opt.step()
            # the batch's weight in the epoch's mean: its examples, or
            # for a shard its share of the whole batch's
            n = _batch_weight(batch, self.world_size)
            total[name] += loss.detach().double() * (scale * n)
            count[name] += n
            step += 1
            # (several processes check the reduced totals at the end of the
            # epoch only: all of them stop together, none waits for another
            # in a collective it will never join)
            if step % self.check_every == 0 and self.world_size == 1:
                self._check_finite(total)
                if self.progress:
                    mean = float(total[name]) / max(count[name], 1)
                    bar.set_postfix(loss=f'{mean:.4f}')
        if self.world_size > 1:  # the epoch's loss over all processes
            for name in total:
                both = all_reduce_sum(torch.stack([
                    total[name],
                    total[name].new_tensor(float(count[name]))]))
                total[name], count[name] = both[0], float(both[1])
        self._check_finite(total)
        self.last_losses = {name: float(total[name]) / max(count[name], 1)
                            for name in self.loaders}
        self.last_steps = step
        return sum(self.last_losses.values())

    def _wrap(self) -> nn.Module:
        """The model's loss in
        :class:`~torch.nn.parallel.DistributedDataParallel` (which
        broadcasts rank 0's weights on construction)."""
        import warnings

        from torch.nn.parallel import DistributedDataParallel as DDP

        # Buffers (a model's adjacency, built from the same split in every
        # process) are never broadcast, neither at construction nor before
        # a step: some are sparse tensors, which cannot be.  torch 2.13
        # deprecates broadcast_buffers, but its successor still broadcasts
        # at construction.
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', category=FutureWarning,
                                    message='.*broadcast_buffers')
            return DDP(_Objective(self.model),
                       device_ids=([self.device.index or 0]
                                   if self.device.type == 'cuda' else None),
                       find_unused_parameters=len(self.loaders) > 1,
                       broadcast_buffers=False)

    def _check_finite(self, total: dict[str | None, Tensor]) -> None:
        for name, value in total.items():
            if not bool(torch.isfinite(value)):
                what = '' if name is None else f' ({name})'
                raise FloatingPointError(
                    f'Trainer: loss{what} became {float(value)} at epoch '
                    f'{self.epoch}; lower the learning rate or check the '
                    f'inputs')

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Trains, validates, early-stops and scores the test part once at
        the best checkpoint (see :meth:`_fit`)."""
        try:
            return self._fit(resume)
        finally:
            # drop the DDP wrapper while the process group lives: freed
            # after it, its reducer can deadlock with gloo's threads
            self._ddp = None

    def _fit(self, resume: bool = False) -> dict[str, Any]:
        """Trains, validates, early-stops and scores the test part once at
        the best checkpoint.  Returns :meth:`result`.

        Args:
            resume: Continue from ``out_dir/last.pt`` if it exists.  A
                finished run is returned as it is, or, when ``epochs`` is
                now larger (and it did not stop early), trained on from its
                last epoch's weights, optimizer and random state; the old
                last epoch keeps the validation it got as the run's end, so
                with ``eval_every=1`` the result equals an uninterrupted
                longer run (tested).
        """
        if resume:
            if self.out_dir is None:
                raise ValueError('Trainer.fit: resume=True needs out_dir')
            if self.last_path.exists():
                self.load_state_dict(safe_load(
                    self.last_path, 'checkpoint',
                    'delete it to start the run afresh, or restore it'))
                log.info('resumed from %s at epoch %d', self.last_path,
                         self.epoch)
                if self.test is not None:  # the run had already finished
                    if self.epoch < self.epochs and not self.stopped_early:
                        # more epochs asked for: go on from the last one
                        log.info('extending the finished run from %d to %d '
                                 'epochs', self.epoch, self.epochs)
                        self.test = None
                    else:
                        self._load_best()
                        self._restore_best()
                        return self.result()
        else:
            self._reset_state()
        self._load_best()

        while self.epoch < self.epochs and not self.stopped_early:
            self.epoch += 1
            self._set_lr()
            t0 = time.perf_counter()
            loss = self.train_epoch()
            record: dict[str, Any] = dict(
                epoch=self.epoch, loss=loss,
                train_seconds=time.perf_counter() - t0,
                steps=self.last_steps)
            if None not in self.last_losses:
                record['losses'] = dict(self.last_losses)
            if self.epoch % self.eval_every == 0 or self.epoch == self.epochs:
                t0 = time.perf_counter()
                val = self.evaluator(self.model, 'val')
                record['eval_seconds'] = time.perf_counter() - t0
                record['val'] = val
                if self.monitor not in val:
                    raise KeyError(
                        f"Trainer: monitor '{self.monitor}' is not among the "
                        f'validation metrics {sorted(val)}; pass one of them')
                if self._improved(val[self.monitor]):
                    self.best_value = val[self.monitor]
                    self.best_val = val
                    self.best_epoch = self.epoch
                    self.bad_evals = 0
                    self._save_best()
                else:
                    self.bad_evals += 1
                    if (self.patience is not None
                            and self.bad_evals >= self.patience):
                        self.stopped_early = True
                log.info('epoch %d loss %.4f %s %.4f (best %.4f @ %s)',
                         self.epoch, loss, self.monitor, val[self.monitor],
                         self.best_value, self.best_epoch)
            self.history.append(record)
            self._checkpoint()
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, record)

        # last.pt keeps the last epoch's weights (so a finished run can be
        # extended exactly); the model in memory goes to the best epoch.
        last = {k: v.detach().clone()
                for k, v in self.model.state_dict().items()}
        self._restore_best()
        t0 = time.perf_counter()
        self.test = self.evaluator(self.model, 'test')
        self.test_seconds = time.perf_counter() - t0
        self._checkpoint(model_state=last)
        return self.result()

    def _load_best(self) -> None:
        if self.best_epoch is not None and self.best_path is not None:
            self.best_state = safe_load(
                self.best_path, 'best checkpoint',
                'delete the run folder to start afresh, or restore it'
            )['model']

    def _save_best(self) -> None:
        state = {k: v.detach().clone()
                 for k, v in self.model.state_dict().items()}
        self.best_state = state
        if self.best_path is not None and self.rank == 0:
            atomic_save(dict(model=state, epoch=self.epoch,
                             val=self.best_val), self.best_path)

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def result(self) -> dict[str, Any]:
        """The ``metrics.json`` record: per-epoch history, best epoch, its
        validation metrics and the test metrics (once scored)."""
        return dict(epochs=self.history, best_epoch=self.best_epoch,
                    monitor=self.monitor, best_val=self.best_val,
                    stopped_early=self.stopped_early, test=self.test)
