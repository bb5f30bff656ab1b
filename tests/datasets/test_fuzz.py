"""Property-based fuzzing of the text readers (``hypothesis``).

Any input either loads into a result that passes its own checks or raises
:class:`~pyg_recsys.io.BadDataError` with a message naming the file; never
a raw ``ValueError`` from ``int()``, a NumPy ``TypeError``, an
``IndexError``, a ``UnicodeDecodeError`` or a hang.  Inputs mix
valid-looking lines, perturbed tokens and garbage text or bytes.
"""
import os
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyg_recsys.data.interactions import read_table  # noqa: E402
from pyg_recsys.data.kg import read_triples  # noqa: E402
from pyg_recsys.datasets.lightgcn import (  # noqa: E402
    LightGCNDataset,
    read_lightgcn,
)
from pyg_recsys.datasets.session import (  # noqa: E402
    SequenceDataset,
    read_s3rec,
    read_sasrec,
)
from pyg_recsys.io import BadDataError  # noqa: E402

# the ``engine`` fixture is set once per test, not per example: on purpose
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=HEALTH)
SLOW_FUZZ = settings(max_examples=40, deadline=None,
                     suppress_health_check=HEALTH)

# Tokens that look like ids but are not (or are at the edge).
ODD = ['', '-1', '1.5', '1e3', 'nan', 'NaN', 'None', 'inf', '+1', '1_0',
       '٣', '007', '0', '99999999999999999999', '9223372036854775807',
       '\ufeff', '\ufeff1', '\x00', '"', "'", ',', ';', '|', '::', ' ',
       '\t', '\r', '\x0b', '\x1c', '\u2028', '\u00a0', 'é', 'x']

ints = st.integers(min_value=0, max_value=30).map(str)
tokens = st.one_of(ints, ints, st.sampled_from(ODD),
                   st.text(max_size=4))


def lines_of(sep, min_fields, max_fields):
    """A line of tokens joined by ``sep``, valid-looking or perturbed."""
    return st.lists(tokens, min_size=min_fields,
                    max_size=max_fields).map(sep.join)


def documents(sep=' ', min_fields=1, max_fields=5, header=None):
    """Text made of lines (mostly plausible, some garbage), or raw bytes."""
    line = st.one_of(lines_of(sep, min_fields, max_fields),
                     lines_of(sep, min_fields, max_fields),
                     st.text(max_size=20))
    text = st.lists(line, max_size=8).map('\n'.join)
    if header is not None:
        text = st.one_of(text, text.map(lambda t: header + '\n' + t))
    return st.one_of(
        text.map(lambda t: t.encode('utf-8')),
        text.map(lambda t: ('\ufeff' + t).encode('utf-8')),
        st.binary(max_size=60),
        st.tuples(text, st.binary(max_size=8)).map(
            lambda p: p[0].encode('utf-8') + p[1]))


def load(data, read, name='f.txt'):
    """``read(path)`` on ``data`` in a fresh folder: the result, or
    ``None`` after a :class:`BadDataError` naming the file; any other
    exception fails the test.  The folder holds only the file after."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, 'wb') as f:
            f.write(data)
        try:
            out = read(path)
        except BadDataError as e:
            assert name in str(e), str(e)
            out = None
        assert os.listdir(folder) == [name]
    return out


def check_ids(values):
    values = np.asarray(values)
    assert values.dtype == np.int64
    assert values.size == 0 or values.min() >= 0


# -- LightGCN train.txt ------------------------------------------------------

@FUZZ
@given(documents(' ', 1, 6))
def test_read_lightgcn(data):
    out = load(data, read_lightgcn)
    if out is not None:
        user, item = out
        assert user.shape == item.shape
        check_ids(user)
        check_ids(item)


@SLOW_FUZZ
@given(documents(' ', 1, 5), documents(' ', 1, 3))
def test_lightgcn_dataset(train, test):
    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, 'raw')
        os.makedirs(raw)
        for name, data in (('train.txt', train), ('test.txt', test)):
            with open(os.path.join(raw, name), 'wb') as f:
                f.write(data)
        root = os.path.join(folder, 'root')
        try:
            ds = LightGCNDataset(root, 'gowalla', raw_dir=raw)
        except BadDataError as e:
            assert 'raw' in str(e), str(e)
            done = [f for _, _, files in os.walk(root) for f in files
                    if f != '.lock']
            assert done == []
            return
        inter = ds.interactions
        assert len(inter) == int(inter.user.numel())
        if len(inter):
            assert int(inter.user.max()) < inter.num_users
            assert int(inter.item.max()) < inter.num_items


# -- S3Rec and SASRec sequences ----------------------------------------------

def check_sequences(out):
    users, seqs = out
    assert len(users) == len(seqs) == len(set(users)) > 0
    check_ids(np.asarray(users, dtype=np.int64))
    for seq in seqs:
        assert seq and all(isinstance(i, int) for i in seq)
        check_ids(np.asarray(seq, dtype=np.int64))


@FUZZ
@given(documents(' ', 1, 5))
def test_read_s3rec(data):
    out = load(data, read_s3rec)
    if out is not None:
        check_sequences(out)


@FUZZ
@given(documents(' ', 1, 3))
def test_read_sasrec(data):
    out = load(data, read_sasrec)
    if out is not None:
        check_sequences(out)


@SLOW_FUZZ
@given(documents(' ', 1, 5))
def test_sequence_dataset(data):
    def read(path):
        return SequenceDataset('beauty', raw_dir=os.path.dirname(path))
    ds = load(data, read, 'Beauty.txt')
    if ds is not None:
        assert ds.num_users == len(ds.sequences) > 0
        flat = [i for s in ds.sequences for i in s]
        assert 0 <= min(flat) and max(flat) < ds.num_items


# -- knowledge-graph triples -------------------------------------------------

@FUZZ
@given(documents('\t', 1, 4))
def test_read_triples(data):
    def read(path):
        return read_triples(lambda: open(path, encoding='utf-8'), path)
    out = load(data, read)
    if out is not None:
        heads, rels, tails = out
        assert len(heads) == len(rels) == len(tails) > 0
        for value in heads + rels + tails:
            assert value and value == value.strip() and '\t' not in value


# -- u.data and CSV tables (read_table) --------------------------------------

def check_interactions(inter, rating=True, time=True):
    assert len(inter) > 0
    assert int(inter.user.max()) < inter.num_users
    assert int(inter.item.max()) < inter.num_items
    if rating:
        assert bool(inter.rating.isfinite().all())
    if time:
        assert inter.time.numel() == len(inter)


@pytest.fixture(params=['pandas', 'python'])
def engine(request, monkeypatch):
    from pyg_recsys.data import interactions
    if request.param == 'python':
        monkeypatch.setattr(interactions, '_pandas', lambda: None)
    return request.param


@FUZZ
@given(data=documents('\t', 2, 5))
def test_read_udata(engine, data):
    out = load(data, lambda path: read_table(
        path, user_col=0, item_col=1, rating_col=2, time_col=3, sep='\t',
        header=False), 'u.data')
    if out is not None:
        check_interactions(out)


@FUZZ
@given(data=documents(',', 2, 5, header='user,item,rating,time'))
def test_read_csv(engine, data):
    out = load(data, lambda path: read_table(
        path, user_col='user', item_col='item', rating_col='rating',
        time_col='time'), 't.csv')
    if out is not None:
        check_interactions(out)
