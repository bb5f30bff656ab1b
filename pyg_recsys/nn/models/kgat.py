r"""KGAT: knowledge graph attention network for recommendation."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.data.kg import collaborative_kg
from pyg_recsys.data.loader import TripleLoader
from pyg_recsys.loss import l2_reg
from pyg_recsys.nn.conv.kgat_conv import KGATConv, kgat_attention
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.nn.models.base import EmbeddingRecommender, _typed_graph
from pyg_recsys.ops import device as ops_device
from pyg_recsys.schema import ITEM, USER


class KGAT(EmbeddingRecommender):
    r"""KGAT from Wang et al., `"KGAT: Knowledge Graph Attention Network
    for Recommendation" <https://arxiv.org/abs/1905.07854>`_ (KDD 2019).

    The collaborative knowledge graph (CKG; :func:`~pyg_recsys.data.kg.
    collaborative_kg`): users, items and entities in one node set, the
    interactions one more relation, every relation with its inverse.  Two
    objectives alternate within an epoch (:class:`~pyg_recsys.train.
    Trainer` with ``{'cf': pairs, 'kg': triples}``, :attr:`objectives`):

    * ``'kg'``, TransR (Eq. 1-2) over the CKG's triples:
      :math:`g(h, r, t) = \lVert \mathbf{W}_r \mathbf{e}_h + \mathbf{e}_r -
      \mathbf{W}_r \mathbf{e}_t \rVert_2^2` and
      :math:`-\ln \sigma(g(h, r, t') - g(h, r, t))` for a corrupted tail
      :math:`t'`, plus ``kg_reg_weight`` times the L2 of the projected
      embeddings;
    * ``'cf'``, BPR (Eq. 13) over (user, item, negative) with
      :math:`\hat{y}(u, i) = \mathbf{e}^{*\top}_u \mathbf{e}^*_i`, where
      :math:`\mathbf{e}^* = \mathbf{e}^{(0)} \| \dots \| \mathbf{e}^{(L)}`
      concatenates the layers of :class:`~pyg_recsys.nn.conv.KGATConv`
      (bi-interaction; sizes ``layer_dims``, 64/32/16 in the paper), plus
      ``reg_weight`` times the L2 of the batch's final embeddings (as the
      reference code).

    The attentive Laplacian (Eq. 4-5, :func:`~pyg_recsys.nn.conv.
    kgat_conv.kgat_attention`) is recomputed from the current embeddings
    without gradient, as the reference does after every epoch: here when
    an epoch starts (:meth:`set_epoch`, epochs after the first) and before
    an evaluation that follows training, so the evaluation sees the
    weights of the trained epoch.  Before the first update each edge
    weighs :math:`1 / |\mathcal{N}_{h,r}|` (the reference's per-relation
    random-walk normalisation).  The weighted adjacency is a sparse CSR
    matrix (rows: heads).

    Deviations, stated: the corrupted tails of the TransR objective are
    drawn uniformly over all nodes, not rejected when they form a true
    triple (with tens of thousands of entities such a draw is rare).

    Args:
        num_users: Number of users.
        num_items: Number of items.
        graph: The typed training graph (:meth:`~pyg_recsys.data.split.
            Split.graph` of a data set with a knowledge graph).
        embedding_dim: :math:`d` of :math:`\mathbf{e}^{(0)}` (64).
        relation_dim: :math:`k`, the TransR space (64).
        layer_dims: Output sizes of the layers (64, 32, 16).
        dropout: Message dropout of every layer (0.1).
        aggregator: ``'bi-interaction'``, ``'gcn'`` or ``'graphsage'``.
        reg_weight: L2 weight of the CF objective (1e-5).
        kg_reg_weight: L2 weight of the KG objective (1e-5).
        attention: ``False`` keeps the initial normalised weights (an
            ablation: KGAT without attention).
    """

    objectives = ('cf', 'kg')

    def __init__(self, num_users: int, num_items: int, graph: HeteroData,
                 embedding_dim: int = 64, relation_dim: int = 64,
                 layer_dims: Sequence[int] = (64, 32, 16),
                 dropout: float = 0.1, aggregator: str = 'bi-interaction',
                 reg_weight: float = 1e-5, kg_reg_weight: float = 1e-5,
                 attention: bool = True) -> None:
        if not isinstance(graph, HeteroData):
            raise TypeError(f'KGAT: graph must be the typed training graph '
                            f'(a HeteroData, Split.graph()), got '
                            f'{type(graph).__name__}')
        counts, _ = _typed_graph('KGAT', graph, num_users, num_items)
        extra = {t: n for t, n in counts.items() if t not in (USER, ITEM)}
        super().__init__(num_users, num_items, embedding_dim, reg_weight,
                         extra_nodes=extra)
        ckg = collaborative_kg(graph, node_types=tuple(counts))
        if ckg.edge_index.size(1) == 0:
            raise ValueError('KGAT: the graph has no edges')
        self.relation_types = list(ckg.relations)
        self.num_relations = len(self.relation_types)
        self.relation_dim = relation_dim
        self.kg_reg_weight = kg_reg_weight
        self.use_attention = attention
        self.relation = Embedding(self.num_relations, relation_dim)
        self.W = torch.nn.Parameter(torch.empty(
            self.num_relations, embedding_dim, relation_dim))
        dims = [embedding_dim, *layer_dims]
        self.convs = torch.nn.ModuleList([
            KGATConv(dims[i], dims[i + 1], aggregator, dropout)
            for i in range(len(layer_dims))])
        # CKG edges as (tail, head): messages flow tail -> head; a triple
        # (h, r, t) of the CKG is the edge h <- t
        h, t = ckg.edge_index
        self.register_buffer('ckg_index', torch.stack([t, h]),
                             persistent=False)
        self.register_buffer('ckg_type', ckg.edge_type, persistent=False)
        self.register_buffer('attention',
                             self._initial_weights(h, ckg.edge_type))
        # the CSR layout of the weighted adjacency (rows: heads), built
        # once; each forward only permutes the current weights into it
        order = torch.argsort(h * self.num_nodes + t)
        rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        rowptr[1:] = torch.bincount(h, minlength=self.num_nodes).cumsum(0)
        self.register_buffer('csr_rowptr', rowptr, persistent=False)
        self.register_buffer('csr_col', t[order], persistent=False)
        self.register_buffer('csr_order', order, persistent=False)
        self._stale = False
        self.reset_parameters()

    def _initial_weights(self, head: Tensor, rel: Tensor) -> Tensor:
        """:math:`1 / |\\mathcal{N}_{h,r}|` for every edge."""
        key = head * self.num_relations + rel
        count = torch.bincount(key, minlength=self.num_nodes
                               * self.num_relations)
        return 1.0 / count[key].float()

    def reset_parameters(self) -> None:
        """Xavier-uniform tables, relation vectors and projections (the
        PyTorch port's initialisation), fresh layers."""
        with torch.no_grad():
            torch.nn.init.xavier_uniform_(self.embedding.weight)
        torch.nn.init.xavier_uniform_(self.relation.weight)
        torch.nn.init.xavier_uniform_(self.W)
        for conv in self.convs:
            conv.reset_parameters()
        self._stale = False
        self.clear_cache()

    # -- the attentive Laplacian -----------------------------------------

    def triples(self) -> Tensor:
        """``[3, T]`` (head, relation, tail) of the CKG, global node ids."""
        t, h = self.ckg_index
        return torch.stack([h, self.ckg_type, t])

    def triple_loader(self, batch_size: int = 2048, seed: int = 0
                      ) -> TripleLoader:
        """The loader of the ``'kg'`` objective: the CKG's triples, one
        corrupted tail each."""
        return TripleLoader(self.triples(), self.num_nodes,
                            batch_size=batch_size, num_neg=1, seed=seed,
                            device=self.ckg_index.device)

    @torch.no_grad()
    def update_attention(self) -> None:
        """Recomputes :math:`\\tilde{\\pi}` of every edge from the current
        layer-0 embeddings (no gradient)."""
        if self.use_attention:
            self.attention.copy_(kgat_attention(
                self.embedding.weight, self.ckg_index, self.ckg_type,
                self.relation.weight, self.W, self.num_nodes))
        self._stale = False
        self.clear_cache()

    def set_epoch(self, epoch: int) -> None:
        """Before epoch 2, 3, ...: the attention of the weights so far
        (called by the :class:`~pyg_recsys.train.Trainer`)."""
        if epoch > 1 and self._stale:
            self.update_attention()

    def adjacency(self) -> Tensor:
        """The attention-weighted adjacency, sparse CSR, rows = heads."""
        n = self.num_nodes
        with warnings.catch_warnings():  # ("CSR support is in beta")
            warnings.simplefilter('ignore', UserWarning)
            return torch.sparse_csr_tensor(
                self.csr_rowptr, self.csr_col,
                self.attention[self.csr_order], (n, n))

    # -- the representations ---------------------------------------------

    def forward(self, index: Tensor | None = None) -> Tensor:
        """:math:`\\mathbf{e}^*` of the node ids ``index`` (all nodes, users
        first, when ``None``)."""
        adj = self.adjacency()
        x = self.embedding.weight
        layers = [x]
        for conv in self.convs:
            x = conv(x, adj)
            layers.append(x)
        out = torch.cat(layers, dim=-1)
        return out if index is None else out[index]

    def all_embeddings(self) -> Tensor:
        if self._stale and not self.training:
            self.update_attention()  # as the reference, after the epoch
        return super().all_embeddings()

    def _loss_embeddings(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        final = self(nodes)
        return final, final  # the reference's L2 is on e*

    # -- the objectives --------------------------------------------------

    def loss(self, batch: Any, objective: str = 'cf') -> Tensor:
        """BPR over interactions (``'cf'``, a
        :class:`~pyg_recsys.data.loader.PairBatch`) or TransR over the
        CKG (``'kg'``, a :class:`~pyg_recsys.data.loader.TripleBatch`)."""
        self._stale = True
        if objective == 'cf':
            return super().loss(batch)
        if objective != 'kg':
            raise ValueError(f"KGAT.loss: unknown objective {objective!r}; "
                             f'use one of {self.objectives}')
        h, r, t = batch.head, batch.relation, batch.tail
        neg = batch.neg_tail.reshape(h.numel(), -1)[:, 0]
        # (lookups through embedding(): their backward sums rows faster
        # than the accumulating index_put of plain indexing)
        R, d, k = self.W.shape
        table = self.W.view(R, d * k)
        W = (table.index_select(0, r) if ops_device.sync_free(r.device)
             else F.embedding(r, table)).view(-1, d, k)
        e = self.embedding(torch.stack([h, t, neg])).unsqueeze(2)
        r_h, r_t, r_n = (torch.bmm(e[i], W).squeeze(1) for i in range(3))
        r_e = self.relation(r)
        pos = (r_h + r_e - r_t).pow(2).sum(-1)
        negs = (r_h + r_e - r_n).pow(2).sum(-1)
        loss = -F.logsigmoid(negs - pos).mean()
        if self.kg_reg_weight > 0:
            loss = loss + self.kg_reg_weight * sum(
                l2_reg(x, batch_size=h.numel()) for x in (r_h, r_e, r_t,
                                                          r_n))
        return loss

    def extra_repr(self) -> str:
        return (f'relations={self.num_relations}, '
                f'layers={[c.out_channels for c in self.convs]}'
                + ('' if self.use_attention else ', attention=False'))


__all__ = ['KGAT']
