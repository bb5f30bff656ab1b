r"""Shared surface of the session / sequence recommenders (SR-GNN, TAGNN,
GRU4Rec, SASRec).

All four read a batch of session graphs (:class:`~pyg_recsys.data.session.
SessionData` batched by PyG, or by :class:`~pyg_recsys.data.session.
SessionLoader`), encode each example into a vector and score it against one
item table.  What differs is the encoder; the losses, scoring and
candidate scoring live here so the one training loop
(:class:`~pyg_recsys.train.Trainer`) and the one evaluator
(:class:`~pyg_recsys.train.NextItemEvaluator`) serve every model.

A batch holds either one target per example (``y`` of shape ``[B]``, the
item after the last step: SR-GNN's prefix examples, and every evaluation
batch) or a target after every step (``y`` of shape ``[sum L]``, built with
``mode='sequence'``: SASRec / GRU4Rec training).  The second needs an
encoder that is causal, i.e. implements :meth:`encode_steps`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.data.session import step_batch
from pyg_recsys.loss import bce_loss, bpr_max_loss
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import masked_topk


def num_examples(batch) -> int:
    """Number of examples (graphs) in a batch of session graphs."""
    return int(batch.length.numel())


def session_items(batch, num_items: int) -> CSR:
    """The items of each example's input sequence, one CSR row per
    example (``recommend(..., exclude='session')``)."""
    rows = step_batch(batch).cpu()
    return CSR.from_pairs(rows, batch.seq.cpu(), num_examples(batch),
                          num_items)


def on_device(batch, device: torch.device):
    """``batch`` on ``device``: itself when it is there, else a moved copy
    (PyG's ``Batch.to`` moves in place, and the caller's batch stays
    where it was)."""
    if batch.length.device == device:
        return batch
    return batch.clone().to(device)


def check_candidates(name: str, items: Tensor, num_rows: int) -> None:
    """Checks candidate ``items`` are ``[n]`` or ``[num_rows, n]``."""
    if items.dim() == 1 or (items.dim() == 2 and items.size(0) == num_rows):
        return
    raise ValueError(f'{name}.score: items must be [n] candidates shared by '
                     f'the examples or [B, n] per example (B={num_rows}), '
                     f'got shape {tuple(items.shape)}')


def per_step_targets(batch) -> bool:
    """``True`` when ``batch.y`` holds a target after every step."""
    n = num_examples(batch)
    total = int(batch.y.numel())
    if total == n:
        return False
    if total == batch.seq.numel():  # one entry of seq per step
        return True
    raise ValueError(f'session batch: y has {total} entries for {n} '
                     f'examples with {batch.seq.numel()} steps; give '
                     f'one target per example or one per step')


class SessionRecommender(torch.nn.Module):
    r"""Base class of next-item recommenders over one item table
    :math:`\mathbf{V} \in \mathbb{R}^{I \times d}`.

    Subclasses implement :meth:`encode` (one vector per example, the
    session after its last step) and, if the encoder is causal,
    :meth:`encode_steps` (one vector after every step).  The next-item score
    of item :math:`i` is :math:`\mathbf{s}^\top \mathbf{v}_i`; TAGNN
    overrides :meth:`score` because its session vector depends on the
    candidate.

    The item table has one extra row, index ``num_items``, the padding item
    of padded sequences (``padding_idx``: zero and never updated); it is
    never scored.

    Losses (``loss=``):

    * ``'ce'``: softmax cross-entropy over all items (SR-GNN, TAGNN; the
      stronger choice for SASRec and GRU4Rec).
    * ``'bce'``: binary cross-entropy of the target against one item drawn
      uniformly among the others (SASRec's objective).
    * ``'bpr-max'``: BPR-max (Hidasi & Karatzoglou, CIKM 2018) against the
      other examples' targets in the batch (GRU4Rec's mini-batch negatives)
      with score regularisation ``bpr_max_reg``.

    Args:
        num_items: Number of items :math:`I`.
        embedding_dim: :math:`d`.
        loss: ``'ce'``, ``'bce'`` or ``'bpr-max'``.
        bpr_max_reg: :math:`\lambda` of BPR-max's score regulariser.
    """

    LOSSES = ('ce', 'bce', 'bpr-max')
    #: Whether :meth:`encode_steps` is implemented (causal encoder).
    causal = False

    def __init__(self, num_items: int, embedding_dim: int = 64,
                 loss: str = 'ce', bpr_max_reg: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(num_items, bool) or not isinstance(num_items, int) \
                or num_items < 1:
            raise ValueError(f'{name}: num_items must be a positive integer, '
                             f'got {num_items!r}')
        if isinstance(embedding_dim, bool) \
                or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f'{name}: embedding_dim must be a positive '
                             f'integer, got {embedding_dim!r}')
        if loss not in self.LOSSES:
            raise ValueError(f"{name}: unknown loss '{loss}'; choose one of "
                             f'{self.LOSSES}')
        if bpr_max_reg < 0:
            raise ValueError(f'{name}: bpr_max_reg must be >= 0, got '
                             f'{bpr_max_reg}')
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.loss_name = loss
        self.bpr_max_reg = bpr_max_reg
        self.item_emb = Embedding(num_items + 1, embedding_dim,
                                  padding_idx=num_items)

    @property
    def padding_idx(self) -> int:
        """Item id used for padding (``num_items``)."""
        return self.num_items

    def item_weight(self) -> Tensor:
        """``[I, d]`` output item embeddings (the padding row left out)."""
        return self.item_emb.weight[:self.num_items]

    def reset_uniform_(self, stdv: float | None = None) -> None:
        r"""Draws every parameter from :math:`U(-a, a)`, :math:`a =
        1/\sqrt{d}` (SR-GNN's and TAGNN's reference initialisation), and
        zeroes the padding row."""
        stdv = 1.0 / math.sqrt(self.embedding_dim) if stdv is None else stdv
        for weight in self.parameters():
            torch.nn.init.uniform_(weight, -stdv, stdv)
        with torch.no_grad():
            self.item_emb.weight[self.padding_idx].zero_()

    # -- encoders (subclasses) -------------------------------------------
    def encode(self, batch) -> Tensor:
        """``[B, d]`` session vector of each example after its last step."""
        raise NotImplementedError(
            f'{type(self).__name__}.encode: a SessionRecommender must '
            f'implement encode(batch) -> [B, d]')

    def encode_steps(self, batch) -> Tensor:
        """``[sum L, d]`` session vector after every step (causal models)."""
        raise ValueError(
            f'{type(self).__name__}: this model is not causal, so it cannot '
            f'train on a target after every step; build the training '
            f"examples with SessionGraphs(mode='prefix')")

    # -- scoring ---------------------------------------------------------
    def score(self, batch, items: Tensor | None = None) -> Tensor:
        """Next-item scores: ``[B, I]`` over all items, ``[B, n]`` for
        ``n`` candidate ``items`` shared by the examples (shape ``[n]``) or
        per example (shape ``[B, n]``).  A batch elsewhere than the
        model is copied to the model's device."""
        device = self.item_emb.weight.device
        batch = on_device(batch, device)
        h = self.encode(batch)
        if items is None:
            return h @ self.item_weight().t()
        check_candidates(type(self).__name__, items, h.size(0))
        if items.dim() == 1:
            return h @ self.item_emb(items).t()
        return (self.item_emb(items) * h.unsqueeze(1)).sum(-1)

    @torch.no_grad()
    def recommend(self, batch, k: int, exclude: CSR | str | None = None
                  ) -> tuple[Tensor, Tensor]:
        """Top-``k`` next items of each example: ``(scores, items)``, both
        ``[B, k]``, best first.

        Args:
            batch: Session graphs (e.g. ``SessionGraphs.collate``).
            k: Number of items.
            exclude: Items never recommended: ``'session'`` (each
                session's own items, for "what else" recommendations), a
                :class:`~pyg_recsys.ops.csr.CSR` with one row per example,
                or ``None`` (the next-item protocol: a session's items may
                come next).  Where fewer than ``k`` items are left, the
                tail is item ``-1`` with score ``-inf``.
        """
        if not 1 <= k <= self.num_items:
            raise ValueError(f'{type(self).__name__}.recommend: k must be in '
                             f'[1, {self.num_items}], got {k}')
        batch = on_device(batch, self.item_emb.weight.device)
        scores = self.score(batch)
        if exclude is None:
            return scores.topk(k, dim=1)
        if isinstance(exclude, str):
            if exclude != 'session':
                raise ValueError(f"{type(self).__name__}.recommend: exclude "
                                 f"must be None, 'session' or a CSR, got "
                                 f"{exclude!r}")
            exclude = session_items(batch, self.num_items)
        rows = torch.arange(scores.size(0), device=scores.device)
        return masked_topk(scores, k, rows, exclude)

    # -- training --------------------------------------------------------
    def loss(self, batch) -> Tensor:
        """The training objective of a batch (see the class docstring)."""
        y = batch.y.view(-1)
        if per_step_targets(batch):
            # non-causal encoders raise an explanatory error here
            return self._loss_from_vectors(self.encode_steps(batch), y)
        if self.loss_name == 'ce':  # through score(): TAGNN overrides it
            return F.cross_entropy(self.score(batch), y)
        return self._loss_from_vectors(self.encode(batch), y)

    def _loss_from_vectors(self, h: Tensor, y: Tensor) -> Tensor:
        """The loss of session vectors ``h`` ``[M, d]`` with targets
        ``y`` ``[M]``."""
        if self.loss_name == 'ce':
            return F.cross_entropy(h @ self.item_weight().t(), y)
        pos = (h * self.item_emb(y)).sum(-1)
        if self.loss_name == 'bce':
            neg_items = self.sample_negatives(y)
            neg = (h * self.item_emb(neg_items)).sum(-1)
            return bce_loss(pos, neg)
        # bpr-max against the other targets of the batch
        neg = h @ self.item_emb(y).t()  # [M, M]
        mask = y.unsqueeze(0) != y.unsqueeze(1)
        return bpr_max_loss(pos, neg, mask, reg=self.bpr_max_reg)

    def sample_negatives(self, y: Tensor) -> Tensor:
        """One item per target, uniform over the items other than it."""
        if self.num_items < 2:
            raise ValueError(f'{type(self).__name__}: sampling a negative '
                             f'needs at least 2 items')
        neg = torch.randint(0, self.num_items - 1, y.shape, device=y.device)
        return neg + (neg >= y).long()  # skip the target itself

    def extra_repr(self) -> str:
        return (f'num_items={self.num_items}, '
                f'embedding_dim={self.embedding_dim}, loss={self.loss_name}')


class PaddedSessionRecommender(SessionRecommender):
    """A causal encoder over padded sequences (GRU4Rec, SASRec).

    Subclasses implement :meth:`encode_padded`, the ``[B, L, d]`` output
    after every step of the left-aligned padded batch
    (:func:`~pyg_recsys.data.session.to_padded`) and its ``[B, L]`` mask of
    real steps; :meth:`encode` and :meth:`encode_steps` read it at the last
    step and at every real step.
    """

    causal = True

    def encode_padded(self, batch) -> tuple[Tensor, Tensor]:
        """``([B, L, d] outputs, [B, L] mask)`` of the padded batch."""
        raise NotImplementedError(
            f'{type(self).__name__}.encode_padded: a PaddedSessionRecommender '
            f'must implement encode_padded(batch) -> (out, mask)')

    def encode(self, batch) -> Tensor:
        """``[B, d]`` output after the last step of each example."""
        out, _ = self.encode_padded(batch)
        index = torch.arange(out.size(0), device=out.device)
        return out[index, batch.length - 1]

    def encode_steps(self, batch) -> Tensor:
        """``[sum L, d]`` output after every step, in the order of
        ``batch.seq``."""
        out, _ = self.encode_padded(batch)
        # row-major positions of the real steps (no boolean mask: its
        # size would be read back from the device)
        length = batch.length
        start = length.cumsum(0) - length
        step = step_batch(batch)
        pos = torch.arange(step.numel(), device=step.device) - start[step]
        flat = step * out.size(1) + pos
        return out.reshape(-1, out.size(-1)).index_select(0, flat)

    def forward(self, batch) -> Tensor:
        """Alias of :meth:`encode`."""
        return self.encode(batch)


__all__ = ['SessionRecommender', 'PaddedSessionRecommender', 'num_examples',
           'per_step_targets', 'session_items', 'check_candidates']
