"""Recommenders (one per file)."""
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.nn.models.biased_mf import BiasedMF
from pyg_recsys.nn.models.contract import (
    ClickThroughPredictor,
    ItemToItemRanker,
    MultiObjective,
    NextItemRecommender,
    PairwiseRanker,
    RatingPredictor,
    Recommender,
    TripleScorer,
)
from pyg_recsys.nn.models.gat import GATRecommender
from pyg_recsys.nn.models.gnn_rec import BipartiteGNNRecommender
from pyg_recsys.nn.models.graphrec import GraphRec
from pyg_recsys.nn.models.gru4rec import GRU4Rec
from pyg_recsys.nn.models.itemknn import ItemKNN
from pyg_recsys.nn.models.kgat import KGAT
from pyg_recsys.nn.models.kgcn import KGCN
from pyg_recsys.nn.models.lightgcn import LightGCN
from pyg_recsys.nn.models.mf import MF
from pyg_recsys.nn.models.ngcf import NGCF
from pyg_recsys.nn.models.pinsage import PinSage
from pyg_recsys.nn.models.pop import Popularity
from pyg_recsys.nn.models.sage import SAGERecommender
from pyg_recsys.nn.models.sasrec import SASRec, SASRecBlock
from pyg_recsys.nn.models.session_base import SessionRecommender
from pyg_recsys.nn.models.simgcl import SimGCL
from pyg_recsys.nn.models.srgnn import SRGNN
from pyg_recsys.nn.models.tagnn import TAGNN
from pyg_recsys.nn.models.transe import TransE
from pyg_recsys.nn.models.twhin import TwHIN

__all__ = [
    'BipartiteGNNRecommender', 'GATRecommender', 'SAGERecommender',
    'EmbeddingRecommender', 'LightGCN', 'MF', 'NGCF', 'Popularity',
    'SimGCL', 'SessionRecommender', 'GRU4Rec', 'SASRec', 'SASRecBlock',
    'SRGNN', 'TAGNN', 'TransE', 'TwHIN', 'KGCN', 'KGAT', 'GraphRec',
    'BiasedMF', 'PinSage',
    'ItemKNN',
    'Recommender',
    'MultiObjective', 'PairwiseRanker', 'ItemToItemRanker',
    'NextItemRecommender', 'RatingPredictor', 'ClickThroughPredictor',
    'TripleScorer']
