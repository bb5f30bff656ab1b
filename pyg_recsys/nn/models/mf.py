r"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""
from __future__ import annotations

from torch import Tensor

from pyg_recsys.nn.models.base import EmbeddingRecommender


class MF(EmbeddingRecommender):
    r"""Matrix factorisation with the Bayesian personalised ranking loss
    from `"BPR: Bayesian Personalized Ranking from Implicit Feedback"
    <https://arxiv.org/abs/1205.2618>`_ (Rendle et al., UAI 2009).

    .. math::
        \hat{y}_{ui} = \mathbf{e}_u^\top \mathbf{e}_i

    with one :math:`d`-dimensional embedding :math:`\mathbf{e}_u` per user
    and :math:`\mathbf{e}_i` per item, learned by
    :meth:`~EmbeddingRecommender.loss` (BPR plus
    :math:`\frac{\lambda}{2|B|}` times the squared norms of the batch's
    embeddings, as in the LightGCN reference code, which uses MF as its
    baseline).

    Deviation from the paper: embeddings start from
    :math:`\mathcal{N}(0, 0.1^2)` as in the LightGCN reference code, and
    the L2 penalty is on the batch's rows, not the whole table.

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        embedding_dim: Embedding size :math:`d`.
        reg_weight: L2 weight :math:`\lambda`.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, reg_weight: float = 1e-4, *,
                 pair_loss: str = 'bpr', temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, embedding_dim, reg_weight,
                         pair_loss=pair_loss, temperature=temperature)
        self.reset_parameters()

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Embeddings of node ids ``index`` (users ``0 .. U-1``, items
        ``U + i``), or the whole table."""
        if index is None:
            return self.embedding.weight
        return self.embedding(index)

    def _loss_embeddings(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        emb = self.embedding(nodes)  # final embeddings are layer 0
        return emb, emb
