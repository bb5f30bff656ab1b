import os
import pickle
from pathlib import Path

import pytest
import torch

from pyg_recsys.datasets.session import (
    SequenceDataset,
    SRGNNSessions,
    load_plain_pickle,
    next_item_task,
    read_s3rec,
    read_sasrec,
    read_srgnn_examples,
    read_srgnn_sessions,
)

# original ids: train items {2, 5, 7, 9}; 11 only in test
SESSIONS = [[5, 7, 9], [2, 5]]
TRAIN = ([[5], [5, 7], [2]], [7, 9, 5])
TEST = ([[7], [7, 11], [11], [2, 5]], [11, 9, 5, 7])


def dump(path, obj, protocol=3):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)
    return str(path)


def srgnn_raw(folder, train=TRAIN, test=TEST, sessions=SESSIONS):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dump(folder / 'train.txt', train)
    dump(folder / 'test.txt', test)
    if sessions is not None:
        dump(folder / 'all_train_seq.txt', sessions)
    return str(folder)


def write(folder, name, text):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return str(folder)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv('PYG_RECSYS_DATA', raising=False)
    monkeypatch.delenv('PYG_RECSYS_ROOT', raising=False)


# -- SR-GNN pickles ---------------------------------------------------------

def test_srgnn_drop_unseen(tmp_path):
    ds = SRGNNSessions('tmall', raw_dir=srgnn_raw(tmp_path))
    assert ds.item_ids.tolist() == [2, 5, 7, 9]
    assert ds.num_items == 4
    # reference: map through item_ids by a plain loop
    inv = {o: n for n, o in enumerate(ds.item_ids.tolist())}
    assert ds.train == [[inv[i] for i in p] for p in TRAIN[0]]
    assert ds.train_y.tolist() == [inv[i] for i in TRAIN[1]]
    # (7 -> 11) unseen label dropped; (7,11 -> 9) loses 11;
    # (11 -> 5) empty after removal, dropped; (2,5 -> 7) kept
    assert ds.test == [[inv[7]], [inv[2], inv[5]]]
    assert ds.test_y.tolist() == [inv[9], inv[7]]
    assert ds.sessions == [[1, 2, 3], [0, 1]]
    assert ds.info['num_test_raw'] == 4
    assert ds.info['test_dropped_unseen_label'] == 1
    assert ds.info['test_dropped_empty'] == 1
    assert ds.info['test_items_removed'] == 2
    assert ds.info['num_test_only_items'] == 1
    assert ds.train_y.dtype == torch.long
    assert 'num_items=4' in repr(ds)


def test_srgnn_keep_unseen(tmp_path):
    ds = SRGNNSessions('tmall', raw_dir=srgnn_raw(tmp_path), unseen='keep')
    assert ds.item_ids.tolist() == [2, 5, 7, 9, 11]
    assert ds.test == [[2], [2, 4], [4], [0, 1]]
    assert ds.test_y.tolist() == [4, 3, 1, 2]
    assert ds.info['num_train_items'] == 4


def test_srgnn_without_sessions_file(tmp_path):
    ds = SRGNNSessions('diginetica', raw_dir=srgnn_raw(tmp_path,
                                                       sessions=None))
    assert ds.sessions is None
    assert len(ds.train) == 3


def test_srgnn_finds_env_folder(tmp_path, monkeypatch):
    srgnn_raw(tmp_path / 'data' / 'nowplaying-srgnn' / 'raw')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(tmp_path / 'data'))
    ds = SRGNNSessions('nowplaying', root=str(tmp_path / 'root'))
    assert ds.raw_dir == str(tmp_path / 'data' / 'nowplaying-srgnn' / 'raw')


class Evil:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize('obj,message', [
    (Evil(), r'train.txt: not a readable SR-GNN pickle .*refusing to load '
             r'global'),
    ([[1]], r'train.txt: expected a pair \(prefixes, labels\), got list of '
            r'length 1'),
    (5, r'train.txt: expected a pair \(prefixes, labels\), got int'),
    (([[1], [2]], [3]), r'train.txt: 2 prefixes but 1 labels'),
    (([[1], []], [3, 4]), r'train.txt: prefixes\[1\] is an empty sequence'),
    (([[1], 2], [3, 4]), r'train.txt: prefixes\[1\] must be a list of item '
                         r'ids, got int'),
    ({'a': 1}, r'train.txt: expected a pair'),
    (([[1], [2.0]], [3, 4]), r'train.txt: prefixes holds a float item id'),
    (([[1], [True]], [3, 4]), r'train.txt: prefixes holds a bool item id'),
    (([[1], [-2]], [3, 4]), r'train.txt: prefixes holds a negative item id'),
    (([[1], [2 ** 70]], [3, 4]), r'train.txt: prefixes holds an item id '
                                 r'that does not fit in int64'),
    (([[1]], 'x'), r'train.txt: labels must be a list of item ids, got str'),
    (([[1]], ['x']), r'train.txt: labels holds a str item id'),
    ((5, [1]), r'train.txt: prefixes must be a list of item-id lists, got '
               r'int'),
])
def test_srgnn_malformed(tmp_path, obj, message):
    path = dump(tmp_path / 'train.txt', obj)
    with pytest.raises(ValueError, match=message):
        read_srgnn_examples(path)


def test_srgnn_malformed_bytes_and_sessions(tmp_path):
    path = tmp_path / 'train.txt'
    path.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='train.txt: not a readable SR-GNN '
                                         'pickle'):
        load_plain_pickle(str(path))
    path = dump(tmp_path / 'all_train_seq.txt', [[1, 2], [3, 'a']])
    with pytest.raises(ValueError, match='all_train_seq.txt: sessions holds '
                                         'a str item id'):
        read_srgnn_sessions(path)
    assert read_srgnn_sessions(dump(tmp_path / 's.txt', [[1, 2]])) == [[1, 2]]


def test_srgnn_empty_train(tmp_path):
    raw = srgnn_raw(tmp_path, train=([], []))
    with pytest.raises(ValueError, match='train.txt: no training examples'):
        SRGNNSessions('tmall', raw_dir=raw)


def test_srgnn_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="SRGNNSessions: unknown name 'x'"):
        SRGNNSessions('x')
    with pytest.raises(ValueError, match="SRGNNSessions: unseen must be "
                                         "'drop' or 'keep', got 'y'"):
        SRGNNSessions('tmall', unseen='y')
    with pytest.raises(FileNotFoundError, match=r"SRGNNSessions: raw files "
                       r"\['train.txt', 'test.txt'\] not found .*stage the "
                       r"'tmall-srgnn' folder.*GCE-GNN"):
        SRGNNSessions('tmall', root=str(tmp_path))


# -- per-user sequences -----------------------------------------------------

S3REC = '1 30 10 20 10\n2 20 40\n\n3 10 30 40\n'
SASREC = '7 4\n7 2\n8 2\n7 9\n8 4\n'


def test_read_s3rec_and_sasrec(tmp_path):
    path = write(tmp_path, 'Beauty.txt', S3REC) + '/Beauty.txt'
    assert read_s3rec(path) == ([1, 2, 3], [[30, 10, 20, 10], [20, 40],
                                            [10, 30, 40]])
    path = write(tmp_path, 'Video.txt', SASREC) + '/Video.txt'
    assert read_sasrec(path) == ([7, 8], [[4, 2, 9], [2, 4]])


@pytest.mark.parametrize('text,message', [
    ('1 2 3\n2 x 4\n', r"B.txt: line 2: id 'x' is not a non-negative "
                       r'integer'),
    ('1 2 3\n2 -4\n', r"B.txt: line 2: id '-4' is not"),
    ('1 2 3\n2 +4\n', r"B.txt: line 2: id '\+4' is not"),
    ('1 2 3\n\n2\n', r'B.txt: line 3: user 2 has no items'),
    ('1 2 3\n1 4\n', r'B.txt: line 2: user 1 is listed twice'),
    ('\n \n', r'B.txt: file is empty'),
])
def test_read_s3rec_errors(tmp_path, text, message):
    path = write(tmp_path, 'B.txt', text) + '/B.txt'
    with pytest.raises(ValueError, match=message):
        read_s3rec(path)


@pytest.mark.parametrize('text,message', [
    ('1 2\n1 2 3\n', r"V.txt: line 2: expected \"user item\", got '1 2 3'"),
    ('1 2\n1\n', r'V.txt: line 2: expected "user item"'),
    ('1 2\n1 b\n', r"V.txt: line 2: id 'b' is not a non-negative integer"),
    ('', r'V.txt: file is empty'),
])
def test_read_sasrec_errors(tmp_path, text, message):
    path = write(tmp_path, 'V.txt', text) + '/V.txt'
    with pytest.raises(ValueError, match=message):
        read_sasrec(path)


def test_sequence_dataset_and_leave_one_out(tmp_path):
    raw = write(tmp_path, 'Beauty.txt', S3REC)
    ds = SequenceDataset('beauty', raw_dir=raw)
    assert ds.item_ids.tolist() == [10, 20, 30, 40]
    assert ds.user_ids.tolist() == [1, 2, 3]
    assert ds.sequences == [[2, 0, 1, 0], [1, 3], [0, 2, 3]]
    assert (ds.num_users, ds.num_items, ds.num_actions) == (3, 4, 9)
    split = ds.leave_one_out()
    # user 1 (2 items) trains on all of it, gets no val/test example
    assert split.train == [[2, 0], [1, 3], [0]]
    assert split.val == [[2, 0], [0]]
    assert split.val_y.tolist() == [1, 2]
    assert split.test == [[2, 0, 1], [0, 2]]
    assert split.test_y.tolist() == [0, 3]
    assert split.val_user.tolist() == split.test_user.tolist() == [0, 2]
    assert split.info['num_short_users'] == 1
    # reference: every test example is prefix + target == full sequence
    for u, p, y in zip(split.test_user, split.test, split.test_y):
        assert p + [int(y)] == ds.sequences[u]
    short = ds.leave_one_out(max_len=1)
    assert short.train == [[0], [3], [0]]
    assert short.test == [[1], [2]]
    assert short.val == [[0], [0]]
    assert short.info['max_len'] == 1
    assert 'num_actions=9' in repr(ds)


def test_sequence_dataset_sasrec(tmp_path):
    ds = SequenceDataset('amazon-games', raw_dir=write(tmp_path, 'Video.txt',
                                                       SASREC))
    assert ds.sequences == [[1, 0, 2], [0, 1]]
    split = ds.leave_one_out()
    assert split.test == [[1, 0]] and split.test_y.tolist() == [2]


def test_sequence_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="SequenceDataset: unknown name "
                                         "'x'"):
        SequenceDataset('x')
    with pytest.raises(FileNotFoundError, match=r"SequenceDataset: raw files "
                       r"\['Toys_and_Games.txt'\] not found .*stage the "
                       r"'toys-and-games-s3rec' folder.*CIKM2020-S3Rec"):
        SequenceDataset('toys', root=str(tmp_path))
    ds = SequenceDataset('beauty', raw_dir=write(tmp_path, 'Beauty.txt',
                                                 S3REC))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='SequenceDataset.leave_one_out: '
                                             'max_len must be a positive '
                                             'int or None'):
            ds.leave_one_out(max_len=bad)
    assert SequenceDataset.folder_name('sports') == (
        'sports-and-outdoors-s3rec')


# -- staged copies (counts from each SOURCE.md) -----------------------------

SRGNN_STATS = {  # name: (train, test, items in train, test-only, sessions)
    'yoochoose1_64': (369_859, 55_898, 17_376, 369, 116_167),
    'tmall': (351_268, 25_898, 40_727, 0, 65_286),
    'nowplaying': (825_304, 89_824, 60_416, 0, 128_077),
}


@pytest.mark.data
@pytest.mark.parametrize('name', list(SRGNN_STATS))
def test_staged_srgnn(name, staged):
    raw = staged(f'{name}-srgnn', ('train.txt', 'test.txt',
                                    'all_train_seq.txt'))
    ds = SRGNNSessions(name, raw_dir=raw)
    train, test, items, test_only, sessions = SRGNN_STATS[name]
    assert len(ds.train) == ds.train_y.numel() == train
    assert ds.info['num_test_raw'] == test
    assert ds.num_items == items
    assert ds.info['num_test_only_items'] == test_only
    assert ds.info['num_sessions'] == sessions
    dropped = (ds.info['test_dropped_unseen_label']
               + ds.info['test_dropped_empty'])
    assert len(ds.test) == test - dropped
    assert (dropped > 0) == (test_only > 0)
    assert int(ds.train_y.max()) < ds.num_items
    if name == 'yoochoose1_64':
        assert round(ds.info['avg_length'], 2) == 6.16
        assert ds.item_ids.max() == 37_483


SEQ_STATS = {  # name: (folder, file, users, items, actions)
    'beauty': ('beauty-s3rec', 'Beauty.txt', 22_363, 12_101, 198_502),
    'sports': ('sports-and-outdoors-s3rec', 'Sports_and_Outdoors.txt',
               35_598, 18_357, 296_337),
    'toys': ('toys-and-games-s3rec', 'Toys_and_Games.txt', 19_412, 11_924,
             167_597),
    'yelp-s3rec': ('yelp-s3rec', 'Yelp.txt', 30_431, 20_033, 316_354),
    'lastfm-s3rec': ('lastfm-s3rec', 'LastFM.txt', 1_090, 3_646, 52_551),
    'amazon-games': ('amazon-video-sasrec', 'Video.txt', 31_013, 23_715,
                     287_107),
}


@pytest.mark.data
@pytest.mark.parametrize('name', list(SEQ_STATS))
def test_staged_sequences(name, staged):
    folder, file, users, items, actions = SEQ_STATS[name]
    ds = SequenceDataset(name, raw_dir=staged(folder, (file,)))
    assert (ds.num_users, ds.num_items, ds.num_actions) == (
        users, items, actions)
    split = ds.leave_one_out(max_len=50)
    short = split.info['num_short_users']
    assert len(split.test) == len(split.val) == users - short
    assert short == sum(len(s) < 3 for s in ds.sequences)
    assert max(map(len, split.test)) <= 50
    assert int(split.test_y.max()) < items


def test_gc_state_restored(tmp_path):
    import gc
    raw = srgnn_raw(tmp_path)
    assert gc.isenabled()
    SRGNNSessions('tmall', raw_dir=raw)
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(ValueError, match='unseen must be'):
            SRGNNSessions('tmall', raw_dir=raw, unseen='no')
        SRGNNSessions('tmall', raw_dir=raw)
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- next_item_task -------------------------------------------------------

def test_next_item_task_on_sequences(tmp_path):
    from pyg_recsys.datasets import next_item_task
    ds = SequenceDataset('beauty', raw_dir=write(tmp_path, 'Beauty.txt',
                                                 S3REC))
    seq = next_item_task(ds, mode='sequence')
    # training sequences [[2, 0], [1, 3], [0]]: the last gives no example
    assert len(seq.train) == 2 and seq.train.num_skipped == 1
    assert seq.train[0].seq.tolist() == [2] and seq.train[0].y.tolist() == [0]
    assert [g.y.tolist() for g in (seq.val[0], seq.val[1])] == [[1], [2]]
    assert seq.test[0].seq.tolist() == [2, 0, 1]
    assert seq.test[0].y.tolist() == [0]
    assert seq.info['mode'] == 'sequence' and seq.info['num_test'] == 2
    assert seq.info['num_short_users'] == 1
    pre = next_item_task(ds, mode='prefix', max_len=1)
    assert [pre.train[i].seq.tolist() for i in range(len(pre.train))] == \
        [[2], [1]]
    assert pre.test[0].seq.tolist() == [1]  # last step only
    assert pre.info['max_len'] == 1 and pre.num_items == 4


def test_next_item_task_on_srgnn_pickles(tmp_path):
    from pyg_recsys.datasets import next_item_task
    # example i is identified by its length i + 1
    train = ([[1] * (i + 1) for i in range(40)], [3] * 40)
    ds = SRGNNSessions('tmall', raw_dir=srgnn_raw(
        tmp_path, train=train, test=([[1], [1, 3]], [3, 1])))
    task = next_item_task(ds, val_fraction=0.25, seed=3)
    assert (len(task.train), len(task.val), len(task.test)) == (30, 10, 2)

    def held(t):
        return {int(t.val[i].length) for i in range(len(t.val))}
    train_ids = {int(task.train[i].length) for i in range(30)}
    assert held(task) | train_ids == set(range(1, 41))
    assert not held(task) & train_ids
    assert held(next_item_task(ds, val_fraction=0.25, seed=3)) == held(task)
    assert held(next_item_task(ds, val_fraction=0.25, seed=4)) != held(task)
    assert task.info['validation'] == ('random 0.25 of the training '
                                       'examples (seed 3)')
    with pytest.raises(ValueError, match='already augmented'):
        next_item_task(ds, mode='sequence')
    with pytest.raises(ValueError, match=r'val_fraction must be in \(0, '
                       r'1\)'):
        next_item_task(ds, val_fraction=1.0)
    with pytest.raises(ValueError, match="unknown mode 'x'"):
        next_item_task(ds, mode='x')
    with pytest.raises(TypeError, match='expected SRGNNSessions or '
                       'SequenceDataset'):
        next_item_task(object())


def test_locate_names_the_folder(tmp_path, monkeypatch):
    raw = tmp_path / 'yoochoose1_64-srgnn' / 'raw'
    srgnn_raw(raw)
    monkeypatch.setenv('PYG_RECSYS_DATA', str(tmp_path))
    assert SRGNNSessions.locate(name='yoochoose1_64') == f'raw files in {raw}'
    assert 'not found; stage Beauty.txt' in SequenceDataset.locate(
        root=str(tmp_path / 'r'), name='beauty')


def test_sequences_from_a_dataframe_the_user_brings():
    pd = pytest.importorskip('pandas')
    df = pd.DataFrame({
        'visitor': ['u2', 'u1', 'u2', 'u1', 'u2', 'u1', 'u1', 'u2', 'u3'],
        'product': ['b', 'a', 'a', 'c', 'c', 'a', 'd', 'b', 'a'],
        'at': pd.to_datetime(['2024-01-02', '2024-01-01', '2024-01-01',
                              '2024-01-03', '2024-01-05', '2024-01-04',
                              '2024-01-05', '2024-01-06', '2024-01-01'],
                             ).tz_localize('Europe/Berlin')})
    ds = SequenceDataset.from_dataframe(df, user='visitor', item='product',
                                        time='at', name='shop')
    assert ds.user_ids.tolist() == ['u1', 'u2', 'u3']
    assert ds.item_ids.tolist() == ['a', 'b', 'c', 'd']
    # time order per user, repeats kept (u1 saw 'a' twice, u2 'b' twice)
    assert ds.sequences == [[0, 2, 0, 3], [0, 1, 2, 1], [0]]
    split = ds.leave_one_out()
    assert split.test_y.tolist() == [3, 1] and split.val_y.tolist() == [0, 2]
    assert split.info['num_short_users'] == 1
    task = next_item_task(ds, mode='sequence')
    assert task.info['dataset'] == 'shop'
    # u3's single item gives no training example
    assert (len(task.train), len(task.val), len(task.test)) == (2, 2, 2)
    with pytest.raises(ValueError, match=r"from_dataframe: item id 'nan' at "
                       r'row 0 is the text of a missing value'):
        SequenceDataset.from_dataframe(df.assign(product='nan'),
                                       user='visitor', item='product')
