"""Turning raw interaction logs into PyG objects and leak-free splits."""
from pyg_recsys.data.interactions import (
    Interactions,
    from_tensors,
    k_core_mask,
    read_table,
)
from pyg_recsys.data.session import (
    SessionData,
    SessionGraphs,
    SessionLoader,
    session_graph,
    step_batch,
    to_padded,
)
from pyg_recsys.data.split import (
    PARTS,
    Split,
    audit,
    file_split,
    fixed_split,
    graph_fingerprint,
    leave_one_out,
    random_split,
    temporal_split,
)

__all__ = [
    'Interactions',
    'from_tensors',
    'read_table',
    'k_core_mask',
    'PARTS',
    'Split',
    'random_split',
    'temporal_split',
    'leave_one_out',
    'fixed_split',
    'file_split',
    'audit',
    'graph_fingerprint',
    'SessionData',
    'SessionGraphs',
    'SessionLoader',
    'session_graph',
    'step_batch',
    'to_padded',
]
