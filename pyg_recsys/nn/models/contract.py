r"""The recommender contract: what the training loop, the evaluators and
the command line rely on, declared once per task.

A recommender is a :class:`torch.nn.Module` whose training objective is
``loss(batch)``; the rest of its surface depends on its task.  The same
name means the same thing in every family:

* ``score(query, items=None)``: scores of candidate items for each row of
  a query, higher is better.  The query is a ``[B]`` tensor of user ids
  (pairwise ranking) or a batch of sessions (next-item); ``items`` is
  ``None`` (all items, ``[B, num_items]``), ``[n]`` item ids shared by the
  rows (``[B, n]``) or ``[B, n]`` item ids per row (``[B, n]``).
* ``recommend(query, k, exclude=None)``: the ``k`` best items of each row,
  ``(scores, items)`` both ``[B, k]``, never an item of ``exclude`` (a
  :class:`~pyg_recsys.ops.csr.CSR` of items per row; for sessions also
  ``'session'``, the items of the session itself).
* ``item_scores(items)``: scores of all items for each query *item*
  of ``items`` ``[n]``, ``[n, num_items]`` (item-to-item ranking).
* ``predict(users, items)``: one value per (user, item) pair, ``[B]``: a
  rating (rating prediction) or a click logit (click-through).
* ``score_triples(head, relation, tail)`` / ``score_heads`` /
  ``score_tails``: plausibility of knowledge-graph triples, of every entity
  as the head or the tail of ``(?, relation, tail)`` / ``(head,
  relation, ?)``.  Optional ``ranking_heads`` / ``ranking_tails``: the
  same order per row in a cheaper form (TransE without the square root),
  which :class:`~pyg_recsys.train.KGEvaluator` ranks with when present.

:class:`Recommender` is what the training loop needs; the task protocols
are what the evaluators need (a trained model has both; the most-popular
baseline, which needs no training, only its task's).  They are
``runtime_checkable``: :class:`~pyg_recsys.train.Trainer` and the
evaluators check a model against theirs and say which method is missing,
instead of failing deep inside.  They describe methods only, so a model
from elsewhere that has the surface fits without subclassing anything
here.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from pyg_recsys.ops.csr import CSR


@runtime_checkable
class Recommender(Protocol):
    """Anything the one training loop can train: a module with a training
    objective ``loss(batch) -> scalar``."""

    def loss(self, batch: Any) -> Tensor:
        """The training objective of one batch (a scalar)."""
        ...


@runtime_checkable
class MultiObjective(Protocol):
    """A model whose epoch alternates objectives over several loaders
    (KGAT: BPR over interactions, then a knowledge-graph embedding loss
    over triples).  :attr:`objectives` names them in the order of the
    epoch; ``loss(batch, objective)`` is the objective of one batch of the
    loader of that name (see :class:`~pyg_recsys.train.Trainer`)."""

    objectives: tuple[str, ...]

    def loss(self, batch: Any, objective: str) -> Tensor:
        ...


@runtime_checkable
class PairwiseRanker(Protocol):
    """Ranks items for users (MF, LightGCN, NGCF, SimGCL, GraphSAGE, GAT,
    most popular): full-ranking top-K evaluation
    (:class:`~pyg_recsys.train.RankingEvaluator`)."""

    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        ...

    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None
                  ) -> tuple[Tensor, Tensor]:
        ...


@runtime_checkable
class ItemToItemRanker(Protocol):
    """Ranks items for a query item (MF, LightGCN, NGCF, ItemKNN, most
    popular): ``item_scores(items)`` scores every item for each query item
    of ``items`` ``[n]``, ``[n, num_items]``, higher is better; the
    item-to-item protocol of PinSage
    (:class:`~pyg_recsys.train.ItemToItemEvaluator`)."""

    def item_scores(self, items: Tensor) -> Tensor:
        ...


@runtime_checkable
class NextItemRecommender(Protocol):
    """Scores the next item of sessions (SR-GNN, TAGNN, GRU4Rec, SASRec):
    :class:`~pyg_recsys.train.NextItemEvaluator`."""

    def score(self, sessions: Any, items: Tensor | None = None) -> Tensor:
        ...

    def recommend(self, sessions: Any, k: int,
                  exclude: CSR | str | None = None) -> tuple[Tensor, Tensor]:
        ...


@runtime_checkable
class RatingPredictor(Protocol):
    """Predicts explicit ratings (GraphRec, biased MF):
    :class:`~pyg_recsys.train.RatingEvaluator` (MAE, RMSE)."""

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        ...


@runtime_checkable
class ClickThroughPredictor(Protocol):
    """Predicts whether a user clicks an item (KGCN's protocol): AUC / F1
    over labelled (user, item) rows; ``predict`` returns logits."""

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        ...


@runtime_checkable
class TripleScorer(Protocol):
    """Scores knowledge-graph triples (TransE, TwHIN): filtered
    link-prediction ranking of heads and tails."""

    def score_triples(self, head: Tensor, relation: Tensor,
                      tail: Tensor) -> Tensor:
        ...

    def score_heads(self, relation: Tensor, tail: Tensor) -> Tensor:
        ...

    def score_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        ...


def check_contract(model: Any, protocol: type, where: str) -> None:
    """Raises :class:`TypeError` naming the methods of ``protocol`` that
    ``model`` lacks (``where`` names the caller)."""
    if isinstance(model, protocol):
        return
    needed: list[str] = []
    for cls in protocol.__mro__:
        if cls in (Protocol, object) or not getattr(cls, '_is_protocol',
                                                    False):
            continue
        names = list(vars(cls)) + list(getattr(cls, '__annotations__', {}))
        needed += [n for n in names
                   if not n.startswith('_') and n not in needed]
    missing = [name for name in needed if not hasattr(model, name)]
    raise TypeError(f'{where}: {type(model).__name__} is not a '
                    f'{protocol.__name__} (it lacks {missing}); see '
                    f'pyg_recsys.nn.models.contract')


__all__ = ['Recommender', 'MultiObjective', 'PairwiseRanker',
           'ItemToItemRanker', 'NextItemRecommender', 'RatingPredictor',
           'ClickThroughPredictor', 'TripleScorer', 'check_contract']
