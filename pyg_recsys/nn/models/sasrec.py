r"""SASRec (Kang & McAuley, ICDM 2018): a causal self-attention sequence
encoder."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Dropout, LayerNorm, Linear, ModuleList

from pyg_recsys.data.session import to_padded
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.nn.models.session_base import PaddedSessionRecommender

ACTIVATIONS = ('gelu', 'relu')


class SASRecBlock(torch.nn.Module):
    r"""One SASRec block: causal multi-head self-attention and a point-wise
    two-layer feed-forward network, each a pre-norm residual sublayer
    (the paper's :math:`g(\mathbf{x}) \mapsto \mathbf{x} +
    \operatorname{Dropout}(g(\operatorname{LayerNorm}(\mathbf{x})))`):

    .. math::
        \mathbf{S} &= \mathbf{X} + \operatorname{Dropout}\big(
            \operatorname{MHA}(\operatorname{LN}_1(\mathbf{X}))\big),

        \mathbf{F} &= \mathbf{S} + \operatorname{Dropout}\big(
            \phi(\operatorname{LN}_2(\mathbf{S}) \mathbf{W}_1 +
            \mathbf{b}_1) \mathbf{W}_2 + \mathbf{b}_2\big),

    with, for input :math:`\mathbf{Y}` and head :math:`h` of size
    :math:`d_h = d / n_h`,

    .. math::
        \operatorname{head}_h = \operatorname{softmax}\Big(
            \frac{\mathbf{Q}_h \mathbf{K}_h^\top}{\sqrt{d_h}} +
            \mathbf{M}\Big) \mathbf{V}_h, \quad
        \mathbf{Q}_h = \mathbf{Y} \mathbf{W}^Q_h, \
        \mathbf{K}_h = \mathbf{Y} \mathbf{W}^K_h, \
        \mathbf{V}_h = \mathbf{Y} \mathbf{W}^V_h,

    :math:`\operatorname{MHA}(\mathbf{Y}) = [\operatorname{head}_1, \dots,
    \operatorname{head}_{n_h}] \mathbf{W}^O`, :math:`M_{tj} = 0` for
    :math:`j \le t` and :math:`-\infty` otherwise (step :math:`t` attends
    to steps :math:`1..t` only) and :math:`\phi` GELU or ReLU.  Node-wise,
    the output at step :math:`t` is a function of the inputs at steps
    :math:`1..t` alone.  The attention runs through
    :func:`torch.nn.functional.scaled_dot_product_attention` with
    ``is_causal=True`` (dropout on the attention weights in training).

    With ``norm_first=False`` the block is post-norm instead, the layout of
    BERT and of RecBole's SASRec: :math:`\mathbf{S} = \operatorname{LN}_1(
    \mathbf{X} + \operatorname{Dropout}(\operatorname{MHA}(\mathbf{X})))`,
    :math:`\mathbf{F} = \operatorname{LN}_2(\mathbf{S} +
    \operatorname{Dropout}(\phi(\mathbf{S} \mathbf{W}_1 + \mathbf{b}_1)
    \mathbf{W}_2 + \mathbf{b}_2))`.

    Args:
        embedding_dim: :math:`d`.
        num_heads: :math:`n_h` (must divide :math:`d`).
        inner_size: Width of the feed-forward layer.
        dropout: Dropout after each sublayer and inside the feed-forward
            network.
        attn_dropout: Dropout on the attention weights.
        activation: ``'gelu'`` or ``'relu'``.
        layer_norm_eps: :math:`\epsilon` of the layer norms.
        norm_first: Pre-norm (the paper) or post-norm sublayers.
    """

    def __init__(self, embedding_dim: int, num_heads: int, inner_size: int,
                 dropout: float, attn_dropout: float,
                 activation: str = 'gelu',
                 layer_norm_eps: float = 1e-12,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_first = norm_first
        self.attn_dropout = attn_dropout
        self.activation = activation
        self.attn_norm = LayerNorm(embedding_dim, eps=layer_norm_eps)
        self.qkv = Linear(embedding_dim, 3 * embedding_dim)
        self.out = Linear(embedding_dim, embedding_dim)
        self.ffn_norm = LayerNorm(embedding_dim, eps=layer_norm_eps)
        self.ffn1 = Linear(embedding_dim, inner_size)
        self.ffn2 = Linear(inner_size, embedding_dim)
        self.dropout = Dropout(dropout)

    def attention(self, x: Tensor) -> Tensor:
        """Causal multi-head self-attention of ``x`` ``[B, L, d]``."""
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads,
                                   d // self.num_heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=p,
                                           is_causal=True)
        return self.out(h.transpose(1, 2).reshape(B, L, d))

    def _act(self, h: Tensor) -> Tensor:
        return F.gelu(h) if self.activation == 'gelu' else F.relu(h)

    def forward(self, x: Tensor) -> Tensor:
        if not self.norm_first:  # post-norm (BERT / RecBole layout)
            x = self.attn_norm(x + self.dropout(self.attention(x)))
            h = self.ffn2(self._act(self.ffn1(x)))
            return self.ffn_norm(x + self.dropout(h))
        x = x + self.dropout(self.attention(self.attn_norm(x)))
        h = self._act(self.ffn1(self.ffn_norm(x)))
        return x + self.dropout(self.ffn2(self.dropout(h)))


class SASRec(PaddedSessionRecommender):
    r"""The SASRec recommender from `"Self-Attentive Sequential
    Recommendation" <https://arxiv.org/abs/1808.09781>`_ (Kang & McAuley,
    ICDM 2018).

    A sequence :math:`[s_1, \dots, s_L]`, :math:`L \le` ``max_len``, is
    embedded with the shared item table :math:`\mathbf{V}` and learned
    positions :math:`\mathbf{P} \in \mathbb{R}^{\text{max\_len} \times d}`,

    .. math::
        \mathbf{X}^{(0)}_t = \operatorname{Dropout}\big(\sqrt{d} \,
        \mathbf{v}_{s_t} + \mathbf{p}_t\big),

    goes through ``num_blocks`` :class:`SASRecBlock` (causal multi-head
    self-attention and a point-wise feed-forward network, each a pre-norm
    residual sublayer with dropout) and a final layer norm:

    .. math::
        \mathbf{F}_t = \operatorname{LN}\big(\mathbf{X}^{(b)}_t\big),
        \qquad \hat{y}_{t,i} = \mathbf{F}_t^\top \mathbf{v}_i,

    the score of item :math:`i` as the next item after step :math:`t`
    (prediction by the shared item embedding).  :math:`\mathbf{F}_t`
    depends on steps :math:`1..t` only, so :meth:`encode_steps` gives a
    vector after every step (training with a target after every step,
    ``SessionGraphs(mode='sequence')``) and :meth:`encode` the one after
    the last step.  ``loss='bce'`` is the paper's objective (one uniformly
    sampled negative per target); ``loss='ce'`` (full softmax, the
    default) is usually stronger.

    Positions are counted from the start of the (truncated) sequence,
    :math:`t = 0, \dots, L-1`, and the batch is left-aligned
    (:func:`~pyg_recsys.data.session.to_padded`), so a step's output does
    not depend on how many steps follow it, and the causal mask alone keeps
    the padding after a sequence away from its real steps (every real query
    only sees earlier real keys; no row is fully masked, so no NaN).
    Build the data with ``SessionGraphs(..., max_len=max_len)``: longer
    inputs raise an error.

    Speed: the attention is
    :func:`~torch.nn.functional.scaled_dot_product_attention` with
    ``is_causal=True`` in a hand-written block, measured a little faster
    than :class:`torch.nn.TransformerEncoderLayer`.

    Deviations from the paper and its code (``kang205/SASRec``): the
    original code pads sequences on the left to ``max_len`` and numbers
    positions within that window, so a step's position depends on the
    length of the sequence after it; here positions count from the first
    step.  The paper's block normalises the whole sublayer input (queries,
    keys and values); the code normalises the queries only and adds the
    residual to the normalised queries; we follow the paper.  As in RecBole
    (1.2.1) and the PyTorch port, attention has an output projection
    :math:`\mathbf{W}^O` and biases on the projections, the feed-forward
    inner width is ``inner_size`` (the paper uses :math:`d`), the
    activation defaults to GELU (the paper's is ReLU: pass
    ``activation='relu'``), layer norms use :math:`\epsilon = 10^{-12}`
    (the paper's code: :math:`10^{-8}`), the attention weights get dropout
    ``attn_dropout`` (default: ``dropout``), and weights are initialised
    BERT-style: :math:`\mathcal{N}(0, 0.02)` for linear and embedding
    weights, zero biases, unit / zero layer norms (the padding row of the
    item table is kept at zero).  The default dropout 0.5 is RecBole's; the
    paper uses 0.2 to 0.5 by dataset.

    Args:
        num_items: Number of items :math:`I`.
        embedding_dim: :math:`d`.
        num_blocks: Number of self-attention blocks.
        num_heads: Number of attention heads (must divide :math:`d`).
        dropout: Dropout on the input embeddings, after every sublayer and
            inside the feed-forward networks.
        max_len: Number of learned positions, the longest input sequence.
        inner_size: Width of the feed-forward layers.
        activation: ``'gelu'`` or ``'relu'``.
        layer_norm_eps: :math:`\epsilon` of the layer norms.
        attn_dropout: Dropout on the attention weights (``None``: same as
            ``dropout``).
        loss: ``'ce'``, ``'bce'`` or ``'bpr-max'``.
        bpr_max_reg: :math:`\lambda` of BPR-max's score regulariser.
        norm_first: ``True`` (default): the paper's pre-norm blocks with a
            final layer norm and :math:`\sqrt{d}`-scaled item embeddings.
            ``False``: BERT's post-norm blocks (:class:`SASRecBlock`), the
            layer norm applied to item plus position embeddings instead, no
            scaling, one dropout in the feed-forward network: RecBole's
            SASRec, which learns faster in the first epochs (Beauty, 3
            epochs, prefix examples: test hit@10 0.0539 against 0.0508
            pre-norm).
    """

    def __init__(
        self,
        num_items: int,
        embedding_dim: int = 64,
        num_blocks: int = 2,
        num_heads: int = 2,
        dropout: float = 0.5,
        max_len: int = 50,
        inner_size: int = 256,
        activation: str = 'gelu',
        layer_norm_eps: float = 1e-12,
        attn_dropout: float | None = None,
        loss: str = 'ce',
        bpr_max_reg: float = 1.0,
        norm_first: bool = True,
    ) -> None:
        super().__init__(num_items, embedding_dim, loss=loss,
                         bpr_max_reg=bpr_max_reg)
        for name, value in (('num_blocks', num_blocks),
                            ('num_heads', num_heads), ('max_len', max_len),
                            ('inner_size', inner_size)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'SASRec: {name} must be a positive '
                                 f'integer, got {value!r}')
        if embedding_dim % num_heads != 0:
            raise ValueError(f'SASRec: num_heads ({num_heads}) must divide '
                             f'embedding_dim ({embedding_dim})')
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        for name, value in (('dropout', dropout),
                            ('attn_dropout', attn_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f'SASRec: {name} must be in [0, 1), got '
                                 f'{value}')
        if activation not in ACTIVATIONS:
            raise ValueError(f"SASRec: unknown activation '{activation}'; "
                             f'choose one of {ACTIVATIONS}')
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.max_len = max_len
        self.norm_first = norm_first
        self.pos_emb = Embedding(max_len, embedding_dim)
        self.emb_dropout = Dropout(dropout)
        self.blocks = ModuleList([
            SASRecBlock(embedding_dim, num_heads, inner_size, dropout,
                        attn_dropout, activation, layer_norm_eps,
                        norm_first)
            for _ in range(num_blocks)
        ])
        self.final_norm = LayerNorm(embedding_dim, eps=layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r""":math:`\mathcal{N}(0, 0.02)` linear and embedding weights
        (padding row zero), zero biases, unit / zero layer norms."""
        for module in self.modules():
            if isinstance(module, (Linear, Embedding)):
                torch.nn.init.normal_(module.weight, 0.0, 0.02)
                if isinstance(module, Linear):
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, LayerNorm):
                module.reset_parameters()
        with torch.no_grad():
            self.item_emb.weight[self.padding_idx].zero_()

    def encode_padded(self, batch) -> tuple[Tensor, Tensor]:
        """``[B, L, d]`` output after every (padded) step and the ``[B, L]``
        mask of real steps."""
        seq, mask = to_padded(batch, 'seq', fill_value=self.padding_idx)
        L = seq.size(1)
        if L > self.max_len:
            raise ValueError(
                f'SASRec: a sequence has {L} steps but the model has '
                f'max_len={self.max_len} positions; build the data with '
                f'SessionGraphs(..., max_len={self.max_len})')
        pos = torch.arange(L, device=seq.device)
        if not self.norm_first:  # RecBole: LN(item + position), post-norm
            x = self.emb_dropout(self.final_norm(self.item_emb(seq)
                                                 + self.pos_emb(pos)))
            for block in self.blocks:
                x = block(x)
            return x, mask
        x = self.item_emb(seq) * math.sqrt(self.embedding_dim) \
            + self.pos_emb(pos)
        x = self.emb_dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x), mask

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, num_blocks={self.num_blocks}, '
                f'num_heads={self.num_heads}, max_len={self.max_len}, '
                f'norm_first={self.norm_first}')


__all__ = ['SASRec', 'SASRecBlock']
