"""Message-passing layers (one per file)."""
from pyg_recsys.nn.conv.lightgcn_conv import LightGCNConv

__all__ = ['LightGCNConv']
