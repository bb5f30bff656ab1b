r"""Ciao and Epinions: ratings with a trust network (Tang et al.), as
GraphRec uses them."""
from __future__ import annotations

import io
import os
import os.path as osp
import zipfile
import zlib
from typing import Any, ClassVar

import numpy as np
import torch

from pyg_recsys.data.interactions import Interactions, _dedup
from pyg_recsys.datasets.base import ParsedData, RecDataset, fetch_url
from pyg_recsys.io import BadDataError
from pyg_recsys.schema import USER_USER


def read_mat(data: bytes, field: str, label: str,
             min_columns: int) -> np.ndarray:
    """The matrix ``field`` of a MATLAB 5 ``.mat`` file (``scipy.io``) as
    an int64 array with at least ``min_columns`` columns.

    Raises:
        BadDataError: Naming ``label`` for an unreadable file, a missing
            field, too few columns, or (naming the row) a value that is not
            a finite integer.
    """
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - scipy comes with ogb
        raise ImportError(f'{label}: reading .mat files needs scipy; pip '
                          f'install scipy') from e
    try:
        mat = scipy.io.loadmat(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - any decoding failure
        raise BadDataError(f'{label}: not a readable MATLAB .mat file '
                           f'({type(e).__name__}: {e})') from None
    if field not in mat:
        fields = sorted(k for k in mat if not k.startswith('__'))
        raise BadDataError(f'{label}: has no field {field!r} (fields: '
                           f'{fields}); expected the file of the original '
                           f'release')
    value = np.asarray(mat[field])
    if value.ndim != 2 or value.shape[1] < min_columns:
        raise BadDataError(f'{label}: {field!r} must be a matrix with at '
                           f'least {min_columns} columns, got shape '
                           f'{value.shape}')
    if value.dtype.kind in 'iu':
        if value.dtype.kind == 'u' and value.size and \
                int(value.max()) > np.iinfo(np.int64).max:
            row = int(np.argwhere(value > np.iinfo(np.int64).max)[0, 0])
            raise BadDataError(f'{label}: {field!r} row {row + 1}: a value '
                               f'does not fit in int64')
        return value.astype(np.int64)
    if value.dtype.kind not in 'fb':
        raise BadDataError(f'{label}: {field!r} must be a numeric matrix, '
                           f'got {value.dtype} values (cells or '
                           f'structs?); expected the file of the original '
                           f'release')
    value = value.astype(np.float64)
    bad = ~np.isfinite(value) | (value != np.round(value)) \
        | (np.abs(value) > 2.0 ** 62)
    if bad.any():
        row, col = (int(x) for x in np.argwhere(bad)[0])
        raise BadDataError(f'{label}: {field!r} row {row + 1}, column '
                           f'{col + 1}: {value[row, col]} is not an '
                           f'integer id or rating')
    return value.astype(np.int64)


def _conflicts(user: np.ndarray, item: np.ndarray,
               rating: np.ndarray) -> int:
    """Pairs rated more than once with different ratings."""
    key = user * (int(item.max()) + 1) + item
    order = np.lexsort((rating, key))
    k, r = key[order], rating[order]
    same_pair = k[1:] == k[:-1]
    return int(np.unique(k[1:][same_pair & (r[1:] != r[:-1])]).size)


class SocialDataset(RecDataset):
    r"""Ciao and Epinions product ratings (1-5) with the users' directed
    trust network, from J. Tang et al. (mTrust, WSDM 2012; eTrust, KDD
    2012), as used by GraphRec (W. Fan et al., `"Graph Neural Networks for
    Social Recommendation" <https://arxiv.org/abs/1902.07243>`_, WWW 2019).

    Raw file: the original ``ciao.zip`` / ``epinions.zip`` with
    ``<name>/rating.mat`` (rows user, product, category, rating[,
    helpfulness]) and ``<name>/trustnetwork.mat`` (rows truster, trustee),
    read from the zip with :func:`scipy.io.loadmat`.

    Cleaning, in this order (counts in ``ds.interactions.info``):

    1. Only the ratings of users in the trust network are kept, as
       GraphRec does (Ciao: 7,317 users, 104,975 items, 283,320 ratings,
       the paper's sizes within one rating; Epinions: 18,097 users with
       ratings, 261,679 items, 764,693 ratings).  The users are the trust
       network's (an Epinions user has trust links but no rating).
    2. Zero ratings are dropped: 0 is not on the 1-5 scale (34 in Ciao,
       all of trust-network users; none in Epinions).
    3. A (user, item) pair rated more than once keeps the rating of its
       last row in file order (the release has no timestamps; the ratings
       stay whole levels, which opinion embeddings such as GraphRec's
       need, where a mean would not).  The whole files hold 458 (Ciao) and
       3,242 (Epinions) pairs with conflicting ratings, 453 and 2,628 of
       them after steps 1-2; repeats with equal ratings are one rating.
    4. Trust links: repeated links and self-links are dropped (Epinions:
       27 and 224).

    ``ds[0]``: ratings on ``('user', 'interacts', 'item')`` (``rating``
    edge attribute) and trust on ``('user', 'trusts', 'user')`` (truster ->
    trustee) with its reverse.  :meth:`split` is random over all ratings
    (``per_user=False``, GraphRec's protocol) with ``ratios`` (default
    0.8 / 0.1 / 0.1; GraphRec's 60% setting: ``(0.6, 0.2, 0.2)``); the
    trust links are part of every split's graph, never held out.

    Args:
        root: Writable data root, see :class:`RecDataset`.
        name: ``'ciao'`` or ``'epinions'``.
        raw_dir: Read-only folder with the zip.
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    names: ClassVar[tuple[str, ...]] = ('ciao', 'epinions')
    url = 'https://www.cse.msu.edu/~tangjili/datasetcode/{name}.zip'
    splits = ('random',)
    default_split = 'random'
    split_defaults: ClassVar[dict[str, Any]] = {
        'per_user': False, 'ratios': (0.8, 0.1, 0.1)}

    def __init__(self, root: str | None = None, name: str = 'ciao',
                 raw_dir: str | None = None, **kwargs: Any) -> None:
        if name not in self.names:
            raise ValueError(f'SocialDataset: unknown name {name!r}; use '
                             f'one of {self.names}')
        self.dataset = name
        self.name = name
        self.raw_files = self.raw_files_for(name)
        super().__init__(root, raw_dir, **kwargs)

    @classmethod
    def folder_name(cls, name: str = 'ciao', **kwargs: Any) -> str:
        return name

    @classmethod
    def raw_files_for(cls, name: str = 'ciao', **kwargs: Any
                      ) -> tuple[str, ...]:
        return (f'{name}.zip',)

    def download(self) -> None:
        os.makedirs(self.raw_dir, exist_ok=True)
        fetch_url(self.url.format(name=self.dataset),
                  osp.join(self.raw_dir, self.raw_files[0]), self.timeout)

    def _member(self, zf: zipfile.ZipFile, file: str) -> tuple[bytes, str]:
        path = osp.join(self.raw_dir, self.raw_files[0])
        names = {n.rsplit('/', 1)[-1]: n for n in zf.namelist()}
        if file not in names:
            raise BadDataError(f'{path}: the archive has no {file} (it holds '
                               f'{sorted(n for n in names if n)})')
        try:
            data = zf.read(names[file])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
            raise BadDataError(f'{path}!{names[file]}: cannot be unpacked '
                               f'({type(e).__name__}: {e}); restage the '
                               f'original {self.raw_files[0]}') from None
        return data, f'{path}!{names[file]}'

    def build(self) -> ParsedData:
        path = osp.join(self.raw_dir, self.raw_files[0])
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise BadDataError(f'{path}: not a zip archive; restage the '
                               f'original {self.raw_files[0]}') from None
        with zf:
            data, label = self._member(zf, 'rating.mat')
            ratings = read_mat(data, 'rating', label, 4)
            data, tlabel = self._member(zf, 'trustnetwork.mat')
            trust = read_mat(data, 'trustnetwork', tlabel, 2)
        if trust.shape[0] == 0:
            raise BadDataError(f'{tlabel}: the trust network is empty; '
                               f'{self.dataset} needs its trust links')
        if ratings.shape[0] == 0:
            raise BadDataError(f'{label}: there are no ratings')
        user, item, rating = ratings[:, 0], ratings[:, 1], ratings[:, 3]
        info: dict[str, Any] = {
            'source': path, 'raw_ratings': int(user.size),
            'raw_conflicting_pairs': _conflicts(user, item, rating)}
        user_ids = np.union1d(trust[:, 0], trust[:, 1])
        keep = np.isin(user, user_ids)
        info['ratings_of_trust_users'] = int(keep.sum())
        info['items_of_trust_users'] = int(np.unique(item[keep]).size)
        zero = keep & (rating == 0)
        info['zero_ratings_dropped'] = int(zero.sum())
        keep &= rating != 0
        user, item, rating = user[keep], item[keep], rating[keep]
        info['conflicting_pairs'] = _conflicts(user, item, rating)
        item_ids, i_codes = np.unique(item, return_inverse=True)
        u_codes = np.searchsorted(user_ids, user)
        rows, rating, dropped = _dedup(u_codes, i_codes, item_ids.size,
                                       rating.astype(np.float32), None,
                                       'last')
        info['duplicate_ratings_dropped'] = int(dropped)
        inter = Interactions(torch.from_numpy(u_codes[rows]),
                             torch.from_numpy(i_codes[rows]),
                             rating=torch.from_numpy(rating),
                             user_ids=user_ids, item_ids=item_ids,
                             info=dict(info, dedup='last row in file order'))
        src = np.searchsorted(user_ids, trust[:, 0])
        dst = np.searchsorted(user_ids, trust[:, 1])
        self_loop = src == dst
        key = np.unique(src[~self_loop] * user_ids.size + dst[~self_loop])
        info.update(raw_trust_links=int(trust.shape[0]),
                    trust_self_links_dropped=int(self_loop.sum()),
                    trust_duplicates_dropped=int(
                        (~self_loop).sum() - key.size),
                    trust_links=int(key.size))
        edges = torch.from_numpy(np.stack([key // user_ids.size,
                                           key % user_ids.size]))
        return ParsedData(inter, side={USER_USER: edges}, info=info)


__all__ = ['SocialDataset', 'read_mat']
