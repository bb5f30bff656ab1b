r"""KGCN: knowledge graph convolutional networks for recommendation."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.nn.conv.kgcn_conv import AGGREGATORS, KGCNConv
from pyg_recsys.nn.embedding import Embedding, HeteroEmbedding
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.fanout import fixed_fanout
from pyg_recsys.ops.topk import masked_topk
from pyg_recsys.schema import ENTITY, ITEM, USER


class KGCN(torch.nn.Module):
    r"""KGCN from Wang et al., `"Knowledge Graph Convolutional Networks for
    Recommender Systems" <https://arxiv.org/abs/1904.12575>`_ (WWW 2019).

    An item's representation for a user is computed over its knowledge
    graph neighbourhood: :math:`H` layers of
    :class:`~pyg_recsys.nn.conv.KGCNConv` (user-specific relation
    attention) over a fixed receptive field of :math:`K` sampled
    neighbours per entity and hop, and the click logit is

    .. math::
        \hat{y}_{uv} = \mathbf{u}^\top \mathbf{v}^u[H].

    The knowledge graph is taken as undirected (both directions of a
    triple carry its relation), and the receptive field is sampled once,
    as the reference's ``construct_adj`` does (:func:`~pyg_recsys.ops.
    fanout.fixed_fanout`: without replacement where an entity has at least
    :math:`K` neighbours), or afresh every epoch with ``resample=True``
    (seeded by ``seed`` and the epoch, so a resumed run draws the same).

    Training: ``loss(batch)`` is the binary cross-entropy of the logits
    of a :class:`~pyg_recsys.data.loader.ClickBatch` (labelled rows, the
    click-through protocol) or of a
    :class:`~pyg_recsys.data.loader.PairBatch` (each positive labelled 1,
    its sampled negatives 0, as RecBole trains KGCN), plus the reference's
    L2 term: ``reg_weight`` times half the squared norm of *every*
    embedding table and layer weight (not just the batch's rows).

    Inference: ``predict(users, items)`` (click logits, the
    :class:`~pyg_recsys.nn.models.ClickThroughPredictor` surface) and
    ``score`` / ``recommend`` over all items (full ranking): the users of a
    chunk broadcast against every item's receptive field, and the
    user-relation scores come from one ``[users, relations]`` product, so
    no ``[users, items, K, d]`` tensor is built at the first layer.

    Args:
        num_users: Number of users.
        num_items: Number of items (entities ``0 .. num_items - 1`` of the
            graph).
        num_entities: Number of the other entities (``num_items + e``).
        triples: ``[3, T]`` (head, relation, tail) over that numbering
            (:func:`~pyg_recsys.data.kg.item_entity_triples`).
        num_relations: Number of relations.
        embedding_dim: :math:`d` (the reference's Last.FM setting: 16).
        num_layers: :math:`H` (1).
        num_neighbors: :math:`K` (8).
        aggregator: ``'sum'``, ``'concat'`` or ``'neighbor'``.
        reg_weight: L2 weight (1e-4).
        resample: Draw a new receptive field every epoch.
        seed: Seed of the receptive field.
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int,
                 triples: Tensor, num_relations: int,
                 embedding_dim: int = 16, num_layers: int = 1,
                 num_neighbors: int = 8, aggregator: str = 'sum',
                 reg_weight: float = 1e-4, resample: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        if num_layers < 1 or num_neighbors < 1:
            raise ValueError(f'KGCN: num_layers and num_neighbors must be '
                             f'>= 1, got {num_layers} and {num_neighbors}')
        if aggregator not in AGGREGATORS:
            raise ValueError(f'KGCN: aggregator must be one of '
                             f'{AGGREGATORS}, got {aggregator!r}')
        triples = torch.as_tensor(triples).long()
        n = num_items + num_entities
        if triples.dim() != 2 or triples.size(0) != 3 or \
                triples.size(1) == 0:
            raise ValueError(f'KGCN: triples must be a non-empty [3, T] '
                             f'tensor, got shape {list(triples.shape)}; '
                             f'a data set without a knowledge graph cannot '
                             f'train KGCN')
        h, r, t = triples
        if int(torch.minimum(h, t).min()) < 0 or \
                int(torch.maximum(h, t).max()) >= n:
            raise ValueError(f'KGCN: entity ids of the triples must lie in '
                             f'[0, {n}) (items, then entities)')
        if int(r.min()) < 0 or int(r.max()) >= num_relations:
            bad = int(r.min()) if int(r.min()) < 0 else int(r.max())
            raise ValueError(f'KGCN: a triple names relation {bad}, '
                             f'outside [0, {num_relations})')
        self.num_users, self.num_items = num_users, num_items
        self.num_entities, self.num_relations = num_entities, num_relations
        self.embedding_dim = embedding_dim
        self.num_layers, self.num_neighbors = num_layers, num_neighbors
        self.reg_weight = reg_weight
        self.resample, self.seed = resample, seed
        self._epoch_drawn: int | None = None
        counts = {USER: num_users, ITEM: num_items}
        if num_entities:
            counts[ENTITY] = num_entities
        self.embedding = HeteroEmbedding(counts, embedding_dim)
        self.relation = Embedding(num_relations, embedding_dim)
        self.convs = torch.nn.ModuleList([
            KGCNConv(embedding_dim, aggregator,
                     act=torch.tanh if i == num_layers - 1 else torch.relu)
            for i in range(num_layers)])
        # the undirected graph: both directions of every triple
        src, dst = torch.cat([h, t]), torch.cat([t, h])
        rel = torch.cat([r, r])
        order = torch.argsort(src * n + dst, stable=True)
        src, dst, rel = src[order], dst[order], rel[order]
        rowptr = torch.zeros(n + 1, dtype=torch.long)
        rowptr[1:] = torch.bincount(src, minlength=n).cumsum(0)
        self.register_buffer('kg_rowptr', rowptr, persistent=False)
        self.register_buffer('kg_col', dst, persistent=False)
        self.register_buffer('kg_rel', rel, persistent=False)
        self.register_buffer('adj_entity', torch.empty(
            n, num_neighbors, dtype=torch.long))
        self.register_buffer('adj_relation', torch.empty(
            n, num_neighbors, dtype=torch.long))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform tables (the reference's initialiser), fresh
        layers, and the receptive field of ``seed``."""
        for t in self.embedding.node_types:
            torch.nn.init.xavier_uniform_(self.embedding.table(t))
        torch.nn.init.xavier_uniform_(self.relation.weight)
        for conv in self.convs:
            conv.reset_parameters()
        self.sample_neighbors(0)

    def sample_neighbors(self, epoch: int = 0) -> None:
        """Draws the receptive field (``adj_entity``, ``adj_relation``)
        from ``(seed, epoch)``."""
        device = self.kg_rowptr.device
        gen = torch.Generator(device=device).manual_seed(
            self.seed * 1_000_003 + epoch)
        nbr, edge = fixed_fanout(self.kg_rowptr, self.kg_col,
                                 self.num_neighbors, gen)
        rel = self.kg_rel[edge.clamp(min=0)]
        rel[edge < 0] = 0  # (an entity in no triple: itself, relation 0)
        self.adj_entity.copy_(nbr)
        self.adj_relation.copy_(rel)
        self._epoch_drawn = epoch

    def set_epoch(self, epoch: int) -> None:
        """With ``resample``, draws the receptive field of ``epoch``
        (called by the :class:`~pyg_recsys.train.Trainer`)."""
        if self.resample and epoch != self._epoch_drawn:
            self.sample_neighbors(epoch)

    # -- the receptive field and its aggregation -------------------------

    def _entity(self, index: Tensor) -> Tensor:
        """Embeddings of graph entities (items, then entities)."""
        return self.embedding(index + self.embedding.offsets[ITEM])

    def _field(self, items: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Entity and relation ids per hop: ``[n, K^h]`` and
        ``[n, K^(h+1)]``."""
        entities = [items.view(-1, 1)]
        relations = []
        for _ in range(self.num_layers):
            last = entities[-1]
            entities.append(self.adj_entity[last].view(last.size(0), -1))
            relations.append(self.adj_relation[last].view(last.size(0),
                                                          -1))
        return entities, relations

    def _shared(self, items: Tensor) -> list[Any]:
        """The user-independent part of ranking ``items`` for many users:
        the receptive field and, per hop, the first layer's
        :meth:`~pyg_recsys.nn.conv.KGCNConv.shared_tables`."""
        K, d = self.num_neighbors, self.embedding_dim
        entities, relations = self._field(items)
        vecs = [self._entity(e) for e in entities]
        tables = [self.convs[0].shared_tables(
            vecs[hop].reshape(-1, d), vecs[hop + 1].reshape(-1, K, d),
            relations[hop].reshape(-1, K), self.num_relations)
            for hop in range(self.num_layers)]
        return [entities, relations, vecs, tables]

    def _represent(self, user: Tensor, items: Tensor, paired: bool,
                   shared: list[Any] | None = None) -> Tensor:
        """Item representations ``v^u[H]``.

        ``paired``: ``user`` ``[n, d]`` goes with ``items`` ``[n]``
        (result ``[n, d]``); else every user of ``[U, d]`` with every item
        (``[U, n, d]``; ``shared``: :meth:`_shared` of the items)."""
        K, d = self.num_neighbors, self.embedding_dim
        if paired:
            entities, relations = self._field(items)
            vecs = [self._entity(e) for e in entities]  # [n, K^h, d]
        else:
            entities, relations, vecs, tables = shared or self._shared(
                items)
        # pi(u, r) of every relation: one [users, R] product
        ur = user @ self.relation.weight.t() / d
        for i, conv in enumerate(self.convs):
            nxt = []
            for hop in range(self.num_layers - i):
                rel = relations[hop].view(-1, K ** hop, K)  # [n, K^h, K]
                x_self = vecs[hop]
                x_nb = vecs[hop + 1]
                x_nb = x_nb.view(*x_nb.shape[:-2], K ** hop, K, d)
                if not paired and i == 0:
                    # items shared by the users: regrouped by relation
                    out = conv.forward_shared(tables[hop], ur)
                    nxt.append(out.view(ur.size(0), rel.size(0), K ** hop,
                                        -1))
                    continue
                if paired:
                    rows = torch.arange(rel.size(0), device=rel.device)
                    scores = ur[rows.view(-1, 1, 1), rel]
                else:
                    scores = ur[:, rel]  # [U, n, K^h, K]
                nxt.append(conv.forward_dense(x_self, x_nb, scores))
            vecs = nxt
        return vecs[0].squeeze(-2)

    # -- the task surface ------------------------------------------------

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Click logits :math:`\\hat{y}_{uv}` of (user, item) pairs,
        ``[B]``."""
        u = self.embedding(users.view(-1), USER)
        v = self._represent(u, items.view(-1), paired=True)
        return (u * v).sum(-1)

    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """``[B, num_items]`` logits of every item (``items=None``), of
        ``[n]`` items shared by the rows, or of ``[B, n]`` items per
        row."""
        users = users.view(-1)
        if items is not None and items.dim() == 2:
            return self.predict(
                users.view(-1, 1).expand_as(items).reshape(-1),
                items.reshape(-1)).view(items.shape)
        if items is None:
            items = torch.arange(self.num_items, device=users.device)
        u = self.embedding(users, USER)
        # users in sub-chunks: the [users, items, d] representations are
        # d times larger than the scores
        step = max(1, (1 << 24) // max(items.numel() * self.embedding_dim,
                                       1))
        shared = self._shared(items)
        ur = u @ self.relation.weight.t() / self.embedding_dim
        out = []
        for s in range(0, users.numel(), step):
            us = u[s:s + step]
            if self.num_layers == 1:  # the layer scores the items itself
                out.append(self.convs[0].shared_scores(
                    shared[3][0], ur[s:s + step], us))
                continue
            v = self._represent(us, items, False, shared)  # [b, n, d]
            out.append(torch.bmm(v, us.unsqueeze(-1)).squeeze(-1))
        return torch.cat(out) if out else u.new_zeros(0, items.numel())

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None
                  ) -> tuple[Tensor, Tensor]:
        """The ``k`` best items of each user, never one of ``exclude``."""
        return masked_topk(self.score(users), k, users, exclude)

    def loss(self, batch: Any) -> Tensor:
        """Binary cross-entropy of a click batch or a pair batch, plus the
        L2 term."""
        if hasattr(batch, 'label'):  # labelled rows
            logits = self.predict(batch.user, batch.item)
            loss = F.binary_cross_entropy_with_logits(logits, batch.label)
        else:  # positives 1, their sampled negatives 0: one mean over
            # all of them, as over labelled rows (and as RecBole's KGCN)
            neg = batch.neg.view(batch.user.numel(), -1)
            users = batch.user.view(-1, 1).expand_as(neg)
            pos = self.predict(batch.user, batch.pos)
            negl = self.predict(users.reshape(-1), neg.reshape(-1))
            logits = torch.cat([pos, negl])
            labels = torch.cat([torch.ones_like(pos),
                                torch.zeros_like(negl)])
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        if self.reg_weight > 0:
            l2 = self.embedding.weight.pow(2).sum() + \
                self.relation.weight.pow(2).sum()
            for conv in self.convs:
                l2 = l2 + conv.lin.weight.pow(2).sum()
            loss = loss + self.reg_weight * 0.5 * l2
        return loss

    def extra_repr(self) -> str:
        return (f'users={self.num_users}, items={self.num_items}, '
                f'entities={self.num_entities}, '
                f'relations={self.num_relations}, '
                f'dim={self.embedding_dim}, layers={self.num_layers}, '
                f'neighbors={self.num_neighbors}'
                + (', resample=True' if self.resample else ''))


__all__ = ['KGCN']
