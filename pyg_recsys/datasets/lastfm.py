r"""Last.FM with its knowledge graph, as KGCN prepares it."""
from __future__ import annotations

import functools
import math
import os
import os.path as osp
from typing import Any, ClassVar

import numpy as np
import torch

from pyg_recsys.data.interactions import (
    INT64_MAX,
    Interactions,
    ascii_digits,
    utf8_text,
)
from pyg_recsys.data.kg import (
    KnowledgeGraph,
    link_index,
    link_items,
    read_triples,
)
from pyg_recsys.data.split import PARTS, Split
from pyg_recsys.datasets.base import ParsedData, RecDataset, fetch_url
from pyg_recsys.io import BadDataError
from pyg_recsys.schema import ENTITY


def _read_lines(path: str) -> list[str]:
    with utf8_text(path) as f:
        return f.readlines()


def _read_links(path: str) -> list[tuple[str, str]]:
    """``item<TAB>entity`` lines of ``item_index2entity_id.txt`` (items
    are HetRec artist ids: non-negative integers, each once)."""
    out = []
    first: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        fields = line.strip().split('\t')
        if len(fields) != 2 or not all(fields):
            raise BadDataError(f'{path}: line {lineno}: expected "item '
                               f'entity", got {line.strip()!r}')
        if not ascii_digits(fields[0]) or int(fields[0]) > INT64_MAX:
            raise BadDataError(f'{path}: line {lineno}: item {fields[0]!r} '
                               f'is not an artist id (a non-negative '
                               f'integer)')
        if fields[0] in first:
            raise BadDataError(f'{path}: line {lineno}: item {fields[0]} is '
                               f'listed twice (first on line '
                               f'{first[fields[0]]}); link every item once')
        first[fields[0]] = lineno
        out.append((fields[0], fields[1]))
    if not out:
        raise BadDataError(f'{path}: line 1: file is empty; expected one '
                           f'"item entity" line per item')
    return out


def kgcn_ratings(path: str, items: list[str], seed: int = 555
                 ) -> tuple[list[int], list[tuple[int, int, int]]]:
    """KGCN's ``convert_rating`` for Last.FM (``preprocess.py -d music``).

    Every listened artist of ``items`` is a positive (threshold 0); for
    every user, as many negatives as positives are drawn without
    replacement from the artists the user never listened to, with NumPy's
    legacy generator seeded ``seed`` (555 in the reference).  The
    reference's Python-set iteration order and draw order are kept, so the
    rows come out in the reference's order and with its negatives.

    Args:
        path: ``user_artists.dat`` (header, then ``user artist weight``).
        items: Artist ids (strings) in the order of
            ``item_index2entity_id.txt`` (KGCN's item index).

    Returns:
        The users (original ids) in KGCN's order, and the rows
        ``(KGCN user index, KGCN item index, label)`` in the order of the
        reference's ``ratings_final.txt``.

    Raises:
        BadDataError: Naming the file and line of a line without three
            fields, a user id that is not a non-negative integer, a weight
            that is not a finite number, or of a user who listened to more
            than half of the artists (no negatives left to draw).
    """
    index = {item: i for i, item in enumerate(items)}
    item_set = set(index.values())
    pos: dict[int, set[int]] = {}
    first_line: dict[int, int] = {}
    lines = _read_lines(path)
    if len(lines) < 2:
        raise BadDataError(f'{path}: line 2: no rating lines after the '
                           f'header')
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.strip().split('\t')
        if len(fields) < 3:
            raise BadDataError(f'{path}: line {lineno}: expected "userID '
                               f'artistID weight", got {line.strip()!r}')
        if fields[1] not in index:  # an artist without an entity
            continue
        try:
            if not ascii_digits(fields[0]) or int(fields[0]) > INT64_MAX:
                raise ValueError
            user = int(fields[0])
            weight = float(fields[2])
            if not math.isfinite(weight):
                raise ValueError
        except ValueError:
            raise BadDataError(f'{path}: line {lineno}: user id and weight '
                               f'must be numbers, got {line.strip()!r}') \
                from None
        if weight >= 0:  # the reference's threshold for music
            pos.setdefault(user, set()).add(index[fields[1]])
            first_line.setdefault(user, lineno)
    if not pos:
        raise BadDataError(f'{path}: line 2: no line rates an artist of '
                           f'the link file with a weight >= 0; expected '
                           f'"userID artistID weight" lines')
    rng = np.random.RandomState(seed)
    rows: list[tuple[int, int, int]] = []
    for u, (user, items_u) in enumerate(pos.items()):
        rows += [(u, i, 1) for i in items_u]
        unwatched = list(item_set - items_u)
        if len(unwatched) < len(items_u):
            raise BadDataError(
                f'{path}: line {first_line[user]}: user {user} listened '
                f'to {len(items_u)} of the {len(item_set)} linked artists; '
                f'KGCN draws one unheard artist per positive, so no user '
                f'may have heard more than half of them')
        rows += [(u, int(i), 0) for i in rng.choice(
            unwatched, size=len(items_u), replace=False)]
    return list(pos), rows


def kgcn_split(num_rows: int, seed: int = 555,
               ratios: tuple[float, float] = (0.2, 0.2)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KGCN's ``dataset_split``: row positions of train, eval and test
    (6:2:2), drawn as its ``data_loader.py`` does after
    ``np.random.seed(555)`` (eval first, then test from the rest; both in
    draw order, train ascending)."""
    rng = np.random.RandomState(seed)
    n_eval, n_test = int(num_rows * ratios[0]), int(num_rows * ratios[1])
    eval_idx = rng.choice(num_rows, size=n_eval, replace=False)
    left = np.setdiff1d(np.arange(num_rows), eval_idx)  # ascending
    test_idx = left[rng.choice(left.size, size=n_test, replace=False)]
    train_idx = np.setdiff1d(left, test_idx)
    return train_idx, eval_idx, test_idx


class LastFMKG(RecDataset):
    r"""Last.FM listening data with its knowledge graph, as prepared for
    KGCN (H. Wang et al., `"Knowledge Graph Convolutional Networks for
    Recommender Systems" <https://arxiv.org/abs/1904.12575>`_, WWW 2019)
    from HetRec 2011's ``user_artists.dat`` and a Microsoft Satori
    subgraph.

    Raw files (KGCN repository, ``data/music``): ``user_artists.dat``,
    ``kg.txt`` (``head<TAB>relation<TAB>tail``, entity ids and relation
    names) and ``item_index2entity_id.txt`` (artist -> entity).  Built as
    KGCN's ``preprocess.py -d music`` does (:func:`kgcn_ratings`): only
    artists linked to an entity are kept, every listened one is a positive,
    one negative per positive is drawn from the user's unheard artists with
    the reference's seed 555.  Published sizes: 1,872 users, 3,846 items,
    42,346 rating rows (21,173 positives and as many negatives), 15,518
    triples, 9,366 entities (items included), 60 relations.

    ``ds[0]``: the positives on ``('user', 'interacts', 'item')`` and the
    knowledge graph with every linked entity merged into its item
    (:func:`~pyg_recsys.data.kg.link_items`): edge types ``('item' |
    'entity', <relation>, 'item' | 'entity')``, 5,520 ``'entity'`` nodes.
    Users and items are numbered in increasing original id
    (:attr:`interactions` maps back).

    Splits: ``'fixed'`` (default) is the reference's 6:2:2 split of the
    rating rows (:func:`kgcn_split`, seed 555; ``seed`` does not apply):
    the positives of each part are its pairs, and ``split.labelled[part]``
    holds the part's (user, item, label) rows in the reference's order for
    click-through evaluation.  ``'random'`` splits the positives per user
    with ``seed`` and has no labelled rows.

    Args:
        root: Writable data root, see :class:`RecDataset`.
        raw_dir: Read-only folder with the raw files.
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    name = 'lastfm-kgcn'
    raw_files = ('user_artists.dat', 'kg.txt', 'item_index2entity_id.txt')
    url = 'https://raw.githubusercontent.com/hwwang55/KGCN/master/data/music/'
    splits = ('fixed', 'random')
    default_split = 'fixed'
    labelled_splits = ('fixed',)
    seed: ClassVar[int] = 555

    def __init__(self, root: str | None = None, raw_dir: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(root, raw_dir, **kwargs)

    def download(self) -> None:
        os.makedirs(self.raw_dir, exist_ok=True)
        for file in self.raw_files:
            fetch_url(self.url + file, osp.join(self.raw_dir, file),
                      self.timeout)

    def build(self) -> ParsedData:
        links = _read_links(osp.join(self.raw_dir,
                                     'item_index2entity_id.txt'))
        kgcn_items = [a for a, _ in links]
        users, rows = kgcn_ratings(osp.join(self.raw_dir,
                                            'user_artists.dat'),
                                   kgcn_items, self.seed)
        # our numbering: increasing original id
        user_ids = np.sort(np.asarray(users, dtype=np.int64))
        item_orig = np.asarray([int(a) for a in kgcn_items], dtype=np.int64)
        item_ids = np.sort(item_orig)
        user_map = np.searchsorted(user_ids, np.asarray(users))
        item_map = np.searchsorted(item_ids, item_orig)
        r = np.asarray(rows, dtype=np.int64).T
        labelled = torch.from_numpy(np.stack(
            [user_map[r[0]], item_map[r[1]], r[2]]))
        positive = labelled[:, labelled[2] == 1]
        inter = Interactions(positive[0], positive[1], user_ids=user_ids,
                             item_ids=item_ids,
                             info={'source': self.raw_dir})
        path = osp.join(self.raw_dir, 'kg.txt')
        triples = read_triples(
            functools.partial(open, path, encoding='utf-8-sig'), path)
        kg = KnowledgeGraph.from_strings(*triples, label=path)
        # the entity of every item, in our numbering
        entity_of_item: list[str | None] = [None] * len(item_ids)
        for j, (_, entity) in enumerate(links):
            entity_of_item[int(item_map[j])] = entity
        graph = link_items(kg, link_index(
            kg, entity_of_item, item_ids.tolist(),
            osp.join(self.raw_dir, 'item_index2entity_id.txt')), label=path)
        info = dict(num_rating_rows=int(labelled.size(1)),
                    num_positives=int(positive.size(1)),
                    num_triples=int(kg.triples.size(1)),
                    num_kg_entities=kg.num_entities,
                    num_relations=kg.num_relations,
                    negatives='one per positive, unheard artists, '
                              'KGCN preprocess.py seed 555')
        return ParsedData(inter, num_nodes={ENTITY: graph.num_entities},
                          ids={ENTITY: graph.entity_ids},
                          side=graph.edges, relations=graph.relations,
                          labelled=labelled, info=info)

    def _fixed_split(self, seed: int = 0) -> Split:
        labelled = self._meta['labelled']
        parts = dict(zip(PARTS, kgcn_split(labelled.size(1), self.seed)))
        rows = {name: labelled[:, torch.from_numpy(idx)]
                for name, idx in parts.items()}
        pos = {name: r[:2, r[2] == 1] for name, r in rows.items()}
        inter = self.interactions
        return Split(inter.num_users, inter.num_items, pos['train'],
                     pos['val'], pos['test'], kind='fixed', seed=self.seed,
                     labelled=rows,
                     info={'split': 'KGCN data_loader.py 6:2:2 over rating '
                                    'rows, seed 555 (eval = val)'})


__all__ = ['LastFMKG', 'kgcn_ratings', 'kgcn_split']
