"""End-to-end runs of the ``pyg-recsys`` command on MovieLens-100K."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyg_recsys.cli import main
from pyg_recsys.cli.table import (
    CLICK,
    KG,
    MODELS,
    NEXT_ITEM,
    RANKING,
    RATING,
)
from pyg_recsys.testing import write_s3rec

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'
ML = SHARED / 'movielens-100k' / 'raw'
needs_ml = pytest.mark.skipif(
    not (ML / 'u.data').exists(),
    reason=f'staged MovieLens-100K not found at {ML}')


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('PYG_RECSYS_DATA', str(SHARED))
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    return tmp_path


def _train(out, *extra):
    return main(['train', '--model', 'mf', '--dataset', 'movielens-100k',
                 '--epochs', '3', '--lr', '0.01', '--no-progress',
                 '--out', str(out), *extra])


@needs_ml
def test_train_writes_the_run_files(env, capsys):
    out = env / 'run'
    assert _train(out) == 0
    files = {p.name for p in out.iterdir()}
    assert {'config.json', 'best.pt', 'metrics.json', 'last.pt',
            'split.pt'} <= files
    m = json.loads((out / 'metrics.json').read_text())
    assert [e['epoch'] for e in m['epochs']] == [1, 2, 3]
    for e in m['epochs']:
        assert e['loss'] > 0 and e['train_seconds'] > 0
        assert e['eval_seconds'] > 0
        assert set(e['val']) >= {f'{n}@{k}' for n in (
            'recall', 'ndcg', 'precision', 'hit', 'mrr', 'map')
            for k in (10, 20)}
    assert m['best_epoch'] in (1, 2, 3)
    assert 0 < m['test']['recall@20'] < 1
    assert m['split']['kind'] == 'random'
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['model'] == 'mf' and cfg['split']['num_users'] == 943
    text = capsys.readouterr().out
    assert 'recall@20' in text and 'best epoch' in text
    pytest.importorskip('matplotlib')
    assert (out / 'curve.png').stat().st_size > 1000


@needs_ml
def test_recommend_prints_unseen_items_with_titles(env, capsys):
    out = env / 'run'
    _train(out)
    capsys.readouterr()
    assert main(['recommend', '--run', str(out), '--user', '1',
                 '--k', '5']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('top 5 for user 1')
    assert len(lines) == 6
    # user 1's rated movies (original ids) from u.data never come back
    seen = {int(line.split('\t')[1]) for line in
            (ML / 'u.data').read_text().splitlines()
            if line.split('\t')[0] == '1'}
    got = [int(line.split('item ')[1].split()[0]) for line in lines[1:]]
    assert not set(got) & seen
    assert '(19' in lines[1]  # MovieLens titles end with the year


@needs_ml
def test_cli_errors(env):
    out = env / 'run'
    _train(out)
    with pytest.raises(SystemExit, match='already holds a run'):
        _train(out)
    with pytest.raises(SystemExit, match='arguments differ'):
        _train(out, '--resume', '--dim', '8')
    with pytest.raises(SystemExit, match="unknown --monitor 'auc@3'"):
        _train(env / 'x', '--monitor', 'auc@3')
    with pytest.raises(SystemExit, match='has no config.json'):
        main(['recommend', '--run', str(env / 'nothing'), '--user', '1'])
    with pytest.raises(SystemExit, match="user '99999' is not in"):
        main(['recommend', '--run', str(out), '--user', '99999'])


@needs_ml
@pytest.mark.parametrize('model', ['ngcf', 'sage', 'gat', 'simgcl'])
def test_every_model_trains_and_recommends(env, model, capsys):
    out = env / model
    assert main(['-q', 'train', '--model', model, '--dataset',
                 'movielens-100k', '--epochs', '1', '--lr', '0.01',
                 '--dim', '16', '--layers', '2', '--no-progress', '--out',
                 str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert m['best_epoch'] == 1 and 0 < m['test']['recall@20'] < 1
    capsys.readouterr()
    assert main(['recommend', '--run', str(out), '--user', '1',
                 '--k', '3']) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


@needs_ml
@pytest.mark.parametrize('options', [
    ['--neg', 'popularity', '--num-neg', '2'],
    ['--neg', 'shared', '--num-neg', '64'],
    ['--neg', 'inbatch', '--pair-loss', 'softmax', '--temperature', '0.2'],
    ['--neg', 'ppr', '--ppr-walks', '64'],
    ['--neg', 'curriculum', '--ppr-walks', '64', '--max-hard', '2'],
], ids=lambda o: o[1])
def test_negative_samplers_from_the_cli(env, options):
    out = env / options[1]
    _train(out, '--epochs', '2', *options)
    m = json.loads((out / 'metrics.json').read_text())
    # MF after 2 epochs at lr 0.01 is far above random (recall@20 ~0.01)
    assert m['test']['recall@20'] > 0.05
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['neg'] == options[1]


@needs_ml
def test_sage_minibatch_from_the_cli(env):
    out = env / 'mb'
    assert main(['-q', 'train', '--model', 'sage', '--dataset',
                 'movielens-100k', '--epochs', '1', '--lr', '0.01',
                 '--dim', '16', '--layers', '2', '--minibatch',
                 '--neighbors', '5', '3', '--batch-size', '4096',
                 '--no-progress', '--out', str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert 0 < m['test']['recall@20'] < 1


@needs_ml
def test_pinsage_from_the_cli_with_workers_curriculum_and_resume(env,
                                                                 capsys):
    common = ['-q', 'train', '--model', 'pinsage', '--dataset',
              'movielens-100k', '--lr', '0.01', '--dim', '16',
              '--neighbors', '5', '--walks', '20', '--neg', 'curriculum',
              '--ppr-walks', '50', '--num-neg', '64', '--batch-size',
              '2048', '--no-progress', '--deterministic']
    out = env / 'pinsage'
    assert main([*common, '--epochs', '2', '--workers', '1', '--out',
                 str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    # well above random (recall@20 ~0.01) after two epochs
    assert m['test']['recall@20'] > 0.05
    cfg = json.loads((out / 'config.json').read_text())
    assert (cfg['layers'], cfg['neighbors'], cfg['workers']) == (2, [5], 1)
    # the batches do not depend on the workers (and with --deterministic
    # neither does the CPU's backward pass): 0 workers give the same run
    same = env / 'pinsage0'
    assert main([*common, '--epochs', '2', '--out', str(same)]) == 0
    m0 = json.loads((same / 'metrics.json').read_text())
    assert m0['test'] == m['test']
    assert main([*common, '--epochs', '3', '--workers', '1', '--out',
                 str(out), '--resume']) == 0
    epochs = json.loads((out / 'metrics.json').read_text())['epochs']
    assert [e['epoch'] for e in epochs] == [1, 2, 3]
    capsys.readouterr()
    assert main(['recommend', '--run', str(out), '--user', '1',
                 '--k', '3']) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    for extra, message in (
            (['--neg', 'ppr'], '--neg ppr does not apply to pinsage; use '
             'uniform or curriculum'),
            (['--neighbors', '5', '5'], '--neighbors takes one count for '
             'pinsage'),
            (['--reg', '0.1'], '--reg does not apply to pinsage'),
            (['--restart-prob', '1'], r'--restart-prob must lie in \(0, 1\)'),
            (['--workers', '-1'], '--workers must be >= 0')):
        with pytest.raises(SystemExit, match=message):
            main(['train', '--model', 'pinsage', '--dataset',
                  'movielens-100k', '--out', str(env / 'bad'), *extra])
        assert not (env / 'bad').exists()
    with pytest.raises(SystemExit, match=r'--workers does not apply to mf '
                       r'\(it is an option of pinsage\)'):
        _train(env / 'w', '--workers', '1')


@needs_ml
def test_loader_option_errors(env):
    with pytest.raises(SystemExit, match='--neg inbatch takes the other'):
        _train(env / 'x', '--neg', 'inbatch', '--num-neg', '4')
    with pytest.raises(SystemExit, match=r'--minibatch does not apply to mf '
                       r'\(it is an option of sage, gat\)'):
        _train(env / 'y', '--minibatch')
    with pytest.raises(SystemExit, match='--neighbors needs one count'):
        main(['train', '--model', 'sage', '--dataset', 'movielens-100k',
              '--layers', '2', '--minibatch', '--neighbors', '5',
              '--out', str(env / 'z')])


@needs_ml
def test_resume_accepts_runs_made_before_new_options(env):
    out = env / 'old'
    _train(out)
    cfg = json.loads((out / 'config.json').read_text())
    for key in ('neg', 'num_neg', 'cl_weight', 'heads'):  # newer options
        del cfg[key]
    (out / 'config.json').write_text(json.dumps(cfg))
    assert _train(out, '--resume') == 0
    with pytest.raises(SystemExit, match=r"'neg': \('uniform', 'shared'\)"):
        _train(out, '--resume', '--neg', 'shared')


@needs_ml
def test_datasets_lists_every_name(env, capsys):
    assert main(['datasets']) == 0
    text = capsys.readouterr().out
    for name in ('movielens-100k', 'gowalla', 'yelp2018', 'amazon-book'):
        assert name in text
    assert str(ML) in text


@needs_ml
def test_resume_after_sigkill_matches_uninterrupted_run(env):
    cmd = [sys.executable, '-m', 'pyg_recsys.cli', 'train', '--model',
           'lightgcn', '--dataset', 'movielens-100k', '--epochs', '30',
           '--layers', '2', '--lr', '0.01', '--no-progress']
    # One thread: multi-threaded sparse products may sum in a different
    # order from run to run (seen once in CI as a last-digit flip of a
    # validation metric); this test is about the resume logic.
    run_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    full, cut = env / 'full', env / 'cut'
    subprocess.run(cmd + ['--out', str(full)], check=True, env=run_env,
                   capture_output=True, timeout=600)
    proc = subprocess.Popen(cmd + ['--out', str(cut)], env=run_env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        last = cut / 'last.pt'
        if last.exists() and torch.load(last, weights_only=True)[
                'epoch'] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(cut / 'last.pt', weights_only=True)['epoch']
    assert 3 <= killed_at < 30, 'the run ended before it could be killed'
    subprocess.run(cmd + ['--out', str(cut), '--resume'], check=True,
                   env=run_env, capture_output=True, timeout=600)
    a = json.loads((full / 'metrics.json').read_text())
    b = json.loads((cut / 'metrics.json').read_text())
    assert a['test'] == b['test']
    assert a['best_epoch'] == b['best_epoch']
    assert [e['val'] for e in a['epochs']] == [e['val'] for e in b['epochs']]


def test_simgcl_keeps_its_infonce_temperature():
    # --temperature (pair-loss softmax) must not overwrite SimGCL's tau
    from pyg_recsys.cli import build_model, parse_train_args
    from pyg_recsys.testing import clustered_split
    args = parse_train_args(
        ['--model', 'simgcl', '--dataset', 'movielens-100k',
         '--out', '-', '--cl-temperature', '0.3', '--temperature', '2'])
    model = build_model(args, clustered_split())
    assert model.cl_temperature == 0.3 and model.temperature == 2.0


# Session / sequence models ##################################################


def _session(out, model, raw, *extra):
    hidden = ['--hidden', '16'] if model == 'gru4rec' else []
    return main(['-q', 'train', '--model', model, '--dataset', 'beauty',
                 '--raw-dir', str(raw), '--epochs', '3', '--lr', '0.01',
                 '--dim', '16', *hidden, '--no-progress',
                 '--batch-size', '32', '--out', str(out), *extra])


@pytest.mark.parametrize('model', ['srgnn', 'tagnn', 'gru4rec', 'sasrec'])
def test_session_models_train_from_the_cli(env, model, capsys):
    raw = write_s3rec(env / 'raw')
    out = env / model
    assert _session(out, model, raw, '--sampled-negatives', '10',
                    '--ks', '5', '10', '--monitor', 'hit@5') == 0
    m = json.loads((out / 'metrics.json').read_text())
    mode = 'sequence' if model in ('gru4rec', 'sasrec') else 'prefix'
    assert m['task']['mode'] == mode and m['task']['num_test'] == 120
    assert m['task']['max_len'] == 50
    # 25 items: a random ranking has hit@5 = 0.2; the successor map is
    # learnt to well above it in 3 epochs
    assert m['test']['hit@5'] > 0.4
    assert 0 < m['test']['sampled10_hit@5'] <= 1
    assert 'sampled' in m['protocol']['sampled']
    text = capsys.readouterr().out
    assert 'sample next-item recommendations' in text
    assert 'test, 10 sampled negatives' in text
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['batch_size'] == 32 and cfg['bucket'] == 20
    # a finished session run resumes to more epochs
    assert _session(out, model, raw, '--sampled-negatives', '10', '--ks',
                    '5', '10', '--monitor', 'hit@5', '--epochs', '4',
                    '--resume') == 0
    assert len(json.loads((out / 'metrics.json').read_text())[
        'epochs']) == 4


def test_session_cli_on_srgnn_pickles(env):
    import pickle
    raw = env / 'pickles'
    raw.mkdir()
    from pyg_recsys.testing import synthetic_sessions
    train, test = synthetic_sessions(20, 200, seed=1)

    def examples(seqs):
        xs, ys = [], []
        for s in seqs:
            for t in range(1, len(s)):
                xs.append([i + 1 for i in s[:t]])
                ys.append(s[t] + 1)
        return xs, ys
    for name, seqs in (('train.txt', train), ('test.txt', test)):
        with open(raw / name, 'wb') as f:
            pickle.dump(examples(seqs), f)
    out = env / 'yoo'
    assert main(['-q', 'train', '--model', 'gru4rec', '--dataset',
                 'yoochoose1_64', '--raw-dir', str(raw), '--epochs', '2',
                 '--dim', '16', '--lr', '0.01', '--no-progress', '--out',
                 str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert m['task']['mode'] == 'prefix'  # pickles are already augmented
    assert m['task']['validation'].startswith('random 0.1')
    assert m['test']['hit@20'] > 0.5
    with pytest.raises(SystemExit, match='already augmented'):
        main(['train', '--model', 'sasrec', '--dataset', 'yoochoose1_64',
              '--raw-dir', str(raw), '--train-mode', 'sequence', '--out',
              str(env / 'x')])


def test_session_cli_errors(env):
    raw = write_s3rec(env / 'raw')
    with pytest.raises(SystemExit, match='srgnn is a next-item model'):
        main(['train', '--model', 'srgnn', '--dataset', 'movielens-100k',
              '--out', str(env / 'a')])
    with pytest.raises(SystemExit, match=r'mf is a ranking model but beauty '
                       r'is a next-item data set; .* models for beauty: '
                       r'srgnn, tagnn, gru4rec, sasrec'):
        main(['train', '--model', 'mf', '--dataset', 'beauty',
              '--raw-dir', str(raw), '--out', str(env / 'b')])
    with pytest.raises(SystemExit, match=r"TAGNN: loss 'bce' is not "
                       r'supported'):
        _session(env / 'c', 'tagnn', raw, '--loss', 'bce')
    with pytest.raises(SystemExit, match='srgnn is not causal'):
        _session(env / 'd', 'srgnn', raw, '--train-mode', 'sequence')
    _session(env / 'e', 'gru4rec', raw, '--epochs', '1')
    # a user of a sequence data set: their history is the session
    assert main(['recommend', '--run', str(env / 'e'), '--user', '1']) == 0
    with pytest.raises(SystemExit, match="user '0' is not in the run's "
                                         "data"):
        main(['recommend', '--run', str(env / 'e'), '--user', '0'])


def test_sasrec_post_norm_from_the_cli(env):
    from pyg_recsys.nn.models import SASRec
    raw = write_s3rec(env / 'raw')
    out = env / 'post'
    # --max-len 0 (no limit) still cuts SASRec's data at its 50 positions
    assert _session(out, 'sasrec', raw, '--post-norm', '--epochs', '1',
                    '--max-len', '0') == 0
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['post_norm'] is True and cfg['task']['max_len'] == 50
    state = torch.load(out / 'best.pt', weights_only=True)['model']
    model = SASRec(25, embedding_dim=16, norm_first=False)
    model.load_state_dict(state)
    assert 'norm_first=False' in repr(model)


# Options checked before anything is written; a safe run folder ##############


@needs_ml
@pytest.mark.parametrize('extra,message', [
    (['--epochs', '0'], r'--epochs must be >= 1, got 0'),
    (['--monitor', 'recall@50'], r'--monitor recall@50 needs the cut-off 50 '
     r'among --ks \[10, 20\]'),
    (['--monitor', 'auc@3'], r"unknown --monitor 'auc@3'"),
    (['--ks', '10', '5000', '--monitor', 'recall@10'],
     r'--ks 5000 is larger than the 1682 items of movielens-100k'),
    (['--heads', '4'], r'--heads does not apply to mf \(it is an option of '
     r'gat, sasrec\)'),
    (['--max-len', '20'], r'--max-len does not apply to mf'),
    (['--split-ratios', '0.5', '0.5', '0.5'], r'--split-ratios must be'),
    (['--lr', '0'], r'--lr must be > 0'),
    (['--split', 'fixed'], r"MovieLens100K.split: unknown kind 'fixed'"),
])
def test_bad_options_fail_before_writing(env, extra, message):
    out = env / 'never'
    with pytest.raises(SystemExit, match='pyg-recsys train: ' + message):
        _train(out, *extra)
    assert not out.exists()


@needs_ml
def test_user_errors_are_one_line_and_debug_shows_the_traceback(env):
    cmd = [sys.executable, '-m', 'pyg_recsys.cli', 'train', '--model', 'mf',
           '--dataset', 'movielens-100k', '--epochs', '0', '--out',
           str(env / 'x')]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(
        os.environ), timeout=300)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        'pyg-recsys train: --epochs must be >= 1, got 0']
    res = subprocess.run(cmd[:3] + ['--debug'] + cmd[3:],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and 'Traceback' in res.stderr


@needs_ml
def test_a_second_writer_of_a_run_folder_fails_at_once(env):
    from pyg_recsys.io import folder_lock
    out = env / 'run'
    with folder_lock(out, what='run folder'):  # another trainer holds it
        with pytest.raises(SystemExit, match=r'another process \(pid \d+\) '
                           r'is using this run folder'):
            _train(out)
    assert not (out / 'last.pt').exists()
    assert _train(out) == 0  # free again


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@needs_ml
def test_crafted_checkpoint_does_not_run_code(env):
    out = env / 'run'
    _train(out)
    marker = env / 'pwned'
    torch.save({'model': _Exploit(marker)}, out / 'last.pt')
    with pytest.raises(SystemExit, match=r'last.pt: the checkpoint is '
                       r'damaged or not one this package wrote .*delete it'):
        _train(out, '--resume', '--epochs', '4')
    assert not marker.exists()


@needs_ml
def test_damaged_config_names_the_file(env):
    out = env / 'run'
    _train(out)
    (out / 'config.json').write_text('{"model": "mf", ')
    with pytest.raises(SystemExit, match=r"config.json: the run's config is "
                       r'damaged .*restore it'):
        _train(out, '--resume')
    with pytest.raises(SystemExit, match=r"config.json: the run's config is "
                       r'damaged'):
        main(['recommend', '--run', str(out), '--user', '1'])


@needs_ml
def test_moved_run_resumes_and_records_absolute_paths(env, capsys):
    first = env / 'first'
    _train(first)
    cfg = json.loads((first / 'config.json').read_text())
    assert cfg['out'] == str(first.resolve())
    assert os.path.isabs(cfg['source']['raw_dir'])
    assert cfg['source']['cache_key']
    moved = env / 'elsewhere' / 'run'
    moved.parent.mkdir()
    os.rename(first, moved)
    (moved / '.tmp-0123-last.pt').write_bytes(b'killed mid-write')
    assert _train(moved, '--resume', '--epochs', '4') == 0
    m = json.loads((moved / 'metrics.json').read_text())
    assert [e['epoch'] for e in m['epochs']] == [1, 2, 3, 4]
    assert not list(moved.glob('.tmp-*'))  # the orphan was removed
    capsys.readouterr()
    assert main(['recommend', '--run', str(moved), '--user', '1',
                 '--k', '3']) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


@needs_ml
def test_resume_on_other_data_is_refused(env, tmp_path):
    out = env / 'run'
    _train(out)
    other = tmp_path / 'other_raw'
    other.mkdir()
    for name in ('u.data', 'u.item', 'u.user'):
        text = (ML / name).read_bytes()
        if name == 'u.data':
            text = b'\n'.join(text.splitlines()[:-10]) + b'\n'
        (other / name).write_bytes(text)
    with pytest.raises(SystemExit, match=r'--resume: the data differ from '
                       r"the run's"):
        _train(out, '--resume', '--epochs', '4', '--raw-dir', str(other))
    # a fresh run on those files is built from them, not from a cache
    assert _train(env / 'fresh', '--raw-dir', str(other)) == 0
    cfg = json.loads((env / 'fresh' / 'config.json').read_text())
    assert cfg['split']['num_train'] + cfg['split']['num_val'] + \
        cfg['split']['num_test'] == 100000 - 10
    assert cfg['source']['raw_dir'] == str(other)


@needs_ml
def test_recommend_on_a_run_whose_split_has_no_ids(env, capsys):
    """Runs made before splits carried the original ids still work."""
    out = env / 'run'
    _train(out)
    state = torch.load(out / 'split.pt', weights_only=True)
    del state['ids']
    torch.save(state, out / 'split.pt')
    capsys.readouterr()
    assert main(['recommend', '--run', str(out), '--user', '1',
                 '--k', '3']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('top 3 for user 1') and len(lines) == 4


@needs_ml
def test_split_options_are_ranking_options_and_checked(env, tmp_path):
    with pytest.raises(SystemExit, match=r"--split-ratios applies to --split "
                       r"random or temporal, not to the 'leave_one_out' "
                       r'split of movielens-100k'):
        _train(env / 'a', '--split', 'leave_one_out', '--split-ratios',
               '0.6', '0.2', '0.2')
    assert not (env / 'a').exists()
    assert _train(env / 'b', '--split-ratios', '0.6', '0.2', '0.2') == 0
    cfg = json.loads((env / 'b' / 'config.json').read_text())
    assert cfg['split']['ratios'] == [0.6, 0.2, 0.2]
    raw = write_s3rec(tmp_path / 'raw')
    with pytest.raises(SystemExit, match='--split does not apply to sasrec'):
        _session(env / 'c', 'sasrec', raw, '--split', 'random')


@needs_ml
def test_split_file_trains_on_the_parts_written_there(env, tmp_path):
    from pyg_recsys.datasets import MovieLens100K
    split = MovieLens100K().split(kind='random', seed=7)
    users, items = split.ids['user'], split.ids['item']
    path = tmp_path / 'split.tsv'
    with open(path, 'w') as f:
        f.write('user\titem\tpart\n')
        for name in ('train', 'val', 'test'):
            for u, i in split.part(name).t().tolist():
                f.write(f'{users[u]}\t{items[i]}\t{name}\n')
    assert _train(env / 'f', '--split-file', str(path)) == 0
    m = json.loads((env / 'f' / 'metrics.json').read_text())
    assert m['split']['kind'] == 'file'
    assert [m['split'][f'num_{p}'] for p in ('train', 'val', 'test')] == [
        split.part(p).size(1) for p in ('train', 'val', 'test')]
    for extra, message in (
            (['--split', 'random'], r'--split-file gives the split; drop '
             r'--split random'),
            (['--split-ratios', '0.6', '0.2', '0.2'], r'--split-ratios '
             r"applies to --split random or temporal, not to the 'file'")):
        with pytest.raises(SystemExit, match=message):
            _train(env / 'g', '--split-file', str(path), *extra)
    with pytest.raises(SystemExit, match=r'--split file needs --split-file'):
        _train(env / 'g', '--split', 'file')
    path.write_text('user\titem\tpart\n1\t1\ttrain\n')
    with pytest.raises(SystemExit, match=r'interactions of the data set are '
                       r'not in the file'):
        _train(env / 'g', '--split-file', str(path))
    assert not (env / 'g').exists()


LASTFM = SHARED / 'lastfm-kgcn' / 'raw'
needs_lastfm = pytest.mark.skipif(
    not (LASTFM / 'kg.txt').exists(),
    reason=f'staged Last.FM (KGCN) not found at {LASTFM}')


@needs_lastfm
def test_kgcn_click_through_and_ranking(env, capsys):
    out = env / 'kgcn'
    assert main(['-q', 'train', '--model', 'kgcn', '--dataset',
                 'lastfm-kg', '--epochs', '2', '--dim', '8',
                 '--kg-neighbors', '4', '--batch-size', '1024',
                 '--no-progress', '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'click-through' in text and 'full ranking' in text
    m = json.loads((out / 'metrics.json').read_text())
    assert {'auc', 'f1', 'auc_batches', 'f1_batches',
            'recall@20'} <= set(m['test'])
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['monitor'] == 'auc'
    assert 'mini-batches' in cfg['protocol']['click_through']
    assert main(['recommend', '--run', str(out), '--user', '2', '--k',
                 '3']) == 0
    # RecBole's protocol: random split, positives and sampled negatives,
    # full ranking only
    out2 = env / 'kgcn-random'
    assert main(['-q', 'train', '--model', 'kgcn', '--dataset',
                 'lastfm-kg', '--split', 'random', '--epochs', '1', '--dim',
                 '8', '--batch-size', '4096', '--no-progress', '--out',
                 str(out2)]) == 0
    m2 = json.loads((out2 / 'metrics.json').read_text())
    assert 'auc' not in m2['test'] and 'recall@20' in m2['test']
    with pytest.raises(SystemExit, match='--monitor auc needs labelled '
                       'click-through rows'):
        main(['train', '--model', 'kgcn', '--dataset', 'lastfm-kg',
              '--split', 'random', '--monitor', 'auc', '--out',
              str(env / 'x')])
    with pytest.raises(SystemExit, match='kgcn is a click-through model '
                       'but movielens-100k is a ranking data set'):
        main(['train', '--model', 'kgcn', '--dataset', 'movielens-100k',
              '--out', str(env / 'x')])
    assert not (env / 'x').exists()


@needs_lastfm
def test_kgat_alternates_objectives_and_recommends(env):
    out = env / 'kgat'
    assert main(['-q', 'train', '--model', 'kgat', '--dataset',
                 'lastfm-kg', '--split', 'random', '--epochs', '2',
                 '--dim', '16', '--kgat-dims', '16', '8',
                 '--kg-batch-size', '8192', '--batch-size', '4096',
                 '--no-progress', '--out', str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert set(m['epochs'][0]['losses']) == {'cf', 'kg'}
    assert 0 < m['test']['recall@20'] < 1
    assert main(['recommend', '--run', str(out), '--user', '2', '--k',
                 '3']) == 0
    # resumed: the attention and the weights come back
    assert main(['-q', 'train', '--model', 'kgat', '--dataset',
                 'lastfm-kg', '--split', 'random', '--epochs', '3',
                 '--dim', '16', '--kgat-dims', '16', '8',
                 '--kg-batch-size', '8192', '--batch-size', '4096',
                 '--no-progress', '--out', str(out), '--resume']) == 0
    with pytest.raises(SystemExit, match='--kgat-dims does not apply to '
                       'lightgcn'):
        main(['train', '--model', 'lightgcn', '--dataset', 'lastfm-kg',
              '--kgat-dims', '8', '--out', str(env / 'x')])


@needs_lastfm
def test_twhin_trains_on_every_relation(env):
    out = env / 'twhin'
    assert main(['-q', 'train', '--model', 'twhin', '--dataset',
                 'lastfm-kg', '--split', 'random', '--epochs', '2',
                 '--dim', '16', '--batch-size', '4096', '--lr', '5e-3',
                 '--no-progress', '--out', str(out)]) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert 0 < m['test']['recall@20'] < 1
    assert main(['recommend', '--run', str(out), '--user', '2', '--k',
                 '3']) == 0
    with pytest.raises(SystemExit, match='--num-neg does not apply to '
                       'twhin'):
        main(['train', '--model', 'twhin', '--dataset', 'lastfm-kg',
              '--num-neg', '4', '--out', str(env / 'x')])


def test_side_relations_reach_graph_models(env):
    raw = SHARED / 'lastfm-kgcn' / 'raw'
    if not (raw / 'kg.txt').exists():
        pytest.skip(f'staged Last.FM (KGCN) not found at {raw}')
    out = env / 'kg'
    assert main(['-q', 'train', '--model', 'lightgcn', '--dataset',
                 'lastfm-kg', '--side-relations', '--epochs', '1', '--dim',
                 '16', '--layers', '2', '--no-progress', '--out',
                 str(out)]) == 0
    from pyg_recsys.cli.serve import load_run_parts
    _, split, model = load_run_parts(out)
    assert model.embedding.node_types == ['user', 'item', 'entity']
    assert model.adj.nnz > 2 * split.train.size(1)  # KG edges propagate
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['side'] is True and cfg['split']['kind'] == 'fixed'
    assert cfg['split']['labelled'] == {'train': 25408, 'val': 8469,
                                        'test': 8469}
    with pytest.raises(SystemExit, match='--side-relations does not apply '
                       r'to mf \(it is an option of lightgcn, ngcf, '
                       r'simgcl\)'):
        main(['train', '--model', 'mf', '--dataset', 'lastfm-kg',
              '--side-relations', '--out', str(env / 'x')])


# -- devices ------------------------------------------------------------------

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)]


@needs_ml
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('model', sorted(MODELS))
def test_every_model_on_the_device_given(env, model, device):
    # the same code path on every device: a tensor made without device=
    # fails here on a GPU machine instead of running on the CPU unseen
    out = env / f'{model}-{device}'
    common = ['-q', 'train', '--model', model, '--device', device,
              '--epochs', '1', '--dim', '8', '--no-progress', '--out',
              str(out)]
    if MODELS[model].task == NEXT_ITEM:
        raw = write_s3rec(env / 'raw')
        args = [*common, '--dataset', 'beauty', '--raw-dir', str(raw),
                '--batch-size', '32', '--sampled-negatives', '5']
    elif MODELS[model].task == KG:
        raw = _write_kg(env / 'raw')
        args = [*common, '--dataset', 'kinship', '--raw-dir', str(raw),
                '--batch-size', '64', '--num-neg', '8']
    elif MODELS[model].task == CLICK:
        if not (LASTFM / 'kg.txt').exists():
            pytest.skip(f'staged Last.FM (KGCN) not found at {LASTFM}')
        args = [*common, '--dataset', 'lastfm-kg', '--batch-size', '4096']
    elif MODELS[model].task == RATING:
        raw = _social_zip(env / 'raw')
        args = [*common, '--dataset', 'ciao', '--raw-dir', str(raw),
                '--batch-size', '64']
    else:
        layers = ['--layers', '1'] if '--layers' in allowed_flags(model) \
            else []
        args = [*common, '--dataset', 'movielens-100k', '--batch-size',
                '8192', *layers]
    assert main(args) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    config = json.loads((out / 'config.json').read_text())
    assert torch.device(metrics['device']).type == device
    assert torch.device(config['device']).type == device
    assert metrics['world_size'] == 1
    values = [v for k, v in metrics['test'].items() if k != 'mr']
    if MODELS[model].task == RATING:  # MAE, RMSE on a 1-5 scale
        assert set(metrics['test']) == {'mae', 'rmse'}
        assert all(0.0 < v < 5.0 for v in values)
        # the items of highest predicted rating the user has not rated
        assert main(['recommend', '--run', str(out), '--user', '1',
                     '--k', '3']) == 0
        return
    assert values and all(0.0 <= v <= 1.0 for v in values)
    # the weights load on a CPU-only machine (map_location) and recommend
    if MODELS[model].task in (RANKING, CLICK):
        user = '2' if MODELS[model].task == CLICK else '1'
        assert main(['recommend', '--run', str(out), '--user', user,
                     '--k', '3']) == 0


def allowed_flags(model):
    from pyg_recsys.cli.run import _flag, allowed_options
    return {_flag(dest) for dest in allowed_options(model)}


def test_device_errors(env):
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='no CUDA device'):
            main(['train', '--model', 'mf', '--dataset', 'movielens-100k',
                  '--device', 'cuda', '--out', str(env / 'x')])
        assert not (env / 'x').exists()  # nothing written
    with pytest.raises(SystemExit, match="'meta': only 'cpu' and 'cuda'"):
        main(['train', '--model', 'mf', '--dataset', 'movielens-100k',
              '--device', 'meta', '--out', str(env / 'y')])
    with pytest.raises(SystemExit, match="'tpu' is not a device name"):
        main(['train', '--model', 'mf', '--dataset', 'movielens-100k',
              '--device', 'tpu', '--out', str(env / 'y')])
    assert not (env / 'y').exists()


@pytest.fixture
def cuda_tagged():
    """``retag(path)``: rewrites a checkpoint as if its tensors had been
    saved from ``cuda:0`` (torch records each storage's device), so a CPU
    machine can test loading a GPU-trained run."""
    from torch import serialization

    def tagger(obj):
        return 'cuda:0' if obj.device.type == 'cpu' else None

    def retag(path):
        state = torch.load(path, weights_only=True)
        serialization.register_package(0, tagger, lambda obj, loc: None)
        try:
            torch.save(state, path)
        finally:
            serialization._package_registry[:] = [
                e for e in serialization._package_registry
                if e[1] is not tagger]
    return retag


@needs_ml
def test_gpu_trained_run_resumes_and_recommends_on_cpu(env, cuda_tagged,
                                                       capsys):
    out = env / 'run'
    assert _train(out, '--epochs', '1') == 0
    for name in ('last.pt', 'best.pt'):
        cuda_tagged(out / name)
    if not torch.cuda.is_available():  # the tag is there: plain load fails
        with pytest.raises(RuntimeError, match='CUDA'):
            torch.load(out / 'best.pt', weights_only=True)
    capsys.readouterr()
    assert main(['recommend', '--run', str(out), '--user', '1',
                 '--k', '3']) == 0
    assert 'top 3 for user 1' in capsys.readouterr().out
    assert _train(out, '--epochs', '2', '--resume', '--device', 'cpu') == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert [r['epoch'] for r in metrics['epochs']] == [1, 2]


# -- knowledge-graph completion -----------------------------------------------

def _write_kg(folder, seed=0):
    """A small KG completion benchmark in the upstream layout (train.txt,
    valid.txt, test.txt): 30 entities, 3 relations."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for part, n in (('train', 300), ('valid', 30), ('test', 30)):
        h = torch.randint(0, 30, (n,), generator=gen).tolist()
        r = torch.randint(0, 3, (n,), generator=gen).tolist()
        t = torch.randint(0, 30, (n,), generator=gen).tolist()
        (folder / f'{part}.txt').write_text(''.join(
            f'e{a}\trel{b}\te{c}\n' for a, b, c in zip(h, r, t)))
    return folder


def _kg(out, raw, *extra):
    return main(['-q', 'train', '--model', 'transe', '--dataset',
                 'kinship', '--raw-dir', str(raw), '--epochs', '2',
                 '--dim', '8', '--batch-size', '64', '--no-progress',
                 '--out', str(out), *extra])


def test_transe_trains_evaluates_filtered_and_resumes(env, capsys):
    raw = _write_kg(env / 'raw')
    assert _kg(env / 'a', raw, '--epochs', '3') == 0
    text = capsys.readouterr().out
    assert 'filtered ranking' in text and 'sample tail predictions' in text
    m = json.loads((env / 'a' / 'metrics.json').read_text())
    assert set(m['test']) == {'mrr', 'mr', 'hits@1', 'hits@3', 'hits@10',
                              'mrr_head', 'mrr_tail'}
    assert 0 < m['test']['mrr'] <= 1 and m['test']['mr'] >= 1
    cfg = json.loads((env / 'a' / 'config.json').read_text())
    assert cfg['protocol']['ks'] == [1, 3, 10]
    assert cfg['split']['num_entities'] == 30
    assert 'filtered' in cfg['protocol']['ranking']
    # two epochs, then one more on --resume: the three-epoch run
    assert _kg(env / 'b', raw) == 0
    assert _kg(env / 'b', raw, '--epochs', '3', '--resume') == 0
    again = json.loads((env / 'b' / 'metrics.json').read_text())
    assert again['test'] == m['test']
    with pytest.raises(SystemExit, match='holds a knowledge-graph '
                       'completion model'):
        main(['recommend', '--run', str(env / 'a'), '--user', '1'])
    # in-batch negatives and the margin loss
    assert _kg(env / 'c', raw, '--neg', 'inbatch', '--kg-loss', 'margin',
               '--reciprocal', '--p-norm', '2') == 0


@pytest.mark.parametrize('extra,message', [
    (['--neg', 'ppr'], '--neg ppr does not apply to knowledge-graph'),
    (['--neg', 'inbatch', '--num-neg', '4'], '--neg inbatch takes the '
     'other triples'),
    (['--monitor', 'recall@20'], "unknown --monitor 'recall@20' for "
     'knowledge-graph'),
    (['--monitor', 'hits@5'], '--monitor hits@5 needs the cut-off 5'),
    (['--margin', '0'], '--margin must be > 0'),
    (['--layers', '2'], '--layers does not apply to transe'),
    (['--model', 'mf'], 'mf is a ranking model but kinship is a '
     'kg-completion data set'),
])
def test_transe_option_errors(env, extra, message):
    raw = _write_kg(env / 'raw')
    with pytest.raises(SystemExit, match=message):
        _kg(env / 'x', raw, *extra)
    assert not (env / 'x').exists()


# Rating prediction (GraphRec, biased MF) ####################################

def _social_zip(folder):
    from pyg_recsys.testing import write_social_zip
    return write_social_zip(folder, users=40, items=30)


@pytest.mark.parametrize('model,extra', [
    ('graphrec', ['--neighbors', '4', '2', '4', '--dim', '8']),
    ('graphrec', ['--no-social', '--dim', '8']),
    ('biasedmf', ['--reg', '0.1', '--dim', '8'])])
def test_rating_models_train_select_on_rmse_and_resume(env, capsys, model,
                                                      extra):
    raw = _social_zip(env / 'raw')
    out = env / 'run'
    argv = ['train', '--model', model, '--dataset', 'ciao', '--raw-dir',
            str(raw), '--epochs', '2', '--eval-every', '1', '--batch-size',
            '32', '--no-progress', '--out', str(out), *extra]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f'{model} on ciao: best epoch' in printed
    assert 'rmse' in printed and 'predicted' in printed
    m = json.loads((out / 'metrics.json').read_text())
    assert m['monitor'] == 'rmse'
    vals = [e['val']['rmse'] for e in m['epochs']]
    assert m['best_val']['rmse'] == min(vals)  # lower is better
    assert set(m['test']) == {'mae', 'rmse'}
    # a resumed run goes on to epoch 3
    argv[argv.index('--epochs') + 1] = '3'
    assert main([*argv, '--resume']) == 0
    m = json.loads((out / 'metrics.json').read_text())
    assert [e['epoch'] for e in m['epochs']] == [1, 2, 3]


def test_rating_options_are_checked(env):
    raw = _social_zip(env / 'raw')
    base = ['train', '--dataset', 'ciao', '--raw-dir', str(raw),
            '--epochs', '1', '--no-progress']
    for extra, message in (
            (['--model', 'graphrec', '--monitor', 'recall@20'],
             r"unknown --monitor 'recall@20' for rating prediction"),
            (['--model', 'graphrec', '--neighbors', '3', '3'],
             r'GraphRec: num_neighbors must be three counts'),
            (['--model', 'biasedmf', '--no-social'],
             r'--no-social does not apply to biasedmf'),
            (['--model', 'graphrec', '--dataset', 'movielens-100k'],
             r'graphrec is a rating model but movielens-100k is a ranking '
             r'data set; rating data sets: ciao, epinions')):
        with pytest.raises(SystemExit, match='pyg-recsys train: ' + message):
            main([*base, '--out', str(env / 'never'), *extra])
        assert not (env / 'never').exists()
