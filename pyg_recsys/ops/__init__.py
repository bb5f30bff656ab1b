"""The performance core: CSR index sets, the normalised adjacency and its
products, LightGCN propagation and chunked top-K with exclusion."""
from pyg_recsys.ops.adj import NormAdj, RowSlice
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.perturb import perturbed_propagate
from pyg_recsys.ops.propagate import layer_weights, propagate
from pyg_recsys.ops.random_walk import (
    importance_neighbors,
    ppr_scores,
    random_walk,
    rank_visits,
    rwr_visits,
)
from pyg_recsys.ops.topk import chunked_topk, masked_topk

__all__ = [
    'CSR',
    'NormAdj',
    'RowSlice',
    'chunked_topk',
    'importance_neighbors',
    'layer_weights',
    'masked_topk',
    'perturbed_propagate',
    'propagate',
    'ppr_scores',
    'random_walk',
    'rank_visits',
    'rwr_visits',
]
