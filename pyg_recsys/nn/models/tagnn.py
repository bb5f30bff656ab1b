r"""TAGNN (Yu et al., SIGIR 2020)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.utils import to_dense_batch

from pyg_recsys.data.session import max_length, step_batch
from pyg_recsys.nn.conv.srgnn_conv import SRGNNConv, SRGNNReadout
from pyg_recsys.nn.models.session_base import (
    SessionRecommender,
    check_candidates,
    on_device,
)


class TAGNN(SessionRecommender):
    r"""The TAGNN session recommender from `"TAGNN: Target Attentive Graph
    Neural Networks for Session-based Recommendation"
    <https://arxiv.org/abs/2005.02844>`_ (Yu et al., SIGIR 2020), following
    its reference code (``CRIPAC-DIG/TAGNN``, ``model.py``,
    ``SessionGraph.compute_scores``).

    The encoder is SR-GNN's:
    :math:`\mathbf{H} = \mathrm{SRGNNConv}(\mathbf{V}[\mathbf{x}])`, with
    :math:`\mathbf{h}_1, \dots, \mathbf{h}_L` the states of the steps
    (``H[alias]``) and :math:`\mathbf{h}_L` the last one.  The
    candidate-independent part is SR-GNN's readout with softmax-normalised
    weights,

    .. math::
        \alpha_t = \mathrm{softmax}_t\big(\mathbf{q}^\top
            \sigma(\mathbf{W}_1 \mathbf{h}_L + \mathbf{b}_1
            + \mathbf{W}_2 \mathbf{h}_t + \mathbf{b}_2)\big),
        \qquad
        \mathbf{a} = \mathbf{W}_3 \Big[\sum_t \alpha_t \mathbf{h}_t
            \,\Big\Vert\, \mathbf{h}_L\Big] + \mathbf{b}_3,

    and every candidate :math:`i` gets its own target-attentive session
    vector (paper Eq. 6-7), with :math:`\mathbf{W}_t` ``linear_t``,

    .. math::
        \beta_{i,t} = \mathrm{softmax}_t\big(\mathbf{v}_i^\top
            \mathbf{W}_t \mathbf{h}_t\big),
        \qquad
        \mathbf{s}^{target}_i = \sum_t \beta_{i,t} \mathbf{h}_t,
        \qquad
        \hat{z}_i = (\mathbf{a} + \mathbf{s}^{target}_i)^\top
            \mathbf{v}_i,

    trained with softmax cross-entropy over all items.  The scores are
    computed without materialising the ``[B, I, d]`` tensor of target
    vectors: :math:`\hat{z}_i = \mathbf{a}^\top \mathbf{v}_i + \sum_t
    \beta_{i,t} (\mathbf{v}_i^\top \mathbf{h}_t)`, i.e. two ``[B, L, C]``
    products per chunk of :math:`C` = ``item_chunk`` items, which bounds
    the memory of :meth:`score`.  :meth:`encode` returns
    :math:`\mathbf{a}` only; scores come from :meth:`score` (which
    :meth:`loss` and :meth:`recommend` use).

    Deviations from the reference: both softmaxes run over the real steps
    of each session only, while the reference softmaxes over the padded
    positions as well (padding gets logit :math:`\mathbf{q}^\top
    \sigma(\dots)` in :math:`\alpha` and logit 0 in :math:`\beta`, and is
    then multiplied by zero, so its weights shrink the real ones and depend
    on the batch's longest session); without padding both agree.  As the
    reference, the sums run over every step including repeats, the linear
    maps carry biases (``linear_three`` and ``linear_t`` none) and all
    parameters are drawn from :math:`U(-1/\sqrt{d}, 1/\sqrt{d})`; item ids
    start at 0 here (the reference shifts them by one).  Only
    ``loss='ce'`` is offered: the score of an item depends on the item
    through :math:`\mathbf{s}^{target}_i`, so there is no single session
    vector for the sampled losses.  The reference's training recipe (Adam,
    lr 0.001, decay 0.1 every 3 epochs, L2 1e-5) belongs to the trainer.

    Args:
        num_items: Number of items :math:`I`.
        embedding_dim: :math:`d` (100 in the paper).
        num_steps: Propagation steps of the gated graph layer (1).
        nonhybrid: Use :math:`\sum_t \alpha_t \mathbf{h}_t` for
            :math:`\mathbf{a}`, without the last step and
            :math:`\mathbf{W}_3` (the reference's ``--nonhybrid`` flag).
        loss: ``'ce'`` only.
        item_chunk: Number of items scored at once (bounds the ``[B, L,
            C]`` intermediates of :meth:`score`).
    """

    def __init__(self, num_items: int, embedding_dim: int = 100,
                 num_steps: int = 1, nonhybrid: bool = False,
                 loss: str = 'ce', item_chunk: int = 4096) -> None:
        super().__init__(num_items, embedding_dim, loss=loss)
        if loss != 'ce':
            raise ValueError(
                f"TAGNN: loss '{loss}' is not supported; the session vector "
                f"depends on the candidate item, so only loss='ce' "
                f"(softmax over all items, as the paper) is implemented")
        if isinstance(item_chunk, bool) or not isinstance(item_chunk, int) \
                or item_chunk < 1:
            raise ValueError(f'TAGNN: item_chunk must be a positive integer '
                             f'(items scored at once), got {item_chunk!r}')
        d = embedding_dim
        self.nonhybrid = nonhybrid
        self.item_chunk = item_chunk
        self.conv = SRGNNConv(d, num_steps=num_steps)
        self.readout = SRGNNReadout(d, nonhybrid=nonhybrid, normalize=True)
        self.linear_t = Linear(d, d, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Every parameter from :math:`U(-1/\sqrt{d}, 1/\sqrt{d})` (the
        reference's initialisation); the padding row is zero."""
        self.reset_uniform_()

    def _encode(self, batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(a [B, d], qt [B, L, d], hs [B, L, d], mask [B, L])``."""
        h = self.conv(self.item_emb(batch.x), batch.edge_index,
                      batch.edge_weight_in, batch.edge_weight_out)
        hs = h[batch.alias]  # [sum L, d]
        step = step_batch(batch)
        num = batch.last.numel()
        a = self.readout(h[batch.last], hs, step)
        hs, mask = to_dense_batch(hs, step, batch_size=num,
                                  max_num_nodes=max_length(batch))
        qt = self.linear_t(hs)  # no bias: padded rows stay zero
        return a, qt, hs, mask

    def encode(self, batch) -> Tensor:
        r"""``[B, d]`` candidate-independent session vector
        :math:`\mathbf{a}` (the scores add the target-attentive part, see
        :meth:`score`)."""
        return self._encode(batch)[0]

    def score(self, batch, items: Tensor | None = None) -> Tensor:
        """Next-item scores: ``[B, I]`` over all items, or ``[B, n]`` for
        candidate ``items`` shared (``[n]``) or per example (``[B, n]``),
        ``item_chunk`` items at a time (the batch copied to the model's
        device if it is elsewhere)."""
        a, qt, hs, mask = self._encode(
            on_device(batch, self.item_emb.weight.device))
        if items is None or items.dim() == 1:
            weight = (self.item_weight() if items is None
                      else self.item_emb(items))
            return torch.cat([
                _target_scores(a, qt, hs, mask,
                               weight[start:start + self.item_chunk])
                for start in range(0, weight.size(0), self.item_chunk)
            ], dim=1)
        check_candidates('TAGNN', items, a.size(0))
        return torch.cat([
            _target_scores(a, qt, hs, mask,
                           self.item_emb(items[:, start:start
                                               + self.item_chunk]))
            for start in range(0, items.size(1), self.item_chunk)
        ], dim=1)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, num_steps={self.conv.num_steps}, '
                f'nonhybrid={self.nonhybrid}, item_chunk={self.item_chunk}')


def _target_scores(a: Tensor, qt: Tensor, hs: Tensor, mask: Tensor,
                   v: Tensor) -> Tensor:
    r""":math:`(\mathbf{a} + \mathbf{s}^{target}_i)^\top \mathbf{v}_i` of
    the items ``v`` (``[C, d]`` shared or ``[B, C, d]`` per example) as
    ``[B, C]``, through ``[B, L, C]`` products only."""
    if v.dim() == 2:
        base = a @ v.t()  # [B, C]
        logits, values = qt @ v.t(), hs @ v.t()  # [B, L, C]
    else:
        base = (a.unsqueeze(1) * v).sum(-1)
        vt = v.transpose(1, 2)
        logits, values = qt @ vt, hs @ vt
    logits = logits.masked_fill(~mask.unsqueeze(-1), float('-inf'))
    beta = torch.softmax(logits, dim=1)  # over the real steps
    return base + (beta * values).sum(1)


__all__ = ['TAGNN']
