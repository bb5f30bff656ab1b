"""Recommendation data sets in PyG ``InMemoryDataset`` style."""
from pyg_recsys.datasets.base import RecDataset, default_root
from pyg_recsys.datasets.lightgcn import (
    LightGCNDataset,
    read_id_list,
    read_lightgcn,
)
from pyg_recsys.datasets.movielens import (
    GENRES,
    MovieLens100K,
    parse_atomic,
    parse_grouplens,
)
from pyg_recsys.datasets.ogb import OGBLinkDataset
from pyg_recsys.datasets.session import (
    NextItemTask,
    SequenceDataset,
    SRGNNSessions,
    next_item_task,
)

__all__ = [
    'RecDataset',
    'default_root',
    'MovieLens100K',
    'LightGCNDataset',
    'OGBLinkDataset',
    'SRGNNSessions',
    'SequenceDataset',
    'NextItemTask',
    'next_item_task',
    'GENRES',
    'parse_grouplens',
    'parse_atomic',
    'read_lightgcn',
    'read_id_list',
]
