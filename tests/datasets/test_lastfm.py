"""Last.FM as KGCN prepares it, against the reference code and its sizes."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyg_recsys.data import audit
from pyg_recsys.datasets import LastFMKG
from pyg_recsys.datasets.lastfm import kgcn_split
from pyg_recsys.schema import ENTITY, ITEM

FILES = ('user_artists.dat', 'kg.txt', 'item_index2entity_id.txt')


@pytest.fixture(scope='module')
def raw(staged):
    return staged('lastfm-kgcn', FILES)


@pytest.fixture(scope='module')
def ds(raw, tmp_path_factory):
    return LastFMKG(tmp_path_factory.mktemp('root'), raw_dir=raw)


def reference_rows(raw):
    """KGCN's preprocess.py (read_item_index_to_entity_id_file and
    convert_rating for 'music'), written out as the reference does it:
    global NumPy seed 555, Python sets."""
    state = np.random.get_state()
    np.random.seed(555)
    try:
        item_index_old2new = {}
        for i, line in enumerate(open(Path(raw, FILES[2])).readlines()):
            item_index_old2new[line.strip().split('\t')[0]] = i
        item_set = set(item_index_old2new.values())
        user_pos_ratings = dict()
        for line in open(Path(raw, FILES[0])).readlines()[1:]:
            array = line.strip().split('\t')
            if array[1] not in item_index_old2new:
                continue
            item_index = item_index_old2new[array[1]]
            user_index_old = int(array[0])
            if float(array[2]) >= 0:
                user_pos_ratings.setdefault(user_index_old, set()).add(
                    item_index)
        rows, users = [], []
        for user_index_old, pos_item_set in user_pos_ratings.items():
            user_index = len(users)
            users.append(user_index_old)
            for item in pos_item_set:
                rows.append((user_index, item, 1))
            unwatched_set = item_set - pos_item_set
            for item in np.random.choice(list(unwatched_set),
                                         size=len(pos_item_set),
                                         replace=False):
                rows.append((user_index, item, 0))
        return users, list(item_index_old2new), rows
    finally:
        np.random.set_state(state)


def reference_split(n_ratings):
    """KGCN's data_loader.dataset_split after main.py's seed 555."""
    state = np.random.get_state()
    np.random.seed(555)
    try:
        eval_indices = np.random.choice(list(range(n_ratings)),
                                        size=int(n_ratings * 0.2),
                                        replace=False)
        left = set(range(n_ratings)) - set(eval_indices)
        test_indices = np.random.choice(list(left),
                                        size=int(n_ratings * 0.2),
                                        replace=False)
        train_indices = list(left - set(test_indices))
        return train_indices, eval_indices, test_indices
    finally:
        np.random.set_state(state)


def test_published_sizes(ds):
    inter = ds.interactions
    assert (inter.num_users, inter.num_items) == (1872, 3846)
    assert len(inter) == 21173
    info = ds.interactions.info
    assert info['num_rating_rows'] == 42346
    assert info['num_triples'] == 15518
    assert info['num_kg_entities'] == 9366
    assert info['num_relations'] == 60
    g = ds[0]
    # every linked entity is its item: entities = items + entity nodes
    assert g[ENTITY].num_nodes + g[ITEM].num_nodes == 9366
    kg_edges = sum(g[t].edge_index.size(1) for t in g.edge_types
                   if t[1] != 'interacts' and not t[1].startswith('rev_'))
    assert kg_edges == 15518
    assert len(set(ds.relations.values())) == 60


def test_rows_and_negatives_equal_the_reference(ds, raw):
    users, items, rows = reference_rows(raw)
    ref = np.asarray(rows).T
    # map the reference's user / item numbering to ours
    user_ids = ds.interactions.user_ids
    item_ids = ds.interactions.item_ids
    u = np.searchsorted(user_ids, np.asarray(users)[ref[0]])
    i = np.searchsorted(item_ids, np.asarray(items, dtype=np.int64)[ref[1]])
    labelled = ds._meta['labelled']
    assert labelled.tolist() == [u.tolist(), i.tolist(), ref[2].tolist()]
    assert int((labelled[2] == 1).sum()) == int((labelled[2] == 0).sum())


def test_reference_split(ds):
    split = ds.split()
    assert split.kind == 'fixed' and split.seed == 555
    ours = kgcn_split(42346)
    for a, b in zip(ours, reference_split(42346)):
        assert list(a) == list(b)
    sizes = {p: r.size(1) for p, r in split.labelled.items()}
    assert sizes == {'train': 25408, 'val': 8469, 'test': 8469}
    rows = ds._meta['labelled']
    assert torch.equal(split.labelled['test'],
                       rows[:, torch.from_numpy(ours[2])])
    for part in ('train', 'val', 'test'):
        lab = split.labelled[part]
        assert torch.equal(split.part(part), lab[:2, lab[2] == 1])
    report = audit(split)  # negatives are never positives nor edges
    assert 'item__rev_music_artist_origin__entity' not in report[
        'edge_types']
    assert 'entity__rev_music_artist_origin__item' in report['edge_types']
    assert ds.split('random', seed=1).labelled == {}


def copy_raw(raw, tmp_path):
    folder = tmp_path / 'raw'
    shutil.copytree(raw, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def test_malformed_inputs(raw, tmp_path):
    folder = copy_raw(raw, tmp_path)
    links = folder / 'item_index2entity_id.txt'
    text = links.read_text()
    links.write_text(text + '99999\tno_such_entity\n')
    with pytest.raises(ValueError, match=r"item_index2entity_id.txt: item "
                       r"99999 links to entity 'no_such_entity', which is "
                       r"in no triple"):
        LastFMKG(tmp_path / 'r1', raw_dir=str(folder))
    links.write_text(text + '12\n')
    with pytest.raises(ValueError, match=r'item_index2entity_id.txt: line '
                       r'\d+: expected "item entity"'):
        LastFMKG(tmp_path / 'r2', raw_dir=str(folder))
    links.write_text(text)
    kg = folder / 'kg.txt'
    kg.write_text(kg.read_text() + '1\tfilm.actor\n')
    with pytest.raises(ValueError, match=r'kg.txt: line 15519: expected '
                       r'"head relation tail"'):
        LastFMKG(tmp_path / 'r3', raw_dir=str(folder))
    shutil.copy(Path(raw, 'kg.txt'), kg)
    ua = folder / 'user_artists.dat'
    ua.write_text(ua.read_text() + 'x\t2\t1\n')  # a linked artist
    with pytest.raises(ValueError, match=r'user_artists.dat: line 92836: '
                       r'user id and weight must be numbers'):
        LastFMKG(tmp_path / 'r4', raw_dir=str(folder))
