import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from pyg_recsys.data import audit
from pyg_recsys.datasets import (
    GENRES,
    MovieLens100K,
    parse_atomic,
    parse_grouplens,
)
from pyg_recsys.datasets import movielens as ml

# A tiny sample in both formats (the same data).
RATINGS = [(196, 242, 3, 881250949), (186, 302, 3, 891717742),
           (196, 302, 5, 881250950), (22, 377, 1, 878887116),
           (186, 242, 4, 891717743), (22, 242, 2, 878887117)]
MOVIES = [(242, 'Kolya', '1996', ['Comedy']),
          (302, 'L.A. Confidential', '1997',
           ['Crime', 'Film-Noir', 'Mystery', 'Thriller']),
          (377, 'Misérables, Les', '1995', ['Drama', 'Musical'])]
PEOPLE = [(196, 49, 'M', 'writer', '55105'),
          (186, 39, 'F', 'executive', '00000'),
          (22, 25, 'M', 'writer', '40206')]


def flags(genres):
    return '|'.join('1' if g in genres else '0' for g in GENRES)


def write_grouplens(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'u.data').write_text(
        ''.join(f'{u}\t{i}\t{r}\t{t}\n' for u, i, r, t in RATINGS))
    (folder / 'u.item').write_bytes(''.join(
        f'{i}|{title} ({year})|01-Jan-{year}||http://x|{flags(g)}\n'
        for i, title, year, g in MOVIES).encode('latin-1'))
    (folder / 'u.user').write_text(
        ''.join(f'{u}|{a}|{g}|{o}|{z}\n' for u, a, g, o, z in PEOPLE))
    return str(folder)


ATOMIC = {
    'ml-100k.inter': 'user_id:token\titem_id:token\trating:float\t'
                     'timestamp:float\n' + ''.join(
                         f'{u}\t{i}\t{r}\t{t}\n' for u, i, r, t in RATINGS),
    'ml-100k.item': 'item_id:token\tmovie_title:token_seq\t'
                    'release_year:token\tclass:token_seq\n' + ''.join(
                        f'{i}\t{title}\t{year}\t{" ".join(g)}\n'
                        for i, title, year, g in MOVIES),
    'ml-100k.user': 'user_id:token\tage:token\tgender:token\t'
                    'occupation:token\tzip_code:token\n' + ''.join(
                        f'{u}\t{a}\t{g}\t{o}\t{z}\n'
                        for u, a, g, o, z in PEOPLE),
}


def write_atomic(folder, files=ATOMIC):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding='utf-8')
    return str(folder)


def write_wheel(path, files=ATOMIC):
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('recbole/__init__.py', '')
        for name, text in files.items():
            zf.writestr(f'recbole/dataset_example/ml-100k/{name}',
                        text.encode('utf-8'))
    return str(path)


def assert_same(a, b):
    for name in ('user', 'item', 'rating', 'time'):
        assert torch.equal(getattr(a.inter, name),
                           getattr(b.inter, name))
    assert a.inter.user_ids.tolist() == b.inter.user_ids.tolist()
    assert a.inter.item_ids.tolist() == b.inter.item_ids.tolist()
    assert a.titles == b.titles
    assert a.feature_names == b.feature_names
    for node in ('user', 'item'):
        assert torch.equal(a.x[node], b.x[node])


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv('PYG_RECSYS_DATA', raising=False)
    monkeypatch.delenv('PYG_RECSYS_ROOT', raising=False)


def test_grouplens_parser_on_sample(tmp_path):
    out = parse_grouplens(write_grouplens(tmp_path))
    inter = out.inter
    assert inter.user_ids.tolist() == [22, 186, 196]
    assert inter.item_ids.tolist() == [242, 302, 377]
    assert len(inter) == 6 and inter.time.dtype == torch.long
    assert out.titles == ['Kolya (1996)', 'L.A. Confidential (1997)',
                             'Misérables, Les (1995)']
    comedy = GENRES.index('Comedy')
    assert out.x['item'][0].nonzero().view(-1).tolist() == [comedy]
    assert out.feature_names['user'] == [
        'age', 'gender:F', 'gender:M', 'occupation:executive',
        'occupation:writer']
    # user 186 (index 1): age 39 / 49, female, executive
    assert torch.allclose(out.x['user'][1],
                          torch.tensor([39 / 49, 1., 0., 1., 0.]))


def test_atomic_parser_equals_grouplens(tmp_path):
    ref = parse_grouplens(write_grouplens(tmp_path / 'gl'))
    assert_same(parse_atomic(write_atomic(tmp_path / 'atomic')), ref)
    assert_same(parse_atomic(write_wheel(tmp_path / 'r.whl')), ref)


@pytest.mark.parametrize('file,text,message', [
    ('u.item', '242|Kolya (1996)|x\n',
     r"u.item: line 1: expected 24 '\|'-separated fields, got 3"),
    ('u.item', f'abc|Kolya|||x|{flags([])}\n',
     r"u.item: line 1: item id 'abc' is not an integer"),
    ('u.item', '\n\n', r'u.item: line 1: file is empty'),
    ('u.user', '196|49|M|writer|1\n186|old|F|executive|2\n',
     r"u.user: line 2: age 'old' is not an integer"),
    ('u.data', '196\t242\t3\t1\n186\t302\tnan\t2\n',
     r'u.data: line 2: rating nan is NaN or infinite'),
    ('u.data', '', r'u.data: line 1: file is empty'),
    ('u.data', '196\t242\t3\t1\n186\n', r'u.data: line 2: item id is '
                                        r'missing'),
])
def test_grouplens_errors_name_file_and_line(tmp_path, file, text,
                                             message):
    folder = write_grouplens(tmp_path)
    Path(folder, file).write_text(text)
    with pytest.raises(ValueError, match=message):
        parse_grouplens(folder)
    root = tmp_path / 'root'
    with pytest.raises(ValueError, match=message):
        MovieLens100K(root, raw_dir=folder)
    processed = root / 'movielens-100k' / 'processed'
    assert not list(processed.glob('data_v*'))  # nothing half-built


@pytest.mark.parametrize('file,replace,message', [
    ('ml-100k.item', ('\tComedy\n', '\tComedy Cartoon\n'),
     r"ml-100k.item: line 2: unknown genre 'Cartoon'"),
    ('ml-100k.item', ('class:token_seq', 'genre:token_seq'),
     r"ml-100k.item: line 1: column 'class' not found"),
    ('ml-100k.user', ('\t49\t', '\tx\t'),
     r"ml-100k.user: line 2: age 'x' is not an integer"),
    ('ml-100k.user', ('\t55105\n', '\n196\t1\n'),
     r'ml-100k.user: line 3: expected 5 fields, got 2'),
    ('ml-100k.inter', ('rating:float', 'score:float'),
     r"ml-100k.inter: line 1: column 'rating:float' \(rating\) not found"),
])
def test_atomic_errors_name_file_and_line(tmp_path, file, replace,
                                          message):
    files = dict(ATOMIC)
    files[file] = files[file].replace(*replace, 1)
    with pytest.raises(ValueError, match=message):
        parse_atomic(write_atomic(tmp_path / 'd', files))
    with pytest.raises(ValueError, match=r'r.whl!recbole/dataset_example/'
                       r'ml-100k/' + message):
        parse_atomic(write_wheel(tmp_path / 'r.whl', files))


def test_atomic_archive_without_files(tmp_path):
    path = tmp_path / 'other.whl'
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('pkg/ml-100k/ml-100k.inter', 'x')
    with pytest.raises(ValueError, match=r"other.whl: archive has no "
                       r"\['ml-100k.item', 'ml-100k.user'\]"):
        parse_atomic(str(path))


def test_dataset_on_sample(tmp_path):
    raw = write_grouplens(tmp_path / 'raw')
    ds = MovieLens100K(tmp_path / 'root', raw_dir=raw)
    data = ds[0]
    assert data['user'].x.shape == (3, 5) and data['item'].x.shape == (3, 19)
    assert data['user', 'interacts', 'item'].time.dtype == torch.long
    assert ds.item_titles[2] == 'Misérables, Les (1995)'
    assert ds.interactions.user_index(196) == 2
    split = ds.split(seed=1)
    assert split.kind == 'random' and split.info['dataset'] == ds.name
    assert split.train.size(1) == 6  # every user has < 3 ratings


def test_download_grouplens_zip(tmp_path, monkeypatch):
    src = Path(write_grouplens(tmp_path / 'ml-100k'))
    archive = tmp_path / 'ml-100k.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('ml-100k/', '')
        for f in src.iterdir():
            zf.write(f, f'ml-100k/{f.name}')
        zf.writestr('other/u.data', 'ignored')
    monkeypatch.setattr(MovieLens100K, 'url', archive.as_uri())

    def no_pip(*args, **kwargs):
        raise AssertionError('the wheel fallback must not run')
    monkeypatch.setattr(ml, 'pip_download', no_pip)
    ds = MovieLens100K(tmp_path / 'root')
    assert ds.raw_dir == str(tmp_path / 'root' / 'movielens-100k' / 'raw')
    assert sorted(os.listdir(ds.raw_dir)) == ['u.data', 'u.item', 'u.user']
    assert len(ds.interactions) == 6


def test_download_falls_back_to_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(MovieLens100K, 'url', 'file:///nonexistent/x.zip')
    calls = []

    def fake_pip(spec, dest, timeout, total_timeout):
        calls.append(spec)
        return write_wheel(Path(dest) / 'recbole-1.2.1-py3-none-any.whl')
    monkeypatch.setattr(ml, 'pip_download', fake_pip)
    ds = MovieLens100K(tmp_path / 'root')
    ref = parse_grouplens(write_grouplens(tmp_path / 'gl'))
    assert calls == ['recbole==1.2.1']
    assert torch.equal(ds.interactions.item, ref.inter.item)
    assert ds.item_titles == ref.titles
    # The cached wheel is a local source: no second download.
    monkeypatch.setattr(ml, 'pip_download', None)
    MovieLens100K(tmp_path / 'root', force_reload=True)


def test_download_failure_names_both_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(MovieLens100K, 'url', 'file:///nonexistent/x.zip')

    def failing_pip(*args, **kwargs):
        raise OSError('no route to PyPI')
    monkeypatch.setattr(ml, 'pip_download', failing_pip)
    with pytest.raises(RuntimeError, match=(
            r'MovieLens100K: could not get the raw files; tried \(1\) '
            r'GroupLens file:///nonexistent/x.zip: .*; \(2\) PyPI wheel '
            r'recbole==1.2.1 via pip download: no route to PyPI')):
        MovieLens100K(tmp_path / 'root')


def test_download_zip_without_all_files(tmp_path, monkeypatch):
    archive = tmp_path / 'ml-100k.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('ml-100k/u.data', '1\t2\t3\t4\n')
    monkeypatch.setattr(MovieLens100K, 'url', archive.as_uri())

    def failing_pip(*args, **kwargs):
        raise OSError('offline')
    monkeypatch.setattr(ml, 'pip_download', failing_pip)
    with pytest.raises(RuntimeError, match=r"\(1\) GroupLens .*ml-100k.zip "
                       r"lacks some of \('u.data', 'u.item', 'u.user'\)"):
        MovieLens100K(tmp_path / 'root')


class Result:
    def __init__(self, returncode, stderr=''):
        self.returncode, self.stderr = returncode, stderr


def test_pip_download_command_and_errors(tmp_path, monkeypatch):
    seen = {}

    def run_ok(cmd, **kwargs):
        seen['cmd'], seen['kwargs'] = cmd, kwargs
        Path(cmd[cmd.index('-d') + 1], 'pkg-1.0-py3-none-any.whl').write_text(
            'x')
        return Result(0)
    monkeypatch.setattr(ml.subprocess, 'run', run_ok)
    out = ml.pip_download('pkg==1.0', str(tmp_path), 7, 9)
    assert out == str(tmp_path / 'pkg-1.0-py3-none-any.whl')
    assert os.listdir(tmp_path) == ['pkg-1.0-py3-none-any.whl']
    cmd = seen['cmd']
    assert cmd[:4] == [sys.executable, '-m', 'pip', 'download']
    assert '--no-deps' in cmd and cmd[-1] == 'pkg==1.0'
    assert cmd[cmd.index('--timeout') + 1] == '7'
    assert seen['kwargs']['timeout'] == 9

    monkeypatch.setattr(ml.subprocess, 'run',
                        lambda cmd, **kw: Result(1, 'a\nb\nERROR: nope'))
    with pytest.raises(OSError, match=r'pip download pkg==1.0 failed '
                       r'\(exit 1\): b ERROR: nope'):
        ml.pip_download('pkg==1.0', str(tmp_path / 'a'))
    monkeypatch.setattr(ml.subprocess, 'run', lambda cmd, **kw: Result(0))
    with pytest.raises(OSError, match='produced no wheel'):
        ml.pip_download('pkg==1.0', str(tmp_path / 'b'))

    def hang(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw['timeout'])
    monkeypatch.setattr(ml.subprocess, 'run', hang)
    with pytest.raises(TimeoutError, match='did not finish in 3 s'):
        ml.pip_download('pkg==1.0', str(tmp_path / 'c'), total_timeout=3)
    assert os.listdir(tmp_path / 'c') == []  # temporary folder removed


# -- the staged real data --------------------------------------------------

@pytest.mark.data
def test_staged_movielens(movielens_raw, tmp_path):
    before = sorted(os.listdir(movielens_raw))
    start = time.perf_counter()
    ds = MovieLens100K(tmp_path, raw_dir=movielens_raw)
    first = time.perf_counter() - start
    inter = ds.interactions
    assert (len(inter), inter.num_users, inter.num_items) == (100_000, 943,
                                                              1682)
    assert inter.user_ids.tolist() == list(range(1, 944))
    assert inter.rating.sum().item() == pytest.approx(352986.0)
    assert ds.item_titles[0] == 'Toy Story (1995)'
    assert ds.item_titles[inter.item_index(267)] == 'unknown'
    data = ds[0]
    assert data['user'].x.shape == (943, 24)
    assert data['item'].x.shape == (1682, 19)
    assert data['user'].x[:, 1:3].sum().item() == 943  # one gender each
    split = ds.split()
    audit(split)
    assert split.train.size(1) + split.val.size(1) + split.test.size(
        1) == 100_000
    start = time.perf_counter()
    again = MovieLens100K(tmp_path, raw_dir=movielens_raw)
    cached = time.perf_counter() - start
    assert torch.equal(again.interactions.user, inter.user)
    assert cached < max(first, 1.0)
    assert sorted(os.listdir(movielens_raw)) == before


@pytest.mark.slow
def test_real_pip_download_fallback(tmp_path, monkeypatch):
    """Really runs ``pip download recbole==1.2.1`` (PyPI must be
    reachable) with the GroupLens URL made unreachable."""
    monkeypatch.setattr(MovieLens100K, 'url', 'file:///nonexistent/x.zip')
    ds = MovieLens100K(tmp_path)
    assert os.path.isfile(tmp_path / '_cache' /
                          'recbole-1.2.1-py3-none-any.whl')
    inter = ds.interactions
    assert (len(inter), inter.num_users, inter.num_items) == (100_000, 943,
                                                              1682)
    assert ds[0]['user'].x.shape == (943, 24)
    assert ds.item_titles[0] == 'Toy Story (1995)'
    staged = (Path(__file__).resolve().parents[2].parent / 'shared' /
              'datasets' / 'movielens-100k' / 'raw')
    if (staged / 'u.data').is_file():
        ref = parse_grouplens(str(staged))
        got = ml.parse_atomic(ds.wheel_path)
        assert_same(got, ref)


# -- MovieLens-100K with its knowledge graph --------------------------------

KG = ('head_id:token\trelation_id:token\ttail_id:token\n'
      'm.kolya\tfilm.film.genre\tm.comedy\n'
      'm.la\tfilm.film.genre\tm.crime\n'
      'm.la\tfilm.film.sequel\tm.kolya\n'
      'm.comedy\tgenre.parent\tm.crime\n')
LINK = 'item_id:token\tentity_id:token\n242\tm.kolya\n302\tm.la\n'


def test_kg_dataset_on_sample(tmp_path):
    raw = write_grouplens(tmp_path / 'raw')
    Path(raw, 'ml-100k.kg').write_text(KG)
    Path(raw, 'ml-100k.link').write_text(LINK)
    ds = ml.MovieLens100KKG(tmp_path / 'root', raw_dir=raw)
    assert repr(ds).endswith('num_entities=2)')
    g = ds[0]
    items = ds.interactions.item_ids.tolist()  # [242, 302, 377]
    assert items == [242, 302, 377]
    assert g['item', 'film_film_genre', 'entity'].edge_index.tolist() == [
        [0, 1], [0, 1]]
    assert g['item', 'film_film_sequel', 'item'].edge_index.tolist() == [
        [1], [0]]
    assert g['entity', 'genre_parent', 'entity'].edge_index.tolist() == [
        [0], [1]]
    assert g.orig_ids['entity'].tolist() == ['m.comedy', 'm.crime']
    assert ds.relations['film_film_genre'] == 'film.film.genre'
    split = ds.split(seed=0)
    assert split.num_nodes == {'entity': 2}
    assert ('entity', 'rev_film_film_genre', 'item') in split.graph(
        ).edge_types
    audit(split)


def test_kg_dataset_errors(tmp_path):
    raw = write_grouplens(tmp_path / 'raw')
    Path(raw, 'ml-100k.kg').write_text(KG)
    Path(raw, 'ml-100k.link').write_text(LINK + '377\tm.nowhere\n')
    with pytest.raises(ValueError, match=r"ml-100k.link: item 377 links to "
                       r"entity 'm.nowhere', which is in no triple"):
        ml.MovieLens100KKG(tmp_path / 'a', raw_dir=raw)
    Path(raw, 'ml-100k.link').write_text(LINK + '999\tm.la\n')
    with pytest.raises(ValueError, match=r"ml-100k.link: line 4: item '999' "
                       r'is not a MovieLens-100K movie'):
        ml.MovieLens100KKG(tmp_path / 'b', raw_dir=raw)
    Path(raw, 'ml-100k.link').write_text('item\tentity\n242\tm.kolya\n')
    with pytest.raises(ValueError, match=r'ml-100k.link: line 1: expected '
                       r'the header'):
        ml.MovieLens100KKG(tmp_path / 'c', raw_dir=raw)
    Path(raw, 'ml-100k.link').write_text(LINK)
    Path(raw, 'ml-100k.kg').write_text(KG + 'm.la\tfilm.film.genre\n')
    with pytest.raises(ValueError, match=r'ml-100k.kg: line 6: expected '
                       r'"head relation tail"'):
        ml.MovieLens100KKG(tmp_path / 'd', raw_dir=raw)


@pytest.fixture(scope='module')
def recbole_wheel(tmp_path_factory):
    """The real recbole==1.2.1 wheel from PyPI (skips when unreachable)."""
    folder = tmp_path_factory.mktemp('wheel')
    try:
        return ml.pip_download('recbole==1.2.1', str(folder), timeout=30,
                               total_timeout=120)
    except (OSError, TimeoutError) as e:
        pytest.skip(f'PyPI not reachable for the recbole wheel ({e})')


def test_kg_dataset_reference_sizes(movielens_raw, recbole_wheel, tmp_path):
    cache = tmp_path / 'root' / '_cache'
    cache.mkdir(parents=True)
    os.symlink(recbole_wheel, cache / 'recbole-1.2.1-py3-none-any.whl')
    ds = ml.MovieLens100KKG(tmp_path / 'root', raw_dir=movielens_raw)
    info = ds.interactions.info
    # RecBole's ml-100k.kg / .link, counted independently here
    with zipfile.ZipFile(recbole_wheel) as zf:
        kg = zf.read('recbole/dataset_example/ml-100k/ml-100k.kg').decode()
        link = zf.read('recbole/dataset_example/ml-100k/ml-100k.link'
                       ).decode()
    rows = [line.split('\t') for line in kg.splitlines()[1:] if line]
    entities = {h for h, _, _ in rows} | {t for _, _, t in rows}
    assert (info['num_triples'], info['num_kg_entities'],
            info['num_relations']) == (len(rows), len(entities),
                                       len({r for _, r, _ in rows}))
    assert (info['num_triples'], info['num_kg_entities'],
            info['num_relations']) == (91631, 34628, 24)
    assert info['num_linked_items'] == len(link.splitlines()) - 1 == 1598
    g = ds[0]
    assert g['entity'].num_nodes == 34628 - 1598
    assert len(ds.interactions) == 100000
    assert g['item'].x.shape == (1682, 19)  # MovieLens features kept
    assert sum(g[t].edge_index.size(1) for t in g.edge_types
               if t[1] != 'interacts' and not t[1].startswith('rev_')) \
        == 91631


def test_kg_from_the_wheel_when_raw_dir_holds_only_the_ratings(tmp_path,
                                                              monkeypatch):
    raw = write_grouplens(tmp_path / 'raw')  # no ml-100k.kg / .link there
    fetched = []

    def fake_fetch(self):
        fetched.append(self.wheel_path)
        os.makedirs(self.cache_dir, exist_ok=True)
        write_wheel(self.wheel_path, {'ml-100k.kg': KG,
                                      'ml-100k.link': LINK})
    monkeypatch.setattr(ml.MovieLens100KKG, '_fetch_wheel', fake_fetch)
    ds = ml.MovieLens100KKG(tmp_path / 'root', raw_dir=raw)
    assert len(fetched) == 1
    assert ds[0]['entity'].num_nodes == 2
    assert ds.source['files'][-1].endswith('recbole-1.2.1-py3-none-any.whl')
    ml.MovieLens100KKG(tmp_path / 'root', raw_dir=raw)
    assert len(fetched) == 1  # the cached wheel serves


def test_release_years_scale_to_unit_range_and_fill_missing():
    from pyg_recsys.datasets import release_years
    out = release_years(['A (1990)', 'B (2000)', 'C', 'D (1995) ', ''])
    assert out.shape == (5, 1)
    assert out.view(-1).tolist() == pytest.approx([0.0, 1.0, 0.5, 0.5, 0.5])
    assert release_years(['x', 'y']).tolist() == [[0.0], [0.0]]
