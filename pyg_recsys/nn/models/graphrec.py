r"""GraphRec: graph neural networks for social recommendation (rating
prediction over user-item opinions and a trust network)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.nn.conv.graphrec_conv import GraphRecConv, he_init
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.fanout import padded_fanout


def _csr(src: Tensor, dst: Tensor, num_rows: int, num_cols: int,
         attr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(rowptr, col, attr)`` of the distinct edges ``src -> dst``
    sorted by ``(src, dst)``, each edge's attribute kept with it (what
    :meth:`~pyg_recsys.ops.csr.CSR.from_pairs` builds, plus the
    attribute)."""
    order = torch.argsort(src * num_cols + dst)
    rowptr = torch.zeros(num_rows + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(src, minlength=num_rows).cumsum(0)
    return rowptr, dst[order], attr[order]


class GraphRec(torch.nn.Module):
    r"""GraphRec from Fan et al., `"Graph Neural Networks for Social
    Recommendation" <https://arxiv.org/abs/1902.07243>`_ (WWW 2019):
    rating prediction from the user-item graph with opinions (ratings)
    and the users' social (trust) graph.

    * User modelling: the *item-space* vector :math:`\mathbf{h}^I_i`
      aggregates the user's rated items, each combined with the rating's
      opinion embedding :math:`\mathbf{e}_r`, with attention queried by
      the user's embedding :math:`\mathbf{p}_i`
      (:class:`~pyg_recsys.nn.conv.GraphRecConv`, ``opinion=True``); the
      *social-space* vector :math:`\mathbf{h}^S_i` aggregates the
      item-space vectors :math:`\mathbf{h}^I_o` of the user's social
      neighbours with attention (``opinion=False``); the user's latent
      factor is an MLP of :math:`[\mathbf{h}^I_i \oplus \mathbf{h}^S_i]`.
    * Item modelling: :math:`\mathbf{z}_j` aggregates the item's raters,
      each combined with the rating's opinion embedding, with attention
      queried by the item's embedding :math:`\mathbf{q}_j`.
    * Rating: an MLP of :math:`[\mathbf{h}_i \oplus \mathbf{z}_j]` with
      three hidden layers (:math:`d, d/2, d/4`), its output bias starting
      at the mean training rating; loss: mean squared error.

    The graphs are the *training* ratings only (and the whole trust
    network, symmetrised, self-links dropped).  Every neighbourhood is a
    padded fixed fan-out (:func:`~pyg_recsys.ops.fanout.padded_fanout`:
    at most ``K`` neighbours drawn without replacement, all of them when
    fewer), drawn afresh every training epoch from ``(seed, epoch)``
    (:meth:`set_epoch`), and once, from ``seed``, for evaluation; so a
    batch touches :math:`B (1 + K_s) K_i + B K_u` edges whatever the size
    of the graph.  ``social=False`` leaves out the social aggregation
    (the paper's GraphRec-SN ablation).

    Dropout (``dropout``) is applied to the hidden layers of the two MLPs
    in training.

    Args:
        num_users: Number of users.
        num_items: Number of items.
        edge_index: ``[2, E]`` training (user, item) pairs.
        rating: ``[E]`` their ratings; each distinct value is an opinion
            with its embedding.
        trust: ``[2, T]`` (user, user) links (either direction).
        embedding_dim: :math:`d` (the paper's 64).
        num_neighbors: :math:`(K_i, K_s, K_u)`: rated items per user,
            social neighbours per user, raters per item.
        dropout: Dropout rate in training.
        social: Use the social aggregation.
        seed: Seed of the sampled neighbourhoods.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 rating: Tensor, trust: Tensor | None = None,
                 embedding_dim: int = 64,
                 num_neighbors: Sequence[int] = (20, 10, 20),
                 dropout: float = 0.5,
                 social: bool = True, seed: int = 0) -> None:
        super().__init__()
        edge_index = torch.as_tensor(edge_index).long()
        rating = torch.as_tensor(rating).float().view(-1)
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or \
                edge_index.size(1) == 0:
            raise ValueError(f'GraphRec: edge_index must be a non-empty '
                             f'[2, E] tensor, got shape '
                             f'{list(edge_index.shape)}')
        if rating.numel() != edge_index.size(1):
            raise ValueError(f'GraphRec: one rating per edge: '
                             f'{edge_index.size(1)} edges, '
                             f'{rating.numel()} ratings')
        u, i = edge_index
        if int(u.min()) < 0 or int(u.max()) >= num_users or \
                int(i.min()) < 0 or int(i.max()) >= num_items:
            raise ValueError(f'GraphRec: edge ids must lie in [0, '
                             f'{num_users}) x [0, {num_items})')
        num_neighbors = tuple(int(k) for k in num_neighbors)
        if len(num_neighbors) != 3 or min(num_neighbors) < 1:
            raise ValueError(f'GraphRec: num_neighbors must be three counts '
                             f'>= 1 (items per user, social neighbours per '
                             f'user, raters per item), got '
                             f'{list(num_neighbors)}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'GraphRec: dropout must lie in [0, 1), got '
                             f'{dropout}')
        if not torch.isfinite(rating).all():
            raise ValueError('GraphRec: ratings must be finite')
        self.num_users, self.num_items = num_users, num_items
        self.embedding_dim = d = embedding_dim
        self.k_item, self.k_social, self.k_user = num_neighbors
        self.dropout, self.social, self.seed = dropout, social, seed
        levels = torch.unique(rating)
        self.register_buffer('levels', levels)
        level = torch.bucketize(rating, levels)
        self.user = Embedding(num_users, d)
        self.item = Embedding(num_items, d)
        self.opinion = Embedding(levels.numel(), d)
        self.item_agg = GraphRecConv(d, opinion=True)
        self.user_agg = GraphRecConv(d, opinion=True)
        self.social_agg = (GraphRecConv(d, opinion=False) if social
                           else None)
        self.fuse = torch.nn.ModuleList([
            torch.nn.Linear(2 * d if social else d, d),
            torch.nn.Linear(d, d)])
        sizes = [2 * d, d, max(d // 2, 1), max(d // 4, 1)]
        self.mlp = torch.nn.ModuleList([
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = torch.nn.Linear(sizes[-1], 1)
        self.mean_rating = float(rating.mean())
        # the graphs: user -> items and item -> users with opinion levels
        for name, (rowptr, col, attr) in {
                'ui': _csr(u, i, num_users, num_items, level),
                'iu': _csr(i, u, num_items, num_users, level)}.items():
            self.register_buffer(f'{name}_rowptr', rowptr, persistent=False)
            self.register_buffer(f'{name}_col', col, persistent=False)
            self.register_buffer(f'{name}_level', attr, persistent=False)
        if trust is None:
            trust = torch.empty(2, 0, dtype=torch.long)
        trust = torch.as_tensor(trust).long()
        if trust.numel() and (int(trust.min()) < 0
                              or int(trust.max()) >= num_users):
            raise ValueError(f'GraphRec: trust ids must lie in [0, '
                             f'{num_users})')
        a, b = torch.cat([trust[0], trust[1]]), torch.cat([trust[1],
                                                           trust[0]])
        social = CSR.from_pairs(a[a != b], b[a != b], num_users, num_users)
        self.register_buffer('uu_rowptr', social.rowptr, persistent=False)
        self.register_buffer('uu_col', social.col, persistent=False)
        self.tables: dict[str, dict[str, Tensor]] = {}
        self._epoch_drawn: int | None = None
        self.reset_parameters()

    # -- parameters and neighbourhoods ---------------------------------

    def reset_parameters(self) -> None:
        """Embeddings N(0, 1) (as the reference), He-initialised layers
        where a ReLU follows, the output bias at the mean training rating;
        the neighbourhoods of ``seed``."""
        for emb in (self.user, self.item, self.opinion):
            torch.nn.init.normal_(emb.weight, std=1.0)
        for conv in (self.item_agg, self.user_agg, self.social_agg):
            if conv is not None:
                conv.reset_parameters()
        for lin in [*self.fuse, *self.mlp]:
            he_init(lin)
        self.out.reset_parameters()
        torch.nn.init.constant_(self.out.bias, self.mean_rating)
        self.sample_neighbors(0)

    def _draw(self, seed: int) -> dict[str, Tensor]:
        gen = torch.Generator(device=self.ui_rowptr.device).manual_seed(seed)
        return {'ui': padded_fanout(self.ui_rowptr, self.k_item, gen),
                'iu': padded_fanout(self.iu_rowptr, self.k_user, gen),
                'uu': padded_fanout(self.uu_rowptr, self.k_social, gen)}

    def sample_neighbors(self, epoch: int = 0) -> None:
        """Draws the training neighbourhoods of ``epoch`` and, the first
        time, the evaluation ones."""
        self.tables['train'] = self._draw(self.seed * 1_000_003 + epoch + 1)
        if 'eval' not in self.tables:  # (a device move empties the tables)
            self.tables['eval'] = self._draw(self.seed * 1_000_003)
        self._epoch_drawn = epoch

    def set_epoch(self, epoch: int) -> None:
        """Draws the neighbourhoods of ``epoch`` (called by the
        :class:`~pyg_recsys.train.Trainer`)."""
        if epoch != self._epoch_drawn:
            self.sample_neighbors(epoch)

    def _apply(self, fn: Any, recurse: bool = True) -> GraphRec:
        out = super()._apply(fn, recurse)
        # the tables follow the buffers (a device move): drawn again there
        self.tables = {}
        self.sample_neighbors(self._epoch_drawn or 0)
        return out

    def _table(self) -> dict[str, Tensor]:
        return self.tables['train' if self.training else 'eval']

    # -- representations -----------------------------------------------

    def item_space(self, users: Tensor) -> Tensor:
        r""":math:`\mathbf{h}^I` of ``users`` ``[N]`` -> ``[N, d]``."""
        edge = self._table()['ui'][users]
        pos = edge.clamp(min=0)
        return self.item_agg.forward_dense(
            self.item(self.ui_col[pos]), self.user(users), edge >= 0,
            (self.opinion.weight, self.ui_level[pos]))

    def user_factor(self, users: Tensor) -> Tensor:
        r""":math:`\mathbf{h}_i` of ``users`` ``[B]`` -> ``[B, d]``."""
        h = self.item_space(users)
        if self.social_agg is not None:
            edge = self._table()['uu'][users]
            friends = self.uu_col[edge.clamp(min=0)].view(-1)
            if ops_device.sync_free(friends.device):
                h_friends = self.item_space(friends)
            else:  # each distinct friend once (fewer messages on the CPU)
                uniq, inverse = torch.unique(friends, return_inverse=True)
                h_friends = self.item_space(uniq)[inverse]
            h_friends = h_friends.view(*edge.shape, -1)
            h_social = self.social_agg.forward_dense(
                h_friends, self.user(users), edge >= 0)
            h = torch.cat([h, h_social], dim=-1)
        for lin in self.fuse:
            h = F.dropout(F.relu(lin(h)), self.dropout, self.training)
        return h

    def item_factor(self, items: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_j` of ``items`` ``[B]`` -> ``[B, d]``."""
        edge = self._table()['iu'][items]
        pos = edge.clamp(min=0)
        return self.user_agg.forward_dense(
            self.user(self.iu_col[pos]), self.item(items), edge >= 0,
            (self.opinion.weight, self.iu_level[pos]))

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings ``[B]`` of the pairs."""
        g = torch.cat([self.user_factor(users), self.item_factor(items)],
                      dim=-1)
        for lin in self.mlp:
            g = F.dropout(F.relu(lin(g)), self.dropout, self.training)
        return self.out(g).squeeze(-1)

    def loss(self, batch: Any) -> Tensor:
        """Mean squared error of a batch of rated pairs (``user``,
        ``item``, ``label`` the rating)."""
        pred = self(batch.user, batch.item)
        return F.mse_loss(pred, batch.label.to(pred.dtype))

    @torch.no_grad()
    def predict(self, users: Tensor, items: Tensor,
                chunk: int = 4096) -> Tensor:
        """Predicted ratings (evaluation neighbourhoods when in eval mode),
        ``chunk`` pairs at a time."""
        device = self.user.weight.device
        users, items = users.to(device), items.to(device)
        return torch.cat([self(users[s:s + chunk], items[s:s + chunk])
                          for s in range(0, users.numel(), chunk)]) \
            if users.numel() else users.new_zeros(0, dtype=torch.float)

    def extra_repr(self) -> str:
        return (f'num_users={self.num_users}, num_items={self.num_items}, '
                f'embedding_dim={self.embedding_dim}, opinions='
                f'{self.levels.numel()}, K=({self.k_item}, {self.k_social}, '
                f'{self.k_user}), social={self.social}')


__all__ = ['GraphRec']
