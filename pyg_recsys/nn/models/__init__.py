"""Recommenders (one per file)."""
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.nn.models.lightgcn import LightGCN
from pyg_recsys.nn.models.mf import MF
from pyg_recsys.nn.models.ngcf import NGCF
from pyg_recsys.nn.models.pop import Popularity

__all__ = ['EmbeddingRecommender', 'LightGCN', 'MF', 'NGCF', 'Popularity']
