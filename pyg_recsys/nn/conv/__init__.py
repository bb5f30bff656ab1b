"""Message-passing layers (one per file)."""
from pyg_recsys.nn.conv.graphrec_conv import GraphRecConv
from pyg_recsys.nn.conv.kgat_conv import KGATConv
from pyg_recsys.nn.conv.kgcn_conv import KGCNConv
from pyg_recsys.nn.conv.lightgcn_conv import LightGCNConv
from pyg_recsys.nn.conv.ngcf_conv import NGCFConv
from pyg_recsys.nn.conv.pinsage_conv import PinSageConv
from pyg_recsys.nn.conv.srgnn_conv import SRGNNConv, SRGNNReadout

__all__ = ['GraphRecConv', 'KGATConv', 'KGCNConv', 'LightGCNConv', 'NGCFConv',
           'PinSageConv', 'SRGNNConv',
           'SRGNNReadout']
