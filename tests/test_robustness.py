"""Robustness across the task kinds: a run killed with SIGKILL resumes to
the uninterrupted run's result for one model of every family, every
evaluator gives the same metrics whatever its evaluation batch size, and
the split of every data set of the command's table passes its leak
audit."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyg_recsys.testing import write_s3rec

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'

# Tiny data sets in the upstream layouts ######################################


def _write_s3rec(folder: Path) -> Path:
    return write_s3rec(folder, users=60, num_items=20)


def _write_kg(folder: Path, entities: int = 30, relations: int = 3,
              seed: int = 0, leak: int = 0) -> Path:
    """``train.txt`` / ``valid.txt`` / ``test.txt`` of a KG completion
    benchmark (tab-separated head, relation, tail), distinct triples in
    every part unless ``leak`` test triples are copied into training."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    key = torch.randperm(entities * relations * entities, generator=gen)
    h, rest = key // (relations * entities), key % (relations * entities)
    r, t = rest // entities, rest % entities
    triples = list(zip(h.tolist(), r.tolist(), t.tolist()))
    parts = dict(train=triples[:300], valid=triples[300:330],
                 test=triples[330:360])
    parts['train'] += parts['test'][:leak]
    for part, rows in parts.items():
        (folder / f'{part}.txt').write_text(''.join(
            f'e{a}\trel{b}\te{c}\n' for a, b, c in rows))
    return folder


def _write_social(folder: Path) -> Path:
    from pyg_recsys.testing import write_social_zip
    return write_social_zip(folder, users=40, items=30)


# 1. Resume after SIGKILL, one model of every family ##########################

# family -> (model, data set, writer of its raw files or None for the
# staged copy, epochs, extra options); the epochs leave the run time to
# be killed after its third
FAMILIES = {
    'pairwise': ('mf', 'movielens-100k', None, 15,
                 ['--dim', '16', '--batch-size', '8192']),
    'session': ('sasrec', 'beauty', _write_s3rec, 40,
                ['--dim', '16', '--batch-size', '16', '--dropout', '0.2']),
    'rating': ('graphrec', 'ciao', _write_social, 40,
               ['--dim', '8', '--batch-size', '32', '--dropout', '0.2']),
    'kg': ('transe', 'kinship', _write_kg, 60,
           ['--dim', '8', '--batch-size', '16', '--num-neg', '8',
            '--dropout', '0.2']),
}


def _last_epoch(path: Path) -> int:
    try:
        return torch.load(path, weights_only=True)['epoch']
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return 0


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)['model']


@pytest.mark.parametrize('family', [
    pytest.param(f, marks=pytest.mark.data) if FAMILIES[f][2] is None
    else f for f in sorted(FAMILIES)])
def test_resume_after_sigkill_matches_uninterrupted_run(family, tmp_path):
    model, dataset, write, epochs, extra = FAMILIES[family]
    cmd = [sys.executable, '-m', 'pyg_recsys.cli', '-q', 'train', '--model',
           model, '--dataset', dataset, '--epochs', str(epochs), '--lr',
           '0.01', '--eval-every', '1', '--no-progress', '--deterministic',
           *extra]
    if write is None:
        raw = SHARED / dataset / 'raw'
        if not (raw / 'u.data').exists():
            pytest.skip(f'staged {dataset} not found at {raw}; set '
                        f'PYG_RECSYS_DATA to the staged datasets folder')
    else:
        raw = write(tmp_path / 'raw')
    cmd += ['--raw-dir', str(raw)]
    # one thread: multi-threaded sums may round differently from run to
    # run; this test is about the resume logic
    run_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                   PYG_RECSYS_ROOT=str(tmp_path / 'data'))
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    _run(cmd + ['--out', str(full)], run_env)
    proc = subprocess.Popen(cmd + ['--out', str(cut)], env=run_env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, seen = time.time() + 300, None
    while time.time() < deadline and proc.poll() is None:
        last = cut / 'last.pt'
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp != seen:
            seen = stamp
            if _last_epoch(last) >= 3:
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _last_epoch(cut / 'last.pt')
    assert 3 <= killed_at < epochs, (
        f'the run was at epoch {killed_at} of {epochs} when killed')
    # the killed run's record stops short of the end, with no test result
    cut_record = json.loads((cut / 'metrics.json').read_text())
    assert len(cut_record['epochs']) < epochs and not cut_record.get('test')
    _run(cmd + ['--out', str(cut), '--resume'], run_env)
    a = json.loads((full / 'metrics.json').read_text())
    b = json.loads((cut / 'metrics.json').read_text())
    assert [e['epoch'] for e in b['epochs']] == list(range(1, epochs + 1))
    assert [e['loss'] for e in a['epochs']] == \
        [e['loss'] for e in b['epochs']]
    assert [e['val'] for e in a['epochs']] == [e['val'] for e in b['epochs']]
    assert a['best_epoch'] == b['best_epoch']
    assert a['test'] == b['test']
    for name in ('last.pt', 'best.pt'):
        wa, wb = _weights(full / name), _weights(cut / name)
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), (name, key)


# 2. Evaluation does not depend on the evaluation batch size ##################

# 1, a small size that leaves a partial last batch, one beyond the data
BATCH_SIZES = (1, 7, 1_000_000)


def _cli_case(model: str, dataset: str, write, tmp_path: Path,
              *extra: str):
    """``(evaluator_of(batch_size), model)`` as ``pyg-recsys train`` builds
    them (``--eval-batch-size``), on tiny data written to ``tmp_path``,
    the model freshly initialised."""
    from pyg_recsys.cli import build_model, load_data, parse_train_args
    from pyg_recsys.cli.table import MODELS
    from pyg_recsys.cli.tasks import DRIVERS
    args = parse_train_args(['--model', model, '--dataset', dataset,
                             '--raw-dir', str(write(tmp_path / 'raw')),
                             '--out', str(tmp_path / 'run'), *extra])
    driver = DRIVERS[MODELS[model].task]
    data = load_data(args)
    torch.manual_seed(0)
    net = build_model(args, data)
    driver.prepare(data, args, net)

    def evaluator(batch_size: int):
        args.eval_batch_size = batch_size
        return driver.evaluator(data, args)
    return evaluator, net


def _item_to_item_case(tmp_path: Path):
    from pyg_recsys.nn.models import ItemKNN
    from pyg_recsys.testing import clustered_split
    from pyg_recsys.train import ItemToItemEvaluator
    split = clustered_split()
    gen = torch.Generator().manual_seed(2)
    split.attrs['train'] = {'time': torch.randint(
        0, 50, (split.train.size(1), ), generator=gen)}
    knn = ItemKNN(split.num_users, split.num_items, split.train, k=20)
    return (lambda b: ItemToItemEvaluator(split, ks=(5, 10), batch_size=b),
            knn)


def _click_through_case(tmp_path: Path):
    """KGCN over a random item-entity graph, the split's held-out pairs
    labelled 1 next to as many unknown pairs labelled 0; the rows per
    ``predict`` call (``chunk``) and the ranking's users per chunk vary,
    the reference mini-batch of ``auc_batches`` (a definition of that
    metric, not an evaluation batch) stays."""
    from dataclasses import replace

    from pyg_recsys.nn.models import KGCN
    from pyg_recsys.testing import clustered_split
    from pyg_recsys.train import ClickThroughEvaluator, RankingEvaluator
    split = clustered_split()
    gen = torch.Generator().manual_seed(3)
    known = set(map(tuple, torch.cat([split.train, split.val, split.test],
                                     1).t().tolist()))
    labelled = {}
    for part in ('val', 'test'):
        pos = split.part(part)
        neg = []
        while len(neg) < pos.size(1):
            u = int(torch.randint(split.num_users, (1, ), generator=gen))
            i = int(torch.randint(split.num_items, (1, ), generator=gen))
            if (u, i) not in known:
                neg.append((u, i))
        rows = torch.cat([torch.cat([pos, torch.ones_like(pos[:1])]),
                          torch.cat([torch.tensor(neg).t(),
                                     torch.zeros_like(pos[:1])])], 1)
        labelled[part] = rows[:, torch.randperm(rows.size(1),
                                                generator=gen)]
    split = replace(split, labelled=labelled)
    split.audit()
    num_entities = 20
    heads = torch.randint(split.num_items, (200, ), generator=gen)
    tails = split.num_items + torch.randint(num_entities, (200, ),
                                            generator=gen)
    triples = torch.stack([heads, torch.randint(3, (200, ), generator=gen),
                           tails])
    torch.manual_seed(0)
    kgcn = KGCN(split.num_users, split.num_items, num_entities, triples,
                num_relations=3, embedding_dim=8, num_neighbors=4)
    return (lambda b: ClickThroughEvaluator(
        split.labelled, batch_size=16, chunk=b,
        ranking=RankingEvaluator(split, ks=(5, 10), batch_size=b)), kgcn)


EVALUATORS = {
    'RankingEvaluator': lambda p: _cli_case(
        'mf', 'ciao', _write_social, p, '--dim', '8', '--ks', '5', '10'),
    'ItemToItemEvaluator': _item_to_item_case,
    'RatingEvaluator': lambda p: _cli_case(
        'biasedmf', 'ciao', _write_social, p, '--dim', '8'),
    'ClickThroughEvaluator': _click_through_case,
    'KGEvaluator': lambda p: _cli_case(
        'transe', 'kinship', _write_kg, p, '--dim', '8'),
    'NextItemEvaluator': lambda p: _cli_case(
        'sasrec', 'beauty', _write_s3rec, p, '--dim', '16', '--ks', '5',
        '10'),
}


def test_every_evaluator_is_in_the_table():
    import pyg_recsys.train as train
    names = {n for n in dir(train) if n.endswith('Evaluator')
             and n != 'Evaluator' and isinstance(getattr(train, n), type)}
    assert names == set(EVALUATORS)


@pytest.mark.parametrize('name', sorted(EVALUATORS))
def test_evaluation_does_not_depend_on_the_batch_size(name, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    evaluator, model = EVALUATORS[name](tmp_path)
    assert type(evaluator(1)).__name__ == name
    for part in ('val', 'test'):
        results = [evaluator(b)(model, part) for b in BATCH_SIZES]
        # not a degenerate case: some metric strictly between its bounds
        assert any(0 < v < 1 for k, v in results[0].items()
                   if k not in ('mr', 'mae', 'rmse')) or \
            0 < results[0].get('rmse', 0)
        for got in results[1:]:
            assert got.keys() == results[0].keys()
            assert got == pytest.approx(results[0], rel=1e-9, abs=1e-12)


def test_sampled_next_item_metrics_do_not_depend_on_the_batch_size(
        tmp_path, monkeypatch):
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    evaluator, model = _cli_case('sasrec', 'beauty', _write_s3rec, tmp_path,
                                 '--dim', '16', '--ks', '5', '10',
                                 '--sampled-negatives', '5')
    results = [evaluator(b)(model, 'test') for b in BATCH_SIZES]
    assert 'sampled5_hit@5' in results[0]
    for got in results[1:]:
        assert got == pytest.approx(results[0], rel=1e-9, abs=1e-12)


# 3. The split of every data set of the table passes its leak audit ###########

def _check_split(split) -> dict:
    """``audit()`` of a user-item split, and what it must have seen."""
    report = split.audit()
    assert 'user__interacts__item' in report['edge_types']
    for part in ('train', 'val', 'test'):
        assert split.part(part).size(1) > 0, part
    return report


def _check_kg_split(split) -> None:
    """The leak check of a knowledge-graph completion split (``audit()``
    covers user-item splits only): triples in range, validation and test
    triples neither in training nor in each other, nor edges of the
    training graph."""
    E, R = split.num_entities, split.num_relations
    keys = {}
    for part in ('train', 'val', 'test'):
        t = split.part(part)
        assert t.dim() == 2 and t.size(0) == 3 and t.size(1) > 0, part
        assert int(t[[0, 2]].min()) >= 0 and int(t[[0, 2]].max()) < E
        assert int(t[1].min()) >= 0 and int(t[1].max()) < R
        keys[part] = torch.unique((t[0] * R + t[1]) * E + t[2])
    for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        both = torch.isin(keys[a], keys[b])
        assert not bool(both.any()), (
            f'{int(both.sum())} triples in both {a} and {b}')
    graph = split.graph()
    assert sum(graph[et].num_edges for et in graph.edge_types) == \
        2 * split.train.size(1)  # each relation and its reverse


def _check_next_item(ds, task) -> None:
    """The leak check of next-item examples: for per-user sequences
    (leave-one-out), each user's training sequence ends before the
    validation target and its test prefix before the test target; for
    session pickles, validation is carved out of the training examples
    and the test examples are the test pickle's."""
    from pyg_recsys.datasets import SequenceDataset
    assert len(task.train) > 0 and len(task.val) > 0 and len(task.test) > 0
    if isinstance(ds, SequenceDataset):
        split = ds.leave_one_out()
        by_user = dict(zip(split.val_user.tolist(),
                           zip(split.val, split.val_y.tolist(), split.test,
                               split.test_y.tolist())))
        for u, seq in enumerate(ds.sequences):
            if u not in by_user:
                assert len(seq) < 3 and split.train[u] == list(seq)
                continue
            val, val_y, test, test_y = by_user[u]
            assert split.train[u] == val == list(seq[:-2])
            assert test == val + [val_y] and test + [test_y] == list(seq)
        assert len(task.val) == len(split.val)
        assert len(task.test) == len(split.test)
    else:
        assert len(task.train) + len(task.val) == len(ds.train)
        assert len(task.test) == len(ds.test)


def _audit_dataset(name: str, raw_dir: str | None = None) -> list[str]:
    """Loads ``name`` for every task kind it serves as ``pyg-recsys
    train`` does (default split and options) and checks the result;
    returns the kinds checked."""
    from types import SimpleNamespace

    from pyg_recsys.cli import load_data, parse_train_args
    from pyg_recsys.cli.table import DATASETS, KG, NEXT_ITEM, models_of
    from pyg_recsys.cli.tasks import DRIVERS
    checked = []
    for task in DATASETS[name].tasks:
        model = models_of(task)[0]
        args = parse_train_args(
            ['--model', model, '--dataset', name, '--out', '-',
             *(['--raw-dir', raw_dir] if raw_dir else [])])
        data = load_data(args)
        if task == NEXT_ITEM:
            # what prepare() reads of the model: the CLI's default
            # training mode of a causal model (SASRec) on sequences
            DRIVERS[task].prepare(data, args, SimpleNamespace(
                causal=True, max_len=args.max_len))
            _check_next_item(data['ds'], data['task'])
        elif task == KG:
            _check_kg_split(data['split'])
        else:
            assert data['audit'] == _check_split(data['split'])
        checked.append(task)
    return checked


def _dataset_params():
    from pyg_recsys.cli.table import DATASETS
    return sorted(DATASETS)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp('data')


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize('name', _dataset_params())
def test_split_of_every_dataset_passes_the_audit(name, data_root,
                                                 monkeypatch):
    from pyg_recsys.cli.table import DATASETS
    staged = os.environ.get('PYG_RECSYS_DATA') or str(SHARED)
    monkeypatch.setenv('PYG_RECSYS_DATA', staged)
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(data_root))
    spec = DATASETS[name]
    where = spec.dataset_class().locate(root=str(data_root), **spec.kwargs)
    if not where.startswith('raw files in'):
        pytest.skip(f'{name}: staged raw files not found under {staged} '
                    f'({where}); set PYG_RECSYS_DATA to the staged '
                    f'datasets folder')
    assert _audit_dataset(name) == list(spec.tasks)


@pytest.mark.parametrize('name,write', [
    ('ciao', _write_social), ('beauty', _write_s3rec),
    ('kinship', _write_kg)])
def test_split_of_tiny_datasets_passes_the_audit(name, write, tmp_path,
                                                 monkeypatch):
    from pyg_recsys.cli.table import DATASETS
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    raw = write(tmp_path / 'raw')
    assert _audit_dataset(name, str(raw)) == list(DATASETS[name].tasks)


def test_kg_leak_check_finds_test_triples_in_training(tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'data'))
    raw = _write_kg(tmp_path / 'raw', leak=2)
    with pytest.raises(AssertionError, match='2 triples in both train and '
                       'test'):
        _audit_dataset('kinship', str(raw))
