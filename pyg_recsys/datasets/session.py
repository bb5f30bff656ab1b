"""Readers of the session and sequence data sets (raw data only).

Two formats, two classes; both return plain lists of item-id sequences and
target tensors with contiguous 0-based item ids.  Session graphs are built
from them by :mod:`pyg_recsys.data.session`.

* :class:`SRGNNSessions`: the SR-GNN pickle format (Yoochoose 1/64,
  Tmall, Nowplaying, Diginetica): ``train.txt`` / ``test.txt`` hold
  ``(prefixes, labels)``, already prefix-augmented.
* :class:`SequenceDataset`: one time-ordered item sequence per user (the
  S3Rec files ``user item item ...`` and SASRec's ``user item`` pairs),
  with :meth:`SequenceDataset.leave_one_out`.

Raw files are located as in :mod:`pyg_recsys.datasets.base`: the
``raw_dir`` argument, else ``$PYG_RECSYS_DATA/<folder>/raw``, else
``<root>/<folder>/raw``.  Nothing is downloaded; missing files raise a
:class:`FileNotFoundError` naming the folder to stage and the upstream URL.
"""
from __future__ import annotations

import contextlib
import gc
import io
import itertools
import os
import os.path as osp
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from pyg_recsys.data.interactions import (
    INT64_MAX,
    Interactions,
    ascii_digits,
    utf8_text,
)
from pyg_recsys.data.session import MODES, SessionGraphs
from pyg_recsys.datasets.base import default_root, find_raw_dir
from pyg_recsys.io import BadDataError

Sequences = list[list[int]]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector while millions of small lists
    are built (they hold no cycles; collection passes over them would
    double the load time), restoring its previous state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global (class, function) lookup, so a
    pickle can only build plain lists, tuples, ints and the like."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f'refusing to load global {module}.{name}; SR-GNN files hold '
            f'plain lists and ints only')


def load_plain_pickle(path: str) -> Any:
    """Loads a pickle of plain Python values without resolving any global
    (no code can run).

    Raises:
        BadDataError: Naming ``path`` if the file is not such a pickle.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        return _NoGlobalsUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:  # noqa: BLE001 - any decoding failure
        raise BadDataError(
            f'{path}: not a readable SR-GNN pickle of plain lists ({exc}); '
            f'restage the file from upstream') from None


def _check_sequences(seqs: Any, path: str, what: str) -> Sequences:
    """Checks ``seqs`` is a list of non-empty lists of non-negative ints
    (vectorised; the per-sequence loop only runs to locate an error)."""
    if not isinstance(seqs, (list, tuple)):
        raise BadDataError(f'{path}: {what} must be a list of item-id lists, '
                           f'got {type(seqs).__name__}')
    if set(map(type, seqs)) - {list, tuple}:
        n, seq = next((n, s) for n, s in enumerate(seqs)
                      if not isinstance(s, (list, tuple)))
        raise BadDataError(f'{path}: {what}[{n}] must be a list of item '
                           f'ids, got {type(seq).__name__}')
    if seqs and min(map(len, seqs)) == 0:
        n = next(n for n, s in enumerate(seqs) if len(s) == 0)
        raise BadDataError(f'{path}: {what}[{n}] is an empty sequence; '
                           f'every sequence needs at least one item')
    types = set(map(type, itertools.chain.from_iterable(seqs)))
    if types - {int}:
        bad = next(t for t in types if t is not int)
        raise BadDataError(f'{path}: {what} holds a {bad.__name__} item id; '
                           f'item ids must be ints')
    try:
        flat = _flat(seqs)
    except OverflowError:
        raise BadDataError(f'{path}: {what} holds an item id that does not '
                           f'fit in int64') from None
    if flat.size and flat.min() < 0:
        raise BadDataError(f'{path}: {what} holds a negative item id; item '
                           f'ids must be non-negative ints')
    return seqs if isinstance(seqs, list) else list(seqs)


def _flat(seqs: Sequences) -> np.ndarray:
    return np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64)


def _remap(seqs: Sequences, ids: np.ndarray) -> Sequences:
    """Maps every original id in ``seqs`` (all must be in ``ids``, an array
    of unique ids) to its index in ``ids``."""
    if not seqs:
        return []
    order = np.argsort(ids, kind='stable')
    flat = order[np.searchsorted(ids[order], _flat(seqs))].tolist()
    ends = list(itertools.accumulate(map(len, seqs)))
    return [flat[e - len(s):e] for s, e in zip(seqs, ends)]


def read_srgnn_examples(path: str) -> tuple[Sequences, list[int]]:
    """Reads an SR-GNN ``train.txt`` / ``test.txt``: a pickled pair
    ``(prefixes, labels)`` of equal length.

    Returns:
        The prefixes (lists of original item ids) and the labels.

    Raises:
        BadDataError: Naming the file, for a pickle that needs globals, a
            wrong shape, lengths that differ, empty prefixes or non-int or
            negative ids.
    """
    obj = load_plain_pickle(path)
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise BadDataError(f'{path}: expected a pair (prefixes, labels), got '
                           f'{type(obj).__name__}'
                           + (f' of length {len(obj)}'
                           if isinstance(obj, (list, tuple)) else ''))
    prefixes = _check_sequences(obj[0], path, 'prefixes')
    labels = obj[1]
    if not isinstance(labels, (list, tuple)):
        raise BadDataError(f'{path}: labels must be a list of item ids, got '
                           f'{type(labels).__name__}')
    if len(labels) != len(prefixes):
        raise BadDataError(f'{path}: {len(prefixes)} prefixes but '
                           f'{len(labels)} labels; they must pair up')
    _check_sequences([list(labels)] if labels else [], path, 'labels')
    return prefixes, list(labels)


def read_srgnn_sessions(path: str) -> Sequences:
    """Reads SR-GNN's ``all_train_seq.txt``: a pickled list of sessions.

    Raises:
        BadDataError: As :func:`read_srgnn_examples`.
    """
    return _check_sequences(load_plain_pickle(path), path, 'sessions')


def _missing_error(cls: str, folder: str, raw_dir: str,
                   missing: list[str], url: str) -> FileNotFoundError:
    return FileNotFoundError(
        f'{cls}: raw files {missing} not found in {raw_dir}; stage the '
        f'{folder!r} folder (set $PYG_RECSYS_DATA to the folder holding '
        f'{folder}/raw, or pass raw_dir=...) with the files from {url}')


def _locate(folder: str, files: tuple[str, ...],
            root: str | None) -> str:
    root = osp.expanduser(os.fspath(root)) if root else default_root()
    raw = find_raw_dir(folder, files, root)
    if all(osp.isfile(osp.join(raw, f)) for f in files):
        return f'raw files in {raw}'
    return (f'not found; stage {", ".join(files)} in {raw} (or point '
            f'$PYG_RECSYS_DATA at a folder holding {folder}/raw)')


class SRGNNSessions:
    r"""Session data sets in the SR-GNN pickle format, from S. Wu et al.,
    `"Session-based Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ (AAAI 2019): Yoochoose 1/64 and
    Diginetica as preprocessed by SR-GNN
    (https://github.com/CRIPAC-DIG/SR-GNN, ``datasets/preprocess.py``),
    Tmall and Nowplaying as preprocessed by GCE-GNN
    (https://github.com/CCIIPLab/GCE-GNN/tree/master/datasets).

    Raw files (folder ``<name>-srgnn``): ``train.txt`` and ``test.txt``,
    pickles of ``(prefixes, labels)``, already prefix-augmented as in the
    paper (a session :math:`s` gives the examples
    :math:`(s_{1:t}, s_{t+1})`); ``all_train_seq.txt`` (optional), the
    un-augmented training sessions.  Pickles are read with an unpickler
    that resolves no globals.

    Item ids are remapped to ``0 .. num_items - 1`` over the items of the
    training examples (prefixes and labels), in increasing original id
    (:attr:`item_ids` maps back).  SR-GNN instead keeps the 1-based ids and
    sizes the embedding table ``max id + 1``, so items that occur only in
    test get untrained embeddings.  Here test-only items (Yoochoose 1/64:
    369 items; none in Tmall or Nowplaying) get no id: with
    ``unseen='drop'`` (default) they are removed from test prefixes, and
    test examples whose label is unseen, or whose prefix becomes empty,
    are dropped; the counts are in :attr:`info` (``num_test_raw`` is the
    published test count, for rescaling a hit rate to the paper's
    denominator, where a dropped example counts as a miss).  With
    ``unseen='keep'`` they get the ids ``num_train_items ..`` after the
    training items (in increasing original id) and every test example is
    kept, as in SR-GNN; no model sees them in training.

    Args:
        name: ``'yoochoose1_64'``, ``'tmall'``, ``'nowplaying'`` or
            ``'diginetica'``.
        root: Data root (default ``$PYG_RECSYS_ROOT`` or ``'datasets'``);
            raw files in ``<root>/<name>-srgnn/raw`` unless found elsewhere.
        raw_dir: Folder with the raw files (read-only is fine).
        unseen: ``'drop'`` or ``'keep'``, see above.

    Attributes:
        train: Training prefixes (lists of 0-based item ids).
        train_y: Training labels, ``LongTensor`` of shape ``[len(train)]``.
        test: Test prefixes.
        test_y: Test labels.
        sessions: Remapped ``all_train_seq.txt`` sessions (items unseen in
            the training examples removed), or ``None`` if absent.
        item_ids: Original id of every item, ``[num_items]`` array.
        num_items: Number of items (rows of an embedding table).
        info: Counts and the source folder.
    """

    names: ClassVar[tuple[str, ...]] = ('yoochoose1_64', 'tmall',
                                        'nowplaying', 'diginetica')
    raw_files: ClassVar[tuple[str, ...]] = ('train.txt', 'test.txt')
    optional_files: ClassVar[tuple[str, ...]] = ('all_train_seq.txt',)
    urls: ClassVar[dict[str, str]] = {
        'yoochoose1_64': 'https://github.com/CRIPAC-DIG/SR-GNN (run '
                         'datasets/preprocess.py on the RecSys Challenge '
                         '2015 yoochoose-clicks.dat)',
        'diginetica': 'https://github.com/CRIPAC-DIG/SR-GNN (run '
                      'datasets/preprocess.py on the CIKM Cup 2016 '
                      'train-item-views.csv)',
        'tmall': 'https://github.com/CCIIPLab/GCE-GNN/tree/master/'
                 'datasets/Tmall',
        'nowplaying': 'https://github.com/CCIIPLab/GCE-GNN/tree/master/'
                      'datasets/Nowplaying',
    }

    def __init__(self, name: str = 'yoochoose1_64', root: str | None = None,
                 raw_dir: str | None = None, unseen: str = 'drop') -> None:
        if name not in self.names:
            raise ValueError(f'SRGNNSessions: unknown name {name!r}; use '
                             f'one of {self.names}')
        if unseen not in ('drop', 'keep'):
            raise ValueError(f"SRGNNSessions: unseen must be 'drop' or "
                             f"'keep', got {unseen!r}")
        self.name = name
        self.folder = self.folder_name(name)
        root = osp.expanduser(os.fspath(root)) if root else default_root()
        self.raw_dir = (os.fspath(raw_dir) if raw_dir else
                        find_raw_dir(self.folder, self.raw_files, root))
        missing = [f for f in self.raw_files
                   if not osp.isfile(osp.join(self.raw_dir, f))]
        if missing:
            raise _missing_error('SRGNNSessions', self.folder, self.raw_dir,
                                 missing, self.urls[name])
        with _gc_paused():
            self._build(unseen)

    @staticmethod
    def folder_name(name: str = 'yoochoose1_64') -> str:
        """The data set's folder under the roots: ``<name>-srgnn``."""
        return f'{name}-srgnn'

    @classmethod
    def locate(cls, root: str | None = None,
               name: str = 'yoochoose1_64') -> str:
        """Where the raw files of ``name`` would be read from."""
        return _locate(cls.folder_name(name), cls.raw_files, root)

    def _build(self, unseen: str) -> None:
        train, train_y = read_srgnn_examples(
            osp.join(self.raw_dir, 'train.txt'))
        test, test_y = read_srgnn_examples(
            osp.join(self.raw_dir, 'test.txt'))
        if not train:
            raise BadDataError(f'{osp.join(self.raw_dir, "train.txt")}: no '
                               f'training examples')
        seen = np.unique(np.fromiter(
            itertools.chain(itertools.chain.from_iterable(train), train_y),
            dtype=np.int64))
        test_items = np.unique(np.fromiter(
            itertools.chain(itertools.chain.from_iterable(test), test_y),
            dtype=np.int64))
        extra = np.setdiff1d(test_items, seen)
        ids = np.concatenate([seen, extra]) if unseen == 'keep' else seen
        remap = {int(o): n for n, o in enumerate(ids.tolist())}
        info: dict[str, Any] = {
            'source': self.raw_dir, 'unseen': unseen,
            'num_train_items': int(seen.size),
            'num_test_only_items': int(extra.size),
            'num_test_raw': len(test),
            'avg_length': (sum(map(len, train)) + sum(map(len, test))
                           + len(train) + len(test))
            / max(len(train) + len(test), 1),
        }
        self.train = _remap(train, ids)
        self.train_y = torch.tensor(_remap([train_y], ids)[0],
                                    dtype=torch.long)
        out, out_y = [], []
        removed = dropped_label = dropped_empty = 0
        for seq, y in zip(test, test_y):
            if y not in remap:
                dropped_label += 1
                continue
            new = [remap[i] for i in seq if i in remap]
            removed += len(seq) - len(new)
            if not new:
                dropped_empty += 1
                continue
            out.append(new)
            out_y.append(remap[y])
        info.update(test_items_removed=removed,
                    test_dropped_unseen_label=dropped_label,
                    test_dropped_empty=dropped_empty)
        self.test = out
        self.test_y = torch.tensor(out_y, dtype=torch.long)
        self.item_ids = ids
        self.num_items = int(ids.size)
        path = osp.join(self.raw_dir, 'all_train_seq.txt')
        self.sessions: Sequences | None = None
        if osp.isfile(path):
            sessions = [[remap[i] for i in s if i in remap]
                        for s in read_srgnn_sessions(path)]
            self.sessions = [s for s in sessions if s]
            info['num_sessions'] = len(self.sessions)
        self.info = info

    def __repr__(self) -> str:
        return (f'SRGNNSessions({self.name}, num_items={self.num_items}, '
                f'num_train={len(self.train)}, num_test={len(self.test)})')


# -- per-user sequences -----------------------------------------------------

def _parse_int(tok: str, path: str, lineno: int, line: str) -> int:
    if not ascii_digits(tok):
        raise BadDataError(f'{path}: line {lineno}: id {tok!r} is not a '
                           f'non-negative integer (line {line.strip()!r})')
    value = int(tok)
    if value > INT64_MAX:
        raise BadDataError(f'{path}: line {lineno}: id {tok!r} is too '
                           f'large; ids must fit in int64')
    return value


def _lines(path: str) -> Iterator[tuple[int, list[str], str]]:
    """(line number, fields, line) of the non-blank lines of a UTF-8 file
    (a leading byte-order mark skipped); bytes that are not UTF-8 raise
    :class:`BadDataError` naming the line."""
    with utf8_text(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if fields:
                yield lineno, fields, line


def read_s3rec(path: str) -> tuple[list[int], Sequences]:
    """Reads an S3Rec file: one line ``user item item ...`` per user, items
    in time order (blank lines are skipped).

    Returns:
        The users (original ids, file order) and their item sequences
        (original ids).

    Raises:
        BadDataError: Naming the file and line of a line without items, an
            id that is not a non-negative integer in int64, a user listed
            twice or bytes that are not UTF-8; or an empty file.
    """
    users: list[int] = []
    seqs: Sequences = []
    seen: set[int] = set()
    for lineno, fields, line in _lines(path):
        joined = ''.join(fields)
        if not ascii_digits(joined):
            for tok in fields:
                _parse_int(tok, path, lineno, line)
        ids = [int(t) for t in fields]
        if max(ids) > INT64_MAX:
            for tok in fields:
                _parse_int(tok, path, lineno, line)
        if len(ids) < 2:
            raise BadDataError(f'{path}: line {lineno}: user {ids[0]} '
                               f'has no items; expected "user item item '
                               f'..."')
        if ids[0] in seen:
            raise BadDataError(
                f'{path}: line {lineno}: user {ids[0]} is listed '
                f'twice; expected one line per user')
        seen.add(ids[0])
        users.append(ids[0])
        seqs.append(ids[1:])
    if not users:
        raise BadDataError(f'{path}: file is empty; expected lines "user '
                           f'item item ..."')
    return users, seqs


def read_sasrec(path: str) -> tuple[list[int], Sequences]:
    """Reads a SASRec file: one ``user item`` pair per line, each user's
    pairs in time order (users need not be contiguous; file order is kept
    per user, as SASRec's ``data_partition`` does).

    Returns:
        The users (original ids, order of first appearance) and their item
        sequences (original ids).

    Raises:
        BadDataError: Naming the file and line of a line that is not two
            non-negative integers in int64, or of bytes that are not
            UTF-8; or an empty file.
    """
    by_user: dict[int, list[int]] = {}
    for lineno, fields, line in _lines(path):
        if len(fields) != 2:
            raise BadDataError(f'{path}: line {lineno}: expected "user '
                               f'item", got {line.strip()!r}')
        u, i = (_parse_int(t, path, lineno, line) for t in fields)
        by_user.setdefault(u, []).append(i)
    if not by_user:
        raise BadDataError(f'{path}: file is empty; expected lines "user '
                           f'item"')
    return list(by_user), list(by_user.values())


@dataclass
class LeaveOneOutSplit:
    """Leave-one-out split of per-user sequences (see
    :meth:`SequenceDataset.leave_one_out`).

    Attributes:
        train: Training sequences, one per user (all but the last two
            items; the whole sequence for users with fewer than 3 items).
        val: Validation prefixes (all but the last two items).
        val_y: Validation targets (second-to-last items).
        val_user: User index of every validation example.
        test: Test prefixes (all but the last item, so including the
            validation item).
        test_y: Test targets (last items).
        test_user: User index of every test example.
        info: How the split was made.
    """

    train: Sequences
    val: Sequences
    val_y: torch.Tensor
    val_user: torch.Tensor
    test: Sequences
    test_y: torch.Tensor
    test_user: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


class SequenceDataset:
    r"""Per-user item sequences for sequential recommendation.

    * ``'beauty'``, ``'sports'``, ``'toys'``, ``'yelp-s3rec'``,
      ``'lastfm-s3rec'``: the files of K. Zhou et al., `"S3-Rec"
      <https://arxiv.org/abs/2008.07873>`_ (CIKM 2020),
      https://github.com/RUCAIBox/CIKM2020-S3Rec/tree/master/data
      (``<Name>.txt``, one line ``user item item ...`` per user).
    * ``'amazon-games'``: ``Video.txt`` of W.-C. Kang and J. McAuley,
      `"Self-Attentive Sequential Recommendation"
      <https://arxiv.org/abs/1808.09781>`_ (ICDM 2018),
      https://github.com/kang205/SASRec/tree/master/data (``user item``
      lines, time-ordered per user).

    Item ids are remapped to ``0 .. num_items - 1`` in increasing original
    id (:attr:`item_ids` maps back); users are numbered in file order
    (:attr:`user_ids`).  Repeated items in a sequence are kept.

    Args:
        name: One of :attr:`names`.
        root: Data root (default ``$PYG_RECSYS_ROOT`` or ``'datasets'``);
            raw files in ``<root>/<folder>/raw`` unless found elsewhere.
        raw_dir: Folder with the raw file (read-only is fine).

    Attributes:
        sequences: One list of 0-based item ids per user, in time order.
        user_ids: Original user ids, ``[num_users]`` array.
        item_ids: Original item ids, ``[num_items]`` array.
        num_users, num_items, num_actions: Sizes.
    """

    names: ClassVar[tuple[str, ...]] = ('beauty', 'sports', 'toys',
                                        'yelp-s3rec', 'lastfm-s3rec',
                                        'amazon-games')
    #: name -> (folder, file, format)
    files: ClassVar[dict[str, tuple[str, str, str]]] = {
        'beauty': ('beauty-s3rec', 'Beauty.txt', 's3rec'),
        'sports': ('sports-and-outdoors-s3rec', 'Sports_and_Outdoors.txt',
                   's3rec'),
        'toys': ('toys-and-games-s3rec', 'Toys_and_Games.txt', 's3rec'),
        'yelp-s3rec': ('yelp-s3rec', 'Yelp.txt', 's3rec'),
        'lastfm-s3rec': ('lastfm-s3rec', 'LastFM.txt', 's3rec'),
        'amazon-games': ('amazon-video-sasrec', 'Video.txt', 'sasrec'),
    }
    urls: ClassVar[dict[str, str]] = {
        's3rec': 'https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/'
                 'master/data/{file}',
        'sasrec': 'https://raw.githubusercontent.com/kang205/SASRec/master/'
                  'data/{file}',
    }

    def __init__(self, name: str = 'beauty', root: str | None = None,
                 raw_dir: str | None = None) -> None:
        if name not in self.names:
            raise ValueError(f'SequenceDataset: unknown name {name!r}; use '
                             f'one of {self.names}')
        self.name = name
        self.folder, self.file, self.format = self.files[name]
        root = osp.expanduser(os.fspath(root)) if root else default_root()
        self.raw_dir = (os.fspath(raw_dir) if raw_dir else
                        find_raw_dir(self.folder, (self.file,), root))
        path = osp.join(self.raw_dir, self.file)
        if not osp.isfile(path):
            raise _missing_error(
                'SequenceDataset', self.folder, self.raw_dir, [self.file],
                self.urls[self.format].format(file=self.file))
        reader = read_s3rec if self.format == 's3rec' else read_sasrec
        with _gc_paused():
            users, seqs = reader(path)
            ids = np.unique(np.fromiter(
                itertools.chain.from_iterable(seqs), dtype=np.int64))
            sequences = _remap(seqs, ids)
        self._init(np.asarray(users, dtype=np.int64), ids, sequences,
                   {'source': path})

    def _init(self, user_ids: np.ndarray, item_ids: np.ndarray,
              sequences: Sequences, info: dict[str, Any]) -> None:
        self.sequences: Sequences = sequences
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.num_users = len(user_ids)
        self.num_items = len(item_ids)
        self.num_actions = sum(map(len, sequences))
        self.info: dict[str, Any] = info

    @classmethod
    def from_interactions(cls, inter: Interactions,
                          name: str = 'custom') -> SequenceDataset:
        """Per-user sequences of a log the user brings: every user's items
        in time order (ties, or no time: row order;
        :meth:`Interactions.sequences`), with its id maps; repeated items
        are kept where the log has them.  Works with
        :meth:`leave_one_out` and :func:`next_item_task` as the named
        files do.

        Args:
            inter: The log, e.g. :meth:`Interactions.from_dataframe` with
                ``dedup='keep'`` (:meth:`from_dataframe` does that).
            name: Name of the data set in records.
        """
        users, seqs = inter.sequences()
        out = cls.__new__(cls)
        out.name = name
        out.folder = out.file = out.format = out.raw_dir = None
        out._init(inter.user_ids[users], inter.item_ids, seqs,
                  dict(inter.info))
        return out

    @classmethod
    def from_dataframe(cls, df: Any, user: str, item: str,
                       time: str | None = None, name: str = 'custom',
                       k_core: int | tuple[int, int] | None = None
                       ) -> SequenceDataset:
        """Per-user sequences from a :class:`pandas.DataFrame` of (user,
        item[, time]) rows: :meth:`Interactions.from_dataframe` (string,
        categorical or integer ids, naive or timezone-aware times, clear
        errors for missing values) keeping repeated items, then
        :meth:`from_interactions`."""
        inter = Interactions.from_dataframe(df, user=user, item=item,
                                            time=time, dedup='keep',
                                            k_core=k_core)
        return cls.from_interactions(inter, name)

    @classmethod
    def folder_name(cls, name: str = 'beauty') -> str:
        """The data set's folder under the roots (e.g. ``beauty-s3rec``)."""
        return cls.files[name][0]

    @classmethod
    def locate(cls, root: str | None = None, name: str = 'beauty') -> str:
        """Where the raw file of ``name`` would be read from."""
        folder, file, _ = cls.files[name]
        return _locate(folder, (file,), root)

    def leave_one_out(self, max_len: int | None = None) -> LeaveOneOutSplit:
        """Leave-one-out split as in SASRec and S3Rec: per user, the last
        item is the test target, the second-to-last the validation target,
        the rest is training.

        Users with fewer than 3 items keep their whole sequence for
        training and get no validation or test example (SASRec's
        ``data_partition`` rule); their number is in ``info``.

        Args:
            max_len: If given, keep only the last ``max_len`` items of every
                training sequence and prefix (SASRec's ``maxlen``).
        """
        if max_len is not None and (isinstance(max_len, bool)
                                    or not isinstance(max_len, int)
                                    or max_len < 1):
            raise ValueError(f'SequenceDataset.leave_one_out: max_len must '
                             f'be a positive int or None, got {max_len!r}')
        cut = (lambda s: s[-max_len:]) if max_len else (lambda s: s)
        train: Sequences = []
        val: Sequences = []
        test: Sequences = []
        val_y, test_y, users = [], [], []
        short = 0
        for u, seq in enumerate(self.sequences):
            if len(seq) < 3:
                train.append(cut(list(seq)))
                short += 1
                continue
            train.append(cut(seq[:-2]))
            val.append(cut(seq[:-2]))
            val_y.append(seq[-2])
            test.append(cut(seq[:-1]))
            test_y.append(seq[-1])
            users.append(u)
        user = torch.tensor(users, dtype=torch.long)
        return LeaveOneOutSplit(
            train=train, val=val,
            val_y=torch.tensor(val_y, dtype=torch.long), val_user=user,
            test=test, test_y=torch.tensor(test_y, dtype=torch.long),
            test_user=user.clone(),
            info={'kind': 'leave_one_out', 'dataset': self.name,
                  'max_len': max_len, 'num_short_users': short})

    def __repr__(self) -> str:
        return (f'SequenceDataset({self.name}, num_users={self.num_users}, '
                f'num_items={self.num_items}, '
                f'num_actions={self.num_actions})')


@dataclass
class NextItemTask:
    """Training, validation and test examples of a next-item data set, as
    :class:`~pyg_recsys.data.session.SessionGraphs` (see
    :func:`next_item_task`).

    Attributes:
        train: Training examples.
        val: Validation examples (one target each).
        test: Test examples (one target each).
        num_items: Number of items.
        info: How the examples were made (data set, mode, max_len,
            validation rule, counts).
    """

    train: SessionGraphs
    val: SessionGraphs
    test: SessionGraphs
    num_items: int
    info: dict[str, Any] = field(default_factory=dict)


def next_item_task(ds: SRGNNSessions | SequenceDataset,
                   mode: str = 'prefix', max_len: int | None = None,
                   val_fraction: float = 0.1,
                   seed: int = 0) -> NextItemTask:
    """Examples of a session or sequence data set for the one training
    loop and evaluator of the session models.

    * :class:`SRGNNSessions`: the training pickle's prefix examples (already
      augmented, so only ``mode='prefix'``); a random ``val_fraction`` of
      them (seeded) is held out for validation, as the ``--validation``
      option of SR-GNN's code does; the test pickle is the test part.
    * :class:`SequenceDataset`: leave-one-out
      (:meth:`SequenceDataset.leave_one_out`); the training sequences give
      one example per prefix (``'prefix'``: SR-GNN / TAGNN, and RecBole's
      sequential training) or one per sequence with a target at every
      step (``'sequence'``: SASRec / GRU4Rec).

    Args:
        ds: The data set.
        mode: ``'prefix'`` or ``'sequence'``.
        max_len: Keep the last ``max_len`` steps of every example (training,
            validation and test alike); ``None`` keeps everything.
        val_fraction: Share of SR-GNN training examples held out.
        seed: Seed of that hold-out.
    """
    if mode not in MODES:
        raise ValueError(f"next_item_task: unknown mode '{mode}'; use one of "
                         f'{MODES}')
    if not isinstance(ds, (SRGNNSessions, SequenceDataset)):
        raise TypeError(f'next_item_task: expected SRGNNSessions or '
                        f'SequenceDataset, got {type(ds).__name__}')
    info: dict[str, Any] = {'dataset': ds.name, 'mode': mode,
                            'max_len': max_len}
    n = ds.num_items
    if isinstance(ds, SRGNNSessions):
        if mode != 'prefix':
            raise ValueError(f"next_item_task: {ds.name} holds prefix "
                             f"examples that are already augmented; use "
                             f"mode='prefix'")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f'next_item_task: val_fraction must be in '
                             f'(0, 1), got {val_fraction}')
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(ds.train), generator=gen)
        num_val = int(round(val_fraction * len(ds.train)))
        val_idx, train_idx = order[:num_val].sort().values, \
            order[num_val:].sort().values
        train = SessionGraphs([ds.train[i] for i in train_idx.tolist()],
                              targets=ds.train_y[train_idx],
                              max_len=max_len, num_items=n)
        val = SessionGraphs([ds.train[i] for i in val_idx.tolist()],
                            targets=ds.train_y[val_idx], max_len=max_len,
                            num_items=n)
        test = SessionGraphs(ds.test, targets=ds.test_y, max_len=max_len,
                             num_items=n)
        info.update(validation=f'random {val_fraction:g} of the training '
                    f'examples (seed {seed})', split='SR-GNN pickles',
                    num_test_raw=ds.info.get('num_test_raw', len(ds.test)))
    else:
        split = ds.leave_one_out()
        train = SessionGraphs(split.train, mode=mode, max_len=max_len,
                              num_items=n)
        val = SessionGraphs(split.val, targets=split.val_y, max_len=max_len,
                            num_items=n)
        test = SessionGraphs(split.test, targets=split.test_y,
                             max_len=max_len, num_items=n)
        info.update(split='leave-one-out (last item test, second-to-last '
                    'validation)', num_short_users=split.info[
                        'num_short_users'])
    info.update(num_train=len(train), num_val=len(val), num_test=len(test))
    return NextItemTask(train, val, test, n, info)


__all__ = ['SRGNNSessions', 'SequenceDataset', 'LeaveOneOutSplit',
           'NextItemTask', 'next_item_task',
           'load_plain_pickle', 'read_srgnn_examples', 'read_srgnn_sessions',
           'read_s3rec', 'read_sasrec']
