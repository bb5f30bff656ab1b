r"""TwHIN: translation embeddings over a heterogeneous information
network."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.data.loader import TripleLoader
from pyg_recsys.nn.embedding import Embedding, HeteroEmbedding
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import chunked_topk
from pyg_recsys.schema import ITEM, REV, USER, USER_ITEM


class TwHIN(torch.nn.Module):
    r"""TwHIN from El-Kishky et al., `"TwHIN: Embedding the Twitter
    Heterogeneous Information Network for Personalized Recommendation"
    <https://arxiv.org/abs/2202.05387>`_ (KDD 2022).

    One embedding table per node type (users, items, entities, ...;
    :class:`~pyg_recsys.nn.embedding.HeteroEmbedding`) and one translation
    vector per relation (edge type of the graph; reverse types are left
    out), scored as

    .. math::
        s(h, r, t) = \mathbf{e}_h^\top (\mathbf{e}_t + \mathbf{r}_r),

    trained on every relation of a :class:`~torch_geometric.data.
    HeteroData` at once: each triple's tail is ranked by softmax
    cross-entropy against the tails of the other triples *of the same
    relation* in the batch (in-batch negatives per relation; a candidate
    equal to the true tail is left out).  As a recommender it scores a
    user's items through the interaction relation, :math:`s(u, r_{ui},
    i)`; its tables can initialise another model's
    (:meth:`node_embeddings`).

    The public reference code (``twitter/the-algorithm-ml``,
    ``projects/twhin/models/models.py``), as read: the in-batch negatives'
    logits get label 1, like the positives, in its binary cross-entropy;
    and the relation vectors are read through ``.data``, so they receive
    no gradient and keep their random initial values.  Here the
    negatives are the denominator of a softmax (label 0 in effect) and
    the relation vectors are trained, as the paper's objective has them.

    Args:
        graph: The typed training graph (e.g. :meth:`~pyg_recsys.data.
            split.Split.graph`); every forward edge type is a relation.
        embedding_dim: :math:`d`.
        num_users: Users (checked against the graph; default: the
            graph's).
        num_items: Items (likewise).
    """

    def __init__(self, graph: HeteroData, embedding_dim: int = 64,
                 num_users: int | None = None,
                 num_items: int | None = None) -> None:
        super().__init__()
        if not isinstance(graph, HeteroData):
            raise TypeError(f'TwHIN: graph must be a HeteroData (the typed '
                            f'training graph), got {type(graph).__name__}')
        counts = {t: int(graph[t].num_nodes) for t in graph.node_types}
        for t, n in ((USER, num_users), (ITEM, num_items)):
            if n is not None and counts.get(t) != n:
                raise ValueError(f'TwHIN: the graph has {counts.get(t)} '
                                 f'{t} nodes but {n} were given; build '
                                 f'both from the same split')
        order = [t for t in (USER, ITEM) if t in counts] + [
            t for t in counts if t not in (USER, ITEM)]
        self.embedding = HeteroEmbedding({t: counts[t] for t in order},
                                         embedding_dim)
        self.embedding_dim = embedding_dim
        self.relations = [e for e in graph.edge_types
                          if not e[1].startswith(REV)
                          and graph[e].edge_index.numel()]
        if not self.relations:
            raise ValueError('TwHIN: the graph has no edges to train on')
        self.relation = Embedding(len(self.relations), embedding_dim)
        parts = []
        off = self.embedding.offsets
        for r, (src, _, dst) in enumerate(self.relations):
            ei = graph[src, _, dst].edge_index
            parts.append(torch.stack([ei[0] + off[src],
                                      torch.full_like(ei[0], r),
                                      ei[1] + off[dst]]))
        self.register_buffer('triples_', torch.cat(parts, 1),
                             persistent=False)
        self.num_users = counts.get(USER, 0)
        self.num_items = counts.get(ITEM, 0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Tables and relation vectors from :math:`\\mathcal{N}(0,
        0.1^2)`."""
        torch.nn.init.normal_(self.embedding.weight, std=0.1)
        torch.nn.init.normal_(self.relation.weight, std=0.1)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def triples(self) -> Tensor:
        """``[3, T]`` (head, relation, tail) of every relation, global node
        ids (:attr:`embedding`'s offsets)."""
        return self.triples_

    def triple_loader(self, batch_size: int = 4096, seed: int = 0
                      ) -> TripleLoader:
        """Shuffled triples of every relation, in-batch negatives."""
        return TripleLoader(self.triples_, self.embedding.weight.size(0),
                            batch_size=batch_size, num_neg=0, seed=seed,
                            device=self.triples_.device)

    def score_triples(self, head: Tensor, relation: Tensor,
                      tail: Tensor) -> Tensor:
        """:math:`s(h, r, t)` of global node ids, ``[B]``."""
        e_h, e_t = self.embedding(head), self.embedding(tail)
        return (e_h * (e_t + self.relation(relation))).sum(-1)

    def loss(self, batch: Any) -> Tensor:
        """Softmax cross-entropy of each triple's tail against the batch's
        tails of the same relation (a
        :class:`~pyg_recsys.data.loader.TripleBatch`)."""
        h, r, t = batch.head, batch.relation, batch.tail
        e_h, e_t = self.embedding(h), self.embedding(t)
        # s(h_i, r_i, t_j) = e_hi . e_tj + e_hi . r_i
        logits = e_h @ e_t.t() + (e_h * self.relation(r)).sum(
            -1, keepdim=True)
        same = r.view(-1, 1) == r.view(1, -1)
        other = t.view(-1, 1) != t.view(1, -1)
        keep = same & other
        keep.fill_diagonal_(True)
        logits = logits.masked_fill(~keep, float('-inf'))
        target = torch.arange(h.numel(), device=h.device)
        return F.cross_entropy(logits, target)

    # -- recommendation --------------------------------------------------

    def _interaction(self) -> int:
        if USER_ITEM not in self.relations:
            raise ValueError('TwHIN: the graph has no user-item '
                             'interactions to recommend through')
        return self.relations.index(USER_ITEM)

    def node_embeddings(self) -> dict[str, Tensor]:
        """The trained table of every node type (detached), e.g. to
        initialise another model's tables."""
        return {t: self.embedding[t].detach()
                for t in self.embedding.node_types}

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """:math:`s(u, r_{ui}, i)` of items for users: all items
        (``items=None``), ``[n]`` shared, or ``[B, n]`` per row."""
        r = self.relation.weight[self._interaction()]
        u = self.embedding[USER][users.view(-1)]
        item = self.embedding[ITEM] + r
        if items is None:
            return u @ item.t()
        if items.dim() == 1:
            return u @ item[items].t()
        return (u.unsqueeze(1) * item[items]).sum(-1)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None
                  ) -> tuple[Tensor, Tensor]:
        """Top-``k`` items per user, never one of ``exclude``."""
        r = self.relation.weight[self._interaction()]
        u_all = self.embedding[USER]
        item_t = (self.embedding[ITEM] + r).t()
        return chunked_topk(lambda c: u_all[c] @ item_t, users, k, exclude)

    def extra_repr(self) -> str:
        return (f'{self.embedding.num_nodes}, '
                f'relations={self.num_relations}, '
                f'embedding_dim={self.embedding_dim}')


__all__ = ['TwHIN']
