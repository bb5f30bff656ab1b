"""User-item interaction logs: id maps, deduplication, k-core, validation.

An :class:`Interactions` object is the full log of a data set, with users
and items re-indexed to contiguous ids ``0 .. n - 1`` (sorted by original
id, so the mapping is deterministic) and the original ids kept for the way
back.  :func:`read_table` builds one from a CSV / TSV / Parquet file and
:func:`from_tensors` from arrays; both drop duplicate pairs and can apply
an iterative k-core filter.  Splitting into train / validation / test is
the job of :mod:`pyg_recsys.data.split`.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.io import BadDataError
from pyg_recsys.schema import ITEM, USER, USER_ITEM, build_graph

log = logging.getLogger(__name__)

DEDUP = ('last', 'first', 'mean', 'keep')
_INT_RE = re.compile(r'-?(0|[1-9][0-9]*)')
_Column = int | str


#: The largest id an int64 holds.
INT64_MAX = 2 ** 63 - 1
_NEWLINE = b'\n'


def text_encoding(encoding: str) -> str:
    """``encoding``, with UTF-8 read as ``'utf-8-sig'`` so that a leading
    byte-order mark (as Windows tools write it) is dropped rather than
    glued to the first field."""
    if encoding.lower().replace('_', '-') in ('utf-8', 'utf8'):
        return 'utf-8-sig'
    return encoding


def undecodable(label: str, open_text: Callable[[], TextIO],
                exc: UnicodeDecodeError,
                hint: str = 'is it a binary file, or text in another '
                            'encoding?') -> BadDataError:
    """The error for a file that is not text in its encoding: names
    ``label`` and the line of the first bad byte (found by decoding the
    bytes behind ``open_text`` again, only on this error path)."""
    where = ''
    try:
        with open_text() as f:
            raw = f.buffer.read()  # type: ignore[attr-defined]
            encoding = f.encoding
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        where = f' line {raw.count(_NEWLINE, 0, e.start) + 1}:'
    except (AttributeError, OSError, LookupError):
        pass
    byte = exc.object[exc.start:exc.start + 1].hex()
    return BadDataError(f'{label}:{where} not valid text in the expected '
                        f'encoding ({exc.encoding}: byte 0x{byte}, '
                        f'{exc.reason}); {hint}')


@contextlib.contextmanager
def utf8_text(path: str) -> Iterator[TextIO]:
    """Opens a UTF-8 text file for reading (a leading byte-order mark
    dropped); bytes that are not UTF-8, met anywhere while the block
    reads, raise :class:`~pyg_recsys.io.BadDataError` naming the file
    and the line (:func:`undecodable`)."""
    def open_text() -> TextIO:
        return open(path, encoding='utf-8-sig')
    try:
        with open_text() as f:
            yield f
    except UnicodeDecodeError as e:
        raise undecodable(path, open_text, e) from None


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is a non-negative integer written in ASCII digits
    only (no sign, ``_`` or other scripts' digits, which :func:`int`
    would take)."""
    return text.isascii() and text.isdigit()


def _pandas() -> Any:
    """The :mod:`pandas` module, or ``None`` when it is not installed
    (read at call time, so tests can switch the fast path off)."""
    try:
        return importlib.import_module('pandas')
    except ImportError:
        return None


@dataclass(eq=False, repr=False)
class Interactions:
    """A user-item interaction log with contiguous ids.

    Attributes:
        user: ``[E]`` long tensor of user ids in ``0 .. num_users - 1``.
        item: ``[E]`` long tensor of item ids in ``0 .. num_items - 1``.
        rating: Optional ``[E]`` float tensor of explicit feedback.
        time: Optional ``[E]`` long (or float) tensor of timestamps.
        user_ids: Original user ids, ``user_ids[u]`` for contiguous id
            ``u`` (a numpy array, so string ids work).  ``None`` means the
            identity map of size ``user.max() + 1``.
        item_ids: Original item ids, as ``user_ids``.
        info: Provenance (source file, deduplication, k-core ...).

    Rows are kept in their original (file) order; that order breaks ties
    between equal timestamps wherever order matters.
    """

    user: Tensor
    item: Tensor
    rating: Tensor | None = None
    time: Tensor | None = None
    user_ids: Any = None
    item_ids: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user = torch.as_tensor(self.user).long().view(-1)
        self.item = torch.as_tensor(self.item).long().view(-1)
        num = self.user.numel()
        if self.item.numel() != num:
            raise ValueError(f'Interactions: user and item must have the '
                             f'same length, got {num} and '
                             f'{self.item.numel()}')
        if self.rating is not None:
            self.rating = torch.as_tensor(self.rating).float().view(-1)
        if self.time is not None:
            time = torch.as_tensor(self.time).view(-1)
            if not time.is_floating_point():
                time = time.long()
            self.time = time
        for name in ('rating', 'time'):
            value = getattr(self, name)
            if value is not None and value.numel() != num:
                raise ValueError(f'Interactions: {name} has {value.numel()} '
                                 f'entries but there are {num} '
                                 f'interactions; pass one per interaction')
        for kind in ('user', 'item'):
            index = getattr(self, kind)
            ids = getattr(self, f'{kind}_ids')
            if ids is None:
                size = int(index.max()) + 1 if num > 0 else 0
                ids = np.arange(size, dtype=np.int64)
            else:
                ids = np.asarray(ids)
            setattr(self, f'{kind}_ids', ids)
            if num > 0 and (int(index.min()) < 0
                            or int(index.max()) >= len(ids)):
                raise ValueError(
                    f'Interactions: {kind} ids must lie in [0, {len(ids)}) '
                    f'(the length of {kind}_ids), got '
                    f'[{int(index.min())}, {int(index.max())}]')

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return self.user.numel()

    def __len__(self) -> int:
        return self.user.numel()

    def __repr__(self) -> str:
        extra = [name for name in ('rating', 'time')
                 if getattr(self, name) is not None]
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, '
                f'num_interactions={len(self)}, attrs={extra})')

    def _lookup(self, kind: str, orig_id: Any) -> int:
        cache = self.__dict__.setdefault('_index_cache', {})
        if kind not in cache:
            ids = getattr(self, f'{kind}_ids').tolist()
            cache[kind] = {key: idx for idx, key in enumerate(ids)}
        try:
            return cache[kind][orig_id]
        except KeyError:
            raise KeyError(f'Interactions.{kind}_index: unknown {kind} id '
                           f'{orig_id!r}') from None

    def user_index(self, orig_id: Any) -> int:
        """The contiguous id of the user with original id ``orig_id``."""
        return self._lookup('user', orig_id)

    def item_index(self, orig_id: Any) -> int:
        """The contiguous id of the item with original id ``orig_id``."""
        return self._lookup('item', orig_id)

    def to_hetero(self) -> HeteroData:
        """The full log as a :class:`~torch_geometric.data.HeteroData`
        (:func:`~pyg_recsys.schema.build_graph`).

        Every interaction is on ``('user', 'interacts', 'item')`` and its
        reverse on ``('item', 'rev_interacts', 'user')``, with ``rating``
        and ``time`` edge attributes when present, and the original ids in
        ``data.orig_ids``.  This is the whole log, not a message-passing
        graph: use :meth:`Split.graph` for training.
        """
        attrs = {name: getattr(self, name) for name in ('rating', 'time')
                 if getattr(self, name) is not None}
        return build_graph({USER: self.num_users, ITEM: self.num_items},
                           {USER_ITEM: torch.stack([self.user, self.item])},
                           {USER_ITEM: attrs},
                           ids={USER: self.user_ids, ITEM: self.item_ids})

    @classmethod
    def from_dataframe(cls, df: Any, user: str, item: str,
                       rating: str | None = None, time: str | None = None,
                       *, dedup: str = 'last',
                       k_core: int | tuple[int, int] | None = None
                       ) -> Interactions:
        """Builds the log from a :class:`pandas.DataFrame`; see
        :func:`from_dataframe`."""
        return from_dataframe(df, user=user, item=item, rating=rating,
                              time=time, dedup=dedup, k_core=k_core)

    def sequences(self) -> tuple[np.ndarray, list[list[int]]]:
        """Every user's items in time order (ties, or no time: row order),
        for next-item models: ``(users, sequences)`` with the contiguous
        user ids that have interactions and one list of contiguous item
        ids each.  Needs unique rows only if the caller wants them; repeats
        of an item are kept."""
        order = torch.arange(len(self))
        if self.time is not None:
            order = torch.sort(self.time, stable=True).indices
        order = order[torch.sort(self.user[order], stable=True).indices]
        user, item = self.user[order], self.item[order]
        users, counts = torch.unique_consecutive(user, return_counts=True)
        seqs = [s.tolist() for s in torch.split(item, counts.tolist())]
        return users.numpy(), seqs

    def subset(self, mask: Tensor, reindex: bool = False) -> Interactions:
        """The interactions selected by a boolean mask or an index tensor.

        Args:
            mask: ``[E]`` bool mask, or long indices of the rows to keep.
            reindex: If ``False`` (default) the id space and id maps are
                kept, so ids stay comparable with the full log (some users
                or items may be left without interactions).  If ``True``
                users and items without interactions are dropped and the
                rest re-indexed contiguously (order of original ids kept).
        """
        mask = torch.as_tensor(mask)
        if mask.dtype == torch.bool:
            if mask.numel() != len(self):
                raise ValueError(f'Interactions.subset: mask has '
                                 f'{mask.numel()} entries but there are '
                                 f'{len(self)} interactions')
            index = mask.nonzero().view(-1)
        else:
            index = mask.long().view(-1)
        out = Interactions(
            self.user[index], self.item[index],
            None if self.rating is None else self.rating[index],
            None if self.time is None else self.time[index],
            self.user_ids, self.item_ids, dict(self.info))
        return _compact(out) if reindex else out


def _compact(inter: Interactions) -> Interactions:
    """Drops users / items without interactions and re-indexes."""
    users, user = torch.unique(inter.user, return_inverse=True)
    items, item = torch.unique(inter.item, return_inverse=True)
    return Interactions(user, item, inter.rating, inter.time,
                        inter.user_ids[users.numpy()],
                        inter.item_ids[items.numpy()], dict(inter.info))


# ---------------------------------------------------------------------------
# Building from arrays: deduplication and k-core
# ---------------------------------------------------------------------------

def _check_options(where: str, dedup: str, k_core: Any,
                   has_rating: bool) -> tuple[int, int] | None:
    if dedup not in DEDUP:
        raise ValueError(f"{where}: dedup must be one of {DEDUP}, got "
                         f"{dedup!r}")
    if dedup == 'mean' and not has_rating:
        raise ValueError(f"{where}: dedup='mean' averages ratings, but no "
                         f"rating was given; use 'last' or 'first'")
    if k_core is None:
        return None
    pair = k_core if isinstance(k_core, (tuple, list)) else (k_core,) * 2
    if (len(pair) != 2
            or not all(isinstance(k, int) and k >= 1 for k in pair)):
        raise ValueError(f'{where}: k_core must be a positive int or a pair '
                         f'(k_user, k_item) of them, got {k_core!r}')
    return int(pair[0]), int(pair[1])


def _dedup(user: np.ndarray, item: np.ndarray, num_items: int,
           rating: np.ndarray | None, time: np.ndarray | None,
           how: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Rows to keep (ascending) after dropping duplicate pairs, the
    (averaged) ratings of the kept rows, and the number of rows dropped
    (``how='keep'``: every row)."""
    num = user.size
    if how == 'keep':
        return np.arange(num), rating, 0
    key = user * num_items + item
    pos = np.arange(num)
    if time is None:
        order = np.argsort(key, kind='stable')
    else:
        order = np.lexsort((pos, time, key))
    sorted_key = key[order]
    new_group = np.empty(num, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    if starts.size == num:  # no duplicates
        return pos, rating, 0
    ends = np.append(starts[1:], num) - 1
    keep = order[starts] if how == 'first' else order[ends]
    if how == 'mean':
        counts = ends - starts + 1
        rating = np.add.reduceat(rating[order], starts) / counts
    perm = np.argsort(keep, kind='stable')
    keep = keep[perm]
    if how == 'mean':
        rating = rating[perm]
    elif rating is not None:
        rating = rating[keep]
    return keep, rating, num - keep.size


def k_core_mask(user: Tensor, item: Tensor, k_user: int,
                k_item: int | None = None) -> Tensor:
    """Iterative k-core filter (vectorized with :func:`torch.bincount`).

    Repeatedly drops interactions of users with fewer than ``k_user`` and
    items with fewer than ``k_item`` interactions until no more change.

    Returns:
        ``[E]`` bool mask of the interactions that survive.
    """
    k_item = k_user if k_item is None else k_item
    user = torch.as_tensor(user).long()
    item = torch.as_tensor(item).long()
    num_users = int(user.max()) + 1 if user.numel() else 0
    num_items = int(item.max()) + 1 if item.numel() else 0
    keep = torch.ones_like(user, dtype=torch.bool)
    count = user.numel()
    while True:
        du = torch.bincount(user[keep], minlength=num_users)
        di = torch.bincount(item[keep], minlength=num_items)
        keep = keep & (du[user] >= k_user) & (di[item] >= k_item)
        new_count = int(keep.sum())
        if new_count == count:
            return keep
        count = new_count


def _build(user: np.ndarray, user_ids: np.ndarray, item: np.ndarray,
           item_ids: np.ndarray, rating: np.ndarray | None,
           time: np.ndarray | None, dedup: str,
           k_core: tuple[int, int] | None,
           info: dict[str, Any], where: str) -> Interactions:
    keep, rating, dropped = _dedup(user, item, len(item_ids), rating,
                                   time, dedup)
    info = dict(info, dedup=dedup, num_duplicates=int(dropped))
    out = Interactions(
        torch.from_numpy(user[keep]), torch.from_numpy(item[keep]),
        None if rating is None else torch.from_numpy(rating),
        None if time is None else torch.from_numpy(time[keep]),
        user_ids, item_ids, info)
    if k_core is not None:
        mask = k_core_mask(out.user, out.item, *k_core)
        if mask.numel() and not bool(mask.any()):
            raise ValueError(
                f'{where}: k_core={tuple(k_core)} removed all '
                f'{mask.numel()} interactions (no subset where every user '
                f'has >= {k_core[0]} and every item >= {k_core[1]} '
                f'interactions); lower k_core')
        out = out.subset(mask, reindex=True)
        out.info.update(k_core=list(k_core),
                        k_core_dropped=int((~mask).sum()))
    return out


def _unique_ids(values: np.ndarray,
                where: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids and the contiguous code of every value."""
    uniq, codes = np.unique(_id_values(values, where), return_inverse=True)
    return uniq, codes.reshape(-1).astype(np.int64)


def _id_values(values: np.ndarray, where: str) -> np.ndarray:
    """Ids as an int64 or str array; raises for float, boolean, mixed
    and other ids."""
    if values.dtype.kind in 'fcb':
        kind = 'boolean' if values.dtype.kind == 'b' else str(values.dtype)
        raise BadDataError(f'{where}: ids must be integers or strings, got '
                           f'{kind} ids')
    if values.dtype.kind == 'O':
        kinds = {type(v) for v in values.tolist()}
        if kinds & {bool, np.bool_}:
            raise BadDataError(f'{where}: ids must be integers or strings, '
                               f'got boolean ids')
        ints = {k for k in kinds if issubclass(k, (int, np.integer))}
        strs = {k for k in kinds if issubclass(k, str)}
        if ints and strs:
            raise BadDataError(f'{where}: ids mix integers and strings; '
                               f'convert the column to one type (e.g. '
                               f'.astype(str))')
        if kinds - ints - strs:
            bad = sorted(k.__name__ for k in kinds - ints - strs)
            raise BadDataError(f'{where}: ids must be integers or strings, '
                               f'got {bad}')
        values = (values.astype(np.int64) if ints
                  else values.astype(str))
    return values


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def from_tensors(user: Any, item: Any, rating: Any = None,
                 time: Any = None, *, dedup: str = 'last',
                 k_core: int | tuple[int, int] | None = None
                 ) -> Interactions:
    """Builds :class:`Interactions` from per-interaction arrays.

    Args:
        user: ``[E]`` original user ids (tensor, array or list; integers or
            strings).  They are mapped to contiguous ids sorted by original
            id.
        item: ``[E]`` original item ids, as ``user``.
        rating: Optional ``[E]`` ratings (finite numbers).
        time: Optional ``[E]`` timestamps (finite numbers).
        dedup: What to do with repeated ``(user, item)`` pairs:
            ``'last'`` keeps the latest one by ``time`` (ties, or no time:
            the later row), ``'first'`` the earliest one, ``'mean'`` keeps
            the latest row with its rating replaced by the mean rating of
            the pair, ``'keep'`` keeps every row (repeated consumption in
            sequences; splits of pairs need unique pairs).  Kept rows stay
            in their original order.
        k_core: Optional ``k`` or ``(k_user, k_item)``: after
            deduplication, iteratively drop users and items with fewer
            interactions, then re-index.
    """
    where = 'from_tensors'
    k_pair = _check_options(where, dedup, k_core, rating is not None)
    u = _as_numpy(user).reshape(-1)
    i = _as_numpy(item).reshape(-1)
    if u.size != i.size:
        raise ValueError(f'{where}: got {u.size} users but {i.size} items; '
                         f'pass one of each per interaction')
    user_ids, u_codes = _unique_ids(u, f'{where}: user')
    item_ids, i_codes = _unique_ids(i, f'{where}: item')
    arrays: dict[str, np.ndarray | None] = {}
    for name, value in (('rating', rating), ('time', time)):
        if value is None:
            arrays[name] = None
            continue
        arr = _as_numpy(value).reshape(-1)
        if arr.size != u.size:
            raise ValueError(f'{where}: {name} has {arr.size} entries but '
                             f'there are {u.size} interactions')
        if arr.dtype.kind == 'f':
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise ValueError(f'{where}: {name} at index {bad[0]} is '
                                 f'{arr[bad[0]]}; pass finite numbers')
        if name == 'rating':
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in 'iub':
            arr = arr.astype(np.int64)
        arrays[name] = arr
    return _build(u_codes, user_ids, i_codes, item_ids, arrays['rating'],
                  arrays['time'], dedup, k_pair, {'source': 'tensors'},
                  where)


# The text pandas gives a missing value when a column is cast to str.
_MISSING_TEXT = frozenset({'', 'nan', 'NaN', 'None', '<NA>', 'NaT'})


def _frame_ids(series: Any, role: str, where: str) -> np.ndarray:
    """The ids of a DataFrame column as an int64 or str array."""
    pd = _pandas()
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if bool(series.isna().any()):
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise BadDataError(f'{where}: {role} id at row {row} is missing '
                               f'(NaN category); drop or fill missing ids '
                               f'first')
        series = series.astype(series.cat.categories.dtype)
        dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise BadDataError(f'{where}: {role} ids must be integers or strings, '
                           f'got boolean ids')
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise BadDataError(f'{where}: {role} id at row {row} is missing '
                           f'(None / NaN); drop or fill missing ids first')
    if pd.api.types.is_integer_dtype(dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        raise BadDataError(f'{where}: {role} ids must be integers or strings, '
                           f'got {dtype} ids; convert the column with '
                           f".astype('int64') or .astype(str)")
    values = series.to_numpy(dtype=object)
    text = np.fromiter((isinstance(v, str) and v in _MISSING_TEXT
                        for v in values.tolist()), dtype=bool,
                       count=values.size)
    if text.any():
        row = int(np.flatnonzero(text)[0])
        raise BadDataError(f'{where}: {role} id {values[row]!r} at row {row} '
                           f'is the text of a missing value; drop or fill '
                           f'missing ids before converting them to str')
    return _id_values(values, f'{where}: {role}')


def _frame_numbers(series: Any, role: str, where: str) -> np.ndarray:
    """Ratings or times of a DataFrame column: finite numbers, or
    datetimes (naive ones read as UTC, aware ones converted to UTC) as
    seconds since the epoch (int64, float64 where there are fractions of
    a second)."""
    pd = _pandas()
    if series.isna().to_numpy().any():
        row = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise BadDataError(f'{where}: {role} at row {row} is missing (None / '
                           f'NaN / NaT); drop or fill it first')
    dtype = series.dtype
    if role == 'time' and not (pd.api.types.is_numeric_dtype(dtype)
                               and not pd.api.types.is_bool_dtype(dtype)):
        try:
            stamps = pd.to_datetime(series, utc=True)
        except (TypeError, ValueError) as e:
            raise BadDataError(f'{where}: time must be numbers or datetimes, '
                               f'got {dtype} ({e})') from None
        return _datetime_seconds(stamps.to_numpy(dtype='datetime64[ns]'))
    if not pd.api.types.is_numeric_dtype(dtype):
        try:
            values = series.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise BadDataError(f'{where}: {role} must be numbers, got '
                               f'{dtype}') from None
    else:
        values = series.to_numpy()
    if values.dtype.kind == 'f':
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BadDataError(f'{where}: {role} at row {int(bad[0])} is '
                               f'{values[bad[0]]}; pass finite numbers')
    return values


def _datetime_seconds(values: np.ndarray) -> np.ndarray:
    """``datetime64`` values as seconds since the epoch: int64 when all
    are whole seconds, float64 otherwise (order is kept either way)."""
    ns = values.astype('datetime64[ns]').astype(np.int64)
    if np.all(ns % 1_000_000_000 == 0):
        return ns // 1_000_000_000
    return ns / 1e9


def from_dataframe(df: Any, user: str, item: str, rating: str | None = None,
                   time: str | None = None, *, dedup: str = 'last',
                   k_core: int | tuple[int, int] | None = None
                   ) -> Interactions:
    """Builds :class:`Interactions` from a :class:`pandas.DataFrame`.

    Ids may be integer, string or categorical columns (a column mixing
    integers and strings is an error: ``7`` and ``'7'`` would be two
    users).  Times may be numbers or datetimes, naive (read as UTC) or
    timezone-aware (converted to UTC), stored as seconds since the epoch.

    Args:
        df: The table, one interaction per row.
        user: Column of user ids.
        item: Column of item ids.
        rating: Optional column of ratings (finite numbers).
        time: Optional column of timestamps.
        dedup: Handling of repeated pairs, see :func:`from_tensors`.
        k_core: Optional k-core filter, see :func:`from_tensors`.

    Raises:
        BadDataError: Naming the column and row of a missing value (None,
            NaN, NaT, or an id that is the text of one such as ``'nan'``),
            for boolean or float ids, mixed integer and string ids, no
            rows, or a k-core filter that removes every interaction.
    """
    where = 'from_dataframe'
    if not hasattr(df, 'columns') or not hasattr(df, 'iloc'):
        raise TypeError(f'{where}: expected a pandas DataFrame, got '
                        f'{type(df).__name__}')
    cols = {'user': user, 'item': item, 'rating': rating, 'time': time}
    for role, col in cols.items():
        if col is not None and col not in df.columns:
            raise BadDataError(f'{where}: column {col!r} ({role}) not found; '
                               f'the frame has columns {list(df.columns)}')
    if len(df) == 0:
        raise BadDataError(f'{where}: the frame has no rows; expected one '
                           f'interaction per row')
    k_pair = _check_options(where, dedup, k_core, rating is not None)
    u = _frame_ids(df[user], 'user', where)
    i = _frame_ids(df[item], 'item', where)
    user_ids, u_codes = _unique_ids(u, f'{where}: user')
    item_ids, i_codes = _unique_ids(i, f'{where}: item')
    r = t = None
    if rating is not None:
        r = _frame_numbers(df[rating], 'rating', where).astype(np.float32)
    if time is not None:
        t = _frame_numbers(df[time], 'time', where)
        if t.dtype.kind in 'iub':
            t = t.astype(np.int64)
    return _build(u_codes, user_ids, i_codes, item_ids, r, t, dedup,
                  k_pair, {'source': 'dataframe'}, where)


# ---------------------------------------------------------------------------
# Reading tables
# ---------------------------------------------------------------------------

def _sniff_sep(line: str) -> str | None:
    for sep in ('\t', '::', ',', ';', '|'):
        if sep in line:
            return sep
    return None  # runs of whitespace


def _splitter(sep: str | None) -> Callable[[str], list[str]]:
    if sep is None:
        return str.split
    if len(sep) == 1:
        def split(line: str) -> list[str]:
            return next(csv.reader([line], delimiter=sep,
                                   skipinitialspace=True), [])
        return split
    return lambda line: line.rstrip('\r\n').split(sep)


class _TextSource:
    """A re-openable text table with a name for error messages."""

    def __init__(self, open_text: Callable[[], TextIO], label: str,
                 ext: str) -> None:
        self.open_text = open_text
        self.label = label
        self.ext = ext

    def first_line(self) -> tuple[int, str] | None:
        """(1-based line number, text) of the first non-blank line."""
        with self.open_text() as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    return lineno, line.rstrip('\r\n')
        return None

    def line_of(self, skip: int) -> Callable[[int], str]:
        """Maps a data row (0-based, blank lines skipped, after the first
        ``skip`` lines) to ``'line N'``; only used to word errors."""
        def locate(row: int) -> str:
            seen, lineno = -1, 0
            with self.open_text() as f:
                for lineno, line in enumerate(f, 1):
                    if lineno <= skip or not line.strip():
                        continue
                    seen += 1
                    if seen == row:
                        return f'line {lineno}'
            return f'line {lineno + 1}'  # past the end: no such row
        return locate


def _resolve_columns(src: _TextSource, cols: dict[str, _Column],
                     sep: str | None, header: bool | None
                     ) -> tuple[dict[str, int], str | None, int]:
    """Column positions, the separator and the number of lines to skip."""
    first = src.first_line()
    if first is None:
        raise BadDataError(f'read_table: {src.label}: line 1: file is empty; '
                           f'expected one interaction per line')
    lineno, line = first
    if sep is None:
        sep = {'.csv': ',', '.tsv': '\t', '.tab': '\t'}.get(src.ext)
        if sep is None:
            sep = _sniff_sep(line)
    named = [c for c in cols.values() if isinstance(c, str)]
    if header is None:
        header = bool(named)
    if named and not header:
        raise BadDataError(f'read_table: {src.label}: columns given by name '
                           f'{named} need header=True (or give 0-based '
                           f'column positions)')
    fields = [f.strip() for f in _splitter(sep)(line)]
    positions = {}
    for role, col in cols.items():
        if isinstance(col, str):
            if col not in fields:
                raise BadDataError(
                    f'read_table: {src.label}: line {lineno}: column '
                    f'{col!r} ({role}) not found in header {fields}')
            positions[role] = fields.index(col)
        else:
            if not isinstance(col, int) or col < 0 or col >= len(fields):
                raise BadDataError(
                    f'read_table: {src.label}: line {lineno}: column '
                    f'{col!r} ({role}) does not exist; the line has '
                    f'{len(fields)} fields (positions are 0-based)')
            positions[role] = col
    return positions, sep, lineno if header else 0


def _read_columns_pandas(pd: Any, src: _TextSource, positions: dict,
                         sep: str | None, skip: int
                         ) -> dict[str, np.ndarray]:
    use = sorted(set(positions.values()))
    try:
        with src.open_text() as f:
            df = pd.read_csv(
                f, sep=r'\s+' if sep is None else sep, header=None,
                skiprows=skip, usecols=use, dtype=str,
                keep_default_na=False, na_filter=False,
                skip_blank_lines=True, index_col=False,
                skipinitialspace=sep is not None, engine='c')
    except pd.errors.EmptyDataError:
        empty = np.array([], dtype=object)
        return {role: empty for role in positions}
    except pd.errors.ParserError as e:
        raise BadDataError(f'read_table: {src.label}: cannot parse the file '
                           f'({str(e).strip()})') from None
    except ValueError:
        # 'Usecols do not match columns': every data row is shorter than
        # the header; the plain reader names the row and what is missing
        return _read_columns_python(src, positions, sep, skip)
    return {role: df[pos].to_numpy(dtype=object)
            for role, pos in positions.items()}


def _read_columns_python(src: _TextSource, positions: dict,
                         sep: str | None, skip: int
                         ) -> dict[str, np.ndarray]:
    rows: list[list[str]] = []
    with src.open_text() as f:
        for _ in range(skip):
            f.readline()
        if sep is not None and len(sep) == 1:
            reader = csv.reader(f, delimiter=sep, skipinitialspace=True,
                                strict=True)
            try:
                rows = [r for r in reader if r]
            except csv.Error as e:
                raise BadDataError(
                    f'read_table: {src.label}: cannot parse the file (line '
                    f'{skip + reader.line_num}: {e})') from None
        else:
            split = _splitter(sep)
            rows = [split(line) for line in f if line.strip()]
    out = {}
    for role, pos in positions.items():
        out[role] = np.array([r[pos] if pos < len(r) else '' for r in rows],
                             dtype=object)
    return out


def _parse_ids(values: np.ndarray, role: str, label: str,
               locate: Callable[[int], str]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids and contiguous codes of a column.

    Text ids become ints when every id in the column is a plain integer
    literal (no sign but ``-``, no leading zeros), strings otherwise.
    """
    if values.dtype.kind in 'iu':
        return _unique_ids(values.astype(np.int64), label)
    if values.dtype.kind == 'f':
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BadDataError(f'read_table: {label}: {locate(bad[0])}: '
                               f'{role} id is missing')
        frac = np.flatnonzero(values != np.round(values))
        if frac.size:
            raise BadDataError(
                f'read_table: {label}: {locate(frac[0])}: {role} id '
                f'{float(values[frac[0]])} is not an integer or a string')
        return _unique_ids(values.astype(np.int64), label)
    values = np.asarray(values, dtype=object)
    pd = _pandas()
    if pd is not None:
        codes, uniq = pd.factorize(values)
        uniq = list(uniq)  # no None / NaN here: readers give '' instead
    else:
        table: dict[Any, int] = {}
        codes = np.fromiter((table.setdefault(v, len(table))
                             for v in values.tolist()),
                            dtype=np.int64, count=values.size)
        uniq = list(table)
    for bad in ('', None):
        if bad in uniq:
            row = int(np.flatnonzero(codes == uniq.index(bad))[0])
            raise BadDataError(f'read_table: {label}: {locate(row)}: {role} '
                               f'id is missing')
    uniq = [str(u) for u in uniq]
    ids: np.ndarray | None = None
    if all(_INT_RE.fullmatch(u) for u in uniq):
        try:
            ids = np.array([int(u) for u in uniq], dtype=np.int64)
        except OverflowError:
            ids = None
    if ids is None:
        ids = np.array(uniq, dtype=object)
    order = np.argsort(ids, kind='stable')
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    ids = ids[order]
    if ids.dtype == object:
        ids = ids.astype(str)
    return ids, rank[np.asarray(codes, dtype=np.int64)]


def _parse_numbers(values: np.ndarray, role: str, label: str,
                   locate: Callable[[int], str],
                   integer_ok: bool) -> np.ndarray:
    """Numbers of a column: int64 when ``integer_ok`` and every value is an
    integer, float64 otherwise; errors name the line."""
    if values.dtype.kind == 'M':  # datetime64 (Parquet timestamps)
        bad = np.flatnonzero(np.isnat(values))
        if bad.size:
            raise BadDataError(f'read_table: {label}: {locate(bad[0])}: '
                               f'{role} is missing')
        return _datetime_seconds(values)
    if values.dtype.kind in 'iub':
        return values.astype(np.int64 if integer_ok else np.float64)
    if values.dtype.kind != 'f':
        if integer_ok:
            try:
                return values.astype(np.int64)
            except (ValueError, TypeError, OverflowError):
                pass
        try:
            values = values.astype(np.float64)
        except (ValueError, TypeError):
            for row, text in enumerate(values.tolist()):
                try:
                    float(text)
                except (ValueError, TypeError):
                    hint = ('; write times as numbers (e.g. seconds since '
                            'the epoch), or read the table with pandas and '
                            'use from_dataframe, which takes datetimes'
                            if role == 'timestamp' else '')
                    raise BadDataError(
                        f'read_table: {label}: {locate(row)}: {role} '
                        f'{text!r} is not a number{hint}') from None
            raise  # pragma: no cover
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise BadDataError(f'read_table: {label}: {locate(bad[0])}: {role} '
                           f'{float(values[bad[0]])} is NaN or infinite')
    return values.astype(np.float64)


def _from_columns(columns: dict[str, np.ndarray], label: str,
                  locate: Callable[[int], str], dedup: str,
                  k_core: tuple[int, int] | None,
                  info: dict[str, Any]) -> Interactions:
    if columns['user'].size == 0:
        raise BadDataError(f'read_table: {label}: {locate(0)}: file is empty '
                           f'(no data rows); expected one interaction per '
                           f'line')
    user_ids, user = _parse_ids(columns['user'], 'user', label, locate)
    item_ids, item = _parse_ids(columns['item'], 'item', label, locate)
    rating = time = None
    if 'rating' in columns:
        rating = _parse_numbers(columns['rating'], 'rating', label, locate,
                                integer_ok=False).astype(np.float32)
    if 'time' in columns:
        time = _parse_numbers(columns['time'], 'timestamp', label, locate,
                              integer_ok=True)
    return _build(user, user_ids, item, item_ids, rating, time, dedup,
                  k_core, info, f'read_table: {label}')


def _read_parquet(path: str, cols: dict[str, _Column]
                  ) -> dict[str, np.ndarray]:
    pd = _pandas()
    if pd is None:
        raise ImportError(f'read_table: reading {path} (Parquet) needs '
                          f'pandas and pyarrow; pip install pandas pyarrow')
    try:
        df = pd.read_parquet(path)
    except ImportError as e:
        raise ImportError(f'read_table: pandas cannot read {path} ({e}); '
                          f'pip install pyarrow') from e
    out = {}
    for role, col in cols.items():
        if isinstance(col, str):
            if col not in df.columns:
                raise BadDataError(
                    f'read_table: {path}: column {col!r} ({role}) not '
                    f'found; the file has columns {list(df.columns)}')
            series = df[col]
        else:
            if not isinstance(col, int) or not 0 <= col < df.shape[1]:
                raise BadDataError(f'read_table: {path}: column {col!r} '
                                   f'({role}) does not exist; the file has '
                                   f'{df.shape[1]} columns')
            series = df.iloc[:, col]
        values = series.to_numpy()
        if values.dtype == object or values.dtype.kind in 'OSU':
            values = np.array(['' if v is None or v != v else v
                               for v in values.tolist()], dtype=object)
        out[role] = values
    return out


def read_table(path: str | os.PathLike, *, user_col: _Column,
               item_col: _Column, rating_col: _Column | None = None,
               time_col: _Column | None = None, sep: str | None = None,
               header: bool | None = None, dedup: str = 'last',
               k_core: int | tuple[int, int] | None = None,
               encoding: str = 'utf-8') -> Interactions:
    """Reads a user-item table (CSV / TSV / whitespace text or Parquet).

    Columns are given by header name (``str``) or 0-based position
    (``int``).  Ids may be integers or strings: a text id column whose
    values are all plain integer literals gives integer ids, otherwise the
    ids are kept as strings (so ``'007'`` and ``'7'`` stay distinct).
    Blank lines are skipped and extra fields ignored.  Ratings and
    timestamps must be finite numbers; integer timestamps stay ``long``.

    Args:
        path: The file.  ``.parquet`` / ``.pq`` are read with
            :func:`pandas.read_parquet`; anything else as delimited text.
        user_col: Column of user ids.
        item_col: Column of item ids.
        rating_col: Optional column of ratings.
        time_col: Optional column of timestamps.
        sep: Field separator; by default ``','`` for ``.csv``, tab for
            ``.tsv``, and otherwise sniffed from the first line (tab,
            ``'::'``, comma, ``';'``, ``'|'``, else runs of whitespace).
        header: Whether the first non-blank line is a header; by default
            ``True`` iff some column is given by name.
        dedup: Handling of repeated pairs, see :func:`from_tensors`.
        k_core: Optional k-core filter, see :func:`from_tensors`.
        encoding: Text encoding.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        BadDataError: Naming the file and ``line N`` (Parquet: ``row N``)
            for an empty file, a missing column or id, a rating or
            timestamp that is not a finite number.
    """
    path = os.fspath(path)
    where = 'read_table'
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{where}: {path} not found; check the '
                                f'path')
    k_pair = _check_options(where, dedup, k_core, rating_col is not None)
    cols: dict[str, _Column] = {'user': user_col, 'item': item_col}
    if rating_col is not None:
        cols['rating'] = rating_col
    if time_col is not None:
        cols['time'] = time_col
    ext = os.path.splitext(path)[1].lower()
    info = {'source': path}
    if ext in ('.parquet', '.pq'):
        columns = _read_parquet(path, cols)
        return _from_columns(columns, path, lambda row: f'row {row + 1}',
                             dedup, k_pair, info)
    encoding = text_encoding(encoding)
    src = _TextSource(
        lambda: open(path, encoding=encoding, newline=''), path, ext)
    return _read_text_table(src, cols, sep, header, dedup, k_pair, info)


def _read_text_table(src: _TextSource, cols: dict[str, _Column],
                     sep: str | None, header: bool | None, dedup: str,
                     k_core: tuple[int, int] | None,
                     info: dict[str, Any]) -> Interactions:
    try:
        positions, sep, skip = _resolve_columns(src, cols, sep, header)
        pd = _pandas()
        if pd is not None and (sep is None or len(sep) == 1):
            columns = _read_columns_pandas(pd, src, positions, sep, skip)
        else:
            columns = _read_columns_python(src, positions, sep, skip)
    except UnicodeDecodeError as e:
        raise undecodable(f'read_table: {src.label}', src.open_text, e,
                          "pass e.g. encoding='latin-1'") from None
    return _from_columns(columns, src.label, src.line_of(skip), dedup,
                         k_core, info)
