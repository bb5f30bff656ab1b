"""Common base of the recommendation data sets (PyG ``InMemoryDataset``).

Raw files are read from a possibly read-only folder and never written to;
processed files go to a writable root, written atomically (a temporary
file in the same folder, then :func:`os.replace`), so that an interrupted
or failed processing run leaves nothing half-written behind.

Where the raw files are looked for, in order:

1. the ``raw_dir`` argument, if given (then nothing is ever downloaded);
2. ``$PYG_RECSYS_DATA/<name>/raw`` if that folder holds the raw files;
3. ``<root>/<name>/raw``, where downloads go.

``root`` defaults to ``$PYG_RECSYS_ROOT`` or ``'datasets'``; processed
files live in ``<root>/<name>/processed``.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import shutil
import urllib.request
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch_geometric.data import HeteroData, InMemoryDataset

from pyg_recsys.data.interactions import Interactions
from pyg_recsys.data.split import (
    Split,
    leave_one_out,
    random_split,
    temporal_split,
)
from pyg_recsys.io import atomic_save, atomic_write

log = logging.getLogger(__name__)

ENV_ROOT = 'PYG_RECSYS_ROOT'
ENV_DATA = 'PYG_RECSYS_DATA'


def default_root() -> str:
    """The writable data root: ``$PYG_RECSYS_ROOT`` or ``'datasets'``."""
    return os.environ.get(ENV_ROOT) or 'datasets'


def fetch_url(url: str, path: str, timeout: float = 60.0) -> str:
    """Downloads ``url`` to ``path`` atomically; ``timeout`` (seconds)
    bounds connecting and every read, so a dead server cannot hang us."""
    log.info('Downloading %s', url)
    request = urllib.request.Request(
        url, headers={'User-Agent': 'pyg_recsys'})
    with urllib.request.urlopen(request, timeout=timeout) as response, \
            atomic_write(path) as f:
        shutil.copyfileobj(response, f)
    return path


def _ids_from_list(ids: list) -> np.ndarray:
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(ids[0], str):
        return np.asarray(ids, dtype=str)
    return np.asarray(ids, dtype=np.int64)


def find_raw_dir(name: str, raw_files: tuple[str, ...] | list[str],
                 root: str) -> str:
    """The raw folder of data set ``name`` when no ``raw_dir`` is given:
    ``$PYG_RECSYS_DATA/<name>/raw`` if it holds all ``raw_files``, else
    ``<root>/<name>/raw``."""
    env = os.environ.get(ENV_DATA)
    if env:
        staged = osp.join(env, name, 'raw')
        if all(osp.isfile(osp.join(staged, f)) for f in raw_files):
            return staged
    return osp.join(root, name, 'raw')


class RecDataset(InMemoryDataset):
    r"""Base class of the interaction data sets.

    ``ds[0]`` is the full interaction log as
    :class:`~torch_geometric.data.HeteroData` (see
    :meth:`Interactions.to_hetero`, plus node features ``x`` where the data
    set has them); :attr:`interactions` holds the same log with its id
    maps; :meth:`split` makes a train / validation / test :class:`Split`.

    Subclasses set :attr:`name`, :attr:`raw_files`, implement
    :meth:`download` and :meth:`build`.

    Args:
        root: Writable data root (default ``$PYG_RECSYS_ROOT`` or
            ``'datasets'``); processed files go to
            ``<root>/<name>/processed``.
        raw_dir: Folder of the upstream raw files, read-only is fine.  If
            given, files missing there are an error (never downloaded).
        transform: Applied to the data object on every access.
        pre_transform: Applied once before saving the processed file.
        force_reload: Re-process even if a processed file exists.
        log: Kept for :class:`InMemoryDataset` compatibility.
    """

    name: str = ''
    raw_files: ClassVar[tuple[str, ...]] = ()
    splits: ClassVar[tuple[str, ...]] = ('random', 'temporal',
                                         'leave_one_out')
    default_split: ClassVar[str] = 'random'
    timeout: ClassVar[float] = 60.0
    version: ClassVar[int] = 1

    def __init__(self, root: str | None = None, raw_dir: str | None = None,
                 transform: Callable | None = None,
                 pre_transform: Callable | None = None,
                 force_reload: bool = False, log: bool = True) -> None:
        root = os.fspath(root) if root is not None else default_root()
        self._raw_dir_arg = os.fspath(raw_dir) if raw_dir else None
        self._raw_dir = self._find_raw_dir(osp.expanduser(root))
        self._meta: dict[str, Any] = {}
        super().__init__(root, transform, pre_transform,
                         force_reload=force_reload, log=log)
        self._load()

    # -- locations ---------------------------------------------------------

    def _find_raw_dir(self, root: str) -> str:
        if self._raw_dir_arg is not None:
            return self._raw_dir_arg
        return find_raw_dir(self.name, self.raw_files, root)

    @classmethod
    def folder_name(cls, **kwargs: Any) -> str:
        """The data set's folder under the roots (``<name>``)."""
        return cls.name

    @classmethod
    def locate(cls, root: str | None = None, **kwargs: Any) -> str:
        """Where the data set would be read from, without processing it:
        the raw folder found, a processed copy, or the download target.

        Args:
            root: Writable data root (default :func:`default_root`).
            **kwargs: Constructor arguments that pick the folder (``name``
                for :class:`LightGCNDataset`).
        """
        root = osp.expanduser(os.fspath(root)) if root else default_root()
        name = cls.folder_name(**kwargs)
        raw = find_raw_dir(name, cls.raw_files, root)
        if all(osp.isfile(osp.join(raw, f)) for f in cls.raw_files):
            return f'raw files in {raw}'
        processed = osp.join(root, name, 'processed')
        if osp.isdir(processed) and os.listdir(processed):
            return f'processed copy in {processed}'
        return f'not found locally; downloaded into {raw} on first use'

    def _raw_complete(self, folder: str) -> bool:
        return all(osp.isfile(osp.join(folder, f)) for f in self.raw_files)

    @property
    def raw_dir(self) -> str:
        return self._raw_dir

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, self.name, 'processed')

    @property
    def cache_dir(self) -> str:
        """``<root>/_cache``: downloaded archives shared by data sets."""
        return osp.join(self.root, '_cache')

    @property
    def raw_file_names(self) -> list[str]:
        return list(self.raw_files)

    @property
    def processed_file_names(self) -> str:
        return f'data_v{self.version}.pt'

    # -- download / process ------------------------------------------------

    def _has_source(self) -> bool:
        """Whether the raw data is available without downloading."""
        return self._raw_complete(self.raw_dir)

    def _download(self) -> None:
        if not self.force_reload and osp.isfile(self.processed_paths[0]):
            return
        if self._has_source():
            return
        if self._raw_dir_arg is not None:
            missing = [f for f in self.raw_files
                       if not osp.isfile(osp.join(self.raw_dir, f))]
            raise FileNotFoundError(
                f'{self.__class__.__name__}: raw files {missing} not found '
                f'in raw_dir={self.raw_dir}; put them there, or leave '
                f'raw_dir unset to download them into '
                f'{osp.join(self.root, self.name, "raw")}')
        self.download()

    def download(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _process(self) -> None:
        if not self.force_reload and osp.isfile(self.processed_paths[0]):
            return
        self.process()

    def build(self) -> dict[str, Any]:  # pragma: no cover - overridden
        """Reads the raw files.  Returns a dict with ``'inter'``
        (:class:`Interactions`) and optionally ``'x'`` (node type ->
        feature tensor), ``'feature_names'`` (node type -> list of str),
        ``'titles'`` (list of item titles) and ``'extra'`` (dict of
        tensors / plain values)."""
        raise NotImplementedError

    def process(self) -> None:
        built = self.build()
        inter: Interactions = built['inter']
        payload: dict[str, Any] = {
            'inter': {k: getattr(inter, k)
                      for k in ('user', 'item', 'rating', 'time')},
            'user_ids': inter.user_ids.tolist(),
            'item_ids': inter.item_ids.tolist(),
            'info': inter.info,
            'x': built.get('x', {}),
            'feature_names': built.get('feature_names', {}),
            'titles': built.get('titles'),
            'extra': built.get('extra', {}),
        }
        if self.pre_transform is not None:
            data = self._to_hetero(inter, payload['x'])
            payload['data'] = self.pre_transform(data).to_dict()
        atomic_save(payload, self.processed_paths[0])

    @staticmethod
    def _to_hetero(inter: Interactions, x: dict[str, Any]) -> HeteroData:
        data = inter.to_hetero()
        for node_type, value in x.items():
            data[node_type].x = value
        return data

    def _load(self) -> None:
        payload = torch.load(self.processed_paths[0], weights_only=True)
        self._meta = payload
        self._inter = Interactions(
            **payload['inter'],
            user_ids=_ids_from_list(payload['user_ids']),
            item_ids=_ids_from_list(payload['item_ids']),
            info=dict(payload['info']))
        if 'data' in payload:
            data = HeteroData.from_dict(payload['data'])
        else:
            data = self._to_hetero(self._inter, payload['x'])
        self._data, self.slices = data, None

    # -- public surface ----------------------------------------------------

    @property
    def interactions(self) -> Interactions:
        """The full log with its id maps (original ids recoverable)."""
        return self._inter

    @property
    def item_titles(self) -> list[str] | None:
        """Item titles aligned with item ids, or ``None``."""
        return self._meta.get('titles')

    @property
    def feature_names(self) -> dict[str, list[str]]:
        """Names of the columns of ``data[node_type].x``."""
        return self._meta.get('feature_names', {})

    def split(self, kind: str | None = None, seed: int = 0,
              **kwargs: Any) -> Split:
        """A train / validation / test split of the log.

        Args:
            kind: One of :attr:`splits` (default :attr:`default_split`):
                ``'random'`` (:func:`random_split`), ``'temporal'``
                (:func:`temporal_split`), ``'leave_one_out'``
                (:func:`leave_one_out`), ``'fixed'`` (the data set's own
                train / test files, :func:`fixed_split`).
            seed: Seed for the random parts.
            **kwargs: Passed to the split function (e.g. ``ratios``,
                ``cut_times``, ``val_ratio``).
        """
        kind = kind or self.default_split
        if kind not in self.splits:
            raise ValueError(f'{self.__class__.__name__}.split: unknown '
                             f'kind {kind!r}; use one of {self.splits}')
        inter = self.interactions
        if kind == 'random':
            out = random_split(inter, seed=seed, **kwargs)
        elif kind == 'temporal':
            out = temporal_split(inter, **kwargs)
        elif kind == 'leave_one_out':
            out = leave_one_out(inter, **kwargs)
        else:
            out = self._fixed_split(seed=seed, **kwargs)
        out.info['dataset'] = self.name
        return out

    def _fixed_split(self, seed: int = 0,
                     **kwargs: Any) -> Split:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        inter = self.interactions
        return (f'{self.__class__.__name__}(num_users={inter.num_users}, '
                f'num_items={inter.num_items}, '
                f'num_interactions={len(inter)})')


__all__ = ['RecDataset', 'atomic_save', 'atomic_write', 'fetch_url',
           'default_root', 'find_raw_dir']
