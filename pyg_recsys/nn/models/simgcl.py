r"""SimGCL (Yu et al., SIGIR 2022): LightGCN with noise-based contrastive
views."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_recsys.data.loader import PairBatch
from pyg_recsys.loss import info_nce, l2_reg
from pyg_recsys.nn.models.base import GraphEmbeddingRecommender
from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.perturb import perturbed_propagate
from pyg_recsys.ops.propagate import propagate


class SimGCL(GraphEmbeddingRecommender):
    r"""The SimGCL recommender from `"Are Graph Augmentations Necessary?
    Simple Graph Contrastive Learning for Recommendation"
    <https://arxiv.org/abs/2112.08679>`_ (Yu et al., SIGIR 2022).

    The encoder is LightGCN over the symmetric normalised adjacency
    :math:`\mathbf{A}` (:class:`~pyg_recsys.ops.adj.NormAdj`), averaged over
    layers :math:`1..K` (layer 0 left out, as in the reference code):

    .. math::
        \mathbf{E} = \frac{1}{K} \sum_{k=1}^{K} \mathbf{A}^k
        \mathbf{E}^{(0)}, \qquad \hat{y}_{ui} = \mathbf{e}_u^\top
        \mathbf{e}_i.

    Two contrastive views :math:`\mathbf{E}'`, :math:`\mathbf{E}''` add
    fresh uniform noise of radius :math:`\epsilon` after every layer,
    :math:`\mathbf{H}^{(k)} = \mathbf{A}\mathbf{H}^{(k-1)} +
    \boldsymbol{\Delta}^{(k)}` with :math:`\boldsymbol{\Delta}^{(k)} =
    \epsilon \operatorname{sign}(\mathbf{A}\mathbf{H}^{(k-1)}) \odot
    \overline{\mathbf{U}}^{(k)}` and :math:`\overline{\mathbf{U}}^{(k)}`
    row-normalised :math:`U(0, 1)` draws
    (:func:`~pyg_recsys.ops.perturb.perturbed_propagate`).  A batch
    :math:`B` of (user, positive, negative) triples is trained on

    .. math::
        \mathcal{L} = \mathcal{L}_{\text{BPR}}(\mathbf{E})
        + \lambda_2 \, \mathcal{L}_{\text{L2}}
        + \lambda \big(\operatorname{InfoNCE}_\tau(\mathbf{E}'_{\mathcal{U}_B},
        \mathbf{E}''_{\mathcal{U}_B}) + \operatorname{InfoNCE}_\tau(
        \mathbf{E}'_{\mathcal{I}_B}, \mathbf{E}''_{\mathcal{I}_B})\big),

    with :math:`\mathcal{U}_B` the batch's distinct users,
    :math:`\mathcal{I}_B` its distinct positive items (negatives are not
    contrasted), :func:`~pyg_recsys.loss.info_nce` with cosine similarity
    and the other rows of the same view as negatives, and
    :math:`\mathcal{L}_{\text{L2}} = \frac{1}{2|B|}\sum
    \lVert\mathbf{e}^{(0)}\rVert^2` over the batch's users, positives and
    negatives (:func:`~pyg_recsys.loss.l2_reg`).  Evaluation
    (:meth:`forward`, :meth:`score`, :meth:`recommend`) uses the clean
    :math:`\mathbf{E}`, cached in evaluation mode.

    Noise is drawn from torch's global generator: seed it (the
    :class:`~pyg_recsys.train.Trainer` does and checkpoints its CPU state,
    so CPU runs resume exactly).

    Speed: the clean view and both noisy views come out of one call with a
    shared first layer, side-by-side products for the noisy views, the
    last layer only for the batch's rows and a single backward pass for the
    three (the views share LightGCN's Jacobian, see
    :mod:`pyg_recsys.ops.perturb`).  With :math:`K = 2` a step makes one
    full sparse-dense product forward and one backward, as a LightGCN step
    does; what it adds is InfoNCE over about :math:`2|B|` rows and the
    noise draws (``benchmarks/cf_speed_gowalla.py`` times it against
    LightGCN).

    Deviations from the reference code (SELFRec ``model/graph/SimGCL.py``):
    the L2 term is the library's (squared norms of the layer-0 rows of
    users, positives and negatives, halved, over :math:`|B|`) where SELFRec
    adds :math:`\lambda_2 (\lVert\mathbf{E}_u\rVert_F +
    \lVert\mathbf{E}_i\rVert_F) / |B|` on the *propagated* rows of users
    and positives (unsquared norms) and the original TensorFlow code (QRec)
    halved squared norms of the propagated rows, summed; with
    :math:`\lambda_2 = 10^{-4}` all are small next to the other terms.
    BPR uses :math:`\log\sigma` where SELFRec takes
    :math:`\log(\sigma + 10^{-5})`.  QRec sums the BPR and InfoNCE terms
    over the batch; SELFRec and this class average them.  The
    initialisation is the reference's: Xavier-uniform, for the user and the
    item table separately (bounds :math:`\sqrt{6 / (U + d)}` and
    :math:`\sqrt{6 / (I + d)}`).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from 0.
        embedding_dim: Embedding size :math:`d`.
        num_layers: Number of layers :math:`K \ge 1`.
        reg_weight: L2 weight :math:`\lambda_2`.
        cl_weight: Weight :math:`\lambda` of the contrastive terms; ``0``
            trains the plain encoder with BPR (no noise is drawn).
        eps: Noise radius :math:`\epsilon`.
        cl_temperature: InfoNCE temperature :math:`\tau` (the pair-loss
            ``temperature`` below is another setting).
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 embedding_dim: int = 64, num_layers: int = 2,
                 reg_weight: float = 1e-4, cl_weight: float = 0.2,
                 eps: float = 0.1, cl_temperature: float = 0.2, *,
                 pair_loss: str = 'bpr', temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, edge_index, embedding_dim,
                         reg_weight, pair_loss=pair_loss,
                         temperature=temperature)
        if num_layers < 1:
            raise ValueError(f'SimGCL: num_layers must be >= 1 (the final '
                             f'embedding averages layers 1..K), got '
                             f'{num_layers}')
        if cl_weight < 0 or eps < 0:
            raise ValueError(f'SimGCL: cl_weight and eps must be >= 0, got '
                             f'{cl_weight} and {eps}')
        if cl_temperature <= 0:
            raise ValueError(f'SimGCL: cl_temperature must be > 0, got '
                             f'{cl_temperature}')
        self.num_layers = num_layers
        self.cl_weight = cl_weight
        self.eps = eps
        self.cl_temperature = cl_temperature
        self.alpha = (0.0, ) + (1.0 / num_layers, ) * num_layers
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Xavier-uniform initialisation of the user and the item table,
        each on its own (as the reference code does)."""
        self.xavier_tables_()

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Clean final embeddings (no noise) of node ids ``index`` (users
        ``0 .. U-1``, items ``U + i``; any shape), or of all nodes."""
        return propagate(self.adj, self.embedding.weight, self.num_layers,
                         self.alpha, index)

    def loss(self, batch: PairBatch) -> Tensor:
        r"""BPR on the clean view, L2 on the layer-0 rows and
        :math:`\lambda` times the users' and positive items' InfoNCE
        between two noisy views (see the class docstring).

        Args:
            batch: ``user`` and ``pos`` ``[B]``, ``neg`` ``[B]`` or
                ``[B, N]`` (item ids from 0), or with ``batch.shared``
                ``[N]`` items scored by every user; pairs where
                ``batch.neg_mask`` is False are left out (as in
                :meth:`EmbeddingRecommender.loss`).
        """
        user, pos, neg, mask, shared = self._unpack(batch)
        B, U = user.numel(), self.num_users
        num_bpr = 2 * B + neg.numel()
        ids = torch.cat([user, pos + U, neg.reshape(-1) + U])
        if ops_device.sync_free(ids.device):
            return self._loss_sync_free(ids, user, pos, neg, mask, shared)
        nodes, inv = torch.unique(ids, return_inverse=True)
        m = nodes.numel()
        contrast = self.cl_weight > 0
        sel = inv
        if contrast:
            # Positions in `nodes` of the distinct users and distinct
            # positive items (a mask, no second sort); ascending ids.
            at_user = torch.zeros(m, dtype=torch.bool, device=inv.device)
            at_user[inv[:B]] = True
            at_pos = torch.zeros_like(at_user)
            at_pos[inv[B:2 * B]] = True
            user_rows = at_user.nonzero().view(-1)
            cl_rows = torch.cat([user_rows, at_pos.nonzero().view(-1)])
            # view 0 (clean) at the BPR rows, views 1 and 2 (noisy) at the
            # InfoNCE rows: one gather, so the backward scatters once
            sel = torch.cat([inv, cl_rows + m, cl_rows + 2 * m])
        eps = (0.0, self.eps, self.eps) if contrast else (0.0, )
        # One call over the distinct nodes of the batch for all views.
        views, layer0 = perturbed_propagate(
            self.adj, self.embedding.weight, self.num_layers, eps,
            self.alpha, nodes, return_layer0=True)
        rows = views.view(-1, views.size(-1)).index_select(0, sel)
        e_u, e_p, e_n = rows[:num_bpr].split([B, B, neg.numel()])
        loss = self._batch_loss(e_u, e_p, e_n, neg, mask, shared)
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_reg(
                layer0.index_select(0, inv), batch_size=B)
        if contrast:
            v1, v2 = rows[num_bpr:].split(cl_rows.numel())
            n = user_rows.numel()
            cl_loss = (info_nce(v1[:n], v2[:n], self.cl_temperature) +
                       info_nce(v1[n:], v2[n:], self.cl_temperature))
            loss = loss + self.cl_weight * cl_loss
        return loss

    def _loss_sync_free(self, ids: Tensor, user: Tensor, pos: Tensor,
                        neg: Tensor, mask: Tensor | None, shared: bool
                        ) -> Tensor:
        """:meth:`loss` without reading a size back from the device: the
        views of all nodes, gathered at the batch's rows as they come, and
        the InfoNCE of the distinct users and positives through a mask of
        first occurrences instead of ``torch.unique``."""
        B = user.numel()
        contrast = self.cl_weight > 0
        eps = (0.0, self.eps, self.eps) if contrast else (0.0, )
        views, layer0 = perturbed_propagate(
            self.adj, self.embedding.weight, self.num_layers, eps,
            self.alpha, ids, return_layer0=True)
        e_u, e_p, e_n = views[0].split([B, B, neg.numel()])
        loss = self._batch_loss(e_u, e_p, e_n, neg, mask, shared)
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_reg(layer0, batch_size=B)
        if contrast:
            v1, v2 = views[1], views[2]
            cl_loss = (info_nce(v1[:B], v2[:B], self.cl_temperature,
                                keep=_first_occurrence(user)) +
                       info_nce(v1[B:2 * B], v2[B:2 * B],
                                self.cl_temperature,
                                keep=_first_occurrence(pos)))
            loss = loss + self.cl_weight * cl_loss
        return loss

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, '
                f'embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers}, eps={self.eps})')


def _first_occurrence(ids: Tensor) -> Tensor:
    """``[n]`` bool: ``True`` at the first occurrence of each id."""
    order = torch.sort(ids, stable=True)[1]
    ordered = ids.index_select(0, order)
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    keep = torch.empty_like(first)
    keep[order] = first
    return keep
