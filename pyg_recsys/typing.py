"""Optional-dependency flags, in the style of :mod:`torch_geometric.typing`.

Library code reads these at call time (``from pyg_recsys import typing as
pt; if pt.WITH_TORCH_SPARSE: ...``) so that tests can switch the accelerated
paths off and check the plain-torch fallbacks give the same answers.
"""
import importlib.util
import logging

log = logging.getLogger(__name__)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # pragma: no cover
        return False


def _importable(module: str) -> bool:
    # Compiled extensions may be installed yet fail to load against another
    # torch build; treat those as absent rather than crash at import time.
    if not _has(module):
        return False
    try:
        importlib.import_module(module)
        return True
    except (ImportError, OSError) as e:  # pragma: no cover
        log.warning('%s is installed but failed to import (%s); using the '
                    'plain-torch path instead.', module, e)
        return False


WITH_TORCH_SCATTER: bool = _importable('torch_scatter')
WITH_TORCH_SPARSE: bool = _importable('torch_sparse')
WITH_OGB: bool = _has('ogb')
WITH_FAISS: bool = _has('faiss')
WITH_PYARROW: bool = _has('pyarrow')
WITH_MATPLOTLIB: bool = _has('matplotlib')
