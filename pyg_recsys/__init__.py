"""pyg_recsys: graph and sequential recommendation on PyTorch Geometric."""
__version__ = '0.1.0'
