import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pyg_recsys.data import audit
from pyg_recsys.datasets import LightGCNDataset, read_id_list, read_lightgcn

TRAIN = '0 0 1 2 3\n1 2 3\n\n2 4 0 1\n3 5\n'
TEST = '0 4\n1 0 1\n2 2\n3\n'


def write(folder, files):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return str(folder)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv('PYG_RECSYS_DATA', raising=False)
    monkeypatch.delenv('PYG_RECSYS_ROOT', raising=False)


def test_read_lightgcn_format(tmp_path):
    path = write(tmp_path, {'train.txt': TRAIN}) + '/train.txt'
    user, item = read_lightgcn(path)
    ref = []
    for line in TRAIN.splitlines():  # plain per-line reference
        if line.split():
            u, *items = map(int, line.split())
            ref += [(u, i) for i in items]
    assert list(zip(user.tolist(), item.tolist())) == ref
    assert user.dtype == np.int64


@pytest.mark.parametrize('text,message', [
    ('0 1 2\n1 x 3\n', r"train.txt: line 2: id 'x' is not a non-negative "
                       r'integer'),
    ('0 1\n\n2 1.5\n', r"train.txt: line 3: id '1.5' is not"),
    ('0 1\n-1 2\n', r"train.txt: line 2: id '-1' is not"),
    ('\n  \n', r'train.txt: line 1: file is empty'),
])
def test_read_lightgcn_errors(tmp_path, text, message):
    path = write(tmp_path, {'train.txt': text}) + '/train.txt'
    with pytest.raises(ValueError, match=message):
        read_lightgcn(path)


def test_read_id_list(tmp_path):
    path = write(tmp_path, {'l.txt': 'org_id remap_id\n30 1\n10 0\n'})
    assert read_id_list(path + '/l.txt').tolist() == [10, 30]
    path = write(tmp_path, {'l.txt': 'org_id remap_id\n0553 0\nB01 1\n'})
    assert read_id_list(path + '/l.txt').tolist() == ['0553', 'B01']


@pytest.mark.parametrize('text,message', [
    ('org_id remap_id\n5 0\n7\n', r"l.txt: line 3: expected \"org_id "
                                  r"remap_id\" with an integer remap_id"),
    ('org_id remap_id\n5 0\n7 x\n', 'l.txt: line 3: expected'),
    ('org_id remap_id\n5 0\n7 2\n', r'l.txt: remap_id values must be 0 .. '
                                    r'1, each once'),
    ('', 'l.txt: line 1: file is empty'),
])
def test_read_id_list_errors(tmp_path, text, message):
    path = write(tmp_path, {'l.txt': text}) + '/l.txt'
    with pytest.raises(ValueError, match=message):
        read_id_list(path)


def test_dataset_on_sample(tmp_path):
    raw = write(tmp_path / 'raw', {
        'train.txt': TRAIN + '0 1\n',  # (0, 1) repeated
        'test.txt': TEST + '2 0\n',  # (2, 0) is a training pair
        'user_list.txt': 'org_id remap_id\n' + ''.join(
            f'u{k} {k}\n' for k in range(4)),
        'item_list.txt': 'org_id remap_id\n' + ''.join(
            f'{100 + k} {k}\n' for k in range(7)),
    })
    ds = LightGCNDataset(tmp_path / 'root', 'gowalla', raw_dir=raw)
    assert ds.name == 'gowalla-lightgcn'
    inter = ds.interactions
    assert inter.num_users == 4 and inter.num_items == 7
    assert inter.user_ids.tolist() == ['u0', 'u1', 'u2', 'u3']
    assert inter.item_index(106) == 6
    assert inter.info['train_duplicates'] == 1
    assert inter.info['test_in_train_dropped'] == 1
    assert inter.info['num_train'] == 10
    assert ds[0]['user', 'interacts', 'item'].edge_index.size(1) == 14
    split = ds.split()
    audit(split)
    assert split.kind == 'fixed' and split.info['dataset'] == ds.name
    test = {(0, 4), (1, 0), (1, 1), (2, 2)}
    assert {tuple(p) for p in split.test.t().tolist()} == test
    train = {(0, 0), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 4),
             (2, 0), (2, 1), (3, 5)}
    got = {tuple(p) for p in torch.cat([split.train, split.val],
                                       1).t().tolist()}
    assert got == train
    assert split.val.size(1) == 3  # users 0, 1, 2 give one each
    empty = ds.split(val_ratio=0.0)
    assert empty.val.size(1) == 0 and empty.train.size(1) == 10
    assert ds.split('random', seed=1).kind == 'random'
    with pytest.raises(ValueError, match=r"LightGCNDataset.split: unknown "
                       r"kind 'temporal'; use one of \('fixed', 'random'\)"):
        ds.split('temporal')


def test_dataset_without_id_lists_and_errors(tmp_path):
    raw = write(tmp_path / 'raw', {'train.txt': TRAIN, 'test.txt': TEST})
    ds = LightGCNDataset(tmp_path / 'root', 'yelp2018', raw_dir=raw)
    assert ds.interactions.item_ids.tolist() == list(range(6))
    with pytest.raises(ValueError, match=r"LightGCNDataset: unknown name "
                       r"'movielens'"):
        LightGCNDataset(tmp_path, 'movielens')
    write(raw, {'user_list.txt': 'org_id remap_id\n7 0\n8 1\n'})
    with pytest.raises(ValueError, match=r'user_list.txt: lists 2 users but '
                       r'train/test use user id 3'):
        LightGCNDataset(tmp_path / 'root2', 'yelp2018', raw_dir=raw)
    write(raw, {'test.txt': '0 1\n1 z\n'})
    os.remove(Path(raw, 'user_list.txt'))
    with pytest.raises(ValueError, match=r"test.txt: line 2: id 'z'"):
        LightGCNDataset(tmp_path / 'root3', 'yelp2018', raw_dir=raw)
    processed = tmp_path / 'root3' / 'yelp2018-lightgcn' / 'processed'
    assert not list(processed.glob('data_v*'))  # nothing half-built


def test_download_from_url_template(tmp_path, monkeypatch):
    upstream = tmp_path / 'upstream' / 'amazon-book'
    write(upstream, {'train.txt': TRAIN, 'test.txt': TEST,
                     'user_list.txt': 'org_id remap_id\n' + ''.join(
                         f'{9 - k} {k}\n' for k in range(4))})
    template = (tmp_path / 'upstream').as_uri() + '/{name}/{file}'
    monkeypatch.setattr(LightGCNDataset, 'url', template)
    ds = LightGCNDataset(tmp_path / 'root', 'amazon-book')
    raw = tmp_path / 'root' / 'amazon-book-lightgcn' / 'raw'
    assert sorted(os.listdir(raw)) == ['test.txt', 'train.txt',
                                       'user_list.txt']
    assert ds.interactions.user_ids.tolist() == [9, 8, 7, 6]
    (upstream / 'test.txt').unlink()
    with pytest.raises(OSError, match='test.txt'):
        LightGCNDataset(tmp_path / 'root2', 'amazon-book')


# -- the staged real data --------------------------------------------------

@pytest.fixture(scope='module')
def gowalla(gowalla_raw, tmp_path_factory):
    root = tmp_path_factory.mktemp('gowalla')
    start = time.perf_counter()
    ds = LightGCNDataset(root, 'gowalla', raw_dir=gowalla_raw)
    return ds, time.perf_counter() - start, root


@pytest.mark.data
def test_staged_gowalla(gowalla, gowalla_raw):
    ds, seconds, root = gowalla
    inter = ds.interactions
    assert (inter.num_users, inter.num_items) == (29_858, 40_981)
    assert inter.info['num_train'] == 810_128
    assert len(inter) == 810_128 + 217_242
    assert inter.user_ids[0] == 343 and inter.item_ids[0] == 8975
    assert seconds < 60
    split = ds.split()
    audit(split)
    assert split.train.size(1) + split.val.size(1) == 810_128
    assert split.test.size(1) == 217_242
    assert ds.split(val_ratio=0.0).train.size(1) == 810_128
    start = time.perf_counter()
    again = LightGCNDataset(root, 'gowalla', raw_dir=gowalla_raw)
    assert time.perf_counter() - start < max(seconds, 2.0)
    assert torch.equal(again.interactions.item, inter.item)


def test_amazon_book_kgat_sizes(staged, tmp_path):
    raw = staged('amazon-book-kgat', ('train.txt', 'test.txt',
                                      'user_list.txt', 'item_list.txt'))
    ds = LightGCNDataset(tmp_path, 'amazon-book-kgat', raw_dir=raw)
    inter = ds.interactions
    # KGAT's Amazon-Book: 70,679 users, 24,915 items; the released files
    # hold 846,434 interactions (the paper counts 847,733)
    assert (inter.num_users, inter.num_items, len(inter)) == (
        70679, 24915, 846434)
    assert inter.info['num_train'] == 652514
    assert ds.processed_dir.endswith('amazon-book-kgat/processed')
    split = ds.split(val_ratio=0.0)
    assert (split.train.size(1), split.test.size(1)) == (652514, 193920)
    assert LightGCNDataset.folder_name(name='amazon-book-kgat') == \
        'amazon-book-kgat'
