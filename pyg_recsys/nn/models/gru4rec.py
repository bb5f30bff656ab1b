r"""GRU4Rec (Hidasi et al., ICLR 2016): a recurrent session encoder."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import GRU, Dropout, Linear
from torch.nn.init import xavier_normal_, xavier_uniform_

from pyg_recsys.data.session import to_padded
from pyg_recsys.nn.models.session_base import PaddedSessionRecommender


class GRU4Rec(PaddedSessionRecommender):
    r"""The GRU4Rec recommender from `"Session-based Recommendations with
    Recurrent Neural Networks" <https://arxiv.org/abs/1511.06939>`_
    (Hidasi et al., ICLR 2016), with the BPR-max loss of `"Recurrent Neural
    Networks with Top-k Gains for Session-based Recommendations"
    <https://arxiv.org/abs/1706.03847>`_ (Hidasi & Karatzoglou, CIKM 2018).

    A session :math:`[s_1, \dots, s_L]` is read step by step by a gated
    recurrent unit over the item embeddings
    :math:`\mathbf{e}_{s_t} \in \mathbb{R}^d` (rows of the shared item
    table :math:`\mathbf{V}`):

    .. math::
        \mathbf{z}_t &= \sigma(\mathbf{W}_z \mathbf{x}_t +
            \mathbf{U}_z \mathbf{h}_{t-1}), \qquad
        \mathbf{r}_t = \sigma(\mathbf{W}_r \mathbf{x}_t +
            \mathbf{U}_r \mathbf{h}_{t-1}),

        \hat{\mathbf{h}}_t &= \tanh(\mathbf{W}_h \mathbf{x}_t +
            \mathbf{r}_t \odot (\mathbf{U}_h \mathbf{h}_{t-1})),

        \mathbf{h}_t &= (1 - \mathbf{z}_t) \odot \hat{\mathbf{h}}_t +
            \mathbf{z}_t \odot \mathbf{h}_{t-1},

    with :math:`\mathbf{x}_t = \operatorname{Dropout}(\mathbf{e}_{s_t})`,
    :math:`\mathbf{h}_0 = \mathbf{0}`, hidden size :math:`H` and
    ``num_layers`` stacked GRUs (each layer reads the states of the one
    below).  The session vector after step :math:`t` and the score of item
    :math:`i` are

    .. math::
        \mathbf{s}_t = \mathbf{W}_o \mathbf{h}_t + \mathbf{b}_o
        \in \mathbb{R}^d, \qquad \hat{y}_{t,i} = \mathbf{s}_t^\top
        \mathbf{v}_i.

    The encoder is causal: :meth:`encode_steps` gives
    :math:`\mathbf{s}_t` after every step (training on a target after every
    step, ``SessionGraphs(mode='sequence')``) and :meth:`encode` the vector
    after the last step.  Losses come from
    :class:`~pyg_recsys.nn.models.session_base.SessionRecommender`:
    ``'ce'`` (full softmax), ``'bce'`` (one uniform negative) and
    ``'bpr-max'`` (the other targets of the batch as negatives, score
    regulariser ``bpr_max_reg``).

    The batch is read as left-aligned padded sequences
    (:func:`~pyg_recsys.data.session.to_padded`) and the GRU runs over the
    padded batch: a step's state only depends on the steps before it, so
    the padding after a sequence never reaches its real positions.  This
    measured faster than :func:`~torch.nn.utils.rnn.pack_padded_sequence`
    on CPU.

    Deviations from the paper (the layout and initialisation follow RecBole
    1.2.1's ``GRU4Rec``, so the speed comparison with it is like for
    like): sessions are whole training examples read from their start, not
    session-parallel mini-batches whose hidden state is carried over
    between batches; the input is an item embedding (with dropout), not a
    one-hot vector; the GRU has no biases and its output goes through a
    linear layer to :math:`d` and is scored against the input item table
    (tied input/output embeddings), not through a separate output layer
    with a final activation; item embeddings are drawn from
    :func:`~torch.nn.init.xavier_normal_` and GRU weights from
    :func:`~torch.nn.init.xavier_uniform_`.  Differences from RecBole:
    the padding row of the item table is kept at zero after
    initialisation, every GRU layer (not only the first) gets the Xavier
    initialisation, the loss defaults to full cross-entropy and BPR-max
    negatives are the batch's other targets.

    Args:
        num_items: Number of items :math:`I`.
        embedding_dim: Item embedding size :math:`d`.
        hidden_size: GRU hidden size :math:`H`.
        num_layers: Number of stacked GRU layers.
        dropout: Dropout on the input item embeddings.
        loss: ``'ce'``, ``'bce'`` or ``'bpr-max'``.
        bpr_max_reg: :math:`\lambda` of BPR-max's score regulariser.
    """

    def __init__(
        self,
        num_items: int,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.3,
        loss: str = 'ce',
        bpr_max_reg: float = 1.0,
    ) -> None:
        super().__init__(num_items, embedding_dim, loss=loss,
                         bpr_max_reg=bpr_max_reg)
        for name, value in (('hidden_size', hidden_size),
                            ('num_layers', num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'GRU4Rec: {name} must be a positive '
                                 f'integer, got {value!r}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'GRU4Rec: dropout must be in [0, 1), got '
                             f'{dropout}')
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.emb_dropout = Dropout(dropout)
        self.gru = GRU(embedding_dim, hidden_size, num_layers, bias=False,
                       batch_first=True)
        self.dense = Linear(hidden_size, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal item embeddings (padding row zero), Xavier-uniform
        GRU weights, PyTorch's default for the output layer."""
        xavier_normal_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[self.padding_idx].zero_()
        for weight in self.gru.parameters():
            xavier_uniform_(weight)
        self.dense.reset_parameters()

    def encode_padded(self, batch) -> tuple[Tensor, Tensor]:
        """``[B, L, d]`` session vector after every (padded) step and the
        ``[B, L]`` mask of real steps."""
        seq, mask = to_padded(batch, 'seq', fill_value=self.padding_idx)
        x = self.emb_dropout(self.item_emb(seq))
        out, _ = self.gru(x)
        return self.dense(out), mask

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, hidden_size={self.hidden_size}, '
                f'num_layers={self.num_layers}')


__all__ = ['GRU4Rec']
