r"""Ranking and rating metrics over full item rankings.

The ranking protocol (GUIDE section 4) scores every user against *all*
items, masks the items already known for that user (training items when
ranking validation items; training and validation items when ranking
test items) and measures the top-:math:`K` list :math:`R_u` against the
held-out set :math:`P_u`, with binary relevance
:math:`\mathrm{rel}_i = 1[R_{u,i} \in P_u]` (positions :math:`i = 0, 1,
\ldots`), as in LightGCN (He et al., SIGIR 2020) and as recommended over
sampled negatives by Krichene and Rendle, "On Sampled Metrics for Item
Recommendation" (KDD 2020). Per user:

.. math::
    \mathrm{recall@}K &= |R_u \cap P_u| \,/\, |P_u|, \qquad
    \mathrm{precision@}K = |R_u \cap P_u| \,/\, K, \qquad
    \mathrm{hit@}K = 1[|R_u \cap P_u| > 0],

    \mathrm{ndcg@}K &= \frac{\sum_{i<K} \mathrm{rel}_i / \log_2(i+2)}
    {\sum_{i<\min(|P_u|, K)} 1 / \log_2(i+2)}
    \quad \text{(J\"arvelin and Kek\"al\"ainen, TOIS 2002)},

    \mathrm{mrr@}K &= 1 / (1 + \min\{i < K : \mathrm{rel}_i = 1\})
    \quad (0 \text{ without a hit}),

    \mathrm{map@}K &= \frac{1}{\min(|P_u|, K)} \sum_{i<K} \mathrm{rel}_i
    \cdot \mathrm{precision@}(i+1),

and every metric is the mean over the users with :math:`|P_u| > 0`.

Agreement with PyG: these are exactly the definitions of
:class:`torch_geometric.metrics.LinkPredRecall`, ``LinkPredPrecision``,
``LinkPredHitRatio``, ``LinkPredNDCG``, ``LinkPredMRR`` and
``LinkPredMAP`` (PyG 2.8; MAP's denominator there is also
:math:`\min(|P_u|, K)`, via ``label_count.clamp(max=k)``), including the
average over users with at least one label; the tests check the numbers
agree. They differ only in the inputs they accept:

* PyG counts duplicated ground-truth pairs once per copy in
  :math:`|P_u|`; a :class:`~pyg_recsys.ops.csr.CSR` holds unique items.
* PyG has no padding: an index :obj:`-1` in its ``pred_index_mat`` is
  matched as item ``max_index - 1`` of the *previous* row and can count as
  a false hit. Here :obj:`-1` (the padding of
  :func:`~pyg_recsys.ops.topk.masked_topk` when a user has fewer than
  :math:`K` unmasked items) never counts as a hit.
* PyG accumulates in the default dtype (float32); we keep per-user values
  in float64.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.csr import CSR, isin_sorted
from pyg_recsys.ops.topk import _chunked

log = logging.getLogger(__name__)

RANKING_METRICS = ('recall', 'ndcg', 'precision', 'hit', 'mrr', 'map')
_SERIAL_NUMEL = 16384  # below torch's parallel grain size (32768)


class RankingMetrics:
    r"""Accumulates full-ranking top-:math:`K` metrics (module docstring)
    at several :math:`K` at once, over chunks of users.

    :meth:`update` turns a chunk's top-:math:`K_{\max}` lists into one
    boolean hit matrix (a vectorized membership test against the chunk's
    targets, no loop over users) and derives every metric at every
    :math:`K` from its prefix sums. Per-user values are kept in float64 and
    averaged in :meth:`compute`, so the result is the same, bit for bit,
    however the users are split into chunks (as long as they are fed in
    the same order).

    .. code-block:: python

        acc = RankingMetrics(ks=(10, 20))
        for users in all_users.split(4096):
            _, items = masked_topk(model.score(users), 20, users, exclude)
            acc.update(items, users, targets)
        acc.compute()  # {'recall@10': ..., 'recall@20': ..., ...}

    Args:
        ks (Sequence[int], optional): Cut-offs :math:`K`.
            (default: :obj:`(10, 20)`)
        metrics (Sequence[str], optional): Any of :obj:`'recall'`,
            :obj:`'ndcg'`, :obj:`'precision'`, :obj:`'hit'`, :obj:`'mrr'`,
            :obj:`'map'`. (default: all six)
    """

    def __init__(self, ks: Sequence[int] = (10, 20),
                 metrics: Sequence[str] = RANKING_METRICS) -> None:
        ks = tuple(int(k) for k in ks)
        if len(ks) == 0 or min(ks) < 1:
            raise ValueError(f'RankingMetrics: ks must be positive integers, '
                             f'got {ks}')
        unknown = [m for m in metrics if m not in RANKING_METRICS]
        if unknown or len(metrics) == 0:
            raise ValueError(f'RankingMetrics: unknown metrics {unknown} '
                             f'(or none given); choose from '
                             f'{RANKING_METRICS}')
        self.ks = tuple(sorted(set(ks)))
        self.metrics = tuple(dict.fromkeys(metrics))
        self.max_k = self.ks[-1]
        pos = torch.arange(self.max_k, dtype=torch.float64)
        self._discount = 1.0 / torch.log2(pos + 2.0)  # 1 / log2(i + 2)
        # _idcg[n] = sum_{i < n} 1 / log2(i + 2):
        self._idcg = torch.cat([torch.zeros(1, dtype=torch.float64),
                                self._discount.cumsum(0)])
        self._rank = pos + 1.0
        self.reset()

    @property
    def keys(self) -> list[str]:
        """Result keys, e.g. ``['recall@10', 'recall@20', ...]``."""
        return [f'{m}@{k}' for m in self.metrics for k in self.ks]

    @property
    def num_users(self) -> int:
        """Number of users (with at least one target) seen so far."""
        return sum(v.size(0) for v in self._values)

    def reset(self) -> None:
        """Forgets every update."""
        self._values: list[Tensor] = []

    def update(self, topk_items: Tensor, users: Tensor,
               targets: CSR) -> None:
        r"""Adds a chunk of users.

        Args:
            topk_items (torch.Tensor): Ranked items of shape
                :obj:`[B, L]` with :math:`L \ge K_{\max}` (only the first
                :math:`K_{\max}` columns are read); :obj:`-1` marks padding.
            users (torch.Tensor): The user of every row, shape :obj:`[B]`.
            targets (CSR): Held-out items per user. Users without targets
                are skipped (they do not enter the average).
        """
        if topk_items.dim() != 2 or topk_items.size(1) < self.max_k:
            raise ValueError(f'RankingMetrics.update: topk_items must have '
                             f'shape [B, >= {self.max_k}] (max of ks), got '
                             f'{tuple(topk_items.shape)}')
        # computed where the ranked items are (pass targets there too, or
        # they are copied at every call)
        device = topk_items.device
        users = users.view(-1).long().to(device)
        targets = targets.to(device)
        if users.numel() != topk_items.size(0):
            raise ValueError(f'RankingMetrics.update: got {users.numel()} '
                             f'users for {topk_items.size(0)} rows of '
                             f'topk_items; pass one user per row')
        items = topk_items[:, :self.max_k].long()
        if items.numel() > 0 and int(items.max()) >= targets.num_cols:
            raise ValueError(f'RankingMetrics.update: item id '
                             f'{int(items.max())} is out of range for '
                             f'targets with num_cols={targets.num_cols}')
        num_pos = targets.degree(users)
        keep = num_pos > 0
        if not bool(keep.all()):
            users, items, num_pos = users[keep], items[keep], num_pos[keep]
        if users.numel() == 0:
            return
        hit = _hits(items, users, targets)
        # On a CPU the metric math runs on row blocks small enough for
        # torch to run each op serially: a parallel op on a shared CPU can
        # wait a whole scheduler time slice for its second thread.
        rows = (max(1, _SERIAL_NUMEL // self.max_k)
                if device.type == 'cpu' else hit.size(0))
        for i in range(0, hit.size(0), rows):
            self._values.append(
                self._per_user(hit[i:i + rows], num_pos[i:i + rows]))

    def _per_user(self, hit: Tensor, num_pos: Tensor) -> Tensor:
        """Per-user metric values ``[B, len(keys)]`` (float64) from the hit
        matrix ``[B, K_max]``."""
        device = hit.device
        if self._discount.device != device:
            self._discount = self._discount.to(device)
            self._idcg = self._idcg.to(device)
            self._rank = self._rank.to(device)
        rel = hit.to(torch.float64)
        num_pos = num_pos.to(torch.float64)
        cum_hit = rel.cumsum(1)
        last = [k - 1 for k in self.ks]
        ks = torch.tensor(self.ks, dtype=torch.float64, device=device)
        n_hit = cum_hit[:, last]  # [B, len(ks)]
        out = []
        for name in self.metrics:
            if name == 'recall':
                out.append(n_hit / num_pos.view(-1, 1))
            elif name == 'precision':
                out.append(n_hit / ks)
            elif name == 'hit':
                out.append((n_hit > 0).to(torch.float64))
            elif name == 'ndcg':
                dcg = (rel * self._discount).cumsum(1)[:, last]
                ideal = torch.minimum(num_pos.view(-1, 1), ks).long()
                out.append(dcg / self._idcg[ideal])
            elif name == 'mrr':
                # rank of the first hit; K_max + 1 when there is none
                first = torch.where(hit.any(1, keepdim=True),
                                    hit.to(torch.uint8).argmax(1, True),
                                    self.max_k).to(torch.float64) + 1.0
                out.append(torch.where(first <= ks, 1.0 / first, 0.0))
            elif name == 'map':
                ap = (rel * cum_hit / self._rank).cumsum(1)[:, last]
                out.append(ap / torch.minimum(num_pos.view(-1, 1), ks))
        return torch.cat(out, dim=1)

    def compute(self, distributed: bool = False) -> dict[str, float]:
        """Means over all users seen since the last :meth:`reset`.

        Returns 0.0 for every key (and logs a warning) when no user with
        targets was seen, as PyG's link-prediction metrics do.

        Args:
            distributed: Average over the users seen by every process of
                the ``torch.distributed`` group (each process saw a part).
        """
        if self._values:
            values = torch.cat(self._values)
            sums = values.sum(0).cpu()
            count = values.size(0)
        else:
            sums = torch.zeros(len(self.keys), dtype=torch.float64)
            count = 0
        if distributed:
            from pyg_recsys.ops.device import all_reduce_sum
            both = all_reduce_sum(torch.cat([
                sums, torch.tensor([float(count)], dtype=torch.float64)]))
            sums, count = both[:-1], int(both[-1])
        if count == 0:
            log.warning('RankingMetrics.compute: no user with targets was '
                        'seen; returning 0.0 for every metric')
            return {key: 0.0 for key in self.keys}
        return dict(zip(self.keys, (sums / count).tolist()))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ks={self.ks}, '
                f'metrics={self.metrics})')


def _hits(items: Tensor, users: Tensor, targets: CSR) -> Tensor:
    """``hit[b, j] = items[b, j] in targets.row(users[b])`` (padding -1 is
    never a hit): one :func:`torch.searchsorted` over the sorted
    ``row * num_cols + col`` keys of just these users' targets."""
    pos, col = targets.select(users)
    keys = pos * targets.num_cols + col  # sorted: rows in order, cols sorted
    row = torch.arange(items.size(0), device=items.device).view(-1, 1)
    query = row * targets.num_cols + items
    return isin_sorted(query, keys) & (items >= 0)


def evaluate_ranking(score_fn: Callable[[Tensor], Tensor], targets: CSR,
                     exclude: CSR | None, ks: Sequence[int] = (10, 20),
                     metrics: Sequence[str] = RANKING_METRICS,
                     batch_size: int | None = None,
                     users: Tensor | None = None,
                     distributed: bool = False) -> dict[str, float]:
    r"""Full-ranking evaluation (GUIDE section 4) of a scoring function.

    For each chunk of at most ``batch_size`` users: ``score_fn(chunk)``
    scores the chunk against all items, the ``exclude`` items are masked
    and the top :math:`K_{\max}` kept (as in
    :func:`~pyg_recsys.ops.topk.chunked_topk`), and
    :class:`RankingMetrics` measures them against ``targets``, one group of
    up to :data:`~pyg_recsys.ops.topk.GROUP_USERS` users at a time. The users
    :math:`\times` items matrix never exists at once, and the result does
    not depend on ``batch_size`` (given a ``score_fn`` that scores each user
    independently of its chunk). With fewer than :math:`K` items, lists are
    padded (precision still divides by :math:`K`). Runs under
    :func:`torch.no_grad`.

    Args:
        score_fn (Callable): Maps a :obj:`[B]` tensor of user ids to a fresh
            :obj:`[B, num_items]` score tensor (masked in place), e.g.
            ``lambda u: user_emb[u] @ item_emb.T`` or ``model.score``.
        targets (CSR): Held-out items per user (``split.targets('test')``).
        exclude (CSR, optional): Known items to mask per user
            (``split.exclude('test')``), or :obj:`None`.
        ks (Sequence[int], optional): Cut-offs. (default: :obj:`(10, 20)`)
        metrics (Sequence[str], optional): Metric names (see
            :class:`RankingMetrics`). (default: all six)
        batch_size (int, optional): Users per chunk; :obj:`None` picks
            :func:`~pyg_recsys.ops.topk.auto_batch_size` (about
            :math:`2^{22}` scores per chunk, measured fastest on CPU in
            ``benchmarks/eval_speed.py``). (default: :obj:`None`)
        users (torch.Tensor, optional): Users to evaluate; those without
            targets are skipped. (default: every user with a target)
        distributed (bool, optional): Split ``users`` over the processes of
            the ``torch.distributed`` group and average over all of them
            (every process must call it). (default: :obj:`False`)

    Returns:
        dict[str, float]: e.g. ``{'recall@10': ..., 'ndcg@20': ...}``.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f'evaluate_ranking: batch_size must be >= 1 (or '
                         f'None for the default), got {batch_size}')
    if exclude is not None and exclude.num_cols != targets.num_cols:
        raise ValueError(f'evaluate_ranking: exclude has num_cols='
                         f'{exclude.num_cols} but targets has '
                         f'{targets.num_cols}; build both over the same '
                         f'items')
    acc = RankingMetrics(ks, metrics)
    if users is None:
        users = (targets.degree() > 0).nonzero().view(-1)
    users = users.view(-1).long()
    if distributed:
        from pyg_recsys.ops.device import dist_info
        rank, world = dist_info()
        users = users[rank::world]
    with torch.no_grad():
        for group, _, items in _chunked(score_fn, users, acc.max_k, exclude,
                                        batch_size, targets.num_cols,
                                        pad=True, where='evaluate_ranking'):
            acc.update(items, group, targets)
    return acc.compute(distributed)


def rating_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    r"""Rating-prediction errors, computed in float64:

    .. math::
        \mathrm{MAE} = \frac{1}{n} \sum_j |\hat{r}_j - r_j|, \qquad
        \mathrm{RMSE} = \sqrt{\frac{1}{n} \sum_j (\hat{r}_j - r_j)^2}.

    Args:
        pred (torch.Tensor): Predicted ratings.
        target (torch.Tensor): True ratings, same number of elements.

    Returns:
        dict[str, float]: ``{'mae': ..., 'rmse': ...}``.
    """
    pred = pred.detach().reshape(-1).to(torch.float64)
    target = target.detach().reshape(-1).to(torch.float64)
    if pred.numel() != target.numel() or pred.numel() == 0:
        raise ValueError(f'rating_metrics: pred and target must hold the '
                         f'same, non-zero number of ratings, got '
                         f'{pred.numel()} and {target.numel()}')
    err = pred - target
    return {'mae': float(err.abs().mean()),
            'rmse': math.sqrt(float(err.pow(2).mean()))}


def filtered_ranks(scores: Tensor, target: Tensor, known: CSR,
                   rows: Tensor) -> Tensor:
    r"""Filtered ranks of link prediction (Bordes et al., NeurIPS 2013):
    the rank of each query's true entity among all entities, the *other*
    known true answers of the query left out.

    With :math:`s` the query's scores, :math:`y` its true entity and
    :math:`F` the known answers (``known`` row ``rows[b]``):

    .. math::
        g = |\{e \notin F : s_e > s_y\}|, \quad
        q = |\{e \notin F \cup \{y\} : s_e = s_y\}|, \quad
        \mathrm{rank} = 1 + g + \lfloor q / 2 \rfloor

    (ties at their rounded mean rank, LibKGE's default; a model that
    scores every entity alike gets the middle rank, not the first).
    Computed for the whole batch at once in one pass over the scores:
    with the left-out entities set to :math:`-\infty`, the row sum of
    :math:`\mathrm{sign}(s_e - s_y)` over all :math:`E` entities is
    :math:`2g + q - E`, so :math:`\mathrm{rank} = 1 + \lfloor (\sum +
    E) / 2 \rfloor` (the sum is exact in float32 below :math:`2^{24}`
    entities, float64 above).  A NaN score counts as a tie with the
    true one (no credit for it), and a NaN true score ranks in the middle.
    ``scores`` is changed in place.

    Args:
        scores: ``[B, E]`` scores of every entity (higher is better).
        target: ``[B]`` true entities.
        known: Known true answers per query row (e.g. a
            :meth:`~pyg_recsys.data.kg.KGSplit.filter_index`).
        rows: ``[B]`` the row of ``known`` of each query.

    Returns:
        ``[B]`` long ranks (1 is best).
    """
    target = target.view(-1, 1).to(scores.device)
    true = scores.gather(1, target)
    pos, col = known.select(rows)
    flat = (pos * scores.size(1) + col).to(scores.device)
    scores.view(-1).index_fill_(0, flat, float('-inf'))
    scores.scatter_(1, target, float('-inf'))  # the true entity itself
    num = scores.size(1)
    # one pass instead of counting ``>`` and ``==`` apart (4-8x faster on
    # the CPU, where this is memory-bound): sign(s_e - s_y) summed
    # torch's sign of NaN is 0; the NaN -> 0 step makes that certain: on
    # a device always (no read-back), on the CPU only if a sum is NaN
    signs = scores.sub_(true).sign_()
    wide = torch.float64 if num >= 1 << 24 else None
    if ops_device.sync_free(scores.device):
        total = signs.nan_to_num_(nan=0.0).sum(1, dtype=wide)
    else:
        total = signs.sum(1, dtype=wide)
        if bool(total.isnan().any()):
            total = signs.nan_to_num_(nan=0.0).sum(1, dtype=wide)
    return 1 + (total.long() + num) // 2


def link_prediction_metrics(ranks: Tensor, ks: Sequence[int] = (1, 3, 10)
                            ) -> dict[str, Tensor]:
    """Sums (float64, over the given ranks) of the reciprocal rank, the
    rank and the hits at every :math:`K`: ``{'mrr', 'mr', 'hits@K'}``;
    divide by the number of ranks for the means."""
    ranks = ranks.to(torch.float64)
    out = {'mrr': (1.0 / ranks).sum(), 'mr': ranks.sum()}
    for k in ks:
        out[f'hits@{k}'] = (ranks <= k).to(torch.float64).sum()
    return out


def auc(pos_scores: Tensor, neg_scores: Tensor) -> float:
    r"""Area under the ROC curve: the probability that a positive outscores
    a negative, ties counting one half,

    .. math::
        \mathrm{AUC} = \frac{1}{|S^+| |S^-|} \sum_{p \in S^+}
        \sum_{n \in S^-} \left(1[p > n] + \tfrac{1}{2} 1[p = n]\right).

    * 1-D ``pos_scores`` :obj:`[P]` and ``neg_scores`` :obj:`[N]`: one AUC
      over all :math:`P \cdot N` pairs (Mann-Whitney U with mid-ranks).
    * ``pos_scores`` :obj:`[B]` and ``neg_scores`` :obj:`[B, N]`: one AUC per
      row (a positive against its own sampled negatives), averaged over
      rows. This is a *sampled* protocol; label it as such.

    Args:
        pos_scores (torch.Tensor): Scores of positive examples.
        neg_scores (torch.Tensor): Scores of negative examples.

    Returns:
        float: The AUC in :math:`[0, 1]`.
    """
    pos = pos_scores.detach().to(torch.float64)
    neg = neg_scores.detach().to(torch.float64)
    if pos.dim() == 1 and neg.dim() == 2 and neg.size(0) == pos.size(0):
        if neg.numel() == 0:
            raise ValueError('auc: need at least one row and one negative '
                             'per row')
        pos = pos.view(-1, 1)
        pair = (pos > neg).to(torch.float64) + 0.5 * (pos == neg)
        return float(pair.mean(1).mean())
    if pos.dim() != 1 or neg.dim() != 1:
        raise ValueError(f'auc: expected pos [P] with neg [N], or pos [B] '
                         f'with neg [B, N]; got {tuple(pos.shape)} and '
                         f'{tuple(neg.shape)}')
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError('auc: need at least one positive and one negative '
                         'score')
    both = torch.cat([pos, neg])
    _, inverse, counts = torch.unique(both, sorted=True, return_inverse=True,
                                      return_counts=True)
    # Mid-rank (1-based) of every distinct value, shared by its ties.
    end = counts.cumsum(0).to(torch.float64)
    mid = end - (counts.to(torch.float64) - 1.0) / 2.0
    rank_sum = float(mid[inverse[:pos.numel()]].sum())
    n_pos, n_neg = pos.numel(), neg.numel()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def f1_at_half(logits: Tensor, labels: Tensor) -> float:
    r"""F1 of the predictions :math:`\sigma(\text{logit}) \ge 0.5` against
    binary labels, :math:`2\,TP / (2\,TP + FP + FN)` (0 when there is no
    positive on either side)."""
    pred = logits.detach().reshape(-1) >= 0
    true = labels.detach().reshape(-1) > 0.5
    tp = int((pred & true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def click_through_metrics(logits: Tensor, labels: Tensor,
                          batch_size: int | None = None
                          ) -> dict[str, float]:
    """AUC and F1 (:func:`auc`, :func:`f1_at_half`) of click logits
    against 0/1 labels over all rows (``auc``, ``f1``) and, with
    ``batch_size``, also as KGCN's reference code reports them
    (``auc_batches``, ``f1_batches``): the mean over consecutive
    mini-batches of ``batch_size`` rows in the given order, the last
    partial batch dropped (a batch with one class only is skipped; the
    reference's scikit-learn call would fail on it)."""
    logits = logits.detach().reshape(-1).to(torch.float64)
    y = labels.detach().reshape(-1) > 0.5
    if logits.numel() != y.numel() or not bool(y.any()) or bool(y.all()):
        raise ValueError(f'click_through_metrics: need one label per logit '
                         f'and both classes, got {logits.numel()} logits, '
                         f'{y.numel()} labels ({int(y.sum())} positive)')
    out = {'auc': auc(logits[y], logits[~y]), 'f1': f1_at_half(logits, y)}
    if batch_size:
        aucs, f1s = [], []
        for i in range(0, logits.numel() - batch_size + 1, batch_size):
            lb, yb = logits[i:i + batch_size], y[i:i + batch_size]
            if bool(yb.any()) and not bool(yb.all()):
                aucs.append(auc(lb[yb], lb[~yb]))
                f1s.append(f1_at_half(lb, yb))
        if aucs:
            out['auc_batches'] = sum(aucs) / len(aucs)
            out['f1_batches'] = sum(f1s) / len(f1s)
    return out


def link_hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int) -> float:
    r"""Hits@K of link prediction against one shared pool of negatives,
    the Open Graph Benchmark protocol (``ogbl-ddi``, ``ogbl-collab``): the
    fraction of positive edges that score strictly above the
    :math:`K`-th best negative,

    .. math::
        \mathrm{Hits@}K = \frac{1}{|S^+|} \sum_{p \in S^+}
        1\big[p > s^-_{(K)}\big],

    with :math:`s^-_{(K)}` the :math:`K`-th largest negative score; 1.0
    when there are fewer than :math:`K` negatives (as OGB's
    ``Evaluator``).  A sampled-negative protocol; label it as such.

    Args:
        pos_scores (torch.Tensor): ``[P]`` scores of positive edges.
        neg_scores (torch.Tensor): ``[N]`` scores of negative edges.
        k (int): The cut-off :math:`K`.

    Returns:
        float: Hits@K in :math:`[0, 1]`.
    """
    pos = pos_scores.detach().reshape(-1)
    neg = neg_scores.detach().reshape(-1)
    if k < 1:
        raise ValueError(f'link_hits_at_k: k must be >= 1, got {k}')
    if pos.numel() == 0:
        raise ValueError('link_hits_at_k: need at least one positive score')
    if neg.numel() < k:
        return 1.0
    kth = torch.topk(neg, k).values[-1]
    return float((pos > kth).sum()) / pos.numel()


def sampled_rank_metrics(pos_scores: Tensor, neg_scores: Tensor,
                         ks: Sequence[int] = (10, 20)) -> dict[str, Tensor]:
    r"""Per-example HitRate / NDCG / MRR @ K of one target against its own
    sampled negatives, the sampled protocol of SASRec (Kang & McAuley,
    ICDM 2018: the target ranked among 100 random items).  With
    :math:`r` the number of negatives scoring at least the target
    (ties count against it),

    .. math::
        \mathrm{hit@}K = 1[r < K], \quad
        \mathrm{ndcg@}K = \frac{1[r < K]}{\log_2(r + 2)}, \quad
        \mathrm{mrr@}K = \frac{1[r < K]}{r + 1}.

    Sampled metrics overstate full-ranking quality and do not order models
    consistently with it (Krichene & Rendle, KDD 2020); report them only
    next to a paper that used them, and label them.

    Args:
        pos_scores: ``[B]`` target scores.
        neg_scores: ``[B, N]`` scores of each example's negatives.
        ks: Cut-offs.

    Returns:
        ``{'hit@K': [B], 'ndcg@K': [B], 'mrr@K': [B]}`` (float64).
    """
    if neg_scores.dim() != 2 or pos_scores.shape != neg_scores.shape[:1]:
        raise ValueError(f'sampled_rank_metrics: expected pos [B] and neg '
                         f'[B, N], got {list(pos_scores.shape)} and '
                         f'{list(neg_scores.shape)}')
    rank = (neg_scores >= pos_scores.unsqueeze(1)).sum(1).to(torch.float64)
    out: dict[str, Tensor] = {}
    for k in ks:
        hit = (rank < k).to(torch.float64)
        out[f'hit@{k}'] = hit
        out[f'ndcg@{k}'] = hit / torch.log2(rank + 2)
        out[f'mrr@{k}'] = hit / (rank + 1)
    return out
