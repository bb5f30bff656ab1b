r"""GraphSAGE (Hamilton et al., NeurIPS 2017) as a user-item recommender."""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing, SAGEConv

from pyg_recsys.nn.models.gnn_rec import BipartiteGNNRecommender
from pyg_recsys.schema import ITEM_USER, USER_ITEM

# Aggregations SAGEConv fuses into one sparse-dense product.
FUSED_AGGRS = ('sum', 'add', 'mean', 'min', 'max')


def _adj_t(src: Tensor, dst: Tensor, num_src: int, num_dst: int) -> Tensor:
    """The ``[num_dst, num_src]`` 0/1 matrix of edges ``src -> dst`` as a
    torch CSR tensor (repeated edges kept, as in the ``edge_index``
    path)."""
    order = torch.argsort(dst * num_src + src)
    count = torch.bincount(dst, minlength=num_dst)
    rowptr = torch.zeros(num_dst + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=rowptr[1:])
    value = torch.ones(src.numel())
    with warnings.catch_warnings():  # 'sparse CSR support is in beta'
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(rowptr, src[order], value,
                                       (num_dst, num_src),
                                       check_invariants=False)


class SAGERecommender(BipartiteGNNRecommender):
    r"""A GraphSAGE recommender from `"Inductive Representation Learning on
    Large Graphs" <https://arxiv.org/abs/1706.02216>`_ (Hamilton et al.,
    NeurIPS 2017), over the bipartite user-item graph with PyG's own
    :class:`~torch_geometric.nn.conv.SAGEConv` (one per edge direction and
    layer, see :class:`BipartiteGNNRecommender`):

    .. math::
        \mathbf{h}^{(l+1)}_i = \mathbf{W}^{(l)}_{1}\,
        \mathrm{mean}_{u \in \mathcal{N}(i)} \mathbf{h}^{(l)}_u +
        \mathbf{W}^{(l)}_{2}\, \mathbf{h}^{(l)}_i + \mathbf{b}^{(l)},

    and the same from items to users with their own weights; ReLU and
    dropout between layers, :math:`\hat{y}_{ui} = \mathbf{h}^{(L)\top}_u
    \mathbf{h}^{(L)}_i`, BPR plus L2 on the embedding rows.  Layer-0 input
    is a learnable embedding per node plus a linear projection of node
    features where given.

    Deviations from the paper: the paper learns unsupervised embeddings
    with a random-walk co-occurrence loss and concatenates (not sums) the
    root and neighbour terms; here the loss is BPR over (user, positive,
    negative) triples, the layers are PyG's :class:`SAGEConv` (sum of two
    linear maps, without the per-layer :math:`\ell_2` normalisation unless
    ``normalize=True``), and the inputs include learnable ID embeddings
    (the graph has no node features of its own).  Full-graph passes
    aggregate with one sparse-dense product per edge type (a torch CSR
    matrix built once, measured faster than PyG's gather/scatter), sampled
    subgraphs through ``edge_index``; both give the same numbers.  Train
    on the full graph with :class:`~pyg_recsys.data.loader.PairLoader` or
    on sampled neighbourhoods, as in the paper, with
    :class:`~pyg_recsys.data.loader.LinkNeighborPairLoader`.

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from 0.
        embedding_dim: Embedding and hidden size :math:`d`.
        num_layers: Number of layers :math:`L`.
        reg_weight: L2 weight :math:`\lambda`.
        user_x: Optional ``[U, F_U]`` user features.
        item_x: Optional ``[I, F_I]`` item features.
        dropout: Dropout probability between layers.
        act: Activation between layers.
        aggr: Neighbour aggregation of :class:`SAGEConv` (``'mean'``,
            ``'max'``, ...).
        normalize: :math:`\ell_2`-normalise every layer's output.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 embedding_dim: int = 64, num_layers: int = 2,
                 reg_weight: float = 1e-4, user_x: Tensor | None = None,
                 item_x: Tensor | None = None, dropout: float = 0.0,
                 act: str | torch.nn.Module = 'relu', aggr: str = 'mean',
                 normalize: bool = False, *, pair_loss: str = 'bpr',
                 temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, edge_index, embedding_dim,
                         num_layers, reg_weight, user_x, item_x, dropout,
                         act, pair_loss=pair_loss, temperature=temperature)
        self.aggr = aggr
        self.normalize = normalize
        fused = aggr in FUSED_AGGRS
        nu, ni, ui = num_users, num_items, self.edge_index_ui
        self.register_buffer('adj_t_ui', _adj_t(ui[0], ui[1], nu, ni)
                             if fused else None, persistent=False)
        self.register_buffer('adj_t_iu', _adj_t(ui[1], ui[0], ni, nu)
                             if fused else None, persistent=False)
        self._init_layers()

    def _full_graph_edges(self) -> dict[Any, Tensor]:
        if self.adj_t_ui is None:
            return super()._full_graph_edges()
        return {USER_ITEM: self.adj_t_ui, ITEM_USER: self.adj_t_iu}

    def init_conv(self, in_channels: int, out_channels: int,
                  last: bool) -> MessagePassing:
        return SAGEConv((in_channels, in_channels), out_channels,
                        aggr=self.aggr, normalize=self.normalize)
