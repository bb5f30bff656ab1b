"""Recommendation data sets in PyG ``InMemoryDataset`` style."""
from pyg_recsys.datasets.base import (
    CachedDataset,
    ParsedData,
    RecDataset,
    default_root,
)
from pyg_recsys.datasets.kg_completion import KGCompletionDataset
from pyg_recsys.datasets.lastfm import LastFMKG
from pyg_recsys.datasets.lightgcn import (
    LightGCNDataset,
    read_id_list,
    read_lightgcn,
)
from pyg_recsys.datasets.movielens import (
    GENRES,
    MovieLens100K,
    MovieLens100KKG,
    parse_atomic,
    parse_grouplens,
    release_years,
)
from pyg_recsys.datasets.ogb import OGBLinkDataset
from pyg_recsys.datasets.session import (
    NextItemTask,
    SequenceDataset,
    SRGNNSessions,
    next_item_task,
)
from pyg_recsys.datasets.social import SocialDataset

__all__ = [
    'CachedDataset',
    'RecDataset',
    'ParsedData',
    'default_root',
    'MovieLens100K',
    'MovieLens100KKG',
    'release_years',
    'LastFMKG',
    'SocialDataset',
    'KGCompletionDataset',
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
