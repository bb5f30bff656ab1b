import random

import numpy as np
import pytest
import torch

from pyg_recsys.data import Interactions, from_tensors, k_core_mask, read_table
from pyg_recsys.data import interactions as mod
from pyg_recsys.io import BadDataError


@pytest.fixture(params=['pandas', 'python'])
def engine(request, monkeypatch):
    """Runs a test with the pandas reader and with the pure-Python one."""
    if request.param == 'python':
        monkeypatch.setattr(mod, '_pandas', lambda: None)
    return request.param


def write(tmp_path, name, text, mode='w', encoding='utf-8'):
    path = tmp_path / name
    if 'b' in mode:
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return str(path)


def pairs(inter):
    """(orig user, orig item) -> (rating, time) of an Interactions."""
    out = {}
    for k in range(len(inter)):
        u = inter.user_ids[int(inter.user[k])].item()
        i = inter.item_ids[int(inter.item[k])].item()
        r = None if inter.rating is None else float(inter.rating[k])
        t = None if inter.time is None else inter.time[k].item()
        out[(u, i)] = (r, t)
    return out


# -- Interactions ----------------------------------------------------------

def test_from_tensors_maps_ids_sorted_and_contiguous():
    inter = from_tensors(torch.tensor([30, 10, 30, 20]),
                         torch.tensor([7, 5, 5, 9]))
    assert inter.user_ids.tolist() == [10, 20, 30]
    assert inter.item_ids.tolist() == [5, 7, 9]
    assert inter.user.tolist() == [2, 0, 2, 1]
    assert inter.item.tolist() == [1, 0, 0, 2]
    assert inter.num_users == 3 and inter.num_items == 3 and len(inter) == 4
    assert inter.user_index(30) == 2 and inter.item_index(9) == 2
    assert inter.user_index(np.int64(20)) == 1
    assert 'num_users=3' in repr(inter)


def test_from_tensors_string_ids():
    inter = from_tensors(['bob', 'amy', 'bob'], ['x', 'y', 'y'],
                         rating=[1.0, 2.0, 3.0])
    assert inter.user_ids.tolist() == ['amy', 'bob']
    assert inter.user.tolist() == [1, 0, 1]
    assert inter.item_index('y') == 1
    assert inter.rating.dtype == torch.float


def test_index_lookup_unknown_id():
    inter = from_tensors([1, 2], [3, 4])
    with pytest.raises(KeyError, match='user_index: unknown user id 5'):
        inter.user_index(5)
    with pytest.raises(KeyError, match="item_index: unknown item id '3'"):
        inter.item_index('3')


def test_interactions_validation():
    with pytest.raises(ValueError, match='same length, got 2 and 1'):
        Interactions(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match='rating has 1 entries'):
        Interactions(torch.tensor([0, 1]), torch.tensor([0, 1]),
                     rating=torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r'item ids must lie in \[0, 2\)'):
        Interactions(torch.tensor([0, 1]), torch.tensor([0, 2]),
                     item_ids=['a', 'b'])
    inter = Interactions(torch.tensor([0, 2]), torch.tensor([1, 0]))
    assert inter.num_users == 3 and inter.num_items == 2


def test_to_hetero_full_log_with_attrs():
    inter = from_tensors([1, 1, 2], [5, 6, 5], rating=[1., 2., 3.],
                         time=[10, 20, 30])
    data = inter.to_hetero()
    assert data['user'].num_nodes == 2 and data['item'].num_nodes == 2
    fwd = data['user', 'interacts', 'item']
    rev = data['item', 'rev_interacts', 'user']
    assert fwd.edge_index.tolist() == [[0, 0, 1], [0, 1, 0]]
    assert rev.edge_index.tolist() == [[0, 1, 0], [0, 0, 1]]
    assert fwd.rating.tolist() == [1., 2., 3.]
    assert rev.time.tolist() == [10, 20, 30]
    assert fwd.time.dtype == torch.long
    assert 'rating' not in from_tensors([1], [2]).to_hetero()[
        'user', 'interacts', 'item']


def test_subset_keeps_or_compacts_ids():
    inter = from_tensors([1, 2, 3, 3], [7, 8, 9, 7], rating=[1., 2., 3., 4.])
    sub = inter.subset(torch.tensor([True, False, False, True]))
    assert sub.num_users == 3 and sub.user.tolist() == [0, 2]
    assert sub.rating.tolist() == [1., 4.]
    small = inter.subset(torch.tensor([0, 3]), reindex=True)
    assert small.user_ids.tolist() == [1, 3]
    assert small.item_ids.tolist() == [7]
    assert small.user.tolist() == [0, 1] and small.item.tolist() == [0, 0]
    with pytest.raises(ValueError, match='mask has 2 entries'):
        inter.subset(torch.tensor([True, False]))


# -- deduplication ---------------------------------------------------------

def naive_dedup(users, items, ratings, times, how):
    """Reference: per pair, pick the record by a Python loop."""
    groups = {}
    for pos, key in enumerate(zip(users, items)):
        groups.setdefault(key, []).append(pos)
    keep = {}
    for key, rows in groups.items():
        t = (lambda p: (times[p], p)) if times is not None else (lambda p: p)
        rows = sorted(rows, key=t)
        chosen = rows[0] if how == 'first' else rows[-1]
        rating = ratings[chosen]
        if how == 'mean':
            rating = sum(ratings[p] for p in rows) / len(rows)
        keep[chosen] = (key, rating, None if times is None else
                        times[chosen])
    return [keep[p] for p in sorted(keep)]


@pytest.mark.parametrize('how', ['last', 'first', 'mean'])
@pytest.mark.parametrize('with_time', [True, False])
def test_dedup_matches_reference(how, with_time):
    rng = random.Random(0)
    n = 300
    users = [rng.randrange(6) for _ in range(n)]
    items = [rng.randrange(5) for _ in range(n)]
    ratings = [float(rng.randrange(1, 6)) for _ in range(n)]
    times = [rng.randrange(10) for _ in range(n)] if with_time else None
    inter = from_tensors(users, items, ratings, times, dedup=how)
    ref = naive_dedup(users, items, ratings, times, how)
    got = [((inter.user_ids[u].item(), inter.item_ids[i].item()),
            r, None if inter.time is None else inter.time[k].item())
           for k, (u, i, r) in enumerate(zip(inter.user.tolist(),
                                             inter.item.tolist(),
                                             inter.rating.tolist()))]
    assert [g[0] for g in got] == [r[0] for r in ref]
    assert [g[2] for g in got] == [r[2] for r in ref]
    assert np.allclose([g[1] for g in got], [r[1] for r in ref])
    assert inter.info['num_duplicates'] == n - len(ref)


def test_dedup_last_by_time_then_file_order():
    inter = from_tensors([1, 1, 1], [2, 2, 2], rating=[1., 2., 3.],
                         time=[5, 9, 9])
    assert inter.rating.tolist() == [3.0]  # tie at 9: the later row
    inter = from_tensors([1, 1, 1], [2, 2, 2], rating=[1., 2., 3.],
                         time=[5, 9, 9], dedup='first')
    assert inter.rating.tolist() == [1.0]


def test_from_tensors_errors():
    with pytest.raises(ValueError, match='dedup must be one of'):
        from_tensors([1], [2], dedup='max')
    with pytest.raises(ValueError, match="dedup='mean' averages ratings"):
        from_tensors([1], [2], dedup='mean')
    with pytest.raises(ValueError, match='k_core must be a positive int'):
        from_tensors([1], [2], k_core=0)
    with pytest.raises(ValueError, match='k_core must be a positive int'):
        from_tensors([1], [2], k_core=(1, 2, 3))
    with pytest.raises(ValueError, match='got 2 users but 1 items'):
        from_tensors([1, 2], [2])
    with pytest.raises(ValueError, match='ids must be integers or strings'):
        from_tensors(torch.tensor([1.5]), [2])
    with pytest.raises(ValueError, match='rating has 2 entries but there '
                       'are 1'):
        from_tensors([1], [2], rating=[1., 2.])
    with pytest.raises(ValueError, match='rating at index 1 is nan'):
        from_tensors([1, 2], [2, 3], rating=[1., float('nan')])
    with pytest.raises(ValueError, match='time at index 0 is inf'):
        from_tensors([1], [2], time=[float('inf')])


# -- k-core ----------------------------------------------------------------

def naive_k_core(pairs, ku, ki):
    pairs = list(pairs)
    while True:
        du, di = {}, {}
        for u, i in pairs:
            du[u] = du.get(u, 0) + 1
            di[i] = di.get(i, 0) + 1
        kept = [(u, i) for u, i in pairs if du[u] >= ku and di[i] >= ki]
        if len(kept) == len(pairs):
            return kept
        pairs = kept


@pytest.mark.parametrize('k', [2, 3, (3, 2), (1, 4)])
def test_k_core_matches_naive_loop(k):
    rng = random.Random(1)
    pairs = sorted({(rng.randrange(40), rng.randrange(30))
                    for _ in range(250)})
    users = [p[0] + 100 for p in pairs]
    items = [p[1] for p in pairs]
    ku, ki = k if isinstance(k, tuple) else (k, k)
    ref = naive_k_core(zip(users, items), ku, ki)
    assert 0 < len(ref) < len(pairs)
    inter = from_tensors(users, items, k_core=k)
    got = [(inter.user_ids[u].item(), inter.item_ids[i].item())
           for u, i in zip(inter.user.tolist(), inter.item.tolist())]
    assert got == ref
    assert inter.num_users == len({u for u, _ in ref})  # re-indexed
    assert inter.num_items == len({i for _, i in ref})
    assert inter.info['k_core_dropped'] == len(pairs) - len(ref)
    mask = k_core_mask(torch.tensor(users), torch.tensor(items), ku, ki)
    assert int(mask.sum()) == len(ref)


# -- read_table ------------------------------------------------------------

CSV = 'user,item,rating,ts\n3,10,4,100\n1,10,5,90\n\n3,11,2.5,95\n'


def test_read_csv_with_header(tmp_path, engine):
    path = write(tmp_path, 'log.csv', CSV)
    inter = read_table(path, user_col='user', item_col='item',
                       rating_col='rating', time_col='ts')
    assert pairs(inter) == {(3, 10): (4.0, 100), (1, 10): (5.0, 90),
                            (3, 11): (2.5, 95)}
    assert inter.user_ids.dtype == np.int64
    assert inter.time.dtype == torch.long
    assert inter.info['source'] == path


def test_read_positions_without_header_and_separators(tmp_path, engine):
    text = '3\t10\t4\n1\t10\t5\n'
    tsv = write(tmp_path, 'log.tsv', text)
    dat = write(tmp_path, 'log.dat', '3::10::4\n1::10::5\n')
    txt = write(tmp_path, 'log.txt', '  3 10   4\n1 10 5\n')
    for path in (tsv, dat, txt):
        inter = read_table(path, user_col=0, item_col=1, rating_col=2)
        assert pairs(inter) == {(3, 10): (4.0, None), (1, 10): (5.0, None)}
    semi = write(tmp_path, 'log.csv', 'a;b\n3;10\n')
    inter = read_table(semi, user_col='a', item_col='b', sep=';')
    assert pairs(inter) == {(3, 10): (None, None)}


def test_read_string_ids_and_leading_zeros(tmp_path, engine):
    path = write(tmp_path, 'log.csv',
                 'u,i,t\n007,x,1.5\n7,y,2\n"a, b",x,3\n')
    inter = read_table(path, user_col='u', item_col='i', time_col='t')
    assert inter.user_ids.tolist() == ['007', '7', 'a, b']
    assert inter.user_index('a, b') == 2
    assert inter.time.dtype == torch.float64
    assert inter.time.tolist() == [1.5, 2.0, 3.0]


def test_read_dedup_and_k_core(tmp_path, engine):
    rows = ['1,1,5,1', '1,1,3,2', '1,2,4,3', '2,1,1,4', '2,2,1,5',
            '3,1,1,6']
    path = write(tmp_path, 'log.csv', '\n'.join(rows) + '\n')
    inter = read_table(path, user_col=0, item_col=1, rating_col=2,
                       time_col=3, dedup='mean', k_core=2)
    assert pairs(inter) == {(1, 1): (4.0, 2), (1, 2): (4.0, 3),
                            (2, 1): (1.0, 4), (2, 2): (1.0, 5)}


def test_engines_agree_on_larger_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = ['u\ti\tr\tt'] + [
        f'u{rng.integers(50)}\t{rng.integers(80)}\t{rng.integers(1, 6)}\t'
        f'{rng.integers(10 ** 9)}' for _ in range(3000)]
    path = write(tmp_path, 'big.tsv', '\n'.join(lines))
    kw = dict(user_col='u', item_col='i', rating_col='r', time_col='t')
    fast = read_table(path, **kw)
    monkeypatch.setattr(mod, '_pandas', lambda: None)
    slow = read_table(path, **kw)
    for name in ('user', 'item', 'rating', 'time'):
        assert torch.equal(getattr(fast, name), getattr(slow, name))
    assert fast.user_ids.tolist() == slow.user_ids.tolist()
    assert fast.item_ids.tolist() == slow.item_ids.tolist()


def test_read_errors(tmp_path, engine):
    kw = dict(user_col='user', item_col='item', rating_col='rating',
              time_col='ts')
    with pytest.raises(FileNotFoundError, match='nope.csv not found'):
        read_table(tmp_path / 'nope.csv', **kw)
    empty = write(tmp_path, 'empty.csv', '\n\n')
    with pytest.raises(ValueError, match=r'empty.csv: line 1: file is empty'):
        read_table(empty, **kw)
    only = write(tmp_path, 'only.csv', 'user,item,rating,ts\n')
    with pytest.raises(ValueError, match=r'only.csv: line 2: file is empty'):
        read_table(only, **kw)
    path = write(tmp_path, 'nocol.csv', 'user,item,ts\n1,2,3\n')
    with pytest.raises(ValueError, match=r"nocol.csv: line 1: column "
                       r"'rating' \(rating\) not found in header"):
        read_table(path, **kw)
    path = write(tmp_path, 'pos.csv', '1,2\n')
    with pytest.raises(ValueError, match=r'pos.csv: line 1: column 2 '
                       r'\(rating\) does not exist; the line has 2 fields'):
        read_table(path, user_col=0, item_col=1, rating_col=2)
    with pytest.raises(ValueError, match=r"pos.csv: columns given by name "
                       r"\['item'\] need header=True"):
        read_table(path, user_col=0, item_col='item', header=False)


@pytest.mark.parametrize('row,message', [
    ('1,2,abc,4', r"line 4: rating 'abc' is not a number"),
    ('1,2,,4', r"line 4: rating '' is not a number"),
    ('1,2,nan,4', r"line 4: rating nan is NaN or infinite"),
    ('1,2,inf,4', r"line 4: rating inf is NaN or infinite"),
    ('1,2,3,yesterday', r"line 4: timestamp 'yesterday' is not a number"),
    ('1,2,3,NaN', r"line 4: timestamp nan is NaN or infinite"),
    (',2,3,4', r'line 4: user id is missing'),
    ('1', r'line 4: item id is missing'),
])
def test_read_value_errors_name_file_and_line(tmp_path, engine, row,
                                              message):
    path = write(tmp_path, 'bad.csv', f'user,item,rating,ts\n5,6,1,1\n'
                                      f'\n{row}\n7,8,1,1\n')
    with pytest.raises(ValueError, match='bad.csv: ' + message):
        read_table(path, user_col='user', item_col='item',
                   rating_col='rating', time_col='ts')


def test_read_encoding_error(tmp_path, engine):
    path = write(tmp_path, 'latin.csv', 'u,i\nJos\xe9,1\n'.encode('latin-1'),
                 mode='wb')
    with pytest.raises(BadDataError, match=r"latin.csv: line 2: not valid "
                       r"text in the expected encoding .*encoding='latin-1'"):
        read_table(path, user_col='u', item_col='i')
    inter = read_table(path, user_col='u', item_col='i', encoding='latin-1')
    assert inter.user_ids.tolist() == ['José']


def test_read_parser_error(tmp_path, engine):
    path = write(tmp_path, 'quote.csv', 'u,i\n1,"2\n')
    with pytest.raises(ValueError, match='quote.csv: cannot parse the '
                       'file'):
        read_table(path, user_col='u', item_col='i')


def test_read_larger_file_matches_numpy(tmp_path, engine):
    n = 50_000
    rng = np.random.default_rng(0)
    data = np.stack([rng.integers(0, 500, n), rng.integers(0, 800, n),
                     rng.integers(1, 6, n)], 1)
    path = tmp_path / 'big.csv'
    np.savetxt(path, data, fmt='%d', delimiter=',')
    inter = read_table(path, user_col=0, item_col=1, rating_col=2)
    keys, last = np.unique((data[:, 0] * 800 + data[:, 1])[::-1],
                           return_index=True)
    assert len(inter) == keys.size
    assert inter.user_ids.tolist() == np.unique(data[:, 0]).tolist()
    got = inter.user_ids[inter.user.numpy()] * 800 + inter.item_ids[
        inter.item.numpy()]
    order = np.argsort(got)
    assert np.array_equal(got[order], keys)
    # dedup='last': the rating of the last row of each pair
    want = data[::-1][last, 2]
    assert np.array_equal(inter.rating.numpy()[order], want)


# -- Parquet (pyarrow is not installed here: read_parquet is faked) --------

class FakeParquet:
    def __init__(self, df):
        self.df = df

    def __call__(self, path):
        return self.df


@pytest.fixture
def parquet(monkeypatch, tmp_path):
    pd = pytest.importorskip('pandas')
    path = tmp_path / 'log.parquet'
    path.write_bytes(b'PAR1')

    def use(df):
        monkeypatch.setattr(pd, 'read_parquet', FakeParquet(df))
        return str(path)
    return pd, use


def test_read_parquet(parquet):
    pd, use = parquet
    df = pd.DataFrame({'u': ['b', 'a', 'b'], 'i': [3, 1, 1],
                       'r': [1.0, 2.0, 3.0],
                       't': pd.to_datetime([1, 2, 3], unit='s')})
    inter = read_table(use(df), user_col='u', item_col=1, rating_col='r',
                       time_col='t')
    assert inter.user_ids.tolist() == ['a', 'b']
    assert inter.item_ids.tolist() == [1, 3]
    assert inter.time.tolist() == [1, 2, 3]
    df = pd.DataFrame({'u': [1.0, 2.0], 'i': [1, 2]})
    assert read_table(use(df), user_col='u', item_col='i').user_ids.tolist() \
        == [1, 2]


@pytest.mark.parametrize('frame,kw,message', [
    ({'u': [1.0, np.nan], 'i': [1, 2]}, {}, 'row 2: user id is missing'),
    ({'u': [1.5, 2.0], 'i': [1, 2]}, {},
     'row 1: user id 1.5 is not an integer'),
    ({'u': ['a', None], 'i': [1, 2]}, {}, 'row 2: user id is missing'),
    ({'u': [1, 2], 'i': [1, 2], 'r': [1.0, np.nan]}, {'rating_col': 'r'},
     'row 2: rating nan is NaN or infinite'),
    ({'u': [1, 2], 'i': [1, 2], 'r': ['1', 'x']}, {'rating_col': 'r'},
     "row 2: rating 'x' is not a number"),
    ({'u': [1], 'i': [1]}, {'rating_col': 'r'},
     r"column 'r' \(rating\) not found; the file has columns"),
    ({'u': [1], 'i': [1]}, {'rating_col': 5},
     r'column 5 \(rating\) does not exist; the file has 2 columns'),
    ({'u': [], 'i': []}, {}, 'row 1: file is empty'),
])
def test_read_parquet_errors(parquet, frame, kw, message):
    pd, use = parquet
    path = use(pd.DataFrame(frame))
    with pytest.raises(ValueError, match='log.parquet: ' + message):
        read_table(path, user_col='u', item_col='i', **kw)


def test_read_parquet_nat_time(parquet):
    pd, use = parquet
    df = pd.DataFrame({'u': [1, 2], 'i': [1, 2],
                       't': pd.to_datetime([1, None], unit='s')})
    with pytest.raises(ValueError, match='row 2: timestamp is missing'):
        read_table(use(df), user_col='u', item_col='i', time_col='t')


def test_read_parquet_without_engine(monkeypatch, tmp_path):
    pd = pytest.importorskip('pandas')
    path = tmp_path / 'log.parquet'
    path.write_bytes(b'PAR1')

    def no_engine(path):
        raise ImportError('Unable to find a usable engine')
    monkeypatch.setattr(pd, 'read_parquet', no_engine)
    with pytest.raises(ImportError, match='pandas cannot read .*log.parquet '
                       '.*pip install pyarrow'):
        read_table(path, user_col=0, item_col=1)
    monkeypatch.setattr(mod, '_pandas', lambda: None)
    with pytest.raises(ImportError, match=r'log.parquet \(Parquet\) needs '
                       'pandas'):
        read_table(path, user_col=0, item_col=1)


pd = pytest.importorskip('pandas')


def test_from_dataframe_id_kinds_and_times():
    df = pd.DataFrame({
        'u': ['b', 'a', 'b', 'a'],
        'i': [3, 1, 2, 3],
        'r': [4.0, 5.0, 3.0, 1.0],
        't': pd.to_datetime(['2020-01-01 00:00:02', '2020-01-01 00:00:00',
                             '2020-01-01 00:00:01', '2020-01-01 00:00:03'])})
    inter = Interactions.from_dataframe(df, user='u', item='i', rating='r',
                                        time='t')
    assert inter.user_ids.tolist() == ['a', 'b']
    assert inter.item_ids.tolist() == [1, 2, 3]
    assert inter.time.tolist() == [1577836802, 1577836800, 1577836801,
                                   1577836803]
    assert inter.rating.tolist() == [4.0, 5.0, 3.0, 1.0]
    # categorical ids, tz-aware times: same instants in UTC
    aware = df.assign(u=df['u'].astype('category'),
                      t=df['t'].dt.tz_localize('UTC').dt.tz_convert(
                          'Asia/Tokyo'))
    same = Interactions.from_dataframe(aware, user='u', item='i', time='t')
    assert same.user_ids.tolist() == ['a', 'b']
    assert torch.equal(same.time, inter.time)
    # sub-second times keep their order (seconds as floats)
    fine = df.assign(t=pd.to_datetime(['2020-01-01 00:00:00.5',
                                       '2020-01-01 00:00:00.25',
                                       '2020-01-01 00:00:00.0',
                                       '2020-01-01 00:00:01.0']))
    got = Interactions.from_dataframe(fine, user='u', item='i', time='t')
    assert got.time.is_floating_point()
    assert torch.argsort(got.time).tolist() == [2, 1, 0, 3]
    # numeric times and nullable integer ids
    num = pd.DataFrame({'u': pd.array([5, 6], dtype='Int64'), 'i': [1, 1],
                        't': [10, 20]})
    assert Interactions.from_dataframe(num, user='u', item='i',
                                       time='t').user_ids.tolist() == [5, 6]


@pytest.mark.parametrize('frame,kw,message', [
    ({'u': [1, None], 'i': [1, 2]}, {}, r'user id at row 1 is missing'),
    ({'u': [1.0, float('nan')], 'i': [1, 2]}, {},
     r'user id at row 1 is missing'),
    ({'u': ['1', 'nan'], 'i': [1, 2]}, {},
     r"user id 'nan' at row 1 is the text of a missing value"),
    ({'u': [1, 2], 'i': ['x', None]}, {}, r'item id at row 1 is missing'),
    ({'u': [1, 'a'], 'i': [1, 2]}, {}, r'ids mix integers and strings'),
    ({'u': [True, False], 'i': [1, 2]}, {}, r'got boolean ids'),
    ({'u': [1.5, 2.0], 'i': [1, 2]}, {}, r'got float64 ids'),
    ({'u': [1, 2], 'i': [1, 2], 'r': [1.0, None]}, {'rating': 'r'},
     r'rating at row 1 is missing'),
    ({'u': [1, 2], 'i': [1, 2], 'r': ['good', 'bad']}, {'rating': 'r'},
     r'rating must be numbers'),
    ({'u': [1, 2], 'i': [1, 2], 't': [pd.Timestamp('2020-01-01'), pd.NaT]},
     {'time': 't'}, r'time at row 1 is missing'),
    ({'u': [], 'i': []}, {}, r'the frame has no rows'),
    ({'u': [1], 'i': [1]}, {'rating': 'zz'},
     r"column 'zz' \(rating\) not found"),
    ({'u': [1, 2], 'i': [1, 2]}, {'k_core': 2},
     r'k_core=\(2, 2\) removed all 2 interactions'),
])
def test_from_dataframe_rejects_bad_input(frame, kw, message):
    df = pd.DataFrame(frame)
    with pytest.raises(ValueError, match='from_dataframe: .*' + message):
        Interactions.from_dataframe(df, user='u', item='i', **kw)


def test_from_dataframe_not_a_frame():
    with pytest.raises(TypeError, match='expected a pandas DataFrame'):
        Interactions.from_dataframe([[1, 2]], user='u', item='i')


def test_sequences_in_time_order_with_ties_in_row_order():
    inter = from_tensors([2, 1, 2, 1, 2], [5, 6, 7, 5, 6],
                         time=[30, 10, 10, 20, 10])
    users, seqs = inter.sequences()
    assert users.tolist() == [0, 1]
    item = {i: n for n, i in enumerate(inter.item_ids.tolist())}
    assert seqs == [[item[6], item[5]], [item[7], item[6], item[5]]]
    untimed = from_tensors([1, 1, 1], [9, 7, 8])
    assert untimed.sequences()[1] == [[2, 0, 1]]  # row order
