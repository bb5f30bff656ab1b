r"""TransE for knowledge-graph completion."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.loss import l2_reg, margin_loss, sampled_softmax_loss
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.ops import device as ops_device

LOSSES = ('ce', 'margin')


class TransE(torch.nn.Module):
    r"""TransE from Bordes et al., `"Translating Embeddings for Modeling
    Multi-relational Data"
    <https://proceedings.neurips.cc/paper/2013/hash/1cecc7a77928ca8133fa24680a88d2f9-Abstract.html>`_
    (NeurIPS 2013): a relation translates its head onto its tail,

    .. math::
        s(h, r, t) = -\lVert \mathbf{e}_h + \mathbf{r}_r - \mathbf{e}_t
        \rVert_p ,

    with :math:`\mathbf{e}` the entity and :math:`\mathbf{r}` the relation
    embeddings (:math:`d` each) and :math:`p \in \{1, 2\}`.

    Training: each triple of a batch is corrupted on both sides; its tail
    (and head) is ranked against negative tails (heads) drawn uniformly
    over all entities by :class:`~pyg_recsys.data.loader.TripleLoader`,
    per triple (``[B, N]``) or shared by the batch (``[N]``, scored for
    every triple by one distance matrix), or, without drawn negatives,
    against the other triples' tails (heads) of the batch (in-batch).
    Shared and in-batch candidates equal to the true entity are left
    out.  Objectives:
    ``'ce'``, the softmax cross-entropy of the true entity against the
    negatives (the sampled "KL" form of LibKGE's TransE configurations),
    or ``'margin'``, the margin ranking loss of the paper, :math:`\max(0,
    \gamma - s^+ + s^-)` per negative.  ``reciprocal=True`` learns a
    second vector per relation for the inverse direction (Lacroix et al.,
    ICML 2018): heads of :math:`(?, r, t)` are then predicted as the tails
    of :math:`(t, r^{-1}, ?)`, with :math:`2|R|` relation vectors.

    Same operator as :class:`torch_geometric.nn.kge.TransE` (tested equal
    on the same weights with ``normalize=True``), written here because
    PyG's module trains through its own loader and global random state,
    samples one negative per triple, and scores one triple at a time: this
    one ranks every entity for a batch of queries at once
    (:meth:`score_tails`, :meth:`score_heads`), which the filtered
    evaluation (:class:`~pyg_recsys.train.KGEvaluator`) needs.

    Args:
        num_entities: Number of entities.
        num_relations: Number of relations (without inverses).
        embedding_dim: :math:`d`.
        p_norm: The distance's norm :math:`p`.
        loss: ``'ce'`` or ``'margin'``.
        margin: :math:`\gamma` of the margin loss.
        reciprocal: Learn inverse relations for head prediction.
        normalize: Project entity embeddings onto the unit :math:`p`-sphere
            before scoring (the paper's constraint; PyG does the same).
        reg_weight: L2 weight on the batch's embeddings
            (:func:`~pyg_recsys.loss.l2_reg`).
        dropout: Dropout on every entity embedding looked up in training
            (heads, tails and negatives; LibKGE's entity-embedder
            dropout), none in evaluation.
    """

    def __init__(self, num_entities: int, num_relations: int,
                 embedding_dim: int = 64, p_norm: float = 1.0,
                 loss: str = 'ce', margin: float = 1.0,
                 reciprocal: bool = False, normalize: bool = False,
                 reg_weight: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        if num_entities <= 0 or num_relations <= 0:
            raise ValueError(f'TransE: needs entities and relations, got '
                             f'{num_entities} and {num_relations}')
        if p_norm not in (1, 2):
            raise ValueError(f'TransE: p_norm must be 1 or 2, got {p_norm}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'TransE: dropout must lie in [0, 1), got '
                             f'{dropout}')
        if loss not in LOSSES:
            raise ValueError(f'TransE: loss must be one of {LOSSES}, got '
                             f'{loss!r}')
        self.num_entities = num_entities
        self.num_relations = num_relations
        self.embedding_dim = embedding_dim
        self.p_norm = float(p_norm)
        self.loss_kind = loss
        self.margin = margin
        self.reciprocal = reciprocal
        self.normalize = normalize
        self.reg_weight = reg_weight
        self.dropout = dropout
        self.entity = Embedding(num_entities, embedding_dim)
        self.relation = Embedding(num_relations * (2 if reciprocal else 1),
                                  embedding_dim)
        self._rank_cache: tuple[tuple, Tensor] | None = None
        self.reset_parameters()

    def train(self, mode: bool = True) -> TransE:
        """Sets the mode (``eval()`` calls it too) and drops the ranking
        table of :meth:`ranking_tails`."""
        self._rank_cache = None
        return super().train(mode)

    def reset_parameters(self) -> None:
        """The paper's initialisation: uniform in :math:`\\pm 6 /
        \\sqrt{d}`, relation vectors normalised to unit :math:`p`-norm."""
        bound = 6.0 / math.sqrt(self.embedding_dim)
        torch.nn.init.uniform_(self.entity.weight, -bound, bound)
        torch.nn.init.uniform_(self.relation.weight, -bound, bound)
        with torch.no_grad():
            self.relation.weight.copy_(F.normalize(
                self.relation.weight, p=self.p_norm, dim=-1))

    # -- scoring ---------------------------------------------------------

    def _entities(self, index: Tensor | None = None) -> Tensor:
        e = self.entity.weight if index is None else self.entity(index)
        if self.normalize:
            e = F.normalize(e, p=self.p_norm, dim=-1)
        if self.dropout > 0 and self.training:
            e = F.dropout(e, self.dropout, training=True)
        return e

    def _check_relation(self, relation: Tensor, where: str) -> None:
        # not on the device path: a bound check reads a value back (there
        # an index out of range fails in the lookup instead)
        if not ops_device.sync_free(relation.device) and \
                relation.numel() and (
                int(relation.min()) < 0
                or int(relation.max()) >= self.num_relations):
            raise ValueError(
                f'TransE.{where}: relation ids must lie in [0, '
                f'{self.num_relations}), got {int(relation.min())} .. '
                f'{int(relation.max())}')

    def _distance(self, query: Tensor, other: Tensor) -> Tensor:
        """``-||query - other||_p`` over the last dimension (broadcast)."""
        return -(query - other).norm(p=self.p_norm, dim=-1)

    def _all(self, query: Tensor) -> Tensor:
        r"""``[B, E]``: ``-||query_b - e||_p`` for every entity ``e``; for
        :math:`p = 2` as :math:`\lVert q \rVert^2 + \lVert e \rVert^2 -
        2 q^\top e` (one matrix product, then in-place steps)."""
        ent = self._entities()
        if self.p_norm != 2:
            return -torch.cdist(query.unsqueeze(0), ent.unsqueeze(0),
                                p=self.p_norm).squeeze(0)
        out = torch.addmm(ent.pow(2).sum(-1).unsqueeze(0), query, ent.t(),
                          alpha=-2.0)
        out.add_(query.pow(2).sum(-1, keepdim=True)).clamp_min_(0.0)
        return out.sqrt_().neg_()

    def _rank_table(self) -> Tensor:
        r"""``[E, d + 1]``: rows :math:`[2\mathbf{e}, -\lVert \mathbf{e}
        \rVert^2]`, so that ``[q, 1] @ table.T`` is :math:`\lVert q
        \rVert^2 - \lVert q - e \rVert^2` in one matrix product; kept
        in evaluation mode without gradients while the weights are
        unchanged (dropped by :meth:`train`/``eval()``)."""
        def table() -> Tensor:
            ent = self._entities()
            return torch.cat([2.0 * ent, -ent.pow(2).sum(-1, keepdim=True)],
                             dim=1)

        if self.training or torch.is_grad_enabled():
            return table()
        w = self.entity.weight
        key = (w._version, w.data_ptr(), w.dtype, w.device)
        if self._rank_cache is None or self._rank_cache[0] != key:
            self._rank_cache = (key, table())
        return self._rank_cache[1]

    def _ranking(self, query: Tensor) -> Tensor:
        if self.p_norm != 2:
            return self._all(query)
        ones = query.new_ones(query.size(0), 1)
        return torch.cat([query, ones], dim=1) @ self._rank_table().t()

    def ranking_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        r"""``[B, num_entities]`` in the order of :meth:`score_tails` per
        row, cheaper to compute: for :math:`p = 2`, :math:`\lVert q
        \rVert^2 - \lVert q - e \rVert^2` (:math:`q = e_h + r`), one
        matrix product, no square root (the filtered evaluation ranks
        with it, see :class:`~pyg_recsys.train.KGEvaluator`)."""
        self._check_relation(relation, 'ranking_tails')
        return self._ranking(self._entities(head) + self.relation(relation))

    def ranking_heads(self, relation: Tensor, tail: Tensor) -> Tensor:
        """``[B, num_entities]`` in the order of :meth:`score_heads` per
        row (see :meth:`ranking_tails`)."""
        self._check_relation(relation, 'ranking_heads')
        if self.reciprocal:
            return self._ranking(self._entities(tail) + self.relation(
                relation + self.num_relations))
        return self._ranking(self._entities(tail) - self.relation(relation))

    def score_triples(self, head: Tensor, relation: Tensor,
                      tail: Tensor) -> Tensor:
        """:math:`s(h, r, t)` of each triple, ``[B]``."""
        self._check_relation(relation, 'score_triples')
        return self._distance(self._entities(head) + self.relation(relation),
                              self._entities(tail))

    def score_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        """``[B, num_entities]``: :math:`s(h, r, t)` of every entity
        :math:`t`."""
        self._check_relation(relation, 'score_tails')
        return self._all(self._entities(head) + self.relation(relation))

    def score_heads(self, relation: Tensor, tail: Tensor) -> Tensor:
        """``[B, num_entities]``: :math:`s(h, r, t)` of every entity
        :math:`h` (with ``reciprocal``, :math:`s(t, r^{-1}, h)`)."""
        self._check_relation(relation, 'score_heads')
        if self.reciprocal:
            return self._all(self._entities(tail) + self.relation(
                relation + self.num_relations))
        # -||h + r - t|| = -||h - (t - r)||
        return self._all(self._entities(tail) - self.relation(relation))

    # -- training --------------------------------------------------------

    def _side_loss(self, query: Tensor, true: Tensor, cand: Tensor,
                   mask: Tensor | None) -> Tensor:
        """Loss of ranking ``true`` ``[B, d]`` against the candidates
        ``cand`` (``[B, N, d]`` per row, or ``[N, d]`` shared) for the
        queries ``[B, d]``; ``mask`` drops candidates."""
        pos = self._distance(query, true)
        if cand.dim() == 2:  # shared by the batch (in-batch negatives)
            neg = -torch.cdist(query.unsqueeze(0), cand.unsqueeze(0),
                               p=self.p_norm).squeeze(0)
        else:
            neg = self._distance(query.unsqueeze(1), cand)
        if self.loss_kind == 'margin':
            return margin_loss(pos, neg, self.margin, mask)
        if mask is not None:
            neg = neg.masked_fill(~mask, float('-inf'))
        return sampled_softmax_loss(pos, neg)

    def loss(self, batch: Any) -> Tensor:
        """The objective of a
        :class:`~pyg_recsys.data.loader.TripleBatch`: tails and heads of
        every triple ranked against the batch's negatives (mean of both
        sides), plus the L2 term."""
        head, rel, tail = batch.head, batch.relation, batch.tail
        self._check_relation(rel, 'loss')
        e_h, e_t = self._entities(head), self._entities(tail)
        inbatch = batch.neg_head is None
        if inbatch:  # the batch's own entities, the true one left out
            neg_h, neg_t = head, tail
            cand_t, cand_h = e_t, e_h
        else:
            neg_h, neg_t = batch.neg_head, batch.neg_tail
            cand_t, cand_h = self._entities(neg_t), self._entities(neg_h)
        if neg_t.dim() == 1:  # shared by the batch: never the true entity
            mask_t = neg_t.view(1, -1) != tail.view(-1, 1)
            mask_h = neg_h.view(1, -1) != head.view(-1, 1)
        else:
            mask_t = mask_h = None
        r = self.relation(rel)
        tail_loss = self._side_loss(e_h + r, e_t, cand_t, mask_t)
        if self.reciprocal:
            r_inv = self.relation(rel + self.num_relations)
            head_loss = self._side_loss(e_t + r_inv, e_h, cand_h, mask_h)
        else:  # -||h' + r - t|| = -||h' - (t - r)||
            head_loss = self._side_loss(e_t - r, e_h, cand_h, mask_h)
        loss = 0.5 * (tail_loss + head_loss)
        if self.reg_weight > 0:
            rows = [e_h, e_t, r] if inbatch else [e_h, e_t, r, cand_t,
                                                  cand_h]  # (all rows used)
            loss = loss + self.reg_weight * l2_reg(
                *(x.reshape(-1, x.size(-1)) for x in rows),
                batch_size=head.numel())
        return loss

    def extra_repr(self) -> str:
        return (f'{self.num_entities}, num_relations={self.num_relations}, '
                f'embedding_dim={self.embedding_dim}, p_norm='
                f'{self.p_norm:g}, loss={self.loss_kind!r}'
                + (', reciprocal=True' if self.reciprocal else '')
                + (f', dropout={self.dropout:g}' if self.dropout else '')
                + (', normalize=True' if self.normalize else ''))


__all__ = ['TransE']
