r"""Biased matrix factorisation for rating prediction (Koren et al.,
IEEE Computer 2009)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.loss import l2_reg
from pyg_recsys.nn.embedding import Embedding


class BiasedMF(torch.nn.Module):
    r"""Biased matrix factorisation from Koren, Bell and Volinsky,
    `"Matrix Factorization Techniques for Recommender Systems"
    <https://doi.org/10.1109/MC.2009.263>`_ (IEEE Computer 2009): the
    rating baseline GraphRec is compared with,

    .. math::
        \hat{r}_{ui} = \mu + b_u + b_i + \mathbf{p}_u^\top \mathbf{q}_i ,

    :math:`\mu` the mean training rating (fixed), trained on the mean
    squared error plus ``reg_weight`` times half the squared norm of the
    batch's factors and biases per pair (:func:`~pyg_recsys.loss.l2_reg`).

    Args:
        num_users: Number of users.
        num_items: Number of items.
        embedding_dim: Factor size.
        mean_rating: :math:`\mu`.
        reg_weight: L2 weight.
    """

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, mean_rating: float = 0.0,
                 reg_weight: float = 0.05) -> None:
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f'BiasedMF: needs users and items, got '
                             f'{num_users} and {num_items}')
        self.num_users, self.num_items = num_users, num_items
        self.embedding_dim = embedding_dim
        self.mean_rating = float(mean_rating)
        self.reg_weight = reg_weight
        self.user = Embedding(num_users, embedding_dim)
        self.item = Embedding(num_items, embedding_dim)
        self.user_bias = Embedding(num_users, 1)
        self.item_bias = Embedding(num_items, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Factors N(0, 0.1^2), biases 0."""
        torch.nn.init.normal_(self.user.weight, std=0.1)
        torch.nn.init.normal_(self.item.weight, std=0.1)
        torch.nn.init.zeros_(self.user_bias.weight)
        torch.nn.init.zeros_(self.item_bias.weight)

    def _parts(self, users: Tensor, items: Tensor
               ) -> tuple[Tensor, list[Tensor]]:
        p, q = self.user(users), self.item(items)
        bu, bi = self.user_bias(users), self.item_bias(items)
        pred = self.mean_rating + (bu + bi).squeeze(-1) + (p * q).sum(-1)
        return pred, [p, q, bu, bi]

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings ``[B]``."""
        return self._parts(users, items)[0]

    def loss(self, batch: Any) -> Tensor:
        """Mean squared error of a batch of rated pairs (``user``,
        ``item``, ``label`` the rating) plus the L2 term."""
        pred, rows = self._parts(batch.user, batch.item)
        loss = F.mse_loss(pred, batch.label.to(pred.dtype))
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_reg(*rows)
        return loss

    @torch.no_grad()
    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings of the pairs."""
        device = self.user.weight.device
        return self(users.to(device), items.to(device))

    def extra_repr(self) -> str:
        return (f'{self.num_users}, {self.num_items}, embedding_dim='
                f'{self.embedding_dim}, mean_rating={self.mean_rating:.4f}')


__all__ = ['BiasedMF']
