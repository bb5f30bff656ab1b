"""Load, recommend, export, index and serve trained runs
(:mod:`pyg_recsys.serving`)."""
import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pyg_recsys.cli import main
from pyg_recsys.io import DamagedFileError
from pyg_recsys.serving import (
    UnknownIdError,
    export_run,
    load_run,
    make_server,
    read_export,
)
from pyg_recsys.testing import write_s3rec, write_social_zip

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'
ML = SHARED / 'movielens-100k' / 'raw'
needs_ml = pytest.mark.skipif(
    not (ML / 'u.data').exists(),
    reason=f'staged MovieLens-100K not found at {ML}')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Tiny trained runs of three families, made once for the module."""
    base = tmp_path_factory.mktemp('runs')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PYG_RECSYS_DATA', str(SHARED))
        mp.setenv('PYG_RECSYS_ROOT', str(base / 'data'))
        raw = write_s3rec(base / 'beauty')
        assert main(['-q', 'train', '--model', 'gru4rec', '--dataset',
                     'beauty', '--raw-dir', str(raw), '--epochs', '2',
                     '--dim', '16', '--hidden', '16', '--no-progress',
                     '--batch-size', '32', '--out',
                     str(base / 'gru4rec')]) == 0
        soc = write_social_zip(base / 'soc', users=40, items=30)
        assert main(['-q', 'train', '--model', 'biasedmf', '--dataset',
                     'ciao', '--raw-dir', str(soc), '--epochs', '2',
                     '--dim', '8', '--no-progress', '--out',
                     str(base / 'bmf')]) == 0
        if (ML / 'u.data').exists():
            for name, seed in (('mf', '0'), ('mf-other', '1')):
                assert main(['-q', 'train', '--model', 'mf', '--dataset',
                             'movielens-100k', '--epochs', '2', '--dim',
                             '16', '--seed', seed, '--no-progress',
                             '--out', str(base / name)]) == 0
        yield base


# -- load_run and recommend ---------------------------------------------------

@needs_ml
def test_recommend_in_raw_ids_matches_the_model_and_skips_known(runs):
    run = load_run(runs / 'mf')
    assert run.task == 'ranking' and not run.model.training
    raw_user = run.ids['user'][5]
    recs = run.recommend(user=str(raw_user), k=10)
    assert recs == run.recommend(user=int(raw_user), k=10)
    _, items = run.model.recommend(torch.tensor([5]), 10,
                                   exclude=run.split.known())
    assert [i for i, _ in recs] == [run.ids['item'][i].item()
                                    for i in items[0].tolist()]
    known = {run.ids['item'][i].item()
             for i in run.split.known().row(5).tolist()}
    assert len(known) > 10 and not known & {i for i, _ in recs}
    scores = [s for _, s in recs]
    assert scores == sorted(scores, reverse=True)
    with_known = run.recommend(user=raw_user, k=10, exclude_known=False)
    assert {i for i, _ in with_known} & known
    many = run.recommend_many(users=[raw_user, run.ids['user'][0]], k=10)
    assert [i for i, _ in many[0]] == [i for i, _ in recs]
    assert [s for _, s in many[0]] == pytest.approx(scores, rel=1e-5)


@needs_ml
def test_load_run_refuses_a_split_of_another_graph(runs, tmp_path):
    moved = tmp_path / 'run'
    shutil.copytree(runs / 'mf', moved)
    # same users and items, another random split: the sizes agree, so
    # only the fingerprint tells them apart
    shutil.copy(runs / 'mf-other' / 'split.pt', moved / 'split.pt')
    with pytest.raises(DamagedFileError,
                       match=r'split.pt: its graph \(fingerprint \w+\) is '
                             r'not the one the weights were trained on'):
        load_run(moved)
    with pytest.raises(SystemExit, match='not the one the weights were '
                                         'trained on'):
        main(['recommend', '--run', str(moved), '--user', '1'])


@needs_ml
def test_load_run_errors(runs, tmp_path):
    with pytest.raises(ValueError, match='has no config.json and best.pt'):
        load_run(tmp_path)
    with pytest.raises(ValueError, match='has no config.json and best.pt'):
        load_run(tmp_path / 'missing')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='is not a folder'):
        load_run(tmp_path / 'file')
    run = load_run(runs / 'mf')
    with pytest.raises(UnknownIdError, match=r"user 'nobody' is not in the "
                                             r"run's data \(movielens-100k"):
        run.recommend(user='nobody')
    with pytest.raises(ValueError, match=r'k must be in \[1, 1682\], got 0'):
        run.recommend(user=1, k=0)
    with pytest.raises(ValueError, match='recommends for users, not '
                                         'sessions'):
        run.recommend(session=[1, 2])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            load_run(runs / 'mf', device='cuda')


def test_session_run_recommends_for_a_new_session(runs, capsys):
    run = load_run(runs / 'gru4rec')
    assert run.task == 'next-item'
    index = {str(v): n for n, v in enumerate(run.ids['item'].tolist())}
    session = ['3', '4', '5']
    recs = run.recommend(session=session, k=5)
    from pyg_recsys.data.session import SessionGraphs
    batch = SessionGraphs([[index[s] for s in session]], targets=[0],
                          num_items=run.num_items).collate([0])
    _, items = run.model.recommend(batch, 5, exclude='session')
    assert [str(i) for i, _ in recs] == [str(run.ids['item'][i])
                                         for i in items[0].tolist()]
    assert not {str(i) for i, _ in recs} & set(session)
    # a user of a sequence data set: their history is the session
    assert len(run.recommend(user='1', k=3)) == 3
    with pytest.raises(UnknownIdError, match=r"item '999' is not in the "
                                             r"run's data"):
        run.recommend(session=['3', '999'])
    with pytest.raises(ValueError, match='at least one item id'):
        run.recommend(session=[])
    assert main(['recommend', '--run', str(runs / 'gru4rec'), '--session',
                 '3 4 5', '--k', '3']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('top 3 for the session 3 4 5 (gru4rec')
    assert out[1].startswith('  1. item ') and len(out) == 4
    with pytest.raises(SystemExit, match="item '999' is not in"):
        main(['recommend', '--run', str(runs / 'gru4rec'), '--session',
              '3 999'])


def test_rating_run_ranks_unrated_items_by_predicted_rating(runs):
    run = load_run(runs / 'bmf')
    user = run.ids['user'][3]
    recs = run.recommend(user=user, k=5)
    with torch.no_grad():
        pred = run.model.predict(torch.full((run.num_items,), 3),
                                 torch.arange(run.num_items))
    known = set(run.split.known().row(3).tolist())
    pred[list(known)] = -float('inf')
    top = pred.topk(5).indices.tolist()
    assert [i for i, _ in recs] == [run.ids['item'][i].item() for i in top]


# -- export -------------------------------------------------------------------

@needs_ml
@pytest.mark.parametrize('fmt', ['parquet', 'npy'])
def test_export_writes_tables_with_raw_ids(runs, tmp_path, fmt, capsys):
    if fmt == 'parquet':
        pytest.importorskip('pyarrow')
    out = tmp_path / 'exp'
    assert main(['export', '--run', str(runs / 'mf'), '--out', str(out),
                 '--format', fmt]) == 0
    assert 'user (943 x 16), item (1682 x 16)' in capsys.readouterr().out
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['format'] == fmt and manifest['score'] == 'dot'
    tables = read_export(out)
    run = load_run(runs / 'mf')
    user, item = run.model.embeddings()
    for kind, ref in (('user', user), ('item', item)):
        ids, emb = tables[kind]
        assert ids == [str(i) for i in run.ids[kind].tolist()]
        assert emb.dtype == np.float32
        np.testing.assert_array_equal(emb, ref.detach().numpy())


def test_export_without_pyarrow_falls_back_and_errors(runs, tmp_path,
                                                      monkeypatch):
    from pyg_recsys import typing as pt
    monkeypatch.setattr(pt, 'WITH_PYARROW', False)
    run = load_run(runs / 'gru4rec')
    manifest = export_run(run, tmp_path / 'a')
    assert manifest['format'] == 'npy' and set(manifest['tables']) == {
        'item'}
    ids, emb = read_export(tmp_path / 'a')['item']
    assert len(ids) == emb.shape[0] == run.num_items
    with pytest.raises(ValueError, match='--format parquet needs pyarrow'):
        export_run(run, tmp_path / 'b', 'parquet')
    assert not (tmp_path / 'b').exists()
    with pytest.raises(ValueError, match='is inside the run folder'):
        export_run(run, runs / 'gru4rec' / 'exp')
    bmf = load_run(runs / 'bmf')
    with pytest.raises(ValueError, match='BiasedMF has no embedding tables '
                                         'to export'):
        export_run(bmf, tmp_path / 'c')
    assert not (tmp_path / 'c').exists()


# -- HTTP ---------------------------------------------------------------------

def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _send(url, body, method='POST'):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={'Content-Type':
                                          'application/json'})
    return _get(req)


@pytest.fixture
def server(runs):
    servers = []

    def start(name):
        run = load_run(runs / name)
        srv = make_server(run, '127.0.0.1', 0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        host, port = srv.server_address[:2]
        return run, f'http://{host}:{port}'

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_server_answers_sessions_and_bad_requests_get_4xx(server):
    run, url = server('gru4rec')
    status, body = _get(f'{url}/health')
    assert status == 200 and body['status'] == 'ok'
    assert body['model'] == 'gru4rec' and body['num_items'] == 25
    status, body = _send(f'{url}/recommend', {'session': [3, 4, 5],
                                               'k': 4})
    assert status == 200
    expect = run.recommend(session=[3, 4, 5], k=4)
    assert [(d['item'], d['score']) for d in body['items']] == [
        (int(i), s) for i, s in expect]
    bad = [
        (_send(f'{url}/recommend', b'{"session": [3, 4'), 400,
         'malformed JSON body'),
        (_send(f'{url}/recommend', b'\xff\xfe'), 400, 'malformed JSON'),
        (_send(f'{url}/recommend', [3, 4]), 400, 'must be a JSON object'),
        (_send(f'{url}/recommend', {'session': [3, 999]}), 404,
         "item '999' is not in"),
        (_send(f'{url}/recommend', {'session': []}), 400,
         'non-empty list of item ids'),
        (_send(f'{url}/recommend', {'session': [3], 'k': 0}), 400,
         r'k must be in \[1, 25\], got 0'),
        (_send(f'{url}/recommend', {'session': [3], 'k': 'x'}), 400,
         'k must be an integer'),
        (_send(f'{url}/recommend', {'session': [3], 'user': 1}), 400,
         'either "user" or "session"'),
        (_send(f'{url}/recommend', {'sesion': [3]}), 400,
         r"unknown fields \['sesion'\]"),
        (_get(f'{url}/recommend?user=1&k=abc'), 400, 'k must be an '
                                                     'integer'),
        (_get(f'{url}/recommend?user=1&k=1000000'), 400, r'k must be in '),
        (_get(f'{url}/recommend'), 400, r'needs \?user=ID'),
        (_get(f'{url}/nothing'), 404, 'no such path'),
        (_send(f'{url}/recommend', {'session': [3]}, 'PUT'), 405,
         'PUT is not served'),
    ]
    for (status, body), want, message in bad:
        assert status == want, body
        import re
        assert re.search(message, body['error']), body
    # still serving
    assert _send(f'{url}/recommend', {'session': [3, 4, 5],
                                      'k': 4})[0] == 200


@needs_ml
def test_server_answers_users_like_the_python_api(server):
    run, url = server('mf')
    status, body = _get(f'{url}/recommend?user=1&k=5')
    assert status == 200 and body['user'] == '1'
    assert [(d['item'], d['score']) for d in body['items']] == [
        (int(i), s) for i, s in run.recommend(user='1', k=5)]
    assert _get(f'{url}/recommend?user=nobody')[0] == 404
    assert _send(f'{url}/recommend', {'user': 1, 'k': 5})[1]['items'] == \
        body['items']


def test_serve_command_listens_and_stops(runs):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'pyg_recsys', 'serve', '--run',
         str(runs / 'gru4rec'), '--port', '0'], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith('serving gru4rec on beauty at http://'), (
            line + proc.stderr.read())
        url = line.split(' at ')[1].split(' ')[0]
        assert _get(f'{url}/health')[0] == 200
        assert _send(f'{url}/recommend', {'session': [3], 'k': 2})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with pytest.raises(SystemExit, match=r'--port must be in \[0, 65535\]'):
        main(['serve', '--run', str(runs / 'gru4rec'), '--port', '70000'])
    with pytest.raises(SystemExit, match='--threads must be >= 1, got 0'):
        main(['serve', '--run', str(runs / 'gru4rec'), '--threads', '0'])


def _raw(url, method, path, body=None, headers=(), chunked=False):
    """One request on a fresh http.client connection; (status, json,
    whether the server closes the connection)."""
    import http.client
    host, port = url.removeprefix('http://').split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    if chunked:
        conn.request(method, path, body=iter([body]), encode_chunked=True)
    else:
        conn.putrequest(method, path)
        for key, value in headers:
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read()), resp.will_close
    conn.close()
    return out


def test_server_bodies_lengths_and_ids(server):
    run, url = server('gru4rec')
    # no Content-Length, chunked, negative, too large: 4xx and the
    # connection closes (the unread body is never taken for a request)
    status, body, closes = _raw(url, 'POST', '/recommend')
    assert (status, closes) == (411, True)
    assert 'Content-Length' in body['error']
    status, body, closes = _raw(url, 'POST', '/recommend',
                                b'{"session": [3]}', chunked=True)
    assert (status, closes) == (411, True)
    status, body, closes = _raw(url, 'POST', '/recommend', b'',
                                [('Content-Length', '-5')])
    assert (status, closes) == (400, True)
    assert 'Content-Length must be a number of bytes' in body['error']
    status, body, closes = _raw(url, 'POST', '/recommend', b'{}',
                                [('Content-Length', str(1 << 21))])
    assert (status, closes) == (413, True)
    status, _, closes = _raw(url, 'POST', '/elsewhere', b'{"a": 1}',
                             [('Content-Length', '8')])
    assert (status, closes) == (404, True)
    # a keep-alive connection goes on after a good request and a 4xx
    import http.client
    host, port = url.removeprefix('http://').split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    for path, want in (('/recommend?user=1&k=2', 200),
                       ('/recommend?user=1&k=%C2%B2', 400),
                       ('/recommend?user=1&k=' + '9' * 5000, 400),
                       ('/recommend?user=1&user=2', 400),
                       ('/health', 200)):
        conn.request('GET', path)
        resp = conn.getresponse()
        payload = json.loads(resp.read())
        assert resp.status == want, payload
    conn.close()
    assert _get(f'{url}/recommend?user=1&user=2')[1]['error'] == \
        'give user once'
    for session in ([1.5], [None], [True], [[3]]):
        status, body = _send(f'{url}/recommend', {'session': session})
        assert status == 400 and 'strings or integers' in body['error']
    status, body = _send(f'{url}/recommend', {'user': 1.0})
    assert status == 400 and 'a string or an integer' in body['error']
    # k defaults to 10 (here 10 of 25 items)
    assert len(_send(f'{url}/recommend', {'session': [3]})[1]['items']) \
        == 10


def test_session_exclusion_covers_items_beyond_max_len(runs):
    run = load_run(runs / 'gru4rec')
    session = [str(i) for i in range(1, 21)]
    run.args.max_len = 3  # the model reads the last 3 items only
    recs = run.recommend(session=session, k=5)
    assert len(recs) == 5
    assert not {str(i) for i, _ in recs} & set(session)
    with pytest.raises(ValueError, match='give either users or sessions'):
        run.recommend_many(users=['1'], sessions=[['3']])
    with pytest.raises(ValueError, match="a session is a list of item "
                                         "ids, got 'abc'"):
        run.recommend(session='abc')
    with pytest.raises(UnknownIdError, match='leave out the items the run '
                                             'never saw'):
        run.recommend(session=['3', 'x9'])


@needs_ml
def test_integer_ids_match_in_any_spelling_and_load_errors(runs, tmp_path):
    run = load_run(runs / 'mf')
    assert run.index_of('user', '007') == run.index_of('user', 7) == \
        run.index_of('user', '+7')
    assert 'model' not in repr(run) and 'ranking' in repr(run)
    with pytest.raises(ValueError, match="device 'tpu:x'.*use cpu, cuda"):
        load_run(runs / 'mf', device='tpu:x')
    # the weights of another model size do not fit the rebuilt model
    moved = tmp_path / 'run'
    shutil.copytree(runs / 'mf', moved)
    state = torch.load(moved / 'best.pt', weights_only=True)
    state['model'] = {k: v[:, :8] for k, v in state['model'].items()}
    torch.save(state, moved / 'best.pt')
    with pytest.raises(DamagedFileError, match='best.pt: the weights do not '
                                               'fit the mf built'):
        load_run(moved)
    with pytest.raises(ValueError, match='unknown export format'):
        export_run(run, tmp_path / 'x', 'csv')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='is a file, not a folder'):
        export_run(run, tmp_path / 'file')


def test_cli_session_and_port_errors(runs):
    with pytest.raises(SystemExit, match='--session needs at least one '
                                         'item id'):
        main(['recommend', '--run', str(runs / 'gru4rec'), '--session',
              ' , '])
    import socket
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match=f'cannot listen on '
                                             f'127.0.0.1:{port}'):
            main(['serve', '--run', str(runs / 'gru4rec'), '--port',
                  str(port)])


def test_export_writes_entity_tables_of_a_knowledge_graph_model(tmp_path,
                                                                monkeypatch):
    raw = SHARED / 'lastfm-kgcn' / 'raw'
    if not (raw / 'kg.txt').exists():
        pytest.skip(f'staged Last.FM (KGCN) not found at {raw}')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(SHARED))
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    out = tmp_path / 'kg'
    assert main(['-q', 'train', '--model', 'lightgcn', '--dataset',
                 'lastfm-kg', '--side-relations', '--epochs', '1', '--dim',
                 '8', '--layers', '1', '--no-progress', '--out',
                 str(out)]) == 0
    run = load_run(out)
    manifest = export_run(run, tmp_path / 'exp', 'npy')
    assert set(manifest['tables']) == {'user', 'item', 'entity'}
    ids, emb = read_export(tmp_path / 'exp')['entity']
    assert ids == [str(i) for i in run.ids['entity'].tolist()]
    full = run.model().detach()
    np.testing.assert_allclose(emb, full[-len(ids):].numpy())


@needs_ml
def test_more_load_and_id_errors(runs, tmp_path):
    run = load_run(runs / 'mf')
    with pytest.raises(ValueError, match='a ranking run has no entity ids'):
        run.index_of('entity', 'e1')
    with pytest.raises(ValueError, match="k must be an integer, got '3'"):
        run.recommend(user=1, k='3')

    def moved(name, edit):
        folder = tmp_path / name
        shutil.copytree(runs / name.split('-')[0], folder)
        cfg = json.loads((folder / 'config.json').read_text())
        edit(cfg)
        (folder / 'config.json').write_text(json.dumps(cfg))
        return folder

    bad = moved('mf-a', lambda c: c.update(model='nothing'))
    with pytest.raises(DamagedFileError, match="names no model and data "
                                               "set of the table"):
        load_run(bad)

    def legacy(c):  # a run from before fingerprints, with another split
        del c['graph_fingerprint']
        c['split']['num_train'] += 1
    with pytest.raises(DamagedFileError, match='num_train .* differs from '
                                               "the run's config"):
        load_run(moved('mf-b', legacy))
    other = moved('gru4rec-c', lambda c: c['source'].update(
        cache_key='0' * 16))
    with pytest.raises(DamagedFileError, match='is not the one the run was '
                                               'trained on'):
        load_run(other)


def test_get_with_unknown_or_malformed_parameters(server):
    _, url = server('gru4rec')
    status, body = _get(f'{url}/recommend?user=1&kk=3')
    assert status == 400 and "unknown parameters ['kk']" in body['error']
    status, body = _get(f'{url}/recommend?user=1&&&=')
    assert status == 400 and 'malformed query' in body['error']
