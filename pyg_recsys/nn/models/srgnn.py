r"""SR-GNN (Wu et al., AAAI 2019)."""
from __future__ import annotations

from torch import Tensor

from pyg_recsys.data.session import step_batch
from pyg_recsys.nn.conv.srgnn_conv import SRGNNConv, SRGNNReadout
from pyg_recsys.nn.models.session_base import SessionRecommender


class SRGNN(SessionRecommender):
    r"""The SR-GNN session recommender from `"Session-based Recommendation
    with Graph Neural Networks" <https://arxiv.org/abs/1811.00855>`_ (Wu et
    al., AAAI 2019), following its reference code (``CRIPAC-DIG/SR-GNN``,
    ``pytorch_code/model.py``, ``SessionGraph``).

    Each example's session graph is encoded by
    :class:`~pyg_recsys.nn.conv.srgnn_conv.SRGNNConv` from the item
    embeddings,
    :math:`\mathbf{H} = \mathrm{SRGNNConv}(\mathbf{V}[\mathbf{x}])`.
    With :math:`\mathbf{h}_1, \dots, \mathbf{h}_L` the node states of the
    steps (``H[alias]``, a repeated item appears once per step) and
    :math:`\mathbf{h}_L` the last one (the local embedding
    :math:`\mathbf{s}_l`), the soft-attention readout (paper Eq. 6-7) is

    .. math::
        \alpha_t = \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{h}_L
            + \mathbf{b}_1 + \mathbf{W}_2 \mathbf{h}_t + \mathbf{b}_2),
        \qquad
        \mathbf{s}_g = \sum_{t=1}^{L} \alpha_t \mathbf{h}_t,
        \qquad
        \mathbf{s} = \mathbf{W}_3 [\mathbf{s}_g \,\Vert\, \mathbf{h}_L]
            + \mathbf{b}_3,

    (``linear_one``, ``linear_two``, ``linear_three``,
    ``linear_transform``) and the next-item scores (Eq. 8) are
    :math:`\hat{\mathbf{z}}_i = \mathbf{s}^\top \mathbf{v}_i` over all items,
    trained with softmax cross-entropy (``loss='ce'``, Eq. 9).  With
    ``nonhybrid=True`` the session vector is :math:`\mathbf{s}_g` alone.

    Deviations from the paper / reference: as the reference, the weights
    :math:`\alpha_t` are not normalised (no softmax) and the sum runs over
    every step including repeats; the linear maps carry biases
    (``linear_three`` none), and all parameters are drawn from
    :math:`U(-1/\sqrt{d}, 1/\sqrt{d})`.  The reference shifts item ids by
    one and scores against ``embedding.weight[1:]``; here ids start at 0,
    the padding row is the last one (``num_items``) and is never part of a
    session graph, so the scores are the same.  The reference's training
    recipe (Adam, lr 0.001, decay 0.1 every 3 epochs, L2 1e-5) belongs to
    the trainer.  The encoder is not causal: train on
    ``SessionGraphs(mode='prefix')`` examples.

    Args:
        num_items: Number of items :math:`I`.
        embedding_dim: :math:`d` (100 in the paper).
        num_steps: Propagation steps of the gated graph layer (1).
        nonhybrid: Use :math:`\mathbf{s}_g` only, without the last step
            (the reference's ``--nonhybrid`` flag).
        loss: ``'ce'`` (the paper), ``'bce'`` or ``'bpr-max'`` (see
            :class:`~pyg_recsys.nn.models.session_base.SessionRecommender`).
        bpr_max_reg: :math:`\lambda` of BPR-max's score regulariser.
    """

    def __init__(self, num_items: int, embedding_dim: int = 100,
                 num_steps: int = 1, nonhybrid: bool = False,
                 loss: str = 'ce', bpr_max_reg: float = 1.0) -> None:
        super().__init__(num_items, embedding_dim, loss=loss,
                         bpr_max_reg=bpr_max_reg)
        d = embedding_dim
        self.nonhybrid = nonhybrid
        self.conv = SRGNNConv(d, num_steps=num_steps)
        self.readout = SRGNNReadout(d, nonhybrid=nonhybrid)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Every parameter from :math:`U(-1/\sqrt{d}, 1/\sqrt{d})` (the
        reference's initialisation); the padding row is zero."""
        self.reset_uniform_()

    def encode(self, batch) -> Tensor:
        r"""``[B, d]`` session vector :math:`\mathbf{s}` of every example."""
        h = self.conv(self.item_emb(batch.x), batch.edge_index,
                      batch.edge_weight_in, batch.edge_weight_out)
        return self.readout(h[batch.last], h[batch.alias],
                            step_batch(batch))

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, num_steps={self.conv.num_steps}, '
                f'nonhybrid={self.nonhybrid}')


__all__ = ['SRGNN']
