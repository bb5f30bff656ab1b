"""MovieLens-100K (GroupLens ``ml-100k``), with a PyPI-only fallback."""
from __future__ import annotations

import http.client
import io
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any, ClassVar, TextIO

import torch
from torch import Tensor

from pyg_recsys.data.interactions import (
    Interactions,
    _read_text_table,
    _TextSource,
    ascii_digits,
    read_table,
    undecodable,
)
from pyg_recsys.data.kg import (
    KnowledgeGraph,
    link_index,
    link_items,
    read_triples,
)
from pyg_recsys.datasets.base import (
    ParsedData,
    RecDataset,
    atomic_write,
    fetch_url,
    find_raw_dir,
)
from pyg_recsys.io import BadDataError
from pyg_recsys.schema import ENTITY, ITEM, USER

log = logging.getLogger(__name__)

GENRES = ('unknown', 'Action', 'Adventure', 'Animation', "Children's",
          'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir',
          'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller',
          'War', 'Western')

# The two titles RecBole's atomic files spell differently from u.item.
_ATOMIC_TITLE_FIXES = {
    'unkonwn': 'unknown',
    'Land Before Time III: The Time of the Great Giving (1995)':
        'Land Before Time III: The Time of the Great Giving (1995) (V)',
}

# A UTF-8 byte-order mark read as Latin-1.
_LATIN1_BOM = '\ufeff'.encode().decode('latin-1')

_DOWNLOAD_ERRORS = (OSError, zipfile.BadZipFile, http.client.HTTPException,
                    KeyError, ValueError)


def pip_download(spec: str, dest: str, timeout: float = 60.0,
                 total_timeout: float = 300.0) -> str:
    """Downloads one wheel from PyPI with ``python -m pip download
    --no-deps`` (nothing is installed) into ``dest``; returns its path.

    ``timeout`` bounds each network operation of pip and ``total_timeout``
    the whole command.
    """
    os.makedirs(dest, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=dest, prefix='.pip-')
    try:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
               '--only-binary=:all:', '--no-input',
               '--disable-pip-version-check', '--timeout', str(int(timeout)),
               '--retries', '2', '-d', tmp, spec]
        log.info('Running %s', ' '.join(cmd))
        try:
            res = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=total_timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f'pip download {spec} did not finish in '
                               f'{total_timeout:g} s') from None
        if res.returncode != 0:
            tail = ' '.join(res.stderr.strip().splitlines()[-2:])
            raise OSError(f'pip download {spec} failed (exit '
                          f'{res.returncode}): {tail}')
        wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
        if not wheels:
            raise OSError(f'pip download {spec} produced no wheel')
        out = osp.join(dest, wheels[0])
        os.replace(osp.join(tmp, wheels[0]), out)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------

def _rows(open_text: Callable[[], TextIO], label: str, sep: str,
          num_fields: int, skip: int = 0) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank lines; at least
    ``num_fields`` fields per line.  A leading UTF-8 byte-order mark is
    dropped (also when the file is read as Latin-1)."""
    out = []
    try:
        with open_text() as f:
            for lineno, line in enumerate(f, 1):
                if lineno == 1:
                    line = line.removeprefix('\ufeff').removeprefix(
                        _LATIN1_BOM)
                if lineno <= skip or not line.strip():
                    continue
                fields = line.rstrip('\r\n').split(sep)
                if len(fields) < num_fields:
                    raise BadDataError(
                        f'{label}: line {lineno}: expected {num_fields} '
                        f'{sep!r}-separated fields, got {len(fields)}')
                out.append((lineno, fields))
    except UnicodeDecodeError as e:
        raise undecodable(label, open_text, e) from None
    if not out:
        raise BadDataError(f'{label}: line 1: file is empty')
    return out


def _int(text: str, what: str, label: str, lineno: int) -> int:
    """An integer field: optional ``-``, then ASCII digits (surrounding
    blanks are fine)."""
    value = text.strip()
    digits = value.removeprefix('-')
    if not ascii_digits(digits):
        raise BadDataError(f'{label}: line {lineno}: {what} {text!r} is not '
                           f'an integer')
    return int(value)


def _assemble(inter: Interactions, items: list[tuple[int, str, list[int]]],
              users: list[tuple[int, int, str, str]]) -> ParsedData:
    """Titles and features aligned with the contiguous ids of ``inter``."""
    item_pos = {int(k): i for i, k in enumerate(inter.item_ids.tolist())}
    user_pos = {int(k): i for i, k in enumerate(inter.user_ids.tolist())}
    titles = [''] * inter.num_items
    item_x = torch.zeros(inter.num_items, len(GENRES))
    for orig, title, flags in items:
        idx = item_pos.get(orig)
        if idx is not None:
            titles[idx] = title
            item_x[idx] = torch.tensor(flags, dtype=torch.float)
    genders = sorted({g for _, _, g, _ in users})
    jobs = sorted({o for _, _, _, o in users})
    max_age = max((a for _, a, _, _ in users), default=1) or 1
    user_x = torch.zeros(inter.num_users, 1 + len(genders) + len(jobs))
    for orig, age, gender, job in users:
        idx = user_pos.get(orig)
        if idx is not None:
            user_x[idx, 0] = age / max_age
            user_x[idx, 1 + genders.index(gender)] = 1.0
            user_x[idx, 1 + len(genders) + jobs.index(job)] = 1.0
    names = {ITEM: list(GENRES),
             USER: (['age'] + [f'gender:{g}' for g in genders]
                      + [f'occupation:{o}' for o in jobs])}
    return ParsedData(inter, x={ITEM: item_x, USER: user_x},
                      feature_names=names, titles=titles)


def _flag(text: str, label: str, lineno: int) -> int:
    value = _int(text, 'genre flag', label, lineno)
    if value not in (0, 1):
        raise BadDataError(f'{label}: line {lineno}: genre flag {text!r} '
                           f'must be 0 or 1')
    return value


def parse_grouplens(folder: str) -> ParsedData:
    """Reads GroupLens ``u.data``, ``u.item`` (Latin-1) and ``u.user``
    (what :meth:`RecDataset.build` returns)."""
    inter = read_table(osp.join(folder, 'u.data'), user_col=0, item_col=1,
                       rating_col=2, time_col=3, sep='\t', header=False)
    path = osp.join(folder, 'u.item')
    items = []
    for lineno, f in _rows(lambda: open(path, encoding='latin-1'), path,
                           '|', 5 + len(GENRES)):
        flags = [_flag(v, path, lineno) for v in f[5:5 + len(GENRES)]]
        items.append((_int(f[0], 'item id', path, lineno), f[1].strip(),
                      flags))
    path = osp.join(folder, 'u.user')
    users = [(_int(f[0], 'user id', path, n), _int(f[1], 'age', path, n),
              f[2], f[3])
             for n, f in _rows(lambda: open(path, encoding='latin-1'),
                               path, '|', 5)]
    return _assemble(inter, items, users)


def _columns(header: list[str], wanted: tuple[str, ...], label: str
             ) -> list[int]:
    names = [h.split(':')[0] for h in header]
    out = []
    for name in wanted:
        if name not in names:
            raise BadDataError(f'{label}: line 1: column {name!r} not found '
                               f'in header {header}')
        out.append(names.index(name))
    return out


def parse_atomic(source: str) -> ParsedData:
    """Reads RecBole's atomic files ``ml-100k.{inter,item,user}`` from a
    folder or straight out of a zip / wheel (``recbole`` is not installed
    or imported).

    Titles become ``'<movie_title> (<release_year>)'`` as in ``u.item``
    (two titles RecBole spells differently are mapped back) and genres the
    same 19 flags, so on RecBole 1.2.1's copy the result equals
    :func:`parse_grouplens` on the GroupLens files.
    """
    if osp.isdir(source):
        def open_text(name: str) -> TextIO:
            return open(osp.join(source, name), encoding='utf-8-sig',
                        newline='')

        def label(name: str) -> str:
            return osp.join(source, name)
    else:
        with zipfile.ZipFile(source) as zf:
            members = {m.rsplit('/', 1)[-1]: m for m in zf.namelist()
                       if '/ml-100k/ml-100k.' in m
                       or m.startswith('ml-100k.')}
        missing = [f'ml-100k.{e}' for e in ('inter', 'item', 'user')
                   if f'ml-100k.{e}' not in members]
        if missing:
            raise BadDataError(f'{source}: archive has no {missing}')

        def open_text(name: str) -> TextIO:
            with zipfile.ZipFile(source) as zf:
                data = zf.read(members[name])
            return io.TextIOWrapper(io.BytesIO(data), encoding='utf-8-sig',
                                    newline='')

        def label(name: str) -> str:
            return f'{source}!{members[name]}'

    cols = {'user': 'user_id:token', 'item': 'item_id:token',
            'rating': 'rating:float', 'time': 'timestamp:float'}
    name = 'ml-100k.inter'
    src = _TextSource(lambda: open_text(name), label(name), '')
    inter = _read_text_table(src, cols, '\t', True, 'last', None,
                             {'source': label(name)})
    items = []
    name = 'ml-100k.item'
    rows = _rows(lambda: open_text(name), label(name), '\t', 1)
    c_id, c_title, c_year, c_class = _columns(
        rows[0][1], ('item_id', 'movie_title', 'release_year', 'class'),
        label(name))
    for lineno, f in rows[1:]:
        f = f + [''] * (4 - len(f))
        title, year = f[c_title].strip(), f[c_year].strip()
        if year.isdigit():
            title = f'{title} ({year})'
        title = _ATOMIC_TITLE_FIXES.get(title, title)
        flags = [0] * len(GENRES)
        for genre in f[c_class].split():
            if genre not in GENRES:
                raise BadDataError(f'{label(name)}: line {lineno}: unknown '
                                   f'genre {genre!r}; expected one of '
                                   f'{GENRES}')
            flags[GENRES.index(genre)] = 1
        items.append((_int(f[c_id], 'item id', label(name), lineno), title,
                      flags))
    name = 'ml-100k.user'
    rows = _rows(lambda: open_text(name), label(name), '\t', 1)
    c_id, c_age, c_gender, c_job = _columns(
        rows[0][1], ('user_id', 'age', 'gender', 'occupation'), label(name))
    users = []
    for n, f in rows[1:]:
        if len(f) <= max(c_id, c_age, c_gender, c_job):
            raise BadDataError(f'{label(name)}: line {n}: expected '
                               f'{len(rows[0][1])} fields, got {len(f)}')
        users.append((_int(f[c_id], 'user id', label(name), n),
                      _int(f[c_age], 'age', label(name), n), f[c_gender],
                      f[c_job]))
    return _assemble(inter, items, users)


# ---------------------------------------------------------------------------
# Data set
# ---------------------------------------------------------------------------

class MovieLens100K(RecDataset):
    r"""MovieLens-100K: 100,000 ratings (1-5, with timestamps) of 1,682
    movies by 943 users, from GroupLens (F. M. Harper and J. A. Konstan,
    `"The MovieLens Datasets: History and Context"
    <https://doi.org/10.1145/2827872>`_, ACM TiiS 5(4), 2015).

    ``ds[0]`` holds the full log (``rating`` and ``time`` edge attributes)
    and node features: ``data['item'].x`` ``[1682, 19]`` binary genres (in
    :data:`GENRES` order) and ``data['user'].x`` ``[943, 24]`` = age
    divided by the largest age, gender one-hot (F, M), occupation one-hot
    (21, alphabetical), as in PyG's :class:`MovieLens100K`.
    :attr:`item_titles` gives ``'Toy Story (1995)'`` etc.; the default
    :meth:`split` is random 8/1/1 per user.

    Sources, in order: ``u.data``, ``u.item``, ``u.user`` in the raw folder
    (see :class:`RecDataset`); the GroupLens zip (:attr:`url`); the copy in
    the ``recbole==1.2.1`` wheel on PyPI (fetched with
    ``pip download --no-deps`` into ``<root>/_cache`` and read from the
    zip, never installed), so the data set works on a machine that only
    reaches PyPI.

    Args:
        root: Writable data root, see :class:`RecDataset`.
        raw_dir: Read-only folder holding ``u.data``, ``u.item``,
            ``u.user``.
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    name = 'movielens-100k'
    url = 'https://files.grouplens.org/datasets/movielens/ml-100k.zip'
    wheel: ClassVar[str] = 'recbole==1.2.1'
    wheel_file: ClassVar[str] = 'recbole-1.2.1-py3-none-any.whl'
    pip_timeout: ClassVar[float] = 300.0
    raw_files = ('u.data', 'u.item', 'u.user')
    default_split = 'random'

    def __init__(self, root: str | None = None, raw_dir: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(root, raw_dir, **kwargs)

    @property
    def wheel_path(self) -> str:
        return osp.join(self.cache_dir, self.wheel_file)

    def source_files(self) -> list[str] | None:
        if self._raw_complete(self.raw_dir):
            return [osp.join(self.raw_dir, f) for f in self.raw_files]
        if self._raw_dir_arg is None and osp.isfile(self.wheel_path):
            return [self.wheel_path]
        return None

    def download(self) -> None:
        errors = []
        try:
            self._download_grouplens()
            return
        except _DOWNLOAD_ERRORS as e:
            log.warning('MovieLens100K: GroupLens download failed (%s); '
                        'trying the recbole wheel on PyPI', e)
            errors.append(f'(1) GroupLens {self.url}: {e}')
        try:
            self._fetch_wheel()
            return
        except _DOWNLOAD_ERRORS as e:
            errors.append(f'(2) PyPI wheel {self.wheel} via pip download: '
                          f'{e}')
        raise RuntimeError(
            f'MovieLens100K: could not get the raw files; tried '
            f'{"; ".join(errors)}. Put u.data, u.item, u.user into '
            f'{self.raw_dir} (or point $PYG_RECSYS_DATA at a folder '
            f'with {self.name}/raw) and retry.')

    def _fetch_wheel(self) -> None:
        """Puts the ``recbole`` wheel into :attr:`cache_dir`."""
        os.makedirs(self.cache_dir, exist_ok=True)
        path = pip_download(self.wheel, self.cache_dir, self.timeout,
                            self.pip_timeout)
        if osp.basename(path) != self.wheel_file:
            os.replace(path, self.wheel_path)

    def _download_grouplens(self) -> None:
        archive = osp.join(self.cache_dir, 'ml-100k.zip')
        if not osp.isfile(archive):
            fetch_url(self.url, archive, self.timeout)
        os.makedirs(self.raw_dir, exist_ok=True)
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                base = info.filename.rsplit('/', 1)[-1]
                if info.is_dir() or info.filename != f'ml-100k/{base}':
                    continue
                with atomic_write(osp.join(self.raw_dir, base)) as f:
                    f.write(zf.read(info))
        if not self._raw_complete(self.raw_dir):
            raise BadDataError(f'{archive} lacks some of {self.raw_files}')

    def build(self) -> ParsedData:
        if self._raw_complete(self.raw_dir):
            return parse_grouplens(self.raw_dir)
        return parse_atomic(self.wheel_path)


# ---------------------------------------------------------------------------
# MovieLens-100K with its knowledge graph
# ---------------------------------------------------------------------------

def _file_text(path: str) -> tuple[Callable[[], TextIO], str]:
    """Opener and label of a text file."""
    return (lambda: open(path, encoding='utf-8-sig', newline='')), path


def _wheel_text(wheel: str, file: str) -> tuple[Callable[[], TextIO], str]:
    """Opener and label of ``recbole/dataset_example/ml-100k/<file>`` inside
    the recbole wheel."""
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist()
                   if m.endswith(f'/ml-100k/{file}')]
    if not members:
        raise BadDataError(f'{wheel}: the archive has no ml-100k/{file}')

    def open_text() -> TextIO:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(members[0])
        return io.TextIOWrapper(io.BytesIO(data), encoding='utf-8-sig',
                                newline='')
    return open_text, f'{wheel}!{members[0]}'


def release_years(titles: list[str]) -> Tensor:
    r"""A ``[len(titles), 1]`` feature of each movie's release year, read
    from the ``'Title (1995)'`` form of :attr:`MovieLens100K.item_titles`
    and scaled to :math:`[0, 1]` over the years found; a title without a
    year gets the mean (PinSage's item inputs are genres and year)."""
    years = torch.full((len(titles), ), float('nan'))
    for i, title in enumerate(titles):
        m = re.search(r'\((\d{4})\)\s*$', title or '')
        if m:
            years[i] = float(m.group(1))
    ok = ~torch.isnan(years)
    if not bool(ok.any()):
        return torch.zeros(len(titles), 1)
    lo, hi = years[ok].min(), years[ok].max()
    out = (years - lo) / (hi - lo).clamp(min=1.0)
    out[~ok] = out[ok].mean()
    return out.view(-1, 1)


def read_links(open_text: Callable[[], TextIO], label: str
               ) -> list[tuple[str, str]]:
    """RecBole's ``.link`` file: a header, then ``item_id<TAB>entity_id``
    lines."""
    rows = _rows(open_text, label, '\t', 2)
    header = [h.split(':')[0] for h in rows[0][1]]
    if header[:2] != ['item_id', 'entity_id']:
        raise BadDataError(f'{label}: line 1: expected the header '
                           f'"item_id:token entity_id:token", got '
                           f'{rows[0][1]}')
    return [(f[0].strip(), f[1].strip()) for _, f in rows[1:]]


class MovieLens100KKG(MovieLens100K):
    r"""MovieLens-100K with the Freebase knowledge graph of its movies, as
    RecBole ships it (``ml-100k.kg``: 91,631 triples ``head relation
    tail`` over 34,628 entities and 24 relations; ``ml-100k.link``: 1,598
    of the 1,682 movies linked to an entity; Zhao et al., `"KB4Rec"
    <https://arxiv.org/abs/1807.11141>`_, 2019).

    The interactions, features and titles are :class:`MovieLens100K`'s
    (read from the ``movielens-100k`` raw folder); the knowledge graph is
    read from ``ml-100k.kg`` / ``ml-100k.link`` in
    ``$PYG_RECSYS_DATA/movielens-100k-kg/raw`` or ``raw_dir`` when there,
    else straight out of the ``recbole==1.2.1`` wheel in ``<root>/_cache``
    (fetched with ``pip download --no-deps`` when missing, never
    installed).  Linked entities become their movies
    (:func:`~pyg_recsys.data.kg.link_items`): ``ds[0]`` has 33,030
    ``'entity'`` nodes and one edge type per relation and node-type pair.

    Args:
        root: Writable data root, see :class:`RecDataset`.
        raw_dir: Read-only folder with ``u.data``, ``u.item``, ``u.user``
            (and, optionally, ``ml-100k.kg`` and ``ml-100k.link``).
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    name = 'movielens-100k-kg'
    kg_files: ClassVar[tuple[str, str]] = ('ml-100k.kg', 'ml-100k.link')

    def _find_raw_dir(self, root: str) -> str:
        if self._raw_dir_arg is not None:
            return self._raw_dir_arg
        return find_raw_dir(MovieLens100K.name, self.raw_files, root)

    @classmethod
    def locate(cls, root: str | None = None, **kwargs: Any) -> str:
        return MovieLens100K.locate(root) + ' (knowledge graph: recbole ' \
            'wheel or ml-100k.kg/.link)'

    def _kg_dir(self) -> str | None:
        """A folder holding both knowledge-graph files, if any."""
        folders = [self.raw_dir]
        if self._raw_dir_arg is None:
            folders.append(find_raw_dir(self.name, self.kg_files,
                                        self.root))
        for folder in folders:
            if all(osp.isfile(osp.join(folder, f)) for f in self.kg_files):
                return folder
        return None

    def _kg_sources(self) -> list[str] | None:
        folder = self._kg_dir()
        if folder is not None:
            return [osp.join(folder, f) for f in self.kg_files]
        if osp.isfile(self.wheel_path):
            return [self.wheel_path]
        return None

    def source_files(self) -> list[str] | None:
        base = super().source_files()
        kg = self._kg_sources()
        if base is None or kg is None:
            return None
        return base + [f for f in kg if f not in base]

    def download(self) -> None:
        if super().source_files() is None:
            super().download()
        if self._kg_sources() is None:
            try:
                self._fetch_wheel()
            except _DOWNLOAD_ERRORS as e:
                raise RuntimeError(
                    f'MovieLens100KKG: the knowledge graph files '
                    f'{list(self.kg_files)} are not staged and the '
                    f'{self.wheel} wheel could not be fetched ({e}); put '
                    f'them into {self.raw_dir} and retry') from None

    def build(self) -> ParsedData:
        parsed = super().build()
        folder = self._kg_dir()
        if folder is not None:
            openers = [_file_text(osp.join(folder, f)) for f in self.kg_files]
        else:
            openers = [_wheel_text(self.wheel_path, f)
                       for f in self.kg_files]
        (open_kg, kg_label), (open_link, link_label) = openers
        heads, rels, tails = read_triples(open_kg, kg_label, skip=1)
        links = read_links(open_link, link_label)
        inter = parsed.inter
        item_pos = {str(k): i for i, k in enumerate(inter.item_ids.tolist())}
        kg = KnowledgeGraph.from_strings(heads, rels, tails, label=kg_label)
        entity_of_item: list[str | None] = [None] * inter.num_items
        for n, (item, entity) in enumerate(links):
            if item not in item_pos:
                raise BadDataError(f'{link_label}: line {n + 2}: item {item!r}'
                                   f' is not a MovieLens-100K movie')
            entity_of_item[item_pos[item]] = entity
        item_entity = link_index(kg, entity_of_item,
                                 inter.item_ids.tolist(), link_label)
        graph = link_items(kg, item_entity, label=link_label)
        parsed.num_nodes = {ENTITY: graph.num_entities}
        parsed.ids = {ENTITY: graph.entity_ids}
        parsed.side = graph.edges
        parsed.relations = graph.relations
        parsed.info = dict(parsed.info, num_triples=int(kg.triples.size(1)),
                           num_kg_entities=kg.num_entities,
                           num_relations=kg.num_relations,
                           num_linked_items=len(links))
        return parsed
