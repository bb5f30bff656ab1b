"""Common base of the data sets (PyG ``InMemoryDataset``).

Raw files are read from a possibly read-only folder and never written to;
processed files go to a writable root, written atomically (a temporary
file in the same folder, then :func:`os.replace`), so that an interrupted
or failed processing run leaves nothing half-written behind; the temporary
files of a killed run are removed by the next one, under the folder's lock.

The processed file is keyed by what it was built from: a fingerprint of
the raw files' contents and of the options that change the result
(``data_v<version>_<key>.pt``).  Pointing ``raw_dir`` at other files
builds anew, never reuses a cache of other data; :attr:`CachedDataset.source`
records the files and their fingerprint for a run's ``config.json``.

Where the raw files are looked for, in order:

1. the ``raw_dir`` argument, if given (then nothing is ever downloaded);
2. ``$PYG_RECSYS_DATA/<name>/raw`` if that folder holds the raw files;
3. ``<root>/<name>/raw``, where downloads go.

``root`` defaults to ``$PYG_RECSYS_ROOT`` or ``'datasets'``; processed
files live in ``<root>/<name>/processed``.
"""
from __future__ import annotations

import glob
import logging
import os
import os.path as osp
import re
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData, InMemoryDataset

from pyg_recsys.data.interactions import Interactions
from pyg_recsys.data.split import (
    Split,
    file_split,
    ids_array,
    leave_one_out,
    random_split,
    temporal_split,
)
from pyg_recsys.io import (
    atomic_save,
    atomic_write,
    fingerprint,
    folder_lock,
    remove_orphans,
    safe_load,
)
from pyg_recsys.schema import ITEM, USER, USER_ITEM, EdgeType, build_graph

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


def _describe(obj: Any) -> str:
    """A description of a transform that is the same in every process:
    ``module.qualname`` of a function, else its ``repr`` without memory
    addresses."""
    if obj is None:
        return 'None'
    name = getattr(obj, '__qualname__', None)
    if name is not None and callable(obj) and not isinstance(obj, type):
        return f'{getattr(obj, "__module__", "")}.{name}'
    return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(obj))


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


@dataclass
class ParsedData:
    """What the raw files of a recommendation data set hold, as
    :meth:`RecDataset.build` returns it.

    Attributes:
        inter: The interaction log with its id maps.
        x: Node features per node type.
        feature_names: Names of the columns of ``x[node_type]``.
        titles: Item titles aligned with item ids.
        num_nodes: Sizes of the node types beyond users and items
            (``{'entity': n}``).
        ids: Original ids of those node types.
        side: Side relations (edge type -> ``[2, E]`` local ids): knowledge
            graph relations, trust, ...; never held out by a split.
        side_attrs: Edge attributes of side relations.
        relations: Edge-type name -> original relation name (knowledge
            graphs, see :func:`~pyg_recsys.data.kg.link_items`).
        labelled: ``[3, n]`` (user, item, label) rows in the source's
            order where the data set has explicit negatives.
        info: Counts and decisions of the reader, kept with the split.
    """

    inter: Interactions
    x: dict[str, Tensor] = field(default_factory=dict)
    feature_names: dict[str, list[str]] = field(default_factory=dict)
    titles: list[str] | None = None
    num_nodes: dict[str, int] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    side: dict[EdgeType, Tensor] = field(default_factory=dict)
    side_attrs: dict[EdgeType, dict[str, Tensor]] = field(
        default_factory=dict)
    relations: dict[str, str] = field(default_factory=dict)
    labelled: Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


class CachedDataset(InMemoryDataset):
    r"""Locations, download and the keyed processed cache shared by the
    data sets (:class:`RecDataset`, the knowledge-graph completion sets).

    Subclasses set :attr:`name`, :attr:`raw_files`, implement
    :meth:`download`, :meth:`make_payload` (the processed content, plain
    tensors and lists) and :meth:`load_payload`.

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
    timeout: ClassVar[float] = 60.0
    version: ClassVar[int] = 2

    def __init__(self, root: str | None = None, raw_dir: str | None = None,
                 transform: Callable | None = None,
                 pre_transform: Callable | None = None,
                 force_reload: bool = False, log: bool = True) -> None:
        root = os.fspath(root) if root is not None else default_root()
        self._raw_dir_arg = os.fspath(raw_dir) if raw_dir else None
        self._raw_dir = self._find_raw_dir(osp.expanduser(root))
        self._key: str | None = None
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
        files = cls.raw_files_for(**kwargs)
        raw = find_raw_dir(name, files, root)
        if all(osp.isfile(osp.join(raw, f)) for f in files):
            return f'raw files in {raw}'
        processed = osp.join(root, name, 'processed')
        if glob.glob(osp.join(processed, 'data_v*.pt')):
            return f'processed copy in {processed}'
        return f'not found locally; downloaded into {raw} on first use'

    @classmethod
    def raw_files_for(cls, **kwargs: Any) -> tuple[str, ...]:
        """The raw files of the data set picked by ``kwargs`` (default
        :attr:`raw_files`)."""
        return cls.raw_files

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

    # -- the keyed cache ---------------------------------------------------

    def source_files(self) -> list[str] | None:
        """The files the processed content is built from, or ``None`` when
        they are not all present (default: :attr:`raw_files` in
        :attr:`raw_dir`)."""
        if not self._raw_complete(self.raw_dir):
            return None
        return [osp.join(self.raw_dir, f) for f in self.raw_files]

    def cache_options(self) -> dict[str, Any]:
        """Everything besides the raw files that changes the processed
        content (part of the cache key)."""
        return {'class': type(self).__name__, 'version': self.version,
                'name': self.name,
                'pre_transform': _describe(self.pre_transform)}

    def _cache_key(self) -> str:
        """``<options>_<files>``: fingerprints of the options and of the
        raw files' contents; without raw files, the newest processed copy
        built with the same options."""
        if self._key is None:
            options = fingerprint([], self.cache_options())[:8]
            sources = self.source_files()
            if sources is not None:
                self._key = f'{options}_{fingerprint(sources)[:12]}'
            else:
                prefix = f'data_v{self.version}_{options}_'
                found = sorted(glob.glob(osp.join(
                    self.processed_dir, prefix + '*.pt')), key=osp.getmtime)
                self._key = (osp.basename(found[-1])[len(
                    f'data_v{self.version}_'):-3] if found
                    else f'{options}_missing')
        return self._key

    @property
    def processed_file_names(self) -> str:
        return f'data_v{self.version}_{self._cache_key()}.pt'

    @property
    def source(self) -> dict[str, Any]:
        """Where the processed content came from: the raw folder, the
        files and the cache key (their fingerprint with the options)."""
        files = self.source_files()
        return {'raw_dir': osp.abspath(self.raw_dir),
                'files': ([osp.abspath(f) for f in files]
                          if files is not None else None),
                'cache_key': self._cache_key(),
                'processed': osp.abspath(self.processed_paths[0])}

    # -- download / process ------------------------------------------------

    def _has_source(self) -> bool:
        """Whether the raw data is available without downloading."""
        return self.source_files() is not None

    def _download(self) -> None:
        if self._has_source():
            return
        if not self.force_reload and osp.isfile(self.processed_paths[0]):
            return  # a processed copy without its raw files
        missing = [f for f in self.raw_files
                   if not osp.isfile(osp.join(self.raw_dir, f))]
        if self._raw_dir_arg is not None and missing:
            raise FileNotFoundError(
                f'{self.__class__.__name__}: raw files {missing} not found '
                f'in raw_dir={self.raw_dir}; put them there, or leave '
                f'raw_dir unset to download them into '
                f'{osp.join(self.root, self.name, "raw")}')
        try:
            self.download()
        except OSError as e:  # no network, server gone, disk full ...
            raise FileNotFoundError(
                f'{type(self).__name__}: the raw files {list(self.raw_files)}'
                f' are not in {self.raw_dir} and downloading them failed '
                f'({e}); put them there, or point $PYG_RECSYS_DATA at a '
                f'folder holding {self.name}/raw') from None
        self._key = None  # now keyed by the downloaded files

    def download(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _process(self) -> None:
        path = self.processed_paths[0]
        # under the folder's lock: a concurrent build finishes first, and
        # no live writer's temporary file is taken for an orphan
        with folder_lock(self.processed_dir, what='processed-data folder'):
            removed = remove_orphans(self.processed_dir)
            if removed:
                log.info('%s: removed %d temporary files of an interrupted '
                         'run', self.processed_dir, len(removed))
            if self.force_reload or not osp.isfile(path):
                self.process()

    def process(self) -> None:
        atomic_save(self.make_payload(), self.processed_paths[0])

    def make_payload(self) -> dict[str, Any]:  # pragma: no cover
        """The processed content (tensors, lists, numbers, strings)."""
        raise NotImplementedError

    def _load(self) -> None:
        payload = safe_load(
            self.processed_paths[0], f'{type(self).__name__} processed file',
            'delete it (or pass force_reload=True) to rebuild it from the '
            'raw files')
        self._meta = payload
        self.load_payload(payload)

    def load_payload(self, payload: dict[str, Any]
                     ) -> None:  # pragma: no cover
        """Restores the data set from :meth:`make_payload`'s content; sets
        ``self._data``."""
        raise NotImplementedError


class RecDataset(CachedDataset):
    r"""Base class of the interaction data sets.

    ``ds[0]`` is the full interaction log as
    :class:`~torch_geometric.data.HeteroData`
    (:func:`~pyg_recsys.schema.build_graph`: the log on
    ``('user', 'interacts', 'item')`` and its reverse, the side relations
    of the data set such as a knowledge graph or trust links, node
    features ``x`` where the data set has them, original ids in
    ``data.orig_ids``); :attr:`interactions` holds the same log with its
    id maps; :meth:`split` makes a train / validation / test :class:`Split`
    that carries the side relations, node features and original ids.

    Subclasses set :attr:`name`, :attr:`raw_files`, implement
    :meth:`download` and :meth:`build`.  Constructor arguments as
    :class:`CachedDataset`.
    """

    splits: ClassVar[tuple[str, ...]] = ('random', 'temporal',
                                         'leave_one_out')
    default_split: ClassVar[str] = 'random'
    #: split kinds with labelled click-through rows (``split.labelled``)
    labelled_splits: ClassVar[tuple[str, ...]] = ()
    #: Default arguments of :func:`random_split` for this data set.
    split_defaults: ClassVar[dict[str, Any]] = {}

    def build(self) -> ParsedData:  # pragma: no cover - overridden
        """Reads the raw files."""
        raise NotImplementedError

    def make_payload(self) -> dict[str, Any]:
        built = self.build()
        if not isinstance(built, ParsedData):
            raise TypeError(f'{type(self).__name__}.build must return a '
                            f'ParsedData, got {type(built).__name__}')
        inter = built.inter
        payload: dict[str, Any] = {
            'inter': {k: getattr(inter, k)
                      for k in ('user', 'item', 'rating', 'time')},
            'ids': {USER: inter.user_ids.tolist(),
                    ITEM: inter.item_ids.tolist(),
                    **{t: np.asarray(v).tolist()
                       for t, v in built.ids.items()}},
            'info': dict(inter.info, **built.info),
            'x': built.x,
            'feature_names': built.feature_names,
            'titles': built.titles,
            'num_nodes': built.num_nodes,
            'side': built.side,
            'side_attrs': built.side_attrs,
            'relations': built.relations,
            'labelled': built.labelled,
        }
        if self.pre_transform is not None:
            ids = {t: ids_array(v) for t, v in payload['ids'].items()}
            data = self.pre_transform(self._graph(payload, inter, ids))
            data.orig_ids = None  # kept as lists in payload['ids']
            payload['data'] = data.to_dict()
        return payload

    @staticmethod
    def _graph(payload: dict[str, Any], inter: Interactions,
               ids: dict[str, np.ndarray]) -> HeteroData:
        counts = {USER: inter.num_users, ITEM: inter.num_items,
                  **payload['num_nodes']}
        attrs = {name: getattr(inter, name) for name in ('rating', 'time')
                 if getattr(inter, name) is not None}
        return build_graph(
            counts, {USER_ITEM: torch.stack([inter.user, inter.item]),
                     **payload['side']},
            {USER_ITEM: attrs, **payload['side_attrs']}, payload['x'], ids)

    def load_payload(self, payload: dict[str, Any]) -> None:
        self._ids = {t: ids_array(v) for t, v in payload['ids'].items()}
        self._inter = Interactions(
            **payload['inter'], user_ids=self._ids[USER],
            item_ids=self._ids[ITEM], info=dict(payload['info']))
        if 'data' in payload:
            data = HeteroData.from_dict(payload['data'])
            data.orig_ids = self._ids
        else:
            data = self._graph(payload, self._inter, self._ids)
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

    @property
    def relations(self) -> dict[str, str]:
        """Edge-type name -> original name of the knowledge-graph
        relations (empty without a knowledge graph)."""
        return self._meta.get('relations', {})

    def split(self, kind: str | None = None, seed: int = 0,
              **kwargs: Any) -> Split:
        """A train / validation / test split of the log, carrying the data
        set's side relations, node features and original ids.

        Args:
            kind: One of :attr:`splits` (default :attr:`default_split`):
                ``'random'`` (:func:`random_split`), ``'temporal'``
                (:func:`temporal_split`), ``'leave_one_out'``
                (:func:`leave_one_out`), ``'fixed'`` (the data set's own
                split, :meth:`_fixed_split`); and for every data set
                ``'file'``, the parts written in a file (``path=``,
                :func:`~pyg_recsys.data.split.file_split`).
            seed: Seed for the random parts.
            **kwargs: Passed to the split function (e.g. ``ratios``,
                ``per_user``, ``cut_times``, ``val_ratio``).
        """
        kind = kind or self.default_split
        if kind != 'file' and kind not in self.splits:
            raise ValueError(f'{self.__class__.__name__}.split: unknown '
                             f'kind {kind!r}; use one of {self.splits}')
        inter = self.interactions
        if kind == 'random':
            out = random_split(inter, seed=seed,
                               **{**self.split_defaults, **kwargs})
        elif kind == 'temporal':
            out = temporal_split(inter, **kwargs)
        elif kind == 'leave_one_out':
            out = leave_one_out(inter, **kwargs)
        elif kind == 'file':
            out = file_split(inter, **kwargs)
        else:
            out = self._fixed_split(seed=seed, **kwargs)
        meta = self._meta
        out.ids = dict(self._ids)
        out.x = dict(meta['x'])
        out.num_nodes = dict(meta['num_nodes'])
        out.side = dict(meta['side'])
        out.side_attrs = dict(meta['side_attrs'])
        out.info['dataset'] = self.name
        return out

    def _fixed_split(self, seed: int = 0,
                     **kwargs: Any) -> Split:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        inter = self.interactions
        extra = ''.join(f', num_{t}s={n}'.replace('ys=', 'ies=')
                        for t, n in self._meta['num_nodes'].items())
        return (f'{self.__class__.__name__}(num_users={inter.num_users}, '
                f'num_items={inter.num_items}, '
                f'num_interactions={len(inter)}{extra})')


__all__ = ['CachedDataset', 'RecDataset', 'ParsedData', 'atomic_save',
           'atomic_write', 'fetch_url', 'default_root', 'find_raw_dir']
