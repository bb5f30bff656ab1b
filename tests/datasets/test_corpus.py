"""The bad-input corpus: every reader against malformed files and tables.

Each case asserts the error (:class:`~pyg_recsys.io.BadDataError`, whose
message names the file or column, the line or row, and the problem) and
that nothing was written: the data root holds no file but the processed
folder's lock (no processed data, no temporary file), the raw files are
unchanged and the raw folder holds nothing new; a DataFrame is left as it
was.
"""
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from pyg_recsys.data.interactions import from_dataframe, read_table
from pyg_recsys.data.kg import read_triples
from pyg_recsys.datasets import (
    GENRES,
    KGCompletionDataset,
    LastFMKG,
    LightGCNDataset,
    MovieLens100K,
    SocialDataset,
)
from pyg_recsys.datasets.lightgcn import read_id_list, read_lightgcn
from pyg_recsys.datasets.session import (
    SequenceDataset,
    SRGNNSessions,
    read_s3rec,
    read_sasrec,
    read_srgnn_examples,
    read_srgnn_sessions,
)
from pyg_recsys.datasets.social import read_mat
from pyg_recsys.io import BadDataError

GARBAGE = bytes(range(128, 256)) + bytes(range(128))  # not UTF-8, NULs


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv('PYG_RECSYS_DATA', raising=False)
    monkeypatch.delenv('PYG_RECSYS_ROOT', raising=False)


def put(folder, files):
    """Writes ``files`` (name -> str or bytes) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if isinstance(data, str):
            data = data.encode('utf-8')
        (folder / name).write_bytes(data)
    return folder


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def written(root):
    """Files under a data root, but the processed folder's lock."""
    return [name for name in snapshot(root)
            if os.path.basename(name) != '.lock']


def check_dataset(tmp_path, make, files, match):
    """``make(root, raw_dir)`` raises ``match`` on ``files`` and writes
    nothing."""
    raw = put(tmp_path / 'raw', files)
    before = snapshot(raw)
    root = tmp_path / 'root'
    with pytest.raises(BadDataError, match=match):
        make(str(root), str(raw))
    assert snapshot(raw) == before
    assert written(root) == []


def check_reader(tmp_path, read, name, data, match):
    """``read(path)`` raises ``match`` and the input folder holds only the
    input file afterwards."""
    folder = put(tmp_path / 'in', {name: data})
    with pytest.raises(BadDataError, match=match):
        read(str(folder / name))
    assert sorted(os.listdir(folder)) == [name]


# -- MovieLens-100K (GroupLens u.data / u.item / u.user) ---------------------

def flags(genres=('Comedy', )):
    return '|'.join('1' if g in genres else '0' for g in GENRES)


ML = {
    'u.data': '196\t242\t3\t881250949\n186\t302\t3\t891717742\n'
              '22\t242\t1\t878887116\n',
    'u.item': f'242|Kolya (1996)|01-Jan-1996||http://x|{flags()}\n'
              f'302|L.A. Confidential (1997)|01-Jan-1997||http://x|'
              f'{flags()}\n',
    'u.user': '196|49|M|writer|55105\n186|39|F|executive|00000\n'
              '22|25|M|writer|40206\n',
}
OK_DATA = '196\t242\t3\t881250949\n'

MOVIELENS = [
    ('data-rating-text', 'u.data', OK_DATA + '186\t302\tgood\t891717742\n',
     r"u.data: line 2: rating 'good' is not a number"),
    ('data-rating-nan', 'u.data', OK_DATA + '186\t302\tnan\t891717742\n',
     r'u.data: line 2: rating nan is NaN or infinite'),
    ('data-rating-NaN-word', 'u.data', OK_DATA + '186\t302\tNaN\t8917\n',
     r'u.data: line 2: rating nan is NaN or infinite'),
    ('data-rating-None', 'u.data', OK_DATA + '186\t302\tNone\t891717742\n',
     r"u.data: line 2: rating 'None' is not a number"),
    ('data-rating-inf', 'u.data', OK_DATA + '186\t302\tinf\t891717742\n',
     r'u.data: line 2: rating inf is NaN or infinite'),
    ('data-rating-empty', 'u.data', OK_DATA + '186\t302\t\t891717742\n',
     r"u.data: line 2: rating '' is not a number"),
    ('data-missing-column', 'u.data', '196\t242\t3\n186\t302\t3\n',
     r'u.data: line 1: column 3 \(time\) does not exist; the line has 3 '
     r'fields'),
    ('data-missing-user', 'u.data', OK_DATA + '\t302\t3\t891717742\n',
     r'u.data: line 2: user id is missing'),
    ('data-datetime', 'u.data', OK_DATA + '186\t302\t3\t1998-01-01\n',
     r"u.data: line 2: timestamp '1998-01-01' is not a number; write "
     r'times as numbers'),
    ('data-time-nan', 'u.data', OK_DATA + '186\t302\t3\tnan\n',
     r'u.data: line 2: timestamp nan is NaN or infinite'),
    ('data-empty', 'u.data', '\n \n',
     r'u.data: line 1: file is empty'),
    ('data-binary', 'u.data', b'196\t242\t3\t1\n' + GARBAGE,
     r'u.data: line 2: not valid text in the expected encoding'),
    ('data-quote', 'u.data', OK_DATA + '186\t"302\t3\t891717742\n',
     r'u.data: cannot parse the file'),
    ('item-id-text', 'u.item', f'Kolya|Kolya (1996)|||x|{flags()}\n',
     r"u.item: line 1: item id 'Kolya' is not an integer"),
    ('item-id-fraction', 'u.item', f'242.5|Kolya (1996)|||x|{flags()}\n',
     r"u.item: line 1: item id '242.5' is not an integer"),
    ('item-id-unicode-digit', 'u.item', f'٢٤٢|Kolya|||x|{flags()}\n',
     r"u.item: line 1: item id '.*' is not an integer"),
    ('item-flag-2', 'u.item', '242|Kolya|||x|' + '2|' * 18 + '0\n',
     r"u.item: line 1: genre flag '2' must be 0 or 1"),
    ('item-few-fields', 'u.item', '242|Kolya (1996)|01-Jan-1996\n',
     r"u.item: line 1: expected 24 '\|'-separated fields, got 3"),
    ('item-empty', 'u.item', '',
     r'u.item: line 1: file is empty'),
    ('user-age-text', 'u.user', '196|old|M|writer|55105\n',
     r"u.user: line 1: age 'old' is not an integer"),
    ('user-id-nan', 'u.user', 'nan|49|M|writer|55105\n',
     r"u.user: line 1: user id 'nan' is not an integer"),
    ('user-few-fields', 'u.user', '196|49|M\n',
     r"u.user: line 1: expected 5 '\|'-separated fields, got 3"),
]


@pytest.mark.parametrize('file,data,match',
                         [c[1:] for c in MOVIELENS],
                         ids=[c[0] for c in MOVIELENS])
def test_movielens(tmp_path, file, data, match):
    check_dataset(tmp_path, lambda root, raw: MovieLens100K(
        root, raw_dir=raw), {**ML, file: data}, match)


# -- LightGCN text (train.txt / test.txt / user_list.txt) --------------------

LGCN = {'train.txt': '0 0 1 2\n1 2 3\n2 0 3\n', 'test.txt': '0 3\n1 0\n'}
NOT_ID = r"id '{}' is not a non-negative integer"

LIGHTGCN = [
    ('train-text', 'train.txt', '0 0 1\n1 x 3\n',
     r"train.txt: line 2: " + NOT_ID.format('x')),
    ('train-fraction', 'train.txt', '0 0 1\n\n2 1.5\n',
     r'train.txt: line 3: ' + NOT_ID.format(r'1\.5')),
    ('train-negative', 'train.txt', '0 0 1\n-1 2\n',
     r'train.txt: line 2: ' + NOT_ID.format('-1')),
    ('train-plus-sign', 'train.txt', '0 +1\n',
     r'train.txt: line 1: ' + NOT_ID.format(r'\+1')),
    ('train-underscore', 'train.txt', '0 1_0\n',
     r'train.txt: line 1: ' + NOT_ID.format('1_0')),
    ('train-unicode-digit', 'train.txt', '0 ٣\n',
     r'train.txt: line 1: ' + NOT_ID.format('٣')),
    ('train-nan', 'train.txt', '0 nan\n',
     r'train.txt: line 1: ' + NOT_ID.format('nan')),
    ('train-overflow', 'train.txt', '0 1\n1 99999999999999999999999\n',
     r"train.txt: line 2: id '99999999999999999999999' is too large"),
    ('train-sparse-id', 'train.txt', '0 0 1\n1 2 4000000\n',
     r'train.txt: line 2: item id 4000000 is far beyond the 5 distinct '
     r'item ids in use'),
    ('train-empty', 'train.txt', ' \n\n',
     r'train.txt: line 1: file is empty'),
    ('train-binary', 'train.txt', b'0 1\n1 2\n' + GARBAGE,
     r'train.txt: line 3: not valid text in the expected encoding'),
    ('test-text', 'test.txt', '0 3\n1 None\n',
     r'test.txt: line 2: ' + NOT_ID.format('None')),
    ('user-list-remap-text', 'user_list.txt',
     'org_id remap_id\n10 0\n11 one\n12 2\n',
     r"user_list.txt: line 3: expected \"org_id remap_id\" with an "
     r"integer remap_id, got '11 one'"),
    ('user-list-remap-repeat', 'user_list.txt',
     'org_id remap_id\n10 0\n11 0\n12 2\n',
     r'user_list.txt: remap_id values must be 0 \.\. 2, each once'),
    ('user-list-remap-overflow', 'user_list.txt',
     'org_id remap_id\n10 0\n11 99999999999999999999999\n',
     r'user_list.txt: remap_id values must be 0 \.\. 1, each once'),
    ('user-list-short', 'user_list.txt', 'org_id remap_id\n10 0\n11 1\n',
     r'user_list.txt: lists 2 users but train/test use user id 2'),
    ('item-list-header-only', 'item_list.txt', 'org_id remap_id\n',
     r'item_list.txt: lists 0 items but train/test use item id 3'),
    ('item-list-binary', 'item_list.txt', GARBAGE,
     r'item_list.txt: line 1: not valid text in the expected encoding'),
]


@pytest.mark.parametrize('file,data,match', [c[1:] for c in LIGHTGCN],
                         ids=[c[0] for c in LIGHTGCN])
def test_lightgcn(tmp_path, file, data, match):
    check_dataset(tmp_path, lambda root, raw: LightGCNDataset(
        root, 'gowalla', raw_dir=raw), {**LGCN, file: data}, match)


@pytest.mark.parametrize('read,data,match', [
    (read_lightgcn, '0 1e3\n', r"f.txt: line 1: id '1e3' is not"),
    (read_id_list, 'a b\n5 -1\n', r"f.txt: line 2: expected \"org_id "
                                  r"remap_id\" with an integer remap_id"),
], ids=['read_lightgcn-exponent', 'read_id_list-negative'])
def test_lightgcn_readers(tmp_path, read, data, match):
    check_reader(tmp_path, read, 'f.txt', data, match)


# -- S3Rec and SASRec sequences ----------------------------------------------

S3REC = [
    ('text', '1 2 3\n2 a 3\n', r"Beauty.txt: line 2: id 'a' is not a "
                               r'non-negative integer'),
    ('fraction', '1 2 3.0\n', r"Beauty.txt: line 1: id '3\.0' is not"),
    ('negative', '1 2 -3\n', r"Beauty.txt: line 1: id '-3' is not"),
    ('unicode-digit', '1 2 ٣\n', r"Beauty.txt: line 1: id '٣' is not"),
    ('nan', '1 nan\n', r"Beauty.txt: line 1: id 'nan' is not"),
    ('overflow', '1 2\n2 99999999999999999999\n',
     r"Beauty.txt: line 2: id '99999999999999999999' is too large"),
    ('no-items', '1 2 3\n\n4\n', r'Beauty.txt: line 3: user 4 has no '
                                 r'items'),
    ('user-twice', '1 2 3\n1 4\n', r'Beauty.txt: line 2: user 1 is listed '
                                   r'twice'),
    ('empty', '\n\n', r'Beauty.txt: file is empty'),
    ('binary', b'1 2 3\n' + GARBAGE, r'Beauty.txt: line 2: not valid '
                                     r'text in the expected encoding'),
]


@pytest.mark.parametrize('data,match', [c[1:] for c in S3REC],
                         ids=[c[0] for c in S3REC])
def test_s3rec(tmp_path, data, match):
    check_dataset(tmp_path, lambda root, raw: SequenceDataset(
        'beauty', root, raw_dir=raw), {'Beauty.txt': data}, match)


SASREC = [
    ('three-fields', '1 2\n1 2 3\n', r"Video.txt: line 2: expected \"user "
                                     r"item\", got '1 2 3'"),
    ('one-field', '1 2\n\n3\n', r"Video.txt: line 3: expected \"user "
                                r"item\", got '3'"),
    ('text', '1 x\n', r"Video.txt: line 1: id 'x' is not a non-negative"),
    ('fraction', '1 2.5\n', r"Video.txt: line 1: id '2\.5' is not"),
    ('overflow', '99999999999999999999 1\n',
     r"Video.txt: line 1: id '99999999999999999999' is too large"),
    ('empty', '', r'Video.txt: file is empty'),
    ('binary', GARBAGE, r'Video.txt: line 1: not valid text'),
]


@pytest.mark.parametrize('data,match', [c[1:] for c in SASREC],
                         ids=[c[0] for c in SASREC])
def test_sasrec(tmp_path, data, match):
    check_dataset(tmp_path, lambda root, raw: SequenceDataset(
        'amazon-games', root, raw_dir=raw), {'Video.txt': data}, match)


@pytest.mark.parametrize('read,data,match', [
    (read_s3rec, '\ufeff1 2\n1 3\n', r'f.txt: line 2: user 1 is listed'),
    (read_sasrec, '1 2\n1\t2\t3\n', r'f.txt: line 2: expected "user item"'),
], ids=['read_s3rec-bom-then-repeat', 'read_sasrec-tabs'])
def test_sequence_readers(tmp_path, read, data, match):
    check_reader(tmp_path, read, 'f.txt', data, match)


# -- SR-GNN pickles ----------------------------------------------------------

class Hostile:
    """A pickle whose loading would create ``marker`` (``os.mkdir``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


class Evil:
    def __reduce__(self):
        return eval, ('1 + 1', )


def pickled(obj):
    return pickle.dumps(obj, protocol=3)


TRAIN = ([[5], [5, 7], [2]], [7, 9, 5])
TEST = ([[7], [2, 5]], [9, 7])
REFUSED = r'not a readable SR-GNN pickle of plain lists'

SRGNN = [
    ('truncated', 'train.txt', pickled(TRAIN)[:-5],
     REFUSED + r' \((Ran out of input|.*truncated)'),
    ('empty', 'train.txt', b'', REFUSED + r' \(Ran out of input'),
    ('binary', 'test.txt', GARBAGE, r'test.txt: ' + REFUSED),
    ('text', 'train.txt', b'[[5], [7]]\n', REFUSED),
    ('eval-global', 'train.txt', pickled(Evil()),
     r'refusing to load global builtins.eval'),
    ('numpy-global', 'train.txt', pickled(np.array([1, 2])),
     r'refusing to load global numpy'),
    ('not-a-pair', 'train.txt', pickled(5),
     r'train.txt: expected a pair \(prefixes, labels\), got int'),
    ('triple', 'train.txt', pickled(([[1]], [2], [3])),
     r'got tuple of length 3'),
    ('lengths-differ', 'train.txt', pickled(([[1], [2]], [3])),
     r'train.txt: 2 prefixes but 1 labels'),
    ('float-id', 'train.txt', pickled(([[1.5]], [2])),
     r'train.txt: prefixes holds a float item id'),
    ('bool-id', 'test.txt', pickled(([[True]], [2])),
     r'test.txt: prefixes holds a bool item id'),
    ('str-id', 'train.txt', pickled(([['7']], [2])),
     r'train.txt: prefixes holds a str item id'),
    ('none-label', 'train.txt', pickled(([[7]], [None])),
     r'train.txt: labels holds a NoneType item id'),
    ('negative-id', 'train.txt', pickled(([[-1]], [2])),
     r'train.txt: prefixes holds a negative item id'),
    ('huge-id', 'train.txt', pickled(([[2 ** 70]], [2])),
     r'train.txt: prefixes holds an item id that does not fit in int64'),
    ('empty-prefix', 'train.txt', pickled(([[1], []], [2, 3])),
     r'train.txt: prefixes\[1\] is an empty sequence'),
    ('prefix-not-list', 'train.txt', pickled(([[1], 7], [2, 3])),
     r'train.txt: prefixes\[1\] must be a list of item ids, got int'),
    ('labels-not-list', 'train.txt', pickled(([[1]], 2)),
     r'train.txt: labels must be a list of item ids, got int'),
    ('no-examples', 'train.txt', pickled(([], [])),
     r'train.txt: no training examples'),
    ('sessions-dict', 'all_train_seq.txt', pickled({1: [2]}),
     r'all_train_seq.txt: sessions must be a list of item-id lists, got '
     r'dict'),
]


@pytest.mark.parametrize('file,data,match', [c[1:] for c in SRGNN],
                         ids=[c[0] for c in SRGNN])
def test_srgnn(tmp_path, file, data, match):
    files = {'train.txt': pickled(TRAIN), 'test.txt': pickled(TEST),
             file: data}
    check_dataset(tmp_path, lambda root, raw: SRGNNSessions(
        'tmall', root, raw_dir=raw), files, match)


@pytest.mark.parametrize('read', [read_srgnn_examples, read_srgnn_sessions],
                         ids=['examples', 'sessions'])
def test_srgnn_hostile_pickle_is_not_run(tmp_path, read):
    marker = tmp_path / 'pwned'
    check_reader(tmp_path, read, 'train.txt', pickled(Hostile(str(marker))),
                 r'train.txt: not a readable SR-GNN pickle of plain lists '
                 r'\(refusing to load global posix.mkdir')
    assert not marker.exists()


# -- knowledge-graph triples -------------------------------------------------

KG = {'train.txt': 'a\tr\tb\nb\ts\tc\nc\tr\ta\n', 'valid.txt': 'a\ts\tc\n',
      'test.txt': 'b\tr\tc\n'}

KGC = [
    ('two-fields', 'train.txt', 'a\tr\tb\na\tr\n',
     r"train.txt: line 2: expected \"head relation tail\" \(2 fields "
     r"found: 'a\\tr'\)"),
    ('four-fields', 'valid.txt', 'a\tr\tb\tc\n',
     r'valid.txt: line 1: expected "head relation tail" \(4 fields'),
    ('empty-field', 'test.txt', 'a\t\tb\n',
     r'test.txt: line 1: expected "head relation tail" \(3 fields'),
    ('spaces-not-tabs', 'train.txt', 'a r b\n',
     r'train.txt: line 1: expected "head relation tail" \(1 fields'),
    ('empty', 'valid.txt', '\r\n\r\n',
     r'valid.txt: line 1: file is empty'),
    ('binary', 'train.txt', b'a\tr\tb\n' + GARBAGE,
     r'train.txt: line 2: not valid text in the expected encoding'),
    ('unknown-relation', 'test.txt', 'a\tnew\tb\n',
     r"test.txt: line 1: the triple names the relation 'new', which no "
     r'training triple has'),
    ('unknown-relation-after-blank', 'valid.txt', 'a\ts\tc\n\n\nb\tq\ta\n',
     r"valid.txt: line 4: the triple names the relation 'q'"),
]


@pytest.mark.parametrize('file,data,match', [c[1:] for c in KGC],
                         ids=[c[0] for c in KGC])
def test_kg_completion(tmp_path, file, data, match):
    check_dataset(tmp_path, lambda root, raw: KGCompletionDataset(
        root, 'kinship', raw_dir=raw), {**KG, file: data}, match)


def tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f'FB15k-237/{name}')
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize('data,match', [
    (GARBAGE, r'FB15k-237.tar.gz: not a readable tar archive'),
    (tar(KG)[:40], r'FB15k-237.tar.gz: not a readable tar archive'),
    (tar({'train.txt': KG['train.txt']}),
     r'FB15k-237.tar.gz: the archive has no valid.txt'),
], ids=['fb15k-garbage', 'fb15k-truncated', 'fb15k-missing-member'])
def test_kg_completion_archive(tmp_path, data, match):
    check_dataset(tmp_path, lambda root, raw: KGCompletionDataset(
        root, 'fb15k-237', raw_dir=raw), {'FB15k-237.tar.gz': data}, match)


def test_read_triples_header_and_nul(tmp_path):
    path = put(tmp_path / 'in', {'kg.txt': 'h\tr\tt\na\tr\x00\n'})
    with pytest.raises(BadDataError, match=r"kg.txt: line 2: expected "
                       r'"head relation tail" \(2 fields'):
        read_triples(lambda: open(path / 'kg.txt', encoding='utf-8'),
                     str(path / 'kg.txt'), skip=1)
    assert os.listdir(path) == ['kg.txt']


# -- Last.FM (KGCN) ----------------------------------------------------------

LINKS = ''.join(f'{a}\te{a}\n' for a in range(1, 9))
LASTFM = {
    'item_index2entity_id.txt': LINKS,
    'kg.txt': ''.join(f'e{a}\tgenre\tg{a % 2}\n' for a in range(1, 9)),
    'user_artists.dat': 'userID\tartistID\tweight\n'
                        '2\t1\t10\n2\t2\t5\n3\t3\t7\n3\t4\t1\n',
}

LAST = [
    ('link-item-text', 'item_index2entity_id.txt', LINKS + 'x9\te9\n',
     r"item_index2entity_id.txt: line 9: item 'x9' is not an artist id"),
    ('link-item-twice', 'item_index2entity_id.txt', LINKS + '3\te9\n',
     r'item_index2entity_id.txt: line 9: item 3 is listed twice \(first '
     r'on line 3\)'),
    ('link-one-field', 'item_index2entity_id.txt', '1\te1\n2\n',
     r"item_index2entity_id.txt: line 2: expected \"item entity\", got "
     r"'2'"),
    ('link-missing-entity', 'item_index2entity_id.txt', LINKS + '9\te99\n',
     r"item_index2entity_id.txt: item 9 links to entity 'e99', which is "
     r'in no triple'),
    ('link-empty', 'item_index2entity_id.txt', '',
     r'item_index2entity_id.txt: line 1: file is empty'),
    ('ratings-weight-nan', 'user_artists.dat',
     LASTFM['user_artists.dat'] + '4\t5\tnan\n',
     r'user_artists.dat: line 6: user id and weight must be numbers'),
    ('ratings-user-text', 'user_artists.dat',
     LASTFM['user_artists.dat'] + 'bob\t5\t3\n',
     r"user_artists.dat: line 6: user id and weight must be numbers, got "
     r"'bob\\t5\\t3'"),
    ('ratings-few-fields', 'user_artists.dat',
     LASTFM['user_artists.dat'] + '4\t5\n',
     r'user_artists.dat: line 6: expected "userID artistID weight"'),
    ('ratings-header-only', 'user_artists.dat', 'userID\tartistID\tweight\n',
     r'user_artists.dat: line 2: no rating lines after the header'),
    ('ratings-no-linked-artist', 'user_artists.dat',
     'userID\tartistID\tweight\n2\t99\t1\n',
     r'user_artists.dat: line 2: no line rates an artist of the link file'),
    ('ratings-too-many-heard', 'user_artists.dat',
     'userID\tartistID\tweight\n' + ''.join(
         f'2\t{a}\t1\n' for a in range(1, 7)),
     r'user_artists.dat: line 2: user 2 listened to 6 of the 8 linked '
     r'artists'),
    ('kg-two-fields', 'kg.txt', 'e1\tgenre\n',
     r'kg.txt: line 1: expected "head relation tail"'),
    ('kg-binary', 'kg.txt', GARBAGE,
     r'kg.txt: line 1: not valid text in the expected encoding'),
]


@pytest.mark.parametrize('file,data,match', [c[1:] for c in LAST],
                         ids=[c[0] for c in LAST])
def test_lastfm(tmp_path, file, data, match):
    check_dataset(tmp_path, lambda root, raw: LastFMKG(root, raw_dir=raw),
                  {**LASTFM, file: data}, match)


# -- Ciao / Epinions .mat files ----------------------------------------------

RATING = np.array([[1, 1, 1, 5, 0], [2, 1, 1, 4, 0], [2, 2, 1, 3, 0]])
TRUST = np.array([[1, 2], [2, 1]])


def mat(**fields):
    buf = io.BytesIO()
    scipy.io.savemat(buf, fields)
    return buf.getvalue()


def ciao(rating=None, trust=None, names=('rating.mat',
                                         'trustnetwork.mat')):
    buf = io.BytesIO()
    members = dict(zip(names, (
        mat(rating=RATING) if rating is None else rating,
        mat(trustnetwork=TRUST) if trust is None else trust)))
    with zipfile.ZipFile(buf, 'w') as zf:
        for name, data in members.items():
            zf.writestr(f'ciao/{name}', data)
    return buf.getvalue()


def cells():
    value = np.empty((2, 4), dtype=object)
    value[:] = 'x'
    return mat(rating=value)


SOCIAL = [
    ('not-a-zip', GARBAGE, r'ciao.zip: not a zip archive'),
    ('no-rating-member', ciao(names=('ratings.mat', 'trustnetwork.mat')),
     r"ciao.zip: the archive has no rating.mat \(it holds "),
    ('rating-garbage', ciao(rating=GARBAGE),
     r'ciao.zip!ciao/rating.mat: not a readable MATLAB .mat file'),
    ('rating-truncated', ciao(rating=mat(rating=RATING)[:150]),
     r'ciao.zip!ciao/rating.mat: not a readable MATLAB .mat file'),
    ('rating-wrong-field', ciao(rating=mat(ratings=RATING)),
     r"ciao/rating.mat: has no field 'rating' \(fields: \['ratings'\]\)"),
    ('rating-few-columns', ciao(rating=mat(rating=RATING[:, :3])),
     r"ciao/rating.mat: 'rating' must be a matrix with at least 4 columns, "
     r'got shape \(3, 3\)'),
    ('rating-nan', ciao(rating=mat(rating=np.where(
        RATING == 4, np.nan, RATING))),
     r"ciao/rating.mat: 'rating' row 2, column 4: nan is not an integer"),
    ('rating-fraction', ciao(rating=mat(rating=RATING + np.eye(3, 5) / 2)),
     r"ciao/rating.mat: 'rating' row 1, column 1: 1.5 is not an integer"),
    ('rating-cells', ciao(rating=cells()),
     r"ciao/rating.mat: 'rating' must be a numeric matrix, got object"),
    ('trust-empty', ciao(trust=mat(trustnetwork=np.zeros((0, 2)))),
     r'ciao/trustnetwork.mat: the trust network is empty'),
]


@pytest.mark.parametrize('data,match', [c[1:] for c in SOCIAL],
                         ids=[c[0] for c in SOCIAL])
def test_social(tmp_path, data, match):
    check_dataset(tmp_path, lambda root, raw: SocialDataset(
        root, 'ciao', raw_dir=raw), {'ciao.zip': data}, match)


def test_read_mat_strings(tmp_path):
    with pytest.raises(BadDataError, match=r"x.mat: 'rating' must be a "
                       r'numeric matrix, got <U1'):
        read_mat(mat(rating=np.array([['a'] * 4])), 'rating', 'x.mat', 4)


# -- CSV tables (read_table) -------------------------------------------------

HEAD = 'user,item,rating,time\n'
ROW = 'u1,i1,4,100\n'

TABLES = [
    ('missing-column', 'user,item,score,time\n' + ROW,
     r"t.csv: line 1: column 'rating' \(rating\) not found in header"),
    ('header-only', HEAD, r't.csv: line 2: file is empty \(no data rows\)'),
    ('rows-shorter-than-header', HEAD + 'u1\nu2\n',
     r't.csv: line 2: item id is missing'),
    ('empty', '', r't.csv: line 1: file is empty'),
    ('rating-nan', HEAD + ROW + 'u2,i1,nan,101\n',
     r't.csv: line 3: rating nan is NaN or infinite'),
    ('rating-None', HEAD + ROW + 'u2,i1,None,101\n',
     r"t.csv: line 3: rating 'None' is not a number"),
    ('rating-inf', HEAD + ROW + 'u2,i1,-inf,101\n',
     r't.csv: line 3: rating -inf is NaN or infinite'),
    ('user-missing', HEAD + ROW + ',i1,3,101\n',
     r't.csv: line 3: user id is missing'),
    ('item-missing-blank-lines', HEAD + '\n' + ROW + '\nu2,,3,101\n',
     r't.csv: line 5: item id is missing'),
    ('time-datetime', HEAD + ROW + 'u2,i1,3,2024-01-01T00:00:00\n',
     r"t.csv: line 3: timestamp '2024-01-01T00:00:00' is not a number"),
    ('time-text', HEAD + ROW + 'u2,i1,3,yesterday\n',
     r"t.csv: line 3: timestamp 'yesterday' is not a number"),
    ('unclosed-quote', HEAD + ROW + 'u2,"i1,3,101\n',
     r't.csv: cannot parse the file'),
    ('binary', HEAD.encode() + GARBAGE,
     r't.csv: line 2: not valid text in the expected encoding'),
    ('nul-in-rating', HEAD + 'u1,i1,4\x00,100\n',
     r"t.csv: (line 2: rating '4\\x00' is not a number|cannot parse)"),
]


@pytest.fixture(params=['pandas', 'python'])
def engine(request, monkeypatch):
    """Runs a case with the pandas reader and with the pure-Python one."""
    from pyg_recsys.data import interactions
    if request.param == 'python':
        monkeypatch.setattr(interactions, '_pandas', lambda: None)
    return request.param


@pytest.mark.parametrize('data,match', [c[1:] for c in TABLES],
                         ids=[c[0] for c in TABLES])
def test_read_table(tmp_path, engine, data, match):
    check_reader(tmp_path, lambda path: read_table(
        path, user_col='user', item_col='item', rating_col='rating',
        time_col='time'), 't.csv', data, match)


# -- DataFrames (from_dataframe) ---------------------------------------------

def frame(**changes):
    import pandas as pd
    columns = {'user': [1, 2, 3], 'item': ['a', 'b', 'c'],
               'rating': [4.0, 5.0, 3.0], 'time': [10, 20, 30]}
    columns.update(changes)
    return pd.DataFrame(columns)


def categorical(values):
    import pandas as pd
    return pd.Categorical(values)


def datetimes(values):
    import pandas as pd
    return pd.to_datetime(values)


# id, the changed columns (built when the case runs), the message
FRAMES = [
    ('user-None', lambda: frame(user=[1, None, 3]),
     r'from_dataframe: user id at row 1 is missing \(None / NaN\)'),
    ('item-NaN', lambda: frame(item=[1.0, np.nan, 2.0]),
     r'from_dataframe: item id at row 1 is missing'),
    ('item-nan-text', lambda: frame(item=['a', 'nan', 'c']),
     r"from_dataframe: item id 'nan' at row 1 is the text of a missing "
     r'value'),
    ('user-float', lambda: frame(user=[1.0, 2.5, 3.0]),
     r'from_dataframe: user ids must be integers or strings, got float64 '
     r'ids'),
    ('user-bool', lambda: frame(user=[True, False, True]),
     r'from_dataframe: user ids must be integers or strings, got boolean '
     r'ids'),
    ('item-mixed', lambda: frame(item=[1, 'b', 3]),
     r'from_dataframe: item: ids mix integers and strings'),
    ('item-category-nan', lambda: frame(item=categorical(['a', None, 'c'])),
     r'from_dataframe: item id at row 1 is missing \(NaN category\)'),
    ('rating-None', lambda: frame(rating=[4.0, None, 3.0]),
     r'from_dataframe: rating at row 1 is missing'),
    ('rating-inf', lambda: frame(rating=[4.0, 5.0, np.inf]),
     r'from_dataframe: rating at row 2 is inf; pass finite numbers'),
    ('rating-text', lambda: frame(rating=['4', 'five', '3']),
     r'from_dataframe: rating must be numbers, got (object|str)'),
    ('time-text', lambda: frame(time=['2024-01-01', 'soon', '2024-01-03']),
     r'from_dataframe: time must be numbers or datetimes'),
    ('time-NaT', lambda: frame(time=datetimes(
        ['2024-01-01', None, '2024-01-03'])),
     r'from_dataframe: time at row 1 is missing \(None / NaN / NaT\)'),
]


@pytest.mark.parametrize('make,match', [c[1:] for c in FRAMES],
                         ids=[c[0] for c in FRAMES])
def test_dataframe(tmp_path, make, match):
    pytest.importorskip('pandas')
    df = make()
    before = df.copy()
    with pytest.raises(BadDataError, match=match):
        from_dataframe(df, user='user', item='item', rating='rating',
                       time='time')
    assert df.equals(before) and list(df.dtypes) == list(before.dtypes)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs,match', [
    ({'user': 'uid'}, r"from_dataframe: column 'uid' \(user\) not found; "
                      r"the frame has columns \['user', 'item', 'rating', "
                      r"'time'\]"),
    ({'empty': True}, r'from_dataframe: the frame has no rows'),
], ids=['missing-column', 'no-rows'])
def test_dataframe_shape(kwargs, match):
    pytest.importorskip('pandas')
    df = frame()
    if kwargs.pop('empty', False):
        df = df.iloc[:0]
    args = {'user': 'user', 'item': 'item', **kwargs}
    before = df.copy()
    with pytest.raises(BadDataError, match=match):
        from_dataframe(df, **args)
    assert df.equals(before)


# -- a byte-order mark is accepted everywhere --------------------------------

def test_bom_is_accepted_everywhere(tmp_path):
    bom = '\ufeff'
    ml = MovieLens100K(tmp_path / 'r1', raw_dir=str(put(
        tmp_path / 'ml', {k: bom + v for k, v in ML.items()})))
    assert ml.interactions.user_ids.tolist() == [22, 186, 196]
    assert ml.item_titles[0] == 'Kolya (1996)'
    lg = LightGCNDataset(tmp_path / 'r2', 'gowalla', raw_dir=str(put(
        tmp_path / 'lg', {k: bom + v for k, v in LGCN.items()})))
    assert lg.interactions.num_users == 3
    assert lg.interactions.num_items == 4
    seq = put(tmp_path / 'seq', {'s3.txt': bom + '1 2 3\n',
                                 'sas.txt': bom + '1 2\n1 3\n'})
    assert read_s3rec(str(seq / 's3.txt')) == ([1], [[2, 3]])
    assert read_sasrec(str(seq / 'sas.txt')) == ([1], [[2, 3]])
    kg = put(tmp_path / 'kg', {'kg.txt': bom + 'a\tr\tb\n'})
    assert read_triples(lambda: open(kg / 'kg.txt', encoding='utf-8'),
                        'kg.txt') == (['a'], ['r'], ['b'])
    table = put(tmp_path / 't', {'t.csv': bom + HEAD + ROW})
    inter = read_table(table / 't.csv', user_col='user', item_col='item')
    assert inter.user_ids.tolist() == ['u1']
