"""Data sets in the LightGCN / NGCF format (Gowalla, Yelp2018,
Amazon-Book)."""
from __future__ import annotations

import logging
import os
import os.path as osp
import re
from typing import Any, ClassVar

import numpy as np
import torch

from pyg_recsys.data.interactions import (
    INT64_MAX,
    Interactions,
    ascii_digits,
    utf8_text,
)
from pyg_recsys.data.split import Split, fixed_split
from pyg_recsys.datasets.base import ParsedData, RecDataset, fetch_url
from pyg_recsys.io import BadDataError
from pyg_recsys.schema import ITEM, USER

log = logging.getLogger(__name__)

_INT_RE = re.compile(r'-?(0|[1-9][0-9]*)')


def _read_text(path: str) -> list[str]:
    """The lines of a UTF-8 file (a leading byte-order mark dropped)."""
    with utf8_text(path) as f:
        lines = f.read().split('\n')
    if not any(line.strip() for line in lines):
        raise BadDataError(f'{path}: line 1: file is empty; expected lines '
                           f'"user item item ..."')
    return lines


def _bad_id(path: str, lines: list[str]) -> BadDataError:
    """The error for the first token of ``lines`` that is not an id."""
    for lineno, line in enumerate(lines, 1):
        for tok in line.split():
            if not ascii_digits(tok):
                return BadDataError(
                    f'{path}: line {lineno}: id {tok!r} is not a '
                    f'non-negative integer; expected "user item item ..." '
                    f'with integer ids')
            if int(tok) > INT64_MAX:
                return BadDataError(
                    f'{path}: line {lineno}: id {tok!r} is too large (ids '
                    f'are 0-based indices below 2**63)')
    return BadDataError(f'{path}: cannot read the ids')  # pragma: no cover


def read_lightgcn(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads a LightGCN-format file: each line ``user item item ...``
    (whitespace separated, 0-based ids in ASCII digits; a line may list no
    items; a UTF-8 byte-order mark is skipped).

    Returns:
        ``(user, item)`` int64 arrays, one entry per (user, item) pair in
        file order.

    Raises:
        BadDataError: Naming the file and line of an empty file, a
            non-integer, negative or too large id, or bytes that are not
            UTF-8 text.
    """
    lines = _read_text(path)
    counts = []
    tokens: list[str] = []
    for line in lines:
        fields = line.split()
        counts.append(len(fields))
        tokens.extend(fields)
    if not ascii_digits(''.join(tokens)):
        raise _bad_id(path, lines)
    try:
        flat = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        raise _bad_id(path, lines) from None
    counts_np = np.array(counts, dtype=np.int64)
    counts_np = counts_np[counts_np > 0]
    starts = np.cumsum(counts_np) - counts_np
    is_user = np.zeros(flat.size, dtype=bool)
    is_user[starts] = True
    user = np.repeat(flat[starts], counts_np - 1)
    return user, flat[~is_user]


def read_id_list(path: str) -> np.ndarray:
    """Reads ``user_list.txt`` / ``item_list.txt`` (header, then lines
    ``org_id remap_id``): the original id of every remapped id.  Original
    ids are ints when all are plain integer literals that fit in int64,
    strings otherwise.

    Raises:
        BadDataError: Naming the file (and line) of a line without an
            integer ``remap_id``, or remapped ids that are not ``0 .. n -
            1`` each once.
    """
    lines = _read_text(path)
    orig: list[str] = []
    remap: list[int] = []
    header = True
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if header:  # 'org_id remap_id'
            header = False
            continue
        if len(fields) < 2 or not ascii_digits(fields[1]):
            raise BadDataError(f'{path}: line {lineno}: expected "org_id '
                               f'remap_id" with an integer remap_id, got '
                               f'{line.strip()!r}')
        orig.append(fields[0])
        remap.append(int(fields[1]))
    if sorted(remap) != list(range(len(remap))):
        raise BadDataError(f'{path}: remap_id values must be 0 .. '
                           f'{len(remap) - 1}, each once')
    remap_np = np.array(remap, dtype=np.int64)
    ids: np.ndarray | None = None
    if all(_INT_RE.fullmatch(o) for o in orig):
        values = [int(o) for o in orig]
        if all(-INT64_MAX - 1 <= v <= INT64_MAX for v in values):
            ids = np.array(values, dtype=np.int64)
    if ids is None:
        ids = np.array(orig, dtype=str)
    out = np.empty_like(ids)
    out[remap_np] = ids
    return out


def _check_dense(path: str, kind: str, values: np.ndarray,
                 files: list[str]) -> None:
    """Raises when the ids of ``kind`` leave most of ``0 .. max`` unused:
    the LightGCN format numbers users and items ``0 .. n - 1``, and a
    stray huge id would size every table by it."""
    if not values.size:
        return
    top = int(values.max())
    distinct = int(np.unique(values).size)
    if top + 1 - distinct <= max(distinct, 1000):
        return
    where = ''
    for file in files:
        for lineno, line in enumerate(_read_text(file), 1):
            fields = line.split()
            ids = fields[:1] if kind == USER else fields[1:]
            if any(int(t) == top for t in ids):
                where = f'{file}: line {lineno}: '
                break
        if where:
            break
    raise BadDataError(
        f'{where or path + ": "}{kind} id {top} is far beyond the '
        f'{distinct} distinct {kind} ids in use; the LightGCN format '
        f'numbers {kind}s 0 .. n - 1: remap the ids (or stage '
        f'{kind}_list.txt)')


def _unique_rows(user: np.ndarray, item: np.ndarray,
                 num_items: int) -> tuple[np.ndarray, np.ndarray, int]:
    """First occurrence of every pair, in file order."""
    key = user * num_items + item
    _, first = np.unique(key, return_index=True)
    first.sort()
    return user[first], item[first], key.size - first.size


class LightGCNDataset(RecDataset):
    r"""The LightGCN / NGCF benchmark splits: Gowalla, Yelp2018 and
    Amazon-Book from X. Wang et al., `"Neural Graph Collaborative
    Filtering" <https://arxiv.org/abs/1905.08108>`_ (SIGIR 2019), as used
    by X. He et al., `"LightGCN" <https://arxiv.org/abs/2002.02126>`_
    (SIGIR 2020); and ``'amazon-book-kgat'``, the Amazon-Book split of X.
    Wang et al., `"KGAT" <https://arxiv.org/abs/1905.07854>`_ (KDD 2019;
    70,679 users, 24,915 items, 846,434 interactions in the released
    files), in the same format (its knowledge graph, ``kg_final.txt``, is
    not read here: the interactions serve CF models).

    Raw files ``train.txt`` and ``test.txt`` (lines ``user item item
    ...``) and, when present, ``user_list.txt`` / ``item_list.txt``
    mapping original to remapped ids.  ``ds[0]`` is the full log (training
    pairs first, then test pairs); :meth:`split` defaults to ``'fixed'``:
    the published train / test files, with validation carved from train
    (``val_ratio=0.1`` of each user's training pairs by default, seeded;
    ``val_ratio=0.0`` leaves validation empty, as in the papers, which
    validate on test).  ``'random'`` re-splits the full log.

    Args:
        root: Writable data root, see :class:`RecDataset`.
        name: ``'gowalla'``, ``'yelp2018'``, ``'amazon-book'`` (folder
            ``<name>-lightgcn``) or ``'amazon-book-kgat'`` (folder
            ``amazon-book-kgat``).
        raw_dir: Read-only folder with the raw files.
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    names: ClassVar[tuple[str, ...]] = ('gowalla', 'yelp2018',
                                        'amazon-book', 'amazon-book-kgat')
    #: Data sets of other papers in the same format: name -> (folder, URL
    #: template)
    others: ClassVar[dict[str, tuple[str, str]]] = {
        'amazon-book-kgat': (
            'amazon-book-kgat',
            'https://raw.githubusercontent.com/xiangwang1223/'
            'knowledge_graph_attention_network/master/Data/amazon-book/'
            '{file}'),
    }
    url = ('https://raw.githubusercontent.com/kuandeng/LightGCN/master/'
           'Data/{name}/{file}')
    raw_files = ('train.txt', 'test.txt')
    optional_files: ClassVar[tuple[str, ...]] = ('user_list.txt',
                                                 'item_list.txt')
    splits = ('fixed', 'random')
    default_split = 'fixed'

    def __init__(self, root: str | None = None, name: str = 'gowalla',
                 raw_dir: str | None = None, **kwargs: Any) -> None:
        if name not in self.names:
            raise ValueError(f'LightGCNDataset: unknown name {name!r}; use '
                             f'one of {self.names}')
        self.dataset = name
        self.name = self.folder_name(name=name)
        super().__init__(root, raw_dir, **kwargs)

    @classmethod
    def folder_name(cls, name: str = 'gowalla', **kwargs: Any) -> str:
        if name in cls.others:
            return cls.others[name][0]
        return f'{name}-lightgcn'

    def download(self) -> None:
        os.makedirs(self.raw_dir, exist_ok=True)
        for file in self.raw_files + self.optional_files:
            template = self.others.get(self.dataset, (None, self.url))[1]
            url = template.format(name=self.dataset, file=file)
            try:
                fetch_url(url, osp.join(self.raw_dir, file), self.timeout)
            except OSError:
                if file in self.raw_files:
                    raise
                log.warning('LightGCNDataset: %s not available; original '
                            'ids will be the remapped ones', url)

    def source_files(self) -> list[str] | None:
        files = super().source_files()
        if files is None:
            return None
        return files + [osp.join(self.raw_dir, f)
                        for f in self.optional_files
                        if osp.isfile(osp.join(self.raw_dir, f))]

    def build(self) -> ParsedData:
        parts = {}
        for file in self.raw_files:
            parts[file] = read_lightgcn(osp.join(self.raw_dir, file))
        users = np.concatenate([u for u, _ in parts.values()])
        items = np.concatenate([i for _, i in parts.values()])
        num_users = int(users.max()) + 1 if users.size else 0
        num_items = int(items.max()) + 1 if items.size else 0
        ids = {}
        for kind, file, size in ((USER, 'user_list.txt', num_users),
                                 (ITEM, 'item_list.txt', num_items)):
            path = osp.join(self.raw_dir, file)
            if osp.isfile(path):
                ids[kind] = read_id_list(path)
                if len(ids[kind]) < size:
                    raise BadDataError(
                        f'{path}: lists {len(ids[kind])} {kind}s but '
                        f'train/test use {kind} id {size - 1}')
            else:
                _check_dense(self.raw_dir, kind,
                             users if kind == USER else items,
                             [osp.join(self.raw_dir, f)
                              for f in self.raw_files])
                ids[kind] = np.arange(size, dtype=np.int64)
        num_items = len(ids[ITEM])
        info: dict[str, Any] = {'source': self.raw_dir}
        train_u, train_i, info['train_duplicates'] = _unique_rows(
            *parts['train.txt'], num_items)
        test_u, test_i, info['test_duplicates'] = _unique_rows(
            *parts['test.txt'], num_items)
        in_train = np.isin(test_u * num_items + test_i,
                           train_u * num_items + train_i)
        info['test_in_train_dropped'] = int(in_train.sum())
        if in_train.any():
            log.warning('LightGCNDataset: dropped %d test pairs that are '
                        'also training pairs', int(in_train.sum()))
        test_u, test_i = test_u[~in_train], test_i[~in_train]
        info['num_train'] = int(train_u.size)
        inter = Interactions(
            torch.from_numpy(np.concatenate([train_u, test_u])),
            torch.from_numpy(np.concatenate([train_i, test_i])),
            user_ids=ids[USER], item_ids=ids[ITEM], info=info)
        return ParsedData(inter)

    def _fixed_split(self, seed: int = 0, val_ratio: float = 0.1) -> Split:
        inter = self.interactions
        num_train = inter.info['num_train']
        pairs = torch.stack([inter.user, inter.item])
        out = fixed_split(pairs[:, :num_train], pairs[:, num_train:],
                          inter.num_users, inter.num_items,
                          val_ratio=val_ratio, seed=seed)
        out.info['source'] = inter.info.get('source')
        return out
