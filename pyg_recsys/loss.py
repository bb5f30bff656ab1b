r"""Training objectives shared by every recommender.

All losses are means over the batch, so their scale does not depend on the
batch size; :func:`l2_reg` follows the LightGCN reference code (squared
norms of the batch's layer-0 embeddings, halved, divided by the batch size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Bayesian personalised ranking (Rendle et al., UAI 2009).

    .. math::
        \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B}
        \log \sigma(\hat{y}_{ui} - \hat{y}_{uj})

    Args:
        pos: Scores of the positive items, shape ``[B]``.
        neg: Scores of the negatives, ``[B]`` or ``[B, N]`` (each negative
            paired with its row's positive; the mean runs over all pairs).
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return -F.logsigmoid(pos - neg).mean()


def bce_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Binary cross-entropy with positives labelled 1 and negatives 0.

    .. math::
        \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i)}
        \big[\log \sigma(\hat{y}_{ui})
        + \sum_{j} \log (1 - \sigma(\hat{y}_{uj}))\big]

    ``neg`` may be ``[B]`` or ``[B, N]``; each row's negative terms are
    summed, as in SASRec's objective.
    """
    pos_term = F.logsigmoid(pos)
    neg_term = F.logsigmoid(-neg)
    if neg.dim() == pos.dim() + 1:
        neg_term = neg_term.sum(-1)
    return -(pos_term + neg_term).mean()


def softmax_ce_loss(logits: Tensor, target: Tensor,
                    ignore_index: int = -100) -> Tensor:
    r"""Full softmax cross-entropy over all items.

    Args:
        logits: ``[B, num_items]`` scores.
        target: ``[B]`` item ids; entries equal to ``ignore_index`` (padding)
            are left out of the mean.
    """
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def sampled_softmax_loss(pos: Tensor, neg: Tensor,
                         log_q_pos: Tensor | None = None,
                         log_q_neg: Tensor | None = None,
                         temperature: float = 1.0) -> Tensor:
    r"""Sampled softmax cross-entropy: the positive against ``N`` sampled
    negatives, with optional log-Q correction for non-uniform samplers
    (Bengio & Senecal, 2008; Yi et al., RecSys 2019).

    .. math::
        \mathcal{L} = -\frac{1}{|B|} \sum_{u} \log
        \frac{e^{s_{ui}}}{e^{s_{ui}} + \sum_{j} e^{s_{uj}}},
        \quad s = \hat{y} / \tau - \log q

    Args:
        pos: ``[B]`` positive scores.
        neg: ``[B, N]`` or ``[N]`` (shared across the batch) negative scores.
        log_q_pos: Log sampling probability of each positive, ``[B]``.
        log_q_neg: Log sampling probability of each negative, shaped as
            ``neg``.
        temperature: Softmax temperature :math:`\tau`.
    """
    if neg.dim() == 1:
        neg = neg.unsqueeze(0).expand(pos.size(0), -1)
    pos = pos / temperature
    neg = neg / temperature
    if log_q_pos is not None:
        pos = pos - log_q_pos
    if log_q_neg is not None:
        neg = neg - log_q_neg
    logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)
    return -F.log_softmax(logits, dim=-1)[:, 0].mean()


def bpr_max_loss(pos: Tensor, neg: Tensor, mask: Tensor | None = None,
                 reg: float = 1.0) -> Tensor:
    r"""BPR-max (Hidasi & Karatzoglou, "Recurrent Neural Networks with
    Top-k Gains for Session-based Recommendations", CIKM 2018, Eq. 4), the
    GRU4Rec loss for many negatives:

    .. math::
        \mathcal{L} = -\log \sum_{j} s_j \, \sigma(r_i - r_j)
        + \lambda \sum_{j} s_j r_j^2, \qquad
        s_j = \frac{e^{r_j}}{\sum_{k} e^{r_k}}

    averaged over the rows, with :math:`r_i` the positive's score and
    :math:`r_j` the negatives' (the softmax weights :math:`s_j` run over the
    row's negatives only).

    Args:
        pos: ``[B]`` positive scores.
        neg: ``[B, N]`` negative scores.
        mask: ``[B, N]``, ``False`` where a column is not a negative of that
            row (e.g. the row's own target among in-batch negatives).
            Rows without any negative are left out of the mean.
        reg: :math:`\lambda`, the weight of the score regulariser.
    """
    if neg.dim() != 2 or pos.shape != neg.shape[:1]:
        raise ValueError(f'bpr_max_loss: expected pos [B] and neg [B, N], '
                         f'got {list(pos.shape)} and {list(neg.shape)}')
    if mask is None:
        mask = torch.ones_like(neg, dtype=torch.bool)
    weight = torch.softmax(neg.masked_fill(~mask, float('-inf')), dim=1)
    keep = mask.any(1)
    weight = torch.where(mask, weight, torch.zeros_like(weight))
    diff = torch.sigmoid(pos.unsqueeze(1) - neg)
    loss = -torch.log((weight * diff).sum(1) + 1e-24) \
        + reg * (weight * neg.pow(2)).sum(1)
    # the mean over the rows with a negative, by a masked sum (selecting
    # them would read their number back from the device)
    keep = keep.to(loss.dtype)
    return (loss * keep).sum() / keep.sum().clamp_min(1.0)


def margin_loss(pos: Tensor, neg: Tensor, margin: float = 1.0,
                mask: Tensor | None = None) -> Tensor:
    r"""Margin ranking loss (TransE, Bordes et al., NeurIPS 2013): every
    negative should score at least ``margin`` below its row's positive.

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(i, j) \in P}
        \max(0, \gamma - s_i + s_{ij})

    Args:
        pos: ``[B]`` positive scores.
        neg: ``[B]`` or ``[B, N]`` negative scores.
        margin: :math:`\gamma`.
        mask: ``[B, N]`` bool, ``False`` for pairs left out of the mean
            :math:`P` (e.g. an in-batch negative equal to the positive).
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    loss = torch.relu(margin - pos + neg)
    if mask is None:
        return loss.mean()
    # a masked sum, not a selection (which would read its size back)
    keep = mask.to(loss.dtype)
    return (loss * keep).sum() / keep.sum().clamp_min(1.0)


def l2_reg(*tensors: Tensor, batch_size: int | None = None) -> Tensor:
    r"""L2 penalty on the batch's layer-0 embeddings (LightGCN, Eq. 15, as
    in its reference code):

    .. math::
        \frac{1}{2|B|} \sum_{e \in \text{batch}} \lVert e \rVert_2^2

    Args:
        *tensors: Embedding rows used by the batch (users, positives,
            negatives).
        batch_size: Divisor :math:`|B|`; defaults to the first tensor's
            number of rows.
    """
    if not tensors:
        raise ValueError('l2_reg: pass at least one embedding tensor')
    if batch_size is None:
        batch_size = tensors[0].size(0)
    total = sum(t.pow(2).sum() for t in tensors)
    return 0.5 * total / max(batch_size, 1)


def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.2,
             keep: Tensor | None = None) -> Tensor:
    r"""InfoNCE between two views of the same rows (Oord et al., 2018), as
    used by SGL and SimGCL: row :math:`i` of ``z2`` is the positive of row
    :math:`i` of ``z1`` and every other row of ``z2`` a negative.

    .. math::
        \mathcal{L} = -\frac{1}{n} \sum_{i=1}^{n} \log
        \frac{\exp(\mathbf{z}'_i{}^\top \mathbf{z}''_i / \tau)}
        {\sum_{j=1}^{n} \exp(\mathbf{z}'_i{}^\top \mathbf{z}''_j / \tau)},
        \qquad \mathbf{z}' = \frac{\mathbf{z}_1}{\lVert \mathbf{z}_1
        \rVert}, \; \mathbf{z}'' = \frac{\mathbf{z}_2}{\lVert \mathbf{z}_2
        \rVert}

    (cosine similarities; one direction, ``z1`` against ``z2``, as in the
    SELFRec reference code).

    Args:
        z1: ``[n, d]`` first view.
        z2: ``[n, d]`` second view of the same ``n`` rows.
        temperature: Softmax temperature :math:`\tau > 0`.
        keep: Optional ``[n]`` bool mask: the loss over the kept rows
            only, each against the kept rows of ``z2`` (rows repeated in a
            batch kept once gives the loss of the distinct rows without
            selecting them, a size the host would have to read).
    """
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f'info_nce: z1 and z2 must both have shape [n, d], '
                         f'got {list(z1.shape)} and {list(z2.shape)}')
    if temperature <= 0:
        raise ValueError(f'info_nce: temperature must be > 0, got '
                         f'{temperature}')
    # 1/tau folded into the [n, d] normalisation, not the [n, n] logits
    z1 = z1 / (z1.norm(dim=-1, keepdim=True).clamp_min(1e-12) * temperature)
    z2 = F.normalize(z2, dim=-1)
    logits = z1 @ z2.t()
    target = torch.arange(z1.size(0), device=z1.device)
    if keep is None:
        return F.cross_entropy(logits, target)
    keep = keep.view(-1)
    logits = logits.masked_fill(~keep.view(1, -1), float('-inf'))
    loss = F.cross_entropy(logits, target, reduction='none')
    # rows left out have their own column masked (an infinite loss): zero
    # them, their gradient is zero too
    loss = torch.where(keep, loss, loss.new_zeros(()))
    return loss.sum() / keep.sum().clamp_min(1)
