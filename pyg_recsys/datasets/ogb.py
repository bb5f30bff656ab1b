"""Open Graph Benchmark link-prediction data sets (``ogbl-*``), through
OGB's own loader.

A thin layer over :class:`ogb.linkproppred.PygLinkPropPredDataset` that
(1) reads a read-only staged copy in OGB's on-disk layout without writing
next to it, and (2) reads OGB's split files on torch >= 2.6, whose
``torch.load`` refuses their NumPy arrays by default.

OGB keeps everything of a data set in one folder (``raw/``, ``split/``,
``RELEASE_v1.txt`` and its own ``processed/``).  Here that folder is
``<root>/<name>/<ogb_dir>`` (e.g. ``datasets/ogbl-ddi/ogbl_ddi``); when a
staged copy is found, its entries are symlinked into it and only
``processed/`` is written.  The staged copy is looked for in, in order:
the ``raw_dir`` argument, then ``$PYG_RECSYS_DATA/<name>/raw/<ogb_dir>``;
without either, OGB downloads into the writable folder.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import os.path as osp

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_recsys.datasets.base import ENV_DATA, default_root
from pyg_recsys.io import numpy_safe_globals

log = logging.getLogger(__name__)


def load_split_file(path: str) -> dict[str, Tensor]:
    """Reads one of OGB's ``split/<kind>/{train,valid,test}.pt`` files
    (a dict of NumPy arrays) into a dict of tensors.

    On torch >= 2.6 the pickle is read with ``weights_only=True`` and only
    NumPy's array and dtype classes allow-listed, so a tampered file cannot
    run code; older torch reads it as OGB does.
    """
    if hasattr(torch.serialization, 'safe_globals'):
        with torch.serialization.safe_globals(numpy_safe_globals()):
            raw = torch.load(path, weights_only=True)
    else:  # pragma: no cover - torch < 2.5
        raw = torch.load(path, weights_only=False)
    return {key: torch.as_tensor(value) for key, value in raw.items()}


def _allow_processed():
    """A context in which OGB's ``torch.load`` of its processed PyG file
    passes the ``weights_only`` check of torch >= 2.6 (the PyG storage
    classes it pickles are allow-listed)."""
    if not hasattr(torch.serialization, 'safe_globals'):  # pragma: no cover
        return contextlib.nullcontext()
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    return torch.serialization.safe_globals(
        [DataEdgeAttr, DataTensorAttr, GlobalStorage])


class OGBLinkDataset:
    r"""An OGB link-prediction data set (default ``ogbl-ddi``) with its
    official split and evaluator.

    ``ogbl-ddi`` (`Hu et al., NeurIPS 2020
    <https://arxiv.org/abs/2005.00687>`_): 4,267 drugs, 1,067,911
    undirected training interactions (:attr:`data` holds both directions,
    2,135,822 edges), 133,489 validation and 133,489 test positives
    against 101,882 and 95,599 fixed negatives; metric Hits@20 (a
    positive counts if it scores above the 20th best negative).

    Args:
        name: OGB name, e.g. ``'ogbl-ddi'``.
        root: Writable data root (default ``$PYG_RECSYS_ROOT`` or
            ``'datasets'``); OGB's folder is ``<root>/<name>/<ogb_dir>``.
        raw_dir: Read-only folder in OGB's layout (holding ``raw/``,
            ``split/``, ``RELEASE_v1.txt``), e.g. the staged
            ``ogbl-ddi/raw/ogbl_ddi``.  If given, it must exist.
    """

    def __init__(self, name: str = 'ogbl-ddi', root: str | None = None,
                 raw_dir: str | None = None) -> None:
        try:
            from ogb.linkproppred import PygLinkPropPredDataset
        except ImportError as e:  # pragma: no cover - needs ogb absent
            raise ImportError(f'OGBLinkDataset needs the ogb package (pip '
                              f'install ogb) to read {name}') from e
        if not name.startswith('ogbl-'):
            raise ValueError(f"OGBLinkDataset: '{name}' is not an OGB link "
                             f"prediction data set; use a name like "
                             f"'ogbl-ddi'")
        self.name = name
        self.ogb_dir = name.replace('-', '_')
        root = os.fspath(root) if root is not None else default_root()
        self.root = osp.join(osp.expanduser(root), name)
        staged = self._find_staged(raw_dir)
        if raw_dir is not None and staged is None:
            raise FileNotFoundError(
                f'OGBLinkDataset: raw_dir={raw_dir} does not hold OGB '
                f"'{name}' files (raw/, split/, RELEASE_v*.txt); point it "
                f'at the folder in OGB layout, or leave it unset to download')
        self.folder = osp.join(self.root, self.ogb_dir)
        if staged is not None:
            self._link(staged)
            log.info('OGBLinkDataset: reading %s from %s', name, staged)
        os.makedirs(self.root, exist_ok=True)
        out = io.StringIO()  # OGB prints its progress; keep it in the log
        with _allow_processed(), contextlib.redirect_stdout(out):
            self.dataset = PygLinkPropPredDataset(name=name, root=self.root)
        if out.getvalue().strip():
            log.info('ogb: %s', ' '.join(out.getvalue().split()))
        self._data: Data | None = None
        self._split: dict[str, dict[str, Tensor]] | None = None

    # ------------------------------------------------------------------
    def _find_staged(self, raw_dir: str | None) -> str | None:
        candidates = ([raw_dir] if raw_dir is not None else [])
        env = os.environ.get(ENV_DATA)
        if raw_dir is None and env:
            candidates.append(osp.join(env, self.name, 'raw', self.ogb_dir))
        for folder in candidates:
            folder = osp.abspath(osp.expanduser(folder))
            if (osp.isdir(osp.join(folder, 'raw'))
                    and osp.isdir(osp.join(folder, 'split'))):
                return folder
        return None

    def _link(self, staged: str) -> None:
        """Symlinks the staged entries into the writable folder (never
        copying; ``processed/`` stays local)."""
        os.makedirs(self.folder, exist_ok=True)
        for entry in sorted(os.listdir(staged)):
            if entry == 'processed':
                continue
            target = osp.join(staged, entry)
            link = osp.join(self.folder, entry)
            if osp.islink(link):
                if os.readlink(link) == target:
                    continue
                os.remove(link)
            elif osp.exists(link):
                continue  # a real file or folder (e.g. a download): keep
            os.symlink(target, link)

    # ------------------------------------------------------------------
    @property
    def data(self) -> Data:
        """The training graph: ``num_nodes`` and ``edge_index`` (both
        directions)."""
        if self._data is None:
            self._data = self.dataset[0]
        return self._data

    @property
    def num_nodes(self) -> int:
        return int(self.data.num_nodes)

    def edge_split(self) -> dict[str, dict[str, Tensor]]:
        """OGB's split: ``{'train': {'edge'}, 'valid': {'edge',
        'edge_neg'}, 'test': {'edge', 'edge_neg'}}``, each ``[n, 2]``
        long tensors (read once)."""
        if self._split is None:
            kind = self.dataset.meta_info['split']
            path = osp.join(self.folder, 'split', kind)
            self._split = {part: load_split_file(osp.join(path, f'{part}.pt'))
                           for part in ('train', 'valid', 'test')}
        return self._split

    def evaluator(self):
        """OGB's :class:`ogb.linkproppred.Evaluator` for this data set."""
        from ogb.linkproppred import Evaluator
        return Evaluator(name=self.name)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.name}, {self.num_nodes} nodes)'
