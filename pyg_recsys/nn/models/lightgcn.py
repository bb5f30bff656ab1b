r"""LightGCN (He et al., SIGIR 2020) with row-selective propagation."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.nn.models.base import GraphEmbeddingRecommender
from pyg_recsys.ops.propagate import layer_weights, propagate


class LightGCN(GraphEmbeddingRecommender):
    r"""The LightGCN recommender from `"LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation"
    <https://arxiv.org/abs/2002.02126>`_ (He et al., SIGIR 2020).

    Final embeddings are a weighted sum of :math:`K` light graph
    convolutions (:class:`~pyg_recsys.nn.conv.LightGCNConv`) of the layer-0
    table :math:`\mathbf{E}^{(0)}`,

    .. math::
        \mathbf{E} = \sum_{k=0}^{K} \alpha_k \mathbf{A}^k \mathbf{E}^{(0)},
        \qquad \hat{y}_{ui} = \mathbf{e}_u^\top \mathbf{e}_i,

    with :math:`\mathbf{A}` the symmetric normalised user-item adjacency of
    the training interactions (:class:`~pyg_recsys.ops.adj.NormAdj`, built
    once) and :math:`\alpha_k = 1/(K+1)` by default.  Trained with BPR plus
    :math:`\frac{\lambda}{2|B|}` times the squared norms of the batch's
    layer-0 embeddings (paper Eq. 15, as in its reference code).

    The layers are LightGCN's operator
    :func:`pyg_recsys.ops.propagate.propagate`, the one the
    :class:`~pyg_recsys.nn.conv.LightGCNConv` layer runs on a
    :class:`~pyg_recsys.ops.adj.NormAdj` (one layer there, :math:`K` here
    with the layer weights).  A training step passes the batch's node ids,
    so the last layer is computed only for those rows and back-propagated
    without transposes: :math:`2(K-1)` full sparse-dense products and two
    small ones per step instead of :math:`2K`, and the L2 term's gradient
    joins the same backward pass (``benchmarks/lightgcn_gowalla.py``
    measures it against PyG's :class:`torch_geometric.nn.models.LightGCN`,
    which propagates over all nodes per step and whose ``recommend()`` does
    not exclude seen items; this one does, ``exclude``).

    Given a typed training graph (a :class:`HeteroData` with more node
    types, e.g. the entities of a knowledge graph), the propagation runs
    over all its relations and every node type has its own table.

    Deviations from the paper: none in the model; initialisation
    :math:`\mathcal{N}(0, 0.1^2)` follows the reference code.  The
    adjacency is rebuilt from ``edge_index`` at construction and is not
    part of ``state_dict`` (pass the same training graph when loading).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from
            0, or a typed training graph (``HeteroData``); message passing
            uses these only.
        embedding_dim: Embedding size :math:`d`.
        num_layers: Number of layers :math:`K`.
        reg_weight: L2 weight :math:`\lambda`.
        alpha: Layer weights :math:`\alpha_k`: ``None`` for
            :math:`1/(K+1)`, one float for all, or :math:`K+1` values.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int,
                 edge_index: Tensor | HeteroData,
                 embedding_dim: int = 64, num_layers: int = 3,
                 reg_weight: float = 1e-4,
                 alpha: float | Sequence[float] | Tensor | None = None, *,
                 pair_loss: str = 'bpr', temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, edge_index, embedding_dim,
                         reg_weight, pair_loss=pair_loss,
                         temperature=temperature)
        if num_layers < 0:
            raise ValueError(f'LightGCN: num_layers must be >= 0, got '
                             f'{num_layers}')
        self.num_layers = num_layers
        self.alpha = layer_weights(num_layers, alpha)
        self.reset_parameters()

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Final embeddings of node ids ``index`` (users ``0 .. U-1``, items
        ``U + i``; any shape, repeats allowed), or of all nodes.  With
        ``index`` only those rows of the last layer are computed."""
        return propagate(self.adj, self.embedding.weight, self.num_layers,
                         self.alpha, index)

    def _loss_embeddings(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        # The layer-0 rows come out of the same autograd node, so the L2
        # term's gradient joins the propagation's backward pass.
        return propagate(self.adj, self.embedding.weight, self.num_layers,
                         self.alpha, nodes, return_layer0=True)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, '
                f'embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers})')
