"""Leak-free train / validation / test splits of an interaction log.

Every split returns a :class:`Split`: three disjoint sets of unique
``(user, item)`` pairs plus a record of how they were made (kind, seed,
cut time), so that a result can be traced to its data.  Message passing
uses :meth:`Split.graph`, built from the training pairs only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.ops.csr import CSR

PARTS = ('train', 'val', 'test')


@dataclass
class Split:
    """A user-item split.

    Attributes:
        num_users: Number of users (ids ``0 .. num_users - 1``).
        num_items: Number of items (ids ``0 .. num_items - 1``).
        train: ``[2, E_train]`` long tensor of (user, item) pairs.
        val: ``[2, E_val]`` pairs held out for model selection.
        test: ``[2, E_test]`` pairs held out for the final score.
        kind: How it was made: ``'random'``, ``'temporal'``,
            ``'leave_one_out'`` or ``'fixed'``.
        seed: The seed used, if any.
        cut_time: The global cut time(s) for temporal splits.
        attrs: Optional per-part edge attributes, e.g.
            ``attrs['train']['rating']`` aligned with ``train``'s columns.
        info: Free-form provenance (dataset name, ratios, files ...).
    """

    num_users: int
    num_items: int
    train: Tensor
    val: Tensor
    test: Tensor
    kind: str
    seed: int | None = None
    cut_time: Any = None
    attrs: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def part(self, name: str) -> Tensor:
        if name not in PARTS:
            raise ValueError(f"Split.part: unknown part '{name}'; use one of "
                             f'{PARTS}')
        return getattr(self, name)

    def csr(self, name: str) -> CSR:
        """The items of each user in one part, as a :class:`CSR`."""
        cache = self.__dict__.setdefault('_csr_cache', {})
        if name not in cache:
            pairs = self.part(name)
            cache[name] = CSR.from_pairs(pairs[0], pairs[1], self.num_users,
                                         self.num_items)
        return cache[name]

    def targets(self, name: str) -> CSR:
        """Held-out items of each user for ``'val'`` or ``'test'``."""
        return self.csr(name)

    def exclude(self, name: str) -> CSR:
        """Items known before ranking ``name``, masked from its ranking:
        training items for ``'val'``; training and validation items for
        ``'test'`` (and nothing for ``'train'``)."""
        cache = self.__dict__.setdefault('_csr_cache', {})
        key = f'exclude:{name}'
        if key not in cache:
            if name == 'train':
                cache[key] = CSR.from_pairs(torch.empty(0), torch.empty(0),
                                            self.num_users, self.num_items)
            elif name == 'val':
                cache[key] = self.csr('train')
            elif name == 'test':
                cache[key] = CSR.union(self.csr('train'), self.csr('val'))
            else:
                self.part(name)  # raises the error for unknown names
        return cache[key]

    def graph(self) -> HeteroData:
        """The message-passing graph: training pairs only, both directions.

        ``('user', 'interacts', 'item')`` holds the training pairs and
        ``('item', 'rev_interacts', 'user')`` their reverse; training edge
        attributes (``rating``, ``time``) are copied to both.
        """
        data = HeteroData()
        data['user'].num_nodes = self.num_users
        data['item'].num_nodes = self.num_items
        fwd = data['user', 'interacts', 'item']
        rev = data['item', 'rev_interacts', 'user']
        fwd.edge_index = self.train
        rev.edge_index = self.train.flip(0)
        for key, value in self.attrs.get('train', {}).items():
            fwd[key] = value
            rev[key] = value
        return data

    def meta(self) -> dict[str, Any]:
        """A JSON-able record of how the split was made and its sizes."""
        cut = self.cut_time
        if isinstance(cut, Tensor):
            cut = cut.tolist()
        return dict(kind=self.kind, seed=self.seed, cut_time=cut,
                    num_users=self.num_users, num_items=self.num_items,
                    num_train=int(self.train.size(1)),
                    num_val=int(self.val.size(1)),
                    num_test=int(self.test.size(1)), **self.info)

    def to_dict(self) -> dict[str, Any]:
        return dict(num_users=self.num_users, num_items=self.num_items,
                    train=self.train, val=self.val, test=self.test,
                    kind=self.kind, seed=self.seed, cut_time=self.cut_time,
                    attrs=self.attrs, info=self.info)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        return cls(**d)
